// Package client is vflink's public Go client for its Neutron v2.0-compatible HTTP API (networks,
// subnets, ports). It speaks plain Neutron, so it works against a vflink server and against a real
// Neutron (for example in noauth mode, with WithProject to fill tenant_id).
//
// Resources are sent as maps so callers send exactly the fields they mean (an explicit
// "fixed_ips": [] differs from no fixed_ips at all) and decoded into the api types. A non-2xx answer
// is an *Error carrying Neutron's error type, message and detail; IsNotFound and IsConflict test
// for the common cases. FindNetwork, FindSubnet and FindPort resolve a name or an ID the way the
// openstack CLI does: GET by ID first, then list by name.
//
// A Client is safe for concurrent use and keeps its connections alive across requests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	apiVersionPath = "/v2.0"
	userAgent      = "vflink-client"
	// maxErrorBody bounds how much of a non-Neutron error body ends up in Error.Message.
	maxErrorBody = 512
)

// Client talks to one Neutron-compatible endpoint.
type Client struct {
	base    string // scheme://host[/prefix]/v2.0, no trailing slash
	token   string
	login   *login
	project string
	hc      *http.Client
	timeout *time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as X-Auth-Token on every request.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithRequestTimeout bounds each request (default 2 minutes; 0 leaves it unbounded, the context
// still applies); with WithHTTPClient it applies to a copy of that client.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = &d }
}

// WithHTTPClient replaces the Client's own *http.Client (and its keep-alive tuned transport).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithProject adds "tenant_id": project to every create body that names neither tenant_id nor
// project_id. A real Neutron without Keystone (noauth) needs it.
func WithProject(project string) Option {
	return func(c *Client) { c.project = project }
}

// New returns a Client for the API at baseURL: the server root ("http://127.0.0.1:9696"), a
// Keystone catalog endpoint ("http://h/network", requests then go to "http://h/network/v2.0/...")
// or a URL that already ends in "/v2.0".
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := normalizeBase(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, hc: newHTTPClient()}
	for _, o := range opts {
		o(c)
	}
	if c.timeout != nil {
		hc := *c.hc // a copy: a caller's *http.Client is not changed under it
		hc.Timeout = *c.timeout
		c.hc = &hc
	}
	return c, nil
}

// BaseURL returns the URL below which the client sends requests; it ends in "/v2.0".
func (c *Client) BaseURL() string { return c.base }

func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("invalid API URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid API URL %q: want http:// or https:// with a host, like http://127.0.0.1:9696", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid API URL %q: want no query or fragment", raw)
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	if !strings.HasSuffix(p, apiVersionPath) {
		p += apiVersionPath
	}
	return u.Scheme + "://" + u.Host + p, nil
}

// newHTTPClient returns the one *http.Client a Client uses for all its requests, its transport
// tuned to keep many connections to the same server alive under concurrency.
func newHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t, Timeout: 2 * time.Minute}
}

// Error is a non-2xx answer of the API. Type, Message and Detail come from Neutron's
// {"NeutronError": {...}} body; when the body has another shape, Type is the HTTP status text and
// Message the start of the body.
type Error struct {
	StatusCode int
	Type       string
	Message    string
	Detail     string
}

// Error reads like "409 IpAddressGenerationFailure: No more IP addresses available on network X.".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.StatusCode)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Detail != "" && e.Detail != e.Message {
		b.WriteString(" (" + e.Detail + ")")
	}
	return b.String()
}

// IsNotFound reports whether err is (or wraps) an API answer 404, or a Find* that matched nothing.
func IsNotFound(err error) bool {
	var nf *notFoundError
	return hasStatus(err, http.StatusNotFound) || errors.As(err, &nf)
}

// notFoundError is a Find* lookup that matched neither an ID nor a name.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// IsConflict reports whether err is (or wraps) an API answer 409, such as VlanIdInUse or
// IpAddressAlreadyAllocated.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsPreconditionFailed reports whether err is (or wraps) an API answer 412: an If-Match revision
// that no longer matches.
func IsPreconditionFailed(err error) bool { return hasStatus(err, http.StatusPreconditionFailed) }

func hasStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == code
}

func decodeError(status int, body []byte) *Error {
	e := &Error{StatusCode: status}
	var eb struct {
		NeutronError *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"NeutronError"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.NeutronError != nil &&
		(eb.NeutronError.Type != "" || eb.NeutronError.Message != "") {
		e.Type = eb.NeutronError.Type
		e.Message = eb.NeutronError.Message
		e.Detail = eb.NeutronError.Detail
		return e
	}
	var ke struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	e.Type = strings.ReplaceAll(http.StatusText(status), " ", "")
	if json.Unmarshal(body, &ke) == nil && ke.Error != nil && ke.Error.Message != "" {
		e.Message = ke.Error.Message
		return e
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody] + "..."
	}
	e.Message = text
	return e
}

// UpdateOption changes how an update is sent.
type UpdateOption func(http.Header)

// IfRevision makes the update apply only if the object's revision_number is still n: it sends
// "If-Match: revision_number=n" and the server answers 412 otherwise.
func IfRevision(n int64) UpdateOption {
	return func(h http.Header) { h.Set("If-Match", fmt.Sprintf("revision_number=%d", n)) }
}

// do sends one request below the base URL and decodes a 2xx JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, hdr http.Header, out any) error {
	return c.send(ctx, method, c.base+path, query, body, hdr, out)
}

// send sends one request to the absolute URL u.
func (c *Client) send(ctx context.Context, method, u string, query url.Values, body any, hdr http.Header, out any) error {
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	token := c.token
	if c.login != nil {
		if token, err = c.login.token(ctx, c); err != nil {
			return err
		}
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	// Read the whole body so the connection goes back to the idle pool.
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode == http.StatusUnauthorized && c.login != nil {
			c.login.forget(token) // the next request logs in again
		}
		return decodeError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, u, err)
	}
	return nil
}

// kind names one Neutron resource by its singular JSON key; its collection adds an "s".
type kind string

const (
	networks kind = "network"
	subnets  kind = "subnet"
	ports    kind = "port"
)

func (k kind) singular() string { return string(k) }
func (k kind) plural() string   { return string(k) + "s" }

func (c *Client) withProject(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		out[k] = v
	}
	if c.project != "" {
		_, hasTenant := out["tenant_id"]
		_, hasProject := out["project_id"]
		if !hasTenant && !hasProject {
			out["tenant_id"] = c.project
		}
	}
	return out
}

func unwrap[T any](k kind, op string, out map[string]*T) (*T, error) {
	v := out[k.singular()]
	if v == nil {
		return nil, fmt.Errorf("%s %s: answer has no %q object", op, k.singular(), k.singular())
	}
	return v, nil
}

func create[T any](ctx context.Context, c *Client, k kind, fields map[string]any) (*T, error) {
	body := map[string]any{k.singular(): c.withProject(fields)}
	var out map[string]*T
	if err := c.do(ctx, http.MethodPost, "/"+k.plural(), nil, body, nil, &out); err != nil {
		return nil, fmt.Errorf("create %s: %w", k.singular(), err)
	}
	return unwrap(k, "create", out)
}

func get[T any](ctx context.Context, c *Client, k kind, id string) (*T, error) {
	if id == "" {
		return nil, fmt.Errorf("get %s: empty ID", k.singular())
	}
	var out map[string]*T
	if err := c.do(ctx, http.MethodGet, "/"+k.plural()+"/"+url.PathEscape(id), nil, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get %s %s: %w", k.singular(), id, err)
	}
	return unwrap(k, "get", out)
}

func list[T any](ctx context.Context, c *Client, k kind, filters url.Values) ([]T, error) {
	var out map[string][]T
	if err := c.do(ctx, http.MethodGet, "/"+k.plural(), filters, nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list %s: %w", k.plural(), err)
	}
	items, ok := out[k.plural()]
	if !ok {
		return nil, fmt.Errorf("list %s: answer has no %q list", k.plural(), k.plural())
	}
	if items == nil {
		items = []T{}
	}
	return items, nil
}

func update[T any](ctx context.Context, c *Client, k kind, id string, fields map[string]any, opts []UpdateOption) (*T, error) {
	if id == "" {
		return nil, fmt.Errorf("update %s: empty ID", k.singular())
	}
	hdr := http.Header{}
	for _, o := range opts {
		o(hdr)
	}
	body := map[string]any{k.singular(): fields}
	var out map[string]*T
	if err := c.do(ctx, http.MethodPut, "/"+k.plural()+"/"+url.PathEscape(id), nil, body, hdr, &out); err != nil {
		return nil, fmt.Errorf("update %s %s: %w", k.singular(), id, err)
	}
	return unwrap(k, "update", out)
}

func (c *Client) delete(ctx context.Context, k kind, id string) error {
	if id == "" {
		return fmt.Errorf("delete %s: empty ID", k.singular())
	}
	if err := c.do(ctx, http.MethodDelete, "/"+k.plural()+"/"+url.PathEscape(id), nil, nil, nil, nil); err != nil {
		return fmt.Errorf("delete %s %s: %w", k.singular(), id, err)
	}
	return nil
}

// find resolves nameOrID: GET by ID, and on 404 a list filtered by name that must match exactly one.
func find[T any](ctx context.Context, c *Client, k kind, nameOrID string, idOf func(*T) string) (*T, error) {
	if nameOrID == "" {
		return nil, fmt.Errorf("find %s: empty name or ID", k.singular())
	}
	v, err := get[T](ctx, c, k, nameOrID)
	if err == nil {
		return v, nil
	}
	if !IsNotFound(err) {
		return nil, err
	}
	items, err := list[T](ctx, c, k, url.Values{"name": {nameOrID}})
	if err != nil {
		return nil, err
	}
	switch len(items) {
	case 1:
		return &items[0], nil
	case 0:
		return nil, &notFoundError{msg: fmt.Sprintf("no %s named or with ID %q", k.singular(), nameOrID)}
	default:
		ids := make([]string, len(items))
		for i := range items {
			ids[i] = idOf(&items[i])
		}
		return nil, fmt.Errorf("%s name %q is ambiguous: %d %s have it (%s); use an ID",
			k.singular(), nameOrID, len(items), k.plural(), strings.Join(ids, ", "))
	}
}

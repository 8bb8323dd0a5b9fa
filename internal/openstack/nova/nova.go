package nova

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// Config configures the Nova face.
type Config struct {
	// Logger (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service implements the Compute v2.1 subset over a store.
type Service struct {
	st     *store.Store
	net    *neutron.Service
	img    *glance.Service
	sched  Scheduler
	cfg    Config
	log    *slog.Logger
	prefix string
}

// New returns the Nova service. It places servers with sched and reads images and ports through the
// glance and neutron faces.
func New(st *store.Store, net *neutron.Service, img *glance.Service, sched Scheduler, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{st: st, net: net, img: img, sched: sched, cfg: cfg, log: cfg.Logger.With("component", "nova")}
}

func (s *Service) now() string { return s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z") }

// Microversion is the one compute API microversion vflink serves.
const Microversion = "2.1"

// Register mounts the API under prefix (e.g. "/compute"): version documents at prefix, prefix/ and
// prefix/v2.1/, the API at prefix/v2.1/.
func (s *Service) Register(mux *http.ServeMux, prefix string) {
	s.prefix = prefix
	doc := func(f http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { versionHeaders(w); f(w, r) }
	}
	mux.HandleFunc("GET "+prefix, doc(s.versions))
	mux.HandleFunc("GET "+prefix+"/{$}", doc(s.versions))
	mux.HandleFunc("GET "+prefix+"/v2.1", doc(s.version))
	mux.HandleFunc("GET "+prefix+"/v2.1/{$}", doc(s.version))

	h := func(pattern string, f handler) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+prefix+"/v2.1"+path, func(w http.ResponseWriter, r *http.Request) {
			versionHeaders(w)
			if err := s.serve(w, r, f); err != nil {
				writeError(w, s.log, err)
			}
		})
	}
	h("POST /flavors", s.createFlavor)
	h("GET /flavors", s.listFlavors)
	h("GET /flavors/detail", s.listFlavorsDetail)
	h("GET /flavors/{id}", s.showFlavor)
	h("DELETE /flavors/{id}", s.deleteFlavor)
	h("GET /flavors/{id}/os-extra_specs", s.flavorExtraSpecs)

	h("POST /servers", s.createServer)
	h("GET /servers", s.listServers)
	h("GET /servers/detail", s.listServersDetail)
	h("GET /servers/{id}", s.showServer)
	h("DELETE /servers/{id}", s.deleteServer)

	h("GET /os-quota-sets/{project}", s.showQuotaSet)
	h("GET /os-quota-sets/{project}/defaults", s.showQuotaSet)
	h("PUT /os-quota-sets/{project}", s.updateQuotaSet)
}

type handler func(w http.ResponseWriter, r *http.Request, c *auth.Context) error

// serve checks the requested microversion and the caller, then runs f.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, f handler) error {
	if err := checkMicroversion(r); err != nil {
		return err
	}
	c := auth.From(r.Context())
	if c == nil {
		return errf(http.StatusUnauthorized, "The request you have made requires authentication.")
	}
	return f(w, r, c)
}

func versionHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("OpenStack-API-Version", "compute "+Microversion)
	h.Set("X-OpenStack-Nova-API-Version", Microversion)
	h.Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}

// checkMicroversion accepts no version, "latest" or 2.1, from either header.
func checkMicroversion(r *http.Request) error {
	var asked []string
	for _, v := range r.Header.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(v, ",") {
			svc, ver, _ := strings.Cut(strings.TrimSpace(part), " ")
			if strings.EqualFold(svc, "compute") {
				asked = append(asked, strings.TrimSpace(ver))
			}
		}
	}
	if len(asked) == 0 {
		if v := r.Header.Get("X-OpenStack-Nova-API-Version"); v != "" {
			asked = append(asked, strings.TrimSpace(v))
		}
	}
	for _, v := range asked {
		if v == "" || strings.EqualFold(v, "latest") {
			continue
		}
		if maj, min, ok := strings.Cut(v, "."); ok {
			a, err1 := strconv.Atoi(maj)
			b, err2 := strconv.Atoi(min)
			if err1 == nil && err2 == nil && a == 2 && b == 1 {
				continue
			}
		}
		return errf(http.StatusNotAcceptable, "Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, Microversion, Microversion)
	}
	return nil
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Service) versionBody(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": Microversion, "min_version": Microversion,
		"updated": "2013-07-23T11:33:21Z",
		"links":   []link{{Rel: "self", Href: baseURL(r) + s.prefix + "/v2.1/"}},
	}
}

func (s *Service) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{s.versionBody(r)}})
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.versionBody(r)})
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// links are the self and bookmark links of a resource (collection is "flavors", "servers", ...).
func (s *Service) links(r *http.Request, collection, id string) []link {
	base := baseURL(r) + s.prefix
	return []link{
		{Rel: "self", Href: base + "/v2.1/" + collection + "/" + id},
		{Rel: "bookmark", Href: base + "/" + collection + "/" + id},
	}
}

func (s *Service) bookmark(r *http.Request, collection, id string) []link {
	return []link{{Rel: "bookmark", Href: baseURL(r) + s.prefix + "/" + collection + "/" + id}}
}

// Error is an API error with its HTTP status.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func errf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, format, args...)
}

// faultNames are the keys of Nova's error bodies by status.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	501: "notImplemented", 503: "serviceUnavailable",
}

// writeError is the one place that turns an error into an HTTP answer, in Nova's shape.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	var ne *neutron.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &ne):
		e = &Error{Status: ne.Status, Message: ne.Message}
	case errors.As(err, &mbe):
		e = errf(http.StatusRequestEntityTooLarge, "Request body is larger than the limit of %d bytes.", mbe.Limit)
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		log.Warn("store unavailable", "err", err)
		e = errf(http.StatusServiceUnavailable, "The store is unavailable; retry later.")
	case errors.Is(err, context.Canceled):
		e = errf(499, "The client closed the request.")
	default:
		log.Error("internal error", "err", err)
		e = errf(http.StatusInternalServerError, "Unexpected API Error: %s", err)
	}
	name, ok := faultNames[e.Status]
	if !ok {
		name = "computeFault"
	}
	writeJSON(w, e.Status, map[string]any{name: map[string]any{"code": e.Status, "message": e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// retry runs one optimistic write (store.Retry) with Nova's answer when it keeps losing.
func retry(ctx context.Context, fn func() error) error {
	err := store.Retry(ctx, 32, func(int) error { return fn() })
	if errors.Is(err, store.ErrContention) {
		return errf(http.StatusConflict, "The object changed concurrently too many times; retry the request.")
	}
	return err
}

// fields is one decoded request object ({"flavor": {...}} → the inner object).
type fields map[string]json.RawMessage

// decodeBody reads {"<resource>": {...}} and returns the inner object.
func decodeBody(r io.Reader, resource string) (fields, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil || env == nil {
		return nil, badRequest("Malformed request body: want a JSON object {\"%s\": {...}}.", resource)
	}
	inner, ok := env[resource]
	if !ok {
		return nil, badRequest("Malformed request body: the object %q is missing.", resource)
	}
	var f fields
	if err := json.Unmarshal(inner, &f); err != nil || f == nil {
		return nil, badRequest("Malformed request body: %q must be an object, got %s.", resource, clip(inner))
	}
	return f, nil
}

func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func (f fields) null(key string) bool {
	v, ok := f[key]
	return !ok || string(bytes.TrimSpace(v)) == "null"
}

// str reads a string field; ok is false when it is absent or null.
func (f fields) str(key string) (v string, ok bool, err error) {
	if f.null(key) {
		return "", false, nil
	}
	if err := json.Unmarshal(f[key], &v); err != nil {
		return "", false, badRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string'.", key, clip(f[key]), clip(f[key]))
	}
	return v, true, nil
}

// strOrInt reads a string or an integer as a string (flavor IDs, flavorRef).
func (f fields) strOrInt(key string) (string, bool, error) {
	if f.null(key) {
		return "", false, nil
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(f[key]))
	d.UseNumber()
	if err := d.Decode(&n); err == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String(), true, nil
		}
	}
	return f.str(key)
}

// integer reads an integer (or a string of digits, as Nova accepts) of at least min, def when absent.
func (f fields) integer(key string, min, def int) (int, error) {
	if f.null(key) {
		return def, nil
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(f[key]))
	d.UseNumber()
	var s string
	if err := d.Decode(&n); err == nil {
		s = n.String()
	} else if err := json.Unmarshal(f[key], &s); err != nil {
		s = "?"
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, badRequest("Invalid input for field/attribute %s. Value: %s. It is not an integer.", key, clip(f[key]))
	}
	if v < min {
		return 0, badRequest("Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of %d.", key, v, v, min)
	}
	return v, nil
}

func (f fields) boolean(key string, def bool) (bool, error) {
	if f.null(key) {
		return def, nil
	}
	var v bool
	if err := json.Unmarshal(f[key], &v); err == nil {
		return v, nil
	}
	var s string
	if err := json.Unmarshal(f[key], &s); err == nil {
		if b, ok := parseBool(s); ok {
			return b, nil
		}
	}
	return false, badRequest("Invalid input for field/attribute %s. Value: %s. It is not a boolean.", key, clip(f[key]))
}

// parseBool is oslo's strict bool_from_string.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

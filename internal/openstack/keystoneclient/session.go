package keystoneclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable is wrapped by the errors of a Session or a Validator when Keystone could not
// give an answer: it cannot be reached, it answered 5xx or something that is not Keystone's
// answer, or it refused the service user itself. It never wraps auth.ErrUnauthenticated: the
// caller's token may be fine, so the API answers 503, not 401.
var ErrUnavailable = errors.New("keystone unavailable")

// ErrLoginRefused is wrapped (together with ErrUnavailable) when Keystone refuses the service
// user's password login (4xx): a wrong user, password, project or domain, or a disabled user.
// Trying again does not help until the configuration or Keystone changes.
var ErrLoginRefused = errors.New("keystone refused the service login")

const (
	// requestTimeout bounds every request to Keystone (a login, a validation), also when the
	// HTTP client has no timeout of its own.
	requestTimeout = 15 * time.Second
	// loginRetryInterval: after a failed login, callers get its error for this long without
	// another login request, so an outage or a bad password does not turn every API request
	// into a login.
	loginRetryInterval = time.Second
	// maxRefreshMargin: a service token is renewed when less than min(5 minutes, a tenth of its
	// lifetime) is left.
	maxRefreshMargin = 5 * time.Minute
	// maxLoginAnswer and maxValidateAnswer bound the bodies read from Keystone (a login carries
	// the catalog; a validation asks for none).
	maxLoginAnswer    = 8 << 20
	maxValidateAnswer = 1 << 20
	userAgent         = "vflink-keystoneclient"
)

// SessionConfig says where and as whom a Session logs in: a Keystone v3 password login scoped
// to a project. Its String, GoString and LogValue hide the password.
type SessionConfig struct {
	// AuthURL is Keystone's v3 API, e.g. http://127.0.0.1:5000/v3; a URL without a path
	// (http://127.0.0.1:5000) gets /v3.
	AuthURL  string
	Username string
	Password string
	// ProjectName is the project the service token is scoped to (e.g. "service").
	ProjectName string
	// UserDomainName and ProjectDomainName default to "Default".
	UserDomainName    string
	ProjectDomainName string
	// Region picks the catalog's endpoints in Endpoint; empty: any region.
	Region string
	// HTTPClient sends the requests; nil: a client with a 15 s timeout.
	HTTPClient *http.Client
	// Logger gets the session's events (logins, refusals); nil: discarded.
	Logger *slog.Logger
}

// String describes the configuration without its password.
func (c SessionConfig) String() string {
	pw := "unset"
	if c.Password != "" {
		pw = "set"
	}
	return fmt.Sprintf("keystone %s user %q (domain %q) project %q (domain %q) region %q password %s",
		c.AuthURL, c.Username, c.UserDomainName, c.ProjectName, c.ProjectDomainName, c.Region, pw)
}

// GoString is String, so that %#v does not print the password either.
func (c SessionConfig) GoString() string { return c.String() }

// LogValue logs the configuration without its password.
func (c SessionConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("auth_url", c.AuthURL), slog.String("user", c.Username),
		slog.String("user_domain", c.UserDomainName), slog.String("project", c.ProjectName),
		slog.String("project_domain", c.ProjectDomainName), slog.String("region", c.Region),
		slog.Bool("password_set", c.Password != ""))
}

// Session is a service user's session with Keystone v3. It logs in with a password on first
// use, keeps the token until a caller reports it refused (Invalidate), renews it in the
// background shortly before it expires, and reads service endpoints from the catalog of its
// last login. It is safe for concurrent use; concurrent callers that need a login share one.
// It satisfies novanotify.Session.
type Session struct {
	cfg     SessionConfig
	authURL string // normalised, without trailing slash
	hc      *http.Client
	log     *slog.Logger
	now     func() time.Time

	logins flight[struct{}, *serviceToken]

	mu       sync.Mutex
	tok      *serviceToken // nil: none, or invalidated
	catalog  catalog       // of the last successful login; nil before it
	lastErr  error         // of the last login, when it failed
	lastFail time.Time
}

// serviceToken is the session's current token.
type serviceToken struct {
	id        string
	expires   time.Time // on the local clock: the login's time plus the token's lifetime
	refreshAt time.Time
	userID    string
	projectID string
}

// NewSession checks cfg and returns a session; it does not log in yet (Token does).
func NewSession(cfg SessionConfig) (*Session, error) {
	u, err := normaliseAuthURL(cfg.AuthURL)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, val string }{
		{"username", cfg.Username}, {"password", cfg.Password}, {"project name", cfg.ProjectName},
	} {
		if f.val == "" {
			return nil, fmt.Errorf("keystone session for %s: the %s is empty", u, f.name)
		}
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	cfg.AuthURL = u
	s := &Session{cfg: cfg, authURL: u, hc: cfg.HTTPClient, log: cfg.Logger, now: time.Now}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: requestTimeout}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "keystoneclient", "auth_url", u)
	return s, nil
}

// normaliseAuthURL checks a Keystone v3 URL and returns it without a trailing slash.
func normaliseAuthURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("keystone auth URL %q is not an absolute http(s) URL like http://127.0.0.1:5000/v3", redactURL(raw))
	}
	if u.User != nil {
		return "", fmt.Errorf("keystone auth URL %q carries user information; give the user and password in their own settings", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("keystone auth URL %q has a query or fragment; want Keystone's v3 API like http://127.0.0.1:5000/v3", u.Redacted())
	}
	p := strings.TrimRight(u.Path, "/")
	switch {
	case p == "":
		p = "/v3"
	case !strings.HasSuffix(p, "/v3"):
		return "", fmt.Errorf("keystone auth URL %q does not end in /v3; want Keystone's v3 API like http://127.0.0.1:5000/v3", u.Redacted())
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// redactURL hides the password of a URL that may not parse.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "xxxxx" + raw[i:]
		}
		return "xxxxx" + raw[i:]
	}
	return raw
}

// AuthURL is the Keystone v3 URL the session logs in at (normalised: no trailing slash).
func (s *Session) AuthURL() string { return s.authURL }

// Username is the service user's name.
func (s *Session) Username() string { return s.cfg.Username }

// Token returns the service token, logging in when the session has none or after Invalidate.
// When less than min(5 minutes, a tenth of its lifetime) is left of the token, a login renews
// it in the background while the current token is still returned (also when that renewal
// fails, until the token expires). Concurrent callers share one login. A failed login's error
// is returned for a second without another request. Errors wrap ErrUnavailable (and
// ErrLoginRefused when Keystone refused the credentials); they never contain the password.
func (s *Session) Token(ctx context.Context) (string, error) {
	t, err := s.current(ctx)
	if err != nil {
		return "", err
	}
	return t.id, nil
}

// Invalidate forgets token, which a service refused (401), so that the next Token logs in
// again. A token that is no longer the session's current one is ignored, so callers that got
// 401 with the same token cause one login between them.
func (s *Session) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.id == token {
		s.tok = nil
		s.log.Info("service token invalidated, logging in again at next use", "user", s.cfg.Username)
	}
}

// current returns a usable token, logging in when needed. A token in its renewal window is
// returned at once while a login renews it in the background, so no caller waits on Keystone
// while the session has a valid token.
func (s *Session) current(ctx context.Context) (*serviceToken, error) {
	now := s.now()
	s.mu.Lock()
	t := s.tok
	if t != nil && now.Before(t.refreshAt) {
		s.mu.Unlock()
		return t, nil
	}
	lastErr := s.lastErr
	recentFailure := lastErr != nil && now.Sub(s.lastFail) < loginRetryInterval
	s.mu.Unlock()
	login := func() (*serviceToken, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
		defer cancel()
		return s.login(lctx)
	}
	if t != nil && now.Before(t.expires) {
		if !recentFailure {
			s.logins.start(struct{}{}, login)
		}
		return t, nil
	}
	if recentFailure {
		return nil, lastErr
	}
	nt, _, err := s.logins.do(ctx, struct{}{}, login)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("log in at keystone %s: %w: %w", s.authURL, ErrUnavailable, ctx.Err())
		}
		return nil, err
	}
	return nt, nil
}

// loginRequest is the body of a password login scoped to a project.
type loginRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string `json:"name"`
					Domain   named  `json:"domain"`
					Password string `json:"password"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope struct {
			Project struct {
				Name   string `json:"name"`
				Domain named  `json:"domain"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

type named struct {
	Name string `json:"name"`
}

// tokenAnswer is the body of a login or a validation (POST or GET /v3/auth/tokens).
type tokenAnswer struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		IssuedAt  string `json:"issued_at"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"project"`
		Roles []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"roles"`
		Catalog catalog `json:"catalog"`
	} `json:"token"`
}

// login does one password login and makes its token the session's.
func (s *Session) login(ctx context.Context) (*serviceToken, error) {
	t, cat, err := s.doLogin(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.lastFail = err, s.now()
		s.log.Warn("service login failed", "user", s.cfg.Username, "project", s.cfg.ProjectName, "err", err)
		return nil, err
	}
	if cat == nil {
		cat = catalog{} // a login without a catalog: Endpoint must not log in again
	}
	s.tok, s.catalog, s.lastErr = t, cat, nil
	s.log.Info("service user logged in", "user", s.cfg.Username, "project", s.cfg.ProjectName,
		"expires_at", t.expires.UTC().Format(time.RFC3339), "catalog_services", len(cat))
	return t, nil
}

func (s *Session) doLogin(ctx context.Context) (*serviceToken, catalog, error) {
	var lr loginRequest
	lr.Auth.Identity.Methods = []string{"password"}
	lr.Auth.Identity.Password.User.Name = s.cfg.Username
	lr.Auth.Identity.Password.User.Domain.Name = s.cfg.UserDomainName
	lr.Auth.Identity.Password.User.Password = s.cfg.Password
	lr.Auth.Scope.Project.Name = s.cfg.ProjectName
	lr.Auth.Scope.Project.Domain.Name = s.cfg.ProjectDomainName
	body, err := json.Marshal(lr)
	if err != nil {
		return nil, nil, fmt.Errorf("encode login of %q: %w", s.cfg.Username, err)
	}
	who := fmt.Sprintf("user %q (domain %q) to project %q (domain %q) at keystone %s",
		s.cfg.Username, s.cfg.UserDomainName, s.cfg.ProjectName, s.cfg.ProjectDomainName, s.authURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.authURL+"/auth/tokens", bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("log in %s: %w", who, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	// A login may be sent again when a kept-alive connection turns out closed before the answer
	// (uwsgi's --http-socket closes connections without saying so): at worst Keystone issues a
	// token nobody uses. A nil Idempotency-Key tells net/http so without sending the header.
	req.Header["Idempotency-Key"] = nil
	start := s.now()
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("log in %s: %w: %w", who, ErrUnavailable, err)
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxLoginAnswer))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return nil, nil, fmt.Errorf("log in %s: %w: %s", who, ErrUnavailable, describeAnswer(resp, data))
	case resp.StatusCode >= 400:
		return nil, nil, fmt.Errorf("log in %s: %w: %w: %s; check the user, password, project and their domains",
			who, ErrUnavailable, ErrLoginRefused, describeAnswer(resp, data))
	case resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("log in %s: %w: %s, want 201 Created", who, ErrUnavailable, describeAnswer(resp, data))
	}
	if rerr != nil {
		return nil, nil, fmt.Errorf("log in %s: read the answer: %w: %w", who, ErrUnavailable, rerr)
	}
	id := resp.Header.Get("X-Subject-Token")
	if id == "" {
		return nil, nil, fmt.Errorf("log in %s: %w: the answer has no X-Subject-Token header", who, ErrUnavailable)
	}
	var a tokenAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, nil, fmt.Errorf("log in %s: %w: the answer is not a token: %v", who, ErrUnavailable, err)
	}
	exp, err := parseTime(a.Token.ExpiresAt)
	if err != nil {
		return nil, nil, fmt.Errorf("log in %s: %w: token.expires_at: %v", who, ErrUnavailable, err)
	}
	// The lifetime on the local clock: Keystone's clock may differ from ours.
	lifetime := exp.Sub(start)
	if iss, err := parseTime(a.Token.IssuedAt); err == nil && exp.After(iss) {
		lifetime = exp.Sub(iss)
	}
	if lifetime <= 0 {
		return nil, nil, fmt.Errorf("log in %s: %w: the token expires at %s, before it was issued or received",
			who, ErrUnavailable, a.Token.ExpiresAt)
	}
	t := &serviceToken{id: id, expires: start.Add(lifetime), userID: a.Token.User.ID}
	if a.Token.Project != nil {
		t.projectID = a.Token.Project.ID
	}
	t.refreshAt = t.expires.Add(-min(maxRefreshMargin, lifetime/10))
	return t, a.Token.Catalog, nil
}

// parseTime reads Keystone's timestamps (2026-12-07T12:55:36.000000Z).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time like 2026-12-07T12:55:36.000000Z", s)
	}
	return t, nil
}

// describeAnswer summarises a Keystone answer that is not the one wanted: its status, Keystone's
// error message ({"error": {"code", "title", "message"}}) and request ID.
func describeAnswer(resp *http.Response, data []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		msg = ": " + e.Error.Message
	}
	if id := resp.Header.Get("X-Openstack-Request-Id"); id != "" {
		msg += " (request " + id + ")"
	}
	status := resp.Status // Keystone's are upper case: "404 NOT FOUND"
	if t := http.StatusText(resp.StatusCode); t != "" {
		status = fmt.Sprintf("%d %s", resp.StatusCode, t)
	}
	return status + msg
}

// Endpoint returns the URL of the service of type serviceType ("compute", "network", "image",
// ...) for interface iface ("public", "internal" or "admin"; "publicURL" and the like are
// accepted, "" is "public") in the session's region (any region when it has none), from the
// catalog of the session's last login (logging in when there was none). The error for a
// service the catalog lacks names the type, interface and region and lists what it holds.
func (s *Session) Endpoint(ctx context.Context, serviceType, iface string) (string, error) {
	i := strings.TrimSuffix(iface, "URL")
	if i == "" {
		i = "public"
	}
	if i != "public" && i != "internal" && i != "admin" {
		return "", fmt.Errorf("endpoint interface %q is not one of public, internal, admin", iface)
	}
	s.mu.Lock()
	cat := s.catalog
	s.mu.Unlock()
	if cat == nil {
		if _, err := s.current(ctx); err != nil {
			return "", fmt.Errorf("find the %s endpoint: %w", serviceType, err)
		}
		s.mu.Lock()
		cat = s.catalog
		s.mu.Unlock()
	}
	u, err := cat.endpoint(serviceType, i, s.cfg.Region)
	if err != nil {
		return "", fmt.Errorf("%w (service catalog of user %q in project %q from keystone %s)",
			err, s.cfg.Username, s.cfg.ProjectName, s.authURL)
	}
	return u, nil
}

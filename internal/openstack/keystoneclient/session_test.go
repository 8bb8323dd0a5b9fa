package keystoneclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vflink/vflink/internal/auth"
)

// sessionAPI is what novanotify.Session asks of a Session.
type sessionAPI interface {
	Token(ctx context.Context) (string, error)
	Invalidate(token string)
	Endpoint(ctx context.Context, serviceType, iface string) (string, error)
}

var _ sessionAPI = (*Session)(nil)

const secretPW = "s3cret-Pa55word"

func TestNewSessionChecksConfig(t *testing.T) {
	good := SessionConfig{AuthURL: "http://127.0.0.1:5000/v3", Username: "neutron", Password: secretPW, ProjectName: "service"}
	tests := []struct {
		name string
		mod  func(*SessionConfig)
		want string // in the error; "" = no error
		url  string // AuthURL after normalisation
	}{
		{"ok", func(*SessionConfig) {}, "", "http://127.0.0.1:5000/v3"},
		{"trailing slash", func(c *SessionConfig) { c.AuthURL = "http://127.0.0.1:5000/v3/" }, "", "http://127.0.0.1:5000/v3"},
		{"no path gets /v3", func(c *SessionConfig) { c.AuthURL = "https://keystone.example:5000" }, "", "https://keystone.example:5000/v3"},
		{"prefixed path", func(c *SessionConfig) { c.AuthURL = "http://h/identity/v3" }, "", "http://h/identity/v3"},
		{"v2", func(c *SessionConfig) { c.AuthURL = "http://h:5000/v2.0" }, `keystone auth URL "http://h:5000/v2.0" does not end in /v3`, ""},
		{"not absolute", func(c *SessionConfig) { c.AuthURL = "keystone:5000" }, `keystone auth URL "keystone:5000" is not an absolute http(s) URL`, ""},
		{"empty", func(c *SessionConfig) { c.AuthURL = "" }, `keystone auth URL "" is not an absolute`, ""},
		{"user info", func(c *SessionConfig) { c.AuthURL = "http://neutron:" + secretPW + "@h:5000/v3" }, "carries user information", ""},
		{"query", func(c *SessionConfig) { c.AuthURL = "http://h:5000/v3?x=1" }, "has a query", ""},
		{"no user", func(c *SessionConfig) { c.Username = "" }, "the username is empty", ""},
		{"no password", func(c *SessionConfig) { c.Password = "" }, "the password is empty", ""},
		{"no project", func(c *SessionConfig) { c.ProjectName = "" }, "the project name is empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			s, err := NewSession(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NewSession: %v", err)
				}
				if s.AuthURL() != tt.url {
					t.Errorf("AuthURL() = %q, want %q", s.AuthURL(), tt.url)
				}
				if s.cfg.UserDomainName != "Default" || s.cfg.ProjectDomainName != "Default" {
					t.Errorf("domains %q/%q, want Default/Default", s.cfg.UserDomainName, s.cfg.ProjectDomainName)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSession error %v, want one containing %q", err, tt.want)
			}
			assertNoSecret(t, "error", err.Error(), secretPW)
		})
	}
}

func TestSessionConfigHidesPassword(t *testing.T) {
	cfg := SessionConfig{AuthURL: "http://127.0.0.1:5000/v3", Username: "neutron", Password: secretPW, ProjectName: "service"}
	var lb logBuffer
	lb.logger().Info("config", "keystone", cfg)
	slog.New(slog.NewTextHandler(&lb, nil)).Info("config", "keystone", cfg)
	out := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg) + lb.String()
	assertNoSecret(t, "printed config", out, secretPW)
	if !strings.Contains(out, `"neutron"`) || !strings.Contains(out, "password set") || !strings.Contains(out, `"password_set":true`) {
		t.Errorf("printed config lacks the user or password_set:\n%s", out)
	}
}

func TestTokenLogsInOnceAndRefreshesBeforeExpiry(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	s := f.session(t, nil)
	ctx := context.Background()
	tok, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []any{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "neutron", "domain": map[string]any{"name": "Default"}, "password": "s3rvice-Pa55word"}}},
		"scope": map[string]any{"project": map[string]any{"name": "service", "domain": map[string]any{"name": "Default"}}},
	}}
	if d := cmp.Diff(want, f.lastLogin); d != "" {
		t.Errorf("login body (-want +got):\n%s", d)
	}
	for range 3 {
		if again, _ := s.Token(ctx); again != tok {
			t.Fatalf("Token changed without need")
		}
	}
	// 1 h lifetime: renewed when less than min(5 min, 6 min) is left.
	c.advance(54 * time.Minute)
	if again, _ := s.Token(ctx); again != tok || f.logins.Load() != 1 {
		t.Fatalf("after 54 min of 60: logins %d, token changed %v; want 1 login, same token", f.logins.Load(), again != tok)
	}
	c.advance(2 * time.Minute)
	tok2 := renewedToken(t, s, tok)
	if n := f.logins.Load(); n != 2 {
		t.Fatalf("after 56 min of 60: %d logins, want 2", n)
	}
	// 10 min lifetime: renewed when less than a tenth (1 min) is left.
	f.lifetime = 10 * time.Minute
	s.Invalidate(tok2)
	tok3, _ := s.Token(ctx)
	c.advance(8*time.Minute + 30*time.Second)
	if again, _ := s.Token(ctx); again != tok3 {
		t.Fatalf("after 8.5 min of 10: token renewed, want the same")
	}
	c.advance(time.Minute)
	renewedToken(t, s, tok3)
	if n := f.logins.Load(); n != 4 {
		t.Errorf("logins %d, want 4", n)
	}
}

// renewedToken checks that Token still returns old, which is in its renewal window, and
// then, once the background login is done, a new one.
func renewedToken(t *testing.T, s *Session, old string) string {
	t.Helper()
	if got, err := s.Token(context.Background()); err != nil || got != old {
		t.Fatalf("Token in the renewal window: err %v, same token %v; want the current one at once", err, got == old)
	}
	var got string
	waitFor(t, "the background renewal", func() bool { got, _ = s.Token(context.Background()); return got != old })
	return got
}

func TestRenewalDoesNotMakeCallersWait(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	s := f.session(t, nil)
	tok, _ := s.Token(context.Background())
	c.advance(57 * time.Minute)
	release := f.hold(true) // Keystone hangs
	for range 10 {
		if got, err := s.Token(context.Background()); err != nil || got != tok {
			t.Fatalf("Token during a hanging renewal: err %v, same %v; want the current token", err, got == tok)
		}
	}
	release()
	renewed := ""
	waitFor(t, "the renewal", func() bool { renewed, _ = s.Token(context.Background()); return renewed != tok })
	if n := f.logins.Load(); n != 2 {
		t.Errorf("%d logins, want 2: callers in the renewal window share one", n)
	}
}

func TestInvalidate(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	ctx := context.Background()
	tok, _ := s.Token(ctx)
	s.Invalidate("some-other-token")
	if again, _ := s.Token(ctx); again != tok {
		t.Fatal("Invalidate of another token dropped the current one")
	}
	s.Invalidate(tok)
	tok2, err := s.Token(ctx)
	if err != nil || tok2 == tok {
		t.Fatalf("after Invalidate: new token %v, err %v; want a new login", tok2 != tok, err)
	}
	s.Invalidate(tok) // a late caller with the old token
	if again, _ := s.Token(ctx); again != tok2 || f.logins.Load() != 2 {
		t.Fatalf("Invalidate of the old token caused another login (%d logins)", f.logins.Load())
	}
}

func TestConcurrentTokenCallersShareOneLogin(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	release := f.hold(true)
	const n = 20
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = s.Token(context.Background()) })
	}
	waitFor(t, "19 callers waiting for the first one's login", func() bool { return s.logins.waiting(struct{}{}) == n-1 })
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: err %v, same token %v", i, errs[i], toks[i] == toks[0])
		}
	}
	if got := f.logins.Load(); got != 1 {
		t.Errorf("logins %d, want 1", got)
	}
}

func TestTokenCallerContextEnds(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	release := f.hold(true)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := s.Token(ctx); done <- err }()
	waitFor(t, "the login request", func() bool { return f.logins.Load() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Token with a cancelled context: %v, want context.Canceled and ErrUnavailable", err)
	}
	release()
	// the login went on and its token is the session's
	waitFor(t, "the login to finish", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.tok != nil })
	if _, err := s.Token(context.Background()); err != nil || f.logins.Load() != 1 {
		t.Fatalf("Token after the abandoned login: err %v, logins %d; want its token", err, f.logins.Load())
	}
}

func TestLoginRefused(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	var lb logBuffer
	s := f.session(t, func(cfg *SessionConfig) { cfg.Password = secretPW; cfg.Logger = lb.logger() })
	_, err := s.Token(context.Background())
	if !errors.Is(err, ErrLoginRefused) || !errors.Is(err, ErrUnavailable) || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("wrong password: %v, want ErrLoginRefused and ErrUnavailable, not auth.ErrUnauthenticated", err)
	}
	for _, w := range []string{`user "neutron" (domain "Default") to project "service" (domain "Default")`, "401 Unauthorized",
		"The request you have made requires authentication.", "check the user, password"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	assertNoSecret(t, "error", err.Error(), secretPW)
	assertNoSecret(t, "log", lb.String(), secretPW)
	// a second caller within a second gets the same error without another request
	if _, err2 := s.Token(context.Background()); err2 == nil || f.logins.Load() != 1 {
		t.Fatalf("second Token: err %v, logins %d; want the error, 1 login", err2, f.logins.Load())
	}
	c.advance(time.Second)
	s.Token(context.Background())
	if n := f.logins.Load(); n != 2 {
		t.Errorf("a second later: logins %d, want 2", n)
	}
}

func TestLoginUnavailable(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	s := f.session(t, nil)
	f.status.Store(503)
	_, err := s.Token(context.Background())
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrLoginRefused) || !strings.Contains(err.Error(), "503 Service Unavailable: fake outage") {
		t.Fatalf("503: %v, want ErrUnavailable naming 503 and Keystone's message, not ErrLoginRefused", err)
	}
	f.srv.Close()
	c.advance(time.Second)
	if _, err = s.Token(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed server: %v, want ErrUnavailable", err)
	}
}

func TestLoginAnswerNotAToken(t *testing.T) {
	tests := []struct {
		name, want string
		h          http.HandlerFunc
	}{
		{"no subject token", "no X-Subject-Token header", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(201)
			w.Write([]byte(`{"token": {"expires_at": "2026-12-07T13:00:00.000000Z"}}`))
		}},
		{"bad expiry", `token.expires_at: "tomorrow" is not a time`, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Subject-Token", "tok")
			w.WriteHeader(201)
			w.Write([]byte(`{"token": {"expires_at": "tomorrow"}}`))
		}},
		{"not json", "the answer is not a token", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Subject-Token", "tok")
			w.WriteHeader(201)
			w.Write([]byte(`<html>proxy</html>`))
		}},
		{"302", "302 Found, want 201 Created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(302) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.h)
			defer srv.Close()
			s, _ := NewSession(SessionConfig{AuthURL: srv.URL + "/v3", Username: "u", Password: secretPW, ProjectName: "p"})
			_, err := s.Token(context.Background())
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrUnavailable containing %q", err, tt.want)
			}
		})
	}
}

func TestFailedRenewalKeepsTheValidToken(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	s := f.session(t, nil)
	tok, _ := s.Token(context.Background())
	f.status.Store(503)
	c.advance(57 * time.Minute) // in the renewal window
	got, err := s.Token(context.Background())
	if err != nil || got != tok {
		t.Fatalf("renewal failed with a valid token: err %v, same token %v; want the current token", err, got == tok)
	}
	waitFor(t, "the failed renewal", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.lastErr != nil })
	if got, err := s.Token(context.Background()); err != nil || got != tok || f.logins.Load() != 2 {
		t.Fatalf("after the failed renewal: err %v, same token %v, %d logins; want the current token, 2 logins", err, got == tok, f.logins.Load())
	}
	c.advance(3 * time.Minute) // expired now
	if _, err := s.Token(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("renewal failed, token expired: %v, want ErrUnavailable", err)
	}
}

func TestEndpoint(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	tests := []struct {
		region, typ, iface string
		want, err          string
	}{
		{"", "compute", "public", "http://nova-one:8774/v2.1", ""},
		{"", "compute", "", "http://nova-one:8774/v2.1", ""},
		{"", "compute", "publicURL", "http://nova-one:8774/v2.1", ""},
		{"", "compute", "internal", "http://nova-one-int:8774/v2.1", ""},
		{"RegionTwo", "compute", "public", "http://nova-two:8774/v2.1", ""},
		{"", "network", "public", "http://neutron-two:9696", ""},
		{"RegionTwo", "compute", "internal", "", `no "compute" endpoint with interface "internal" in region "RegionTwo" in the service catalog; ` +
			`it holds identity (public/RegionOne), compute (public/RegionOne, internal/RegionOne, public/RegionTwo), network (public/RegionTwo) ` +
			`(service catalog of user "neutron" in project "service" from keystone ` + f.url() + ")"},
		{"RegionOne", "network", "public", "", `no "network" endpoint with interface "public" in region "RegionOne"`},
		{"", "image", "admin", "", `no "image" endpoint with interface "admin" in any region`},
		{"", "compute", "private", "", `endpoint interface "private" is not one of public, internal, admin`},
	}
	for _, tt := range tests {
		t.Run(tt.region+"/"+tt.typ+"/"+tt.iface, func(t *testing.T) {
			s := f.session(t, func(c *SessionConfig) { c.Region = tt.region })
			got, err := s.Endpoint(context.Background(), tt.typ, tt.iface)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Endpoint error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Endpoint = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// the catalog is the last login's, kept across Invalidate: no login per lookup
	s := f.session(t, nil)
	before := f.logins.Load()
	for range 3 {
		s.Endpoint(context.Background(), "compute", "public")
	}
	tok, _ := s.Token(context.Background())
	s.Invalidate(tok)
	if _, err := s.Endpoint(context.Background(), "compute", "public"); err != nil || f.logins.Load() != before+1 {
		t.Errorf("Endpoint after Invalidate: err %v, logins %d; want the kept catalog, 1 login", err, f.logins.Load()-before)
	}
}

func TestEndpointEmptyCatalogAndLoginFailure(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	f.catalog = nil
	s := f.session(t, nil)
	_, err := s.Endpoint(context.Background(), "compute", "public")
	if err == nil || !strings.Contains(err.Error(), "the catalog is empty") {
		t.Fatalf("empty catalog: %v, want it named", err)
	}
	s2 := f.session(t, func(c *SessionConfig) { c.Password = secretPW })
	_, err = s2.Endpoint(context.Background(), "compute", "public")
	if !errors.Is(err, ErrLoginRefused) || !strings.Contains(err.Error(), "find the compute endpoint") {
		t.Fatalf("Endpoint with a refused login: %v, want ErrLoginRefused", err)
	}
	assertNoSecret(t, "error", err.Error(), secretPW)
}

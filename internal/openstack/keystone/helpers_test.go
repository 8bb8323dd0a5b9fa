package keystone_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/keystone"
	"github.com/vflink/vflink/internal/store"
)

const (
	publicURL = "http://vflink.test:9696"
	adminPass = "adm1n-S3cret-Passw0rd"
)

// clock is a test clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one identity server over a real embedded etcd member, behind a middleware that
// authenticates like the lead's server does.
type env struct {
	t      testing.TB
	url    string
	st     *store.Store
	ks     *keystone.Service
	clock  *clock
	logs   *syncBuffer
	mu     sync.Mutex
	bodies bytes.Buffer // every response body, to check that no secret leaks
}

// openRoutes are the routes the server answers without a token.
var openRoutes = map[string]bool{"GET /v3": true, "GET /v3/": true, "POST /v3/auth/tokens": true, "GET /identity/": true}

func middleware(a auth.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openRoutes[r.Method+" "+r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		c, err := a.Authenticate(r)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, auth.ErrUnauthenticated) {
				code = http.StatusUnauthorized
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "title": http.StatusText(code), "message": err.Error()}})
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.With(r.Context(), c)))
	})
}

func newEnv(t testing.TB, mod ...func(*keystone.Config)) *env {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e := &env{t: t, st: st, clock: &clock{now: time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	cfg := keystone.Config{
		PublicURL: publicURL, PasswordCost: bcrypt.MinCost, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&cfg)
	}
	e.ks = keystone.New(st, cfg)
	created, err := e.ks.Bootstrap(context.Background(), adminPass)
	if err != nil || !created {
		t.Fatalf("bootstrap: created %v, err %v; want true, nil", created, err)
	}
	mux := http.NewServeMux()
	e.ks.Register(mux)
	srv := httptest.NewServer(middleware(e.ks, mux))
	e.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return e
}

// resp is one API answer.
type resp struct {
	code int
	hdr  http.Header
	body map[string]any
	raw  string
}

func (r resp) obj(k string) map[string]any {
	m, _ := r.body[k].(map[string]any)
	return m
}

func (r resp) list(k string) []map[string]any {
	l, _ := r.body[k].([]any)
	out := make([]map[string]any, 0, len(l))
	for _, v := range l {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

func (r resp) errMsg() string {
	m, _ := r.obj("error")["message"].(string)
	return m
}

// do sends a request; hdr are name, value pairs (X-Auth-Token first, usually).
func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.bodies.Write(b)
	for k, v := range r.Header {
		if k != "X-Subject-Token" {
			e.bodies.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
	}
	e.mu.Unlock()
	out := resp{code: r.StatusCode, hdr: r.Header, raw: string(b)}
	json.Unmarshal(b, &out.body)
	return out
}

// must asserts a status code and returns the answer.
func (e *env) must(code int, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, hdr...)
	if r.code != code {
		e.t.Fatalf("%s %s: got %d %s, want %d", method, path, r.code, r.raw, code)
	}
	return r
}

// as is the header pair carrying a token.
func as(token string) []string { return []string{"X-Auth-Token", token} }

func passwordBody(user map[string]any, scope any) map[string]any {
	a := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": user}}}
	if scope != nil {
		a["scope"] = scope
	}
	return map[string]any{"auth": a}
}

// byName is the body the openstack CLI sends: user and project by name in domain Default.
func byName(user, password, project string) map[string]any {
	var scope any
	if project != "" {
		scope = map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"name": "Default"}}}
	}
	return passwordBody(map[string]any{"name": user, "password": password, "domain": map[string]any{"name": "Default"}}, scope)
}

// login logs in by name and returns the token and the token body.
func (e *env) login(user, password, project string) (string, map[string]any) {
	e.t.Helper()
	r := e.must(201, "POST", "/v3/auth/tokens", byName(user, password, project))
	tok := r.hdr.Get("X-Subject-Token")
	if tok == "" {
		e.t.Fatalf("login %s: no X-Subject-Token header", user)
	}
	return tok, r.obj("token")
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func sub(m map[string]any, k string) map[string]any {
	v, _ := m[k].(map[string]any)
	return v
}

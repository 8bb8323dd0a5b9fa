package keystoneclient

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock shared by the fake Keystone, the Session and the Validator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeUser struct {
	id, name, password, project string
	roles                       []string // on project
}

type fakeToken struct {
	user      *fakeUser
	project   string // "" unscoped; project name
	domain    string // domain-scoped: domain ID
	roles     []string
	issued    time.Time
	expires   time.Time
	revoked   bool
	refuse401 bool // validation of it answers 401 (some deployments do for a subject token)
}

// fakeKeystone is the part of Keystone v3 the package uses: password login scoped to a project
// (POST /v3/auth/tokens) and validation (GET /v3/auth/tokens), in Keystone 22's JSON shapes.
type fakeKeystone struct {
	t        *testing.T
	srv      *httptest.Server
	clock    *clock
	lifetime time.Duration
	catalog  []map[string]any

	mu     sync.Mutex
	users  map[string]*fakeUser
	tokens map[string]*fakeToken
	// validators are the users whose tokens may validate others' (the admin or service role).
	validators map[string]bool
	lastLogin  map[string]any

	logins, validations atomic.Int64
	// status, when non-zero, is the answer to every request (e.g. 503).
	status atomic.Int32
	// validateStatus, when non-zero, is the answer to every validation.
	validateStatus atomic.Int32
	// gate, when set, holds logins (gateLogin) or validations until it is closed.
	gateMu    sync.Mutex
	gate      chan struct{}
	gateLogin bool
}

func newFakeKeystone(t *testing.T, c *clock) *fakeKeystone {
	f := &fakeKeystone{t: t, clock: c, lifetime: time.Hour,
		users: map[string]*fakeUser{}, tokens: map[string]*fakeToken{}, validators: map[string]bool{}}
	f.addUser(&fakeUser{name: "neutron", password: "s3rvice-Pa55word", project: "service", roles: []string{"admin", "member", "reader", "service"}})
	f.validators["neutron"] = true
	f.addUser(&fakeUser{name: "demo", password: "demo-Pa55word", project: "demo", roles: []string{"member", "reader"}})
	f.addUser(&fakeUser{name: "boss", password: "boss-Pa55word", project: "demo", roles: []string{"admin", "member", "reader"}})
	f.addUser(&fakeUser{name: "rdr", password: "rdr-Pa55word", project: "demo", roles: []string{"reader"}})
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.catalog = []map[string]any{
		{"type": "identity", "name": "keystone", "id": "s1", "endpoints": []map[string]any{
			ep("public", "RegionOne", f.srv.URL+"/v3")}},
		{"type": "compute", "name": "nova", "id": "s2", "endpoints": []map[string]any{
			ep("public", "RegionOne", "http://nova-one:8774/v2.1"),
			ep("internal", "RegionOne", "http://nova-one-int:8774/v2.1"),
			ep("public", "RegionTwo", "http://nova-two:8774/v2.1")}},
		{"type": "network", "name": "neutron", "id": "s3", "endpoints": []map[string]any{
			ep("public", "RegionTwo", "http://neutron-two:9696")}},
	}
	return f
}

func ep(iface, region, url string) map[string]any {
	return map[string]any{"id": iface + region, "interface": iface, "region_id": region, "region": region, "url": url}
}

func (f *fakeKeystone) url() string { return f.srv.URL + "/v3" }

func (f *fakeKeystone) addUser(u *fakeUser) {
	u.id = "uid-" + u.name
	f.users[u.name] = u
}

func newID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "gAAAAAB" + hex.EncodeToString(b)
}

// issue makes a token for user name directly (a token some client got from Keystone).
func (f *fakeKeystone) issue(name, project, domain string, lifetime time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[name]
	now := f.clock.now()
	tk := &fakeToken{user: u, project: project, domain: domain, issued: now, expires: now.Add(lifetime)}
	if project != "" || domain != "" {
		tk.roles = u.roles
	}
	id := newID()
	f.tokens[id] = tk
	return id
}

func (f *fakeKeystone) revoke(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[id].revoked = true
}

// revokeUser revokes every token of user name (a password change, a disabled user).
func (f *fakeKeystone) revokeUser(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tk := range f.tokens {
		if tk.user.name == name {
			tk.revoked = true
		}
	}
}

// hold makes logins (login true) or validations wait until the returned function is called.
func (f *fakeKeystone) hold(login bool) (release func()) {
	f.gateMu.Lock()
	defer f.gateMu.Unlock()
	f.gate, f.gateLogin = make(chan struct{}), login
	ch := f.gate
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (f *fakeKeystone) wait(login bool) {
	f.gateMu.Lock()
	ch, l := f.gate, f.gateLogin
	f.gateMu.Unlock()
	if ch != nil && l == login {
		<-ch
	}
}

func kerror(w http.ResponseWriter, code int, title, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Openstack-Request-Id", "req-"+newID()[7:15])
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="http://keystone/v3"`)
	}
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "title": title, "message": msg}})
}

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v3/auth/tokens" {
		kerror(w, 404, "Not Found", "no such path "+r.URL.Path)
		return
	}
	switch r.Method {
	case http.MethodPost:
		f.logins.Add(1)
	case http.MethodGet:
		f.validations.Add(1)
	}
	if s := f.status.Load(); s != 0 {
		kerror(w, int(s), http.StatusText(int(s)), "fake outage")
		return
	}
	switch r.Method {
	case http.MethodPost:
		f.wait(true)
		f.login(w, r)
	case http.MethodGet:
		f.wait(false)
		if s := f.validateStatus.Load(); s != 0 {
			kerror(w, int(s), http.StatusText(int(s)), "fake validation failure")
			return
		}
		f.validate(w, r)
	default:
		kerror(w, 405, "Method Not Allowed", r.Method)
	}
}

func (f *fakeKeystone) login(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		kerror(w, 400, "Bad Request", err.Error())
		return
	}
	var lr loginRequest
	b, _ := json.Marshal(body)
	json.Unmarshal(b, &lr)
	f.mu.Lock()
	f.lastLogin = body
	u := f.users[lr.Auth.Identity.Password.User.Name]
	ok := u != nil && u.password == lr.Auth.Identity.Password.User.Password &&
		lr.Auth.Identity.Password.User.Domain.Name == "Default" &&
		lr.Auth.Scope.Project.Name == u.project && lr.Auth.Scope.Project.Domain.Name == "Default"
	f.mu.Unlock()
	if !ok {
		kerror(w, 401, "Unauthorized", "The request you have made requires authentication.")
		return
	}
	id := f.issue(u.name, u.project, "", f.lifetime)
	f.mu.Lock()
	tk := f.tokens[id]
	a := f.answer(tk)
	f.mu.Unlock()
	a["token"].(map[string]any)["catalog"] = f.catalog
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Subject-Token", id)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(a)
}

// usable reports whether tk is a token Keystone accepts now.
func (f *fakeKeystone) usable(tk *fakeToken) bool {
	return tk != nil && !tk.revoked && f.clock.now().Before(tk.expires)
}

func (f *fakeKeystone) validate(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.URL.Query()["nocatalog"]; !ok {
		f.t.Errorf("validation %s without ?nocatalog", r.URL)
	}
	f.mu.Lock()
	svc := f.tokens[r.Header.Get("X-Auth-Token")]
	sub := f.tokens[r.Header.Get("X-Subject-Token")]
	if !f.usable(svc) {
		f.mu.Unlock()
		kerror(w, 401, "Unauthorized", "The request you have made requires authentication.")
		return
	}
	if !f.validators[svc.user.name] && svc != sub {
		f.mu.Unlock()
		kerror(w, 403, "Forbidden", "You are not authorized to perform the requested action: identity:validate_token.")
		return
	}
	if sub != nil && sub.refuse401 {
		f.mu.Unlock()
		kerror(w, 401, "Unauthorized", "The request you have made requires authentication.")
		return
	}
	if !f.usable(sub) {
		f.mu.Unlock()
		kerror(w, 404, "Not Found", "Could not recognize Fernet token")
		return
	}
	a := f.answer(sub)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	json.NewEncoder(w).Encode(a)
}

// answer is Keystone 22's token body (without the catalog), as seen from the real one.
func (f *fakeKeystone) answer(tk *fakeToken) map[string]any {
	dom := map[string]any{"id": "default", "name": "Default"}
	t := map[string]any{
		"methods":    []string{"password"},
		"user":       map[string]any{"domain": dom, "id": tk.user.id, "name": tk.user.name, "password_expires_at": nil},
		"audit_ids":  []string{"yUJOmgdBSLiZDHmaWk4dXA"},
		"expires_at": tk.expires.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  tk.issued.UTC().Format("2006-01-02T15:04:05.000000Z"),
	}
	if tk.project != "" {
		t["project"] = map[string]any{"domain": dom, "id": "pid-" + tk.project, "name": tk.project}
		t["is_domain"] = false
	}
	if tk.domain != "" {
		t["domain"] = map[string]any{"id": tk.domain, "name": tk.domain}
	}
	if tk.project != "" || tk.domain != "" {
		roles := []map[string]any{}
		for _, r := range tk.roles {
			roles = append(roles, map[string]any{"id": "rid-" + r, "name": r})
		}
		t["roles"] = roles
	}
	return map[string]any{"token": t}
}

// logBuffer is a concurrency-safe slog sink for tests.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// session returns a session of user neutron at f, on clock c.
func (f *fakeKeystone) session(t *testing.T, mod func(*SessionConfig)) *Session {
	t.Helper()
	cfg := SessionConfig{AuthURL: f.url(), Username: "neutron", Password: "s3rvice-Pa55word", ProjectName: "service",
		HTTPClient: f.srv.Client()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.now = f.clock.now
	return s
}

func (f *fakeKeystone) validator(t *testing.T, s *Session, cfg ValidatorConfig) *Validator {
	t.Helper()
	v, err := NewValidator(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.now = f.clock.now
	return v
}

// waitFor polls cond (no timing assertion: it fails only when cond never holds).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func assertNoSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q:\n%s", where, s, text)
		}
	}
}

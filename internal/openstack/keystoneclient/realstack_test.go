package keystoneclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file run against a real Keystone (Debian 12's Keystone 22), the one
// test/realstack/stack.sh starts: VFLINK_REALSTACK_ENV names its DIR/env file (KEY=VALUE lines:
// KEYSTONE_URL, REGION, ADMIN_USER/ADMIN_PASSWORD in project admin, DEMO_USER/DEMO_PASSWORD and
// OTHER_USER/OTHER_PASSWORD each in the project of their name with member and reader,
// NEUTRON_USER/NEUTRON_PASSWORD with admin and service in SERVICE_PROJECT, NETWORK_URL).
// KEYSTONE_URL and ADMIN_PASSWORD are required; without NEUTRON_PASSWORD the admin validates
// tokens, and a test that needs DEMO_PASSWORD or OTHER_PASSWORD skips, naming the key. Without
// VFLINK_REALSTACK_ENV every test here skips (this package never installs or starts Keystone).
//
//	sudo test/realstack/stack.sh install && test/realstack/stack.sh up /tmp/stack
//	VFLINK_REALSTACK_ENV=/tmp/stack/env go test ./internal/openstack/keystoneclient/ -run Real -v

type realStack struct {
	env map[string]string
}

func realStackEnv(t *testing.T) *realStack {
	t.Helper()
	path := os.Getenv("VFLINK_REALSTACK_ENV")
	if path == "" {
		t.Skip("VFLINK_REALSTACK_ENV is not set: set it to the env file of test/realstack/stack.sh up DIR (DIR/env) to test against a real Keystone")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("VFLINK_REALSTACK_ENV: %v", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	rs := &realStack{env: env}
	for _, k := range []string{"KEYSTONE_URL", "ADMIN_PASSWORD"} {
		if env[k] == "" {
			t.Fatalf("%s (VFLINK_REALSTACK_ENV) has no %s", path, k)
		}
	}
	return rs
}

// need skips the test unless the env file has every one of keys (a stack other than
// test/realstack's may have only KEYSTONE_URL and ADMIN_PASSWORD).
func (rs *realStack) need(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if rs.env[k] == "" {
			t.Skipf("the VFLINK_REALSTACK_ENV file has no %s, which this test needs", k)
		}
	}
}

// service is who validates tokens: NEUTRON (admin and service in SERVICE_PROJECT) when the
// env file has its password, else ADMIN (admin in project admin).
func (rs *realStack) service() string {
	if rs.env["NEUTRON_PASSWORD"] != "" {
		return "NEUTRON"
	}
	return "ADMIN"
}

func (rs *realStack) get(k, def string) string {
	if v := rs.env[k]; v != "" {
		return v
	}
	return def
}

// session logs in as who: "ADMIN", "DEMO", "OTHER" (each in the project of its name) or
// "NEUTRON" (in SERVICE_PROJECT).
func (rs *realStack) session(t *testing.T, who string, log *logBuffer) *Session {
	t.Helper()
	user := rs.get(who+"_USER", strings.ToLower(who))
	project := user
	if who == "NEUTRON" {
		project = rs.get("SERVICE_PROJECT", "service")
	}
	cfg := SessionConfig{AuthURL: rs.env["KEYSTONE_URL"], Username: user, Password: rs.env[who+"_PASSWORD"],
		ProjectName: project, Region: rs.get("REGION", "")}
	if log != nil {
		cfg.Logger = log.logger()
	}
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (rs *realStack) token(t *testing.T, who string) string {
	t.Helper()
	tok, err := rs.session(t, who, nil).Token(context.Background())
	if err != nil {
		t.Fatalf("log in as %s: %v", who, err)
	}
	return tok
}

// revoke revokes token at Keystone (DELETE /v3/auth/tokens), as `openstack token revoke` does.
func (rs *realStack) revoke(t *testing.T, by, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, rs.env["KEYSTONE_URL"]+"/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", by)
	req.Header.Set("X-Subject-Token", token)
	req.Header["Idempotency-Key"] = nil // replayed on a closed kept-alive connection (uwsgi)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke a token: %s, want 204", resp.Status)
	}
}

// unscopedToken logs in as who, explicitly unscoped.
func (rs *realStack) unscopedToken(t *testing.T, who string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{"identity": map[string]any{
		"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": rs.get(who+"_USER", strings.ToLower(who)), "domain": map[string]any{"name": "Default"},
			"password": rs.env[who+"_PASSWORD"]}}},
		// without it, Keystone scopes the token to the user's default project
		"scope": "unscoped"}})
	req, _ := http.NewRequest(http.MethodPost, rs.env["KEYSTONE_URL"]+"/auth/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header["Idempotency-Key"] = nil
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("unscoped login: %s", resp.Status)
	}
	return resp.Header.Get("X-Subject-Token")
}

func TestRealKeystoneSession(t *testing.T) {
	rs := realStackEnv(t)
	var lb logBuffer
	s := rs.session(t, rs.service(), &lb)
	ctx := context.Background()
	tok, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Token(ctx); again != tok {
		t.Error("a second Token logged in again")
	}
	id, err := s.Endpoint(ctx, "identity", "public")
	if err != nil || !strings.HasPrefix(id, "http") {
		t.Errorf("identity endpoint %q, %v", id, err)
	}
	if want := rs.env["NETWORK_URL"]; want != "" {
		if got, err := s.Endpoint(ctx, "network", "internal"); err != nil || strings.TrimRight(got, "/") != strings.TrimRight(want, "/") {
			t.Errorf("network endpoint %q, %v; want %q", got, err, want)
		}
	}
	_, err = s.Endpoint(ctx, "no-such-service", "public")
	if err == nil || !strings.Contains(err.Error(), `no "no-such-service" endpoint with interface "public"`) || !strings.Contains(err.Error(), "identity (") {
		t.Errorf("missing service: %v, want it named with what the catalog holds", err)
	}
	bad := rs.session(t, rs.service(), &lb)
	bad.cfg.Password = secretPW
	if _, err := bad.Token(ctx); !errors.Is(err, ErrLoginRefused) {
		t.Errorf("wrong password: %v, want ErrLoginRefused", err)
	}
	assertNoSecret(t, "log", lb.String(), rs.env[rs.service()+"_PASSWORD"], secretPW, tok)
}

func TestRealKeystoneValidator(t *testing.T) {
	rs := realStackEnv(t)
	rs.need(t, "DEMO_PASSWORD")
	var lb logBuffer
	s := rs.session(t, rs.service(), &lb)
	v, err := NewValidator(s, ValidatorConfig{CacheTTL: DefaultCacheTTL})
	if err != nil {
		t.Fatal(err)
	}
	demo, admin, other := rs.token(t, "DEMO"), rs.token(t, "ADMIN"), ""
	if rs.env["OTHER_PASSWORD"] != "" {
		other = rs.token(t, "OTHER")
	}
	hasAll := func(got []string, want ...string) bool {
		for _, w := range want {
			if !slices.Contains(got, w) {
				return false
			}
		}
		return true
	}
	d, err := v.Authenticate(request(demo))
	if err != nil {
		t.Fatalf("demo's token: %v", err)
	}
	if d.UserID == "" || d.ProjectID == "" || !hasAll(d.Roles, "member", "reader") || d.IsAdmin() {
		t.Errorf("demo: %+v, want a user, a project, member and reader, not admin", d)
	}
	a, err := v.Authenticate(request(admin))
	if err != nil {
		t.Fatalf("admin's token: %v", err)
	}
	if !a.IsAdmin() || !hasAll(a.Roles, "admin", "member", "reader") { // Keystone's implied roles
		t.Errorf("admin: %+v, want admin, member and reader", a)
	}
	if other != "" {
		o, err := v.Authenticate(request(other))
		if err != nil || o.ProjectID == d.ProjectID || o.UserID == d.UserID {
			t.Errorf("other: %+v, %v; want another user and project than demo's %+v", o, err, d)
		}
	}
	u, err := v.Authenticate(request(rs.unscopedToken(t, "DEMO")))
	if err != nil || u.UserID != d.UserID || u.ProjectID != "" || len(u.Roles) != 0 {
		t.Errorf("unscoped: %+v, %v; want demo's user, no project, no roles", u, err)
	}
	for _, bad := range []string{"gAAAAABnot-a-token", "!!!", "x"} {
		_, err := v.Authenticate(request(bad))
		wantRefused(t, "bad token "+bad, err)
	}

	// concurrent validations of a new token: one request between them
	fresh := rs.token(t, "DEMO")
	before := v.Stats()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := v.Authenticate(request(fresh)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	after := v.Stats()
	if after.Requests-before.Requests != 1 || (after.Hits-before.Hits)+(after.Shared-before.Shared) != 9 {
		t.Errorf("10 concurrent validations: %+v → %+v, want 1 request, the others shared or cached", before, after)
	}
	assertNoSecret(t, "log", lb.String(), demo, admin, other, fresh, rs.env[rs.service()+"_PASSWORD"])
}

func TestRealKeystoneRevocation(t *testing.T) {
	rs := realStackEnv(t)
	rs.need(t, "DEMO_PASSWORD")
	s := rs.session(t, rs.service(), nil)
	c := newClock()
	c.t = time.Now()
	cached, _ := NewValidator(s, ValidatorConfig{CacheTTL: time.Minute})
	cached.now = c.now
	uncached, _ := NewValidator(s, ValidatorConfig{})
	tok := rs.token(t, "DEMO")
	for _, v := range []*Validator{cached, uncached} {
		if _, err := v.Authenticate(request(tok)); err != nil {
			t.Fatal(err)
		}
	}
	rs.revoke(t, tok, tok) // a user may revoke its own token
	_, err := uncached.Authenticate(request(tok))
	wantRefused(t, "revoked, no cache", err)
	if _, err := cached.Authenticate(request(tok)); err != nil {
		t.Fatalf("revoked, cache TTL 60 s not passed: %v; want accepted from the cache", err)
	}
	c.advance(time.Minute)
	_, err = cached.Authenticate(request(tok))
	wantRefused(t, "revoked, cache TTL passed", err)
	t.Logf("Keystone on a revoked token: %v", err)
}

func TestRealKeystoneServiceTokenRevoked(t *testing.T) {
	rs := realStackEnv(t)
	rs.need(t, "DEMO_PASSWORD")
	s := rs.session(t, rs.service(), nil)
	v, _ := NewValidator(s, ValidatorConfig{CacheTTL: time.Minute})
	svc, err := s.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs.revoke(t, svc, svc)
	if _, err := v.Authenticate(request(rs.token(t, "DEMO"))); err != nil {
		t.Fatalf("validation with a revoked service token: %v; want a new login and success", err)
	}
	if now, _ := s.Token(context.Background()); now == svc {
		t.Error("the session still has its revoked token")
	}
	if st := v.Stats(); st.Requests != 2 {
		t.Errorf("%d validation requests, want 2 (401, retry)", st.Requests)
	}
}

func TestRealKeystoneServiceUserWithoutRole(t *testing.T) {
	rs := realStackEnv(t)
	rs.need(t, "DEMO_PASSWORD", "OTHER_PASSWORD")
	v, _ := NewValidator(rs.session(t, "DEMO", nil), ValidatorConfig{})
	_, err := v.Authenticate(request(rs.token(t, "OTHER")))
	wantUnavailable(t, "demo (member) validating other's token", err)
	if !strings.Contains(err.Error(), "may not validate tokens: 403 Forbidden") {
		t.Errorf("error %q does not say the service user may not validate", err)
	}
	// validating one's own token is allowed (token_subject), whatever the role
	s := rs.session(t, "DEMO", nil)
	own, _ := s.Token(context.Background())
	v2, _ := NewValidator(s, ValidatorConfig{})
	if _, err := v2.Authenticate(request(own)); err != nil {
		t.Errorf("own token: %v", err)
	}
}

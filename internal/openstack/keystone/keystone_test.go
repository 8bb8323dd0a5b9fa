package keystone_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/keystone"
)

var stamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestBootstrapIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.ks.Bootstrap(ctx, "another-password")
	if err != nil || created {
		t.Fatalf("second bootstrap: created %v, err %v; want false, nil", created, err)
	}
	// a second server on the same store bootstraps too, without a password
	created, err = keystone.New(e.st, keystone.Config{PublicURL: publicURL}).Bootstrap(ctx, "")
	if err != nil || created {
		t.Fatalf("bootstrap of a second server: created %v, err %v; want false, nil", created, err)
	}
	// the admin password is the first one
	e.must(401, "POST", "/v3/auth/tokens", byName("admin", "another-password", "admin"))
	tok, _ := e.login("admin", adminPass, "admin")
	count := func(path, key string) int { return len(e.must(200, "GET", path, nil, as(tok)...).list(key)) }
	for _, c := range []struct {
		path, key string
		want      int
	}{
		{"/v3/users", "users", 1}, {"/v3/projects", "projects", 2}, {"/v3/roles", "roles", 3},
		{"/v3/domains", "domains", 1}, {"/v3/role_assignments", "role_assignments", 1},
	} {
		if got := count(c.path, c.key); got != c.want {
			t.Errorf("GET %s after three bootstraps: %d %s, want %d", c.path, got, c.key, c.want)
		}
	}
	// what the CLI does for --domain Default
	e.must(404, "GET", "/v3/domains/Default", nil, as(tok)...)
	ds := e.must(200, "GET", "/v3/domains?name=Default", nil, as(tok)...).list("domains")
	if len(ds) != 1 || str(ds[0], "id") != "default" {
		t.Fatalf("GET /v3/domains?name=Default: got %v, want the domain with id default", ds)
	}
	v := e.must(200, "GET", "/v3", nil).obj("version")
	if str(v, "id") != "v3.14" || str(v, "status") != "stable" {
		t.Fatalf("GET /v3: got %v", v)
	}
	e.must(200, "GET", "/v3/", nil)
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	tok, body := e.login("admin", adminPass, "admin")
	if len(tok) != 43 {
		t.Errorf("token %d characters long, want 43 (32 bytes base64url)", len(tok))
	}
	user, project := sub(body, "user"), sub(body, "project")
	if str(user, "name") != "admin" || str(sub(user, "domain"), "id") != "default" || str(sub(user, "domain"), "name") != "Default" {
		t.Errorf("token user: got %v", user)
	}
	if v, ok := user["password_expires_at"]; !ok || v != nil {
		t.Errorf("token user password_expires_at: got %v (present %v), want null", v, ok)
	}
	if str(project, "name") != "admin" || str(sub(project, "domain"), "name") != "Default" {
		t.Errorf("token project: got %v", project)
	}
	for _, k := range []string{"expires_at", "issued_at"} {
		if !stamp.MatchString(str(body, k)) {
			t.Errorf("token %s = %q, want like 2026-11-25T17:00:00.000000Z", k, str(body, k))
		}
	}
	if str(body, "expires_at") != "2026-11-25T17:00:00.000000Z" {
		t.Errorf("expires_at: got %s, want one hour after the clock", str(body, "expires_at"))
	}
	roles, _ := body["roles"].([]any)
	if len(roles) != 1 || str(roles[0].(map[string]any), "name") != "admin" {
		t.Errorf("token roles: got %v, want [admin]", roles)
	}
	if m, _ := body["methods"].([]any); len(m) != 1 || m[0] != "password" {
		t.Errorf("methods: got %v", body["methods"])
	}
	if a, _ := body["audit_ids"].([]any); len(a) != 1 {
		t.Errorf("audit_ids: got %v", body["audit_ids"])
	}

	// the catalog: four services, three interfaces each
	cat, _ := body["catalog"].([]any)
	want := map[string]string{
		"identity": publicURL + "/identity/v3", "network": publicURL + "/network",
		"compute": publicURL + "/compute/v2.1", "image": publicURL + "/image",
	}
	names := map[string]string{"identity": "keystone", "network": "neutron", "compute": "nova", "image": "glance"}
	if len(cat) != 4 {
		t.Fatalf("catalog: got %d services, want 4: %v", len(cat), cat)
	}
	for _, c := range cat {
		svc := c.(map[string]any)
		typ := str(svc, "type")
		if str(svc, "name") != names[typ] || str(svc, "id") == "" {
			t.Errorf("service %s: got name %q id %q, want %q", typ, str(svc, "name"), str(svc, "id"), names[typ])
		}
		eps, _ := svc["endpoints"].([]any)
		var ifaces []string
		for _, ep := range eps {
			m := ep.(map[string]any)
			ifaces = append(ifaces, str(m, "interface"))
			if str(m, "url") != want[typ] || str(m, "region") != "RegionOne" || str(m, "region_id") != "RegionOne" {
				t.Errorf("service %s endpoint: got %v, want url %s in RegionOne", typ, m, want[typ])
			}
		}
		sort.Strings(ifaces)
		if strings.Join(ifaces, ",") != "admin,internal,public" {
			t.Errorf("service %s interfaces: got %v", typ, ifaces)
		}
		delete(want, typ)
	}
	if len(want) != 0 {
		t.Errorf("catalog misses %v", want)
	}

	// by IDs: user id, project id; user domain by id
	uid, pid := str(user, "id"), str(project, "id")
	r := e.must(201, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": adminPass},
		map[string]any{"project": map[string]any{"id": pid}}))
	if got := str(sub(r.obj("token"), "project"), "id"); got != pid {
		t.Errorf("login by ids: project %q, want %q", got, pid)
	}
	e.must(201, "POST", "/v3/auth/tokens", passwordBody(
		map[string]any{"name": "admin", "password": adminPass, "domain": map[string]any{"id": "default"}},
		map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}}))

	// without a scope, Keystone scopes to the user's default project (admin's is admin)
	r = e.must(201, "POST", "/v3/auth/tokens", byName("admin", adminPass, ""))
	if got := str(sub(r.obj("token"), "project"), "id"); got != pid {
		t.Errorf("login without a scope: project %q, want the default project %q", got, pid)
	}
	// unscoped: no project, roles or catalog; the token authenticates with an empty project
	r = e.must(201, "POST", "/v3/auth/tokens", passwordBody(
		map[string]any{"name": "admin", "password": adminPass, "domain": map[string]any{"name": "Default"}}, "unscoped"))
	ut := r.obj("token")
	for _, k := range []string{"project", "catalog", "roles"} {
		if _, ok := ut[k]; ok {
			t.Errorf("unscoped token has %q: %v", k, ut[k])
		}
	}
	req := httptest.NewRequest("GET", "/v3/users", nil)
	req.Header.Set("X-Auth-Token", r.hdr.Get("X-Subject-Token"))
	c, err := e.ks.Authenticate(req)
	if err != nil || c.ProjectID != "" || c.UserID != uid || c.IsAdmin() {
		t.Fatalf("Authenticate(unscoped): got %+v, %v; want user %s, no project, no roles", c, err, uid)
	}
	req.Header.Set("X-Auth-Token", tok)
	if c, err = e.ks.Authenticate(req); err != nil || c.ProjectID != pid || !c.IsAdmin() {
		t.Fatalf("Authenticate(scoped): got %+v, %v; want project %s and admin", c, err, pid)
	}
	// ?nocatalog
	r = e.must(201, "POST", "/v3/auth/tokens?nocatalog", byName("admin", adminPass, "admin"))
	if _, ok := r.obj("token")["catalog"]; ok {
		t.Error("?nocatalog: the token still has a catalog")
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t, func(c *keystone.Config) { c.MaxLoginFailures = 100 })
	tok, body := e.login("admin", adminPass, "admin")
	adminProject := str(sub(body, "project"), "id")
	e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "norole", "password": "norole-pw-1"}}, as(tok)...)
	off := e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "off", "password": "off-pw-1", "enabled": false}}, as(tok)...).obj("user")
	member := e.must(200, "GET", "/v3/roles?name=member", nil, as(tok)...).list("roles")[0]
	e.must(204, "PUT", "/v3/projects/"+adminProject+"/users/"+str(off, "id")+"/roles/"+str(member, "id"), nil, as(tok)...)
	e.must(201, "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "disabled", "enabled": false}}, as(tok)...)

	cases := []struct {
		name string
		body map[string]any
	}{
		{"wrong password", byName("admin", "wrong", "admin")},
		{"unknown user", byName("nobody", adminPass, "admin")},
		{"unknown user id", passwordBody(map[string]any{"id": "0123456789abcdef", "password": adminPass}, nil)},
		{"unknown user domain", passwordBody(map[string]any{"name": "admin", "password": adminPass, "domain": map[string]any{"name": "Other"}}, nil)},
		{"unknown project", byName("admin", adminPass, "nothere")},
		{"unknown project id", passwordBody(map[string]any{"name": "admin", "password": adminPass, "domain": map[string]any{"id": "default"}},
			map[string]any{"project": map[string]any{"id": "feedface"}})},
		{"disabled project", byName("admin", adminPass, "disabled")},
		{"no role on project", byName("norole", "norole-pw-1", "admin")},
		{"disabled user", byName("off", "off-pw-1", "admin")},
	}
	for _, c := range cases {
		r := e.must(401, "POST", "/v3/auth/tokens", c.body)
		if r.errMsg() != "The request you have made requires authentication." || str(r.obj("error"), "title") != "Unauthorized" {
			t.Errorf("%s: got %s, want the one generic 401 message", c.name, r.raw)
		}
		if r.hdr.Get("X-Subject-Token") != "" {
			t.Errorf("%s: a failed login returned a token", c.name)
		}
	}
	// an unscoped login of the user without a role works: the scope was what failed
	e.must(201, "POST", "/v3/auth/tokens", byName("norole", "norole-pw-1", ""))
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 5; i++ {
		if r := e.do("POST", "/v3/auth/tokens", byName("admin", "guess", "admin")); r.code != 401 {
			t.Fatalf("wrong password #%d: got %d %s, want 401", i, r.code, r.raw)
		}
	}
	r := e.must(429, "POST", "/v3/auth/tokens", byName("admin", "guess", "admin"))
	if str(r.obj("error"), "title") != "Too Many Requests" || r.hdr.Get("Retry-After") != "60" {
		t.Fatalf("6th attempt: got %s, Retry-After %q; want Too Many Requests, 60", r.raw, r.hdr.Get("Retry-After"))
	}
	// the right password is refused too, also by user ID
	e.must(429, "POST", "/v3/auth/tokens", byName("admin", adminPass, "admin"))
	e.clock.Advance(30 * time.Second)
	r = e.must(429, "POST", "/v3/auth/tokens", byName("admin", adminPass, ""))
	if r.hdr.Get("Retry-After") != "30" {
		t.Errorf("Retry-After half-way through the window: got %q, want 30", r.hdr.Get("Retry-After"))
	}
	// unknown users are limited the same way (no hint that they do not exist)
	for i := 1; i <= 5; i++ {
		e.must(401, "POST", "/v3/auth/tokens", byName("ghost", "guess", ""))
	}
	e.must(429, "POST", "/v3/auth/tokens", byName("ghost", "guess", ""))
	// after the window, the right password works again
	e.clock.Advance(31 * time.Second)
	tok, body := e.login("admin", adminPass, "admin")
	uid := str(sub(body, "user"), "id")
	e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "carol", "password": "carol-pw-1"}}, as(tok)...)
	// failures of one user do not limit another, and a success does not clear another's count
	for i := 1; i <= 5; i++ {
		e.must(401, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "guess"}, nil))
		e.must(201, "POST", "/v3/auth/tokens", byName("carol", "carol-pw-1", ""))
	}
	e.must(429, "POST", "/v3/auth/tokens", byName("admin", adminPass, "admin"))
}

func TestTokenValidateRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, body := e.login("admin", adminPass, "admin")
	other, _ := e.login("admin", adminPass, "admin")
	r := e.must(200, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", other)
	if r.hdr.Get("X-Subject-Token") != other {
		t.Error("GET /v3/auth/tokens: X-Subject-Token not echoed")
	}
	vt := r.obj("token")
	for _, k := range []string{"user", "project", "roles", "catalog", "expires_at", "issued_at", "audit_ids", "methods"} {
		if _, ok := vt[k]; !ok {
			t.Errorf("validated token misses %q", k)
		}
	}
	if str(sub(vt, "user"), "id") != str(sub(body, "user"), "id") {
		t.Errorf("validated token user: got %v", vt["user"])
	}
	e.must(200, "HEAD", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", other)
	e.must(404, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", "bogus")
	e.must(404, "HEAD", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", "bogus")
	e.must(401, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", "bogus", "X-Subject-Token", other)

	// the token is stored only as its hash, under a lease
	pfx := "/vflink/keystone/tokens/"
	sum := sha256.Sum256([]byte(other))
	g, err := e.st.Client().Get(ctx, pfx+hex.EncodeToString(sum[:]))
	if err != nil || len(g.Kvs) != 1 || g.Kvs[0].Lease == 0 {
		t.Fatalf("token key: got %v, %v; want one key with a lease", g, err)
	}
	all, err := e.st.Client().Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		if strings.Contains(string(kv.Key)+string(kv.Value), other) {
			t.Fatalf("the plain token is stored at %s", kv.Key)
		}
	}

	// a second server on the same store trusts the token, until it is revoked
	second := keystone.New(e.st, keystone.Config{PublicURL: publicURL, Now: e.clock.Now}) // the same clock: a fixed test time
	req := httptest.NewRequest("GET", "/v3/users", nil)
	req.Header.Set("X-Auth-Token", other)
	if _, err := second.Authenticate(req); err != nil {
		t.Fatalf("second server: Authenticate: %v", err)
	}
	e.must(204, "DELETE", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", other)
	if _, err := second.Authenticate(req); !errorsIsUnauth(err) {
		t.Fatalf("second server after revoke: got %v, want ErrUnauthenticated", err)
	}
	e.must(401, "GET", "/v3/users", nil, as(other)...)
	e.must(404, "DELETE", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", other)
	// a token revokes itself
	e.must(204, "DELETE", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", tok)
	e.must(401, "GET", "/v3/users", nil, as(tok)...)
	// no token at all
	e.must(401, "GET", "/v3/users", nil)
}

func errorsIsUnauth(err error) bool { return errors.Is(err, auth.ErrUnauthenticated) }

func TestTokenExpires(t *testing.T) {
	e := newEnv(t, func(c *keystone.Config) { c.TokenTTL = 10 * time.Minute })
	tok, body := e.login("admin", adminPass, "admin")
	if str(body, "expires_at") != "2026-11-25T16:10:00.000000Z" {
		t.Errorf("expires_at: got %s, want 10 minutes after the clock", str(body, "expires_at"))
	}
	e.must(200, "GET", "/v3/users", nil, as(tok)...)
	e.clock.Advance(9*time.Minute + 59*time.Second)
	e.must(200, "GET", "/v3/users", nil, as(tok)...)
	e.clock.Advance(time.Second)
	e.must(401, "GET", "/v3/users", nil, as(tok)...)
	other, _ := e.login("admin", adminPass, "admin")
	e.must(404, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", other, "X-Subject-Token", tok)
}

func TestUsersProjectsAssignments(t *testing.T) {
	e := newEnv(t)
	tok, body := e.login("admin", adminPass, "admin")
	adminUser, adminProject := str(sub(body, "user"), "id"), str(sub(body, "project"), "id")
	A := as(tok)

	p := e.must(201, "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "demo", "domain_id": "default", "description": "Demo"}}, A...).obj("project")
	pid := str(p, "id")
	if str(p, "parent_id") != "default" || p["is_domain"] != false || p["enabled"] != true || str(sub(p, "links"), "self") != publicURL+"/v3/projects/"+pid {
		t.Errorf("created project: got %v", p)
	}
	if r := e.must(409, "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "demo"}}, A...); str(r.obj("error"), "title") != "Conflict" {
		t.Errorf("duplicate project: got %s", r.raw)
	}
	u := e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{
		"name": "bob", "domain_id": "default", "password": "b0b-Secret-PW", "enabled": true,
		"default_project_id": pid, "email": "bob@example.com", "description": "Bob"}}, A...).obj("user")
	uid := str(u, "id")
	if str(u, "domain_id") != "default" || u["enabled"] != true || str(u, "default_project_id") != pid || str(sub(u, "links"), "self") != publicURL+"/v3/users/"+uid {
		t.Errorf("created user: got %v", u)
	}
	if v, ok := u["password_expires_at"]; !ok || v != nil {
		t.Errorf("created user password_expires_at: got %v", v)
	}
	e.must(409, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "bob", "password": "x"}}, A...)
	if l := e.must(200, "GET", "/v3/users?name=bob", nil, A...).list("users"); len(l) != 1 || str(l[0], "id") != uid {
		t.Errorf("GET /v3/users?name=bob: got %v", l)
	}
	if l := e.must(200, "GET", "/v3/users?name=nobody", nil, A...).list("users"); len(l) != 0 {
		t.Errorf("GET /v3/users?name=nobody: got %v, want []", l)
	}
	if l := e.must(200, "GET", "/v3/projects?name=demo&domain_id=default", nil, A...).list("projects"); len(l) != 1 {
		t.Errorf("GET /v3/projects?name=demo: got %v", l)
	}
	e.must(404, "GET", "/v3/users/bob", nil, A...)
	e.must(404, "GET", "/v3/projects/demo", nil, A...)
	e.must(200, "GET", "/v3/users/"+uid, nil, A...)

	// bob cannot log in to demo until he has a role there
	e.must(401, "POST", "/v3/auth/tokens", byName("bob", "b0b-Secret-PW", "demo"))
	member := e.must(200, "GET", "/v3/roles?name=member", nil, A...).list("roles")[0]
	rid := str(member, "id")
	grant := "/v3/projects/" + pid + "/users/" + uid + "/roles/" + rid
	e.must(404, "HEAD", grant, nil, A...)
	e.must(204, "PUT", grant, nil, A...)
	e.must(204, "PUT", grant, nil, A...)
	e.must(204, "HEAD", grant, nil, A...)
	e.must(204, "GET", grant, nil, A...)
	e.must(404, "PUT", "/v3/projects/"+pid+"/users/nobody/roles/"+rid, nil, A...)
	if l := e.must(200, "GET", "/v3/projects/"+pid+"/users/"+uid+"/roles", nil, A...).list("roles"); len(l) != 1 || str(l[0], "name") != "member" {
		t.Errorf("roles of bob on demo: got %v", l)
	}
	ra := e.must(200, "GET", "/v3/role_assignments?user.id="+uid, nil, A...).list("role_assignments")
	if len(ra) != 1 || str(sub(ra[0], "role"), "id") != rid || str(sub(sub(ra[0], "scope"), "project"), "id") != pid {
		t.Errorf("role_assignments?user.id=bob: got %v", ra)
	}
	if ra := e.must(200, "GET", "/v3/role_assignments?scope.project.id="+adminProject, nil, A...).list("role_assignments"); len(ra) != 1 || str(sub(ra[0], "user"), "id") != adminUser {
		t.Errorf("role_assignments on project admin: got %v", ra)
	}

	// bob, a member
	btok, bbody := e.login("bob", "b0b-Secret-PW", "demo")
	if roles, _ := bbody["roles"].([]any); len(roles) != 1 || str(roles[0].(map[string]any), "name") != "member" {
		t.Errorf("bob's roles: got %v", bbody["roles"])
	}
	B := as(btok)
	e.must(200, "GET", "/v3/users/"+uid, nil, B...)
	e.must(200, "GET", "/v3/projects/"+pid, nil, B...)
	e.must(200, "GET", "/v3/users/"+uid+"/projects", nil, B...)
	e.must(200, "GET", "/v3/role_assignments?user.id="+uid, nil, B...)
	if l := e.must(200, "GET", "/v3/auth/projects", nil, B...).list("projects"); len(l) != 1 || str(l[0], "name") != "demo" {
		t.Errorf("bob's /v3/auth/projects: got %v", l)
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v3/users", nil}, {"GET", "/v3/projects", nil}, {"GET", "/v3/users/" + adminUser, nil},
		{"GET", "/v3/projects/" + adminProject, nil}, {"GET", "/v3/users/" + adminUser + "/projects", nil},
		{"GET", "/v3/role_assignments", nil},
		{"POST", "/v3/users", map[string]any{"user": map[string]any{"name": "eve"}}},
		{"POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "evil"}}},
		{"PATCH", "/v3/users/" + uid, map[string]any{"user": map[string]any{"enabled": true}}},
		{"DELETE", "/v3/users/" + adminUser, nil}, {"DELETE", "/v3/projects/" + pid, nil},
		{"PUT", "/v3/projects/" + adminProject + "/users/" + uid + "/roles/" + rid, nil},
		{"DELETE", grant, nil},
	} {
		r := e.must(403, c.method, c.path, c.body, B...)
		if str(r.obj("error"), "title") != "Forbidden" {
			t.Errorf("bob %s %s: got %s, want a Forbidden error", c.method, c.path, r.raw)
		}
	}
	e.must(403, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", btok, "X-Subject-Token", tok)
	e.must(200, "GET", "/v3/auth/tokens", nil, "X-Auth-Token", tok, "X-Subject-Token", btok)

	// rename and password change; the new password revokes bob's tokens
	up := e.must(200, "PATCH", "/v3/users/"+uid, map[string]any{"user": map[string]any{"name": "robert", "password": "N3w-b0b-PW"}}, A...).obj("user")
	if str(up, "name") != "robert" {
		t.Errorf("renamed user: got %v", up)
	}
	e.must(401, "GET", "/v3/users/"+uid, nil, B...)
	e.must(401, "POST", "/v3/auth/tokens", byName("robert", "b0b-Secret-PW", "demo"))
	btok, _ = e.login("robert", "N3w-b0b-PW", "demo")
	e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "bob"}}, A...) // the old name is free
	e.must(409, "PATCH", "/v3/users/"+uid, map[string]any{"user": map[string]any{"name": "bob"}}, A...)
	e.must(200, "PATCH", "/v3/projects/"+pid, map[string]any{"project": map[string]any{"description": "changed", "tags": []string{"a"}}}, A...)

	// removing the role revokes the token scoped to demo
	e.must(204, "DELETE", grant, nil, A...)
	e.must(404, "DELETE", grant, nil, A...)
	e.must(401, "GET", "/v3/users/"+uid, nil, as(btok)...)
	e.must(401, "POST", "/v3/auth/tokens", byName("robert", "N3w-b0b-PW", "demo"))

	// deleting a user removes its assignments and tokens
	e.must(204, "PUT", grant, nil, A...)
	btok, _ = e.login("robert", "N3w-b0b-PW", "demo")
	e.must(204, "DELETE", "/v3/users/"+uid, nil, A...)
	e.must(404, "GET", "/v3/users/"+uid, nil, A...)
	e.must(404, "DELETE", "/v3/users/"+uid, nil, A...)
	e.must(401, "GET", "/v3/auth/projects", nil, as(btok)...)
	if ra := e.must(200, "GET", "/v3/role_assignments?scope.project.id="+pid, nil, A...).list("role_assignments"); len(ra) != 0 {
		t.Errorf("assignments after the user was deleted: %v", ra)
	}
	e.must(401, "POST", "/v3/auth/tokens", byName("robert", "N3w-b0b-PW", ""))

	// deleting a project
	e.must(204, "DELETE", "/v3/projects/"+pid, nil, A...)
	e.must(404, "GET", "/v3/projects/"+pid, nil, A...)
	e.must(201, "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "demo"}}, A...)

	assertNoSecrets(t, e, adminPass, "b0b-Secret-PW", "N3w-b0b-PW")
}

// assertNoSecrets checks that no response body, header or log line holds a password.
func assertNoSecrets(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	e.mu.Lock()
	bodies := e.bodies.String()
	e.mu.Unlock()
	logs := e.logs.String()
	if !strings.Contains(logs, "user created") {
		t.Errorf("the logs look empty; the check would prove nothing: %q", logs)
	}
	for _, s := range secrets {
		if strings.Contains(bodies, s) {
			t.Errorf("a response holds the password %q", s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the password %q", s)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	for _, c := range []struct {
		path, body, want string
	}{
		{"/v3/users", `{"user": {"name": "x"}, "extra": 1}`, `"extra"`},
		{"/v3/users", `{"user": {"name": "x", "enabled": "yes"}}`, `'user.enabled': "yes"`},
		{"/v3/users", `{"user": {"name": "x", "options": 5}}`, `'user.options'`},
		{"/v3/users", `{"user": {"name": ""}}`, `'user.name'`},
		{"/v3/users", `{"user": {"name": "x", "password": 12345}}`, `'user.password'`},
		{"/v3/users", `{"user": []}`, `'user'`},
		{"/v3/users", `not json`, `invalid JSON`},
		{"/v3/users", ``, `empty`},
		{"/v3/projects", `{"project": {"name": "p", "tags": "t"}}`, `'project.tags'`},
		{"/v3/projects", `{"project": {"name": "p", "is_domain": true, "parent_id": "abc"}}`, `"abc"`},
		{"/v3/projects", `{"project": {"name": "p", "is_domain": "yes"}}`, `'project.is_domain'`},
		{"/v3/projects", `{"project": {"name": "p", "tags": ["a", "a"]}}`, `"a" is given twice`},
		{"/v3/projects", `{"project": {}}`, `'name'`},
		{"/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "pw-in-error?"}}}}}`, `domain`},
		{"/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": 5, "password": "x"}}}}}`, `'auth.identity.password.user.id': 5`},
		{"/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "u", "password": "x", "pin": 1}}}}}`, `"pin"`},
		{"/v3/auth/tokens", `{"auth": {}, "x": 1}`, `"x"`},
		{"/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "u", "password": "x"}}}, "scope": {"system": {"all": true}}}}`, `system scope`},
	} {
		r := e.do("POST", c.path, c.body, A...)
		if r.code != 400 || str(r.obj("error"), "title") != "Bad Request" || !strings.Contains(r.errMsg(), c.want) {
			t.Errorf("POST %s %s: got %d %s, want 400 mentioning %s", c.path, c.body, r.code, r.raw, c.want)
		}
		if strings.Contains(r.raw, "pw-in-error?") {
			t.Errorf("POST %s: the error echoes the password: %s", c.path, r.raw)
		}
	}
	r := e.do("POST", "/v3/users", `{"user": {"name": "x", "password": ["s3cr3t-in-list"]}}`, A...)
	if r.code != 400 || strings.Contains(r.raw, "s3cr3t-in-list") {
		t.Errorf("a password of the wrong type: got %d %s, want 400 without the value", r.code, r.raw)
	}
	e.must(401, "POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["token"], "token": {"id": "x"}}}}`)
}

func TestConcurrentCreatesKeepNamesUnique(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, body := "/v3/users", map[string]any{"user": map[string]any{"name": "twin"}}
			if i%2 == 1 {
				path, body = "/v3/projects", map[string]any{"project": map[string]any{"name": "twin"}}
			}
			codes[i] = e.do("POST", path, body, as(tok)...).code
		}()
	}
	wg.Wait()
	created := map[int]int{}
	for i, c := range codes {
		if c != 201 && c != 409 {
			t.Fatalf("create #%d: got %d, want 201 or 409", i, c)
		}
		if c == 201 {
			created[i%2]++
		}
	}
	if created[0] != 1 || created[1] != 1 {
		t.Fatalf("concurrent creates of one name: %v created (users, projects), want exactly one each", created)
	}
}

func TestChangeOwnPassword(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	u := e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "dave", "password": "dave-Old-PW"}}, as(tok)...).obj("user")
	uid := str(u, "id")
	dtok, _ := e.login("dave", "dave-Old-PW", "")
	path := "/v3/users/" + uid + "/password"
	e.must(401, "POST", path, map[string]any{"user": map[string]any{"password": "dave-New-PW", "original_password": "wrong"}}, as(dtok)...)
	// the original password is the authorisation, as in Keystone: dave cannot change admin's with his
	e.must(401, "POST", "/v3/users/"+str(e.must(200, "GET", "/v3/users?name=admin", nil, as(tok)...).list("users")[0], "id")+"/password",
		map[string]any{"user": map[string]any{"password": "x", "original_password": "dave-Old-PW"}}, as(dtok)...)
	e.must(204, "POST", path, map[string]any{"user": map[string]any{"password": "dave-New-PW", "original_password": "dave-Old-PW"}}, as(dtok)...)
	e.must(401, "GET", "/v3/users/"+uid, nil, as(dtok)...) // tokens revoked
	e.must(401, "POST", "/v3/auth/tokens", byName("dave", "dave-Old-PW", ""))
	e.login("dave", "dave-New-PW", "")
	assertNoSecrets(t, e, adminPass, "dave-Old-PW", "dave-New-PW")
}

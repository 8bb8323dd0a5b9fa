package keystone_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// mkUser creates a user with a password in a domain and returns its ID.
func (e *env) mkUser(tok, name, password, domainID string) string {
	e.t.Helper()
	return str(e.must(201, "POST", "/v3/users", map[string]any{"user": map[string]any{
		"name": name, "password": password, "domain_id": domainID}}, as(tok)...).obj("user"), "id")
}

func (e *env) mk(tok, path, member string, body map[string]any) map[string]any {
	e.t.Helper()
	return e.must(201, "POST", path, map[string]any{member: body}, as(tok)...).obj(member)
}

func ids(l []map[string]any) map[string]bool {
	m := map[string]bool{}
	for _, x := range l {
		m[str(x, "id")] = true
	}
	return m
}

func TestDomains(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	d := e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "d1", "description": "first", "color": "blue"})
	did := str(d, "id")
	if str(d, "name") != "d1" || d["enabled"] != true || str(d, "color") != "blue" || d["links"] == nil {
		t.Fatalf("created domain: got %v", d)
	}
	e.must(409, "POST", "/v3/domains", map[string]any{"domain": map[string]any{"name": "d1"}}, A...)
	e.must(400, "POST", "/v3/domains", map[string]any{"domain": map[string]any{"name": strings.Repeat("a", 65)}}, A...)
	e.must(400, "POST", "/v3/domains", map[string]any{"domain": map[string]any{"name": ""}}, A...)
	if got := e.must(200, "GET", "/v3/domains?name=d1", nil, A...).list("domains"); len(got) != 1 || str(got[0], "id") != did {
		t.Errorf("GET /v3/domains?name=d1: got %v", got)
	}
	// a project, a user and a group in the domain, which the delete takes along
	p := e.mk(tok, "/v3/projects", "project", map[string]any{"name": "p", "domain_id": did})
	uid := e.mkUser(tok, "u", "pw-u-12345", did)
	g := e.mk(tok, "/v3/groups", "group", map[string]any{"name": "g", "domain_id": did})
	e.must(404, "POST", "/v3/users", map[string]any{"user": map[string]any{"name": "x", "domain_id": "nope"}}, A...)
	e.must(403, "DELETE", "/v3/domains/"+did, nil, A...) // enabled
	up := e.must(200, "PATCH", "/v3/domains/"+did, map[string]any{"domain": map[string]any{"enabled": false, "name": "d1b"}}, A...).obj("domain")
	if up["enabled"] != false || str(up, "name") != "d1b" || str(up, "description") != "first" {
		t.Fatalf("updated domain: got %v", up)
	}
	e.must(401, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-u-12345"}, nil)) // disabled domain
	e.must(204, "DELETE", "/v3/domains/"+did, nil, A...)
	for _, path := range []string{"/v3/domains/" + did, "/v3/projects/" + str(p, "id"), "/v3/users/" + uid, "/v3/groups/" + str(g, "id")} {
		e.must(404, "GET", path, nil, A...)
	}
	// a non-admin cannot create domains
	e.mkUser(tok, "plain", "pw-plain-123", "default")
	adminProject := str(e.must(200, "GET", "/v3/projects?name=admin", nil, A...).list("projects")[0], "id")
	member := str(e.must(200, "GET", "/v3/roles?name=member", nil, A...).list("roles")[0], "id")
	plainID := str(e.must(200, "GET", "/v3/users?name=plain", nil, A...).list("users")[0], "id")
	e.must(204, "PUT", "/v3/projects/"+adminProject+"/users/"+plainID+"/roles/"+member, nil, A...)
	ptok, _ := e.login("plain", "pw-plain-123", "admin")
	e.must(403, "POST", "/v3/domains", map[string]any{"domain": map[string]any{"name": "mine"}}, as(ptok)...)
	// Keystone's default policy: a user sees the domain of its token's project, and lists none
	e.must(200, "GET", "/v3/domains/default", nil, as(ptok)...)
	e.must(403, "GET", "/v3/domains", nil, as(ptok)...)
	e.must(403, "GET", "/v3/roles", nil, as(ptok)...)
	e.must(403, "GET", "/v3/roles/"+member, nil, as(ptok)...)
	other := e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "not-plain's"})
	e.must(403, "GET", "/v3/domains/"+str(other, "id"), nil, as(ptok)...)

	// a project acting as a domain is a domain
	pd := e.mk(tok, "/v3/projects", "project", map[string]any{"name": "as-domain", "is_domain": true})
	if pd["is_domain"] != true || pd["domain_id"] != nil {
		t.Fatalf("is_domain project: got %v", pd)
	}
	if !ids(e.must(200, "GET", "/v3/domains", nil, A...).list("domains"))[str(pd, "id")] ||
		!ids(e.must(200, "GET", "/v3/projects?is_domain=true", nil, A...).list("projects"))[str(pd, "id")] {
		t.Errorf("the is_domain project is not listed as a domain and as an is_domain project")
	}
	e.must(200, "PATCH", "/v3/projects/"+str(pd, "id"), map[string]any{"project": map[string]any{"enabled": false}}, A...)
	e.must(204, "DELETE", "/v3/projects/"+str(pd, "id"), nil, A...)
	e.must(404, "GET", "/v3/domains/"+str(pd, "id"), nil, A...)
}

func TestProjectHierarchyAndExtras(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	root := e.mk(tok, "/v3/projects", "project", map[string]any{"name": "root", "tags": []string{"a", "b"}})
	if str(root, "parent_id") != "default" {
		t.Errorf("top-level project parent_id: got %v, want the domain", root["parent_id"])
	}
	child := e.mk(tok, "/v3/projects", "project", map[string]any{"name": "child", "parent_id": str(root, "id")})
	if str(child, "parent_id") != str(root, "id") || str(child, "domain_id") != "default" {
		t.Fatalf("child project: got %v", child)
	}
	l := e.must(200, "GET", "/v3/projects?parent_id="+str(root, "id"), nil, A...).list("projects")
	if len(l) != 1 || str(l[0], "id") != str(child, "id") {
		t.Errorf("GET ?parent_id: got %v, want the child", l)
	}
	e.must(403, "DELETE", "/v3/projects/"+str(root, "id"), nil, A...) // has a child
	e.must(404, "POST", "/v3/projects", map[string]any{"project": map[string]any{"name": "x", "parent_id": "nope"}}, A...)
	// users keep extra attributes
	u := e.mk(tok, "/v3/users", "user", map[string]any{"name": "ux", "project_id": str(root, "id"), "email": "u@x"})
	got := e.must(200, "GET", "/v3/users/"+str(u, "id"), nil, A...).obj("user")
	if str(got, "project_id") != str(root, "id") || str(got, "email") != "u@x" {
		t.Errorf("user extras: got %v", got)
	}
	// show equals list
	show := e.must(200, "GET", "/v3/projects/"+str(root, "id"), nil, A...).obj("project")
	for _, p := range e.must(200, "GET", "/v3/projects", nil, A...).list("projects") {
		if str(p, "id") == str(root, "id") && len(p) != len(show) {
			t.Errorf("list and show differ: %v vs %v", p, show)
		}
	}
}

func TestGroupsRolesAndAssignments(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	d := e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "dom"})
	did := str(d, "id")
	p := e.mk(tok, "/v3/projects", "project", map[string]any{"name": "proj", "domain_id": did})
	pid := str(p, "id")
	uid := e.mkUser(tok, "gu", "pw-gu-12345", did)
	g := e.mk(tok, "/v3/groups", "group", map[string]any{"name": "grp", "domain_id": did, "description": "x"})
	gid := str(g, "id")
	e.must(409, "POST", "/v3/groups", map[string]any{"group": map[string]any{"name": "grp", "domain_id": did}}, A...)
	r1 := e.mk(tok, "/v3/roles", "role", map[string]any{"name": "r1"})
	r2 := e.mk(tok, "/v3/roles", "role", map[string]any{"name": "r2"})
	dr := e.mk(tok, "/v3/roles", "role", map[string]any{"name": "dr", "domain_id": did})
	if got := e.must(200, "GET", "/v3/roles?domain_id="+did, nil, A...).list("roles"); len(got) != 1 || str(got[0], "id") != str(dr, "id") {
		t.Errorf("domain roles: got %v", got)
	}
	if ids(e.must(200, "GET", "/v3/roles", nil, A...).list("roles"))[str(dr, "id")] {
		t.Errorf("GET /v3/roles lists a domain-specific role")
	}
	// a group's role on the project reaches its members' tokens
	e.must(204, "PUT", "/v3/projects/"+pid+"/groups/"+gid+"/roles/"+str(r1, "id"), nil, A...)
	login := func() (int, map[string]any) {
		r := e.do("POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-gu-12345"},
			map[string]any{"project": map[string]any{"id": pid}}))
		return r.code, r.obj("token")
	}
	if code, _ := login(); code != 401 {
		t.Fatalf("login before joining the group: got %d, want 401", code)
	}
	e.must(204, "PUT", "/v3/groups/"+gid+"/users/"+uid, nil, A...)
	e.must(204, "HEAD", "/v3/groups/"+gid+"/users/"+uid, nil, A...)
	if l := e.must(200, "GET", "/v3/users/"+uid+"/groups", nil, A...).list("groups"); len(l) != 1 || str(l[0], "id") != gid {
		t.Errorf("user's groups: got %v", l)
	}
	// r1 implies r2: both are in the token
	e.must(201, "PUT", "/v3/roles/"+str(r1, "id")+"/implies/"+str(r2, "id"), nil, A...)
	e.must(204, "HEAD", "/v3/roles/"+str(r1, "id")+"/implies/"+str(r2, "id"), nil, A...)
	e.must(403, "PUT", "/v3/roles/"+str(r1, "id")+"/implies/"+str(dr, "id"), nil, A...) // global → domain role
	code, body := login()
	if code != 201 {
		t.Fatalf("login as a group member: got %d", code)
	}
	names := map[string]bool{}
	for _, ro := range body["roles"].([]any) {
		names[str(ro.(map[string]any), "name")] = true
	}
	if len(names) != 2 || !names["r1"] || !names["r2"] {
		t.Errorf("token roles: got %v, want r1 and r2 (implied)", names)
	}
	eff := e.must(200, "GET", "/v3/role_assignments?effective&user.id="+uid, nil, A...).list("role_assignments")
	if len(eff) != 2 || str(sub(eff[0], "links"), "membership") == "" {
		t.Errorf("effective assignments: got %v, want r1 and r2 through the group", eff)
	}
	if l := e.must(200, "GET", "/v3/role_assignments?group.id="+gid, nil, A...).list("role_assignments"); len(l) != 1 {
		t.Errorf("group assignments: got %v, want 1", l)
	}
	e.must(400, "GET", "/v3/role_assignments?effective&group.id="+gid, nil, A...)
	inf := e.must(200, "GET", "/v3/role_inferences", nil, A...).list("role_inferences")
	if len(inf) != 1 || len(inf[0]["implies"].([]any)) != 1 {
		t.Errorf("role inferences: got %v", inf)
	}
	// leaving the group revokes the token and the role
	tokID := e.do("POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-gu-12345"},
		map[string]any{"project": map[string]any{"id": pid}})).hdr.Get("X-Subject-Token")
	e.must(204, "DELETE", "/v3/groups/"+gid+"/users/"+uid, nil, A...)
	e.must(404, "GET", "/v3/auth/tokens", nil, append(A, "X-Subject-Token", tokID)...)
	if code, _ := login(); code != 401 {
		t.Errorf("login after leaving the group: got %d, want 401", code)
	}
	// domain and system grants, for users and groups
	for _, path := range []string{"/v3/domains/" + did + "/users/" + uid, "/v3/domains/" + did + "/groups/" + gid,
		"/v3/system/users/" + uid, "/v3/system/groups/" + gid} {
		e.must(204, "PUT", path+"/roles/"+str(r2, "id"), nil, A...)
		e.must(204, "HEAD", path+"/roles/"+str(r2, "id"), nil, A...)
		if l := e.must(200, "GET", path+"/roles", nil, A...).list("roles"); len(l) != 1 || str(l[0], "id") != str(r2, "id") {
			t.Errorf("GET %s/roles: got %v", path, l)
		}
	}
	e.must(403, "PUT", "/v3/system/users/"+uid+"/roles/"+str(dr, "id"), nil, A...)
	// a domain-scoped token and the user's domains
	r := e.must(201, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-gu-12345"},
		map[string]any{"domain": map[string]any{"id": did}}))
	if str(sub(r.obj("token"), "domain"), "id") != did || r.obj("token")["catalog"] == nil {
		t.Errorf("domain-scoped token: got %v", r.obj("token"))
	}
	dt := r.hdr.Get("X-Subject-Token")
	if l := e.must(200, "GET", "/v3/auth/domains", nil, as(dt)...).list("domains"); len(l) != 1 || str(l[0], "id") != did {
		t.Errorf("GET /v3/auth/domains: got %v", l)
	}
	if l := e.must(200, "GET", "/v3/auth/system", nil, as(dt)...).list("system"); len(l) != 1 {
		t.Errorf("GET /v3/auth/system: got %v", l)
	}
	// deleting the role takes its grants and rules and revokes the tokens holding it
	e.must(204, "DELETE", "/v3/roles/"+str(r2, "id"), nil, A...)
	e.must(404, "GET", "/v3/auth/tokens", nil, append(A, "X-Subject-Token", dt)...)
	e.must(404, "HEAD", "/v3/system/users/"+uid+"/roles/"+str(r2, "id"), nil, A...)
	if inf := e.must(200, "GET", "/v3/role_inferences", nil, A...).list("role_inferences"); len(inf) != 0 {
		t.Errorf("role inferences after deleting the implied role: got %v", inf)
	}
	// the group goes with its grants
	e.must(204, "DELETE", "/v3/groups/"+gid, nil, A...)
	if l := e.must(200, "GET", "/v3/role_assignments?scope.project.id="+pid, nil, A...).list("role_assignments"); len(l) != 0 {
		t.Errorf("assignments on the project after deleting the group: got %v", l)
	}
}

func TestTokenMethodRescope(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	r := e.must(201, "POST", "/v3/auth/tokens", passwordBody(
		map[string]any{"name": "admin", "password": adminPass, "domain": map[string]any{"id": "default"}}, "unscoped"))
	unscoped := r.hdr.Get("X-Subject-Token")
	exp := str(r.obj("token"), "expires_at")
	body := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"},
		"token": map[string]any{"id": unscoped}}, "scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}}}}
	e.clock.Advance(60e9)
	r = e.must(201, "POST", "/v3/auth/tokens", body)
	got := r.obj("token")
	if str(got, "expires_at") != exp || str(sub(got, "project"), "name") != "admin" || len(got["methods"].([]any)) != 2 {
		t.Errorf("rescoped token: got %v; want the original expiry %s, project admin, methods token and password", got, exp)
	}
	if a := got["audit_ids"].([]any); len(a) != 2 {
		t.Errorf("rescoped token audit_ids: got %v, want its own and the original's", a)
	}
	e.must(204, "DELETE", "/v3/auth/tokens", nil, as(tok)[0], tok, "X-Subject-Token", unscoped)
	e.must(401, "POST", "/v3/auth/tokens", body)
	e.must(401, "POST", "/v3/auth/tokens", map[string]any{"auth": map[string]any{"identity": map[string]any{
		"methods": []string{"token"}, "token": map[string]any{"id": "not-a-token"}}}})
	if strings.Contains(e.logs.String(), unscoped) {
		t.Errorf("the logs hold a token")
	}
}

func TestCatalogAPI(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	reg := e.mk(tok, "/v3/regions", "region", map[string]any{"description": "r"})
	if reg["parent_region_id"] != nil || str(reg, "id") == "" {
		t.Fatalf("region: got %v", reg)
	}
	e.mk(tok, "/v3/regions", "region", map[string]any{"id": "child", "parent_region_id": str(reg, "id")})
	e.must(400, "POST", "/v3/regions", map[string]any{"region": map[string]any{"parent_region_id": "nope"}}, A...)
	e.must(409, "POST", "/v3/regions", map[string]any{"region": map[string]any{"id": "child"}}, A...)
	if l := e.must(200, "GET", "/v3/regions?parent_region_id="+str(reg, "id"), nil, A...).list("regions"); len(l) != 1 {
		t.Errorf("regions by parent: got %v", l)
	}
	e.must(403, "DELETE", "/v3/regions/"+str(reg, "id"), nil, A...) // has a child
	svc := e.mk(tok, "/v3/services", "service", map[string]any{"name": "s", "type": "object-store"})
	e.must(400, "POST", "/v3/services", map[string]any{"service": map[string]any{"name": "s"}}, A...)
	sid := str(svc, "id")
	for _, en := range []any{"True", "False"} {
		e.must(400, "POST", "/v3/endpoints", map[string]any{"endpoint": map[string]any{"service_id": sid, "interface": "public",
			"url": "http://x", "enabled": en}}, A...)
	}
	e.must(400, "POST", "/v3/endpoints", map[string]any{"endpoint": map[string]any{"service_id": sid, "interface": "sideways", "url": "http://x"}}, A...)
	ep := e.mk(tok, "/v3/endpoints", "endpoint", map[string]any{"service_id": sid, "interface": "public", "url": "http://swift:8080", "region": "new-region"})
	if str(ep, "region") != "new-region" || str(ep, "region_id") != "new-region" || ep["enabled"] != true {
		t.Fatalf("endpoint: got %v", ep)
	}
	e.must(200, "GET", "/v3/regions/new-region", nil, A...) // created by the endpoint
	e.must(403, "DELETE", "/v3/regions/new-region", nil, A...)
	e.must(400, "PATCH", "/v3/endpoints/"+str(ep, "id"), map[string]any{"endpoint": map[string]any{"enabled": "True"}}, A...)
	if l := e.must(200, "GET", "/v3/endpoints?service_id="+sid, nil, A...).list("endpoints"); len(l) != 1 {
		t.Errorf("endpoints by service: got %v", l)
	}
	// the stored service is in new tokens' catalogs
	_, body := e.login("admin", adminPass, "admin")
	found := false
	for _, c := range body["catalog"].([]any) {
		found = found || str(c.(map[string]any), "type") == "object-store"
	}
	if !found {
		t.Errorf("the token's catalog lacks the stored service")
	}
	eg := e.mk(tok, "/v3/OS-EP-FILTER/endpoint_groups", "endpoint_group", map[string]any{"name": "eg", "filters": map[string]any{"service_id": sid}})
	e.must(200, "HEAD", "/v3/OS-EP-FILTER/endpoint_groups/"+str(eg, "id"), nil, A...)
	e.must(400, "POST", "/v3/OS-EP-FILTER/endpoint_groups", map[string]any{"endpoint_group": map[string]any{"name": "x", "filters": map[string]any{"color": "x"}}}, A...)
	// deleting the service deletes its endpoints
	e.must(204, "DELETE", "/v3/services/"+sid, nil, A...)
	e.must(404, "GET", "/v3/endpoints/"+str(ep, "id"), nil, A...)
	e.must(204, "DELETE", "/v3/regions/new-region", nil, A...)
}

func TestCredentialsPoliciesConsumers(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	users := e.must(200, "GET", "/v3/users?name=admin", nil, A...).list("users")
	adminID := str(users[0], "id")
	pid := str(e.must(200, "GET", "/v3/projects?name=admin", nil, A...).list("projects")[0], "id")
	blob := `{"access": "AK1", "secret": "SK1"}`
	c := e.mk(tok, "/v3/credentials", "credential", map[string]any{"user_id": adminID, "project_id": pid, "type": "ec2", "blob": blob})
	sum := sha256.Sum256([]byte("AK1"))
	if str(c, "id") != hex.EncodeToString(sum[:]) || str(c, "blob") != blob {
		t.Fatalf("ec2 credential: got %v, want the SHA-256 of its access key as ID", c)
	}
	e.must(400, "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"user_id": adminID, "type": "ec2", "blob": blob}}, A...)
	e.must(400, "POST", "/v3/credentials", map[string]any{"credential": map[string]any{"user_id": "nope", "type": "cert", "blob": "x"}}, A...)
	up := e.must(200, "PATCH", "/v3/credentials/"+str(c, "id"), map[string]any{"credential": map[string]any{"blob": `{"access": "AK2", "secret": "SK2"}`}}, A...).obj("credential")
	if str(up, "id") != str(c, "id") || !strings.Contains(str(up, "blob"), "AK2") {
		t.Errorf("updated credential: got %v", up)
	}
	// another user sees none of it
	other := e.mkUser(tok, "other", "pw-other-123", "default")
	member := str(e.must(200, "GET", "/v3/roles?name=member", nil, A...).list("roles")[0], "id")
	e.must(204, "PUT", "/v3/projects/"+pid+"/users/"+other+"/roles/"+member, nil, A...)
	otok, _ := e.login("other", "pw-other-123", "admin")
	if l := e.must(200, "GET", "/v3/credentials", nil, as(otok)...).list("credentials"); len(l) != 0 {
		t.Errorf("another user lists credentials: %v", l)
	}
	e.must(403, "GET", "/v3/credentials/"+str(c, "id"), nil, as(otok)...)
	e.must(204, "DELETE", "/v3/credentials/"+str(c, "id"), nil, A...)

	pol := e.mk(tok, "/v3/policies", "policy", map[string]any{"blob": "{}", "type": "application/json"})
	e.must(400, "POST", "/v3/policies", map[string]any{"policy": map[string]any{"blob": "{}"}}, A...)
	if got := e.must(200, "PATCH", "/v3/policies/"+str(pol, "id"), map[string]any{"policy": map[string]any{"type": "t2"}}, A...).obj("policy"); str(got, "type") != "t2" || str(got, "blob") != "{}" {
		t.Errorf("updated policy: got %v", got)
	}

	con := e.mk(tok, "/v3/OS-OAUTH1/consumers", "consumer", map[string]any{"description": "c"})
	secret := str(con, "secret")
	if secret == "" {
		t.Fatalf("consumer create: no secret in %v", con)
	}
	shown := e.must(200, "GET", "/v3/OS-OAUTH1/consumers/"+str(con, "id"), nil, A...)
	if strings.Contains(shown.raw, secret) || strings.Contains(shown.raw, "secret") {
		t.Errorf("consumer show reveals its secret: %s", shown.raw)
	}
	e.must(400, "PATCH", "/v3/OS-OAUTH1/consumers/"+str(con, "id"), map[string]any{"consumer": map[string]any{"secret": "x"}}, A...)
	e.must(200, "PATCH", "/v3/OS-OAUTH1/consumers/"+str(con, "id"), map[string]any{"consumer": map[string]any{"description": "d"}}, A...)
	e.must(403, "GET", "/v3/OS-OAUTH1/consumers", nil, as(otok)...)
}

func TestDomainConfig(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	did := str(e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "cfg"}), "id")
	base := "/v3/domains/" + did + "/config"
	e.must(404, "GET", base, nil, A...)
	cfg := map[string]any{"identity": map[string]any{"driver": "ldap"}, "ldap": map[string]any{"url": "ldap://x", "password": "ldap-s3cret"}}
	r := e.must(201, "PUT", base, map[string]any{"config": cfg}, A...)
	if strings.Contains(r.raw, "ldap-s3cret") {
		t.Errorf("the config answer shows the ldap password: %s", r.raw)
	}
	e.must(403, "PUT", base, map[string]any{"config": map[string]any{"ldap": map[string]any{"colour": "x"}}}, A...)
	e.must(403, "PUT", base, map[string]any{"config": map[string]any{"nova": map[string]any{"x": 1}}}, A...)
	if got := e.must(200, "GET", base+"/ldap/url", nil, A...).obj("config"); str(got, "url") != "ldap://x" {
		t.Errorf("GET ldap/url: got %v", got)
	}
	e.must(404, "GET", base+"/ldap/password", nil, A...)
	up := e.must(200, "PATCH", base+"/identity", map[string]any{"config": map[string]any{"identity": map[string]any{"list_limit": 5}}}, A...).obj("config")
	if sub(up, "identity")["list_limit"] != float64(5) || str(sub(up, "identity"), "driver") != "ldap" {
		t.Errorf("PATCH identity: got %v", up)
	}
	up = e.must(200, "PATCH", base+"/identity/driver", map[string]any{"config": map[string]any{"driver": "sql"}}, A...).obj("config")
	if str(sub(up, "identity"), "driver") != "sql" {
		t.Errorf("PATCH identity/driver: got %v", up)
	}
	e.must(204, "DELETE", base+"/identity/driver", nil, A...)
	e.must(404, "GET", base+"/identity/driver", nil, A...)
	e.must(204, "DELETE", base+"/identity", nil, A...)
	e.must(404, "GET", base+"/identity", nil, A...)
	if d := e.must(200, "GET", "/v3/domains/config/default", nil, A...).obj("config"); str(sub(d, "identity"), "driver") != "sql" || sub(d, "ldap") == nil {
		t.Errorf("default config: got %v", d)
	}
	if d := e.must(200, "GET", "/v3/domains/config/ldap/url/default", nil, A...).obj("config"); str(d, "url") != "ldap://localhost" {
		t.Errorf("default ldap url: got %v", d)
	}
	e.must(204, "DELETE", base, nil, A...)
	e.must(404, "GET", base, nil, A...)
}

func TestIdentityVersions(t *testing.T) {
	e := newEnv(t)
	r := e.must(300, "GET", "/identity/", nil)
	vals, _ := sub(r.body, "versions")["values"].([]any)
	if len(vals) != 1 || str(vals[0].(map[string]any), "id") != "v3.14" {
		t.Fatalf("GET /identity/: got %s", r.raw)
	}
	tok, _ := e.login("admin", adminPass, "admin")
	e.must(200, "GET", "/identity/v3/users", nil, as(tok)...)
}

func TestProjectTags(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	pid := str(e.mk(tok, "/v3/projects", "project", map[string]any{"name": "tagged"}), "id")
	base := "/v3/projects/" + pid + "/tags"
	r := e.must(201, "PUT", base+"/one", nil, A...)
	if r.raw != "" {
		t.Errorf("PUT a tag: body %q, want none", r.raw)
	}
	e.must(204, "GET", base+"/one", nil, A...)
	e.must(400, "PUT", base+"/a,b", nil, A...)
	got := e.must(200, "PUT", base, map[string]any{"tags": []string{"x", "y", "z"}}, A...).body["tags"].([]any)
	if len(got) != 3 {
		t.Fatalf("PUT tags: got %v", got)
	}
	e.must(400, "PUT", base, map[string]any{"tags": []string{"x", "x"}}, A...)
	e.must(404, "GET", base+"/one", nil, A...)
	if l := e.must(200, "GET", "/v3/projects?tags=x,y", nil, A...).list("projects"); len(l) != 1 || str(l[0], "id") != pid {
		t.Errorf("GET ?tags=x,y: got %v", l)
	}
	if l := e.must(200, "GET", "/v3/projects?not-tags-any=z", nil, A...).list("projects"); ids(l)[pid] {
		t.Errorf("GET ?not-tags-any=z lists the project tagged z")
	}
	e.must(204, "DELETE", base+"/x", nil, A...)
	e.must(404, "DELETE", base+"/x", nil, A...)
	e.must(204, "DELETE", base, nil, A...)
	if l := e.must(200, "GET", base, nil, A...).body["tags"].([]any); len(l) != 0 {
		t.Errorf("tags after DELETE all: got %v", l)
	}
	// a user without a role on the project can neither read nor change them
	e.mkUser(tok, "outsider", "pw-outsider-1", "default")
	uid := str(e.must(200, "GET", "/v3/users?name=outsider", nil, A...).list("users")[0], "id")
	other := str(e.mk(tok, "/v3/projects", "project", map[string]any{"name": "other"}), "id")
	member := str(e.must(200, "GET", "/v3/roles?name=member", nil, A...).list("roles")[0], "id")
	e.must(204, "PUT", "/v3/projects/"+other+"/users/"+uid+"/roles/"+member, nil, A...)
	otok, _ := e.login("outsider", "pw-outsider-1", "other")
	e.must(403, "GET", base, nil, as(otok)...)
	e.must(403, "PUT", base+"/mine", nil, as(otok)...)
	e.must(200, "GET", "/v3/projects/"+other+"/tags", nil, as(otok)...)
}

func TestInheritedGrants(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	did := str(e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "inh"}), "id")
	top := str(e.mk(tok, "/v3/projects", "project", map[string]any{"name": "top", "domain_id": did}), "id")
	leaf := str(e.mk(tok, "/v3/projects", "project", map[string]any{"name": "leaf", "domain_id": did, "parent_id": top}), "id")
	uid := e.mkUser(tok, "iu", "pw-iu-123456", did)
	gid := str(e.mk(tok, "/v3/groups", "group", map[string]any{"name": "ig", "domain_id": did}), "id")
	rid := str(e.mk(tok, "/v3/roles", "role", map[string]any{"name": "inh-role"}), "id")
	scoped := func(p string) int {
		return e.do("POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-iu-123456"},
			map[string]any{"project": map[string]any{"id": p}})).code
	}
	eff := func(p string) int {
		return len(e.must(200, "GET", "/v3/role_assignments?effective&user.id="+uid+"&scope.project.id="+p, nil, A...).list("role_assignments"))
	}
	// on the domain, inherited to its projects: both projects, not the domain
	dpath := "/v3/OS-INHERIT/domains/" + did + "/users/" + uid + "/roles/" + rid + "/inherited_to_projects"
	e.must(204, "PUT", dpath, nil, A...)
	e.must(204, "HEAD", dpath, nil, A...)
	if l := e.must(200, "GET", "/v3/OS-INHERIT/domains/"+did+"/users/"+uid+"/roles/inherited_to_projects", nil, A...).list("roles"); len(l) != 1 {
		t.Errorf("inherited roles on the domain: got %v", l)
	}
	if eff(top) != 1 || eff(leaf) != 1 || scoped(top) != 201 || scoped(leaf) != 201 {
		t.Errorf("inherited domain grant: effective %d/%d, logins %d/%d; want 1/1 and 201/201", eff(top), eff(leaf), scoped(top), scoped(leaf))
	}
	e.must(401, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": uid, "password": "pw-iu-123456"},
		map[string]any{"domain": map[string]any{"id": did}}))
	l := e.must(200, "GET", "/v3/role_assignments?scope.OS-INHERIT:inherited_to=projects", nil, A...).list("role_assignments")
	if len(l) != 1 || str(sub(l[0], "scope"), "OS-INHERIT:inherited_to") != "projects" {
		t.Errorf("inherited assignments: got %v", l)
	}
	e.must(204, "DELETE", dpath, nil, A...)
	if eff(top) != 0 || eff(leaf) != 0 || scoped(leaf) != 401 {
		t.Errorf("after revoking the inherited domain grant: effective %d/%d, login %d", eff(top), eff(leaf), scoped(leaf))
	}
	// on a project, inherited to its subtree through a group: the leaf, not the project
	e.must(204, "PUT", "/v3/groups/"+gid+"/users/"+uid, nil, A...)
	ppath := "/v3/OS-INHERIT/projects/" + top + "/groups/" + gid + "/roles/" + rid + "/inherited_to_projects"
	e.must(204, "PUT", ppath, nil, A...)
	e.must(204, "GET", ppath, nil, A...)
	if eff(top) != 0 || eff(leaf) != 1 || scoped(top) != 401 || scoped(leaf) != 201 {
		t.Errorf("inherited project grant: effective %d/%d, logins %d/%d; want 0/1 and 401/201", eff(top), eff(leaf), scoped(top), scoped(leaf))
	}
	e.must(204, "DELETE", ppath, nil, A...)
	e.must(404, "GET", ppath, nil, A...)
	if scoped(leaf) != 401 {
		t.Errorf("login on the leaf after revoking the inherited project grant: want 401")
	}
}

func TestApplicationCredentials(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	uid := e.mkUser(tok, "acu", "pw-acu-123456", "default")
	pid := str(e.must(200, "GET", "/v3/projects?name=admin", nil, A...).list("projects")[0], "id")
	member := str(e.must(200, "GET", "/v3/roles?name=member", nil, A...).list("roles")[0], "id")
	reader := str(e.must(200, "GET", "/v3/roles?name=reader", nil, A...).list("roles")[0], "id")
	e.must(204, "PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+member, nil, A...)
	e.must(204, "PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+reader, nil, A...)
	utok, _ := e.login("acu", "pw-acu-123456", "admin")
	U := as(utok)
	base := "/v3/users/" + uid + "/application_credentials"
	e.must(403, "POST", "/v3/users/"+str(e.must(200, "GET", "/v3/users?name=admin", nil, A...).list("users")[0], "id")+"/application_credentials",
		map[string]any{"application_credential": map[string]any{"name": "not-mine"}}, U...)
	e.must(400, "POST", base, map[string]any{"application_credential": map[string]any{"name": "x", "roles": []map[string]string{{"name": "admin"}}}}, U...)
	ac := e.must(201, "POST", base, map[string]any{"application_credential": map[string]any{"name": "ci",
		"roles": []map[string]string{{"id": reader}}, "expires_at": "2026-11-25T16:30:00.000000"}}, U...).obj("application_credential")
	secret := str(ac, "secret")
	if secret == "" || str(ac, "project_id") != pid || str(ac, "expires_at") != "2026-11-25T16:30:00.000000" || len(ac["roles"].([]any)) != 1 {
		t.Fatalf("created application credential: got %v", ac)
	}
	e.must(409, "POST", base, map[string]any{"application_credential": map[string]any{"name": "ci"}}, U...)
	shown := e.must(200, "GET", base+"/"+str(ac, "id"), nil, U...)
	if strings.Contains(shown.raw, secret) || strings.Contains(shown.raw, `"secret"`) {
		t.Errorf("show reveals the secret: %s", shown.raw)
	}
	if l := e.must(200, "GET", base+"?name=ci", nil, U...).list("application_credentials"); len(l) != 1 {
		t.Errorf("list by name: got %v", l)
	}
	login := func(sec string) resp {
		return e.do("POST", "/v3/auth/tokens", map[string]any{"auth": map[string]any{"identity": map[string]any{
			"methods": []string{"application_credential"}, "application_credential": map[string]any{"id": str(ac, "id"), "secret": sec}}}})
	}
	r := login(secret)
	if r.code != 201 {
		t.Fatalf("application credential login: got %d %s", r.code, r.raw)
	}
	body := r.obj("token")
	roles := body["roles"].([]any)
	if str(sub(body, "project"), "id") != pid || len(roles) != 1 || str(roles[0].(map[string]any), "id") != reader ||
		sub(body, "application_credential")["restricted"] != true {
		t.Errorf("application credential token: got %v", body)
	}
	if str(body, "expires_at") != "2026-11-25T16:30:00.000000Z" {
		t.Errorf("the token outlives its credential: expires %s", str(body, "expires_at"))
	}
	actok := r.hdr.Get("X-Subject-Token")
	// its token can neither make more credentials nor be rescoped
	e.must(403, "POST", base, map[string]any{"application_credential": map[string]any{"name": "more"}}, as(actok)...)
	e.must(401, "POST", "/v3/auth/tokens", map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"},
		"token": map[string]any{"id": actok}}, "scope": map[string]any{"project": map[string]any{"id": pid}}}})
	if code := login("wrong").code; code != 401 {
		t.Errorf("wrong secret: got %d, want 401", code)
	}
	// losing the role disables the credential
	e.must(204, "DELETE", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+reader, nil, A...)
	if code := login(secret).code; code != 401 {
		t.Errorf("login after the user lost the role: got %d, want 401", code)
	}
	// expiry
	e.must(204, "PUT", "/v3/projects/"+pid+"/users/"+uid+"/roles/"+reader, nil, A...)
	e.clock.Advance(3600e9)
	if code := login(secret).code; code != 401 {
		t.Errorf("login after expiry: got %d, want 401", code)
	}
	utok, _ = e.login("acu", "pw-acu-123456", "admin")
	e.must(204, "DELETE", base+"/"+str(ac, "id"), nil, as(utok)...)
	e.must(404, "GET", base+"/"+str(ac, "id"), nil, as(utok)...)
	// the secret was in the create answer only, and never in a log
	if strings.Count(e.bodies.String(), secret) != 1 || strings.Contains(e.logs.String(), secret) {
		t.Errorf("the secret is in %d answers (want 1) or in the logs", strings.Count(e.bodies.String(), secret))
	}
}

func TestTrusts(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.login("admin", adminPass, "admin")
	A := as(tok)
	pid := str(e.mk(tok, "/v3/projects", "project", map[string]any{"name": "trusted"}), "id")
	trustor := e.mkUser(tok, "trustor", "pw-trustor-1", "default")
	trustee := e.mkUser(tok, "trustee", "pw-trustee-1", "default")
	keep := str(e.mk(tok, "/v3/roles", "role", map[string]any{"name": "delegated"}), "id")
	mine := str(e.mk(tok, "/v3/roles", "role", map[string]any{"name": "not-delegated"}), "id")
	for _, r := range []string{keep, mine} {
		e.must(204, "PUT", "/v3/projects/"+pid+"/users/"+trustor+"/roles/"+r, nil, A...)
	}
	ttok, _ := e.login("trustor", "pw-trustor-1", "trusted")
	T := as(ttok)
	body := func(extra map[string]any) map[string]any {
		b := map[string]any{"trustor_user_id": trustor, "trustee_user_id": trustee, "project_id": pid,
			"impersonation": true, "roles": []map[string]string{{"name": "delegated"}}}
		for k, v := range extra {
			b[k] = v
		}
		return map[string]any{"trust": b}
	}
	e.must(400, "POST", "/v3/OS-TRUST/trusts", body(map[string]any{"expires_at": "bad.123Z"}), T...)
	e.must(403, "POST", "/v3/OS-TRUST/trusts", body(nil), A...) // admin is not the trustor
	e.must(404, "POST", "/v3/OS-TRUST/trusts", body(map[string]any{"roles": []map[string]string{{"name": "admin"}}}), T...)
	tr := e.must(201, "POST", "/v3/OS-TRUST/trusts", body(map[string]any{"remaining_uses": 1, "expires_at": "2026-11-25T16:30:00Z"}), T...).obj("trust")
	tid := str(tr, "id")
	if str(tr, "expires_at") != "2026-11-25T16:30:00.000000Z" || len(tr["roles"].([]any)) != 1 || tr["impersonation"] != true {
		t.Fatalf("created trust: got %v", tr)
	}
	e.must(200, "GET", "/v3/OS-TRUST/trusts/"+tid+"/roles/"+keep, nil, T...)
	e.must(404, "GET", "/v3/OS-TRUST/trusts/"+tid+"/roles/"+mine, nil, T...)
	e.must(200, "HEAD", "/v3/OS-TRUST/trusts/"+tid+"/roles/"+keep, nil, T...)
	if l := e.must(200, "GET", "/v3/OS-TRUST/trusts/?trustor_user_id="+trustor, nil, T...).list("trusts"); len(l) != 1 {
		t.Errorf("trusts of the trustor: got %v", l)
	}
	e.must(403, "GET", "/v3/OS-TRUST/trusts", nil, T...) // a user lists only with a filter naming itself
	// the trustee logs in with the trust: the trustor's identity, only the delegated role
	login := func() resp {
		return e.do("POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": trustee, "password": "pw-trustee-1"},
			map[string]any{"OS-TRUST:trust": map[string]any{"id": tid}}))
	}
	r := login()
	if r.code != 201 {
		t.Fatalf("trust login: got %d %s", r.code, r.raw)
	}
	got := r.obj("token")
	roles := got["roles"].([]any)
	if str(sub(got, "user"), "id") != trustor || str(sub(got, "project"), "id") != pid || len(roles) != 1 ||
		str(roles[0].(map[string]any), "id") != keep || sub(got, "OS-TRUST:trust")["impersonation"] != true {
		t.Errorf("trust token: got %v", got)
	}
	trustTok := r.hdr.Get("X-Subject-Token")
	e.must(403, "POST", "/v3/OS-TRUST/trusts", body(nil), as(trustTok)...) // no redelegation
	if code := login().code; code != 401 {
		t.Errorf("a second login with a single-use trust: got %d, want 401", code)
	}
	// the trustor alone may not log in with it
	if code := e.do("POST", "/v3/auth/tokens", passwordBody(map[string]any{"id": trustor, "password": "pw-trustor-1"},
		map[string]any{"OS-TRUST:trust": map[string]any{"id": tid}})).code; code != 401 {
		t.Errorf("trust login by the trustor: got %d, want 401", code)
	}
	e.must(403, "DELETE", "/v3/OS-TRUST/trusts/"+tid, nil, as(e.tokenOf("trustee", "pw-trustee-1"))...)
	e.must(204, "DELETE", "/v3/OS-TRUST/trusts/"+tid, nil, T...)
	e.must(404, "GET", "/v3/auth/tokens", nil, append(A, "X-Subject-Token", trustTok)...)
	e.must(404, "GET", "/v3/OS-TRUST/trusts/"+tid, nil, T...)
}

// tokenOf logs a user in unscoped and returns the token.
func (e *env) tokenOf(name, password string) string {
	e.t.Helper()
	return e.must(201, "POST", "/v3/auth/tokens", passwordBody(map[string]any{"name": name, "password": password,
		"domain": map[string]any{"id": "default"}}, "unscoped")).hdr.Get("X-Subject-Token")
}

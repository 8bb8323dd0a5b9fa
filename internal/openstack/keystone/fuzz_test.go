package keystone_test

import (
	"testing"
)

// FuzzLoginBody posts arbitrary bodies to POST /v3/auth/tokens of a real server: whatever the
// input, the answer is a token or a 4xx in Keystone's error shape, never a 5xx or a panic.
func FuzzLoginBody(f *testing.F) {
	e := newEnv(f)
	for _, s := range []string{
		`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"password": "` + adminPass + `", "name": "admin", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}`,
		`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x/../y", "password": "p"}}}, "scope": "unscoped"}}`,
		`{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "a", "domain": {"id": "%2F"}, "password": null}}}}}`,
		`{"auth": {"identity": {"methods": [], "password": {}}, "scope": {"project": {"id": 1}}}}`,
		`{"auth": {"identity": {"methods": ["password", "token"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "x"}}, "token": 1}}}`,
		`{"auth": null}`, `[]`, `null`, `{"auth": {"identity": `, `{"auth": {"scope": {"system": {"all": true}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t
		r := e.do("POST", "/v3/auth/tokens", body)
		if r.code >= 500 {
			t.Fatalf("POST /v3/auth/tokens with %q: got %d %s", body, r.code, r.raw)
		}
		if r.code != 201 && r.errMsg() == "" {
			t.Fatalf("POST /v3/auth/tokens with %q: got %d without a Keystone error body: %s", body, r.code, r.raw)
		}
	})
}

// FuzzAdminBodies sends arbitrary bodies, as an admin, to every create and update that decodes a
// body: whatever the input, the answer is a 2xx or a 4xx in Keystone's error shape.
func FuzzAdminBodies(f *testing.F) {
	e := newEnv(f)
	tok, _ := e.login("admin", adminPass, "admin")
	did := str(e.mk(tok, "/v3/domains", "domain", map[string]any{"name": "fuzz"}), "id")
	adminID := str(e.must(200, "GET", "/v3/users?name=admin", nil, as(tok)...).list("users")[0], "id")
	routes := []struct{ method, path string }{
		{"POST", "/v3/domains"}, {"PATCH", "/v3/domains/" + did}, {"POST", "/v3/groups"}, {"POST", "/v3/roles"},
		{"POST", "/v3/projects"}, {"POST", "/v3/users"}, {"POST", "/v3/regions"}, {"POST", "/v3/services"},
		{"POST", "/v3/endpoints"}, {"POST", "/v3/OS-EP-FILTER/endpoint_groups"}, {"POST", "/v3/credentials"},
		{"POST", "/v3/policies"}, {"POST", "/v3/OS-OAUTH1/consumers"}, {"PUT", "/v3/domains/" + did + "/config"},
		{"PATCH", "/v3/domains/" + did + "/config/ldap/url"}, {"POST", "/v3/OS-TRUST/trusts"},
		{"POST", "/v3/users/" + adminID + "/application_credentials"}, {"PUT", "/v3/projects/" + did + "/tags"},
	}
	for i, s := range []string{
		`{"domain": {"name": "d", "tags": ["a"], "x": {"y": [1, 2]}}}`, `{"group": {"name": "g", "domain_id": null}}`,
		`{"role": {"name": "r", "domain_id": "` + did + `"}}`, `{"region": {"id": "a/b", "parent_region_id": 5}}`,
		`{"service": {"type": ""}}`, `{"endpoint": {"url": "http://x", "interface": "public", "service_id": "s", "region": "%2F"}}`,
		`{"credential": {"type": "ec2", "blob": "{\"access\": 1}", "user_id": "` + adminID + `"}}`,
		`{"config": {"ldap": {"url": null}}}`, `{"trust": {"trustor_user_id": "` + adminID + `", "trustee_user_id": "` + adminID + `", "impersonation": false, "remaining_uses": 0}}`,
		`{"application_credential": {"name": "a", "roles": [{"id": 1}], "expires_at": "soon"}}`, `{"tags": ["a,b"]}`,
		`{}`, `null`, `[]`, `{"x": `,
	} {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		e.t = t
		rt := routes[int(which)%len(routes)]
		r := e.do(rt.method, rt.path, body, as(tok)...)
		if r.code >= 500 {
			t.Fatalf("%s %s with %q: got %d %s", rt.method, rt.path, body, r.code, r.raw)
		}
		if r.code >= 400 && r.errMsg() == "" {
			t.Fatalf("%s %s with %q: got %d without a Keystone error body: %s", rt.method, rt.path, body, r.code, r.raw)
		}
	})
}

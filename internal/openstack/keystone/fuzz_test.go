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

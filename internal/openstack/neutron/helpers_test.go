package neutron_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// env is one API server over a real embedded etcd member.
type env struct {
	t   testing.TB
	url string
	st  *store.Store
	hc  *http.Client
}

// headerAuth is a test authenticator: project from X-Project-Id, roles from X-Roles (default admin).
type headerAuth struct{}

func (headerAuth) Authenticate(r *http.Request) (*auth.Context, error) {
	roles := r.Header.Get("X-Roles")
	if roles == "" {
		roles = "admin"
	}
	p := r.Header.Get("X-Project-Id")
	if p == "" {
		p = "p1"
	}
	return &auth.Context{UserID: "u-" + p, ProjectID: p, Roles: strings.Split(roles, ",")}, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ranges, err := neutron.ParseVLANRanges("sriov:100:199,physnet2")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, headerAuth{}, neutron.Config{VLANRanges: ranges, Logger: log}, log))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &env{t: t, url: srv.URL + "/v2.0", st: st, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// resp is one API answer.
type resp struct {
	code int
	body map[string]any
	raw  string
}

func (r resp) obj(k string) map[string]any {
	m, _ := r.body[k].(map[string]any)
	return m
}

func (r resp) errType() string {
	ne, _ := r.body["NeutronError"].(map[string]any)
	s, _ := ne["type"].(string)
	return s
}

func (r resp) errMsg() string {
	ne, _ := r.body["NeutronError"].(map[string]any)
	s, _ := ne["message"].(string)
	return s
}

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
	r, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	out := resp{code: r.StatusCode, raw: string(b)}
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

func (e *env) network(name string, extra map[string]any) map[string]any {
	e.t.Helper()
	b := map[string]any{"name": name}
	for k, v := range extra {
		b[k] = v
	}
	return e.must(201, "POST", "/networks", map[string]any{"network": b}).obj("network")
}

func (e *env) subnet(netID, cidr string, extra map[string]any) map[string]any {
	e.t.Helper()
	b := map[string]any{"network_id": netID, "cidr": cidr, "ip_version": 4}
	if strings.Contains(cidr, ":") {
		b["ip_version"] = 6
	}
	for k, v := range extra {
		b[k] = v
	}
	return e.must(201, "POST", "/subnets", map[string]any{"subnet": b}).obj("subnet")
}

func (e *env) port(netID string, extra map[string]any) resp {
	e.t.Helper()
	b := map[string]any{"network_id": netID}
	for k, v := range extra {
		b[k] = v
	}
	return e.do("POST", "/ports", map[string]any{"port": b})
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) int {
	f, _ := m[k].(float64)
	return int(f)
}

func firstIP(p map[string]any) string {
	l, _ := p["fixed_ips"].([]any)
	if len(l) == 0 {
		return ""
	}
	return str(l[0].(map[string]any), "ip_address")
}

package nova_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/nova"
	"github.com/vflink/vflink/internal/store"
)

// env is neutron, glance and nova over one real embedded etcd member.
type env struct {
	t   testing.TB
	url string
	st  *store.Store
}

// withCaller puts the test caller into the context: project from X-Project-Id (default p1),
// roles from X-Roles (default admin).
func withCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		roles := r.Header.Get("X-Roles")
		if roles == "" {
			roles = "admin"
		}
		p := r.Header.Get("X-Project-Id")
		if p == "" {
			p = "p1"
		}
		c := &auth.Context{UserID: "u-" + p, ProjectID: p, Roles: strings.Split(roles, ",")}
		next.ServeHTTP(w, r.WithContext(auth.With(r.Context(), c)))
	})
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	mux := http.NewServeMux()
	net := neutron.New(st, neutron.Config{})
	net.Register(mux, "/v2.0")
	img := glance.New(st, glance.Config{})
	img.Register(mux, "/image")
	nova.New(st, net, img, nova.NewStoreScheduler(st), nova.Config{}).Register(mux, "/compute")
	srv := httptest.NewServer(withCaller(mux))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &env{t: t, url: srv.URL, st: st}
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

// fault returns the message of a Nova error body ({"badRequest": {"code", "message"}}).
func (r resp) fault(kind string) string {
	return str(r.obj(kind), "message")
}

func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
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

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// member is the header pair of a non-admin caller of project p.
func member(p string) []string { return []string{"X-Project-Id", p, "X-Roles", "member"} }

// network creates a network with a subnet; physnet "" makes a plain tenant network.
func (e *env) network(name, physnet string, vlan int, hdr ...string) string {
	e.t.Helper()
	b := map[string]any{"name": name}
	if physnet != "" {
		b["provider:network_type"] = "vlan"
		b["provider:physical_network"] = physnet
		b["provider:segmentation_id"] = vlan
	}
	id := str(e.must(201, "POST", "/v2.0/networks", map[string]any{"network": b}, hdr...).obj("network"), "id")
	e.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"network_id": id, "cidr": "10.0." + itoa(vlan%250) + ".0/24", "ip_version": 4}}, hdr...)
	return id
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (e *env) port(netID, name, vnic string, hdr ...string) map[string]any {
	e.t.Helper()
	return e.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"network_id": netID, "name": name, "binding:vnic_type": vnic}}, hdr...).obj("port")
}

func (e *env) getPort(id string) map[string]any {
	e.t.Helper()
	return e.must(200, "GET", "/v2.0/ports/"+id, nil).obj("port")
}

// setPortStatus plays the host agent: it writes the port's status straight into the store.
func (e *env) setPortStatus(id, status string) {
	e.t.Helper()
	ctx := context.Background()
	o, err := store.Get[api.Port](ctx, e.st, "ports/"+id)
	if err != nil {
		e.t.Fatal(err)
	}
	p := o.Value
	p.Status = status
	if _, err := store.Update(ctx, e.st, "ports/"+id, p, o.ModRevision); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) addHost(name string, pfs ...api.PF) {
	e.t.Helper()
	if _, err := store.Create(context.Background(), e.st, "hosts/"+name, api.Host{Name: name, PFs: pfs}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) image(name string) string {
	e.t.Helper()
	return str(e.must(201, "POST", "/image/v2/images", map[string]any{
		"name": name, "disk_format": "qcow2", "container_format": "bare", "location": "/var/lib/vflink/" + name + ".qcow2"}).body, "id")
}

func (e *env) flavor(name string) string {
	e.t.Helper()
	return str(e.must(200, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": name, "ram": 512, "vcpus": 1, "disk": 1, "id": nil}}).obj("flavor"), "id")
}

func (e *env) createServer(name, image, flavor string, ports []string, hdr ...string) resp {
	e.t.Helper()
	nets := []map[string]string{}
	for _, p := range ports {
		nets = append(nets, map[string]string{"port": p})
	}
	return e.do("POST", "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": name, "imageRef": image, "flavorRef": flavor, "min_count": 1, "max_count": 1,
		"networks": nets, "security_groups": []any{map[string]string{"name": "default"}}}}, hdr...)
}

func (e *env) server(id string, hdr ...string) map[string]any {
	e.t.Helper()
	return e.must(200, "GET", "/compute/v2.1/servers/"+id, nil, hdr...).obj("server")
}

package server_test

import (
	"context"
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

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

func TestDiscoveryHealthAndMetrics(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "p"}, neutron.Config{Logger: log}, log))
	defer func() { srv.Close(); st.Close() }()
	for _, p := range []string{"/", "/network", "/network/"} {
		if code, body := get(t, srv.URL+p); code != 200 || !strings.Contains(body, `"v2.0"`) {
			t.Fatalf("GET %s: got %d %s, want the v2.0 version document", p, code, body)
		}
	}
	for _, p := range []string{"/v2.0", "/v2.0/", "/network/v2.0/"} {
		if code, body := get(t, srv.URL+p); code != 200 || !strings.Contains(body, `"networks"`) {
			t.Fatalf("GET %s: got %d %s, want the resource list", p, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: got %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/v2.0/floatingips"); code != 404 || !strings.Contains(body, "NeutronError") {
		t.Fatalf("unknown resource: got %d %s, want 404 NeutronError", code, body)
	}
	r, err := http.Post(srv.URL+"/v2.0/networks", "application/json", strings.NewReader(`{"network": {"name": "m"}}`))
	if err != nil || r.StatusCode != 201 {
		t.Fatalf("create: %v %v", r, err)
	}
	r.Body.Close()
	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`vflink_http_requests_total{code="201",method="POST",route="/v2.0/networks"} 1`,
		`vflink_http_requests_total{code="404",method="GET",route="/"} 1`,
		`vflink_http_request_duration_seconds_count{method="POST",route="/v2.0/networks"} 1`,
		// the admission of users' writes is in the chain (no agent wrote, so nothing was held)
		"vflink_http_user_writes_waiting 0",
		"vflink_http_user_writes_queued_total 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	st.Close()
	if code, _ := get(t, srv.URL+"/healthz"); code != 503 {
		t.Fatalf("healthz with the store closed: got %d, want 503", code)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	base := server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Auth: "none", VLANRanges: "sriov:1:4094", BaseMAC: "fa:16:3e:00:00:00"}
	cases := []struct {
		name string
		mod  func(*server.Config)
		want string
	}{
		{"noauth off loopback", func(c *server.Config) { c.Listen = "0.0.0.0:0" }, "loopback"},
		{"unknown auth", func(c *server.Config) { c.Auth = "ldap" }, `"ldap"`},
		{"bad VLAN range", func(c *server.Config) { c.VLANRanges = "sriov:5:1" }, "sriov:5:1"},
		{"bad base MAC", func(c *server.Config) { c.BaseMAC = "nope" }, `"nope"`},
		{"multicast base MAC", func(c *server.Config) { c.BaseMAC = "01:00:00:00:00:00" }, "multicast"},
		{"bad etcd endpoint", func(c *server.Config) { c.EtcdEndpoints = []string{"etcd:2379"} }, "etcd:2379"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			err := server.Run(ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}

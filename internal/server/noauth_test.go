package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// With --auth none a request acts for the project it names (X-Project-Id, as a noauth Nova
// sends it) or the one its body names (tenant_id/project_id), so a noauth Nova and vflink
// agree on who owns a port; without either it is the default project's.
func TestNoAuthActsForAProject(t *testing.T) {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "default"}, neutron.Config{Logger: log}, log))
	t.Cleanup(func() { srv.Close(); st.Close() })
	post := func(path, project string, body map[string]any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if project != "" {
			req.Header.Set("X-Project-Id", project)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 201 {
			t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
		}
		for _, v := range out {
			return v.(map[string]any)
		}
		return nil
	}
	net := post("/v2.0/networks", "", map[string]any{"network": map[string]any{"name": "n", "shared": true}})
	if net["project_id"] != "default" {
		t.Fatalf("no project named: owner %v, want default", net["project_id"])
	}
	for _, c := range []struct {
		header string
		body   map[string]any
		want   string
	}{
		{"nova-project", map[string]any{}, "nova-project"},
		{"", map[string]any{"tenant_id": "from-body"}, "from-body"},
		{"", map[string]any{"project_id": "from-body2"}, "from-body2"},
		{"header", map[string]any{"project_id": "body-wins"}, "body-wins"},
	} {
		body := map[string]any{"network_id": net["id"]}
		for k, v := range c.body {
			body[k] = v
		}
		p := post("/v2.0/ports", c.header, map[string]any{"port": body})
		if p["project_id"] != c.want || p["tenant_id"] != c.want {
			t.Errorf("X-Project-Id %q body %v: port owned by %v/%v, want %s", c.header, c.body, p["project_id"], p["tenant_id"], c.want)
		}
	}
}

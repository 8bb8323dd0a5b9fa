package neutron_test

import (
	"context"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

func TestAgentsListedAliveOrNotAdminOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, h := range []string{"h1", "h2"} {
		if _, err := store.Create(ctx, e.st, "agents/"+h, api.AgentRecord{Host: h, CreatedAt: "2026-12-07T10:00:00Z", StartedAt: "2026-12-07T11:00:00Z", AdminStateUp: true}); err != nil {
			t.Fatal(err)
		}
	}
	// only h1 is registered (alive)
	if _, err := store.Create(ctx, e.st, "hosts/h1", api.Host{Name: "h1", UpdatedAt: "2026-12-07T12:00:00Z",
		PFs: []api.PF{{Name: "pf0", PhysicalNetwork: "sriov", TotalVFs: 8, NumVFs: 4}}}); err != nil {
		t.Fatal(err)
	}
	r := e.must(200, "GET", "/agents", nil)
	l, _ := r.body["agents"].([]any)
	if len(l) != 2 {
		t.Fatalf("agents: %s", r.raw)
	}
	byHost := map[string]map[string]any{}
	for _, a := range l {
		m := a.(map[string]any)
		byHost[str(m, "host")] = m
	}
	h1, h2 := byHost["h1"], byHost["h2"]
	if h1["alive"] != true || h2["alive"] != false {
		t.Errorf("alive: h1 %v h2 %v, want true false", h1["alive"], h2["alive"])
	}
	if str(h1, "agent_type") != "NIC Switch agent" || str(h1, "heartbeat_timestamp") != "2026-12-07 12:00:00" || str(h2, "heartbeat_timestamp") != "2026-12-07 11:00:00" {
		t.Errorf("agent bodies: %v %v", h1, h2)
	}
	if dm, _ := h1["configurations"].(map[string]any)["device_mappings"].(map[string]any); len(dm) != 1 {
		t.Errorf("h1 device_mappings: %v", h1["configurations"])
	}
	if l, _ := e.must(200, "GET", "/agents?alive=false", nil).body["agents"].([]any); len(l) != 1 {
		t.Errorf("alive=false filter: %v", l)
	}
	// another project's member sees none, and cannot show, change or delete one
	if l, _ := e.must(200, "GET", "/agents", nil, "X-Roles", "member").body["agents"].([]any); len(l) != 0 {
		t.Errorf("a member listed %d agents", len(l))
	}
	e.must(404, "GET", "/agents/"+str(h1, "id"), nil, "X-Roles", "member")
	e.must(403, "PUT", "/agents/"+str(h1, "id"), map[string]any{"agent": map[string]any{"description": "x"}}, "X-Roles", "member")
	// admin: show, update, delete (only a dead one)
	e.must(200, "GET", "/agents/"+str(h1, "id"), nil)
	u := e.must(200, "PUT", "/agents/"+str(h1, "id"), map[string]any{"agent": map[string]any{"description": "rack 3", "admin_state_up": false}}).obj("agent")
	if str(u, "description") != "rack 3" || u["admin_state_up"] != false {
		t.Errorf("update: %v", u)
	}
	e.must(400, "PUT", "/agents/"+str(h1, "id"), map[string]any{"agent": map[string]any{"host": "x"}})
	if r := e.must(409, "DELETE", "/agents/"+str(h1, "id"), nil); r.errType() != "AgentAlive" {
		t.Errorf("delete alive: %s", r.raw)
	}
	e.must(204, "DELETE", "/agents/"+str(h2, "id"), nil)
	e.must(404, "GET", "/agents/"+str(h2, "id"), nil)
}

func TestExternalNetworks(t *testing.T) {
	e := newEnv(t)
	ext := e.network("ext", map[string]any{"router:external": true})
	if ext["router:external"] != true {
		t.Fatalf("router:external not set: %v", ext)
	}
	// a member of another project sees it (Neutron's external rule), but may not set the flag
	r := e.must(200, "GET", "/networks/"+str(ext, "id"), nil, "X-Project-Id", "p2", "X-Roles", "member")
	if r.obj("network")["router:external"] != true {
		t.Errorf("show as p2: %s", r.raw)
	}
	if l, _ := e.must(200, "GET", "/networks?router:external=true", nil, "X-Project-Id", "p2", "X-Roles", "member").body["networks"].([]any); len(l) != 1 {
		t.Errorf("p2 lists %d external networks", len(l))
	}
	e.must(403, "POST", "/networks", map[string]any{"network": map[string]any{"router:external": true}}, "X-Project-Id", "p2", "X-Roles", "member")
	own := e.must(201, "POST", "/networks", map[string]any{"network": map[string]any{"name": "own"}}, "X-Project-Id", "p2", "X-Roles", "member").obj("network")
	e.must(403, "PUT", "/networks/"+str(own, "id"), map[string]any{"network": map[string]any{"router:external": true}}, "X-Project-Id", "p2", "X-Roles", "member")
	u := e.must(200, "PUT", "/networks/"+str(own, "id"), map[string]any{"network": map[string]any{"router:external": true}}).obj("network")
	if u["router:external"] != true {
		t.Errorf("admin update: %v", u)
	}
	e.must(400, "PUT", "/networks/"+str(own, "id"), map[string]any{"network": map[string]any{"router:external": "yes"}})
	// and p3 still cannot see a network that is neither shared nor external
	priv := e.network("private", nil)
	e.must(404, "GET", "/networks/"+str(priv, "id"), nil, "X-Project-Id", "p3", "X-Roles", "member")
}

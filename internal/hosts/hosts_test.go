package hosts_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// newAPI is the whole API (no auth) on an embedded store, both closed when the test ends.
func newAPI(t *testing.T) (*store.Store, *client.Client) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "p"}, neutron.Config{Logger: log}, log))
	t.Cleanup(func() { srv.Close(); st.Close() })
	c, _ := client.New(srv.URL)
	return st, c
}

func TestClaimsAreExclusiveBothWays(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	if err := c.RegisterHost(ctx, api.Host{Name: "h1", PFs: []api.PF{{Name: "ens1f1", PhysicalNetwork: "sriov", TotalVFs: 4, NumVFs: 4}}}); err != nil {
		t.Fatal(err)
	}
	claim := func(pci, port string) error {
		return c.ClaimVF(ctx, "h1", api.VFAllocation{PF: "ens1f1", VFIndex: 0, PCIAddress: pci, PortID: port})
	}
	if err := claim("0000:83:10.1", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := claim("0000:83:10.1", "p1"); err != nil {
		t.Fatalf("the same claim again: %v", err)
	}
	if err := claim("0000:83:10.1", "p2"); !client.IsConflict(err) {
		t.Fatalf("a VF claimed by a second port: got %v, want 409", err)
	}
	if err := claim("0000:83:10.3", "p1"); !client.IsConflict(err) {
		t.Fatalf("a second VF for one port: got %v, want 409", err)
	}
	if err := claim("bogus", "p3"); err == nil {
		t.Fatal("a malformed PCI address was accepted")
	}
	if err := c.ReleaseVF(ctx, "h1", "0000:83:10.1", "p2"); !client.IsConflict(err) {
		t.Fatalf("release by the wrong port: got %v, want 409", err)
	}
	if err := c.ReleaseVF(ctx, "h1", "0000:83:10.1", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := claim("0000:83:10.3", "p1"); err != nil {
		t.Fatalf("after release the port may hold another VF: %v", err)
	}
	hs, err := c.Hosts(ctx)
	if err != nil || len(hs) != 1 || hs[0].Name != "h1" {
		t.Fatalf("hosts: %v %v", hs, err)
	}
}

func TestOneAgentPerHost(t *testing.T) {
	ctx := context.Background()
	st, c := newAPI(t)
	reg := func(agentID string) error { return c.RegisterHost(ctx, api.Host{Name: "h1", AgentID: agentID}) }
	holder := func() string {
		t.Helper()
		hs, err := c.Hosts(ctx)
		if err != nil || len(hs) != 1 {
			t.Fatalf("hosts: %v %v", hs, err)
		}
		return hs[0].AgentID
	}
	if err := reg("cn1-0a1b"); err != nil {
		t.Fatal(err)
	}
	if err := reg("cn1-0a1b"); err != nil {
		t.Fatalf("the same agent again (a heartbeat): %v", err)
	}
	err := reg("cn2-ffee")
	if !client.IsConflict(err) || !strings.Contains(err.Error(), "cn1-0a1b") || !strings.Contains(err.Error(), "cn2-ffee") ||
		!strings.Contains(err.Error(), "one agent") {
		t.Fatalf("a second agent for h1: %v, want 409 naming both agents", err)
	}
	if got := holder(); got != "cn1-0a1b" {
		t.Fatalf("h1 is registered by %q after the refusal, want cn1-0a1b", got)
	}
	// a registration that names no agent is not checked, and keeps the agent that is there
	if err := reg(""); err != nil {
		t.Fatalf("a registration without agent_id: %v", err)
	}
	if got := holder(); got != "cn1-0a1b" {
		t.Fatalf("h1 is registered by %q after a registration without agent_id, want cn1-0a1b still", got)
	}
	if err := reg("cn2-ffee"); !client.IsConflict(err) {
		t.Fatalf("a second agent after a registration without agent_id: %v, want 409", err)
	}
	var ce *client.Error
	if err := reg("two words"); !errors.As(err, &ce) || ce.StatusCode != 400 || !strings.Contains(err.Error(), `"two words"`) {
		t.Fatalf("a malformed agent_id: %v, want 400 naming it", err)
	}
	// once the first agent's registration is gone (its lease expired), another agent may have
	// the host
	lapse := st.Txn()
	lapse.Remove("hosts/h1")
	if _, err := lapse.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reg("cn2-ffee"); err != nil {
		t.Fatalf("a second agent once the first one's registration expired: %v", err)
	}
	if got := holder(); got != "cn2-ffee" {
		t.Fatalf("h1 is registered by %q, want cn2-ffee", got)
	}
}

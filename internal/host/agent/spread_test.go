package agent_test

import (
	"context"
	"testing"

	"github.com/vflink/vflink/internal/host/sriov"
)

// A server's ports land on different PFs when the host has them (PFs cabled to two switches make
// it multi-homed), while ports of different servers still fill the first PF.
func TestServerPortsSpreadOverPFs(t *testing.T) {
	ctx := context.Background()
	r := newRigPFs(t, []sriov.FakePF{
		{Name: "ens1f0", PCIAddress: "0000:83:00.0", TotalVFs: 4, NumVFs: 4},
		{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: 4, NumVFs: 4, VFStride: 2, VFOffset: 136},
	})
	c := r.c
	byName := map[string]string{}
	for _, p := range []struct{ name, server string }{{"a1", "vm1"}, {"a2", "vm1"}, {"b1", "vm2"}, {"c1", "vm3"}} {
		port, err := c.CreatePort(ctx, map[string]any{"network_id": r.net, "binding:vnic_type": "direct", "binding:host_id": "h1",
			"device_id": p.server, "name": p.name})
		if err != nil {
			t.Fatal(err)
		}
		byName[p.name] = port.ID
	}
	w := r.converge(t, r.agent(t))
	pf := map[string]string{}
	for _, al := range w.Allocations {
		pf[al.PortID] = al.PF
	}
	if pf[byName["a1"]] == "" || pf[byName["a2"]] == "" || pf[byName["a1"]] == pf[byName["a2"]] {
		t.Fatalf("vm1's ports on PFs %q and %q, want two different PFs", pf[byName["a1"]], pf[byName["a2"]])
	}
	if pf[byName["b1"]] != "ens1f0" || pf[byName["c1"]] != "ens1f0" {
		t.Errorf("single-port servers on %q and %q, want the first PF (ens1f0) for both", pf[byName["b1"]], pf[byName["c1"]])
	}
}

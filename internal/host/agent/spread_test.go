package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// A server's ports land on different PFs when the host has them (PFs cabled to two switches make
// it multi-homed), while ports of different servers still fill the first PF.
func TestServerPortsSpreadOverPFs(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "p1"}, neutron.Config{Logger: log}, log))
	t.Cleanup(func() { srv.Close(); st.Close() })
	root := filepath.Join(t.TempDir(), "sys")
	if err := sriov.WriteFakeSysfs(root, []sriov.FakePF{
		{Name: "ens1f0", PCIAddress: "0000:83:00.0", TotalVFs: 4, NumVFs: 4},
		{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: 4, NumVFs: 4, VFStride: 2, VFOffset: 136},
	}); err != nil {
		t.Fatal(err)
	}
	specs, err := sriov.ParseDeviceSpecs([]byte(`[{"devname": "ens1f0", "physical_network": "sriov"}, {"devname": "ens1f1", "physical_network": "sriov"}]`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.CreateNetwork(ctx, map[string]any{"name": "blue", "provider:physical_network": "sriov", "provider:segmentation_id": 15})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{c: c, fs: sriov.NewFS(root), nic: sriov.NewFake(map[string]int{"ens1f0": 4, "ens1f1": 4}), specs: specs, net: n.ID}
	byName := map[string]string{}
	for _, p := range []struct{ name, server string }{{"a1", "vm1"}, {"a2", "vm1"}, {"b1", "vm2"}, {"c1", "vm3"}} {
		port, err := c.CreatePort(ctx, map[string]any{"network_id": n.ID, "binding:vnic_type": "direct", "binding:host_id": "h1",
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

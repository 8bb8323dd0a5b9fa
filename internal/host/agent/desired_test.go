package agent

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/host/sriov"
)

func testAgent(t *testing.T) *Agent {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sys")
	if err := sriov.WriteFakeSysfs(root, []sriov.FakePF{{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: 4, NumVFs: 4}}); err != nil {
		t.Fatal(err)
	}
	c, _ := client.New("http://127.0.0.1:9") // never reached by these tests
	a, err := New(Config{Host: "h1", Specs: []sriov.DeviceSpec{{DevName: "ens1f1", PhysicalNetwork: "sriov"}}, FS: sriov.NewFS(root),
		NIC: sriov.NewFake(map[string]int{"ens1f1": 4}), Client: c, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hp(id string, rev int64, mac string) api.HostPort {
	return api.HostPort{PortID: id, MAC: mac, VNICType: "direct", PhysicalNetwork: "sriov", VLAN: 15, Status: api.StatusDown, Revision: rev}
}

// TestOlderNewsNeverUndoNewer: the agent's copy keeps each port and VF at the highest revision it
// has seen, whatever order the whole state, the changes and its own writes arrive in.
func TestOlderNewsNeverUndoNewer(t *testing.T) {
	a := testAgent(t)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applyFull(api.HostWork{Revision: 10, Ports: []api.HostPort{hp("p1", 5, "fa:16:3e:00:00:01")}})
	// a change at or before the whole state's revision is in it already
	a.applyChanges(api.HostWorkChanges{Ports: []api.HostPort{hp("p1", 4, "fa:16:3e:00:00:99"), hp("p2", 9, "fa:16:3e:00:00:02")}})
	if a.ports["p1"].MAC != "fa:16:3e:00:00:01" || a.ports["p2"] != nil {
		t.Fatalf("news older than the whole state applied: p1 %+v, p2 %+v", a.ports["p1"], a.ports["p2"])
	}
	a.ports["p1"].programmed = true
	a.applyChanges(api.HostWorkChanges{Ports: []api.HostPort{hp("p1", 12, "fa:16:3e:00:00:11")}})
	if p := a.ports["p1"]; p.MAC != "fa:16:3e:00:00:11" || p.programmed {
		t.Fatalf("a newer spec: %+v, want the new MAC and the VF to program again", p)
	}
	a.applyChanges(api.HostWorkChanges{GonePorts: []api.Gone{{Key: "p1", Revision: 11}}})
	if a.ports["p1"] == nil {
		t.Fatal("a removal older than the port's state removed it")
	}
	// the agent's own claim, then its release; the claim's news arriving late changes nothing
	claim := api.VFAllocation{Host: "h1", PF: "ens1f1", VFIndex: 0, PCIAddress: "0000:83:10.1", PortID: "p1", Revision: 13}
	a.upsertAlloc(claim, true)
	a.dropAlloc(claim.PCIAddress, 15, nil)
	a.applyChanges(api.HostWorkChanges{Allocations: []api.VFAllocation{claim}})
	if a.allocs[claim.PCIAddress] != nil {
		t.Fatal("the late news of a claim brought back a VF released since")
	}
	// a newer claim of the VF is news
	claim.Revision, claim.PortID = 16, "p9"
	a.applyChanges(api.HostWorkChanges{Allocations: []api.VFAllocation{claim}})
	if al := a.allocs[claim.PCIAddress]; al == nil || al.PortID != "p9" || a.byPort["p9"] != claim.PCIAddress {
		t.Fatalf("a newer claim: %+v", al)
	}
}

// TestVFOfOthersFreedOnlyOnNews: a VF claimed by someone else for a port this agent has not seen
// is kept until news says the port left after the claim; one the agent claimed itself is
// freed as soon as its port is gone.
func TestVFOfOthersFreedOnlyOnNews(t *testing.T) {
	a := testAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // pipelines started below end at once: only what plan decides matters here
	a.mu.Lock()
	a.applyFull(api.HostWork{Revision: 10})
	a.applyChanges(api.HostWorkChanges{Allocations: []api.VFAllocation{
		{Host: "h1", PF: "ens1f1", VFIndex: 1, PCIAddress: "0000:83:10.3", PortID: "pX", Revision: 20}}})
	a.plan(ctx, false)
	a.launch()
	if a.allocs["0000:83:10.3"].releasing {
		t.Fatal("a VF of a port not seen yet was released")
	}
	a.applyChanges(api.HostWorkChanges{GonePorts: []api.Gone{{Key: "pX", Revision: 21}}})
	a.plan(ctx, false)
	a.launch()
	if !a.allocs["0000:83:10.3"].releasing {
		t.Fatal("a VF whose port left after the claim was not released")
	}
	a.upsertAlloc(api.VFAllocation{Host: "h1", PF: "ens1f1", VFIndex: 2, PCIAddress: "0000:83:10.5", PortID: "pMine", Revision: 30}, true)
	a.plan(ctx, false)
	a.launch()
	released := a.allocs["0000:83:10.5"].releasing
	a.mu.Unlock()
	a.waitIdle()
	if !released {
		t.Fatal("the agent's own claim for a port it no longer has was kept")
	}
}

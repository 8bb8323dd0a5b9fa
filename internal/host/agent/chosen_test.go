package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/sriov"
)

func condition(p *api.Port, typ string) *api.Condition {
	for i := range p.Conditions {
		if p.Conditions[i].Type == typ {
			return &p.Conditions[i]
		}
	}
	return nil
}

// waitPort polls a port until ok says so (bounded), returning its last state.
func waitPort(t *testing.T, r *rig, id string, what string, ok func(*api.Port) bool) *api.Port {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := r.c.GetPort(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s never %s: status %s vif %s profile %v conditions %+v", id, what, p.Status, p.VIFType, p.Profile, p.Conditions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// novaBind binds a port as Nova does: host, device, and the VF its PCI tracker chose.
func novaBind(t *testing.T, r *rig, pci string) *api.Port {
	t.Helper()
	p, err := r.c.CreatePort(context.Background(), map[string]any{"network_id": r.net, "binding:vnic_type": "direct",
		"binding:host_id": "h1", "device_id": "vm-" + pci, "device_owner": "compute:nova",
		"binding:profile": map[string]any{"pci_slot": pci, "pci_vendor_info": "8086:10ed", "physical_network": "sriov"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A port Nova bound is served on exactly the VF Nova chose, its profile left as Nova wrote it;
// a VF the host lacks or another port holds fails the binding (binding_failed, a condition
// naming the slot), never a substitute; unbinding gives the VF back as it was and the port is
// DOWN again; rebinding works.
func TestComputeChosenVF(t *testing.T) {
	r := newRig(t, 8)
	a := r.agent(t)
	defer start(a)()
	pristine := vfState(t, r, 5)
	chosen := pciOf(t, r, 5)

	p := novaBind(t, r, chosen)
	p = waitPort(t, r, p.ID, "ACTIVE", func(p *api.Port) bool { return p.Status == api.StatusActive })
	if got := vfState(t, r, 5); got.MAC.String() != p.MACAddress || got.VLAN != 15 || !got.SpoofCheck {
		t.Fatalf("VF 5 (%s) carries %+v, want MAC %s vlan 15 spoof on", chosen, got, p.MACAddress)
	}
	for vf := 0; vf < 8; vf++ {
		if vf != 5 && vfState(t, r, vf).VLAN != 0 {
			t.Fatalf("VF %d was programmed too", vf)
		}
	}
	if p.Profile["pci_slot"] != chosen || p.Profile["pci_vendor_info"] != "8086:10ed" || len(p.Profile) != 3 {
		t.Fatalf("profile rewritten: %v", p.Profile)
	}
	if p.VIFType != api.VIFHwVeb {
		t.Fatalf("vif_type %s", p.VIFType)
	}

	// a VF the host does not have
	bad := novaBind(t, r, "0000:99:00.7")
	bad = waitPort(t, r, bad.ID, "failed", func(p *api.Port) bool { return p.Status == api.StatusError })
	c := condition(bad, api.ConditionVFProgrammed)
	if bad.VIFType != api.VIFBindingFailed || c == nil || c.Status != "False" || c.Reason != "PCISlotUnknown" ||
		!strings.Contains(c.Message, "0000:99:00.7") || !strings.Contains(c.Message, "ens1f1") {
		t.Fatalf("unknown slot: vif %s condition %+v", bad.VIFType, c)
	}
	// the VF of another port
	taken := novaBind(t, r, chosen)
	taken = waitPort(t, r, taken.ID, "failed", func(p *api.Port) bool { return p.Status == api.StatusError })
	if c := condition(taken, api.ConditionVFProgrammed); taken.VIFType != api.VIFBindingFailed || c == nil || c.Reason != "PCISlotInUse" || !strings.Contains(c.Message, p.ID) {
		t.Fatalf("slot in use: vif %s condition %+v", taken.VIFType, c)
	}
	if got := vfState(t, r, 5); got.MAC.String() != p.MACAddress {
		t.Fatalf("the failed binding touched the first port's VF: %+v", got)
	}

	// Nova deletes the server: the binding is cleared (host "", profile {})
	if _, err := r.c.UpdatePort(context.Background(), p.ID, map[string]any{"binding:host_id": "", "device_id": "", "binding:profile": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	un, _ := r.c.GetPort(context.Background(), p.ID)
	if un.Status != api.StatusDown || condition(un, api.ConditionVFProgrammed) != nil {
		t.Fatalf("unbound port still says it is served: %s %+v", un.Status, un.Conditions)
	}
	// the port that waited for that VF gets it now, and is bound after all
	taken = waitPort(t, r, taken.ID, "ACTIVE", func(p *api.Port) bool { return p.Status == api.StatusActive })
	if taken.VIFType != api.VIFHwVeb || vfState(t, r, 5).MAC.String() != taken.MACAddress {
		t.Fatalf("freed VF not given to the port that chose it: vif %s VF %+v", taken.VIFType, vfState(t, r, 5))
	}
	// with no one waiting, an unbind leaves the VF as it was before the first port
	if _, err := r.c.UpdatePort(context.Background(), taken.ID, map[string]any{"binding:host_id": "", "binding:profile": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	waitVF(t, r, 5, pristine)
	// rebinding the first port on another VF works
	other := pciOf(t, r, 2)
	if _, err := r.c.UpdatePort(context.Background(), p.ID, map[string]any{"binding:host_id": "h1", "device_id": "vm2",
		"binding:profile": map[string]any{"pci_slot": other, "physical_network": "sriov"}}); err != nil {
		t.Fatal(err)
	}
	waitPort(t, r, p.ID, "ACTIVE again", func(p *api.Port) bool { return p.Status == api.StatusActive })
	if got := vfState(t, r, 2); got.MAC.String() != p.MACAddress {
		t.Fatalf("rebound port's VF 2 carries %+v", got)
	}
}

// waitVF waits until a VF is back in a state.
func waitVF(t *testing.T, r *rig, vf int, want sriov.VFState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for vfState(t, r, vf).String() != want.String() {
		if time.Now().After(deadline) {
			t.Fatalf("VF %d is %v, never restored to %v", vf, vfState(t, r, vf), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A port whose pci_slot moves to another VF of the same host (a new binding) gets the new VF
// and the old one back as it was.
func TestComputeChosenVFMoves(t *testing.T) {
	r := newRig(t, 4)
	a := r.agent(t)
	defer start(a)()
	pristine := vfState(t, r, 1)
	p := novaBind(t, r, pciOf(t, r, 1))
	waitPort(t, r, p.ID, "ACTIVE", func(p *api.Port) bool { return p.Status == api.StatusActive })
	if _, err := r.c.UpdatePort(context.Background(), p.ID, map[string]any{"binding:profile": map[string]any{"pci_slot": pciOf(t, r, 3), "physical_network": "sriov"}}); err != nil {
		t.Fatal(err)
	}
	waitPort(t, r, p.ID, "ACTIVE on VF 3", func(q *api.Port) bool {
		return q.Status == api.StatusActive && vfState(t, r, 3).MAC.String() == p.MACAddress
	})
	waitVF(t, r, 1, pristine)
}

package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/agent"
)

// waitPorts waits (bounded) until every port has a status in want, and returns them.
func (r *rig) waitPorts(t *testing.T, ids []string, want ...string) []*api.Port {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out []*api.Port
		done := true
		for _, id := range ids {
			p, err := r.c.GetPort(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			for _, w := range want {
				ok = ok || p.Status == w
			}
			done = done && ok
			out = append(out, p)
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			for _, p := range out {
				t.Logf("port %s: %s %+v", p.ID, p.Status, p.Conditions)
			}
			t.Fatalf("ports not %v after 30s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunningAgentFollowsChanges: a running agent serves ports as they are bound (from the changes
// it long-polls, not whole states), reports NoFreeVF when the VFs run out, gives a freed VF to a
// port that waited for one, and restores the VFs of unbound ports; no VF is ever given twice.
func TestRunningAgentFollowsChanges(t *testing.T) {
	r := newRig(t, 6)
	before, _ := r.nic.VFs("ens1f1")
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: r.state})
	if err != nil {
		t.Fatal(err)
	}
	defer start(a)()

	first := r.bind(t, 4)
	r.waitPorts(t, first, api.StatusActive)
	more := r.bind(t, 4) // 8 ports on 6 VFs
	ports := r.waitPorts(t, append(append([]string(nil), first...), more...), api.StatusActive, api.StatusError)
	var waiting []string
	slots := map[string]string{}
	for _, p := range ports {
		if p.Status == api.StatusError {
			if p.Conditions[0].Reason != "NoFreeVF" {
				t.Fatalf("port %s: %+v, want NoFreeVF", p.ID, p.Conditions)
			}
			waiting = append(waiting, p.ID)
			continue
		}
		slot, _ := p.Profile["pci_slot"].(string)
		if other, taken := slots[slot]; taken || slot == "" {
			t.Fatalf("VF %q given to %s and %s", slot, other, p.ID)
		}
		slots[slot] = p.ID
	}
	if len(waiting) != 2 {
		t.Fatalf("%d ports without a VF, want 2", len(waiting))
	}
	// unbinding two served ports frees their VFs for the two that waited
	for _, id := range first[:2] {
		if _, err := r.c.UpdatePort(context.Background(), id, map[string]any{"binding:host_id": ""}); err != nil {
			t.Fatal(err)
		}
	}
	served := r.waitPorts(t, waiting, api.StatusActive)
	for _, p := range served {
		if p.Profile["pci_slot"] == nil {
			t.Fatalf("port %s ACTIVE without a VF", p.ID)
		}
	}
	// everything unbound: every VF back as it was
	for _, id := range append(first[2:], more...) {
		if _, err := r.c.UpdatePort(context.Background(), id, map[string]any{"binding:host_id": ""}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, _ := r.nic.VFs("ens1f1")
		w, _ := r.c.HostWork(context.Background(), "h1", 0)
		same := len(w.Allocations) == 0
		for i := range before {
			same = same && before[i].VFState.String() == after[i].VFState.String()
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after unbinding all: %d allocations, VFs %v, want none and %v", len(w.Allocations), after, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartedRunningAgentTakesOver: an agent stopped in the middle of a burst and a new one
// started in its place serve every port, each with its own VF.
func TestRestartedRunningAgentTakesOver(t *testing.T) {
	r := newRig(t, 32)
	run := func() (stop func()) {
		a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: r.state})
		if err != nil {
			t.Fatal(err)
		}
		return start(a)
	}
	stop := run()
	ids := r.bind(t, 24)
	for len(r.nic.Calls()) < 20 {
		time.Sleep(time.Millisecond)
	}
	stop()
	stop = run()
	defer stop()
	ports := r.waitPorts(t, ids, api.StatusActive)
	slots := map[string]bool{}
	vfs, _ := r.nic.VFs("ens1f1")
	macs := map[string]bool{}
	for _, v := range vfs {
		macs[v.MAC.String()] = true
	}
	for _, p := range ports {
		slot, _ := p.Profile["pci_slot"].(string)
		if slots[slot] || slot == "" || !macs[p.MACAddress] {
			t.Fatalf("port %s: pci_slot %q (empty or twice), or no VF has MAC %s", p.ID, slot, p.MACAddress)
		}
		slots[slot] = true
	}
	w, _ := r.c.HostWork(context.Background(), "h1", 0)
	if len(w.Allocations) != 24 {
		t.Fatalf("%d allocations, want 24", len(w.Allocations))
	}
}

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/sriov"
)

// leaveJournal writes the journal an agent leaves when it dies between programming VF vf for
// port and the answer to its serve: the VF's state before, then the VF programmed.
func (r *rig) leaveJournal(t *testing.T, vf int, port string) sriov.VFState {
	t.Helper()
	before, err := sriov.Save(r.nic, "ens1f1", vf)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(map[string]any{"op": "add", "pci_address": pciOf(t, r, vf), "pf": "ens1f1", "vf_index": vf, "port_id": port,
		"saved": map[string]any{"mac": before.MAC.String(), "vlan": before.VLAN, "spoof_check": before.SpoofCheck, "trust": before.Trust, "link_state": before.LinkState}})
	if err := os.WriteFile(filepath.Join(r.state, "vf-journal"), append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:aa:bb:cc:dd:ee")
	if err := sriov.Apply(r.nic, "ens1f1", vf, sriov.VFState{MAC: mac, VLAN: 99, SpoofCheck: true, LinkState: sriov.LinkStateAuto}); err != nil {
		t.Fatal(err)
	}
	return before
}

func pciOf(t *testing.T, r *rig, vf int) string {
	t.Helper()
	inv, err := r.fs.Scan(r.specs)
	if err != nil || len(inv.PFs) == 0 || vf >= len(inv.PFs[0].VFs) {
		t.Fatalf("inventory: %+v %v", inv, err)
	}
	return inv.PFs[0].VFs[vf].PCIAddress
}

func vfState(t *testing.T, r *rig, vf int) sriov.VFState {
	t.Helper()
	s, err := sriov.Save(r.nic, "ens1f1", vf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLeftoverVFRestoredBeforeReuse: a VF an agent programmed before it died, whose serve never
// committed, is restored by the next agent before any port gets it.
func TestLeftoverVFRestoredBeforeReuse(t *testing.T) {
	r := newRig(t, 4)
	before := r.leaveJournal(t, 0, "gone-port")
	ids := r.bind(t, 3)
	a := r.agent(t)
	w := r.converge(t, a)
	if len(w.Allocations) != 3 {
		t.Fatalf("%d allocations, want 3", len(w.Allocations))
	}
	for _, al := range w.Allocations {
		if al.VFIndex == 0 {
			t.Fatalf("the leftover VF 0 was given to port %s in the pass that found it", al.PortID)
		}
		if al.Saved.MAC == "02:aa:bb:cc:dd:ee" {
			t.Fatalf("VF %d saved the leftover's programming as its original state", al.VFIndex)
		}
	}
	if got := vfState(t, r, 0); got.String() != before.String() {
		t.Fatalf("leftover VF 0: %s, want it restored to %s", got, before)
	}
	for _, id := range ids {
		if p, _ := r.c.GetPort(context.Background(), id); p.Status != api.StatusActive {
			t.Fatalf("port %s: %s", id, p.Status)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r.state, "vf-journal")); len(b) != 0 {
		t.Fatalf("journal after recovery: %q, want empty", b)
	}
	// once restored it is free again: a fourth port gets it
	ids = append(ids, r.bind(t, 1)...)
	w = r.converge(t, a)
	if len(w.Allocations) != 4 {
		t.Fatalf("%d allocations, want 4", len(w.Allocations))
	}
}

// TestLeftoverOfCommittedServeKept: a journal entry whose serve did commit (only its "done" was
// lost) leaves the VF as its port has it.
func TestLeftoverOfCommittedServeKept(t *testing.T) {
	r := newRig(t, 4)
	ids := r.bind(t, 1)
	w := r.converge(t, r.agent(t))
	if len(w.Allocations) != 1 {
		t.Fatalf("%d allocations, want 1", len(w.Allocations))
	}
	al := w.Allocations[0]
	programmed := vfState(t, r, al.VFIndex)
	line, _ := json.Marshal(map[string]any{"op": "add", "pci_address": al.PCIAddress, "pf": al.PF, "vf_index": al.VFIndex, "port_id": ids[0], "saved": al.Saved})
	if err := os.WriteFile(filepath.Join(r.state, "vf-journal"), append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := len(r.nic.Calls())
	r.converge(t, r.agent(t))
	if got := vfState(t, r, al.VFIndex); got.String() != programmed.String() {
		t.Fatalf("VF %d of a committed serve: %s, want it kept as %s", al.VFIndex, got, programmed)
	}
	for _, c := range r.nic.Calls()[calls:] {
		if !strings.HasSuffix(c, " show") {
			t.Fatalf("the restarted agent wrote %q to a VF its port holds", c)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r.state, "vf-journal")); len(b) != 0 {
		t.Fatalf("journal: %q, want empty", b)
	}
}

// TestServeAnswerLost: the server commits a serve but its answer never arrives. The agent puts
// the VF back, then learns of the allocation and programs the VF again: in the end every port is
// ACTIVE on a VF carrying its MAC and VLAN, and every free VF is as it was.
func TestServeAnswerLost(t *testing.T) {
	var dropped atomic.Int32
	wrap := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/batch") {
				next.ServeHTTP(w, req)
				return
			}
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			if !bytes.Contains(body, []byte(`"serves"`)) || !dropped.CompareAndSwap(0, 1) {
				next.ServeHTTP(w, req)
				return
			}
			next.ServeHTTP(httptest.NewRecorder(), req) // committed; the answer is lost
			http.Error(w, "upstream went away", http.StatusServiceUnavailable)
		})
	}
	r := newRigWrapped(t, []sriov.FakePF{{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: 8, NumVFs: 8}}, wrap)
	pristine, _ := r.nic.VFs("ens1f1")
	ids := r.bind(t, 5)
	a := r.agent(t)
	defer start(a)()

	deadline := time.Now().Add(20 * time.Second)
	for {
		problem := servedProblem(t, r, ids, pristine)
		if problem == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served after 20s: %s", problem)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dropped.Load() != 1 {
		t.Fatal("no serve answer was dropped: the test did not test anything")
	}
}

// servedProblem says what is not yet as it should be ("" when all is): ports ACTIVE on distinct
// VFs that carry their MAC and VLAN 15, free VFs as they were.
func servedProblem(t *testing.T, r *rig, ids []string, pristine []sriov.VFInfo) string {
	t.Helper()
	vfs, _ := r.nic.VFs("ens1f1")
	used := map[int]bool{}
	for _, id := range ids {
		p, err := r.c.GetPort(context.Background(), id)
		if err != nil {
			return err.Error()
		}
		if p.Status != api.StatusActive {
			return "port " + id + " is " + p.Status
		}
		found := false
		for _, v := range vfs {
			if v.MAC.String() == p.MACAddress && v.VLAN == 15 && !used[v.Index] {
				used[v.Index], found = true, true
				break
			}
		}
		if !found {
			return "no VF carries port " + id + "'s MAC " + p.MACAddress + " with VLAN 15"
		}
	}
	for i, v := range vfs {
		if !used[v.Index] && v.VFState.String() != pristine[i].VFState.String() {
			return "free VF " + strconv.Itoa(v.Index) + " is " + v.VFState.String() + ", was " + pristine[i].VFState.String()
		}
	}
	return ""
}

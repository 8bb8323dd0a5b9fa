package hosts_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/store"
)

type env struct {
	st  *store.Store
	c   *client.Client
	net string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, c := newAPI(t)
	for _, h := range []string{"h1", "h2"} {
		if err := c.RegisterHost(ctx, api.Host{Name: h, PFs: []api.PF{{Name: "ens1f1", PhysicalNetwork: "sriov", TotalVFs: 8, NumVFs: 8}}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.CreateNetwork(ctx, map[string]any{"name": "blue", "provider:physical_network": "sriov", "provider:segmentation_id": 15})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSubnet(ctx, map[string]any{"network_id": n.ID, "cidr": "10.9.0.0/16", "ip_version": 4}); err != nil {
		t.Fatal(err)
	}
	return &env{st: st, c: c, net: n.ID}
}

func (e *env) port(t *testing.T, host string) string {
	t.Helper()
	p, err := e.c.CreatePort(context.Background(), map[string]any{"network_id": e.net, "binding:vnic_type": "direct", "binding:host_id": host})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func (e *env) changes(t *testing.T, host, cursor string, timeout time.Duration) api.HostWorkChanges {
	t.Helper()
	ch, err := e.c.HostWorkChanges(context.Background(), host, cursor, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func portIDs(ps []api.HostPort) string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.PortID+":"+p.Status)
	}
	return strings.Join(ids, ",")
}

// TestChangesFollowTheHost: after the whole state, a long poll answers only what changed for the
// host, each port at its latest state; the agent's own writes (claims, status reports) ride
// along with the next change instead of waking it; an unusable cursor gets the whole state.
func TestChangesFollowTheHost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w, err := e.c.HostWork(ctx, "h1", 0)
	if err != nil || w.Cursor == "" || len(w.Ports) != 0 {
		t.Fatalf("whole state: %+v %v, want a cursor and no ports", w, err)
	}
	p1 := e.port(t, "h1")
	ch := e.changes(t, "h1", w.Cursor, 10*time.Second)
	if ch.Full != nil || len(ch.Ports) != 1 || ch.Ports[0].PortID != p1 || ch.Ports[0].VLAN != 15 || ch.Ports[0].PhysicalNetwork != "sriov" ||
		ch.Ports[0].Revision <= w.Revision || ch.Cursor == w.Cursor {
		t.Fatalf("after binding %s: %+v", p1, ch)
	}
	// nothing new: the poll ends empty at its timeout, with the same cursor
	if idle := e.changes(t, "h1", ch.Cursor, 200*time.Millisecond); !idle.Empty() || idle.Cursor != ch.Cursor {
		t.Fatalf("idle poll: %+v", idle)
	}
	// the agent claims a VF and reports the port: neither wakes a poll...
	res, err := e.c.HostBatch(ctx, "h1", api.HostBatch{
		Claims:  []api.VFAllocation{{PF: "ens1f1", VFIndex: 0, PCIAddress: "0000:83:10.1", PortID: p1}},
		Reports: []api.PortReport{{PortID: p1, PortStatus: api.PortStatus{Status: api.StatusActive}}}})
	if err != nil || res.Claims[0].Status != 201 || res.Reports[0].Status != 200 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	if idle := e.changes(t, "h1", ch.Cursor, 200*time.Millisecond); !idle.Empty() {
		t.Fatalf("the agent's own claim and report woke its poll: %+v", idle)
	}
	// ...but ride along with the next change: another host's port does not concern h1, one bound here does
	e.port(t, "h2")
	p2 := e.port(t, "h1")
	ch2 := e.changes(t, "h1", ch.Cursor, 10*time.Second)
	for len(ch2.Ports) < 2 { // p2's bind may come in a later answer than the ride-alongs
		more := e.changes(t, "h1", ch2.Cursor, 10*time.Second)
		ch2.Ports, ch2.Allocations, ch2.Cursor = append(ch2.Ports, more.Ports...), append(ch2.Allocations, more.Allocations...), more.Cursor
	}
	got := portIDs(ch2.Ports)
	if !strings.Contains(got, p1+":ACTIVE") || !strings.Contains(got, p2+":DOWN") || len(ch2.Ports) != 2 {
		t.Fatalf("changes: ports %s, want %s ACTIVE and %s DOWN only", got, p1, p2)
	}
	if len(ch2.Allocations) != 1 || ch2.Allocations[0].PortID != p1 || ch2.Allocations[0].Revision != res.Claims[0].Revision {
		t.Fatalf("changes: allocations %+v, want the claim of %s at %d", ch2.Allocations, p1, res.Claims[0].Revision)
	}
	// a port moved to another host and a port deleted are gone from h1
	if _, err := e.c.UpdatePort(ctx, p1, map[string]any{"binding:host_id": "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeletePort(ctx, p2); err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	cur := ch2.Cursor
	for len(gone) < 2 {
		ch3 := e.changes(t, "h1", cur, 10*time.Second)
		if len(ch3.Ports) != 0 {
			t.Fatalf("ports left h1 but came back: %+v", ch3.Ports)
		}
		for _, g := range ch3.GonePorts {
			gone[g.Key] = true
		}
		cur = ch3.Cursor
	}
	if !gone[p1] || !gone[p2] {
		t.Fatalf("gone: %v, want %s and %s", gone, p1, p2)
	}
	// h2 sees p1 arrive
	if full := e.changes(t, "h2", "", time.Second); full.Full == nil || !strings.Contains(portIDs(full.Full.Ports), p1) {
		t.Fatalf("h2's whole state lacks %s: %+v", p1, full)
	}
	// a cursor of another server (or none) is answered with the whole state
	for _, bad := range []string{"", "feedfacecafe.3", "garbage"} {
		full := e.changes(t, "h1", bad, time.Second)
		if full.Full == nil || full.Cursor == "" || len(full.Full.Ports) != 0 || len(full.Full.Allocations) != 1 {
			t.Fatalf("cursor %q: %+v, want the whole state (no ports, one allocation)", bad, full)
		}
	}
}

// TestBatchClaimsSettleEachItem: one batch commits its good claims in one transaction and tells
// each conflicting claim why (and who holds what), never giving a VF twice nor a port two VFs.
func TestBatchClaimsSettleEachItem(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	claim := func(pci, port string) api.VFAllocation {
		return api.VFAllocation{PF: "ens1f1", VFIndex: int(pci[len(pci)-1] - '0'), PCIAddress: pci, PortID: port}
	}
	res, err := e.c.HostBatch(ctx, "h1", api.HostBatch{Claims: []api.VFAllocation{
		claim("0000:83:10.1", "pA"), claim("0000:83:10.2", "pB"), claim("0000:83:10.1", "pC"), claim("bogus", "pD")}})
	if err != nil {
		t.Fatal(err)
	}
	if st := []int{res.Claims[0].Status, res.Claims[1].Status, res.Claims[2].Status, res.Claims[3].Status}; fmt.Sprint(st) != "[201 201 409 400]" {
		t.Fatalf("first batch: %v (%+v)", st, res.Claims)
	}
	if res.Claims[0].Revision == 0 || res.Claims[0].Revision != res.Claims[1].Revision {
		t.Fatalf("good claims of one batch commit together: revisions %d and %d", res.Claims[0].Revision, res.Claims[1].Revision)
	}
	res, err = e.c.HostBatch(ctx, "h1", api.HostBatch{Claims: []api.VFAllocation{
		claim("0000:83:10.1", "pA"), // the same claim again
		claim("0000:83:10.2", "pG"), // pB's VF
		claim("0000:83:10.4", "pH")}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.c.HostBatch(ctx, "h1", api.HostBatch{Claims: []api.VFAllocation{claim("0000:83:10.3", "pA")}}) // a second VF for pA
	if err != nil {
		t.Fatal(err)
	}
	c := []api.BatchItem{res.Claims[0], again.Claims[0], res.Claims[1], res.Claims[2]}
	if fmt.Sprint([]int{c[0].Status, c[1].Status, c[2].Status, c[3].Status}) != "[200 409 409 201]" {
		t.Fatalf("second batch: %+v", c)
	}
	if c[0].Allocation == nil || c[0].Allocation.PortID != "pA" || c[1].Allocation == nil || c[1].Allocation.PCIAddress != "0000:83:10.1" ||
		c[2].Allocation == nil || c[2].Allocation.PortID != "pB" || !strings.Contains(c[2].Message, "pB") {
		t.Fatalf("conflicts do not say who holds what: %+v", c)
	}
	// releases: only by the VF's port; a free VF is free already
	res, err = e.c.HostBatch(ctx, "h1", api.HostBatch{Releases: []api.VFRelease{{PCIAddress: "0000:83:10.2", PortID: "pX"},
		{PCIAddress: "0000:83:10.4", PortID: "pH"}, {PCIAddress: "0000:83:10.7", PortID: "pZ"}}})
	if err != nil || fmt.Sprint([]int{res.Releases[0].Status, res.Releases[1].Status, res.Releases[2].Status}) != "[409 200 200]" {
		t.Fatalf("releases: %+v %v", res.Releases, err)
	}
	allocs, _, _ := store.List[api.VFAllocation](ctx, e.st, "vfs/h1/")
	held := map[string]string{}
	for _, a := range allocs {
		held[a.Value.PCIAddress] = a.Value.PortID
	}
	if fmt.Sprint(held) != "map[0000:83:10.1:pA 0000:83:10.2:pB]" {
		t.Fatalf("allocations: %v", held)
	}
	if keys, _, _ := e.st.Keys(ctx, "vf-ports/"); fmt.Sprint(keys) != "[pA pB]" {
		t.Fatalf("vf-ports: %v", keys)
	}
}

// TestConcurrentBatchesNeverGiveAVFTwice: batches racing for the same VFs and ports leave every
// VF with at most one port and every port with at most one VF, and each claim answered as done
// is the one that holds.
func TestConcurrentBatchesNeverGiveAVFTwice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	type won struct{ pci, port string }
	var mu sync.Mutex
	var wins []won
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for round := 0; round < 5; round++ {
				var b api.HostBatch
				for k := 0; k < 6; k++ {
					vf := (g + k + round) % 8
					pci := fmt.Sprintf("0000:83:10.%d", vf)
					b.Claims = append(b.Claims, api.VFAllocation{PF: "ens1f1", VFIndex: vf, PCIAddress: pci, PortID: fmt.Sprintf("p%d", (g*3+k*5+round)%12)})
				}
				res, err := e.c.HostBatch(ctx, "h1", b)
				if err != nil {
					t.Error(err)
					return
				}
				for i, it := range res.Claims {
					if it.OK() {
						mu.Lock()
						wins = append(wins, won{b.Claims[i].PCIAddress, b.Claims[i].PortID})
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	allocs, _, _ := store.List[api.VFAllocation](ctx, e.st, "vfs/h1/")
	byVF, byPort := map[string]string{}, map[string]string{}
	for _, a := range allocs {
		if prev, ok := byPort[a.Value.PortID]; ok {
			t.Fatalf("port %s holds %s and %s", a.Value.PortID, prev, a.Value.PCIAddress)
		}
		byVF[a.Value.PCIAddress], byPort[a.Value.PortID] = a.Value.PortID, a.Value.PCIAddress
	}
	for _, w := range wins {
		if byVF[w.pci] != w.port {
			t.Fatalf("claim of %s for %s was answered done, but %s holds it", w.pci, w.port, byVF[w.pci])
		}
	}
	keys, _, _ := e.st.Keys(ctx, "vf-ports/")
	if len(keys) != len(allocs) || len(allocs) == 0 {
		t.Fatalf("%d vf-ports keys for %d allocations", len(keys), len(allocs))
	}
}

// TestBatchReportsSettleEachItem: reports of one batch are refused one by one (gone, bound
// elsewhere, bad status) while the others are recorded.
func TestBatchReportsSettleEachItem(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	here, there := e.port(t, "h1"), e.port(t, "h2")
	ok := api.PortStatus{Status: api.StatusActive, Profile: map[string]any{"pci_slot": "0000:83:10.1"},
		Conditions: []api.Condition{{Type: "VFProgrammed", Status: "True", Reason: "Programmed"}}}
	res, err := e.c.HostBatch(ctx, "h1", api.HostBatch{Reports: []api.PortReport{{PortID: here, PortStatus: ok}, {PortID: there, PortStatus: ok},
		{PortID: "no-such-port", PortStatus: ok}, {PortID: here, PortStatus: api.PortStatus{Status: "SPLENDID"}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Reports
	if fmt.Sprint([]int{r[0].Status, r[1].Status, r[2].Status, r[3].Status}) != "[200 409 404 400]" || r[0].Revision == 0 {
		t.Fatalf("reports: %+v", r)
	}
	p, _ := e.c.GetPort(ctx, here)
	if p.Status != api.StatusActive || p.Profile["pci_slot"] != "0000:83:10.1" || len(p.Conditions) != 1 || p.Conditions[0].Reason != "Programmed" {
		t.Fatalf("reported port: %s %v %+v", p.Status, p.Profile, p.Conditions)
	}
	if p, _ := e.c.GetPort(ctx, there); p.Status == api.StatusActive {
		t.Fatal("a report of h1 changed a port of h2")
	}
}

// TestBatchServesCommitClaimWithReport: a serve writes its claim and its port's report in one
// transaction or not at all, item by item.
func TestBatchServesCommitClaimWithReport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pA, pB, there, gone := e.port(t, "h1"), e.port(t, "h1"), e.port(t, "h2"), e.port(t, "h1")
	if err := e.c.DeletePort(ctx, gone); err != nil {
		t.Fatal(err)
	}
	active := api.PortStatus{Status: api.StatusActive, Profile: map[string]any{"pci_slot": "x"},
		Conditions: []api.Condition{{Type: "VFProgrammed", Status: "True", Reason: "Programmed"}}}
	serve := func(pci, port string) api.PortServe {
		st := active
		st.Profile = map[string]any{"pci_slot": pci}
		return api.PortServe{Claim: api.VFAllocation{PF: "ens1f1", VFIndex: int(pci[len(pci)-1] - '0'), PCIAddress: pci, PortID: port,
			Saved: api.VFState{MAC: "00:00:00:00:00:00", SpoofCheck: true, LinkState: "auto"}}, Report: st}
	}
	bad := serve("0000:83:10.6", pB)
	bad.Report.Status = "SPLENDID"
	res, err := e.c.HostBatch(ctx, "h1", api.HostBatch{Serves: []api.PortServe{
		serve("0000:83:10.1", pA),    // done
		serve("0000:83:10.2", there), // bound to h2
		serve("0000:83:10.3", gone),  // deleted
		serve("0000:83:10.1", pB),    // pA's VF, in the same batch
		serve("bogus", pB),
		bad,
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Serves
	if got := fmt.Sprint([]int{s[0].Status, s[1].Status, s[2].Status, s[3].Status, s[4].Status, s[5].Status}); got != "[201 409 404 409 400 400]" {
		t.Fatalf("serves: %s %+v", got, s)
	}
	if s[0].Allocation == nil || s[0].Allocation.PortID != pA || s[0].Revision == 0 {
		t.Fatalf("a done serve answers its allocation: %+v", s[0])
	}
	// the claim and the report carry the same revision: one transaction
	p, _ := e.c.GetPort(ctx, pA)
	al, err := store.Get[api.VFAllocation](ctx, e.st, "vfs/h1/0000:83:10.1")
	if err != nil || p.Status != api.StatusActive || p.Profile["pci_slot"] != "0000:83:10.1" || al.ModRevision != s[0].Revision {
		t.Fatalf("after the serve: port %s %v, allocation %+v (%v), serve revision %d", p.Status, p.Profile, al, err, s[0].Revision)
	}
	// a refused serve wrote nothing: no claim, no report
	for _, id := range []string{there, pB} {
		if p, _ := e.c.GetPort(ctx, id); p.Status == api.StatusActive {
			t.Fatalf("port %s reported ACTIVE by a refused serve", id)
		}
	}
	if keys, _, _ := e.st.Keys(ctx, "vf-ports/"); fmt.Sprint(keys) != fmt.Sprint([]string{pA}) {
		t.Fatalf("vf-ports after refused serves: %v, want only %s", keys, pA)
	}
	// the same serve again (an answer lost): done, and its report applied again; pA's VF for pB
	// is refused with its holder; then pB takes a free VF
	res, err = e.c.HostBatch(ctx, "h1", api.HostBatch{Serves: []api.PortServe{serve("0000:83:10.1", pA)}})
	if err != nil || res.Serves[0].Status != 200 || res.Serves[0].Allocation == nil || res.Serves[0].Allocation.PortID != pA {
		t.Fatalf("the same serve again: %+v %v", res.Serves, err)
	}
	res, err = e.c.HostBatch(ctx, "h1", api.HostBatch{Serves: []api.PortServe{serve("0000:83:10.1", pB)}})
	if err != nil || res.Serves[0].Status != 409 || res.Serves[0].Allocation == nil || res.Serves[0].Allocation.PortID != pA {
		t.Fatalf("a serve of a held VF names its holder: %+v %v", res.Serves, err)
	}
	res, err = e.c.HostBatch(ctx, "h1", api.HostBatch{Serves: []api.PortServe{serve("0000:83:10.5", pB)}})
	if err != nil || res.Serves[0].Status != 201 {
		t.Fatalf("pB on a free VF: %+v %v", res.Serves, err)
	}
	if p, _ := e.c.GetPort(ctx, pB); p.Status != api.StatusActive || p.Profile["pci_slot"] != "0000:83:10.5" {
		t.Fatalf("pB: %s %v", p.Status, p.Profile)
	}
}

package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/host/agent"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// rig is a real server (embedded etcd) plus the sysfs tree and fake NIC of one host.
type rig struct {
	c     *client.Client
	fs    sriov.FS
	nic   *sriov.Fake
	specs []sriov.DeviceSpec
	net   string
	state string       // the agent's state directory (its VF journal), shared by its restarts
	st    *store.Store // the server's store, to break things behind the API
}

func newRig(t testing.TB, vfs int) *rig {
	t.Helper()
	return newRigPFs(t, []sriov.FakePF{{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: vfs, NumVFs: vfs}})
}

// newRigPFs is a rig whose host has these PFs, all on physical network sriov.
func newRigPFs(t testing.TB, pfs []sriov.FakePF) *rig {
	t.Helper()
	return newRigWrapped(t, pfs, nil)
}

// newRigWrapped is newRigPFs whose API handler goes through wrap (when set), to break it.
func newRigWrapped(t testing.TB, pfs []sriov.FakePF, wrap func(http.Handler) http.Handler) *rig {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := server.Handler(st, auth.NoAuth{DefaultProject: "p1"}, neutron.Config{Logger: log}, log)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); st.Close() })
	root := filepath.Join(t.TempDir(), "sys")
	if err := sriov.WriteFakeSysfs(root, pfs); err != nil {
		t.Fatal(err)
	}
	var spec []string
	nics := map[string]int{}
	for _, pf := range pfs {
		spec = append(spec, fmt.Sprintf(`{"devname": %q, "physical_network": "sriov"}`, pf.Name))
		nics[pf.Name] = pf.NumVFs
	}
	specs, err := sriov.ParseDeviceSpecs([]byte("[" + strings.Join(spec, ",") + "]"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := c.CreateNetwork(ctx, map[string]any{"name": "blue", "provider:physical_network": "sriov", "provider:segmentation_id": 15})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSubnet(ctx, map[string]any{"network_id": n.ID, "cidr": "10.9.0.0/16", "ip_version": 4}); err != nil {
		t.Fatal(err)
	}
	return &rig{c: c, fs: sriov.NewFS(root), nic: sriov.NewFake(nics), specs: specs, net: n.ID, state: t.TempDir(), st: st}
}

func (r *rig) agent(t testing.TB) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: r.state})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.c.RegisterHost(context.Background(), a.HostRecord()); err != nil {
		t.Fatal(err)
	}
	return a
}

// start runs a until the returned stop is called (stop waits for Run to return).
func start(a *agent.Agent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() { cancel(); <-done }
}

// converge runs reconcile passes until one changes nothing visible (bounded).
func (r *rig) converge(t testing.TB, a *agent.Agent) api.HostWork {
	t.Helper()
	ctx := context.Background()
	var last string
	for i := 0; i < 10; i++ {
		w, err := r.c.HostWork(ctx, "h1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Reconcile(ctx, w); err != nil {
			t.Logf("pass %d: %v", i, err)
		}
		w, _ = r.c.HostWork(ctx, "h1", 0)
		sig := fmt.Sprint(len(w.Allocations), w.Ports)
		if sig == last {
			return w
		}
		last = sig
	}
	t.Fatal("no steady state after 10 passes")
	return api.HostWork{}
}

func (r *rig) bind(t testing.TB, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p, err := r.c.CreatePort(context.Background(), map[string]any{"network_id": r.net, "binding:vnic_type": "direct", "binding:host_id": "h1", "name": fmt.Sprint("p", i)})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = p.ID
		}(i)
	}
	wg.Wait()
	return ids
}

func TestHundredPortsOnSixtyFourVFs(t *testing.T) {
	r := newRig(t, 64)
	before, _ := r.nic.VFs("ens1f1")
	ids := r.bind(t, 100)
	a := r.agent(t)
	r.converge(t, a)
	check := func(stage string) {
		t.Helper()
		ctx := context.Background()
		active, errored := 0, 0
		macs := map[string]bool{}
		vfs, _ := r.nic.VFs("ens1f1")
		for _, v := range vfs {
			macs[v.MAC.String()] = true
		}
		slots := map[string]bool{}
		for _, id := range ids {
			p, err := r.c.GetPort(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			switch p.Status {
			case api.StatusActive:
				active++
				slot, _ := p.Profile["pci_slot"].(string)
				if slot == "" || slots[slot] {
					t.Fatalf("%s: port %s has pci_slot %q (empty or given twice)", stage, id, slot)
				}
				slots[slot] = true
				if !macs[p.MACAddress] {
					t.Fatalf("%s: port %s is ACTIVE but no VF has its MAC %s", stage, id, p.MACAddress)
				}
			case api.StatusError:
				errored++
				if len(p.Conditions) == 0 || p.Conditions[0].Reason != "NoFreeVF" {
					t.Fatalf("%s: ERROR port without a NoFreeVF condition: %+v", stage, p.Conditions)
				}
			}
		}
		if active != 64 || errored != 36 {
			t.Fatalf("%s: got %d ACTIVE and %d ERROR ports, want 64 and 36", stage, active, errored)
		}
		for _, v := range vfs {
			if v.VLAN != 15 || !v.SpoofCheck || v.LinkState != sriov.LinkStateAuto {
				t.Fatalf("%s: VF %d: got %s, want vlan 15, spoof checking on, link-state auto", stage, v.Index, v.VFState)
			}
		}
	}
	check("first agent")
	// a new agent (restart) finds the same allocations and changes nothing
	writes := func() int {
		n := 0
		for _, c := range r.nic.Calls() {
			if !strings.HasSuffix(c, " show") {
				n++
			}
		}
		return n
	}
	calls := writes()
	r.converge(t, r.agent(t))
	check("restarted agent")
	if got := writes(); got != calls {
		t.Fatalf("a restarted agent reprogrammed VFs: %d writes, want %d", got, calls)
	}
	// unbinding every port restores every VF exactly
	for _, id := range ids {
		if _, err := r.c.UpdatePort(context.Background(), id, map[string]any{"binding:host_id": ""}); err != nil {
			t.Fatal(err)
		}
	}
	w := r.converge(t, a)
	if len(w.Allocations) != 0 {
		t.Fatalf("after unbind: %d allocations left", len(w.Allocations))
	}
	after, _ := r.nic.VFs("ens1f1")
	for i := range before {
		if before[i].VFState.String() != after[i].VFState.String() {
			t.Fatalf("VF %d not restored: got %s, want %s", i, after[i].VFState, before[i].VFState)
		}
	}
}

func TestKilledMidwayRestartsConsistent(t *testing.T) {
	r := newRig(t, 64)
	ids := r.bind(t, 40)
	a := r.agent(t)
	// the agent is killed after a few claims: its context ends in the middle of a pass
	ctx, cancel := context.WithCancel(context.Background())
	w, _ := r.c.HostWork(ctx, "h1", 0)
	go func() {
		for len(r.nic.Calls()) < 30 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	a.Reconcile(ctx, w)
	// a new agent takes over
	b := r.agent(t)
	w = r.converge(t, b)
	if len(w.Allocations) != 40 {
		t.Fatalf("after restart: %d allocations, want 40", len(w.Allocations))
	}
	seen := map[string]bool{}
	for _, al := range w.Allocations {
		if seen[al.PCIAddress] {
			t.Fatalf("VF %s allocated twice", al.PCIAddress)
		}
		seen[al.PCIAddress] = true
	}
	for _, id := range ids {
		p, _ := r.c.GetPort(context.Background(), id)
		if p.Status != api.StatusActive {
			t.Fatalf("port %s: %s %+v after restart", id, p.Status, p.Conditions)
		}
	}
}

func TestBadDeviceSpecStopsAgent(t *testing.T) {
	if _, err := sriov.ParseDeviceSpecs([]byte(`[{"devname": "ens1f1"}]`)); err == nil {
		t.Fatal("a device spec without physical_network was accepted")
	}
	r := newRig(t, 4)
	if _, err := agent.New(agent.Config{Host: "", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: r.state}); err == nil {
		t.Fatal("an agent without a host name started")
	}
	if _, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: sriov.NewFS("/nonexistent"), NIC: r.nic, Client: r.c, StateDir: r.state}); err != nil {
		t.Logf("missing sysfs root: %v", err)
	}
}

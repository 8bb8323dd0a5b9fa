package netnshv_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/labnic"
	"github.com/vflink/vflink/internal/lab/labnic/labnictest"
	"github.com/vflink/vflink/internal/lab/netnshv"
)

type rig struct {
	e    *labnictest.Env
	nic  *labnic.NIC
	hv   *netnshv.Hypervisor
	vmns func(serverID string) string
}

// newRig builds a test host whose VM namespaces carry the test's prefix (not vfl-vm-*, which a
// lab teardown running in parallel would remove).
func newRig(t *testing.T, host, pfs, vfs int) *rig {
	e := labnictest.Setup(t, host, pfs, vfs)
	vmns := func(id string) string { return e.Prefix + "-vm-" + id[:min(len(id), 8)] }
	return &rig{
		e:    e,
		nic:  labnic.New(labnic.Config{Plan: e.Plan, Host: host, HostNS: e.HostNS}),
		hv:   netnshv.New(netnshv.Config{Plan: e.Plan, Host: host, HostNS: e.HostNS, VMNS: vmns}),
		vmns: vmns,
	}
}

// server returns a new server ID whose VM namespace is removed when the test ends, should the
// test not stop it.
func (r *rig) server(t *testing.T) string {
	id := uuid.NewString()
	t.Cleanup(func() {
		if err := r.hv.Stop(context.Background(), id); err != nil {
			t.Errorf("cleanup: Stop(%s): %v", id, err)
		}
		if labnictest.NSExists(r.vmns(id)) {
			exec.Command("ip", "netns", "del", r.vmns(id)).Run()
		}
	})
	return id
}

// vf programs VF n of PF k with mac (and VLAN) through the NIC backend, as the agent does before
// it starts the VM, and returns the interface to hand to the VM.
func (r *rig) vf(t *testing.T, k, n int, mac string, vlan int) hypervisor.Interface {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	if err := sriov.Apply(r.nic, lab.PFName(k), n, sriov.VFState{MAC: hw, VLAN: vlan, SpoofCheck: true}); err != nil {
		t.Fatal(err)
	}
	dev, err := sriov.NewFS(r.e.Plan.SysfsRoot(r.e.Host)).PCIDevice(lab.PFPCI(r.e.Host, k))
	if err != nil {
		t.Fatal(err)
	}
	return hypervisor.Interface{MAC: mac, PCIAddress: dev.VFs[n], VLAN: vlan, PortID: uuid.NewString()}
}

func link(t *testing.T, ns, name string) netlink.Link {
	t.Helper()
	l, err := linkIn(ns, name)
	if err != nil {
		t.Fatalf("%s in %s: %v", name, ns, err)
	}
	return l
}

func linkIn(ns, name string) (netlink.Link, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	defer nh.Close()
	return nh.LinkByName(name)
}

func running(t *testing.T, hv *netnshv.Hypervisor) []string {
	t.Helper()
	ids, err := hv.Running(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestStartStop(t *testing.T) {
	r := newRig(t, 1, 2, 4)
	ctx := context.Background()
	id := r.server(t)
	ns := r.vmns(id)
	s := hypervisor.Server{ID: id, Name: "vm1", VCPUs: 1, MemoryMiB: 64, Interfaces: []hypervisor.Interface{
		r.vf(t, 1, 2, "02:5a:0d:c4:39:77", 15),
		r.vf(t, 0, 0, "02:5a:0d:c4:39:78", 0),
	}}
	if got := running(t, r.hv); len(got) != 0 {
		t.Fatalf("Running before any Start = %v", got)
	}
	if err := r.hv.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}

	// The VFs are the VM's eth0 and eth1, in guest order, with their MACs, up, TX checksum off;
	// the host no longer has them.
	for i, want := range []struct{ host, mac string }{{"ens1f1v2", "02:5a:0d:c4:39:77"}, {"ens1f0v0", "02:5a:0d:c4:39:78"}} {
		eth := "eth" + string(rune('0'+i))
		l := link(t, ns, eth)
		if l.Attrs().HardwareAddr.String() != want.mac || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s in %s: MAC %s flags %v, want %s and up", eth, ns, l.Attrs().HardwareAddr, l.Attrs().Flags, want.mac)
		}
		if out := r.e.Exec(t, ns, "ethtool", "-k", eth); !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("%s in %s keeps TX checksumming:\n%s", eth, ns, out)
		}
		if _, err := linkIn(r.e.HostNS, want.host); err == nil {
			t.Errorf("%s is still in the host namespace", want.host)
		}
	}
	// The NIC backend follows the VF into the VM.
	if gotNS, ifname, err := r.nic.Locate("ens1f1", 2); err != nil || gotNS != ns || ifname != "eth0" {
		t.Errorf("Locate(ens1f1, 2) = %s %s %v, want eth0 in %s", gotNS, ifname, err, ns)
	}
	if got := running(t, r.hv); len(got) != 1 || got[0] != id {
		t.Errorf("Running = %v, want [%s]", got, id)
	}

	// Start again with the same server: nothing happens (the guest's address stays; a restart
	// would have moved the netdev out and back, which drops addresses).
	r.e.Exec(t, ns, "ip", "addr", "add", "10.247.251.1/24", "dev", "eth0")
	before := link(t, ns, "eth0").Attrs().Index
	if err := r.hv.Start(ctx, s); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	if out := r.e.Exec(t, ns, "ip", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.247.251.1/24") || link(t, ns, "eth0").Attrs().Index != before {
		t.Errorf("Start with the same server touched the VM:\n%s", out)
	}

	// Stop: the VFs are back in the host namespace under their own names, down; the namespace, the
	// record and the port records are gone.
	if err := r.hv.Stop(ctx, id); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if labnictest.NSExists(ns) {
		t.Errorf("namespace %s still exists after Stop", ns)
	}
	for _, name := range []string{"ens1f1v2", "ens1f0v0"} {
		l := link(t, r.e.HostNS, name)
		if l.Attrs().Flags&net.FlagUp != 0 {
			t.Errorf("%s is up after Stop, want down", name)
		}
	}
	if got := r.e.Vsctl(t, "get", "Port", lab.VFPort(1, 1, 2), "external_ids"); strings.Contains(got, "vflink-netns") {
		t.Errorf("port record left after Stop: %s", got)
	}
	if _, err := os.Stat(filepath.Join(r.e.Plan.Dir, "vms", ns+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VM record left after Stop: %v", err)
	}
	if got := running(t, r.hv); len(got) != 0 {
		t.Errorf("Running after Stop = %v", got)
	}
	// The NIC still reads the VF where it is now.
	if st, err := sriov.Save(r.nic, "ens1f1", 2); err != nil || st.MAC.String() != "02:5a:0d:c4:39:77" || st.VLAN != 15 {
		t.Errorf("vf 2 of ens1f1 after Stop: %s, %v", st, err)
	}
	if err := r.hv.Stop(ctx, id); err != nil {
		t.Errorf("Stop twice: %v", err)
	}
	if err := r.hv.Stop(ctx, uuid.NewString()); err != nil {
		t.Errorf("Stop of an unknown server: %v", err)
	}
	// A stopped VF can be handed out again.
	if err := r.hv.Start(ctx, s); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if got := running(t, r.hv); len(got) != 1 || got[0] != id {
		t.Errorf("Running after restart = %v, want [%s]", got, id)
	}
}

func TestChangesAndErrors(t *testing.T) {
	r := newRig(t, 2, 1, 4)
	ctx := context.Background()
	id := r.server(t)
	ns := r.vmns(id)
	vf0 := r.vf(t, 0, 0, "02:00:00:00:00:10", 10)
	vf1 := r.vf(t, 0, 1, "02:00:00:00:00:11", 10)
	if err := r.hv.Start(ctx, hypervisor.Server{ID: id, Interfaces: []hypervisor.Interface{vf0}}); err != nil {
		t.Fatal(err)
	}
	// Changed interfaces: stopped and started again with the new set, in the new order.
	if err := r.hv.Start(ctx, hypervisor.Server{ID: id, Interfaces: []hypervisor.Interface{vf1, vf0}}); err != nil {
		t.Fatalf("Start with changed interfaces: %v", err)
	}
	if got := link(t, ns, "eth0").Attrs().HardwareAddr.String(); got != vf1.MAC {
		t.Errorf("eth0 after the change has MAC %s, want %s (vf 1)", got, vf1.MAC)
	}
	if got := link(t, ns, "eth1").Attrs().HardwareAddr.String(); got != vf0.MAC {
		t.Errorf("eth1 after the change has MAC %s, want %s (vf 0)", got, vf0.MAC)
	}

	// Another host sharing the machine neither lists nor stops this host's VM.
	other := netnshv.New(netnshv.Config{Plan: r.e.Plan, Host: 1, HostNS: r.e.Prefix + "-none", VMNS: r.vmns})
	if got := running(t, other); len(got) != 0 {
		t.Errorf("host 1 lists host 2's VMs: %v", got)
	}
	if err := other.Stop(ctx, id); err != nil || !labnictest.NSExists(ns) {
		t.Errorf("host 1 Stop(host 2's VM) = %v, namespace exists %v; want nil and untouched", err, labnictest.NSExists(ns))
	}

	// A VF whose MAC the NIC backend did not program: refused, naming both MACs, nothing left.
	id2 := r.server(t)
	bad := r.vf(t, 0, 2, "02:00:00:00:00:12", 10)
	bad.MAC = "02:00:00:00:00:99"
	err := r.hv.Start(ctx, hypervisor.Server{ID: id2, Interfaces: []hypervisor.Interface{bad}})
	if err == nil || !strings.Contains(err.Error(), "02:00:00:00:00:12") || !strings.Contains(err.Error(), "02:00:00:00:00:99") {
		t.Errorf("Start with a MAC mismatch = %v, want an error naming both MACs", err)
	}
	if labnictest.NSExists(r.vmns(id2)) {
		t.Errorf("a failed Start left namespace %s", r.vmns(id2))
	}
	if _, err := linkIn(r.e.HostNS, "ens1f0v2"); err != nil {
		t.Errorf("a failed Start did not leave ens1f0v2 in the host namespace: %v", err)
	}
	// A VF another VM has: refused.
	if err := r.hv.Start(ctx, hypervisor.Server{ID: id2, Interfaces: []hypervisor.Interface{vf0}}); err == nil || !strings.Contains(err.Error(), ns) {
		t.Errorf("Start with another VM's VF = %v, want an error naming %s", err, ns)
	}
	if got := link(t, ns, "eth1").Attrs().HardwareAddr.String(); got != vf0.MAC {
		t.Errorf("the first VM lost its eth1 to a refused Start")
	}
	// Bad definitions.
	for name, s := range map[string]hypervisor.Server{
		"unknown pci": {ID: id2, Interfaces: []hypervisor.Interface{{MAC: "02:00:00:00:00:01", PCIAddress: "0000:99:10.0"}}},
		"bad pci":     {ID: id2, Interfaces: []hypervisor.Interface{{MAC: "02:00:00:00:00:01", PCIAddress: "nope"}}},
		"bad mac":     {ID: id2, Interfaces: []hypervisor.Interface{{MAC: "zz", PCIAddress: vf1.PCIAddress}}},
		"twice":       {ID: id2, Interfaces: []hypervisor.Interface{vf1, vf1}},
		"no id":       {Interfaces: []hypervisor.Interface{vf1}},
	} {
		if err := r.hv.Start(ctx, s); !errors.Is(err, hypervisor.ErrInvalid) {
			t.Errorf("Start(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if got := running(t, r.hv); len(got) != 1 || got[0] != id {
		t.Errorf("Running = %v, want only [%s]", got, id)
	}
	// A VM whose namespace vanished (deleted by hand: its VF netdevs die with it) is not running;
	// Stop clears its records.
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", ns, err, out)
	}
	if got := running(t, r.hv); len(got) != 0 {
		t.Errorf("Running with the namespace gone = %v, want none", got)
	}
	if err := r.hv.Stop(ctx, id); err != nil {
		t.Fatalf("Stop of a VM whose namespace is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.e.Plan.Dir, "vms", ns+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VM record left after Stop: %v", err)
	}
	if got := r.e.Vsctl(t, "get", "Port", lab.VFPort(2, 0, 0), "external_ids"); strings.Contains(got, "vflink-netns") {
		t.Errorf("port record left after Stop: %s", got)
	}
}

// TestVMsTalk is the path the demo relies on: two VMs on one host, their VFs in one access VLAN
// through the NIC's VEB, reach each other; a VLAN change on one VF cuts them apart.
func TestVMsTalk(t *testing.T) {
	r := newRig(t, 1, 1, 2)
	ctx := context.Background()
	a, b := r.server(t), r.server(t)
	if err := r.hv.Start(ctx, hypervisor.Server{ID: a, Interfaces: []hypervisor.Interface{r.vf(t, 0, 0, "02:00:00:00:0a:01", 33)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.hv.Start(ctx, hypervisor.Server{ID: b, Interfaces: []hypervisor.Interface{r.vf(t, 0, 1, "02:00:00:00:0a:02", 33)}}); err != nil {
		t.Fatal(err)
	}
	r.e.Exec(t, r.vmns(a), "ip", "addr", "add", "10.247.252.1/24", "dev", "eth0")
	r.e.Exec(t, r.vmns(b), "ip", "addr", "add", "10.247.252.2/24", "dev", "eth0")
	ok := false
	for range 5 {
		if ok = labnictest.Ping(r.vmns(a), "10.247.252.2"); ok {
			break
		}
	}
	if !ok {
		t.Fatal("two VMs with VFs in VLAN 33 cannot reach each other")
	}
	if err := r.nic.SetVLAN("ens1f0", 1, 34); err != nil {
		t.Fatal(err)
	}
	if labnictest.Ping(r.vmns(a), "10.247.252.2") {
		t.Error("VMs in VLANs 33 and 34 reach each other")
	}
	if got := running(t, r.hv); len(got) != 2 {
		t.Errorf("Running = %v, want both VMs", got)
	}
}

package labnic_test

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/labnic"
	"github.com/vflink/vflink/internal/lab/labnic/labnictest"
)

func newNIC(e *labnictest.Env) *labnic.NIC {
	return labnic.New(labnic.Config{Plan: e.Plan, Host: e.Host, HostNS: e.HostNS})
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func vfState(t *testing.T, nic *labnic.NIC, pf string, vf int) sriov.VFState {
	t.Helper()
	s, err := sriov.Save(nic, pf, vf)
	if err != nil {
		t.Fatalf("read vf %d of %s: %v", vf, pf, err)
	}
	return s
}

var cmpMAC = cmp.Comparer(func(a, b net.HardwareAddr) bool { return a.String() == b.String() })

func TestVFsAndSetters(t *testing.T) {
	e := labnictest.Setup(t, 3, 2, 4)
	nic := newNIC(e)

	// A fresh VF: the topology's MAC and parked port (VLAN 4095), nothing recorded.
	vfs, err := nic.VFs("ens1f1")
	if err != nil {
		t.Fatal(err)
	}
	if len(vfs) != 4 {
		t.Fatalf("VFs(ens1f1) reports %d VFs, want 4", len(vfs))
	}
	for n, v := range vfs {
		want := sriov.VFInfo{Index: n, VFState: sriov.VFState{MAC: mustMAC(t, labnictest.VFMAC(3, 1, n)), VLAN: 4095, LinkState: "auto"}}
		if diff := cmp.Diff(want, v, cmpMAC); diff != "" {
			t.Errorf("fresh vf %d (-want +got):\n%s", n, diff)
		}
	}

	mac := mustMAC(t, "02:5a:0d:c4:39:77")
	if err := nic.SetMAC("ens1f1", 2, mac); err != nil {
		t.Fatal(err)
	}
	if out := e.Exec(t, e.HostNS, "ip", "link", "show", "ens1f1v2"); !strings.Contains(out, "link/ether 02:5a:0d:c4:39:77") {
		t.Errorf("the VF netdev does not carry the MAC set:\n%s", out)
	}
	if err := nic.SetVLAN("ens1f1", 2, 15); err != nil {
		t.Fatal(err)
	}
	port := lab.VFPort(3, 1, 2)
	if got := e.Vsctl(t, "get", "Port", port, "vlan_mode", "tag"); got != "access\n15" {
		t.Errorf("%s vlan_mode, tag = %q, want access and 15", port, got)
	}
	if err := nic.SetSpoofCheck("ens1f1", 2, true); err != nil {
		t.Fatal(err)
	}
	if err := nic.SetTrust("ens1f1", 2, true); err != nil {
		t.Fatal(err)
	}
	if err := nic.SetLinkState("ens1f1", 2, "disable"); err != nil {
		t.Fatal(err)
	}
	want := sriov.VFState{MAC: mac, VLAN: 15, SpoofCheck: true, Trust: true, LinkState: "disable"}
	if diff := cmp.Diff(want, vfState(t, nic, "ens1f1", 2), cmpMAC); diff != "" {
		t.Errorf("vf 2 after the setters (-want +got):\n%s", diff)
	}
	if got := e.Vsctl(t, "get", "Port", port, "external_ids"); got != `{vflink-mac="02:5a:0d:c4:39:77", vflink-spoofchk=on, vflink-state=disable, vflink-trust=on}` {
		t.Errorf("%s external_ids = %s", port, got)
	}
	flows := e.Ofctl(t, "dump-flows", lab.NICBridge(3, 1), "--names")
	if !strings.Contains(flows, `in_port="`+port+`",dl_src=02:5a:0d:c4:39:77 actions=NORMAL`) ||
		!strings.Contains(flows, `in_port="`+port+`" actions=drop`) {
		t.Errorf("spoof check rules missing on %s:\n%s", lab.NICBridge(3, 1), flows)
	}
	ports := e.Ofctl(t, "show", lab.NICBridge(3, 1))
	if !strings.Contains(ports, "("+port+")") || !strings.Contains(portBlock(ports, port), "PORT_DOWN") {
		t.Errorf("disabled %s is not administratively down:\n%s", port, ports)
	}
	// The other VFs are untouched.
	if got := vfState(t, nic, "ens1f1", 1); got.VLAN != 4095 || got.SpoofCheck || got.MAC.String() != labnictest.VFMAC(3, 1, 1) {
		t.Errorf("vf 1 changed: %s", got)
	}

	// VLAN 0 is a trunk port without a tag; spoof check off removes the rules; enable brings the
	// port up; a new MAC moves the spoof rules along.
	if err := nic.SetVLAN("ens1f1", 2, 0); err != nil {
		t.Fatal(err)
	}
	if got := e.Vsctl(t, "get", "Port", port, "vlan_mode", "tag", "trunks"); got != "trunk\n[]\n[]" {
		t.Errorf("%s vlan_mode, tag, trunks after vlan 0 = %q, want trunk, [], []", port, got)
	}
	mac2 := mustMAC(t, "02:00:00:00:be:ef")
	if err := nic.SetMAC("ens1f1", 2, mac2); err != nil {
		t.Fatal(err)
	}
	if flows := e.Ofctl(t, "dump-flows", lab.NICBridge(3, 1)); !strings.Contains(flows, "dl_src=02:00:00:00:be:ef") || strings.Contains(flows, "dl_src=02:5a:0d:c4:39:77") {
		t.Errorf("spoof rules did not follow the new MAC:\n%s", flows)
	}
	if err := nic.SetSpoofCheck("ens1f1", 2, false); err != nil {
		t.Fatal(err)
	}
	if flows := e.Ofctl(t, "dump-flows", lab.NICBridge(3, 1)); strings.Contains(flows, "cookie=0x5f1a0001") {
		t.Errorf("spoof rules left after spoofchk off:\n%s", flows)
	}
	if err := nic.SetLinkState("ens1f1", 2, "enable"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(portBlock(e.Ofctl(t, "show", lab.NICBridge(3, 1)), port), "PORT_DOWN") {
		t.Errorf("enabled %s is still down", port)
	}
	want = sriov.VFState{MAC: mac2, VLAN: 0, SpoofCheck: false, Trust: true, LinkState: "enable"}
	if diff := cmp.Diff(want, vfState(t, nic, "ens1f1", 2), cmpMAC); diff != "" {
		t.Errorf("vf 2 after the second round (-want +got):\n%s", diff)
	}
}

// portBlock is the part of `ovs-ofctl show` about one port: its line and the indented lines after it.
func portBlock(show, port string) string {
	lines := strings.Split(show, "\n")
	for i, l := range lines {
		if strings.Contains(l, "("+port+")") {
			j := i + 1
			for j < len(lines) && strings.HasPrefix(lines[j], "     ") {
				j++
			}
			return strings.Join(lines[i:j], "\n")
		}
	}
	return ""
}

func TestApplyAndRestore(t *testing.T) {
	e := labnictest.Setup(t, 2, 2, 4)
	nic := newNIC(e)
	saved := vfState(t, nic, "ens1f0", 3)
	want := sriov.VFState{MAC: mustMAC(t, "02:5a:0d:c4:39:77"), VLAN: 42, SpoofCheck: true, Trust: false, LinkState: "auto"}
	start := time.Now()
	if err := sriov.Apply(nic, "ens1f0", 3, want); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Logf("sriov.Apply on a lab VF took %v", time.Since(start).Round(time.Millisecond))
	if diff := cmp.Diff(want, vfState(t, nic, "ens1f0", 3), cmpMAC); diff != "" {
		t.Errorf("after Apply (-want +got):\n%s", diff)
	}
	// FindMAC, the seed's script, finds the VF through the lab NIC and the host's sysfs tree.
	m, err := sriov.FindMAC(sriov.NewFS(e.Plan.SysfsRoot(2)), nic, want.MAC)
	if err != nil {
		t.Fatalf("FindMAC: %v", err)
	}
	if m.PF != "ens1f0" || m.VFIndex != 3 || m.VLAN != 42 {
		t.Errorf("FindMAC = %+v, want ens1f0 vf 3 vlan 42", m)
	}
	// Restoring the saved state parks the port again.
	if err := sriov.Apply(nic, "ens1f0", 3, saved); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := e.Vsctl(t, "get", "Port", lab.VFPort(2, 0, 3), "vlan_mode", "tag"); got != "access\n4095" {
		t.Errorf("restored port vlan_mode, tag = %q, want access 4095 (parked)", got)
	}
	if diff := cmp.Diff(saved, vfState(t, nic, "ens1f0", 3), cmpMAC); diff != "" {
		t.Errorf("after restore (-saved +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	e := labnictest.Setup(t, 1, 2, 4)
	nic := newNIC(e)
	mac := mustMAC(t, "02:5a:0d:c4:39:77")
	for _, pf := range []string{"ens1f2", "eth0"} {
		calls := map[string]error{
			"VFs":           func() error { _, err := nic.VFs(pf); return err }(),
			"SetMAC":        nic.SetMAC(pf, 0, mac),
			"SetVLAN":       nic.SetVLAN(pf, 0, 5),
			"SetSpoofCheck": nic.SetSpoofCheck(pf, 0, true),
			"SetTrust":      nic.SetTrust(pf, 0, true),
			"SetLinkState":  nic.SetLinkState(pf, 0, "auto"),
		}
		for name, err := range calls {
			if !errors.Is(err, sriov.ErrLinkNotFound) || !strings.Contains(err.Error(), pf) {
				t.Errorf("%s(%s) = %v, want an error naming %s and wrapping ErrLinkNotFound", name, pf, err, pf)
			}
		}
	}
	for _, vf := range []int{-1, 4} {
		calls := map[string]error{
			"SetMAC":        nic.SetMAC("ens1f0", vf, mac),
			"SetVLAN":       nic.SetVLAN("ens1f0", vf, 5),
			"SetSpoofCheck": nic.SetSpoofCheck("ens1f0", vf, true),
			"SetTrust":      nic.SetTrust("ens1f0", vf, true),
			"SetLinkState":  nic.SetLinkState("ens1f0", vf, "auto"),
		}
		for name, err := range calls {
			if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "out of range 0-3") {
				t.Errorf("%s(ens1f0, vf %d) = %v, want out of range 0-3 (EINVAL)", name, vf, err)
			}
		}
	}
	bad := map[string]error{
		"multicast mac": nic.SetMAC("ens1f0", 0, mustMAC(t, "01:00:5e:00:00:01")),
		"zero mac":      nic.SetMAC("ens1f0", 0, mustMAC(t, "00:00:00:00:00:00")),
		"vlan 4096":     nic.SetVLAN("ens1f0", 0, 4096),
		"state bogus":   nic.SetLinkState("ens1f0", 0, "bogus"),
	}
	for name, err := range bad {
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", name, err)
		}
	}
	if got := vfState(t, nic, "ens1f0", 0); got.VLAN != 4095 || got.MAC.String() != labnictest.VFMAC(1, 0, 0) || got.LinkState != "auto" {
		t.Errorf("vf 0 changed by refused calls: %s", got)
	}
	// A VF netdev that is gone is reported, naming where it was looked for.
	e.Exec(t, e.HostNS, "ip", "link", "set", "dev", "ens1f0v1", "name", "gone")
	if err := nic.SetMAC("ens1f0", 1, mac); !errors.Is(err, labnic.ErrNetdevLost) || !strings.Contains(err.Error(), "ens1f0v1 in "+e.HostNS) {
		t.Errorf("SetMAC on a vanished netdev = %v, want ErrNetdevLost naming ens1f0v1 in %s", err, e.HostNS)
	}
	// Without ovs-vswitchd's socket the OpenFlow parts say where they looked.
	nic2 := labnic.New(labnic.Config{Plan: e.Plan, Host: e.Host, HostNS: e.HostNS, OVSRundir: "/nonexistent"})
	if err := nic2.SetLinkState("ens1f0", 0, "disable"); err == nil || !strings.Contains(err.Error(), "/nonexistent/nic-h1p0.mgmt") {
		t.Errorf("SetLinkState without the mgmt socket = %v, want an error naming it", err)
	}
}

// moveVF moves VF n of PF 0 into a new namespace as eth0 with an address, as a VM would have it,
// and records the move as the hypervisor does.
func moveVF(t *testing.T, e *labnictest.Env, nic *labnic.NIC, n int, suffix, addr string) string {
	t.Helper()
	ns := e.Prefix + "-" + suffix
	e.AddNS(t, ns)
	if err := nic.RecordLocation("ens1f0", n, ns, "eth0"); err != nil {
		t.Fatal(err)
	}
	e.Exec(t, e.HostNS, "ip", "link", "set", "dev", lab.VFName(0, n), "netns", ns)
	e.Exec(t, ns, "ip", "link", "set", "dev", lab.VFName(0, n), "name", "eth0")
	e.Exec(t, ns, "ip", "link", "set", "dev", "eth0", "up")
	e.Exec(t, ns, "ethtool", "-K", "eth0", "tx", "off")
	e.Exec(t, ns, "ip", "addr", "add", addr+"/24", "dev", "eth0")
	return ns
}

// pingEventually lets a change settle (ARP, carrier) before it counts as a failure.
func pingEventually(ns, addr string) bool {
	for range 5 {
		if labnictest.Ping(ns, addr) {
			return true
		}
	}
	return false
}

func TestDataPath(t *testing.T) {
	e := labnictest.Setup(t, 1, 1, 2)
	nic := newNIC(e)
	a := moveVF(t, e, nic, 0, "a", "10.247.250.1")
	b := moveVF(t, e, nic, 1, "b", "10.247.250.2")

	// The NIC backend follows the VF into its namespace.
	macA := mustMAC(t, "02:5a:0d:00:00:0a")
	macB := mustMAC(t, "02:5a:0d:00:00:0b")
	for n, mac := range []net.HardwareAddr{macA, macB} {
		if err := sriov.Apply(nic, "ens1f0", n, sriov.VFState{MAC: mac, VLAN: 10, SpoofCheck: true}); err != nil {
			t.Fatalf("Apply vf %d: %v", n, err)
		}
	}
	if out := e.Exec(t, a, "ip", "link", "show", "eth0"); !strings.Contains(out, "link/ether "+macA.String()) {
		t.Errorf("eth0 in %s does not carry %s:\n%s", a, macA, out)
	}
	if ns, ifname, err := nic.Locate("ens1f0", 1); err != nil || ns != b || ifname != "eth0" {
		t.Errorf("Locate(ens1f0, 1) = %s, %s, %v; want eth0 in %s", ns, ifname, err, b)
	}
	if refs, err := nic.InNamespace(b); err != nil || len(refs) != 1 || refs[0] != (labnic.VFRef{PF: "ens1f0", VF: 1, Ifname: "eth0"}) {
		t.Errorf("InNamespace(%s) = %+v, %v; want ens1f0 vf 1 as eth0", b, refs, err)
	}

	// Same access VLAN: the VEB switches between the VFs.
	if !pingEventually(a, "10.247.250.2") {
		t.Fatal("VFs in the same VLAN 10 cannot reach each other")
	}
	// Different VLANs: isolated.
	if err := nic.SetVLAN("ens1f0", 1, 20); err != nil {
		t.Fatal(err)
	}
	if labnictest.Ping(a, "10.247.250.2") {
		t.Error("VFs in VLANs 10 and 20 reach each other")
	}
	// Both trunk (VLAN 0): untagged frames pass.
	for n := range 2 {
		if err := nic.SetVLAN("ens1f0", n, 0); err != nil {
			t.Fatal(err)
		}
	}
	if !pingEventually(a, "10.247.250.2") {
		t.Error("trunk VFs (VLAN 0) cannot exchange untagged frames")
	}
	// Spoof check: frames from a MAC the NIC did not set are dropped.
	e.Exec(t, b, "ip", "link", "set", "dev", "eth0", "address", "02:66:66:66:66:66")
	if labnictest.Ping(a, "10.247.250.2") {
		t.Error("a VF with spoof checking on sends from a MAC the PF did not give it")
	}
	// Setting the check again keeps checking the MAC the NIC gave, not the guest's.
	if err := nic.SetSpoofCheck("ens1f0", 1, true); err != nil {
		t.Fatal(err)
	}
	if labnictest.Ping(a, "10.247.250.2") {
		t.Error("spoof check set again lets the guest's own MAC through")
	}
	if err := nic.SetSpoofCheck("ens1f0", 1, false); err != nil {
		t.Fatal(err)
	}
	e.Exec(t, a, "ip", "neigh", "flush", "dev", "eth0")
	if !pingEventually(a, "10.247.250.2") {
		t.Error("spoof check off: the changed MAC still cannot send")
	}
	if err := nic.SetMAC("ens1f0", 1, macB); err != nil {
		t.Fatal(err)
	}
	e.Exec(t, a, "ip", "neigh", "flush", "dev", "eth0")
	// A disabled link state drops; enable restores.
	if err := nic.SetLinkState("ens1f0", 1, "disable"); err != nil {
		t.Fatal(err)
	}
	if labnictest.Ping(a, "10.247.250.2") {
		t.Error("a disabled VF still passes traffic")
	}
	if out := e.Exec(t, b, "ip", "link", "show", "eth0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("a disabled VF keeps its carrier:\n%s", out)
	}
	if err := nic.SetLinkState("ens1f0", 1, "enable"); err != nil {
		t.Fatal(err)
	}
	if !pingEventually(a, "10.247.250.2") {
		t.Error("re-enabled VF cannot reach its peer")
	}
}

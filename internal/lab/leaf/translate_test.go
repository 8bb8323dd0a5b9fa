package leaf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/internal/lab"
)

// golden reads what the renderer writes for a device (render's golden files).
func golden(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "fabric", "render", "testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func testConfig(j int) Config {
	return Config{Plan: lab.Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 2, Leaves: 2, Dir: "/nonexistent"}, Leaf: j}
}

// bridge1 is leaf1's bridge: its own internal port, ports for xe-0/0/1 to xe-0/0/5, the uplink.
var bridge1 = []string{"leaf1", "l1-xe1", "l1-xe2", "l1-xe3", "l1-xe4", "l1-xe5", "up-l1"}

func translate(t *testing.T, j int, lines []string, ports []string) Result {
	t.Helper()
	r, err := Translate(testConfig(j), lines, ports)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	return r
}

// settings is a result's ports as OVS settings, with their reasons: what a test compares.
func settings(r Result) []string {
	var out []string
	for _, p := range r.Ports {
		s := p.String()
		if p.Why != "" {
			s += " # " + p.Why
		}
		out = append(out, s)
	}
	return out
}

func flowSpecs(r Result) []string {
	var out []string
	for _, f := range r.Flows {
		out = append(out, f.Bridge+": "+f.Spec)
	}
	return out
}

func check(t *testing.T, r Result, wantPorts, wantFlows, wantProblems []string) {
	t.Helper()
	if d := cmp.Diff(wantPorts, settings(r)); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantFlows, flowSpecs(r)); d != "" {
		t.Errorf("flows (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantProblems, r.Problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}

func TestTranslateAccess(t *testing.T) {
	// One VF on network red (VLAN 15, VNI 15) behind xe-0/0/3: the renderer's trunk with one member.
	r := translate(t, 1, golden(t, "access-vf"), bridge1)
	check(t, r, []string{
		"l1-xe1 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"l1-xe2 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"l1-xe3 vlan_mode=trunk trunks=15",
		"l1-xe4 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"l1-xe5 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"up-l1 vlan_mode=trunk trunks=15 # vlans with a vxlan vni",
	}, nil, nil)
	p, _ := r.Port("l1-xe3")
	if p.Interface != "xe-0/0/3" || p.Parked() {
		t.Errorf("l1-xe3 = %+v", p)
	}

	// Junos interface-mode access (and its default, no interface-mode): untagged is the VLAN.
	r = translate(t, 1, []string{
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode access",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-15",
		"set interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members 16", // a vlan-id
		"set vlans bd-15 vlan-id 15",
		"set vlans bd-16 vlan-id 16",
	}, []string{"l1-xe1", "l1-xe2"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=access tag=15",
		"l1-xe2 vlan_mode=access tag=16",
	}, nil, nil)
}

func TestTranslateTrunkNative(t *testing.T) {
	r := translate(t, 1, golden(t, "trunk-native"), []string{"l1-xe1", "up-l1"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=native-untagged tag=9 trunks=7,8,9 # untagged is VLAN 9",
		"up-l1 vlan_mode=trunk trunks=7,8,9 # vlans with a vxlan vni",
	}, nil, nil)

	// The native VLAN need not be a member: it joins the trunks. A native VLAN no vlan has
	// carries nothing: untagged frames are dropped, tagged ones still pass.
	r = translate(t, 1, []string{
		"set apply-groups g",
		"set groups g interfaces xe-0/0/1 native-vlan-id 15",
		"set groups g interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		"set groups g interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-7",
		"set groups g interfaces xe-0/0/2 native-vlan-id 99",
		"set groups g interfaces xe-0/0/2 unit 0 family ethernet-switching interface-mode trunk",
		"set groups g interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-7",
		"set groups g vlans bd-7 vlan-id 7",
		"set groups g vlans bd-15 vlan-id 15",
	}, []string{"l1-xe1", "l1-xe2"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=native-untagged tag=15 trunks=7,15 # untagged is VLAN 15",
		"l1-xe2 vlan_mode=trunk trunks=7 # native-vlan-id 99 is no vlan's vlan-id: untagged frames are dropped",
	}, nil, []string{"interfaces xe-0/0/2 native-vlan-id 99 is no vlan's vlan-id: untagged frames are dropped"})
}

func TestTranslateESILAGMember(t *testing.T) {
	// ae3 is multi-homed to leaf1 and leaf2 (ESI all-active); its member xe-0/0/3 carries ae3's
	// networks. bd-7 is VLAN 12 on the leaf and VNI 7 on the fabric, bd-8 VLAN 14 and VNI 8.
	for _, j := range []int{1, 2} {
		name := []string{"", "esi-lag-leaf1", "esi-lag-leaf2"}[j]
		up, dn := lab.LeafUplink(j), lab.SpineDownlink(j)
		r := translate(t, j, golden(t, name), []string{lab.LeafPort(j, 1), lab.LeafPort(j, 3), up})
		check(t, r, []string{
			lab.LeafPort(j, 1) + " vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
			lab.LeafPort(j, 3) + " vlan_mode=trunk trunks=12,14 # member of ae3",
			up + " vlan_mode=trunk trunks=12,14 # vlans with a vxlan vni",
		}, []string{
			lab.LeafName(j) + ": priority=100,in_port=" + up + ",dl_vlan=7,actions=mod_vlan_vid:12,NORMAL",
			lab.LeafName(j) + ": priority=100,in_port=" + up + ",dl_vlan=8,actions=mod_vlan_vid:14,NORMAL",
			lab.LeafName(j) + ": priority=90,in_port=" + up + ",actions=drop",
			"spine: priority=100,in_port=" + dn + ",dl_vlan=12,actions=mod_vlan_vid:7,NORMAL",
			"spine: priority=100,in_port=" + dn + ",dl_vlan=14,actions=mod_vlan_vid:8,NORMAL",
		}, nil)
	}

	// Two members of one LAG on one switch, with ether-options: both take ae4's configuration.
	r := translate(t, 1, golden(t, "lag-one-switch"), bridge1)
	p4, _ := r.Port("l1-xe4")
	p5, _ := r.Port("l1-xe5")
	if p4.String() != "l1-xe4 vlan_mode=trunk trunks=12" || p5.String() != "l1-xe5 vlan_mode=trunk trunks=12" {
		t.Errorf("members of ae4: %v, %v", p4, p5)
	}
	r = translate(t, 1, []string{
		"set interfaces xe-0/0/1 ether-options 802.3ad ae1",
		"set interfaces xe-0/0/2 ether-options 802.3ad ae2", // ae2 has no configuration
		"set interfaces ae1 unit 0 family ethernet-switching interface-mode trunk",
		"set interfaces ae1 unit 0 family ethernet-switching vlan members bd-15",
		"set vlans bd-15 vlan-id 15",
	}, []string{"l1-xe1", "l1-xe2"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=trunk trunks=15 # member of ae1",
		"l1-xe2 vlan_mode=access tag=4095 # parked: member of ae2, which has no ethernet-switching configuration",
	}, nil, nil)
}

func TestTranslateInertGroup(t *testing.T) {
	// The renderer's groups, but nothing applies them: the leaf forwards nothing.
	var lines []string
	for _, l := range golden(t, "esi-lag-leaf1") {
		if !strings.HasPrefix(l, "set apply-groups ") {
			lines = append(lines, l)
		}
	}
	r := translate(t, 1, lines, []string{"l1-xe3", "up-l1"})
	check(t, r, []string{
		"l1-xe3 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"up-l1 vlan_mode=access tag=4095 # parked: no vlan has a vxlan vni",
	}, nil, nil)

	// Only the applied groups count: __vflink_lag__ makes xe-0/0/3 a member of ae3, whose
	// configuration is in the group that is not applied.
	r = translate(t, 1, append(lines, "set apply-groups __vflink_lag__"), []string{"l1-xe3", "up-l1"})
	p, _ := r.Port("l1-xe3")
	if !p.Parked() || p.Why != "parked: member of ae3, which has no ethernet-switching configuration" {
		t.Errorf("l1-xe3 = %+v", p)
	}

	// Top-level statements take effect, and win over a group's value.
	r = translate(t, 1, []string{
		"set apply-groups g",
		"set groups g interfaces xe-0/0/1 native-vlan-id 15",
		"set groups g interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		"set groups g interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-15",
		"set groups g vlans bd-15 vlan-id 15",
		"set interfaces xe-0/0/1 native-vlan-id 16",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-16",
		"set vlans bd-16 vlan-id 16",
	}, []string{"l1-xe1"})
	check(t, r, []string{"l1-xe1 vlan_mode=native-untagged tag=16 trunks=15,16 # untagged is VLAN 16"}, nil, nil)
}

func TestTranslateRemoval(t *testing.T) {
	base := []string{
		"set apply-groups __vflink_access__",
		"set groups __vflink_access__ interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		"set groups __vflink_access__ interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-15",
		"set groups __vflink_access__ interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-16",
		"set groups __vflink_access__ interfaces xe-0/0/2 unit 0 family ethernet-switching interface-mode trunk",
		"set groups __vflink_access__ interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-15",
		"set groups __vflink_access__ vlans bd-15 vlan-id 15",
		"set groups __vflink_access__ vlans bd-15 vxlan vni 15",
		"set groups __vflink_access__ vlans bd-16 vlan-id 16",
		"set groups __vflink_access__ vlans bd-16 vxlan vni 16",
	}
	r := translate(t, 1, base, []string{"l1-xe1", "l1-xe2", "up-l1"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=trunk trunks=15,16",
		"l1-xe2 vlan_mode=trunk trunks=15",
		"up-l1 vlan_mode=trunk trunks=15,16 # vlans with a vxlan vni",
	}, nil, nil)

	// bd-15 leaves xe-0/0/1; bd-16 leaves the leaf; xe-0/0/2 loses its configuration.
	var next []string
	for _, l := range base {
		if !strings.Contains(l, "xe-0/0/1 unit 0 family ethernet-switching vlan members bd-15") &&
			!strings.Contains(l, "bd-16") && !strings.Contains(l, "xe-0/0/2") {
			next = append(next, l)
		}
	}
	r = translate(t, 1, next, []string{"l1-xe1", "l1-xe2", "up-l1"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=access tag=4095 # parked: interface-mode trunk without vlan members",
		"l1-xe2 vlan_mode=access tag=4095 # parked: no ethernet-switching configuration",
		"up-l1 vlan_mode=trunk trunks=15 # vlans with a vxlan vni",
	}, nil, nil)

	// Nothing at all: everything parked (a trunk with no trunks would carry every VLAN in OVS).
	r = translate(t, 1, nil, []string{"l1-xe1", "l1-xe2", "up-l1"})
	for _, p := range r.Ports {
		if !p.Parked() {
			t.Errorf("empty configuration: %v is not parked", p)
		}
	}
}

func TestTranslateProblems(t *testing.T) {
	r := translate(t, 2, []string{
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-15",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-99", // no such vlan
		"set interfaces xe-0/0/2 unit 0 family ethernet-switching interface-mode access",
		"set interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-15",
		"set interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-16",
		"set interfaces xe-0/0/7 mtu 9192",                                            // no port on the bridge
		"set interfaces et-0/0/1 description x",                                       // not a lab port name
		"set interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-17", // bd-17 has vlan-id 15 too
		"set vlans bd-15 vlan-id 15",
		"set vlans bd-15 vxlan vni 15",
		"set vlans bd-16 vlan-id 16",
		"set vlans bd-16 vxlan vni 5000", // beyond the lab fabric's VLANs
		"set vlans bd-17 vlan-id 15",
		"set protocols evpn encapsulation vxlan", // ignored
		"set system host-name leaf2",             // ignored
		"set something junosconf does not know",  // ignored
		"delete interfaces xe-0/0/9",             // not a set: ignored
	}, []string{"leaf2", "l2-xe1", "l2-xe2", "l2-xe3", "up-l2", "l1-xe1"})
	check(t, r, []string{
		"l2-xe1 vlan_mode=access tag=4095 # parked: vlan members bd-99: no such vlan with a vlan-id",
		"l2-xe2 vlan_mode=access tag=4095 # parked: interface-mode access needs exactly one vlan member, it has 2",
		"l2-xe3 vlan_mode=access tag=4095 # parked: vlan members bd-17: no such vlan with a vlan-id",
		"up-l2 vlan_mode=trunk trunks=15 # vlans with a vxlan vni",
	}, nil, []string{
		"vlans bd-15 and bd-17 both have vlan-id 15: bd-17 is not forwarded",
		"interfaces configured on leaf2 but not on its bridge: et-0/0/1 (the lab's leaves have xe-0/0/<n> ports only), xe-0/0/7 (no port l2-xe7)",
		"interfaces xe-0/0/1 vlan members bd-99: no such vlan with a vlan-id: parked",
		"interfaces xe-0/0/2 interface-mode access needs exactly one vlan member, it has 2: parked",
		"interfaces xe-0/0/3 vlan members bd-17: no such vlan with a vlan-id: parked",
		"vlans bd-16 vxlan vni 5000: the lab's fabric carries VNIs 1-4094 only (as VLANs on the spine): bd-16 stays on leaf2",
	})

	// VNIs but no uplink.
	r = translate(t, 1, golden(t, "access-vf"), []string{"l1-xe3"})
	if !slices.Equal(r.Problems, []string{"the bridge leaf1 has no uplink up-l1: VNIs stay on the leaf"}) {
		t.Errorf("problems = %q", r.Problems)
	}

	// Not set syntax at all.
	if _, err := Translate(testConfig(1), []string{`set interfaces "xe-0/0/1`}, nil); err == nil {
		t.Error("an unterminated string was accepted")
	}
}

func TestTranslateMixedTranslation(t *testing.T) {
	// bd-7 needs translation, bd-20 does not; VNI 20's frames must still be accepted from the
	// uplink (they would be dropped with the rest otherwise).
	r := translate(t, 1, []string{
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-7",
		"set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-20",
		"set vlans bd-7 vlan-id 12",
		"set vlans bd-7 vxlan vni 7",
		"set vlans bd-20 vlan-id 20",
		"set vlans bd-20 vxlan vni 20",
		"set vlans bd-30 vlan-id 30", // local only: not on the uplink
	}, []string{"l1-xe1", "up-l1"})
	check(t, r, []string{
		"l1-xe1 vlan_mode=trunk trunks=12,20",
		"up-l1 vlan_mode=trunk trunks=12,20 # vlans with a vxlan vni",
	}, []string{
		"leaf1: priority=100,in_port=up-l1,dl_vlan=7,actions=mod_vlan_vid:12,NORMAL",
		"leaf1: priority=100,in_port=up-l1,dl_vlan=20,actions=NORMAL",
		"leaf1: priority=90,in_port=up-l1,actions=drop",
		"spine: priority=100,in_port=dn-l1,dl_vlan=12,actions=mod_vlan_vid:7,NORMAL",
	}, nil)
}

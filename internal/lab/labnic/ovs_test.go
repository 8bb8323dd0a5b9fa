package labnic

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

// listOutput is what ovs-vsctl 3.1 prints for
// `--format=json -- --columns=name,vlan_mode,tag,external_ids list Port ...`.
const listOutput = `{"data":[["vf-h1p0v0","access",4095,["map",[]]],` +
	`["vf-h1p0v1",["set",[]],["set",[]],["map",[["vflink-netns","vfl-vm-1a2b3c4d"],["vflink-ifname","eth0"],["vflink-spoofchk","on"],["vflink-state","disable"],["vflink-trust","off"]]]],` +
	`["vf-h1p0v2","trunk",["set",[]],["map",[["vflink-spoofchk","off"],["vflink-trust","on"],["vflink-state","enable"]]]],` +
	`["vf-h1p0v3","native-untagged",7,["map",[]]],` +
	`["vf-h1p0v4",["set",[]],12,["map",[]]]],` +
	`"headings":["name","vlan_mode","tag","external_ids"]}`

func TestParsePorts(t *testing.T) {
	rows, err := parsePorts(listOutput)
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	for name, want := range map[string]sriov.VFState{
		"vf-h1p0v0": {MAC: mac, VLAN: 4095, LinkState: "auto"},
		"vf-h1p0v1": {MAC: mac, VLAN: 0, SpoofCheck: true, LinkState: "disable"},
		"vf-h1p0v2": {MAC: mac, VLAN: 0, Trust: true, LinkState: "enable"},
		"vf-h1p0v3": {MAC: mac, VLAN: 0, LinkState: "auto"},  // native-untagged: a trunk VF
		"vf-h1p0v4": {MAC: mac, VLAN: 12, LinkState: "auto"}, // a tag without a mode is access
	} {
		row, ok := rows[name]
		if !ok {
			t.Errorf("no row for %s", name)
			continue
		}
		if diff := cmp.Diff(want, row.state(mac), cmp.Comparer(func(a, b net.HardwareAddr) bool { return a.String() == b.String() })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	if got := rows["vf-h1p0v1"].ExternalIDs[KeyNetns]; got != "vfl-vm-1a2b3c4d" {
		t.Errorf("vf-h1p0v1 netns = %q", got)
	}
	for _, bad := range []string{
		``, `{}`, `{"data":[["x"]],"headings":["name","vlan_mode","tag","external_ids"]}`,
		`{"data":[],"headings":["name"]}`,
		`{"data":[["x","access","seven",["map",[]]]],"headings":["name","vlan_mode","tag","external_ids"]}`,
		`{"data":[["x","access",7,["set",[]]]],"headings":["name","vlan_mode","tag","external_ids"]}`,
	} {
		if _, err := parsePorts(bad); err == nil {
			t.Errorf("parsePorts(%q) = nil error", bad)
		}
	}
}

func FuzzParsePorts(f *testing.F) {
	f.Add(listOutput)
	f.Add(`{"data":[],"headings":["name","vlan_mode","tag","external_ids"]}`)
	f.Fuzz(func(t *testing.T, out string) {
		rows, err := parsePorts(out)
		if err != nil {
			return
		}
		for _, r := range rows {
			s := r.state(nil)
			if s.VLAN < 0 || s.LinkState == "" {
				t.Errorf("row %+v reads back as %s", r, s)
			}
		}
	})
}

func TestCandidates(t *testing.T) {
	n := New(Config{Plan: lab.Plan{Hosts: 1, PFsPerHost: 2, VFsPerPF: 4, Leaves: 1, Dir: "/x"}, Host: 1})
	at := func(ids map[string]string) []location { return n.candidates(1, 3, portRow{ExternalIDs: ids}) }
	if diff := cmp.Diff([]location{{"vfl-h1", "ens1f1v3"}}, at(nil), cmp.AllowUnexported(location{})); diff != "" {
		t.Errorf("unrecorded (-want +got):\n%s", diff)
	}
	want := []location{{"vfl-vm-1", "eth2"}, {"vfl-vm-1", "ens1f1v3"}, {"vfl-h1", "ens1f1v3"}}
	if diff := cmp.Diff(want, at(map[string]string{KeyNetns: "vfl-vm-1", KeyIfname: "eth2"}), cmp.AllowUnexported(location{})); diff != "" {
		t.Errorf("recorded in a VM (-want +got):\n%s", diff)
	}
	if n.mgmt("nic-h1p1") != "/x/ovs/nic-h1p1.mgmt" {
		t.Errorf("mgmt socket = %s, want /x/ovs/nic-h1p1.mgmt (OVS_RUNDIR=<Dir>/ovs)", n.mgmt("nic-h1p1"))
	}
}

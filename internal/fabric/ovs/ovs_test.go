package ovs

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/api"
)

func TestRender(t *testing.T) {
	atts := []api.Attachment{
		{Device: "ovs1", Interface: "p1", NetworkID: "n-red", VLAN: 20},
		{Device: "ovs1", Interface: "p1", NetworkID: "n-blue", VLAN: 10},
		{Device: "ovs1", Interface: "p1", NetworkID: "n-blue2", VLAN: 10}, // same VLAN twice: once
		{Device: "ovs1", Interface: "eth0.7", NetworkID: "n-green", VLAN: 7},
		{Device: "ovs1", Interface: "eth0.7", NetworkID: "n-red", VLAN: 5, Native: true},
		{Device: "ovs2", Interface: "p9", NetworkID: "n-red", VLAN: 99},
		{Device: "ovs2", PortGroup: []api.Member{{Device: "ovs2", Interface: "p1"}}, NetworkID: "n-lag", VLAN: 3},
	}
	got, err := Render(atts, "ovs1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"port eth0.7 vlan_mode=native-untagged tag=5 trunks=5,7",
		"port p1 vlan_mode=trunk trunks=10,20",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
	for _, l := range got {
		if _, err := parseLine(l); err != nil {
			t.Errorf("parseLine(Render line %q): %v", l, err)
		}
	}
	none, err := Render(atts, "ovs3")
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("Render(no attachments) = %#v, %v; want an empty list", none, err)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		att     api.Attachment
		wantErr string
	}{
		{"port group", api.Attachment{Device: "d", PortGroup: []api.Member{{Device: "d", Interface: "p1"}}, VLAN: 3},
			"the ovs driver has no port groups (LAG/ESI)"},
		{"no interface", api.Attachment{Device: "d", VLAN: 3}, "names no interface"},
		{"name too long", api.Attachment{Device: "d", Interface: "abcdefghijklmnop", VLAN: 3}, `"abcdefghijklmnop" is not an OVS port name`},
		{"slash", api.Attachment{Device: "d", Interface: "xe-0/0/1", VLAN: 3}, "is not an OVS port name"},
		{"space", api.Attachment{Device: "d", Interface: "p1 trunks=1", VLAN: 3}, "is not an OVS port name"},
		{"dotdot", api.Attachment{Device: "d", Interface: "..", VLAN: 3}, "is not an OVS port name"},
		{"vlan 0", api.Attachment{Device: "d", Interface: "p1", VLAN: 0}, "VLAN 0 is out of range 1-4094"},
		{"vlan 4095", api.Attachment{Device: "d", Interface: "p1", VLAN: 4095}, "VLAN 4095 is out of range 1-4094"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render([]api.Attachment{tt.att}, "d")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Render = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	_, err := Render([]api.Attachment{
		{Device: "d", Interface: "p1", VLAN: 3, Native: true},
		{Device: "d", Interface: "p1", VLAN: 4, Native: true},
	}, "d")
	if err == nil || !strings.Contains(err.Error(), "two untagged (native) VLANs, 3 and 4") {
		t.Errorf("Render(two natives) = %v, want an error naming both", err)
	}
}

func TestParseLine(t *testing.T) {
	p, err := parseLine("port p1 vlan_mode=native-untagged tag=5 trunks=7,5,7")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.line(), "port p1 vlan_mode=native-untagged tag=5 trunks=5,7"; got != want {
		t.Errorf("line() = %q, want %q", got, want)
	}
	for _, tt := range []struct{ line, wantErr string }{
		{"", "not a port statement"},
		{"interface p1 vlan_mode=trunk trunks=1", "not a port statement"},
		{"port p1 vlan_mode=access trunks=1", `vlan_mode "access"`},
		{"port p1 vlan_mode=trunk", "not a port statement"},
		{"port p1 vlan_mode=trunk trunks=", `VLAN "" is not a number 1-4094`},
		{"port p1 vlan_mode=trunk trunks=1,4095", `VLAN "4095" is not a number 1-4094`},
		{"port p1 vlan_mode=trunk tag=3 trunks=3", "a trunk port has no tag"},
		{"port p1 vlan_mode=native-untagged trunks=3", "native-untagged needs tag"},
		{"port p1 vlan_mode=native-untagged tag=4 trunks=3", "the native VLAN 4 must be among the trunks"},
		{"port p1 vlan_mode=trunk trunks=1 trunks=2", "is not a single key=value"},
		{"port p1 vlan_mode=trunk trunks=1 other_config:x=y", "unknown key"},
		{"port p1;rm vlan_mode=trunk trunks=1", "is not an OVS port name"},
	} {
		if _, err := parseLine(tt.line); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseLine(%q) = %v, want an error containing %q", tt.line, err, tt.wantErr)
		}
	}
}

// listOutput is what `ovs-vsctl --format=json -- --columns=name,ports list Bridge br0 --
// --columns=_uuid,name,vlan_mode,tag,trunks,external_ids list Port` printed for a database with
// br0 (ports br0, p1, p2) and br1 (ports br1, q1).
const listOutput = `{"data":[["br0",["set",[["uuid","0ec4b27d-d59d-4fbe-b088-ac27ca7eb92b"],["uuid","3541ae2c-8807-47bc-8482-723a6b5a75da"],["uuid","ef99f0c7-50df-4581-8410-c04ae2dc4a79"]]]]],"headings":["name","ports"]}
{"data":[[["uuid","3541ae2c-8807-47bc-8482-723a6b5a75da"],"br0",["set",[]],["set",[]],["set",[]],["map",[]]],[["uuid","0ec4b27d-d59d-4fbe-b088-ac27ca7eb92b"],"p1","trunk",["set",[]],["set",[10,20]],["map",[["vflink","managed"]]]],[["uuid","ef99f0c7-50df-4581-8410-c04ae2dc4a79"],"p2","native-untagged",5,["set",[5,7]],["map",[["foo","bar"],["vflink","managed"]]]],[["uuid","2ebb3d5f-e647-4c74-b1c1-af771624f486"],"q1","trunk",["set",[]],7,["map",[["vflink","managed"]]]],[["uuid","d2415b07-9f59-4989-a414-f0a366fe29a0"],"br1",["set",[]],["set",[]],["set",[]],["map",[]]]],"headings":["_uuid","name","vlan_mode","tag","trunks","external_ids"]}
`

func TestParseList(t *testing.T) {
	ports, err := parseList([]byte(listOutput))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ports {
		got = append(got, p.line())
	}
	want := []string{
		"port br0 vlan_mode=default",
		"port p1 vlan_mode=trunk trunks=10,20",
		"port p2 vlan_mode=native-untagged tag=5 trunks=5,7",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ports of br0 (-want +got):\n%s", diff)
	}
	if ports[2].external["foo"] != "bar" || ports[2].external["vflink"] != "managed" {
		t.Errorf("p2 external_ids = %v, want foo=bar and vflink=managed", ports[2].external)
	}

	for _, bad := range []string{
		"",
		`{"data":[],"headings":["name","ports"]}` + "\n" + `{"data":[],"headings":["_uuid","name","vlan_mode","tag","trunks","external_ids"]}`,
		`{"data":[["br0",["set",[]]]],"headings":["name"]}` + "\n{}",
		`{"data":[["br0",["set",[]]]],"headings":["name","ports"]}` + "\n" + `{"data":[[1]],"headings":["_uuid","name","vlan_mode","tag","trunks","external_ids"]}`,
	} {
		if _, err := parseList([]byte(bad)); err == nil {
			t.Errorf("parseList(%q) = nil error, want one", bad)
		}
	}
}

func FuzzParseList(f *testing.F) {
	f.Add(listOutput)
	f.Add(`{"data":[["br0",["set",[]]]],"headings":["name","ports"]}` + "\n" + `{"data":[],"headings":["_uuid","name","vlan_mode","tag","trunks","external_ids"]}`)
	f.Fuzz(func(t *testing.T, out string) {
		ports, err := parseList([]byte(out))
		if err != nil {
			return
		}
		for _, p := range ports {
			_ = p.line()
		}
	})
}

func FuzzParseLine(f *testing.F) {
	f.Add("port p1 vlan_mode=native-untagged tag=5 trunks=5,7")
	f.Add("port p1 vlan_mode=trunk trunks=10,20")
	f.Fuzz(func(t *testing.T, line string) {
		p, err := parseLine(line)
		if err != nil {
			return
		}
		// An accepted line is canonical after one round.
		q, err := parseLine(p.line())
		if err != nil {
			t.Fatalf("parseLine(%q) of its own canonical form: %v", p.line(), err)
		}
		if q.line() != p.line() {
			t.Errorf("canonical form not stable: %q then %q", p.line(), q.line())
		}
	})
}

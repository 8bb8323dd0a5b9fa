package render

import (
	"bufio"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/junosconf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// examplesDir holds the public Contrail examples (outside the repository, in the workplace).
// examplesDir holds a copy of ../shared/reference/junos-examples (the public Contrail examples), so
// the comparison runs in CI's clean clone too.
const examplesDir = "testdata/junos-examples"

func att(dev, iface string, vni, vlan int, id, name string) api.Attachment {
	return api.Attachment{Device: dev, Interface: iface, NetworkID: id, NetworkName: name, VNI: vni, VLAN: vlan, Ports: []string{"port-" + id}}
}

func pg(dev string, members []api.Member, vni, vlan int, id, name string) api.Attachment {
	return api.Attachment{Device: dev, PortGroup: members, NetworkID: id, NetworkName: name, VNI: vni, VLAN: vlan, Ports: []string{"port-" + id}}
}

func native(a api.Attachment) api.Attachment { a.Native = true; return a }

var esiGroup = []api.Member{{Device: "leaf1", Interface: "xe-0/0/3"}, {Device: "leaf2", Interface: "xe-0/0/3"}}

func esiLAG(dev string) Input {
	return Input{Device: api.Device{Name: dev}, Attachments: []api.Attachment{
		pg(dev, esiGroup, 7, 12, "net-red", "red"),
		pg(dev, esiGroup, 8, 14, "net-blue", "blue"),
	}}
}

// goldenCase is one golden file, with the statement kinds (keyword paths, normalized by shape)
// it must contain, each of which the public examples also use.
type goldenCase struct {
	name  string
	in    Input
	kinds []string
}

var accessKinds = []string{
	"interfaces <if> description <str>",
	"interfaces <if> mtu <n>",
	"interfaces <if> unit <n> family ethernet-switching interface-mode trunk",
	"interfaces <if> unit <n> family ethernet-switching vlan members <word>",
	"vlans <word> description <str>",
	"vlans <word> vlan-id <n>",
	"vlans <word> vxlan vni <n>",
	"protocols evpn multicast-mode ingress-replication",
	"protocols evpn vni-options vni <n> vrf-target <target>",
	"protocols evpn encapsulation vxlan",
	"protocols evpn extended-vni-list all",
	"policy-options policy-statement <word> term <word> from community <word>",
	"policy-options policy-statement <word> term <word> then accept",
	"policy-options policy-statement <word> term <word> then community add <word>",
	"policy-options community <word> members <target>",
	"switch-options vrf-import <word>",
}

var lagKinds = []string{
	"chassis aggregated-devices ethernet device-count <n>",
	"interfaces <if> gigether-options 802.3ad <if>",
	"interfaces <if> aggregated-ether-options lacp active",
	"interfaces <if> aggregated-ether-options lacp periodic fast",
}

var multihomingKinds = []string{
	"interfaces <if> esi <esi>",
	"interfaces <if> esi all-active",
	"interfaces <if> aggregated-ether-options lacp system-id <mac>",
	"interfaces <if> aggregated-ether-options lacp system-priority <n>",
	"interfaces <if> aggregated-ether-options lacp admin-key <n>",
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "access-vf",
			in: Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{
				att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red"),
			}},
			kinds: accessKinds,
		},
		{
			name: "trunk-native",
			in: Input{Device: api.Device{Name: "leaf1", ASN: 64512}, Attachments: []api.Attachment{
				att("leaf1", "xe-0/0/1", 7, 7, "net-red", "red"),
				att("leaf1", "xe-0/0/1", 8, 8, "net-blue", "blue"),
				native(att("leaf1", "xe-0/0/1", 9, 9, "net-green", "green")),
			}},
			kinds: append(slices.Clone(accessKinds), "interfaces <if> native-vlan-id <n>"),
		},
		{name: "esi-lag-leaf1", in: esiLAG("leaf1"), kinds: slices.Concat(accessKinds, lagKinds, multihomingKinds)},
		{name: "esi-lag-leaf2", in: esiLAG("leaf2"), kinds: slices.Concat(accessKinds, lagKinds, multihomingKinds)},
		{
			name: "lag-one-switch",
			in: Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{
				pg("leaf1", []api.Member{{Device: "leaf1", Interface: "xe-0/0/5"}, {Device: "leaf1", Interface: "xe-0/0/4"}}, 7, 12, "net-red", "red"),
			}},
			kinds: slices.Concat(accessKinds, lagKinds),
		},
		{name: "empty", in: Input{Device: api.Device{Name: "leaf1"}}},
	}
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := Junos(c.in)
			if err != nil {
				t.Fatalf("Junos: %v", err)
			}
			path := filepath.Join("testdata", c.name+".golden")
			text := ""
			if len(got) > 0 {
				text = strings.Join(got, "\n") + "\n"
			}
			if *update {
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), text); diff != "" {
				t.Errorf("rendered lines differ from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestEmptyIsEmptySlice(t *testing.T) {
	got, err := Junos(Input{Device: api.Device{Name: "leaf1"}})
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("got %q, %v, want an empty non-nil slice and no error", got, err)
	}
	// attachments of other devices touch nothing here
	got, err = Junos(Input{Device: api.Device{Name: "leaf9"}, Attachments: esiLAG("leaf1").Attachments})
	if err != nil || len(got) != 0 {
		t.Errorf("attachments of other devices: got %q, %v, want nothing", got, err)
	}
}

// shape tokens of one statement: values become placeholders, keywords stay.
var (
	shapeIfRE     = regexp.MustCompile(`^(?:(?:xe|ge|et|mge)-\d+/\d+/\d+(?::\d+)?|ae\d+)$`)
	shapeTargetRE = regexp.MustCompile(`^target:\d+L?:\d+$`)
	shapeESIRE    = regexp.MustCompile(`^[0-9a-f]{2}(?::[0-9a-f]{2}){9}$`)
	shapeMACRE    = regexp.MustCompile(`^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$`)
	shapeNumRE    = regexp.MustCompile(`^\d+$`)
	wordRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

func shape(toks []string) string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		prev := ""
		if i > 0 {
			prev = toks[i-1]
		}
		switch {
		case prev == "description" || prev == "host-name":
			out[i] = "<str>"
		case prev == "groups" || prev == "apply-groups":
			out[i] = "<group>"
		case shapeIfRE.MatchString(tok):
			out[i] = "<if>"
		case shapeTargetRE.MatchString(tok):
			out[i] = "<target>"
		case shapeESIRE.MatchString(tok):
			out[i] = "<esi>"
		case shapeMACRE.MatchString(tok):
			out[i] = "<mac>"
		case shapeNumRE.MatchString(tok):
			out[i] = "<n>"
		case prev == "vlans" || prev == "policy-statement" || prev == "term" || prev == "vrf-import" ||
			prev == "add" || prev == "members" || (prev == "community" && tok != "add"):
			out[i] = "<word>"
		default:
			out[i] = tok
		}
	}
	return strings.Join(out, " ")
}

// contract is the statements vflink uses (the contract between renderer, simulator and driver),
// as shapes.
var contract = []string{
	"interfaces <if> description <str>",
	"interfaces <if> mtu <n>",
	"interfaces <if> native-vlan-id <n>",
	"interfaces <if> unit <n> family ethernet-switching interface-mode trunk",
	"interfaces <if> unit <n> family ethernet-switching interface-mode access",
	"interfaces <if> unit <n> family ethernet-switching vlan members <word>",
	"interfaces <if> gigether-options 802.3ad <if>",
	"interfaces <if> ether-options 802.3ad <if>",
	"interfaces <if> aggregated-ether-options lacp active",
	"interfaces <if> aggregated-ether-options lacp passive",
	"interfaces <if> aggregated-ether-options lacp periodic fast",
	"interfaces <if> aggregated-ether-options lacp periodic slow",
	"interfaces <if> aggregated-ether-options lacp system-id <mac>",
	"interfaces <if> aggregated-ether-options lacp system-priority <n>",
	"interfaces <if> aggregated-ether-options lacp admin-key <n>",
	"interfaces <if> esi <esi>",
	"interfaces <if> esi all-active",
	"interfaces <if> esi single-active",
	"vlans <word> description <str>",
	"vlans <word> vlan-id <n>",
	"vlans <word> vxlan vni <n>",
	"protocols evpn encapsulation vxlan",
	"protocols evpn extended-vni-list all",
	"protocols evpn extended-vni-list <n>",
	"protocols evpn multicast-mode ingress-replication",
	"protocols evpn vni-options vni <n> vrf-target <target>",
	"protocols evpn vni-options vni <n> vrf-target auto",
	"policy-options policy-statement <word> term <word> from community <word>",
	"policy-options policy-statement <word> term <word> then accept",
	"policy-options policy-statement <word> term <word> then reject",
	"policy-options policy-statement <word> term <word> then community add <word>",
	"policy-options community <word> members <target>",
	"switch-options vrf-import <word>",
	"switch-options vrf-target <target>",
	"switch-options vrf-target auto",
	"chassis aggregated-devices ethernet device-count <n>",
	"system host-name <str>",
}

// statement splits a rendered line into its vflink group and the statement under it ("" group
// for `set apply-groups`), failing the test when the line is not of vflink's form.
func statement(t *testing.T, line string) (group string, stmt []string) {
	t.Helper()
	toks, err := junosconf.Tokenize(line)
	if err != nil {
		t.Fatalf("line %q does not tokenize: %v", line, err)
	}
	if "set "+junosconf.Join(toks[1:]) != line {
		t.Errorf("line %q is not canonical: want %q", line, "set "+junosconf.Join(toks[1:]))
	}
	switch {
	case len(toks) == 3 && toks[0] == "set" && toks[1] == "apply-groups" && slices.Contains(Groups, toks[2]):
		return "", nil
	case len(toks) > 3 && toks[0] == "set" && toks[1] == "groups" && slices.Contains(Groups, toks[2]):
		return toks[2], toks[3:]
	}
	t.Fatalf("line %q is neither `set groups __vflink_*__ ...` nor `set apply-groups __vflink_*__`", line)
	return "", nil
}

// TestContract checks every rendered line against the contract: a vflink group, a statement of
// the contract's shape, words where words are wanted, and apply-groups for exactly the groups used.
func TestContract(t *testing.T) {
	for _, c := range goldenCases() {
		got, err := Junos(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		used, applied := map[string]bool{}, map[string]bool{}
		for _, line := range got {
			g, stmt := statement(t, line)
			if g == "" {
				applied[strings.Fields(line)[2]] = true
				continue
			}
			used[g] = true
			s := shape(stmt)
			if !slices.Contains(contract, s) {
				t.Errorf("%s: line %q has shape %q, which is not a contract statement", c.name, line, s)
			}
			for i, sh := range strings.Fields(s) {
				if sh == "<word>" && !wordRE.MatchString(stmt[i]) {
					t.Errorf("%s: line %q: %q is not a word", c.name, line, stmt[i])
				}
			}
		}
		if diff := cmp.Diff(used, applied); diff != "" {
			t.Errorf("%s: groups used and groups applied differ (-used +applied):\n%s", c.name, diff)
		}
		if !slices.IsSorted(got) {
			t.Errorf("%s: lines are not sorted: %q", c.name, got)
		}
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("%s: duplicate lines in %q", c.name, got)
		}
	}
}

// TestShapesMatchExamples compares the rendered shapes with the public Contrail examples: every
// statement vflink renders has the keyword path of a statement in the examples, and every kind
// of statement a case needs is there.
func TestShapesMatchExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.set"))
	if len(files) == 0 {
		t.Fatalf("no public examples at %s: shapes not compared", examplesDir)
	}
	examples := map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			toks, err := junosconf.Tokenize(sc.Text())
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(toks) > 3 && toks[0] == "set" && toks[1] == "groups" {
				examples[shape(toks[3:])] = true
			}
		}
		fh.Close()
	}
	for _, c := range goldenCases() {
		got, err := Junos(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		have := map[string]bool{}
		for _, line := range got {
			if g, stmt := statement(t, line); g != "" {
				s := shape(stmt)
				have[s] = true
				if !examples[s] {
					t.Errorf("%s: %q has shape %q, which no example statement has", c.name, line, s)
				}
			}
		}
		for _, k := range c.kinds {
			if !have[k] {
				t.Errorf("%s: no %q statement rendered", c.name, k)
			}
			if !examples[k] {
				t.Errorf("%s: the examples have no %q statement", c.name, k)
			}
		}
	}
}

// linesWith returns the statements (after the group) of the lines containing sub.
func linesWith(lines []string, sub string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

func TestESILAGSameOnBothDevices(t *testing.T) {
	l1, err := Junos(esiLAG("leaf1"))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := Junos(esiLAG("leaf2"))
	if err != nil {
		t.Fatal(err)
	}
	esi := ESI(esiGroup)
	sys := LACPSystemID(esi)
	for _, lines := range [][]string{l1, l2} {
		if got := linesWith(lines, " esi "+esi); len(got) != 1 {
			t.Errorf("got esi lines %q, want one with %s", got, esi)
		}
		if got := linesWith(lines, "system-id "+sys); len(got) != 1 {
			t.Errorf("got system-id lines %q, want one with %s", got, sys)
		}
	}
	m1 := linesWith(l1, GroupMultihoming)
	m2 := linesWith(l2, GroupMultihoming)
	if len(m1) == 0 || !slices.Equal(m1, m2) {
		t.Errorf("multihoming of leaf1 %q differs from leaf2 %q", m1, m2)
	}
	// both carry the same networks on ae3 (xe-0/0/3 on each)
	if a1, a2 := linesWith(l1, GroupAccess), linesWith(l2, GroupAccess); !slices.Equal(a1, a2) {
		t.Errorf("access of leaf1 %q differs from leaf2 %q", a1, a2)
	}
}

func TestESI(t *testing.T) {
	esi := ESI(esiGroup)
	if !shapeESIRE.MatchString(esi) || !strings.HasPrefix(esi, "00:") {
		t.Fatalf("ESI = %q, want 10 hex octets of type 00", esi)
	}
	rev := []api.Member{esiGroup[1], esiGroup[0], esiGroup[1]}
	if got := ESI(rev); got != esi {
		t.Errorf("ESI of reordered, duplicated members = %s, want %s", got, esi)
	}
	other := []api.Member{{Device: "leaf1", Interface: "xe-0/0/4"}, {Device: "leaf2", Interface: "xe-0/0/3"}}
	if got := ESI(other); got == esi {
		t.Errorf("ESI of a different group = %s, the same as %v", got, esiGroup)
	}
	// printf %s leaf1:xe-0/0/3,leaf2:xe-0/0/3 | sha256sum: b3710b7453fb688d69...
	if want := "00:b3:71:0b:74:53:fb:68:8d:69"; esi != want {
		t.Errorf("ESI = %s, want %s", esi, want)
	}
	if got, want := LACPSystemID(esi), "76:53:fb:68:8d:69"; got != want {
		t.Errorf("LACPSystemID(%s) = %s, want %s", esi, got, want)
	}
}

func TestLACPSystemID(t *testing.T) {
	for _, c := range []struct{ esi, want string }{
		{"00:11:22:33:44:55:66:77:88:99", "46:55:66:77:88:99"}, // 0x44: set local bit
		{"00:11:22:33:ff:55:66:77:88:99", "fe:55:66:77:88:99"}, // 0xff: clear multicast bit
		{"00:00:00:00:01:00:00:00:00:00", "02:00:00:00:00:00"},
		{"00:11:22", ""},
		{"00:11:22:33:44:55:66:77:88:zz", ""},
		{"", ""},
	} {
		if got := LACPSystemID(c.esi); got != c.want {
			t.Errorf("LACPSystemID(%q) = %q, want %q", c.esi, got, c.want)
		}
	}
	sys := LACPSystemID(ESI(esiGroup))
	if !shapeMACRE.MatchString(sys) {
		t.Fatalf("system-id %q is not a MAC", sys)
	}
	if b, err := strconv.ParseUint(sys[:2], 16, 8); err != nil || b&0x02 == 0 || b&0x01 != 0 {
		t.Errorf("system-id %s: first octet %#x, want local bit set and multicast bit clear", sys, b)
	}
}

func TestAENumbering(t *testing.T) {
	m := func(ifaces ...string) []api.Member {
		var ms []api.Member
		for _, i := range ifaces {
			ms = append(ms, api.Member{Device: "leaf1", Interface: i})
		}
		return ms
	}
	for _, c := range []struct {
		name string
		atts []api.Attachment
		want []string // substrings of lines that must be rendered
	}{
		{"port number", []api.Attachment{pg("leaf1", m("xe-0/0/9", "xe-0/0/8"), 7, 7, "n7", "")},
			[]string{"xe-0/0/8 gigether-options 802.3ad ae8", "xe-0/0/9 gigether-options 802.3ad ae8", "device-count 128"}},
		{"clash takes lowest free", []api.Attachment{
			pg("leaf1", m("xe-0/0/3", "xe-0/0/4"), 7, 7, "n7", ""),
			pg("leaf1", m("xe-0/1/3", "xe-0/1/4"), 7, 7, "n7", ""),
		}, []string{"xe-0/0/3 gigether-options 802.3ad ae3", "xe-0/1/3 gigether-options 802.3ad ae0"}},
		{"plain ae is taken", []api.Attachment{
			att("leaf1", "ae3", 8, 8, "n8", ""),
			pg("leaf1", m("xe-0/0/3", "xe-0/0/4"), 7, 7, "n7", ""),
		}, []string{"xe-0/0/3 gigether-options 802.3ad ae0", "interfaces ae3 unit 0 family ethernet-switching vlan members bd-8"}},
		{"high port raises device-count", []api.Attachment{pg("leaf1", m("et-0/0/200", "et-0/0/201"), 7, 7, "n7", "")},
			[]string{"et-0/0/200 gigether-options 802.3ad ae200", "device-count 201"}},
		{"channel is the last number", []api.Attachment{pg("leaf1", m("xe-0/0/5:2", "xe-0/0/5:3"), 7, 7, "n7", "")},
			[]string{"xe-0/0/5:2 gigether-options 802.3ad ae2"}},
	} {
		got, err := Junos(Input{Device: api.Device{Name: "leaf1"}, Attachments: c.atts})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		for _, w := range c.want {
			if len(linesWith(got, w)) != 1 {
				t.Errorf("%s: got %q, want one line with %q", c.name, got, w)
			}
		}
		if ms := linesWith(got, GroupMultihoming); len(ms) != 0 {
			t.Errorf("%s: a port group within one device rendered multihoming %q", c.name, ms)
		}
	}
}

func TestRouteTargetAndASN(t *testing.T) {
	for _, c := range []struct {
		asn  uint32
		want string
	}{
		{0, "target:64512:7"},
		{65000, "target:65000:7"},
		{65535, "target:65535:7"},
		{4200000000, "target:4200000000L:7"},
	} {
		got, err := Junos(Input{Device: api.Device{Name: "leaf1", ASN: c.asn}, Attachments: []api.Attachment{att("leaf1", "xe-0/0/1", 7, 7, "n", "")}})
		if err != nil {
			t.Fatal(err)
		}
		if l := linesWith(got, "vrf-target "+c.want); len(l) != 1 {
			t.Errorf("ASN %d: got %q, want vrf-target %s", c.asn, got, c.want)
		}
		if l := linesWith(got, "members "+c.want); len(l) != 1 {
			t.Errorf("ASN %d: got %q, want community members %s", c.asn, got, c.want)
		}
	}
}

// TestCollapse: the same (interface, network) from several ports, or a port group listed once
// per device, renders once.
func TestCollapse(t *testing.T) {
	one, err := Junos(Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red")}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red"), att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red")
	a.Ports, b.Ports = []string{"p1"}, []string{"p2", "p3"}
	b.Manual = true
	many, err := Junos(Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{a, b, a}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one, many); diff != "" {
		t.Errorf("several ports differ from one (-one +many):\n%s", diff)
	}
	// tagged and native for one network on one interface: native; names: the least non-empty
	mixed, err := Junos(Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{
		att("leaf1", "xe-0/0/3", 15, 15, "net-red", ""),
		native(att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red")),
		att("leaf1", "xe-0/0/3", 15, 15, "net-red", "red2"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"interfaces xe-0/0/3 native-vlan-id 15", `vlans bd-15 description "vflink network red (net-red)"`,
		"vlan members bd-15"} {
		if len(linesWith(mixed, w)) != 1 {
			t.Errorf("got %q, want one line with %q", mixed, w)
		}
	}
	in := esiLAG("leaf1")
	want, _ := Junos(in)
	// the same port group attachment as derived for leaf2, with members in another order
	dup := pg("leaf2", []api.Member{esiGroup[1], esiGroup[0]}, 7, 12, "net-red", "red")
	in.Attachments = append(in.Attachments, dup)
	got, err := Junos(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("duplicate port group attachment changed the output (-want +got):\n%s", diff)
	}
}

func TestDeterministicUnderShuffle(t *testing.T) {
	ins := []Input{esiLAG("leaf1"), {Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{
		att("leaf1", "xe-0/0/1", 7, 7, "net-red", "red"),
		att("leaf1", "xe-0/0/1", 8, 8, "net-blue", "blue"),
		native(att("leaf1", "xe-0/0/1", 9, 9, "net-green", "green")),
		att("leaf1", "xe-0/0/10", 9, 9, "net-green", "green"),
		att("leaf1", "ae7", 8, 8, "net-blue", "blue"),
		pg("leaf1", []api.Member{{Device: "leaf1", Interface: "xe-0/0/3"}, {Device: "leaf1", Interface: "xe-0/0/4"}}, 7, 7, "net-red", "red"),
		pg("leaf1", []api.Member{{Device: "leaf1", Interface: "xe-0/1/3"}, {Device: "leaf2", Interface: "xe-0/0/4"}}, 8, 8, "net-blue", "blue"),
		pg("leaf1", []api.Member{{Device: "leaf1", Interface: "xe-0/2/3"}, {Device: "leaf2", Interface: "xe-0/2/4"}}, 9, 9, "net-green", "green"),
		att("leaf2", "xe-0/0/1", 8, 8, "net-blue", "blue"),
	}}}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, in := range ins {
		want, err := Junos(in)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			sh := Input{Device: in.Device}
			for _, a := range in.Attachments {
				a.PortGroup = slices.Clone(a.PortGroup)
				rng.Shuffle(len(a.PortGroup), func(i, j int) { a.PortGroup[i], a.PortGroup[j] = a.PortGroup[j], a.PortGroup[i] })
				sh.Attachments = append(sh.Attachments, a)
			}
			rng.Shuffle(len(sh.Attachments), func(i, j int) { sh.Attachments[i], sh.Attachments[j] = sh.Attachments[j], sh.Attachments[i] })
			got, err := Junos(sh)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("input %d shuffled renders differently (-want +got):\n%s", i, diff)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	dev := api.Device{Name: "leaf1"}
	lag := func(ifaces ...string) []api.Member {
		var ms []api.Member
		for _, i := range ifaces {
			ms = append(ms, api.Member{Device: "leaf1", Interface: i})
		}
		return ms
	}
	for _, c := range []struct {
		name string
		in   Input
		want []string // the error must name all of these
	}{
		{"not an interface", Input{dev, []api.Attachment{att("leaf1", "eth0", 7, 7, "n7", "")}}, []string{`"eth0"`}},
		{"injection in interface", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1 description x", 7, 7, "n7", "")}}, []string{`"xe-0/0/1 description x"`}},
		{"leading zero", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/01", 7, 7, "n7", "")}}, []string{`"xe-0/0/01"`}},
		{"unit in name", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1.0", 7, 7, "n7", "")}}, []string{`"xe-0/0/1.0"`}},
		{"empty interface", Input{dev, []api.Attachment{att("leaf1", "", 7, 7, "n7", "")}}, []string{`interface ""`}},
		{"ae as LAG member", Input{dev, []api.Attachment{pg("leaf1", lag("ae1", "xe-0/0/1"), 7, 7, "n7", "")}}, []string{`"ae1"`}},
		{"bad remote member", Input{dev, []api.Attachment{pg("leaf1", append(lag("xe-0/0/1"), api.Member{Device: "leaf2", Interface: "bogus"}), 7, 7, "n7", "")}}, []string{`"bogus"`, `"leaf2"`}},
		{"member without device", Input{dev, []api.Attachment{pg("leaf1", append(lag("xe-0/0/1"), api.Member{Interface: "xe-0/0/1"}), 7, 7, "n7", "")}}, []string{`device name ""`}},
		{"interface and port group", Input{dev, []api.Attachment{{Device: "leaf1", Interface: "xe-0/0/2", PortGroup: lag("xe-0/0/1"), VNI: 7, VLAN: 7, NetworkID: "n7"}}}, []string{`"xe-0/0/2"`, "leaf1:xe-0/0/1"}},
		{"VLAN 0", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1", 7, 0, "n7", "")}}, []string{"VLAN 0", "1-4094"}},
		{"VLAN 4095", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1", 7, 4095, "n7", "")}}, []string{"VLAN 4095", "1-4094"}},
		{"VNI 0", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1", 0, 7, "n7", "")}}, []string{"VNI 0", "1-16777214"}},
		{"VNI too big", Input{dev, []api.Attachment{att("leaf1", "xe-0/0/1", 16777215, 7, "n7", "")}}, []string{"VNI 16777215"}},
		{"VLAN of a port group", Input{dev, []api.Attachment{pg("leaf1", lag("xe-0/0/1"), 7, 5000, "n7", "")}}, []string{"VLAN 5000"}},
		{"one VLAN two VNIs", Input{dev, []api.Attachment{
			att("leaf1", "xe-0/0/1", 7, 100, "n7", "red"),
			att("leaf1", "xe-0/0/2", 8, 100, "n8", "blue"),
		}}, []string{"VLAN 100", `"n7"`, `"n8"`}},
		{"one VNI two VLANs", Input{dev, []api.Attachment{
			att("leaf1", "xe-0/0/1", 7, 100, "n7", "red"),
			att("leaf1", "xe-0/0/2", 7, 101, "n7", "red"),
		}}, []string{"100", "101", "n7"}},
		{"one VNI two networks", Input{dev, []api.Attachment{
			att("leaf1", "xe-0/0/1", 7, 100, "n7", "red"),
			att("leaf1", "xe-0/0/2", 7, 100, "other", "red"),
		}}, []string{"VNI 7", `"n7"`, `"other"`}},
		{"two natives", Input{dev, []api.Attachment{
			native(att("leaf1", "xe-0/0/1", 7, 7, "n7", "red")),
			native(att("leaf1", "xe-0/0/1", 8, 8, "n8", "blue")),
		}}, []string{`"red"`, `"blue"`, "xe-0/0/1"}},
		{"two natives on a port group", Input{dev, []api.Attachment{
			native(pg("leaf1", lag("xe-0/0/1", "xe-0/0/2"), 7, 7, "n7", "red")),
			native(pg("leaf1", lag("xe-0/0/2", "xe-0/0/1"), 8, 8, "n8", "blue")),
		}}, []string{`"red"`, `"blue"`, "leaf1:xe-0/0/1,leaf1:xe-0/0/2"}},
		{"member of two groups", Input{dev, []api.Attachment{
			pg("leaf1", lag("xe-0/0/1", "xe-0/0/2"), 7, 7, "n7", ""),
			pg("leaf1", lag("xe-0/0/1", "xe-0/0/3"), 8, 8, "n8", ""),
		}}, []string{"xe-0/0/1 ", "leaf1:xe-0/0/1,leaf1:xe-0/0/2", "leaf1:xe-0/0/1,leaf1:xe-0/0/3"}},
		{"member and plain", Input{dev, []api.Attachment{
			pg("leaf1", lag("xe-0/0/1", "xe-0/0/2"), 7, 7, "n7", ""),
			att("leaf1", "xe-0/0/2", 8, 8, "n8", ""),
		}}, []string{"xe-0/0/2 "}},
		{"4-byte ASN, big VNI", Input{api.Device{Name: "leaf1", ASN: 4200000000}, []api.Attachment{att("leaf1", "xe-0/0/1", 70000, 7, "n", "")}}, []string{"VNI 70000", "4200000000"}},
		{"no device name", Input{api.Device{}, []api.Attachment{att("", "xe-0/0/1", 7, 7, "n", "")}}, []string{"no name"}},
	} {
		got, err := Junos(c.in)
		if err == nil {
			t.Errorf("%s: got %q, want an error naming %q", c.name, got, c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got error %q, want it to name %q", c.name, err, w)
			}
		}
	}
}

// TestESILAGDifferentPorts: the ae number is per device, the ESI per group.
func TestESILAGDifferentPorts(t *testing.T) {
	group := []api.Member{{Device: "leaf1", Interface: "xe-0/0/3"}, {Device: "leaf2", Interface: "xe-0/0/7"}}
	esi := ESI(group)
	for dev, ae := range map[string]string{"leaf1": "ae3", "leaf2": "ae7"} {
		got, err := Junos(Input{Device: api.Device{Name: dev}, Attachments: []api.Attachment{pg(dev, group, 7, 7, "n7", "red")}})
		if err != nil {
			t.Fatal(err)
		}
		if w := "interfaces " + ae + " esi " + esi; len(linesWith(got, w)) != 1 {
			t.Errorf("%s: got %q, want a line with %q", dev, got, w)
		}
	}
}

// TestSimulatorAccepts loads every golden case into the device simulator's configuration
// (junosconf.Config, which knows the contract's schema): every line is accepted, and reading the
// configuration back gives the rendered lines exactly (canonical form, and no single-valued
// statement rendered twice so that one replaced the other).
func TestSimulatorAccepts(t *testing.T) {
	for _, c := range goldenCases() {
		got, err := Junos(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cfg := junosconf.NewConfig()
		for _, line := range got {
			toks, err := junosconf.Tokenize(line)
			if err != nil {
				t.Fatalf("%s: %q: %v", c.name, line, err)
			}
			if err := cfg.Set(toks[1:]); err != nil {
				t.Errorf("%s: simulator rejects %q: %v", c.name, line, err)
			}
		}
		if diff := cmp.Diff(got, cfg.Lines()); diff != "" {
			t.Errorf("%s: simulator reads back other lines (-rendered +read back):\n%s", c.name, diff)
		}
	}
}

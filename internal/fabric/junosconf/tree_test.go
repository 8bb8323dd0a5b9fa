package junosconf

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// mustTokens splits a statement written in set syntax (without the verb).
func mustTokens(t *testing.T, s string) []string {
	t.Helper()
	toks, err := Tokenize(s)
	if err != nil {
		t.Fatalf("Tokenize(%q): %v", s, err)
	}
	return toks
}

func TestSchemaBuilds(t *testing.T) {
	s := theSchema()
	for _, top := range []string{"interfaces", "vlans", "protocols", "policy-options", "switch-options", "chassis", "system", "groups", "apply-groups"} {
		if s.root.keywords[top] == nil {
			t.Errorf("top-level statement %q missing from the schema", top)
		}
	}
	if s.root.keywords["groups"].elem.node.keywords["apply-groups"] != nil {
		t.Errorf("apply-groups is allowed inside a group, want top level only")
	}
}

func TestBuildSchemaRejectsAmbiguousPatterns(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"a <n> *\na <n>", "both single- and multi-valued"},
		{"a <n> b\na <str>", "both a named element and a value"},
		{"a b\na b c", "is a flag and has statements below it"},
		{"a (b|c)\na b d", "is also a keyword"},
		{"a <nope>", "unknown placeholder"},
		{"a (b|<nope>)", "unknown placeholder"},
		{"a * b", "* must follow a value"},
		{"a (b|c) d", "must be the last value"},
		{"a <n> b\na <if> c", "where the schema already has <n>"},
	} {
		_, err := buildSchema(tc.body, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("buildSchema(%q) = %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
}

func TestSetSemantics(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want []string
	}{
		{
			name: "single-valued replaces",
			sets: []string{"interfaces xe-0/0/3 mtu 1500", "interfaces xe-0/0/3 mtu 9192"},
			want: []string{"set interfaces xe-0/0/3 mtu 9192"},
		},
		{
			name: "multi-valued adds, once each",
			sets: []string{
				"interfaces ae2 unit 0 family ethernet-switching vlan members bd-8",
				"interfaces ae2 unit 0 family ethernet-switching vlan members bd-7",
				"interfaces ae2 unit 0 family ethernet-switching vlan members bd-8",
			},
			want: []string{
				"set interfaces ae2 unit 0 family ethernet-switching vlan members bd-7",
				"set interfaces ae2 unit 0 family ethernet-switching vlan members bd-8",
			},
		},
		{
			name: "flags",
			sets: []string{"protocols evpn encapsulation vxlan", "protocols evpn encapsulation vxlan"},
			want: []string{"set protocols evpn encapsulation vxlan"},
		},
		{
			name: "esi identifier and mode are two leaves",
			sets: []string{"interfaces ae2 esi 00:98:80:2c:a8:b7:12:3d:55:00", "interfaces ae2 esi all-active",
				"interfaces ae2 esi single-active", "interfaces ae2 esi 00:98:80:2c:a8:b7:12:3d:55:01"},
			want: []string{"set interfaces ae2 esi 00:98:80:2c:a8:b7:12:3d:55:01", "set interfaces ae2 esi single-active"},
		},
		{
			name: "lacp mode next to lacp statements",
			sets: []string{"interfaces ae2 aggregated-ether-options lacp active", "interfaces ae2 aggregated-ether-options lacp periodic fast",
				"interfaces ae2 aggregated-ether-options lacp passive"},
			want: []string{"set interfaces ae2 aggregated-ether-options lacp passive", "set interfaces ae2 aggregated-ether-options lacp periodic fast"},
		},
		{
			name: "then accept or reject, and then community add",
			sets: []string{"policy-options policy-statement p term t then accept", "policy-options policy-statement p term t then community add c1",
				"policy-options policy-statement p term t then reject"},
			want: []string{"set policy-options policy-statement p term t then community add c1", "set policy-options policy-statement p term t then reject"},
		},
		{
			name: "values in canonical form",
			sets: []string{"interfaces xe-0/0/1 mtu 09192", "interfaces ae1 aggregated-ether-options lacp system-id 00:55:D3:21:7B:8A",
				"switch-options vrf-target target:064512L:007", "system host-name \"a\tb\""},
			want: []string{"set interfaces ae1 aggregated-ether-options lacp system-id 00:55:d3:21:7b:8a", "set interfaces xe-0/0/1 mtu 9192",
				"set switch-options vrf-target target:64512L:7", `set system host-name "a b"`},
		},
		{
			name: "the same statement in a group and at top level are different",
			sets: []string{"groups __vflink_access__ vlans bd-7 vlan-id 12", "vlans bd-7 vlan-id 13", "apply-groups __vflink_access__"},
			want: []string{"set apply-groups __vflink_access__", "set groups __vflink_access__ vlans bd-7 vlan-id 12", "set vlans bd-7 vlan-id 13"},
		},
		{
			name: "extended-vni-list takes all and numbers",
			sets: []string{"protocols evpn extended-vni-list 7", "protocols evpn extended-vni-list all", "protocols evpn extended-vni-list 8"},
			want: []string{"set protocols evpn extended-vni-list 7", "set protocols evpn extended-vni-list 8", "set protocols evpn extended-vni-list all"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConfig()
			for _, s := range tc.sets {
				if err := c.Set(mustTokens(t, s)); err != nil {
					t.Fatalf("Set(%s): %v", s, err)
				}
			}
			if diff := cmp.Diff(tc.want, c.Lines()); diff != "" {
				t.Errorf("Lines() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct {
		stmt string
		want string // the whole message, or with a trailing "..." its start
	}{
		{"interfaces xe-0/0/3 mtux 9192",
			`syntax error: "mtux" in "interfaces xe-0/0/3 mtux 9192": expected one of description, mtu, native-vlan-id, unit, gigether-options, ether-options, aggregated-ether-options, esi`},
		{"interfaces xe-0/0/3 mtu big", `syntax error: "big" in "interfaces xe-0/0/3 mtu big": expected <n> (an unsigned integer (0-4294967295))`},
		{"interfaces xe-0/0/3 mtu 4294967296", `syntax error: "4294967296" in "interfaces xe-0/0/3 mtu 4294967296": expected <n> ...`},
		{"interfaces eth0 mtu 1500", `syntax error: "eth0" in "interfaces eth0 mtu 1500": expected <if> (an interface name such as xe-0/0/3, xe-0/0/3:1 or ae2)`},
		{"interfaces xe-0/0/3 mtu 1500 9000", `syntax error: "9000" in "interfaces xe-0/0/3 mtu 1500 9000": nothing may follow the value 1500`},
		{"interfaces xe-0/0/3 unit 0 family ethernet-switching interface-mode hybrid",
			`syntax error: "hybrid" in "interfaces xe-0/0/3 unit 0 family ethernet-switching interface-mode hybrid": expected one of trunk, access`},
		{"interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members -bad", `syntax error: "-bad" in ...`},
		{"interfaces xe-0/0/3", `syntax error: "interfaces xe-0/0/3" is incomplete: expected one of description, ...`},
		{"interfaces xe-0/0/3 mtu", `syntax error: "interfaces xe-0/0/3 mtu" is incomplete: expected <n> (an unsigned integer (0-4294967295))`},
		{"", `syntax error: missing statement: expected one of interfaces, vlans, ...`},
		{"protocols evpn encapsulation vxlan extra", `syntax error: "extra" in "protocols evpn encapsulation vxlan extra": nothing may follow vxlan`},
		{"protocols evpn encapsulation mpls", `syntax error: "mpls" in "protocols evpn encapsulation mpls": expected vxlan`},
		{"routing-options forwarding-table export EVPN-LB", `syntax error: "routing-options" in ...`},
		{"groups g apply-groups g", `syntax error: "apply-groups" in "groups g apply-groups g": expected one of interfaces, ...`},
		{"interfaces ae2 esi 00:98:80", `syntax error: "00:98:80" in "interfaces ae2 esi 00:98:80": expected one of <esi> (an ESI of 10 colon-separated hex octets), all-active, single-active`},
		{"switch-options vrf-target target:1:2:3", `syntax error: "target:1:2:3" in ...`},
		{"interfaces ae2 aggregated-ether-options lacp system-id 00:55:d3:21:7b", `syntax error: "00:55:d3:21:7b" in ...`},
	} {
		err := NewConfig().Set(mustTokens(t, tc.stmt))
		if err == nil {
			t.Errorf("Set(%q) = nil, want %s", tc.stmt, tc.want)
			continue
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("Set(%q) = %v, want an ErrSyntax", tc.stmt, err)
		}
		got := err.Error()
		if prefix, ok := strings.CutSuffix(tc.want, "..."); ok {
			if !strings.HasPrefix(got, prefix) {
				t.Errorf("Set(%q) = %s\nwant it to start with %s", tc.stmt, got, prefix)
			}
		} else if got != tc.want {
			t.Errorf("Set(%q) = %s\nwant %s", tc.stmt, got, tc.want)
		}
	}
}

func TestSyntaxErrorFields(t *testing.T) {
	err := NewConfig().Set(mustTokens(t, "vlans bd-7 vlan-idd 7"))
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *SyntaxError", err)
	}
	if se.Token != "vlan-idd" || se.Index != 2 || !slices.Contains(se.Expected, "vlan-id") {
		t.Errorf("got token %q index %d expected %q, want vlan-idd, 2 and a list with vlan-id", se.Token, se.Index, se.Expected)
	}
}

func TestDelete(t *testing.T) {
	base := `
set interfaces xe-0/0/1 mtu 9192
set interfaces xe-0/0/1 description "port one"
set interfaces xe-0/0/10 mtu 9192
set interfaces ae2 esi 00:98:80:2c:a8:b7:12:3d:55:00
set interfaces ae2 esi all-active
set protocols evpn extended-vni-list 7
set protocols evpn extended-vni-list 8
set groups __vflink_access__ vlans bd-7 vlan-id 12
set apply-groups __vflink_access__
`
	for _, tc := range []struct {
		del       string
		wantFound bool
		wantGone  []string
	}{
		{"interfaces xe-0/0/1", true, []string{"set interfaces xe-0/0/1 mtu 9192", `set interfaces xe-0/0/1 description "port one"`}},
		{"interfaces xe-0/0/1 mtu", true, []string{"set interfaces xe-0/0/1 mtu 9192"}},
		{"interfaces xe-0/0/1 mtu 09192", true, []string{"set interfaces xe-0/0/1 mtu 9192"}},
		{"interfaces xe-0/0/1 mtu 1500", false, nil},
		{"interfaces ae2 esi", true, []string{"set interfaces ae2 esi 00:98:80:2c:a8:b7:12:3d:55:00", "set interfaces ae2 esi all-active"}},
		{"interfaces ae2 esi all-active", true, []string{"set interfaces ae2 esi all-active"}},
		{"protocols evpn extended-vni-list 7", true, []string{"set protocols evpn extended-vni-list 7"}},
		{"groups __vflink_access__", true, []string{"set groups __vflink_access__ vlans bd-7 vlan-id 12"}},
		{"apply-groups __vflink_access__", true, []string{"set apply-groups __vflink_access__"}},
		{"interfaces xe-0/0/2", false, nil},
		{"vlans", false, nil},
	} {
		c, errs := ParseSet(base)
		if len(errs) > 0 {
			t.Fatalf("ParseSet(base): %v", errs)
		}
		before := c.Lines()
		found, err := c.Delete(mustTokens(t, tc.del))
		if err != nil || found != tc.wantFound {
			t.Errorf("Delete(%s) = %v, %v; want %v, nil", tc.del, found, err, tc.wantFound)
			continue
		}
		var gone []string
		for _, l := range before {
			if !slices.Contains(c.Lines(), l) {
				gone = append(gone, l)
			}
		}
		want := slices.Clone(tc.wantGone)
		slices.Sort(want)
		if diff := cmp.Diff(want, gone); diff != "" {
			t.Errorf("Delete(%s) removed (-want +got):\n%s", tc.del, diff)
		}
	}

	c, _ := ParseSet(base)
	if _, err := c.Delete(mustTokens(t, "interfaces xe-0/0/1 mtux")); err == nil || !errors.Is(err, ErrSyntax) {
		t.Errorf("Delete of an unknown statement: got %v, want a syntax error", err)
	}
	if found, err := c.Delete(nil); err != nil || !found || c.Len() != 0 {
		t.Errorf("Delete(nothing) = %v, %v and %d statements left, want everything deleted", found, err, c.Len())
	}
	// A single-valued leaf deleted and set again is single-valued still.
	c, _ = ParseSet("set interfaces xe-0/0/1 mtu 1500")
	c.Delete(mustTokens(t, "interfaces xe-0/0/1"))
	c.Apply("set interfaces xe-0/0/1 mtu 1600\nset interfaces xe-0/0/1 mtu 1700")
	if diff := cmp.Diff([]string{"set interfaces xe-0/0/1 mtu 1700"}, c.Lines()); diff != "" {
		t.Errorf("after delete and two sets (-want +got):\n%s", diff)
	}
}

func TestParseSetLineNumbers(t *testing.T) {
	text := "# a comment\n\nset vlans bd-7 vlan-id 7\r\nset vlans bd-7 vlan-idd 7\n  set vlans bd-8 vlan-id 8  \nfrobnicate vlans\nset vlans bd-9 description \"open\ndelete vlans bd-99\n"
	c, errs := ParseSet(text)
	var lines []int
	for _, e := range errs {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("error %v is not a *LineError", e)
		}
		lines = append(lines, le.Line)
		if !strings.HasPrefix(e.Error(), fmt.Sprintf("line %d: syntax error: ", le.Line)) {
			t.Errorf("error %q does not start with its line number and 'syntax error'", e)
		}
	}
	if diff := cmp.Diff([]int{4, 6, 7}, lines); diff != "" {
		t.Errorf("bad lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"set vlans bd-7 vlan-id 7", "set vlans bd-8 vlan-id 8"}, c.Lines()); diff != "" {
		t.Errorf("good lines applied (-want +got):\n%s", diff)
	}
	if !strings.Contains(errs[1].Error(), `unknown command "frobnicate"`) {
		t.Errorf("got %v, want it to name the unknown command", errs[1])
	}
}

func TestLoadAllOrNothing(t *testing.T) {
	c, _ := ParseSet("set vlans bd-7 vlan-id 7\nset vlans bd-8 vlan-id 8")
	before := c.Clone()
	_, err := c.Load("set vlans bd-9 vlan-id 9\ndelete vlans bd-7\nset vlans bd-9 vxlan vni x\nset vlans bd-9 vxlan vnii 9")
	var le *LoadError
	if !errors.As(err, &le) || len(le.Lines) != 2 || le.Lines[0].Line != 3 || le.Lines[1].Line != 4 {
		t.Fatalf("Load = %v, want a *LoadError for lines 3 and 4", err)
	}
	if !strings.Contains(err.Error(), "load refused, 2 bad lines: line 3: syntax error") {
		t.Errorf("got %q, want the bad lines listed", err)
	}
	if !c.Equal(before) {
		t.Errorf("a refused load changed the config: %q", c.Lines())
	}

	warnings, err := c.Load("delete vlans bd-99\ndelete vlans bd-7\nset vlans bd-9 vlan-id 9")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 1 || warnings[0].Line != 1 || !warnings[0].Warning || !errors.Is(warnings[0], ErrStatementNotFound) {
		t.Errorf("warnings = %v, want one 'statement not found' for line 1", warnings)
	}
	if diff := cmp.Diff([]string{"set vlans bd-8 vlan-id 8", "set vlans bd-9 vlan-id 9"}, c.Lines()); diff != "" {
		t.Errorf("after load (-want +got):\n%s", diff)
	}
	if before.Equal(c) {
		t.Errorf("Equal says the loaded config equals the one before")
	}
}

func TestCloneIsIndependent(t *testing.T) {
	c, _ := ParseSet("set vlans bd-7 vlan-id 7")
	o := c.Clone()
	o.Apply("set vlans bd-7 vlan-id 8\nset vlans bd-8 vlan-id 8")
	if diff := cmp.Diff([]string{"set vlans bd-7 vlan-id 7"}, c.Lines()); diff != "" {
		t.Errorf("original changed through its clone (-want +got):\n%s", diff)
	}
	st := o.Statements()
	st[0][0] = "changed"
	if o.Statements()[0][0] != "vlans" {
		t.Errorf("Statements() shares its slices with the config")
	}
}

func TestInjectionStaysADescription(t *testing.T) {
	desc := `x"; delete interfaces; set system host-name pwned`
	c := NewConfig()
	if err := c.Set([]string{"interfaces", "xe-0/0/1", "description", desc}); err != nil {
		t.Fatal(err)
	}
	c.Set([]string{"interfaces", "xe-0/0/2", "mtu", "9192"})
	back, errs := ParseSet(strings.Join(c.Lines(), "\n"))
	if len(errs) > 0 || !back.Equal(c) {
		t.Fatalf("round trip: %v, %q", errs, back.Lines())
	}
	want := [][]string{{"interfaces", "xe-0/0/1", "description", desc}, {"interfaces", "xe-0/0/2", "mtu", "9192"}}
	if diff := cmp.Diff(want, back.Statements()); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}
}

// TestGoldenContrailExample loads the public Contrail example (testdata/contrail-a1.set): the
// statements vflink uses are accepted and shown in canonical form, the others are syntax errors.
func TestGoldenContrailExample(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "contrail-a1.set"))
	if err != nil {
		t.Fatal(err)
	}
	c, errs := ParseSet(string(in))
	var b strings.Builder
	b.WriteString("# accepted\n")
	for _, l := range c.Lines() {
		b.WriteString(l + "\n")
	}
	b.WriteString("# refused\n")
	for _, e := range errs {
		b.WriteString(e.Error() + "\n")
	}
	golden := filepath.Join("testdata", "contrail-a1.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", golden, diff)
	}
}

func FuzzParseSet(f *testing.F) {
	f.Add("set interfaces xe-0/0/3 mtu 9192\ndelete interfaces xe-0/0/3 mtu")
	f.Add("set groups g vlans bd-7 description \"a \\\"b\\\" c\"\nset apply-groups g")
	f.Add("set interfaces ae2 esi 00:98:80:2C:a8:b7:12:3d:55:00\nset interfaces ae2 esi all-active\ndelete")
	f.Add("set system host-name \"\xff\x01\"\nset switch-options vrf-target target:0064512L:01")
	f.Add("set protocols evpn extended-vni-list all\nset policy-options policy-statement p term t then accept")
	f.Fuzz(func(t *testing.T, text string) {
		c, _ := ParseSet(text)
		lines := c.Lines()
		back, errs := ParseSet(strings.Join(lines, "\n"))
		if len(errs) > 0 {
			t.Fatalf("canonical lines %q do not parse: %v", lines, errs)
		}
		if !back.Equal(c) {
			t.Fatalf("round trip changed the config:\n%q\n%q", lines, back.Lines())
		}
		if !slices.Equal(back.Lines(), lines) {
			t.Fatalf("round trip changed the lines:\n%q\n%q", lines, back.Lines())
		}
	})
}

package junos

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/internal/fabric/junosconf"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestFilterRunning(t *testing.T) {
	text := `
set version 23.4R1.9
set system host-name leaf1
set groups __contrail_overlay_evpn__ protocols evpn encapsulation vxlan
set groups __vflink_evpn__ protocols evpn encapsulation vxlan
set groups __vflink_access__ vlans bd-7 description "Virtual Network - red"
set groups   __vflink_access__    interfaces "xe-0/0/3" mtu 9192
set apply-groups __contrail_overlay_evpn__
set apply-groups __vflink_evpn__
set apply-groups __vflink_access__
deactivate groups __vflink_lag__
set groups __vflink_access__ vlans bd-7 description "Virtual Network - red"
  set interfaces xe-0/0/1 description "set groups __vflink_x__ y"
set groups __vflinkx__ system host-name nope
`
	got, err := filterRunning(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"set apply-groups __vflink_access__",
		"set apply-groups __vflink_evpn__",
		"set groups __vflink_access__ interfaces xe-0/0/3 mtu 9192",
		`set groups __vflink_access__ vlans bd-7 description "Virtual Network - red"`,
		"set groups __vflink_evpn__ protocols evpn encapsulation vxlan",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filterRunning (-want +got):\n%s", diff)
	}

	empty, err := filterRunning("set system host-name leaf1\n")
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("filterRunning(no vflink lines) = %#v, %v; want an empty non-nil list", empty, err)
	}

	if _, err := filterRunning(`set groups __vflink_access__ vlans bd-7 description "unterminated`); err == nil {
		t.Error("filterRunning(unterminated string) = nil error, want one")
	}
}

func TestCheckDesired(t *testing.T) {
	ok := []string{
		"set groups __vflink_evpn__ protocols evpn encapsulation vxlan",
		`set groups   __vflink_access__ vlans bd-7 description "red net"`,
		`set groups __vflink_access__ interfaces "xe-0/0/3" mtu 9192`,
		"set apply-groups __vflink_evpn__",
	}
	got, err := checkDesired(ok)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"set groups __vflink_evpn__ protocols evpn encapsulation vxlan",
		`set groups __vflink_access__ vlans bd-7 description "red net"`,
		"set groups __vflink_access__ interfaces xe-0/0/3 mtu 9192",
		"set apply-groups __vflink_evpn__",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checkDesired (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ line, wantErr string }{
		{"set system host-name pwned", "is not vflink's"},
		{"delete groups __vflink_evpn__", "is not vflink's"},
		{"set groups __contrail_overlay_evpn__ protocols evpn encapsulation vxlan", "is not vflink's"},
		{"set apply-groups __contrail_overlay_evpn__", "is not vflink's"},
		{"set apply-groups", "is not vflink's"},
		{"set apply-groups __vflink_evpn__ __vflink_access__", "exactly one group"},
		{`set groups __vflink_access__ vlans bd-7 description "x`, "unterminated string"},
		{"set groups __vflink_access__ vlans bd-7\nset system host-name pwned", "newline"},
		{"set groups __vflink_access__ vlans bd-7 description \xff", "not valid UTF-8"},
	} {
		_, err := checkDesired([]string{ok[0], tt.line})
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("checkDesired(%q) = %v, want an error naming line 2 and containing %q", tt.line, err, tt.wantErr)
		}
	}
}

func TestLoadText(t *testing.T) {
	running := []string{
		"set apply-groups __vflink_access__",
		"set apply-groups __vflink_lag__",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-7",
		"set groups __vflink_lag__ interfaces xe-0/0/3 gigether-options 802.3ad ae2",
	}
	desired, err := checkDesired([]string{
		"set groups __vflink_evpn__ protocols evpn vni-options vni 7 vrf-target target:64512:8000006",
		"set groups __vflink_access__ interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-7",
		`set groups __vflink_access__ vlans bd-7 description "x\"; delete interfaces; set system host-name pwned <&> ]]>]]>"`,
		"set apply-groups __vflink_evpn__",
		"set apply-groups __vflink_access__",
	})
	if err != nil {
		t.Fatal(err)
	}
	text := loadText(running, desired)
	golden(t, "load-replace.txt", text)
	golden(t, "load-replace.xml", loadRPC(text))

	// Every line of the load text is one statement: the description stays one token.
	for l := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		toks, err := junosconf.Tokenize(l)
		if err != nil {
			t.Fatalf("load line %q: %v", l, err)
		}
		if toks[0] == "delete" && (len(toks) != 3 || !strings.HasPrefix(toks[2], groupPrefix)) {
			t.Errorf("load line %q deletes something that is not a vflink group", l)
		}
	}
	if rpc := loadRPC(text); strings.Contains(rpc, "]]>") || strings.Count(rpc, "<") != 4 {
		t.Errorf("loadRPC did not escape the text:\n%s", rpc)
	}

	golden(t, "load-empty.txt", loadText(running, nil))
	if got := loadText(nil, nil); got != "" {
		t.Errorf("loadText(nil, nil) = %q, want empty", got)
	}
}

func TestCommitConfirmedRPC(t *testing.T) {
	got := commitConfirmedRPC(3)
	want := `<commit-configuration><confirmed/><confirm-timeout>3</confirm-timeout></commit-configuration>`
	if got != want {
		t.Errorf("commitConfirmedRPC(3) = %s, want %s", got, want)
	}
}

func FuzzFilterRunning(f *testing.F) {
	f.Add("set groups __vflink_access__ vlans bd-7 description \"a b\"\nset system host-name x\n")
	f.Add("set apply-groups __vflink_evpn__\nset apply-groups \"__vflink_ x\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := filterRunning(text)
		if err != nil {
			return
		}
		if !slices.IsSorted(got) {
			t.Errorf("filterRunning = %q, not sorted", got)
		}
		// Canonical lines are a fixed point: filtering them again changes nothing.
		again, err := filterRunning(strings.Join(got, "\n"))
		if err != nil {
			t.Fatalf("filterRunning of its own output: %v", err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Errorf("not a fixed point (-first +second):\n%s", diff)
		}
		if _, err := checkDesired(got); err != nil && !strings.Contains(err.Error(), "apply-groups takes exactly one") &&
			!strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("running lines are not acceptable as desired: %v", err)
		}
	})
}

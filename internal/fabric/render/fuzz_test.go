package render

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// validIface is the interface name syntax, written independently of the renderer's.
var validIface = regexp.MustCompile(`^(?:(?:xe|ge|et|mge)-(?:0|[1-9]\d?\d?)/(?:0|[1-9]\d?\d?)/(?:0|[1-9]\d?\d?)(?::(?:0|[1-9]\d?\d?))?|ae(?:0|[1-9]\d{0,3}))$`)

func fuzzInput(name, iface string) Input {
	group := []api.Member{{Device: "leaf1", Interface: "xe-0/0/5"}, {Device: "leaf2", Interface: "xe-0/0/5"}}
	return Input{Device: api.Device{Name: "leaf1"}, Attachments: []api.Attachment{
		att("leaf1", iface, 7, 7, "net-7", name),
		native(att("leaf1", "xe-0/0/2", 8, 8, "net-8", name)),
		pg("leaf1", group, 9, 9, "net-9", name),
	}}
}

// masked is a rendered line's tokens with the value of a description replaced by a placeholder.
func masked(t *testing.T, line string) string {
	toks, err := junosconf.Tokenize(line)
	if err != nil {
		t.Fatalf("line %q does not tokenize: %v", line, err)
	}
	if n := len(toks); n >= 2 && toks[n-2] == "description" {
		toks[n-1] = "<description>"
	}
	return strings.Join(toks, "\x00")
}

// FuzzRenderNames renders arbitrary network and interface names: either an error (exactly when
// the interface name is not a Junos one), or lines of vflink's form where the network name is
// only ever the value of a description and changes nothing else, not even the number of lines.
func FuzzRenderNames(f *testing.F) {
	for _, name := range []string{"red", `x"; delete interfaces; set system host-name pwned`, "a\nset system host-name pwned",
		`back\slash\`, `"`, `\"`, "", " ", "tab\tand\rcr", "ünï", "set groups __vflink_evpn__ x", "\xff\xfe"} {
		for _, iface := range []string{"xe-0/0/3", "ae7", "et-1/2/3:4", "xe-0/0/3\nset system host-name x", "xe-0/0/3 ", "",
			`xe-0/0/3"`, "xe-0/0/03", "xe-0/0/1000", "ae1000", "ae", "xe-0/0/5", "xe-0/0/2"} {
			f.Add(name, iface)
		}
	}
	f.Fuzz(func(t *testing.T, name, iface string) {
		got, err := Junos(fuzzInput(name, iface))
		wantErr := !validIface.MatchString(iface) || iface == "xe-0/0/5" // a member of the port group
		if wantErr {
			if err == nil {
				t.Fatalf("interface %q: got %q, want an error", iface, got)
			}
			if !strings.Contains(err.Error(), strconv.Quote(iface)) && !strings.Contains(err.Error(), iface+" ") {
				t.Fatalf("interface %q: error %q does not name it", iface, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("name %q, interface %q: %v", name, iface, err)
		}
		ref, err := Junos(fuzzInput("x", iface))
		if err != nil {
			t.Fatalf("reference for interface %q: %v", iface, err)
		}
		if len(got) != len(ref) {
			t.Fatalf("name %q: %d lines, but %d with name x", name, len(got), len(ref))
		}
		want := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, name)
		cfg := junosconf.NewConfig()
		var gotM, refM []string
		descs := 0
		for i, line := range got {
			toks, err := junosconf.Tokenize(line)
			if err != nil {
				t.Fatalf("name %q: line %q does not tokenize: %v", name, line, err)
			}
			apply := len(toks) == 3 && toks[0] == "set" && toks[1] == "apply-groups" && slices.Contains(Groups, toks[2])
			group := len(toks) > 3 && toks[0] == "set" && toks[1] == "groups" && slices.Contains(Groups, toks[2])
			if !apply && !group {
				t.Fatalf("name %q: line %q is not a vflink group statement", name, line)
			}
			if len(toks) == 7 && toks[3] == "vlans" && toks[5] == "description" {
				descs++
				vni := strings.TrimPrefix(toks[4], "bd-")
				if w := "vflink network " + want + " (net-" + vni + ")"; toks[6] != w {
					t.Fatalf("line %q: description %q, want %q", line, toks[6], w)
				}
			}
			if err := cfg.Set(toks[1:]); err != nil {
				t.Fatalf("name %q: the simulator rejects %q: %v", name, line, err)
			}
			gotM = append(gotM, masked(t, line))
			refM = append(refM, masked(t, ref[i]))
		}
		if descs != 3 {
			t.Fatalf("name %q: %d network descriptions in %q, want 3", name, descs, got)
		}
		slices.Sort(gotM)
		slices.Sort(refM)
		if !slices.Equal(gotM, refM) {
			t.Fatalf("name %q changes more than descriptions:\n%q\nwith name x:\n%q", name, got, ref)
		}
	})
}

package hypervisor

import (
	"strings"
	"testing"
)

func FuzzParsePCIAddress(f *testing.F) {
	for _, s := range []string{"0000:83:13.3", "83:13.3", "ffff:ff:1f.7", "0000:83:20.0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parsePCIAddress(s)
		if err != nil {
			return
		}
		if got := formatPCIAddress(a); got != strings.ToLower(s) {
			t.Errorf("parsePCIAddress(%q) formats back as %q", s, got)
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add("6695eb01-f6a4-8304-79aa-97f2502e193f test\n\n")
	f.Add(" Id Name State\n---\n")
	f.Fuzz(func(t *testing.T, out string) {
		doms, err := parseList(out)
		if err != nil {
			return
		}
		for id, name := range doms {
			if _, err := canonicalID(id); err != nil || name == "" {
				t.Errorf("parseList(%q) returned %q -> %q", out, id, name)
			}
		}
	})
}

func FuzzDomainName(f *testing.F) {
	for _, s := range []string{"web-1", "a b", "", "ünï", strings.Repeat("x", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		const id = "6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f"
		got := domainName(name, id)
		rest, ok := strings.CutPrefix(got, domainPrefix)
		if !ok || rest == "" || len(rest) > maxNameLen && rest != id {
			t.Fatalf("domainName(%q) = %q", name, got)
		}
		for _, r := range rest {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Fatalf("domainName(%q) = %q holds %q", name, got, r)
			}
		}
	})
}

package junosconf

import (
	"slices"
	"strings"
	"testing"
)

func TestQuoteTokenizeRoundTrip(t *testing.T) {
	for _, s := range []string{"xe-0/0/3", "bd-7", "Virtual Network - red", `x"; delete interfaces; set system host-name pwned`,
		`back\slash`, "", "tab\there", "ünïcode", `"`, `\`, "a b\nc"} {
		line := "set vlans bd-7 description " + Quote(s)
		toks, err := Tokenize(line)
		if err != nil {
			t.Fatalf("Tokenize(%q): %v", line, err)
		}
		want := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, s)
		if len(toks) != 5 || toks[4] != want {
			t.Errorf("Quote(%q) = %s: tokens %q, want 5 tokens ending in %q", s, Quote(s), toks, want)
		}
	}
	if got := Quote("xe-0/0/3"); got != "xe-0/0/3" {
		t.Errorf("Quote(xe-0/0/3) = %s, want it bare", got)
	}
	if got := Quote("a b"); got != `"a b"` {
		t.Errorf(`Quote("a b") = %s, want "a b" quoted`, got)
	}
}

func TestTokenizeErrors(t *testing.T) {
	for _, line := range []string{`set a "open`, `set a b"c`, `set a "x"y`, "set a\nset b"} {
		if toks, err := Tokenize(line); err == nil {
			t.Errorf("Tokenize(%q) = %q, want an error", line, toks)
		}
	}
	toks, err := Tokenize(`set  groups g  interfaces "ae 1"`)
	if err != nil || !slices.Equal(toks, []string{"set", "groups", "g", "interfaces", "ae 1"}) {
		t.Errorf("got %q %v", toks, err)
	}
	if Join(toks) != `set groups g interfaces "ae 1"` {
		t.Errorf("Join = %s", Join(toks))
	}
}

func FuzzQuote(f *testing.F) {
	f.Add(`x"; delete interfaces; set system host-name pwned`)
	f.Add(`\" \\ "`)
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := Tokenize("set vlans bd-1 description " + Quote(s))
		if err != nil {
			t.Fatalf("quoted %q does not tokenize: %v", s, err)
		}
		if len(toks) != 5 {
			t.Fatalf("quoted %q split into %d tokens %q, want 5", s, len(toks), toks)
		}
	})
}

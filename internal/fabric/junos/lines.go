package junos

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// groupPrefix starts the name of every configuration group vflink owns.
const groupPrefix = "__vflink_"

// vflinkLine parses one `set` statement and reports the vflink group it belongs to: the line is
// `set groups __vflink_...__ ...` or `set apply-groups __vflink_...__`. ok is false for any
// other statement. The canonical form is "set " + junosconf.Join of the tokens.
func vflinkLine(line string) (canonical, group string, ok bool, err error) {
	toks, err := junosconf.Tokenize(line)
	if err != nil {
		return "", "", false, err
	}
	if !isVflink(toks) {
		return "", "", false, nil
	}
	return "set " + junosconf.Join(toks[1:]), toks[2], true, nil
}

// isVflink reports whether the tokens of a statement are `set groups __vflink_...` or
// `set apply-groups __vflink_...`.
func isVflink(toks []string) bool {
	return len(toks) >= 3 && toks[0] == "set" && (toks[1] == "groups" || toks[1] == "apply-groups") &&
		strings.HasPrefix(toks[2], groupPrefix)
}

// mayBeVflink is a cheap test before tokenizing a line of a device's configuration: lines that
// cannot be vflink's are skipped unparsed (they may use syntax vflink does not know).
func mayBeVflink(line string) bool {
	return strings.HasPrefix(line, "set groups ") || strings.HasPrefix(line, "set apply-groups ")
}

// filterRunning keeps the vflink lines of a `display set` configuration, canonical and sorted.
func filterRunning(text string) ([]string, error) {
	out := []string{}
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimSpace(l)
		if !mayBeVflink(l) {
			continue
		}
		c, _, ok, err := vflinkLine(l)
		if err != nil {
			return nil, fmt.Errorf("device configuration line %q: %w", l, err)
		}
		if ok {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkDesired validates the lines vflink wants on a device and returns them canonical, in the
// given order: each must tokenize, be valid UTF-8 and be a `set groups __vflink_*` or
// `set apply-groups __vflink_*` statement (apply-groups with exactly one group).
func checkDesired(desired []string) ([]string, error) {
	out := make([]string, 0, len(desired))
	for i, l := range desired {
		if !utf8.ValidString(l) {
			return nil, fmt.Errorf("desired line %d %q is not valid UTF-8", i+1, l)
		}
		toks, err := junosconf.Tokenize(l)
		if err != nil {
			return nil, fmt.Errorf("desired line %d %q: %w", i+1, l, err)
		}
		if !isVflink(toks) {
			return nil, fmt.Errorf("desired line %d %q is not vflink's: want `set groups %s...` or `set apply-groups %s...`",
				i+1, l, groupPrefix, groupPrefix)
		}
		if toks[1] == "apply-groups" && len(toks) != 3 {
			return nil, fmt.Errorf("desired line %d %q: apply-groups takes exactly one group name", i+1, l)
		}
		out = append(out, "set "+junosconf.Join(toks[1:]))
	}
	return out, nil
}

// groupsOf returns the sorted vflink group names the canonical lines mention.
func groupsOf(lines ...[]string) []string {
	var gs []string
	for _, ls := range lines {
		for _, l := range ls {
			if _, g, ok, err := vflinkLine(l); err == nil && ok {
				gs = append(gs, g)
			}
		}
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

// loadText is the configuration-set text that makes the device's vflink configuration equal
// desired: every vflink group that runs or is desired is deleted (with its apply-groups), then
// the desired lines are set. running and desired are canonical lines.
func loadText(running, desired []string) string {
	var b strings.Builder
	for _, g := range groupsOf(running, desired) {
		b.WriteString("delete " + junosconf.Join([]string{"groups", g}) + "\n")
		b.WriteString("delete " + junosconf.Join([]string{"apply-groups", g}) + "\n")
	}
	for _, l := range desired {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// xmlText escapes s for XML character data. Newlines stay newlines (readable in device logs);
// `>` is escaped too, so no "]]>" (end of CDATA, and half the NETCONF 1.0 end-of-message mark)
// can appear.
var xmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// loadRPC is the Junos load-configuration RPC for a load text.
func loadRPC(text string) string {
	return `<load-configuration action="set" format="text"><configuration-set>` + "\n" +
		xmlText.Replace(text) + `</configuration-set></load-configuration>`
}

// commitConfirmedRPC is the Junos commit confirmed: rolled back by the device after minutes
// unless another commit confirms it.
func commitConfirmedRPC(minutes int) string {
	return fmt.Sprintf(`<commit-configuration><confirmed/><confirm-timeout>%d</confirm-timeout></commit-configuration>`, minutes)
}

const (
	getConfigRPC = `<get-configuration format="set" database="committed"/>`
	commitRPC    = `<commit-configuration/>`
)

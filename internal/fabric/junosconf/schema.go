package junosconf

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// statementsText is the hierarchy a Config accepts, one statement pattern a line: the Junos
// statements vflink renders (the contract between the renderer, the device simulator and the
// driver). The pattern language:
//
//	word           a keyword, written as is
//	<name>         a value checked by the placeholder of that name (see placeholders); followed by
//	               more tokens it names an element (interfaces <if> ...), last it is a value
//	(a|b|<name>)   a value that is one of these words or placeholders
//	*              after a value: multi-valued (a leaf-list; each set adds a value), else a new set
//	               replaces the old value
//
// A pattern that ends in a keyword is a flag. Two value patterns at the same statement with
// different alternatives are two different leaves (`esi <esi>` and `esi (all-active|single-active)`).
// Each of these statements may appear at top level or under `groups <group>`.
const statementsText = `
interfaces <if> description <str>
interfaces <if> mtu <n>
interfaces <if> native-vlan-id <n>
interfaces <if> unit <n> family ethernet-switching interface-mode (trunk|access)
interfaces <if> unit <n> family ethernet-switching vlan members <word> *
interfaces <if> gigether-options 802.3ad <if>
interfaces <if> ether-options 802.3ad <if>
interfaces <if> aggregated-ether-options lacp (active|passive)
interfaces <if> aggregated-ether-options lacp periodic (fast|slow)
interfaces <if> aggregated-ether-options lacp system-id <mac>
interfaces <if> aggregated-ether-options lacp system-priority <n>
interfaces <if> aggregated-ether-options lacp admin-key <n>
interfaces <if> esi <esi>
interfaces <if> esi (all-active|single-active)
vlans <word> description <str>
vlans <word> vlan-id <n>
vlans <word> vxlan vni <n>
protocols evpn encapsulation vxlan
protocols evpn extended-vni-list (all|<n>) *
protocols evpn multicast-mode ingress-replication
protocols evpn vni-options vni <n> vrf-target <target>
policy-options policy-statement <word> term <word> from community <word> *
policy-options policy-statement <word> term <word> then (accept|reject)
policy-options policy-statement <word> term <word> then community add <word> *
policy-options community <word> members <target> *
switch-options vrf-import <word> *
switch-options vrf-target <target>
chassis aggregated-devices ethernet device-count <n>
system host-name <str>
`

// topLevelText holds the statements allowed at top level only (not inside a group).
const topLevelText = `
apply-groups <group> *
`

// groupPrefix is put in front of every pattern of statementsText for the copy under a group.
const groupPrefix = "groups <group> "

// placeholder checks one kind of value and brings it to its canonical form (the form a device
// shows it in), so that equal configurations have equal lines.
type placeholder struct {
	name string // as in the patterns: "<n>"
	what string // for a person: what a valid value looks like
	norm func(string) (string, bool)
}

var (
	ifRE     = regexp.MustCompile(`^(?:(?:xe|ge|et|mge)-[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,3}(?::[0-9]{1,3})?|ae[0-9]{1,4})$`)
	wordRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)
	groupRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,253}$`)
	targetRE = regexp.MustCompile(`^target:([0-9]{1,10})(L?):([0-9]{1,10})$`)
	esiRE    = regexp.MustCompile(`^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){9}$`)
	macRE    = regexp.MustCompile(`^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$`)
)

// placeholders is every placeholder the patterns may use.
var placeholders = map[string]*placeholder{
	"<if>": {name: "<if>", what: "an interface name such as xe-0/0/3, xe-0/0/3:1 or ae2", norm: func(s string) (string, bool) {
		return s, ifRE.MatchString(s)
	}},
	"<n>": {name: "<n>", what: "an unsigned integer (0-4294967295)", norm: normUint},
	"<str>": {name: "<str>", what: "a string", norm: func(s string) (string, bool) {
		return normString(s), true
	}},
	"<word>": {name: "<word>", what: "a name of letters, digits, '_', '.' and '-' that starts with a letter or digit", norm: func(s string) (string, bool) {
		return s, wordRE.MatchString(s)
	}},
	"<group>": {name: "<group>", what: "a group name of letters, digits, '_', '.' and '-'", norm: func(s string) (string, bool) {
		return s, groupRE.MatchString(s)
	}},
	"<target>": {name: "<target>", what: "a route target target:<asn>[L]:<n> or auto", norm: normTarget},
	"<esi>": {name: "<esi>", what: "an ESI of 10 colon-separated hex octets", norm: func(s string) (string, bool) {
		return strings.ToLower(s), esiRE.MatchString(s)
	}},
	"<mac>": {name: "<mac>", what: "a MAC address of 6 colon-separated hex octets", norm: func(s string) (string, bool) {
		return strings.ToLower(s), macRE.MatchString(s)
	}},
}

// normUint accepts a decimal number that fits 32 bits and drops leading zeros, as Junos does.
func normUint(s string) (string, bool) {
	if s == "" || len(s) > 10 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return "", false
	}
	return strconv.FormatUint(v, 10), true
}

func normTarget(s string) (string, bool) {
	if s == "auto" {
		return s, true
	}
	m := targetRE.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	asn, ok1 := normUint(m[1])
	n, ok2 := normUint(m[3])
	if !ok1 || !ok2 {
		return "", false
	}
	return "target:" + asn + m[2] + ":" + n, true
}

// normString makes s what Quote and Tokenize give back for it: control characters become
// spaces and each byte of invalid UTF-8 becomes U+FFFD.
func normString(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// node is one level of the schema hierarchy.
type node struct {
	keywords map[string]*node
	order    []string // keywords in schema order, for messages
	elem     *element // a named element below this node (interfaces <if> ...)
	slots    []*slot  // the value leaves of this statement
	flag     bool     // a pattern ends here
	path     string   // the pattern path to this node, for schema errors
	schema   *schemaT // owner, for slot ids
}

// element is a named element: a placeholder naming one instance, and the node below it.
type element struct {
	ph   *placeholder
	node *node
}

// slot is one value leaf of a statement.
type slot struct {
	id    int
	words []string       // literal alternatives
	phs   []*placeholder // placeholder alternatives
	multi bool
	spec  string // as written, for messages and identity
}

// match returns the canonical form of tok when it is one of the slot's alternatives.
func (s *slot) match(tok string) (string, bool) {
	for _, w := range s.words {
		if tok == w {
			return tok, true
		}
	}
	for _, ph := range s.phs {
		if v, ok := ph.norm(tok); ok {
			return v, true
		}
	}
	return "", false
}

// expected lists the alternatives of s for a message.
func (s *slot) expected() []string {
	out := append([]string(nil), s.words...)
	for _, ph := range s.phs {
		out = append(out, ph.name+" ("+ph.what+")")
	}
	return out
}

type schemaT struct {
	root  *node
	slots int
}

// theSchema is built once from the pattern text; the patterns are constants, so an error in them
// is a programming error and panics (the tests build it).
var theSchema = sync.OnceValue(func() *schemaT {
	s, err := buildSchema(statementsText, topLevelText)
	if err != nil {
		panic("junosconf: bad schema: " + err.Error())
	}
	return s
})

func newNode(s *schemaT, path string) *node {
	return &node{keywords: map[string]*node{}, path: path, schema: s}
}

// buildSchema parses the pattern language: each pattern of body both at top level and under
// groups <group>, each of top at top level only.
func buildSchema(body, top string) (*schemaT, error) {
	s := &schemaT{}
	s.root = newNode(s, "")
	var patterns []string
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			patterns = append(patterns, l)
		}
	}
	n := len(patterns)
	for _, l := range patterns[:n] {
		patterns = append(patterns, groupPrefix+l)
	}
	for _, l := range strings.Split(top, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			patterns = append(patterns, l)
		}
	}
	for _, l := range patterns {
		if err := s.add(l); err != nil {
			return nil, err
		}
	}
	return s, s.root.check()
}

// add adds one pattern to the schema.
func (s *schemaT) add(pattern string) error {
	toks := strings.Fields(pattern)
	n := s.root
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		rest := toks[i+1:]
		isValue := len(rest) == 0 || (len(rest) == 1 && rest[0] == "*")
		switch {
		case tok == "*":
			return fmt.Errorf("pattern %q: * must follow a value", pattern)
		case strings.HasPrefix(tok, "("), strings.HasPrefix(tok, "<") && isValue:
			if !isValue {
				return fmt.Errorf("pattern %q: alternatives %s must be the last value", pattern, tok)
			}
			sl, err := s.parseSlot(tok, len(rest) == 1)
			if err != nil {
				return fmt.Errorf("pattern %q: %w", pattern, err)
			}
			return n.addSlot(sl)
		case strings.HasPrefix(tok, "<"):
			ph := placeholders[tok]
			if ph == nil {
				return fmt.Errorf("pattern %q: unknown placeholder %s", pattern, tok)
			}
			if n.elem == nil {
				n.elem = &element{ph: ph, node: newNode(s, n.path+" "+tok)}
			} else if n.elem.ph != ph {
				return fmt.Errorf("pattern %q: %s at %q where the schema already has %s", pattern, tok, n.path, n.elem.ph.name)
			}
			n = n.elem.node
		default:
			c := n.keywords[tok]
			if c == nil {
				c = newNode(s, strings.TrimSpace(n.path+" "+tok))
				n.keywords[tok] = c
				n.order = append(n.order, tok)
			}
			n = c
		}
	}
	n.flag = true
	return nil
}

// parseSlot parses "<n>" or "(a|b|<n>)".
func (s *schemaT) parseSlot(tok string, multi bool) (*slot, error) {
	inner := tok
	if strings.HasPrefix(tok, "(") {
		if !strings.HasSuffix(tok, ")") {
			return nil, fmt.Errorf("unclosed alternatives %s", tok)
		}
		inner = tok[1 : len(tok)-1]
	}
	sl := &slot{multi: multi, spec: tok}
	for _, a := range strings.Split(inner, "|") {
		switch {
		case a == "":
			return nil, fmt.Errorf("empty alternative in %s", tok)
		case strings.HasPrefix(a, "<"):
			ph := placeholders[a]
			if ph == nil {
				return nil, fmt.Errorf("unknown placeholder %s", a)
			}
			sl.phs = append(sl.phs, ph)
		default:
			sl.words = append(sl.words, a)
		}
	}
	return sl, nil
}

func (n *node) addSlot(sl *slot) error {
	for _, have := range n.slots {
		if have.spec == sl.spec {
			if have.multi != sl.multi {
				return fmt.Errorf("%q %s is both single- and multi-valued", n.path, sl.spec)
			}
			return nil
		}
	}
	n.schema.slots++
	sl.id = n.schema.slots
	n.slots = append(n.slots, sl)
	return nil
}

// check rejects a schema whose statements could be read two ways.
func (n *node) check() error {
	if n.elem != nil && len(n.slots) > 0 {
		return fmt.Errorf("%q has both a named element and a value", n.path)
	}
	if n.flag && (len(n.keywords) > 0 || n.elem != nil || len(n.slots) > 0) {
		return fmt.Errorf("%q is a flag and has statements below it", n.path)
	}
	for _, sl := range n.slots {
		for _, w := range sl.words {
			if n.keywords[w] != nil {
				return fmt.Errorf("%q: value %s is also a keyword", n.path, w)
			}
		}
	}
	for _, k := range n.order {
		if err := n.keywords[k].check(); err != nil {
			return err
		}
	}
	if n.elem != nil {
		return n.elem.node.check()
	}
	return nil
}

// expected lists what may follow at n, in schema order, for a message.
func (n *node) expected() []string {
	out := append([]string(nil), n.order...)
	if n.elem != nil {
		out = append(out, n.elem.ph.name+" ("+n.elem.ph.what+")")
	}
	for _, sl := range n.slots {
		out = append(out, sl.expected()...)
	}
	return out
}

// ErrSyntax is what every error about a statement that the schema does not accept wraps.
var ErrSyntax = errors.New("syntax error")

// SyntaxError is a statement the schema does not accept: Token (at index Index of the statement's
// tokens; Index == len(tokens) when the statement ends too early) is not one of Expected.
type SyntaxError struct {
	Statement string   // the statement's tokens joined (without the set/delete verb)
	Token     string   // the bad token, "" when the statement is incomplete
	Index     int      // index of the bad token
	Expected  []string // what would have been accepted there
	Reason    string   // set instead of Expected for other mistakes
}

func (e *SyntaxError) Error() string {
	var want string
	switch {
	case e.Reason != "":
		want = e.Reason
	case len(e.Expected) == 1:
		want = "expected " + e.Expected[0]
	default:
		want = "expected one of " + strings.Join(e.Expected, ", ")
	}
	if e.Token == "" && e.Reason == "" {
		if e.Statement == "" {
			return fmt.Sprintf("%v: missing statement: %s", ErrSyntax, want)
		}
		return fmt.Sprintf("%v: %q is incomplete: %s", ErrSyntax, e.Statement, want)
	}
	return fmt.Sprintf("%v: %q in %q: %s", ErrSyntax, e.Token, e.Statement, want)
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// walkKind is where a statement's tokens end in the schema.
type walkKind int

const (
	endsInside walkKind = iota // at a container or named element: a prefix, not a statement
	endsFlag                   // at a flag: a complete statement
	endsValue                  // at a value: a complete statement
)

// walked is a statement checked against the schema.
type walked struct {
	toks []string // canonical tokens
	kind walkKind
	slot *slot // for endsValue
	at   *node // for endsInside: the node the statement stops at
}

// walk checks toks against the schema and returns them in canonical form.
func walk(toks []string) (*walked, error) {
	n := theSchema().root
	out := make([]string, len(toks))
	for i, tok := range toks {
		if c, ok := n.keywords[tok]; ok {
			out[i] = tok
			n = c
			continue
		}
		if n.elem != nil {
			v, ok := n.elem.ph.norm(tok)
			if !ok {
				return nil, syntaxErr(toks, i, n.expected())
			}
			out[i] = v
			n = n.elem.node
			continue
		}
		for _, sl := range n.slots {
			if v, ok := sl.match(tok); ok {
				out[i] = v
				if i != len(toks)-1 {
					return nil, &SyntaxError{Statement: Join(toks), Token: toks[i+1], Index: i + 1,
						Reason: fmt.Sprintf("nothing may follow the value %s", Quote(tok))}
				}
				return &walked{toks: out, kind: endsValue, slot: sl}, nil
			}
		}
		return nil, syntaxErr(toks, i, n.expected())
	}
	if n.flag {
		return &walked{toks: out, kind: endsFlag}, nil
	}
	return &walked{toks: out, kind: endsInside, at: n}, nil
}

func syntaxErr(toks []string, i int, expected []string) *SyntaxError {
	if len(expected) == 0 {
		return &SyntaxError{Statement: Join(toks), Token: toks[i], Index: i,
			Reason: "nothing may follow " + Quote(toks[i-1])}
	}
	return &SyntaxError{Statement: Join(toks), Token: toks[i], Index: i, Expected: expected}
}

package junosconf

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Config is a Junos configuration: a set of statements, each a token path that the schema
// accepts, with Junos semantics: setting a single-valued statement replaces its old value,
// setting a multi-valued one adds a value, a flag is there or not. Containers exist only through
// the statements below them (a statement must be complete; an empty container is not kept).
//
// The zero Config is not usable; make one with NewConfig. A Config is not safe for concurrent
// use.
type Config struct {
	stmts  map[string]*statement // by Join(tokens)
	single map[string]string     // single-valued leaf (path + slot) -> key of its statement
}

// statement is one canonical statement. It is never changed once made, so clones share it.
type statement struct {
	toks    []string
	slotKey string // for a single-valued leaf: its identity without the value
}

// NewConfig returns an empty configuration.
func NewConfig() *Config {
	return &Config{stmts: map[string]*statement{}, single: map[string]string{}}
}

// Set adds one statement (its tokens, without the "set" verb). Values are checked and brought to
// canonical form (numbers without leading zeros, hex in lower case, control characters in strings
// as spaces). An unknown statement, a bad value or an incomplete statement is a *SyntaxError.
func (c *Config) Set(toks []string) error {
	w, err := walk(toks)
	if err != nil {
		return err
	}
	switch w.kind {
	case endsInside:
		return &SyntaxError{Statement: Join(toks), Index: len(toks), Expected: w.at.expected()}
	case endsFlag:
		c.put(&statement{toks: w.toks})
	case endsValue:
		st := &statement{toks: w.toks}
		if !w.slot.multi {
			st.slotKey = fmt.Sprintf("%s\x00%d", Join(w.toks[:len(w.toks)-1]), w.slot.id)
			if old, ok := c.single[st.slotKey]; ok {
				delete(c.stmts, old)
			}
		}
		c.put(st)
	}
	return nil
}

func (c *Config) put(st *statement) {
	k := Join(st.toks)
	c.stmts[k] = st
	if st.slotKey != "" {
		c.single[st.slotKey] = k
	}
}

// Delete removes the statement toks or, when toks is a prefix (a container, a named element, a
// leaf without its value), every statement below it; no tokens at all delete everything. It
// reports whether anything was removed. toks must be a path the schema accepts, else the error is a
// *SyntaxError.
func (c *Config) Delete(toks []string) (found bool, err error) {
	w, err := walk(toks)
	if err != nil {
		return false, err
	}
	for k, st := range c.stmts {
		if len(st.toks) >= len(w.toks) && slices.Equal(st.toks[:len(w.toks)], w.toks) {
			delete(c.stmts, k)
			if st.slotKey != "" {
				delete(c.single, st.slotKey)
			}
			found = true
		}
	}
	return found, nil
}

// Len returns the number of statements.
func (c *Config) Len() int { return len(c.stmts) }

// Lines returns the configuration as canonical "set" lines ("set " + Join(tokens)), sorted.
func (c *Config) Lines() []string {
	out := make([]string, 0, len(c.stmts))
	for k := range c.stmts {
		out = append(out, "set "+k)
	}
	slices.Sort(out)
	return out
}

// Statements returns the tokens of every statement, in the order of Lines. The slices are
// copies.
func (c *Config) Statements() [][]string {
	keys := make([]string, 0, len(c.stmts))
	for k := range c.stmts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([][]string, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(c.stmts[k].toks)
	}
	return out
}

// Clone returns a copy of c that shares nothing mutable with it.
func (c *Config) Clone() *Config {
	o := &Config{stmts: make(map[string]*statement, len(c.stmts)), single: make(map[string]string, len(c.single))}
	for k, v := range c.stmts {
		o.stmts[k] = v
	}
	for k, v := range c.single {
		o.single[k] = v
	}
	return o
}

// Equal reports whether c and o hold the same statements.
func (c *Config) Equal(o *Config) bool {
	if len(c.stmts) != len(o.stmts) {
		return false
	}
	for k := range c.stmts {
		if _, ok := o.stmts[k]; !ok {
			return false
		}
	}
	return true
}

// LineError is one line of a load text that was refused (or, with Warning, a delete of a
// statement that was not there, which does not fail the load).
type LineError struct {
	Line    int    // 1-based line number in the text
	Text    string // the line, trimmed
	Warning bool   // a warning, not an error
	Err     error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the line's error.
func (e *LineError) Unwrap() error { return e.Err }

// ErrStatementNotFound is the warning for a delete of a statement that is not there.
var ErrStatementNotFound = errors.New("statement not found")

// LoadError is a load text with bad lines; the configuration it was applied to is unchanged.
type LoadError struct {
	Lines []*LineError
}

func (e *LoadError) Error() string {
	msgs := make([]string, len(e.Lines))
	for i, l := range e.Lines {
		msgs[i] = l.Error()
	}
	noun := "lines"
	if len(e.Lines) == 1 {
		noun = "line"
	}
	return fmt.Sprintf("load refused, %d bad %s: %s", len(e.Lines), noun, strings.Join(msgs, "; "))
}

// Load applies text — "set" and "delete" statements, one a line; blank lines and lines starting
// with # are ignored — to c, all or nothing: when any line is bad, c is unchanged and err is a
// *LoadError naming every bad line. warnings lists the deletes that found nothing to delete.
func (c *Config) Load(text string) (warnings []*LineError, err error) {
	o := c.Clone()
	warnings, errs := o.apply(text)
	if len(errs) > 0 {
		return warnings, &LoadError{Lines: errs}
	}
	*c = *o
	return warnings, nil
}

// Apply is Load without the warnings.
func (c *Config) Apply(text string) error {
	_, err := c.Load(text)
	return err
}

// ParseSet returns the configuration that text (as for Load) makes from an empty one, applying
// every good line, and an error (a *LineError) for each bad line.
func ParseSet(text string) (*Config, []error) {
	c := NewConfig()
	_, lerrs := c.apply(text)
	var errs []error
	for _, e := range lerrs {
		errs = append(errs, e)
	}
	return c, errs
}

// apply applies every good line of text to c and returns the warnings and the bad lines.
func (c *Config) apply(text string) (warnings, errs []*LineError) {
	for i, raw := range strings.Split(text, "\n") {
		line := strings.Trim(raw, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(err error) { errs = append(errs, &LineError{Line: i + 1, Text: line, Err: err}) }
		toks, err := Tokenize(line)
		if err != nil {
			bad(fmt.Errorf("%w: %q: %v", ErrSyntax, line, err))
			continue
		}
		switch toks[0] {
		case "set":
			if err := c.Set(toks[1:]); err != nil {
				bad(err)
			}
		case "delete":
			found, err := c.Delete(toks[1:])
			if err != nil {
				bad(err)
			} else if !found {
				warnings = append(warnings, &LineError{Line: i + 1, Text: line, Warning: true, Err: ErrStatementNotFound})
			}
		default:
			bad(fmt.Errorf("%w: unknown command %q in %q: expected set or delete", ErrSyntax, toks[0], line))
		}
	}
	return warnings, errs
}

// Package junosconf is the Junos "set" syntax vflink writes and reads: Quote turns any string into
// one token that cannot end the statement or start another, Tokenize splits a statement into its
// tokens the way the Junos CLI does (double-quoted strings with backslash escapes). The rest of the
// package (tree, schema) is what the device simulator parses loads into.
//
// Written by hand: no Go library parses Junos set syntax.
package junosconf

import (
	"fmt"
	"strings"
)

// bare reports whether s can be written without quotes: Junos prints such words bare in
// `show configuration | display set`, so Quote does too and rendered lines compare equal to what a
// device reads back.
func bare(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_-./:+,@", r):
		default:
			return false
		}
	}
	return true
}

// Quote returns s as one Junos token: bare when it is a plain word, else in double quotes with
// `"` and `\` escaped. Control characters (newline, tab, ...) become spaces: a statement is one
// line and Junos strings carry none of them.
func Quote(s string) string {
	if bare(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Tokenize splits one statement into tokens, unquoting quoted strings. It fails on an unterminated
// string, a quote in the middle of a word, or a newline, naming the position.
func Tokenize(line string) ([]string, error) {
	var toks []string
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\n':
			return nil, fmt.Errorf("newline at column %d: one statement per line", i+1)
		case c == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(line) {
				if line[j] == '\\' && j+1 < len(line) {
					b.WriteByte(line[j+1])
					j += 2
					continue
				}
				if line[j] == '"' {
					closed = true
					j++
					break
				}
				if line[j] == '\n' {
					break
				}
				b.WriteByte(line[j])
				j++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated string starting at column %d", i+1)
			}
			if j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' {
				return nil, fmt.Errorf("text right after the string ending at column %d", j)
			}
			toks = append(toks, b.String())
			i = j
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' && line[j] != '\n' {
				if line[j] == '"' {
					return nil, fmt.Errorf("quote inside a word at column %d", j+1)
				}
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks, nil
}

// Join is the inverse of Tokenize: the tokens as one statement, each quoted as needed.
func Join(toks []string) string {
	q := make([]string, len(toks))
	for i, t := range toks {
		q[i] = Quote(t)
	}
	return strings.Join(q, " ")
}

package junos

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// RPCError is one <rpc-error> of a device's reply (RFC 6241 section 4.3) with severity error.
type RPCError struct {
	Severity string // "error" or "warning"
	Tag      string // error-tag, e.g. "operation-failed", "lock-denied"
	Path     string // error-path, if any
	Element  string // error-info/bad-element, if any
	Message  string // error-message, as the device words it
}

func (e *RPCError) Error() string {
	var b strings.Builder
	msg := e.Message
	if msg == "" {
		msg = e.Tag
	}
	if msg == "" {
		msg = "rpc-error without a message"
	}
	b.WriteString(msg)
	if e.Element != "" {
		fmt.Fprintf(&b, " (element %q)", e.Element)
	}
	if e.Tag != "" && e.Message != "" {
		fmt.Fprintf(&b, " [%s]", e.Tag)
	}
	return b.String()
}

// reply is what the driver needs from an <rpc-reply>.
type reply struct {
	Errors   []*RPCError // rpc-errors with severity error (or none given): the RPC failed
	Warnings []*RPCError // rpc-errors with severity warning: the RPC succeeded
	// ConfigSet is the text of the first <configuration-set>; HasConfigSet says there was one.
	ConfigSet    string
	HasConfigSet bool
	// Revision is the first <commit-revision> (Junos puts one per routing engine).
	Revision string
}

// Err is the reply's failure: its rpc-errors of severity error, joined, or nil.
func (r *reply) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	errs := make([]error, len(r.Errors))
	for i, e := range r.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

type rawRPCError struct {
	Type     string `xml:"error-type"`
	Tag      string `xml:"error-tag"`
	Severity string `xml:"error-severity"`
	Path     string `xml:"error-path"`
	Message  string `xml:"error-message"`
	Info     struct {
		BadElement string `xml:"bad-element"`
	} `xml:"error-info"`
}

type chardata struct {
	Text string `xml:",chardata"`
}

// parseReply reads an <rpc-reply> (without NETCONF framing). Element names are matched by local
// name, so replies with a namespace prefix (Junos' `rfc-compliant` mode writes <nc:rpc-error>)
// read the same.
func parseReply(b []byte) (*reply, error) {
	r := &reply{}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	seenRoot := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("device reply is not well-formed XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !seenRoot {
			seenRoot = true
			if se.Name.Local != "rpc-reply" {
				return nil, fmt.Errorf("device reply is <%s>, want <rpc-reply>", se.Name.Local)
			}
			continue
		}
		switch se.Name.Local {
		case "rpc-error":
			var raw rawRPCError
			if err := d.DecodeElement(&raw, &se); err != nil {
				return nil, fmt.Errorf("device reply: rpc-error: %w", err)
			}
			e := &RPCError{
				Severity: strings.TrimSpace(raw.Severity),
				Tag:      strings.TrimSpace(raw.Tag),
				Path:     strings.TrimSpace(raw.Path),
				Element:  strings.TrimSpace(raw.Info.BadElement),
				Message:  strings.TrimSpace(raw.Message),
			}
			if e.Severity == "warning" {
				r.Warnings = append(r.Warnings, e)
			} else {
				r.Errors = append(r.Errors, e)
			}
		case "configuration-set":
			var c chardata
			if err := d.DecodeElement(&c, &se); err != nil {
				return nil, fmt.Errorf("device reply: configuration-set: %w", err)
			}
			if !r.HasConfigSet {
				r.ConfigSet, r.HasConfigSet = c.Text, true
			}
		case "commit-revision":
			var c chardata
			if err := d.DecodeElement(&c, &se); err != nil {
				return nil, fmt.Errorf("device reply: commit-revision: %w", err)
			}
			if r.Revision == "" {
				r.Revision = strings.TrimSpace(c.Text)
			}
		}
	}
	if !seenRoot {
		return nil, errors.New("device reply is empty, want <rpc-reply>")
	}
	return r, nil
}

package devsim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	nsBase    = "urn:ietf:params:xml:ns:netconf:base:1.0"
	capBase10 = "urn:ietf:params:netconf:base:1.0"
	capBase11 = "urn:ietf:params:netconf:base:1.1"
	nsJunos   = "http://xml.juniper.net/junos/23.4R1/junos"
	maxDepth  = 64
	maxNodes  = 100000
	xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>`
	lineBreak = "\n"
)

// serverCapabilities are announced in the server hello.
var serverCapabilities = []string{
	capBase10,
	capBase11,
	"urn:ietf:params:netconf:capability:candidate:1.0",
	"urn:ietf:params:netconf:capability:confirmed-commit:1.0",
	"urn:ietf:params:netconf:capability:validate:1.0",
	"http://xml.juniper.net/netconf/junos/1.0",
	"http://xml.juniper.net/dmi/system/1.0",
}

// xnode is one element of a parsed message.
type xnode struct {
	name  xml.Name
	attrs []xml.Attr
	kids  []*xnode
	text  []byte // the element's own character data
}

// attr returns the value of the unprefixed attribute local, and whether it is there.
func (n *xnode) attr(local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == n.name.Space) {
			return a.Value, true
		}
	}
	return "", false
}

// kid returns the first child element named local.
func (n *xnode) kid(local string) *xnode {
	for _, k := range n.kids {
		if k.name.Local == local {
			return k
		}
	}
	return nil
}

// parseXML parses one XML document into a tree, refusing more than one root, text outside it,
// and documents nested deeper than maxDepth or larger than maxNodes elements.
func parseXML(b []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var root *xnode
	var stack []*xnode
	nodes := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			nodes++
			if len(stack) >= maxDepth || nodes > maxNodes {
				return nil, fmt.Errorf("document nested deeper than %d or larger than %d elements", maxDepth, maxNodes)
			}
			n := &xnode{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("second root element <%s>", t.Name.Local)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no element")
	}
	return root, nil
}

// rpcError is a NETCONF <rpc-error>.
type rpcError struct {
	Type       string // transport, rpc, protocol, application
	Tag        string // lock-denied, malformed-message, operation-not-supported, ...
	Severity   string // error (default) or warning
	Message    string
	Path       string
	BadElement string
	SessionID  int // for lock-denied: the session that holds the lock
}

func (e *rpcError) Error() string { return e.Tag + ": " + e.Message }

func (e *rpcError) write(b *bytes.Buffer) {
	sev := e.Severity
	if sev == "" {
		sev = "error"
	}
	b.WriteString("<rpc-error>\n")
	if e.Type != "" {
		writeElem(b, "error-type", e.Type)
	}
	if e.Tag != "" {
		writeElem(b, "error-tag", e.Tag)
	}
	writeElem(b, "error-severity", sev)
	if e.Path != "" {
		writeElem(b, "error-path", e.Path)
	}
	writeElem(b, "error-message", e.Message)
	if e.BadElement != "" || e.SessionID != 0 {
		b.WriteString("<error-info>\n")
		if e.BadElement != "" {
			writeElem(b, "bad-element", e.BadElement)
		}
		if e.SessionID != 0 {
			writeElem(b, "session-id", strconv.Itoa(e.SessionID))
		}
		b.WriteString("</error-info>\n")
	}
	b.WriteString("</rpc-error>\n")
}

// writeElem writes <name>text</name> with text escaped; names are constants.
func writeElem(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	escape(b, text)
	b.WriteString("</" + name + ">\n")
}

// escape writes s as XML character data: &, <, > and " are escaped (so no reply can contain a
// framing marker such as "]]>]]>"), tab and newline stay as they are, carriage return is a
// character reference, and what XML cannot carry (other control characters, invalid UTF-8)
// becomes U+FFFD.
func escape(b *bytes.Buffer, s string) { escapeAs(b, s, false) }

// escapeAttr is escape for an attribute value in double quotes: tab and newline are character
// references too, so they survive attribute-value normalization.
func escapeAttr(b *bytes.Buffer, s string) { escapeAs(b, s, true) }

func escapeAs(b *bytes.Buffer, s string, attr bool) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\r':
			b.WriteString("&#xD;")
		case (r == '\n' || r == '\t') && attr:
			fmt.Fprintf(b, "&#x%X;", r)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20, r >= 0xD800 && r < 0xE000, r == 0xFFFE, r == 0xFFFF:
			b.WriteRune(0xFFFD)
		default:
			b.WriteRune(r)
		}
	}
}

// replyStart opens an <rpc-reply> that echoes the request's attributes, message-id first.
func replyStart(b *bytes.Buffer, attrs []xml.Attr) {
	b.WriteString(`<rpc-reply xmlns="` + nsBase + `" xmlns:junos="` + nsJunos + `"`)
	ordered := make([]xml.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Name.Local == "message-id" {
			ordered = append([]xml.Attr{a}, ordered...)
		} else {
			ordered = append(ordered, a)
		}
	}
	for _, a := range ordered {
		if !echoable(a) {
			continue
		}
		b.WriteString(" " + a.Name.Local + `="`)
		escapeAttr(b, a.Value)
		b.WriteString(`"`)
	}
	b.WriteString(">\n")
}

// echoable reports whether an <rpc> attribute is echoed in the reply: plain attributes are;
// namespace declarations (the reply has its own) and prefixed attributes (their prefix is not
// known any more once parsed) are not.
func echoable(a xml.Attr) bool {
	if a.Name.Space != "" || a.Name.Local == "xmlns" || strings.ContainsRune(a.Name.Local, ':') {
		return false
	}
	for _, r := range a.Name.Local {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return a.Name.Local != ""
}

// helloMessage is the server hello for session id.
func helloMessage(id int) []byte {
	var b bytes.Buffer
	b.WriteString(xmlHeader + lineBreak)
	b.WriteString(`<hello xmlns="` + nsBase + `">` + lineBreak + "  <capabilities>" + lineBreak)
	for _, c := range serverCapabilities {
		b.WriteString("    <capability>" + c + "</capability>" + lineBreak)
	}
	b.WriteString("  </capabilities>" + lineBreak)
	b.WriteString("  <session-id>" + strconv.Itoa(id) + "</session-id>" + lineBreak)
	b.WriteString("</hello>" + lineBreak)
	return b.Bytes()
}

// clientHello checks the client's hello and reports whether it offers base:1.1.
func clientHello(msg []byte) (base11 bool, err error) {
	root, err := parseXML(bytes.TrimSpace(msg))
	if err != nil {
		return false, fmt.Errorf("client hello is not XML: %w", err)
	}
	if root.name.Local != "hello" {
		return false, fmt.Errorf("first message is <%s>, want <hello>", root.name.Local)
	}
	caps := root.kid("capabilities")
	if caps == nil {
		return false, fmt.Errorf("client hello has no <capabilities>")
	}
	base10 := false
	for _, c := range caps.kids {
		switch strings.TrimSpace(string(c.text)) {
		case capBase10:
			base10 = true
		case capBase11:
			base11 = true
		}
	}
	if !base10 && !base11 {
		return false, fmt.Errorf("client hello offers neither %s nor %s", capBase10, capBase11)
	}
	if root.kid("session-id") != nil {
		return false, fmt.Errorf("client hello has a <session-id>")
	}
	return base11, nil
}

// request is one parsed <rpc>.
type request struct {
	attrs []xml.Attr // of <rpc>, echoed in the reply
	op    *xnode     // the operation element
}

// parseRPC parses one message as an <rpc> with one operation. The request is returned even with
// an error when the <rpc> element itself was readable, so the error reply can echo message-id.
func parseRPC(msg []byte) (*request, *rpcError) {
	root, err := parseXML(bytes.TrimSpace(msg))
	if err != nil {
		return nil, &rpcError{Type: "rpc", Tag: "malformed-message", Message: "malformed XML: " + err.Error()}
	}
	if root.name.Local != "rpc" {
		return nil, &rpcError{Type: "rpc", Tag: "malformed-message",
			Message: fmt.Sprintf("message is <%s>, want <rpc>", root.name.Local)}
	}
	req := &request{attrs: root.attrs}
	switch len(root.kids) {
	case 1:
		req.op = root.kids[0]
		return req, nil
	case 0:
		return req, &rpcError{Type: "rpc", Tag: "missing-element", Message: "<rpc> has no operation"}
	default:
		return req, &rpcError{Type: "rpc", Tag: "operation-not-supported",
			Message: fmt.Sprintf("<rpc> has %d operations, want one", len(root.kids))}
	}
}

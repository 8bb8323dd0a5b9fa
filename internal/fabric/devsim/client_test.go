package devsim

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The tests talk to devices over real SSH on loopback with this small NETCONF client built on
// x/crypto/ssh and the package's own framing reader.

const (
	testUser = "vflink"
	testPass = "s3cret"
)

// newSim returns a Sim with test credentials, closed when the test ends.
func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = testUser, testPass
	}
	s := New(opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func addDevice(t *testing.T, s *Sim, name string) *Device {
	t.Helper()
	d, err := s.Add(name, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Add(%s): %v", name, err)
	}
	return d
}

type client struct {
	t       *testing.T
	conn    *ssh.Client
	sess    *ssh.Session
	w       io.WriteCloser
	r       *msgReader
	hello   *xnode
	chunked bool
	msgID   int
}

func sshConfig(d *Device, user, pass string) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.Password(pass)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))); got != d.HostKey() {
				return fmt.Errorf("host key %s, want %s", got, d.HostKey())
			}
			return nil
		},
		Timeout: 10 * time.Second,
	}
}

// dial opens a NETCONF session and exchanges hellos; base11 says whether the client offers
// base:1.1.
func dial(t *testing.T, d *Device, base11 bool) *client {
	t.Helper()
	c, err := tryDial(t, d, base11)
	if err != nil {
		t.Fatalf("dial %s: %v", d.Name(), err)
	}
	return c
}

func tryDial(t *testing.T, d *Device, base11 bool) (*client, error) {
	conn, err := ssh.Dial("tcp", d.Addr(), sshConfig(d, testUser, testPass))
	if err != nil {
		return nil, err
	}
	sess, err := conn.NewSession()
	if err != nil {
		conn.Close()
		return nil, err
	}
	w, _ := sess.StdinPipe()
	r, _ := sess.StdoutPipe()
	if err := sess.RequestSubsystem("netconf"); err != nil {
		conn.Close()
		return nil, err
	}
	c := &client{t: t, conn: conn, sess: sess, w: w, r: newMsgReader(r), msgID: 100}
	t.Cleanup(c.close)
	msg, err := c.r.read()
	if err != nil {
		return nil, fmt.Errorf("read server hello: %w", err)
	}
	if c.hello, err = parseXML(bytes.TrimSpace(msg)); err != nil {
		return nil, fmt.Errorf("server hello: %w", err)
	}
	caps := `<capability>urn:ietf:params:netconf:base:1.0</capability>`
	if base11 {
		caps += `<capability>urn:ietf:params:netconf:base:1.1</capability>`
	}
	if _, err := io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>`+caps+`</capabilities></hello>]]>]]>`); err != nil {
		return nil, err
	}
	c.chunked, c.r.chunked = base11, base11
	return c, nil
}

func (c *client) close() {
	c.sess.Close()
	c.conn.Close()
}

// send writes one message framed as the session negotiated.
func (c *client) send(msg string) error {
	_, err := c.w.Write(frame(c.chunked, []byte(msg)))
	return err
}

// rpc sends body in an <rpc> and returns the reply's root element; it fails the test when the
// reply does not come or does not echo the message-id.
func (c *client) rpc(body string) *xnode {
	c.t.Helper()
	reply, err := c.tryRPC(body)
	if err != nil {
		c.t.Fatalf("rpc %s: %v", body, err)
	}
	return reply
}

func (c *client) tryRPC(body string) (*xnode, error) {
	c.msgID++
	id := fmt.Sprint(c.msgID)
	if err := c.send(`<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="` + id + `">` + body + `</rpc>`); err != nil {
		return nil, err
	}
	msg, err := c.r.read()
	if err != nil {
		return nil, err
	}
	reply, err := parseXML(bytes.TrimSpace(msg))
	if err != nil {
		return nil, fmt.Errorf("reply %q: %w", msg, err)
	}
	if got, _ := reply.attr("message-id"); reply.name.Local != "rpc-reply" || got != id {
		return nil, fmt.Errorf("reply <%s message-id=%q>, want <rpc-reply message-id=%q>", reply.name.Local, got, id)
	}
	return reply, nil
}

// find returns every element named local below n, depth first.
func find(n *xnode, local string) []*xnode {
	var out []*xnode
	for _, k := range n.kids {
		if k.name.Local == local {
			out = append(out, k)
		}
		out = append(out, find(k, local)...)
	}
	return out
}

// text returns the trimmed text of the first element named local below n.
func text(n *xnode, local string) string {
	if f := find(n, local); len(f) > 0 {
		return strings.TrimSpace(string(f[0].text))
	}
	return ""
}

// errs returns the rpc-errors of a reply with the given severity.
func errs(n *xnode, severity string) []*xnode {
	var out []*xnode
	for _, e := range find(n, "rpc-error") {
		if text(e, "error-severity") == severity {
			out = append(out, e)
		}
	}
	return out
}

// mustOK fails the test unless the reply has no error.
func mustOK(t *testing.T, what string, reply *xnode) {
	t.Helper()
	if e := errs(reply, "error"); len(e) > 0 {
		t.Fatalf("%s: rpc-error %s", what, text(e[0], "error-message"))
	}
}

// load loads set lines with action="set".
func (c *client) load(lines string) *xnode {
	c.t.Helper()
	return c.rpc(`<load-configuration action="set" format="text"><configuration-set>` + xmlEscape(lines) + `</configuration-set></load-configuration>`)
}

func (c *client) commit(extra string) *xnode {
	c.t.Helper()
	return c.rpc(`<commit-configuration>` + extra + `</commit-configuration>`)
}

// config returns the lines of database (committed or candidate) read over NETCONF.
func (c *client) config(database string) []string {
	c.t.Helper()
	reply := c.rpc(`<get-configuration format="set" database="` + database + `"/>`)
	mustOK(c.t, "get-configuration", reply)
	set := find(reply, "configuration-set")
	if len(set) != 1 {
		c.t.Fatalf("get-configuration reply has %d <configuration-set>, want 1", len(set))
	}
	var lines []string
	for _, l := range strings.Split(string(set[0].text), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// eventually waits for cond, failing the test after a generous deadline: it waits for a state,
// it does not time anything.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// xmlEscape returns s escaped as XML character data.
func xmlEscape(s string) string {
	var b bytes.Buffer
	escape(&b, s)
	return b.String()
}

package devsim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/vflink/vflink/internal/fabric/junosconf"
)

func TestHelloAndFraming(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	for _, base11 := range []bool{false, true} {
		t.Run(fmt.Sprintf("base11=%v", base11), func(t *testing.T) {
			c := dial(t, d, base11)
			var caps []string
			for _, k := range find(c.hello, "capability") {
				caps = append(caps, strings.TrimSpace(string(k.text)))
			}
			for _, want := range []string{capBase10, capBase11, "urn:ietf:params:netconf:capability:candidate:1.0",
				"urn:ietf:params:netconf:capability:confirmed-commit:1.0", "http://xml.juniper.net/netconf/junos/1.0"} {
				if !slices.Contains(caps, want) {
					t.Errorf("server hello capabilities %q lack %s", caps, want)
				}
			}
			if id := text(c.hello, "session-id"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(id) {
				t.Errorf("server hello session-id %q, want a positive number", id)
			}

			// The reply's framing, read raw: chunked only when both sides said base:1.1.
			c.msgID++
			if err := c.send(`<rpc message-id="` + fmt.Sprint(c.msgID) + `" xmlns="` + nsBase + `" xmlns:x="urn:x" x:foo="1" tag="a&amp;b"><get-configuration format="set"/></rpc>`); err != nil {
				t.Fatal(err)
			}
			raw, err := c.r.r.Peek(2)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(raw) == "\n#"; got != base11 {
				t.Errorf("reply starts with %q: chunked = %v, want %v", raw, got, base11)
			}
			// The reader is strict: it reads the reply only when it is framed as negotiated.
			msg, err := c.r.read()
			if err != nil {
				t.Fatalf("read reply: %v", err)
			}
			if !bytes.Contains(msg, []byte(`message-id="`+fmt.Sprint(c.msgID)+`"`)) || !bytes.Contains(msg, []byte(`tag="a&amp;b"`)) {
				t.Errorf("reply %s does not echo message-id and the other rpc attributes", msg)
			}
			// And rpcs go on working in the negotiated framing.
			mustOK(t, "load", c.load("set vlans bd-7 vlan-id 7"))
			if diff := cmp.Diff([]string{"set vlans bd-7 vlan-id 7"}, c.config("candidate")); diff != "" {
				t.Errorf("candidate (-want +got):\n%s", diff)
			}
			mustOK(t, "discard", c.rpc(`<discard-changes/>`))
		})
	}
}

func TestCloseSession(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	eventually(t, "the session to be counted", func() bool { return d.Sessions() == 1 })
	reply := c.rpc(`<close-session/>`)
	if len(find(reply, "ok")) != 1 {
		t.Errorf("close-session reply has no <ok/>")
	}
	if _, err := c.r.read(); !errors.Is(err, io.EOF) {
		t.Errorf("after close-session: read %v, want EOF", err)
	}
	eventually(t, "the session to end", func() bool { return d.Sessions() == 0 })
}

// TestRawSSH checks what the SSH server refuses: a wrong password, channels other than session,
// and channel requests other than the netconf subsystem.
func TestRawSSH(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	if _, err := ssh.Dial("tcp", d.Addr(), sshConfig(d, testUser, "wrong")); err == nil {
		t.Errorf("dial with a wrong password succeeded")
	}
	if _, err := ssh.Dial("tcp", d.Addr(), sshConfig(d, "root", testPass)); err == nil {
		t.Errorf("dial with a wrong user succeeded")
	}
	conn, err := ssh.Dial("tcp", d.Addr(), sshConfig(d, testUser, testPass))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := conn.OpenChannel("direct-tcpip", nil); err == nil {
		t.Errorf("a direct-tcpip channel was accepted")
	} else if oce := (*ssh.OpenChannelError)(nil); !errors.As(err, &oce) || oce.Reason != ssh.UnknownChannelType {
		t.Errorf("direct-tcpip: %v, want an unknown channel type rejection", err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Errorf("pty-req was accepted")
	}
	if err := sess.Shell(); err == nil {
		t.Errorf("shell was accepted")
	}
	if err := sess.Start("show configuration"); err == nil {
		t.Errorf("exec was accepted")
	}
	if err := sess.RequestSubsystem("sftp"); err == nil {
		t.Errorf("subsystem sftp was accepted")
	}
	if d.Sessions() != 0 {
		t.Errorf("Sessions() = %d, want 0 without a netconf subsystem", d.Sessions())
	}
	// The same channel can still start netconf after the refusals.
	r, _ := sess.StdoutPipe()
	if err := sess.RequestSubsystem("netconf"); err != nil {
		t.Fatalf("netconf after refusals: %v", err)
	}
	msg, err := newMsgReader(r).read()
	if err != nil || !bytes.Contains(msg, []byte("<hello")) {
		t.Fatalf("server hello: %q, %v", msg, err)
	}
	// A client that sends something other than a hello is disconnected.
	w, _ := sess.StdinPipe()
	io.WriteString(w, `<rpc message-id="1"><get-configuration/></rpc>]]>]]>`)
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("read after a bad hello: %v", err)
	}
	eventually(t, "the session to end", func() bool { return d.Sessions() == 0 })
}

func TestLockContention(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	a, b := dial(t, d, true), dial(t, d, false)
	aID := text(a.hello, "session-id")

	mustOK(t, "lock a", a.rpc(`<lock><target><candidate/></target></lock>`))
	for _, tc := range []struct {
		name, body string
	}{
		{"lock", `<lock><target><candidate/></target></lock>`},
		{"unlock", `<unlock><target><candidate/></target></unlock>`},
		{"load", `<load-configuration action="set" format="text"><configuration-set>set vlans bd-9 vlan-id 9</configuration-set></load-configuration>`},
		{"commit", `<commit-configuration/>`},
		{"discard", `<discard-changes/>`},
	} {
		reply := b.rpc(tc.body)
		e := errs(reply, "error")
		if len(e) != 1 || text(e[0], "error-tag") != "lock-denied" || text(e[0], "session-id") != aID ||
			!strings.Contains(text(e[0], "error-message"), "configuration database locked by session "+aID) {
			t.Errorf("%s while a holds the lock: got errors %v, want one lock-denied naming session %s", tc.name, errorMessages(reply), aID)
		}
	}
	mustOK(t, "load a", a.load("set vlans bd-7 vlan-id 7"))
	mustOK(t, "commit a", a.commit(""))
	mustOK(t, "load a again", a.load("set vlans bd-8 vlan-id 8"))
	if got := d.Candidate(); !slices.Contains(got, "set vlans bd-8 vlan-id 8") {
		t.Fatalf("candidate %q lacks a's load", got)
	}

	// a goes away holding the lock: the lock is released and its uncommitted change discarded.
	a.close()
	eventually(t, "a's session to end", func() bool { return d.Sessions() == 1 })
	if diff := cmp.Diff([]string{"set vlans bd-7 vlan-id 7"}, d.Candidate()); diff != "" {
		t.Errorf("candidate after a left (-want +got):\n%s", diff)
	}
	mustOK(t, "lock b", b.rpc(`<lock><target><candidate/></target></lock>`))
	mustOK(t, "unlock b", b.rpc(`<unlock><target><candidate/></target></unlock>`))
	if e := errs(b.rpc(`<unlock><target><candidate/></target></unlock>`), "error"); len(e) != 1 || text(e[0], "error-tag") != "operation-failed" {
		t.Errorf("unlock without the lock: want operation-failed, got %d errors", len(e))
	}
	if e := errs(b.rpc(`<lock><target><running/></target></lock>`), "error"); len(e) != 1 || text(e[0], "error-tag") != "invalid-value" {
		t.Errorf("lock of running: want invalid-value")
	}
}

func errorMessages(reply *xnode) []string {
	var out []string
	for _, e := range find(reply, "rpc-error") {
		out = append(out, text(e, "error-severity")+": "+text(e, "error-message"))
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	mustOK(t, "load", c.load("set vlans bd-7 vlan-id 7"))

	reply := c.load("set vlans bd-8 vlan-id 8\nset interfaces xe-0/0/3 mtux 9192\nset vlans bd-9 vlan-id nine")
	e := errs(reply, "error")
	if len(e) != 2 || len(find(reply, "load-configuration-results")) != 1 {
		t.Fatalf("got errors %q, want 2 inside <load-configuration-results>", errorMessages(reply))
	}
	if got, want := text(e[0], "error-message"), `line 2: syntax error: "mtux" in "interfaces xe-0/0/3 mtux 9192": expected one of description, mtu,`; !strings.HasPrefix(got, want) {
		t.Errorf("error message %q, want it to start with %q", got, want)
	}
	if got := text(e[0], "bad-element"); got != "mtux" {
		t.Errorf("bad-element %q, want mtux", got)
	}
	if got := text(e[1], "error-message"); !strings.HasPrefix(got, `line 3: syntax error: "nine"`) {
		t.Errorf("second error %q, want it about line 3", got)
	}
	if got := text(reply, "load-error-count"); got != "2" {
		t.Errorf("load-error-count %q, want 2", got)
	}
	if diff := cmp.Diff([]string{"set vlans bd-7 vlan-id 7"}, d.Candidate()); diff != "" {
		t.Errorf("a refused load changed the candidate (-want +got):\n%s", diff)
	}

	// A delete of what is not there is a warning; the load succeeds.
	reply = c.load("delete vlans bd-99\nset vlans bd-8 vlan-id 8")
	w := errs(reply, "warning")
	if len(errs(reply, "error")) != 0 || len(w) != 1 || text(w[0], "error-message") != "statement not found" ||
		!strings.Contains(text(w[0], "error-path"), "line 1: delete vlans bd-99") || len(find(reply, "ok")) != 1 {
		t.Errorf("got %q, want one warning 'statement not found' for line 1 and <ok/>", errorMessages(reply))
	}

	// merge and replace take set lines in configuration-text; replace replaces the candidate.
	mustOK(t, "merge", c.rpc(`<load-configuration action="merge" format="text"><configuration-text>set vlans bd-10 vlan-id 10</configuration-text></load-configuration>`))
	mustOK(t, "replace", c.rpc(`<load-configuration action="replace" format="text"><configuration-text>set vlans bd-11 vlan-id 11
set vlans bd-12 vlan-id 12</configuration-text></load-configuration>`))
	if diff := cmp.Diff([]string{"set vlans bd-11 vlan-id 11", "set vlans bd-12 vlan-id 12"}, d.Candidate()); diff != "" {
		t.Errorf("candidate after replace (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name, body, tag, msg string
	}{
		{"unknown rpc", `<get-frobs/>`, "operation-not-supported", "rpc <get-frobs> is not supported"},
		{"xml format", `<load-configuration format="xml"><configuration/></load-configuration>`, "operation-not-supported", `format="xml" is not supported`},
		{"set in configuration-text", `<load-configuration action="set"><configuration-text>set vlans bd-1 vlan-id 1</configuration-text></load-configuration>`, "missing-element", "takes one <configuration-set>"},
		{"update action", `<load-configuration action="update" format="text"><configuration-text/></load-configuration>`, "operation-not-supported", `action="update"`},
		{"filter", `<get-configuration format="set"><configuration><interfaces/></configuration></get-configuration>`, "operation-not-supported", "filters are not supported"},
		{"xml get", `<get-configuration/>`, "operation-not-supported", `format="" is not supported`},
		{"bad database", `<get-configuration format="set" database="running"/>`, "invalid-value", `database="running"`},
		{"bad confirm-timeout", `<commit-configuration><confirmed/><confirm-timeout>0</confirm-timeout></commit-configuration>`, "invalid-value", "confirm-timeout"},
		{"unknown commit option", `<commit-configuration><at-time>now</at-time></commit-configuration>`, "unknown-element", "<at-time> is not supported"},
		{"two operations", `<discard-changes/><discard-changes/>`, "operation-not-supported", "2 operations"},
	} {
		reply := c.rpc(tc.body)
		e := errs(reply, "error")
		if len(e) != 1 || text(e[0], "error-tag") != tc.tag || !strings.Contains(text(e[0], "error-message"), tc.msg) {
			t.Errorf("%s: got %q, want one %s error containing %q", tc.name, errorMessages(reply), tc.tag, tc.msg)
		}
	}

	// Malformed XML is answered with malformed-message, and the session goes on.
	if err := c.send(`<rpc message-id="7"><lock></rpc>`); err != nil {
		t.Fatal(err)
	}
	msg, err := c.r.read()
	if err != nil || !bytes.Contains(msg, []byte("<error-tag>malformed-message</error-tag>")) {
		t.Errorf("malformed XML: reply %q, %v; want malformed-message", msg, err)
	}
	mustOK(t, "after malformed", c.rpc(`<discard-changes/>`))
}

func TestCommitAndReadback(t *testing.T) {
	var mu sync.Mutex
	var seen [][]string
	s := newSim(t, Options{OnCommit: func(dev string, committed []string) {
		mu.Lock()
		defer mu.Unlock()
		if dev == "leaf1" {
			seen = append(seen, committed)
		}
	}})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	lines := []string{
		"set apply-groups __vflink_access__",
		"set groups __vflink_access__ interfaces xe-0/0/3 mtu 9192",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-7",
		`set groups __vflink_access__ vlans bd-7 description "net red"`,
		"set groups __vflink_access__ vlans bd-7 vlan-id 12",
	}
	mustOK(t, "load", c.load(strings.Join(lines, "\n")))
	if got := c.config("committed"); len(got) != 0 {
		t.Errorf("committed before commit: %q, want nothing", got)
	}
	if e := errs(c.commit("<check/>"), "error"); len(e) != 0 || d.Commits() != 0 {
		t.Errorf("commit check: %d errors, %d commits; want it to pass without committing", len(e), d.Commits())
	}
	reply := c.commit("<log>first push</log>")
	mustOK(t, "commit", reply)
	if len(find(reply, "commit-success")) != 1 || text(reply, "name") != "re0" {
		t.Errorf("commit reply lacks routing-engine re0 / commit-success: %v", reply)
	}
	if rev := text(reply, "commit-revision"); !regexp.MustCompile(`^re0-[0-9]+-1$`).MatchString(rev) {
		t.Errorf("commit-revision %q, want re0-<unix>-1", rev)
	}
	for _, db := range []string{"committed", "candidate"} {
		if diff := cmp.Diff(lines, c.config(db)); diff != "" {
			t.Errorf("%s over NETCONF (-want +got):\n%s", db, diff)
		}
	}
	if diff := cmp.Diff(lines, d.Committed()); diff != "" {
		t.Errorf("Committed() (-want +got):\n%s", diff)
	}
	h := d.History()
	if len(h) != 1 || h[0].Revision != 1 || h[0].Comment != "first push" || h[0].By != "netconf" || h[0].Confirmed || h[0].Rollback {
		t.Errorf("History() = %+v, want one netconf commit with comment 'first push'", h)
	}
	mu.Lock()
	if len(seen) != 1 || !slices.Equal(seen[0], lines) {
		t.Errorf("OnCommit saw %q, want one call with the committed lines", seen)
	}
	mu.Unlock()

	// A port the leaf does not have fails the commit.
	mustOK(t, "load", c.load("set interfaces xe-0/0/99 mtu 9192"))
	e := errs(c.commit(""), "error")
	if len(e) != 1 || !strings.Contains(text(e[0], "error-message"), "interfaces xe-0/0/99: no such port on leaf1") {
		t.Errorf("commit with an unknown port: %d errors, want one naming xe-0/0/99", len(e))
	}
	if d.Commits() != 1 {
		t.Errorf("Commits() = %d after a failed commit, want 1", d.Commits())
	}
	mustOK(t, "discard", c.rpc("<discard-changes/>"))
	if diff := cmp.Diff(lines, d.Candidate()); diff != "" {
		t.Errorf("candidate after discard (-want +got):\n%s", diff)
	}
}

func TestInjectionStaysADescription(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	mustOK(t, "load base", c.load("set interfaces xe-0/0/1 mtu 9192"))
	desc := `x"; delete interfaces; set system host-name pwned`
	line := "set " + junosconf.Join([]string{"interfaces", "xe-0/0/2", "description", desc})
	mustOK(t, "load", c.load(line))
	mustOK(t, "commit", c.commit(""))
	want := []string{"set interfaces xe-0/0/1 mtu 9192", line}
	if diff := cmp.Diff(want, c.config("committed")); diff != "" {
		t.Errorf("committed (-want +got):\n%s", diff)
	}
	cfg, errs := junosconf.ParseSet(strings.Join(d.Committed(), "\n"))
	if len(errs) > 0 || !slices.ContainsFunc(cfg.Statements(), func(st []string) bool {
		return slices.Equal(st, []string{"interfaces", "xe-0/0/2", "description", desc})
	}) {
		t.Errorf("the description did not come back as one value: %q %v", d.Committed(), errs)
	}
}

func TestConfirmedCommit(t *testing.T) {
	var mu sync.Mutex
	var seen [][]string
	s := newSim(t, Options{ConfirmUnit: 5 * time.Millisecond, OnCommit: func(_ string, c []string) {
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
	}})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	base := []string{"set vlans bd-7 vlan-id 7"}
	mustOK(t, "load", c.load(base[0]))
	mustOK(t, "commit", c.commit(""))

	t.Run("rolled back after the timeout", func(t *testing.T) {
		mustOK(t, "load", c.load("set vlans bd-8 vlan-id 8"))
		mustOK(t, "confirmed", c.commit("<confirmed/><confirm-timeout>1</confirm-timeout>"))
		eventually(t, "the rollback", func() bool { return slices.Equal(d.Committed(), base) })
		h := d.History()
		last := h[len(h)-1]
		if !last.Rollback || last.By != "rollback" || !slices.Equal(last.Lines, base) || !h[len(h)-2].Confirmed {
			t.Errorf("history ends with %+v after %+v, want a rollback to the base after a confirmed commit", last, h[len(h)-2])
		}
		if d.Commits() != 2 {
			t.Errorf("Commits() = %d, want 2 (rollbacks do not count)", d.Commits())
		}
		if diff := cmp.Diff(base, d.Candidate()); diff != "" {
			t.Errorf("candidate after the rollback (-want +got):\n%s", diff)
		}
		mu.Lock()
		if got := seen[len(seen)-1]; !slices.Equal(got, base) {
			t.Errorf("OnCommit last saw %q, want the rolled-back configuration", got)
		}
		mu.Unlock()
	})

	t.Run("confirmed by a plain commit", func(t *testing.T) {
		mustOK(t, "load", c.load("set vlans bd-8 vlan-id 8"))
		mustOK(t, "confirmed", c.commit("<confirmed/><confirm-timeout>65535</confirm-timeout>"))
		d.mu.Lock()
		armed := d.pending != nil
		d.mu.Unlock()
		if !armed {
			t.Fatalf("no rollback armed after a confirmed commit")
		}
		mustOK(t, "confirm", c.commit(""))
		d.mu.Lock()
		armed = d.pending != nil
		d.mu.Unlock()
		if armed {
			t.Errorf("a plain commit did not confirm the pending one")
		}
	})

	t.Run("confirmed then confirmed", func(t *testing.T) {
		before := d.Committed()
		mustOK(t, "load", c.load("set vlans bd-9 vlan-id 9"))
		mustOK(t, "confirmed 1", c.commit("<confirmed/><confirm-timeout>65535</confirm-timeout>"))
		first := d.Committed()
		mustOK(t, "load", c.load("set vlans bd-10 vlan-id 10"))
		mustOK(t, "confirmed 2", c.commit("<confirmed/><confirm-timeout>1</confirm-timeout>"))
		eventually(t, "the second commit's rollback", func() bool { return slices.Equal(d.Committed(), first) })
		if slices.Equal(first, before) {
			t.Fatalf("test setup: the first confirmed commit changed nothing")
		}
		d.mu.Lock()
		armed := d.pending != nil
		d.mu.Unlock()
		if armed {
			t.Errorf("a rollback is still armed: the second confirmed commit should have confirmed the first")
		}
	})

	t.Run("Exec confirms too", func(t *testing.T) {
		mustOK(t, "load", c.load("set vlans bd-11 vlan-id 11"))
		mustOK(t, "confirmed", c.commit("<confirmed/><confirm-timeout>65535</confirm-timeout>"))
		if err := d.Exec("set vlans bd-12 vlan-id 12"); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		armed := d.pending != nil
		d.mu.Unlock()
		if armed {
			t.Errorf("Exec did not confirm the pending commit")
		}
	})
}

func TestFaults(t *testing.T) {
	s := newSim(t, Options{ConfirmUnit: 5 * time.Millisecond})
	d := addDevice(t, s, "leaf1")

	t.Run("Refuse", func(t *testing.T) {
		d.SetFault(Fault{Refuse: true})
		if _, err := tryDial(t, d, true); err == nil {
			t.Errorf("dial succeeded while the device refuses connections")
		}
		d.SetFault(Fault{})
		dial(t, d, true)
	})

	t.Run("FailCommit", func(t *testing.T) {
		c := dial(t, d, true)
		d.SetFault(Fault{FailCommit: "commit failed: simulated FPC error"})
		mustOK(t, "load", c.load("set vlans bd-7 vlan-id 7"))
		reply := c.commit("")
		e := errs(reply, "error")
		if len(e) != 1 || text(e[0], "error-message") != "commit failed: simulated FPC error" || len(find(reply, "commit-results")) != 1 {
			t.Errorf("got %q, want the fault's message in <commit-results>", errorMessages(reply))
		}
		if len(d.Committed()) != 0 {
			t.Errorf("a failed commit committed %q", d.Committed())
		}
		d.SetFault(Fault{})
		mustOK(t, "commit", c.commit(""))
	})

	t.Run("HangCommit released by clearing the fault", func(t *testing.T) {
		c := dial(t, d, true)
		d.SetFault(Fault{HangCommit: true})
		mustOK(t, "load", c.load("set vlans bd-8 vlan-id 8"))
		done := make(chan *xnode)
		go func() {
			r, _ := c.tryRPC("<commit-configuration/>")
			done <- r
		}()
		eventually(t, "the commit to hang", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.hanging == 1 })
		if n := d.Commits(); n != 1 {
			t.Errorf("Commits() = %d while the commit hangs, want 1", n)
		}
		d.SetFault(Fault{})
		reply := <-done
		if reply == nil || len(find(reply, "commit-success")) != 1 || d.Commits() != 2 {
			t.Errorf("after the fault cleared: reply %v, %d commits; want success and 2", reply, d.Commits())
		}
	})

	t.Run("HangCommit released by the session ending", func(t *testing.T) {
		c := dial(t, d, true)
		d.SetFault(Fault{HangCommit: true})
		defer d.SetFault(Fault{})
		done := make(chan error)
		go func() {
			_, err := c.tryRPC("<commit-configuration/>")
			done <- err
		}()
		eventually(t, "the commit to hang", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.hanging == 1 })
		c.close()
		if err := <-done; err == nil {
			t.Errorf("the hanging commit answered after the client closed")
		}
		eventually(t, "the hang to end", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.hanging == 0 })
	})

	t.Run("DropAfterConfirmed", func(t *testing.T) {
		c := dial(t, d, true)
		before := d.Committed()
		d.SetFault(Fault{DropAfterConfirmed: true})
		defer d.SetFault(Fault{})
		mustOK(t, "load", c.load("set vlans bd-9 vlan-id 9"))
		mustOK(t, "confirmed", c.commit("<confirmed/><confirm-timeout>1</confirm-timeout>"))
		if _, err := c.tryRPC("<commit-configuration/>"); err == nil {
			t.Fatalf("the confirming commit went through; want the connection dropped")
		}
		eventually(t, "the rollback", func() bool { return slices.Equal(d.Committed(), before) })
	})
}

func TestHangCommitReleasedOnClose(t *testing.T) {
	s := New(Options{Username: testUser, Password: testPass})
	d := addDevice(t, s, "leaf1")
	c := dial(t, d, true)
	d.SetFault(Fault{HangCommit: true})
	done := make(chan error)
	go func() {
		_, err := c.tryRPC("<commit-configuration/>")
		done <- err
	}()
	eventually(t, "the commit to hang", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.hanging == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Errorf("the hanging commit answered after Close")
	}
	if d.hanging != 0 {
		t.Errorf("%d commits still hanging after Close", d.hanging)
	}
}

func TestStopStart(t *testing.T) {
	s := newSim(t, Options{})
	d := addDevice(t, s, "leaf1")
	addr := d.Addr()
	c := dial(t, d, true)
	mustOK(t, "load", c.load("set vlans bd-7 vlan-id 7"))
	mustOK(t, "commit", c.commit(""))
	mustOK(t, "lock", c.rpc(`<lock><target><candidate/></target></lock>`))
	mustOK(t, "load", c.load("set vlans bd-8 vlan-id 8"))

	d.Stop()
	if d.Sessions() != 0 {
		t.Errorf("Sessions() = %d after Stop, want 0", d.Sessions())
	}
	if _, err := c.tryRPC("<discard-changes/>"); err == nil {
		t.Errorf("an rpc went through on a stopped device")
	}
	if _, err := tryDial(t, d, true); err == nil {
		t.Errorf("dial succeeded on a stopped device")
	}
	d.Stop() // twice is fine
	if err := d.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := d.Start(); err == nil {
		t.Errorf("Start of a running device succeeded")
	}
	if d.Addr() != addr {
		t.Errorf("Addr() = %s after Start, want %s", d.Addr(), addr)
	}
	c2 := dial(t, d, true)
	want := []string{"set vlans bd-7 vlan-id 7"}
	if diff := cmp.Diff(want, c2.config("committed")); diff != "" {
		t.Errorf("committed after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, c2.config("candidate")); diff != "" {
		t.Errorf("candidate after restart: the locked session's changes should be gone (-want +got):\n%s", diff)
	}
	mustOK(t, "lock after restart", c2.rpc(`<lock><target><candidate/></target></lock>`))
}

func TestExec(t *testing.T) {
	var calls int
	s := newSim(t, Options{OnCommit: func(string, []string) { calls++ }})
	d := addDevice(t, s, "leaf1")
	if err := d.Exec("set groups __vflink_access__ vlans bd-7 vlan-id 7\nset apply-groups __vflink_access__"); err != nil {
		t.Fatal(err)
	}
	if err := d.Exec("delete groups __vflink_access__ vlans bd-7\nset vlans bd-7 vlan-id 70"); err != nil {
		t.Fatal(err)
	}
	want := []string{"set apply-groups __vflink_access__", "set vlans bd-7 vlan-id 70"}
	if diff := cmp.Diff(want, d.Committed()); diff != "" {
		t.Errorf("Committed() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, d.Candidate()); diff != "" {
		t.Errorf("Candidate() (-want +got):\n%s", diff)
	}
	if d.Commits() != 2 || calls != 2 || d.History()[1].By != "exec" {
		t.Errorf("Commits() = %d, OnCommit calls %d, want 2 exec commits", d.Commits(), calls)
	}
	err := d.Exec("set vlans bd-8 vlan-id 8\nset vlans bd-8 vlan-idd 8")
	if err == nil || !strings.Contains(err.Error(), "line 2: syntax error") {
		t.Errorf("Exec with a bad line: %v, want a syntax error naming line 2", err)
	}
	if err := d.Exec("set interfaces xe-0/0/48 mtu 1500"); err == nil || !strings.Contains(err.Error(), "no such port") {
		t.Errorf("Exec with an unknown port: %v, want 'no such port'", err)
	}
	if diff := cmp.Diff(want, d.Committed()); diff != "" {
		t.Errorf("refused Exec changed the config (-want +got):\n%s", diff)
	}

	// With uncommitted changes in the candidate, Exec applies its lines there too.
	c := dial(t, d, true)
	mustOK(t, "load", c.load("set vlans bd-9 vlan-id 9"))
	if err := d.Exec("set vlans bd-10 vlan-id 10"); err != nil {
		t.Fatal(err)
	}
	if got := d.Candidate(); !slices.Contains(got, "set vlans bd-9 vlan-id 9") || !slices.Contains(got, "set vlans bd-10 vlan-id 10") {
		t.Errorf("candidate %q, want both the pending change and the Exec", got)
	}
}

func TestAddErrors(t *testing.T) {
	s := newSim(t, Options{})
	addDevice(t, s, "leaf1")
	if _, err := s.Add("leaf1", "127.0.0.1:0"); err == nil {
		t.Errorf("a second leaf1 was added")
	}
	if _, err := s.Add("", "127.0.0.1:0"); err == nil {
		t.Errorf("a device without a name was added")
	}
	if _, err := s.Add("leaf2", "127.0.0.1:99999"); err == nil {
		t.Errorf("a device on port 99999 was added")
	}
	if got := len(s.Devices()); got != 1 || s.Device("leaf1") == nil || s.Device("leaf2") != nil {
		t.Errorf("Devices() has %d devices, want only leaf1", got)
	}
}

// TestManyDevicesConcurrently runs several devices with several sessions each, all pushing at once
// the way the driver does (lock, load, commit, unlock; retry when the lock is taken).
func TestManyDevicesConcurrently(t *testing.T) {
	s := newSim(t, Options{})
	const devices, clients, pushes = 4, 3, 3
	var wg sync.WaitGroup
	for i := range devices {
		d := addDevice(t, s, fmt.Sprintf("leaf%d", i+1))
		for j := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := tryDial(t, d, j%2 == 0)
				if err != nil {
					t.Errorf("dial: %v", err)
					return
				}
				for k := 0; k < pushes; {
					r, err := c.tryRPC(`<lock><target><candidate/></target></lock>`)
					if err != nil {
						t.Errorf("lock: %v", err)
						return
					}
					if len(errs(r, "error")) > 0 {
						time.Sleep(time.Millisecond)
						continue
					}
					line := fmt.Sprintf("set vlans bd-%d-%d vlan-id %d", j, k, k+1)
					var b bytes.Buffer
					escape(&b, line)
					for _, body := range []string{
						`<load-configuration action="set" format="text"><configuration-set>` + b.String() + `</configuration-set></load-configuration>`,
						`<commit-configuration/>`,
						`<unlock><target><candidate/></target></unlock>`,
					} {
						r, err := c.tryRPC(body)
						if err != nil || len(errs(r, "error")) > 0 {
							t.Errorf("%s: %v %q", body, err, errorMessages(r))
							return
						}
					}
					k++
				}
			}()
		}
	}
	wg.Wait()
	for _, d := range s.Devices() {
		if d.Commits() != clients*pushes || len(d.Committed()) != clients*pushes {
			t.Errorf("%s: %d commits, %d lines; want %d each", d.Name(), d.Commits(), len(d.Committed()), clients*pushes)
		}
	}
}

func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestHostKeyGiven(t *testing.T) {
	s := newSim(t, Options{})
	d1 := addDevice(t, s, "leaf1")
	d2 := addDevice(t, s, "leaf2")
	if d1.HostKey() == d2.HostKey() || !strings.HasPrefix(d1.HostKey(), "ssh-ed25519 ") {
		t.Errorf("host keys %q and %q: want two different ssh-ed25519 keys", d1.HostKey(), d2.HostKey())
	}
	key := testKey(t)
	d3, err := s.Add("leaf3", "127.0.0.1:0", WithHostKey(key))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(key.Public())
	if want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))); d3.HostKey() != want {
		t.Errorf("HostKey() = %s, want the given key %s", d3.HostKey(), want)
	}
	dial(t, d3, true) // the client checks the host key against HostKey()
}

package devsim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// handshakeTimeout bounds the SSH handshake and authentication of a connection.
const handshakeTimeout = 10 * time.Second

// handleConn runs one SSH connection: sessions channels only, each may start the netconf
// subsystem.
func (d *Device) handleConn(c net.Conn) {
	defer d.connWG.Done()
	defer func() {
		_ = c.Close()
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, d.sshConf)
	if err != nil {
		d.log.Debug("ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	_ = c.SetDeadline(time.Time{})
	d.log.Debug("ssh connection", "remote", c.RemoteAddr().String(), "user", sc.User())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, fmt.Sprintf("channel type %q is not supported: open a session and start the netconf subsystem", nc.ChannelType()))
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			d.log.Debug("accept channel", "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.handleChannel(sc, ch, creqs)
		}()
	}
	_ = sc.Close()
	wg.Wait()
}

// handleChannel serves the requests of one session channel: "subsystem netconf" starts a NETCONF
// session; every other request (pty, shell, exec, env, other subsystems) is refused.
func (d *Device) handleChannel(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	done := make(chan struct{})
	var sess *session
	var wg sync.WaitGroup
	for req := range reqs {
		if req.Type == "subsystem" && sess == nil && subsystemName(req.Payload) == "netconf" {
			sess = d.newSession(sc, ch, done)
			if sess == nil { // device closing
				_ = req.Reply(false, nil)
				break
			}
			_ = req.Reply(true, nil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				sess.run()
				_ = ch.Close()
			}()
			continue
		}
		d.log.Debug("channel request refused", "type", req.Type)
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
	close(done)
	_ = ch.Close()
	wg.Wait()
	if sess != nil {
		d.endSession(sess)
	}
}

// subsystemName decodes the payload of a subsystem request (one SSH string).
func subsystemName(p []byte) string {
	var m struct{ Name string }
	if err := ssh.Unmarshal(p, &m); err != nil {
		return ""
	}
	return m.Name
}

// session is one NETCONF session.
type session struct {
	id   int
	dev  *Device
	conn *ssh.ServerConn
	ch   ssh.Channel
	done <-chan struct{} // closed when the channel has ended
	log  *slog.Logger

	chunked bool
}

func (d *Device) newSession(sc *ssh.ServerConn, ch ssh.Channel, done <-chan struct{}) *session {
	s := &session{id: d.sim.sessionID(), dev: d, conn: sc, ch: ch, done: done}
	s.log = d.log.With("session", s.id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.sessions[s.id] = s
	s.log.Debug("netconf session start", "user", sc.User())
	return s
}

// endSession forgets s: its lock is released and, when it held the lock, the candidate's
// uncommitted changes are discarded.
func (d *Device) endSession(s *session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sessions, s.id)
	if d.lockOwner == s.id {
		d.lockOwner = 0
		d.candidate = d.committed.Clone()
		s.log.Info("session ended holding the lock: lock released, uncommitted changes discarded")
	}
	s.log.Debug("netconf session end")
}

// run exchanges hellos, then answers rpcs until the client closes the session or breaks framing.
func (s *session) run() {
	if _, err := s.ch.Write(frame(false, helloMessage(s.id))); err != nil {
		return
	}
	mr := newMsgReader(s.ch)
	msg, err := mr.read()
	if err != nil {
		s.log.Debug("no client hello", "err", err)
		return
	}
	base11, err := clientHello(msg)
	if err != nil {
		s.log.Info("bad client hello: closing the session", "err", err)
		return
	}
	s.chunked = base11
	mr.chunked = base11
	for {
		msg, err := mr.read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Info("closing the session", "err", err)
			}
			return
		}
		reply, after := s.handle(msg)
		if _, err := s.ch.Write(frame(s.chunked, reply)); err != nil {
			return
		}
		switch after {
		case closeSession:
			return
		case dropConnection:
			s.log.Info("fault: dropping the connection after a confirmed commit")
			_ = s.conn.Close()
			return
		}
	}
}

// afterReply is what a session does once a reply is sent.
type afterReply int

const (
	carryOn afterReply = iota
	closeSession
	dropConnection
)

// handle answers one message.
func (s *session) handle(msg []byte) ([]byte, afterReply) {
	var b bytes.Buffer
	req, rerr := parseRPC(msg)
	var attrs []xml.Attr
	if req != nil {
		attrs = req.attrs
	}
	replyStart(&b, attrs)
	after := carryOn
	if rerr != nil {
		rerr.write(&b)
	} else {
		after = s.dispatch(&b, req.op)
	}
	b.WriteString("</rpc-reply>")
	return b.Bytes(), after
}

// dispatch runs one operation and writes the reply body.
func (s *session) dispatch(b *bytes.Buffer, op *xnode) afterReply {
	switch op.name.Local {
	case "lock":
		s.write(b, s.lock(op))
	case "unlock":
		s.write(b, s.unlock(op))
	case "load-configuration":
		s.loadConfiguration(b, op)
	case "commit-configuration":
		return s.commitConfiguration(b, op)
	case "get-configuration":
		s.getConfiguration(b, op)
	case "discard-changes":
		s.write(b, s.discardChanges())
	case "close-session":
		b.WriteString("<ok/>\n")
		return closeSession
	default:
		(&rpcError{Type: "protocol", Tag: "operation-not-supported", BadElement: op.name.Local,
			Message: fmt.Sprintf("rpc <%s> is not supported", op.name.Local)}).write(b)
	}
	return carryOn
}

// write writes <ok/> or the error.
func (s *session) write(b *bytes.Buffer, err *rpcError) {
	if err != nil {
		err.write(b)
		return
	}
	b.WriteString("<ok/>\n")
}

// lockedBy returns the lock-denied error when another session holds the lock; d.mu is held.
func (s *session) lockedBy() *rpcError {
	owner := s.dev.lockOwner
	if owner == 0 || owner == s.id {
		return nil
	}
	return &rpcError{Type: "protocol", Tag: "lock-denied", SessionID: owner,
		Message: fmt.Sprintf("configuration database locked by session %d", owner)}
}

// candidateTarget checks <target><candidate/></target>.
func candidateTarget(op *xnode) *rpcError {
	t := op.kid("target")
	if t == nil || len(t.kids) != 1 {
		return &rpcError{Type: "protocol", Tag: "missing-element", BadElement: "target",
			Message: fmt.Sprintf("<%s> needs <target><candidate/></target>", op.name.Local)}
	}
	if n := t.kids[0].name.Local; n != "candidate" {
		return &rpcError{Type: "protocol", Tag: "invalid-value", BadElement: n,
			Message: fmt.Sprintf("<%s> of %s: only the candidate configuration can be locked", op.name.Local, n)}
	}
	return nil
}

func (s *session) lock(op *xnode) *rpcError {
	if err := candidateTarget(op); err != nil {
		return err
	}
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lockOwner != 0 {
		return &rpcError{Type: "protocol", Tag: "lock-denied", SessionID: d.lockOwner,
			Message: fmt.Sprintf("configuration database locked by session %d", d.lockOwner)}
	}
	d.lockOwner = s.id
	s.log.Debug("candidate locked")
	return nil
}

func (s *session) unlock(op *xnode) *rpcError {
	if err := candidateTarget(op); err != nil {
		return err
	}
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lockOwner != s.id {
		e := &rpcError{Type: "protocol", Tag: "operation-failed", Message: "configuration database is not locked by this session"}
		if d.lockOwner != 0 {
			e.Tag, e.SessionID = "lock-denied", d.lockOwner
			e.Message = fmt.Sprintf("configuration database locked by session %d", d.lockOwner)
		}
		return e
	}
	d.lockOwner = 0
	s.log.Debug("candidate unlocked")
	return nil
}

func (s *session) discardChanges() *rpcError {
	d := s.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := s.lockedBy(); err != nil {
		return err
	}
	d.candidate = d.committed.Clone()
	return nil
}

// loadConfiguration applies set lines to the candidate, all or nothing.
func (s *session) loadConfiguration(b *bytes.Buffer, op *xnode) {
	b.WriteString("<load-configuration-results>\n")
	defer b.WriteString("</load-configuration-results>\n")
	text, replace, perr := loadPayload(op)
	if perr != nil {
		perr.write(b)
		b.WriteString("<load-error-count>1</load-error-count>\n")
		return
	}
	d := s.dev
	d.mu.Lock()
	if err := s.lockedBy(); err != nil {
		d.mu.Unlock()
		err.write(b)
		b.WriteString("<load-error-count>1</load-error-count>\n")
		return
	}
	base := d.candidate
	if replace {
		base = junosconf.NewConfig()
	}
	next := base.Clone()
	warnings, err := next.Load(text)
	if err == nil {
		d.candidate = next
	}
	d.mu.Unlock()

	for _, w := range warnings {
		(&rpcError{Type: "protocol", Tag: "data-missing", Severity: "warning", Message: "statement not found",
			Path: fmt.Sprintf("line %d: %s", w.Line, w.Text)}).write(b)
	}
	var le *junosconf.LoadError
	switch {
	case err == nil:
		b.WriteString("<ok/>\n")
	case errors.As(err, &le):
		for _, l := range le.Lines {
			e := &rpcError{Type: "protocol", Tag: "invalid-value", Message: l.Error(), Path: fmt.Sprintf("line %d", l.Line)}
			var se *junosconf.SyntaxError
			if errors.As(l.Err, &se) {
				e.BadElement = se.Token
			}
			e.write(b)
		}
		fmt.Fprintf(b, "<load-error-count>%d</load-error-count>\n", len(le.Lines))
		s.log.Info("load refused", "bad_lines", len(le.Lines))
	default:
		(&rpcError{Type: "application", Tag: "operation-failed", Message: err.Error()}).write(b)
		b.WriteString("<load-error-count>1</load-error-count>\n")
	}
}

// loadPayload returns the set lines of a <load-configuration> and whether they replace the whole
// candidate.
func loadPayload(op *xnode) (text string, replace bool, err *rpcError) {
	notSupported := func(format string, a ...any) (string, bool, *rpcError) {
		return "", false, &rpcError{Type: "protocol", Tag: "operation-not-supported", Message: fmt.Sprintf(format, a...)}
	}
	if _, ok := op.attr("url"); ok {
		return notSupported("load-configuration url= is not supported: send the lines in <configuration-set>")
	}
	format, _ := op.attr("format")
	action, ok := op.attr("action")
	if !ok {
		action = "merge" // Junos' default
	}
	if format != "" && format != "text" {
		return notSupported("load-configuration format=%q is not supported: use format=\"text\" with set lines", format)
	}
	var want string
	switch action {
	case "set":
		want = "configuration-set"
	case "merge":
		want = "configuration-text"
	case "replace", "override":
		want, replace = "configuration-text", true
	default:
		return notSupported("load-configuration action=%q is not supported: use set, merge, replace or override", action)
	}
	if len(op.kids) != 1 || op.kids[0].name.Local != want {
		got := "nothing"
		if len(op.kids) > 0 {
			got = "<" + op.kids[0].name.Local + ">"
		}
		return "", false, &rpcError{Type: "protocol", Tag: "missing-element", BadElement: want,
			Message: fmt.Sprintf("load-configuration action=%q takes one <%s> of set lines, got %s", action, want, got)}
	}
	return string(op.kids[0].text), replace, nil
}

// commitConfiguration commits the candidate (or checks it).
func (s *session) commitConfiguration(b *bytes.Buffer, op *xnode) afterReply {
	var confirmed, check bool
	minutes := 10 // Junos' default confirm-timeout
	var comment string
	var timeoutGiven bool
	for _, k := range op.kids {
		switch k.name.Local {
		case "confirmed":
			confirmed = true
		case "check":
			check = true
		case "log":
			comment = string(k.text)
		case "confirm-timeout":
			n, err := strconv.Atoi(strings.TrimSpace(string(k.text)))
			if err != nil || n < 1 || n > 65535 {
				return s.commitError(b, &rpcError{Type: "protocol", Tag: "invalid-value", BadElement: "confirm-timeout",
					Message: fmt.Sprintf("confirm-timeout %q: want minutes 1-65535", strings.TrimSpace(string(k.text)))})
			}
			minutes, timeoutGiven = n, true
		case "synchronize", "force-synchronize", "full":
			// one routing engine: nothing to do
		default:
			return s.commitError(b, &rpcError{Type: "protocol", Tag: "unknown-element", BadElement: k.name.Local,
				Message: fmt.Sprintf("commit-configuration: <%s> is not supported", k.name.Local)})
		}
	}
	if timeoutGiven && !confirmed {
		return s.commitError(b, &rpcError{Type: "protocol", Tag: "invalid-value", BadElement: "confirm-timeout",
			Message: "confirm-timeout without <confirmed/>"})
	}
	if check && confirmed {
		return s.commitError(b, &rpcError{Type: "protocol", Tag: "invalid-value", BadElement: "check",
			Message: "<check/> and <confirmed/> do not go together"})
	}
	d := s.dev
	d.mu.Lock()
	err := s.lockedBy()
	d.mu.Unlock()
	if err != nil {
		return s.commitError(b, err)
	}
	if err := s.commitFaults(); err != nil {
		return s.commitError(b, err)
	}
	if lat := d.sim.opts.CommitLatency; lat > 0 && !check {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return s.commitError(b, &rpcError{Type: "application", Tag: "operation-failed", Message: "session closed during commit"})
		}
	}

	d.mu.Lock()
	if err := s.lockedBy(); err != nil {
		d.mu.Unlock()
		return s.commitError(b, err)
	}
	if verr := d.validate(d.candidate); verr != nil {
		d.mu.Unlock()
		return s.commitError(b, &rpcError{Type: "application", Tag: "operation-failed", Message: verr.Error()})
	}
	if check {
		d.mu.Unlock()
		b.WriteString("<commit-results>\n<routing-engine>\n<name>re0</name>\n<commit-check-success/>\n</routing-engine>\n</commit-results>\n")
		return carryOn
	}
	var timeout time.Duration
	if confirmed {
		timeout = time.Duration(minutes) * d.sim.opts.ConfirmUnit
	}
	seq, lines := d.commitLocked(d.candidate.Clone(), Commit{By: "netconf", Session: s.id, Comment: comment}, timeout)
	id := d.history[len(d.history)-1].ID
	drop := confirmed && d.fault.DropAfterConfirmed
	d.mu.Unlock()
	d.notify(seq, lines)

	b.WriteString("<commit-results>\n<routing-engine>\n<name>re0</name>\n<commit-success/>\n")
	writeElem(b, "commit-revision", id)
	b.WriteString("</routing-engine>\n</commit-results>\n")
	if drop {
		return dropConnection
	}
	return carryOn
}

// commitFaults applies FailCommit and HangCommit: it waits while the commit hangs.
func (s *session) commitFaults() *rpcError {
	d := s.dev
	for {
		d.mu.Lock()
		f, changed, closing := d.fault, d.faultCh, d.closing
		d.mu.Unlock()
		if f.FailCommit != "" {
			return &rpcError{Type: "application", Tag: "operation-failed", Message: f.FailCommit}
		}
		if !f.HangCommit {
			return nil
		}
		s.log.Info("fault: commit hangs")
		d.mu.Lock()
		d.hanging++
		d.mu.Unlock()
		var err *rpcError
		select {
		case <-changed:
		case <-s.done:
			err = &rpcError{Type: "application", Tag: "operation-failed", Message: "session closed during commit"}
		case <-closing:
			err = &rpcError{Type: "application", Tag: "operation-failed", Message: "device shutting down"}
		}
		d.mu.Lock()
		d.hanging--
		d.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// commitError writes a failed commit's reply.
func (s *session) commitError(b *bytes.Buffer, err *rpcError) afterReply {
	b.WriteString("<commit-results>\n")
	err.write(b)
	b.WriteString("</commit-results>\n")
	s.log.Info("commit failed", "err", err.Message)
	return carryOn
}

// getConfiguration answers the committed or candidate configuration in set form.
func (s *session) getConfiguration(b *bytes.Buffer, op *xnode) {
	format, _ := op.attr("format")
	db, ok := op.attr("database")
	if !ok {
		db = "committed"
	}
	var elem string
	switch format {
	case "set":
		elem = "configuration-set"
	case "text":
		elem = "configuration-text"
	default:
		(&rpcError{Type: "protocol", Tag: "operation-not-supported", BadElement: "format",
			Message: fmt.Sprintf("get-configuration format=%q is not supported: use format=\"set\"", format)}).write(b)
		return
	}
	if len(op.kids) > 0 {
		(&rpcError{Type: "protocol", Tag: "operation-not-supported", BadElement: op.kids[0].name.Local,
			Message: "get-configuration filters are not supported: the whole configuration is returned without one"}).write(b)
		return
	}
	d := s.dev
	d.mu.Lock()
	var lines []string
	switch db {
	case "committed":
		lines = d.committed.Lines()
	case "candidate":
		lines = d.candidate.Lines()
	default:
		d.mu.Unlock()
		(&rpcError{Type: "protocol", Tag: "invalid-value", BadElement: "database",
			Message: fmt.Sprintf("get-configuration database=%q: want committed or candidate", db)}).write(b)
		return
	}
	d.mu.Unlock()
	b.WriteString("<" + elem + ">\n")
	for _, l := range lines {
		escape(b, l)
		b.WriteString("\n")
	}
	b.WriteString("</" + elem + ">\n")
}

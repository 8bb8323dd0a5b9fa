package devsim

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// Fault makes a device misbehave; the zero Fault is a healthy device.
type Fault struct {
	// Refuse accepts TCP connections and closes them at once.
	Refuse bool
	// FailCommit, when not empty, makes every commit fail with an rpc-error with this message.
	FailCommit string
	// HangCommit makes a commit never answer until the fault is cleared (then it goes on) or its
	// session ends.
	HangCommit bool
	// DropAfterConfirmed closes the SSH connection right after a confirmed commit succeeds and
	// its reply is sent, so its confirmation never arrives.
	DropAfterConfirmed bool
}

// Commit is one entry of a device's commit history.
type Commit struct {
	Revision  int       // 1, 2, ... on this device; rollbacks take a revision too
	ID        string    // as in <commit-revision>: re0-<unix time>-<revision>
	Time      time.Time //
	Lines     []string  // the whole committed configuration after this commit, in set form
	Comment   string    // the commit's <log>; for a rollback, what was rolled back
	Confirmed bool      // a commit confirmed: it armed an automatic rollback
	Rollback  bool      // an automatic rollback of a commit confirmed that was not confirmed
	By        string    // "netconf", "exec" or "rollback"
	Session   int       // the NETCONF session that committed, for By "netconf"
}

// Device is one simulated leaf switch.
type Device struct {
	sim     *Sim
	name    string
	log     *slog.Logger
	hostKey string
	sshConf *ssh.ServerConfig

	lifeMu sync.Mutex // serializes Start, Stop and close

	mu        sync.Mutex // guards everything below
	addr      string
	ln        net.Listener
	conns     map[net.Conn]struct{}
	sessions  map[int]*session
	committed *junosconf.Config // never changed in place: replaced
	candidate *junosconf.Config
	lockOwner int // session holding the candidate lock, 0 for none
	hanging   int // commits waiting on Fault.HangCommit
	history   []Commit
	commits   int
	rev       int
	pending   *pendingConfirm
	fault     Fault
	faultCh   chan struct{} // closed and replaced whenever the fault changes
	closing   chan struct{} // closed when the device closes
	closed    bool

	notifyMu   sync.Mutex // orders OnCommit calls by notifySeq
	notifyCond *sync.Cond
	notifySeq  int // next sequence number to hand out (under mu)
	notifyNext int // next sequence number to call OnCommit for (under notifyMu)

	connWG  sync.WaitGroup // accept loop and connections
	timerWG sync.WaitGroup // confirmed-commit timers
}

// pendingConfirm is a commit confirmed waiting for its confirmation.
type pendingConfirm struct {
	prev   *junosconf.Config // committed before it: what a rollback restores
	rev    int
	cancel chan struct{}
}

func newDevice(s *Sim, name string, set deviceSettings) (*Device, error) {
	key := set.hostKey
	if key == nil {
		var err error
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("generate host key: %w", err)
		}
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	d := &Device{
		sim:       s,
		name:      name,
		log:       s.log.With("device", name),
		hostKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		conns:     map[net.Conn]struct{}{},
		sessions:  map[int]*session{},
		committed: junosconf.NewConfig(),
		candidate: junosconf.NewConfig(),
		faultCh:   make(chan struct{}),
		closing:   make(chan struct{}),
	}
	d.notifyCond = sync.NewCond(&d.notifyMu)
	user, pass := []byte(s.opts.Username), []byte(s.opts.Password)
	d.sshConf = &ssh.ServerConfig{
		MaxAuthTries:  6,
		ServerVersion: "SSH-2.0-devsim",
		PasswordCallback: func(c ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			okUser := subtle.ConstantTimeCompare([]byte(c.User()), user)
			okPass := subtle.ConstantTimeCompare(p, pass)
			if okUser&okPass == 1 {
				return nil, nil
			}
			d.log.Debug("ssh password refused", "user", c.User(), "remote", c.RemoteAddr().String())
			return nil, fmt.Errorf("password refused for user %q", c.User())
		},
	}
	d.sshConf.AddHostKey(signer)
	return d, nil
}

// Name returns the device's name.
func (d *Device) Name() string { return d.name }

// Addr returns the host:port the device listens on (also while it is stopped).
func (d *Device) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// HostKey returns the device's SSH host public key in authorized_keys form
// ("ssh-ed25519 AAAA...").
func (d *Device) HostKey() string { return d.hostKey }

// Committed returns the committed configuration in set form, sorted.
func (d *Device) Committed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.committed.Lines()
}

// Candidate returns the candidate configuration in set form, sorted.
func (d *Device) Candidate() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.candidate.Lines()
}

// Commits returns the number of successful commits (Exec included), not counting rollbacks.
func (d *Device) Commits() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commits
}

// History returns every commit and rollback, oldest first.
func (d *Device) History() []Commit {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Commit, len(d.history))
	for i, c := range d.history {
		c.Lines = append([]string(nil), c.Lines...)
		out[i] = c
	}
	return out
}

// Sessions returns the number of open NETCONF sessions.
func (d *Device) Sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sessions)
}

// SetFault replaces the device's fault; the zero Fault heals it. Clearing HangCommit lets the
// hanging commits go on.
func (d *Device) SetFault(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
	close(d.faultCh)
	d.faultCh = make(chan struct{})
	d.log.Info("fault set", "refuse", f.Refuse, "fail_commit", f.FailCommit, "hang_commit", f.HangCommit,
		"drop_after_confirmed", f.DropAfterConfirmed)
}

// Exec is an operator's change by hand: it applies set and delete lines to the committed
// configuration and commits the result (confirming a pending commit confirmed, as any commit
// does). It ignores the candidate lock. The candidate follows: when it had no uncommitted changes
// it becomes the new committed configuration, else the lines are applied to it too.
func (d *Device) Exec(text string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("exec on %s: device closed", d.name)
	}
	next := d.committed.Clone()
	if err := next.Apply(text); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("exec on %s: %w", d.name, err)
	}
	if err := d.validate(next); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("exec on %s: %w", d.name, err)
	}
	if d.candidate.Equal(d.committed) {
		d.candidate = next.Clone()
	} else {
		_ = d.candidate.Apply(text)
	}
	seq, lines := d.commitLocked(next, Commit{By: "exec", Comment: "exec"}, 0)
	d.mu.Unlock()
	d.notify(seq, lines)
	return nil
}

// validate is the device's commit check beyond the schema: configured physical interfaces exist.
func (d *Device) validate(c *junosconf.Config) error {
	for _, st := range c.Statements() {
		i := 0
		if st[0] == "groups" {
			i = 2
		}
		if len(st) < i+2 || st[i] != "interfaces" {
			continue
		}
		name := st[i+1]
		if strings.HasPrefix(name, "ae") || d.sim.ports[name] {
			continue
		}
		ifs := d.sim.opts.Interfaces
		return fmt.Errorf("interfaces %s: no such port on %s (it has %d ports, %s to %s)", name, d.name, len(ifs), ifs[0], ifs[len(ifs)-1])
	}
	return nil
}

// commitLocked makes next the committed configuration and records c in the history; a
// confirmTimeout above zero arms a rollback. Any pending commit confirmed is confirmed. It returns
// what notify needs. d.mu is held.
func (d *Device) commitLocked(next *junosconf.Config, c Commit, confirmTimeout time.Duration) (int, []string) {
	if d.pending != nil {
		close(d.pending.cancel)
		d.log.Info("commit confirmed", "revision", d.pending.rev)
		d.pending = nil
	}
	prev := d.committed
	d.committed = next
	d.rev++
	d.commits++
	now := time.Now()
	c.Revision = d.rev
	c.ID = fmt.Sprintf("%s-%d-%d", "re0", now.Unix(), d.rev)
	c.Time = now
	c.Lines = next.Lines()
	if confirmTimeout > 0 && !d.closed {
		c.Confirmed = true
		p := &pendingConfirm{prev: prev, rev: d.rev, cancel: make(chan struct{})}
		d.pending = p
		d.timerWG.Add(1)
		go d.awaitConfirm(p, confirmTimeout)
	}
	d.history = append(d.history, c)
	d.log.Info("commit", "revision", c.Revision, "by", c.By, "session", c.Session, "confirmed", c.Confirmed,
		"statements", next.Len())
	return d.nextNotify(), c.Lines
}

// awaitConfirm rolls back p when it is not confirmed within after.
func (d *Device) awaitConfirm(p *pendingConfirm, after time.Duration) {
	defer d.timerWG.Done()
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-p.cancel:
		return
	case <-d.closing:
		return
	case <-t.C:
	}
	d.mu.Lock()
	if d.pending != p {
		d.mu.Unlock()
		return
	}
	d.pending = nil
	rolledBack := d.committed
	d.committed = p.prev
	if d.candidate.Equal(rolledBack) {
		d.candidate = p.prev.Clone()
	}
	d.rev++
	now := time.Now()
	lines := d.committed.Lines()
	d.history = append(d.history, Commit{
		Revision: d.rev,
		ID:       fmt.Sprintf("re0-%d-%d", now.Unix(), d.rev),
		Time:     now,
		Lines:    lines,
		Comment:  fmt.Sprintf("automatic rollback: commit confirmed revision %d was not confirmed within %v", p.rev, after),
		Rollback: true,
		By:       "rollback",
	})
	d.log.Warn("commit confirmed not confirmed: rolled back", "revision", p.rev, "timeout", after)
	seq := d.nextNotify()
	d.mu.Unlock()
	d.notify(seq, lines)
}

// nextNotify hands out the sequence number of an OnCommit call; d.mu is held.
func (d *Device) nextNotify() int {
	seq := d.notifySeq
	d.notifySeq++
	return seq
}

// notify calls OnCommit for the commit numbered seq, after the calls for the commits before it.
// d.mu must not be held.
func (d *Device) notify(seq int, lines []string) {
	d.notifyMu.Lock()
	for d.notifyNext != seq {
		d.notifyCond.Wait()
	}
	d.notifyMu.Unlock()
	if f := d.sim.opts.OnCommit; f != nil {
		f(d.name, lines)
	}
	d.notifyMu.Lock()
	d.notifyNext++
	d.notifyCond.Broadcast()
	d.notifyMu.Unlock()
}

// listen starts the device on addr the first time.
func (d *Device) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.mu.Lock()
	d.addr = ln.Addr().String()
	d.ln = ln
	d.connWG.Add(1)
	d.mu.Unlock()
	go d.serve(ln)
	d.log.Info("listening", "addr", d.addr)
	return nil
}

// Start listens again on the device's address after Stop: the device is back up.
func (d *Device) Start() error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.mu.Lock()
	addr, running, closed := d.addr, d.ln != nil, d.closed
	d.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("start %s: device closed", d.name)
	case running:
		return fmt.Errorf("start %s: already listening on %s", d.name, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("start %s on %s: %w", d.name, addr, err)
	}
	d.mu.Lock()
	d.ln = ln
	d.connWG.Add(1)
	d.mu.Unlock()
	go d.serve(ln)
	d.log.Info("started", "addr", addr)
	return nil
}

// Stop closes the listener and every connection: the device is down. Its configuration stays;
// sessions end as if the network dropped (locks released, a locked session's changes discarded).
// It returns when every session has ended.
func (d *Device) Stop() {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.stopLocked()
}

func (d *Device) stopLocked() {
	d.mu.Lock()
	ln := d.ln
	d.ln = nil
	conns := make([]net.Conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	d.connWG.Wait()
	if ln != nil {
		d.log.Info("stopped")
	}
}

// close stops the device for good and waits for all its goroutines.
func (d *Device) close() error {
	d.lifeMu.Lock()
	defer d.lifeMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stopLocked() // ends the sessions, which releases hanging commits
	close(d.closing)
	d.timerWG.Wait()
	return nil
}

// serve accepts connections on ln until it is closed.
func (d *Device) serve(ln net.Listener) {
	defer d.connWG.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		d.mu.Lock()
		if d.ln != ln { // stopped meanwhile
			d.mu.Unlock()
			_ = c.Close()
			continue
		}
		if d.fault.Refuse {
			d.mu.Unlock()
			d.log.Debug("connection refused by fault", "remote", c.RemoteAddr().String())
			_ = c.Close()
			continue
		}
		d.conns[c] = struct{}{}
		d.connWG.Add(1)
		d.mu.Unlock()
		go d.handleConn(c)
	}
}

package junos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/scrapli/scrapligo/transport"
	"golang.org/x/crypto/ssh"
)

// idlePoll bounds how long one Read waits for data: scrapligo's channel read loop checks for its
// shutdown between reads, so a short wait lets Driver.Close finish promptly instead of waiting
// for scrapligo's force-close timer.
const idlePoll = 50 * time.Millisecond

// sshTransport is a scrapligo transport.Implementation over golang.org/x/crypto/ssh that opens the
// "netconf" subsystem and checks the device's host key with checkKey (pinning, learning on first
// use).
//
// Its contract with scrapligo differs from scrapligo's standard transport in one way, on purpose:
// while the transport is open Read never returns an error. When the connection is lost it closes
// lost and Read keeps answering "no data" until Close. The reason: scrapligo's NETCONF read loop
// hands a transport error to whichever RPC is waiting, and when none is waiting it blocks forever
// on an unbuffered channel, after which netconf.Driver.Close blocks forever too. Loss is instead
// watched by this package (session.call selects on lost).
//
// Close is for scrapligo only (netconf.Driver.Close → channel.Close → Transport.Close, or a failed
// Open); this package ends a connection with kill, which drops the network connection and leaves
// the scrapligo side to be closed by netconf.Driver.Close.
type sshTransport struct {
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	checkKey func(key ssh.PublicKey) error
	timeout  time.Duration // dial + SSH handshake + subsystem request

	// dialCtx is cancelled by kill, so a kill during Open aborts the dial.
	dialCtx    context.Context
	cancelDial context.CancelFunc

	mu        sync.Mutex
	conn      net.Conn
	client    *ssh.Client
	session   *ssh.Session
	stdin     io.Writer
	serverKey ssh.PublicKey // the key the device presented (set during Open)
	killed    bool

	data    chan []byte // chunks read from the subsystem's stdout by pump
	pending []byte      // the part of a chunk a Read could not return (read loop only)

	lostOnce  sync.Once
	lost      chan struct{} // closed when the connection ends without kill or Close
	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

func newSSHTransport(timeout time.Duration, checkKey func(ssh.PublicKey) error) *sshTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &sshTransport{
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.DialContext(ctx, network, addr)
		},
		checkKey:   checkKey,
		timeout:    timeout,
		dialCtx:    ctx,
		cancelDial: cancel,
		data:       make(chan []byte),
		lost:       make(chan struct{}),
		closed:     make(chan struct{}),
	}
}

// Open dials, logs in with the password (and keyboard-interactive, which some Junos AAA setups
// use for passwords), checks the host key and requests the netconf subsystem.
func (t *sshTransport) Open(a *transport.Args) (reterr error) {
	addr := net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	conn, err := t.dial(t.dialCtx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	t.mu.Lock()
	if t.killed {
		t.mu.Unlock()
		_ = conn.Close()
		return errors.New("connection aborted")
	}
	t.conn = conn
	t.mu.Unlock()
	defer func() {
		if reterr != nil {
			t.kill()
		}
	}()

	_ = conn.SetDeadline(time.Now().Add(t.timeout))
	password := a.Password
	cfg := &ssh.ClientConfig{
		User: a.User,
		Auth: []ssh.AuthMethod{
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}),
		},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			t.mu.Lock()
			t.serverKey = key
			t.mu.Unlock()
			return t.checkKey(key)
		},
		Timeout: t.timeout,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	t.mu.Lock()
	t.client = client
	t.mu.Unlock()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open an SSH session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fmt.Errorf("SSH session stdin: %w", err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fmt.Errorf("SSH session stdout: %w", err)
	}
	t.mu.Lock()
	t.session, t.stdin = sess, stdin
	t.mu.Unlock()
	if err := sess.RequestSubsystem("netconf"); err != nil {
		return fmt.Errorf("request the netconf SSH subsystem (is NETCONF over SSH enabled on the device?): %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	go t.pump(stdout)
	return nil
}

// pump moves the subsystem's output to Read; when the connection ends it closes lost (unless the
// transport is being closed) and returns.
func (t *sshTransport) pump(r io.Reader) {
	for {
		b := make([]byte, 32*1024)
		n, err := r.Read(b)
		if n > 0 {
			select {
			case t.data <- b[:n]:
			case <-t.closed:
				return
			}
		}
		if err != nil {
			t.lostOnce.Do(func() { close(t.lost) })
			return
		}
	}
}

// Read returns up to n bytes of device output, or nothing after idlePoll; io.EOF once closed.
func (t *sshTransport) Read(n int) ([]byte, error) {
	if len(t.pending) == 0 {
		timer := time.NewTimer(idlePoll)
		defer timer.Stop()
		select {
		case b := <-t.data:
			t.pending = b
		case <-t.closed:
			return nil, io.EOF
		case <-timer.C:
			return nil, nil
		}
	}
	k := min(n, len(t.pending))
	b := t.pending[:k]
	t.pending = t.pending[k:]
	return b, nil
}

// Write sends bytes to the device.
func (t *sshTransport) Write(b []byte) error {
	t.mu.Lock()
	w := t.stdin
	t.mu.Unlock()
	if w == nil {
		return errors.New("transport is not open")
	}
	select {
	case <-t.lost:
		return errors.New("connection lost")
	default:
	}
	_, err := w.Write(b)
	return err
}

// IsAlive reports whether the connection is up.
func (t *sshTransport) IsAlive() bool {
	select {
	case <-t.lost:
		return false
	case <-t.closed:
		return false
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.session != nil && !t.killed
}

// kill drops the network connection (aborting a dial or handshake in progress). Safe at any
// time, from any goroutine, more than once.
func (t *sshTransport) kill() {
	t.cancelDial()
	t.mu.Lock()
	t.killed = true
	sess, client, conn := t.session, t.client, t.conn
	t.mu.Unlock()
	if sess != nil {
		_ = sess.Close()
	}
	if client != nil {
		_ = client.Close()
	}
	if conn != nil {
		_ = conn.Close()
	}
}

// Close ends the transport for scrapligo: Read answers io.EOF from now on.
func (t *sshTransport) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	t.kill()
	return nil
}

// presentedKey is the host key the device presented, if the handshake got that far.
func (t *sshTransport) presentedKey() ssh.PublicKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serverKey
}

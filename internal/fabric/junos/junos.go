package junos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrapli/scrapligo/driver/netconf"
	"github.com/scrapli/scrapligo/driver/options"
	"github.com/scrapli/scrapligo/util"
	"golang.org/x/crypto/ssh"
)

// Defaults for Config.
const (
	DefaultConfirmTimeout = 1 // minutes
	DefaultTimeout        = 60 * time.Second
)

// Config is how to reach and log in to one Junos device.
type Config struct {
	Name     string // the device's name in vflink, for errors and logs
	Address  string // host:port of NETCONF over SSH (Junos: 830, or 22 with `netconf ssh`)
	Username string
	Password string // never logged
	// HostKey pins the device's SSH host key (authorized_keys form, e.g. "ssh-ed25519 AAAA...").
	// Empty: the key the device presents first is learnt, pinned for the driver's life and
	// passed to OnHostKey.
	HostKey string
	// OnHostKey is called (from inside Running or Apply, so it must not call the driver) with a
	// key learnt on first use, in authorized_keys form, so the caller can store it.
	OnHostKey func(key string)
	// ConfirmTimeout is the commit confirmed timeout in minutes (default 1): how long Junos
	// waits for the confirming commit before it rolls the change back.
	ConfirmTimeout int
	// Timeout bounds each RPC and the connection set-up (default 60s); a context deadline
	// bounds them further.
	Timeout time.Duration
	Log     *slog.Logger // default: discard
}

// ErrAuthFailed is wrapped in the error of a connection the device refused to log in.
var ErrAuthFailed = errors.New("authentication failed")

// HostKeyMismatchError refuses a connection to a device whose SSH host key is not the pinned one.
// Want and Got are SHA256 fingerprints (as ssh-keygen -l prints them).
type HostKeyMismatchError struct {
	Device, Address string
	Want, Got       string
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("device %s at %s presented SSH host key %s, but %s is pinned: refusing to connect. "+
		"If the device's key changed on purpose (reinstalled, replaced), update the device's credentials host_key "+
		"to the new key (or clear it to learn the key on first use); otherwise something else answers at that address",
		e.Device, e.Address, e.Got, e.Want)
}

// Driver configures one Junos device. Its methods may be called from several goroutines; calls
// run one at a time over one NETCONF session, opened on first use and reopened after any error.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex    // one Running/Apply at a time
	pinned  ssh.PublicKey // guarded by mu; nil: learn on first use
	keyErr  error         // Config.HostKey does not parse
	version string        // NETCONF version to prefer ("" = the highest both sides speak); tests set it
	smu     sync.Mutex
	current *session // guarded by smu
	// last is the vflink configuration the device ran when this driver last read or committed it
	// (guarded by mu; nil: unknown). Apply uses it to know which vflink groups to delete instead
	// of reading the device under the lock; a stale value only leaves a group the device manager's
	// read-back then finds, and the next push (after a fresh Running) removes it.
	last []string
}

// New returns a driver for the device; it does not connect (that happens on first use).
func New(cfg Config) *Driver {
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Driver{cfg: cfg, log: log.With("component", "junos", "device", cfg.Name)}
	if strings.TrimSpace(cfg.HostKey) != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(cfg.HostKey))
		if err != nil {
			d.keyErr = fmt.Errorf("device %s: host_key %q is not an SSH public key in authorized_keys form (\"ssh-ed25519 AAAA...\"): %w",
				cfg.Name, cfg.HostKey, err)
		}
		d.pinned = k
	}
	return d
}

// Running reads the vflink configuration the device has committed: its `set groups __vflink_*`
// and `set apply-groups __vflink_*` lines, canonical ("set " + junosconf.Join) and sorted.
func (d *Driver) Running(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil { // before touching the session, which stays usable
		return nil, fmt.Errorf("device %s: %w", d.cfg.Name, err)
	}
	s, err := d.session(ctx)
	if err != nil {
		return nil, err
	}
	lines, err := d.running(ctx, s)
	if err != nil {
		d.drop(s)
		return nil, err
	}
	d.last = lines
	return lines, nil
}

func (d *Driver) running(ctx context.Context, s *session) ([]string, error) {
	rep, err := s.call(ctx, s.raw(getConfigRPC))
	if err != nil {
		return nil, d.stepErr("read the committed configuration", err)
	}
	if !rep.HasConfigSet {
		return nil, d.stepErr("read the committed configuration", errors.New("the reply has no <configuration-set>"))
	}
	lines, err := filterRunning(rep.ConfigSet)
	if err != nil {
		return nil, d.stepErr("read the committed configuration", err)
	}
	return lines, nil
}

// Apply makes the device's vflink configuration equal desired (canonical `set` lines of vflink
// groups, as the renderer writes them) in one confirmed commit, and returns the revision of the
// confirming commit ("" if the device names none). Lines that are not vflink's are refused
// before the device is contacted. On a failure after the candidate lock the changes are
// discarded and the lock released; the error names the device, the step and the device's
// message.
func (d *Driver) Apply(ctx context.Context, desired []string) (string, error) {
	want, err := checkDesired(desired)
	if err != nil {
		return "", fmt.Errorf("device %s: %w", d.cfg.Name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil { // before touching the session, which stays usable
		return "", fmt.Errorf("device %s: %w", d.cfg.Name, err)
	}
	s, err := d.session(ctx)
	if err != nil {
		return "", err
	}
	rev, err := d.apply(ctx, s, want)
	if err != nil {
		d.drop(s)
		return "", err
	}
	return rev, nil
}

func (d *Driver) apply(ctx context.Context, s *session, want []string) (string, error) {
	if _, err := s.call(ctx, s.lock); err != nil {
		return "", d.stepErr("lock the candidate configuration", err)
	}
	rev, err := d.applyLocked(ctx, s, want)
	if err != nil {
		d.abandon(ctx, s)
		return "", err
	}
	d.last = want
	if _, err := s.call(ctx, s.unlock); err != nil {
		// Committed and confirmed: the device runs the new configuration. Ending the session
		// releases the lock.
		d.log.Warn("unlock after commit failed; closing the session to release the lock", "error", err)
		d.drop(s)
	}
	return rev, nil
}

func (d *Driver) applyLocked(ctx context.Context, s *session, want []string) (string, error) {
	running := d.last
	if running == nil {
		var err error
		if running, err = d.running(ctx, s); err != nil {
			return "", err
		}
	}
	d.last = nil // unknown until the commit is confirmed
	text := loadText(running, want)
	rep, err := s.call(ctx, s.raw(loadRPC(text)))
	if err != nil {
		return "", d.stepErr("load the configuration", err)
	}
	for _, w := range rep.Warnings {
		d.log.Debug("load warning", "message", w.Message)
	}
	if _, err := s.call(ctx, s.raw(commitConfirmedRPC(d.cfg.ConfirmTimeout))); err != nil {
		return "", d.stepErr("commit confirmed", err)
	}
	rep, err = s.call(ctx, s.raw(commitRPC))
	if err != nil {
		return "", d.stepErr(fmt.Sprintf("confirm the commit (the device rolls back in %d minute(s))", d.cfg.ConfirmTimeout), err)
	}
	d.log.Info("configuration committed", "lines", len(want), "revision", rep.Revision,
		"previous_lines", len(running))
	return rep.Revision, nil
}

// abandon discards the candidate and releases the lock after a failed step, best effort, when
// the session survived the failure (an ended session does both on the device's side).
func (d *Driver) abandon(ctx context.Context, s *session) {
	if !s.alive() {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(d.cfg.Timeout, 10*time.Second))
	defer cancel()
	if _, err := s.call(cctx, s.discard); err != nil {
		d.log.Warn("discard-changes after a failed apply failed", "error", err)
	}
	if _, err := s.call(cctx, s.unlock); err != nil {
		d.log.Warn("unlock after a failed apply failed", "error", err)
	}
}

// Close ends the NETCONF session, if any (a call in progress fails). A later call reconnects.
func (d *Driver) Close() error {
	d.smu.Lock()
	s := d.current
	d.current = nil
	d.smu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

func (d *Driver) stepErr(step string, err error) error {
	return fmt.Errorf("device %s: %s: %w", d.cfg.Name, step, err)
}

// drop closes s and forgets it, so the next call reconnects.
func (d *Driver) drop(s *session) {
	d.smu.Lock()
	if d.current == s {
		d.current = nil
	}
	d.smu.Unlock()
	s.close()
}

// session returns the open session, opening one if needed. Called with mu held.
func (d *Driver) session(ctx context.Context) (*session, error) {
	d.smu.Lock()
	s := d.current
	d.smu.Unlock()
	if s != nil && s.alive() {
		return s, nil
	}
	if s != nil {
		d.drop(s)
	}
	s, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	d.smu.Lock()
	d.current = s
	d.smu.Unlock()
	return s, nil
}

// open connects, logs in and starts a NETCONF session. Called with mu held.
func (d *Driver) open(ctx context.Context) (*session, error) {
	if d.keyErr != nil {
		return nil, d.keyErr
	}
	host, portStr, err := net.SplitHostPort(d.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("device %s: address %q is not host:port (NETCONF over SSH, usually port 830): %w",
			d.cfg.Name, d.cfg.Address, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("device %s: address %q: port %q is not a number 1-65535", d.cfg.Name, d.cfg.Address, portStr)
	}
	if err := ctx.Err(); err != nil {
		return nil, d.openErr(err)
	}

	// The transport's own deadline (dial, SSH handshake) is Config.Timeout; the context is
	// watched below, and its end kills the transport.
	pinned := d.pinned
	tr := newSSHTransport(d.cfg.Timeout, func(key ssh.PublicKey) error {
		if pinned == nil || bytes.Equal(key.Marshal(), pinned.Marshal()) {
			return nil
		}
		return &HostKeyMismatchError{
			Device: d.cfg.Name, Address: d.cfg.Address,
			Want: ssh.FingerprintSHA256(pinned), Got: ssh.FingerprintSHA256(key),
		}
	})
	opts := []util.Option{
		options.WithCustomTransport(tr),
		options.WithPort(port),
		options.WithAuthUsername(d.cfg.Username),
		options.WithAuthPassword(d.cfg.Password),
		// scrapligo's own wait for a reply (and for the hello): longer than session.call's and
		// this function's, which decide timeouts.
		options.WithTimeoutOps(d.cfg.Timeout + time.Second),
		// scrapligo's read loops sleep ReadDelay between reads: 1ms instead of 250µs keeps an
		// idle session cheap; larger reads keep big replies quick anyway.
		options.WithReadDelay(time.Millisecond),
		options.WithTransportReadSize(64 * 1024),
	}
	if d.version != "" {
		opts = append(opts, options.WithNetconfPreferredVersion(d.version))
	}
	nc, err := netconf.NewDriver(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("device %s: set up the NETCONF driver: %w", d.cfg.Name, err)
	}

	errc := make(chan error, 1)
	go func() { errc <- nc.Open() }()
	var abandoned error
	select {
	case err := <-errc:
		if err != nil {
			// scrapligo closed what it opened; the transport may have died half-open.
			tr.kill()
			return nil, d.openErr(err)
		}
	case <-ctx.Done():
		abandoned = ctx.Err()
	case <-tr.lost:
		abandoned = ErrConnectionLost
	}
	if abandoned != nil {
		tr.kill()
		go func() {
			// scrapligo's Open returns once the dead connection fails its read (at worst after
			// the timeout); if it got through first, its session must be closed the scrapligo way.
			if err := <-errc; err == nil {
				_ = nc.Close()
			}
		}()
		return nil, d.openErr(abandoned)
	}

	s := &session{nc: nc, tr: tr, timeout: d.cfg.Timeout, done: make(chan struct{})}
	if d.pinned == nil {
		if k := tr.presentedKey(); k != nil {
			d.pinned = k
			key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
			d.log.Info("learnt the device's SSH host key on first use", "fingerprint", ssh.FingerprintSHA256(k))
			if d.cfg.OnHostKey != nil {
				d.cfg.OnHostKey(key)
			}
		}
	}
	d.log.Debug("NETCONF session open", "address", d.cfg.Address, "session_id", nc.SessionID(),
		"netconf_version", nc.SelectedVersion)
	return s, nil
}

// openErr words a failure to open a session.
func (d *Driver) openErr(err error) error {
	var hk *HostKeyMismatchError
	if errors.As(err, &hk) {
		return hk
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("device %s at %s: log in as %q: %w: check the device's credentials (username, password)",
			d.cfg.Name, d.cfg.Address, d.cfg.Username, ErrAuthFailed)
	}
	return fmt.Errorf("device %s at %s: open a NETCONF session: %w", d.cfg.Name, d.cfg.Address, err)
}

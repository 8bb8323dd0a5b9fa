package devsim

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Options configure every device of a Sim.
type Options struct {
	// Username and Password are the SSH password credentials devices accept; "vflink" each when
	// empty.
	Username, Password string
	// CommitLatency is how long a commit takes before it answers.
	CommitLatency time.Duration
	// ConfirmUnit is the unit of <confirm-timeout> (minutes on Junos); time.Minute when zero, so
	// tests can use milliseconds.
	ConfirmUnit time.Duration
	// Interfaces are the physical ports the leaf has; xe-0/0/0 to xe-0/0/47 when empty.
	Interfaces []string
	// OnCommit is called after every commit (including Exec) and every automatic rollback with the
	// device's name and its whole committed configuration in set form, in commit order. It runs on
	// the committing goroutine before the commit answers; it may read the device but must not
	// commit to it, Stop it or Close the Sim.
	OnCommit func(device string, committed []string)
	// Log receives the simulator's logs; discarded when nil.
	Log *slog.Logger
}

// Sim is a set of simulated devices.
type Sim struct {
	opts  Options
	log   *slog.Logger
	ports map[string]bool

	mu       sync.Mutex
	devices  []*Device
	byName   map[string]*Device
	closed   bool
	nextSess int
}

// DefaultInterfaces returns the ports xe-0/0/0 to xe-0/0/(n-1).
func DefaultInterfaces(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("xe-0/0/%d", i)
	}
	return out
}

// New returns a Sim with no devices.
func New(opts Options) *Sim {
	if opts.Username == "" {
		opts.Username = "vflink"
	}
	if opts.Password == "" {
		opts.Password = "vflink"
	}
	if opts.ConfirmUnit <= 0 {
		opts.ConfirmUnit = time.Minute
	}
	if len(opts.Interfaces) == 0 {
		opts.Interfaces = DefaultInterfaces(48)
	}
	opts.Interfaces = append([]string(nil), opts.Interfaces...)
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{opts: opts, log: log.With("component", "devsim"), ports: map[string]bool{}, byName: map[string]*Device{}}
	for _, p := range opts.Interfaces {
		s.ports[p] = true
	}
	return s
}

// DeviceOption changes how Add makes one device.
type DeviceOption func(*deviceSettings)

type deviceSettings struct {
	hostKey ed25519.PrivateKey
}

// WithHostKey gives the device this SSH host key instead of a new one.
func WithHostKey(key ed25519.PrivateKey) DeviceOption {
	return func(s *deviceSettings) { s.hostKey = key }
}

// Add starts a device named name listening on listen ("127.0.0.1:0" for an ephemeral port).
func (s *Sim) Add(name, listen string, opts ...DeviceOption) (*Device, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n") {
		return nil, fmt.Errorf("device name %q: want a non-empty name without spaces", name)
	}
	var set deviceSettings
	for _, o := range opts {
		o(&set)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("add device %s: simulator closed", name)
	}
	if _, ok := s.byName[name]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("add device %s: a device of that name exists", name)
	}
	s.byName[name] = nil // reserve the name
	s.mu.Unlock()

	d, err := newDevice(s, name, set)
	if err == nil {
		err = d.listen(listen)
	}
	s.mu.Lock()
	if err != nil {
		delete(s.byName, name)
		s.mu.Unlock()
		return nil, fmt.Errorf("add device %s on %s: %w", name, listen, err)
	}
	if s.closed { // closed while we were listening
		delete(s.byName, name)
		s.mu.Unlock()
		_ = d.close()
		return nil, fmt.Errorf("add device %s: simulator closed", name)
	}
	s.byName[name] = d
	s.devices = append(s.devices, d)
	s.mu.Unlock()
	return d, nil
}

// Devices returns the devices in the order they were added.
func (s *Sim) Devices() []*Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Device(nil), s.devices...)
}

// Device returns the device named name, or nil.
func (s *Sim) Device(name string) *Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name]
}

// Close stops every device: listeners, sessions (hanging commits are released), confirmed-commit
// timers. When it returns, no goroutine of the Sim is left.
func (s *Sim) Close() error {
	s.mu.Lock()
	s.closed = true
	devs := append([]*Device(nil), s.devices...)
	s.mu.Unlock()
	var errs []error
	for _, d := range devs {
		if err := d.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sessionID returns a session id unique in the Sim.
func (s *Sim) sessionID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSess++
	return s.nextSess
}

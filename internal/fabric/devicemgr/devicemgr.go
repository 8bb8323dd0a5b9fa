// Package devicemgr is the device manager (seed step 6): one level-triggered reconciler per
// device makes the vflink configuration the device runs equal to what its intent (the binder's
// fabric-intent/<device>) renders to.
//
// Per device, with several servers on one etcd cluster, exactly one reconciler is active: each
// server campaigns in the election devicemgr/<device>, and a new leader takes over when the
// leader's session lease runs out (its server died). The active reconciler:
//   - wakes through a one-slot trigger on any change of the device, its credentials or its intent,
//     and lets a burst settle (no change for Quiet, at most MaxDelay) before it pushes, so a burst
//     becomes one push; a change that comes while a push is in flight folds into the one push
//     after it;
//   - renders the intent, compares it with the device's running vflink groups (read from the
//     device), skips the push when they are equal, and otherwise pushes one commit;
//   - reads the device again every Resync (drift check) and re-pushes on drift, recording an event;
//   - on failure retries with jittered exponential backoff that resets on success, and pushes even
//     when the device seems to run the right configuration (an unconfirmed commit rolls back);
//   - writes the device's status (device-status/<device>: Reachable, InSync, last commit time and
//     revision, last error, events) and each port's DeviceConfigured condition.
//
// Drivers are a seam (Driver): junos (NETCONF) and ovs (ovs-vsctl) in production, fakes in unit
// tests, the Junos-like simulator (devsim) over real SSH in integration tests.
package devicemgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// Driver talks to one device.
type Driver interface {
	// Running reads the vflink configuration the device runs now, as sorted canonical lines.
	Running(ctx context.Context) ([]string, error)
	// Apply makes the device's vflink configuration equal desired in one commit and returns the
	// commit's revision as the device names it.
	Apply(ctx context.Context, desired []string) (string, error)
	// Close ends any session.
	Close() error
}

// Renderer turns a device and its attachments into the driver's canonical lines.
type Renderer func(dev api.Device, atts []api.Attachment) ([]string, error)

// Dialer makes the driver and renderer for a device. learn is called with the device's SSH host key
// when the driver learns it on first use, so the manager can pin it.
type Dialer func(dev api.Device, cred api.DeviceCredentials, learn func(hostKey string)) (Driver, Renderer, error)

// ConditionSetter records a port condition (neutron.Service.SetCondition).
type ConditionSetter func(ctx context.Context, portID string, c api.Condition) error

// CondDeviceConfigured is the port condition the device manager owns.
const CondDeviceConfigured = "DeviceConfigured"

// Options tune the manager; zero values take the defaults.
type Options struct {
	Dial       Dialer
	Conditions ConditionSetter // nil: no port conditions
	// Resync is how often a device is read for drift (default 30 s).
	Resync time.Duration
	// BackoffMin and BackoffMax bound the retry delay after a failure (default 500 ms and 30 s).
	BackoffMin, BackoffMax time.Duration
	// LeaseTTL is the per-device election lease (default 10 s): a dead server's devices are taken
	// over within about this long.
	LeaseTTL time.Duration
	// Quiet and MaxDelay coalesce a burst: after a change the reconciler waits until no further
	// change has come for Quiet (default 150 ms, more than the binder's 100 ms batching), but at
	// most MaxDelay after the first one (default 1 s), then pushes everything in one commit.
	Quiet, MaxDelay time.Duration
	// Timeout bounds one reconcile (default 5 min).
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Manager runs the reconcilers of all devices.
type Manager struct {
	st   *store.Store
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	workers map[string]*worker
}

// New returns a device manager over st.
func New(st *store.Store, opts Options) *Manager {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Dial == nil {
		opts.Dial = Dial
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 500 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Quiet <= 0 {
		opts.Quiet = 150 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{st: st, opts: opts, log: opts.Log.With("component", "devicemgr"), workers: map[string]*worker{}}
}

// Keys below the store prefix that the manager reads or writes.
func devKey(name string) string    { return "devices/" + name }
func secretKey(name string) string { return "device-secrets/" + name }
func intentKey(name string) string { return "fabric-intent/" + name }

// StatusKey is where the device manager keeps a device's status (api.DeviceStatus).
func StatusKey(name string) string { return "device-status/" + name }

// Run starts a reconciler for every registered device (and for devices registered later) and runs
// them until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan string, 1024)
	for _, p := range []string{"devices/", "device-secrets/", "fabric-intent/"} {
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			for e := range m.st.Watch(ctx, p, 0) {
				if e.Err != nil {
					events <- "" // re-list
					return
				}
				select {
				case events <- strings.TrimPrefix(e.Key, p):
				case <-ctx.Done():
					return
				}
			}
		}(p)
	}
	relist := time.NewTicker(time.Minute)
	defer relist.Stop()
	sync := func() {
		names, _, err := m.st.Keys(ctx, "devices/")
		if err != nil {
			m.log.Warn("list devices", "err", err)
			return
		}
		want := map[string]bool{}
		for _, k := range names {
			want[strings.TrimPrefix(k, "devices/")] = true
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for name := range want {
			if _, ok := m.workers[name]; !ok {
				w := newWorker(m, name)
				m.workers[name] = w
				wg.Add(1)
				go func() { defer wg.Done(); w.run(ctx) }()
			}
		}
		for name, w := range m.workers {
			if !want[name] {
				w.stop()
				delete(m.workers, name)
			}
		}
	}
	sync()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-relist.C:
			sync()
		case name := <-events:
			m.mu.Lock()
			w, ok := m.workers[name]
			m.mu.Unlock()
			if ok && name != "" {
				w.kick()
			} else {
				sync() // a device came or went (or a watch broke)
			}
		}
	}
}

// Running reads the vflink configuration a device runs now, through a fresh session (for
// `vflink device config`; works on any server, leader or not).
func (m *Manager) Running(ctx context.Context, name string) ([]string, error) {
	dev, cred, err := m.read(ctx, name)
	if err != nil {
		return nil, err
	}
	drv, _, err := m.opts.Dial(dev, cred, func(string) {})
	if err != nil {
		return nil, err
	}
	defer drv.Close()
	return drv.Running(ctx)
}

func (m *Manager) read(ctx context.Context, name string) (api.Device, api.DeviceCredentials, error) {
	d, err := store.Get[api.Device](ctx, m.st, devKey(name))
	if err != nil {
		return api.Device{}, api.DeviceCredentials{}, fmt.Errorf("device %s: %w", name, err)
	}
	c, err := store.Get[api.DeviceCredentials](ctx, m.st, secretKey(name))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return api.Device{}, api.DeviceCredentials{}, fmt.Errorf("credentials of device %s: %w", name, err)
	}
	return d.Value, c.Value, nil
}

// worker is one device's reconciler.
type worker struct {
	m       *Manager
	name    string
	log     *slog.Logger
	trigger chan struct{}
	done    chan struct{}
	once    sync.Once

	// state of the active reconciler (touched only by run's goroutine)
	drv      Driver
	render   Renderer
	drvKey   string
	applied  []string // what we last committed or saw in sync
	status   api.DeviceStatus
	statusOK bool

	conds *conditions
}

func newWorker(m *Manager, name string) *worker {
	return &worker{m: m, name: name, log: m.log.With("device", name), trigger: make(chan struct{}, 1), done: make(chan struct{})}
}

func (w *worker) kick() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

func (w *worker) stop() { w.once.Do(func() { close(w.done) }) }

// run campaigns for the device and reconciles while it leads, until ctx ends or the device is
// deleted.
func (w *worker) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		lctx, resign, err := w.m.st.Lead(ctx, "devicemgr/"+w.name, w.m.opts.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("election", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		w.log.Info("reconciler active")
		w.lead(lctx)
		resign()
		w.closeDriver()
	}
}

func (w *worker) lead(ctx context.Context) {
	w.conds = newConditions(w.m.opts.Conditions, w.log)
	go w.conds.run(ctx)
	w.statusOK = false
	w.applied = nil
	failures := 0
	force := false
	timer := time.NewTimer(0) // reconcile at once
	defer timer.Stop()
	for {
		check := false
		select {
		case <-ctx.Done():
			return
		case <-w.trigger:
			if !w.settle(ctx) {
				return
			}
		case <-timer.C:
			check = true // the first pass, a resync or a retry: read the device
		}
		err := w.reconcile(ctx, force, check)
		if ctx.Err() != nil {
			return
		}
		var delay time.Duration
		var perm *permanentError
		switch {
		case err == nil:
			failures, force = 0, false
			delay = w.m.opts.Resync
		case errors.As(err, &perm):
			// a bad intent or bad credentials: nothing to retry until something changes
			failures, force = 0, false
			delay = w.m.opts.Resync
		default:
			failures++
			force = true
			delay = backoff(failures, w.m.opts.BackoffMin, w.m.opts.BackoffMax)
			w.log.Warn("reconcile failed", "err", err, "retry_in", delay.Round(time.Millisecond))
		}
		timer.Reset(delay)
	}
}

// settle waits for a burst of changes to end: until no change has come for Quiet, or MaxDelay
// has passed since the first. It reports false when ctx ended.
func (w *worker) settle(ctx context.Context) bool {
	deadline := time.NewTimer(w.m.opts.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(w.m.opts.Quiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.trigger:
			quiet.Reset(w.m.opts.Quiet)
		case <-quiet.C:
			return true
		case <-deadline.C:
			return true
		}
	}
}

// backoff is the jittered exponential delay after n failures: min·2^(n-1), at most max, then a
// random part of up to a half of it, so reconcilers of many devices do not retry in step.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// permanentError is a failure a retry cannot fix (bad intent, missing credentials).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func (w *worker) closeDriver() {
	if w.drv != nil {
		w.drv.Close()
		w.drv, w.render, w.drvKey = nil, nil, ""
	}
}

// reconcile makes the device run what its intent renders to; force pushes even when the device
// already seems to. Without check (a wake by a change), the device is not read first when what
// vflink last committed there tells enough: the same rendering needs nothing, another one is
// pushed (the driver reads the device under its lock anyway).
func (w *worker) reconcile(ctx context.Context, force, check bool) (err error) {
	ctx, cancel := context.WithTimeout(ctx, w.m.opts.Timeout)
	defer cancel()
	dev, cred, err := w.m.read(ctx, w.name)
	if err != nil {
		return err
	}
	in, err := store.Get[api.DeviceIntent](ctx, w.m.st, intentKey(w.name))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	st := w.loadStatus(ctx)
	st.ObservedGeneration = in.ModRevision
	ports := portsOf(in.Value.Attachments)
	defer func() {
		if err != nil {
			st.LastError = err.Error()
			st.InSync = false
			w.conds.set(ports, api.Condition{Type: CondDeviceConfigured, Status: "False", Reason: "DeviceError",
				Message: fmt.Sprintf("device %s: %v", w.name, err)})
		} else {
			st.LastError = ""
			msg := fmt.Sprintf("configured on device %s", w.name)
			if st.LastCommitRevision != "" {
				msg += " (commit " + st.LastCommitRevision + ")"
			}
			w.conds.set(ports, api.Condition{Type: CondDeviceConfigured, Status: "True", Reason: "InSync", Message: msg})
		}
		if serr := w.writeStatus(ctx, st); serr != nil && err == nil {
			err = serr
		}
	}()

	if !dev.HasCredentials && dev.Driver == "junos" {
		st.Reachable = false
		return &permanentError{fmt.Errorf("device %s has no credentials; set them with vflink device set %s --username ... --password-file ...", w.name, w.name)}
	}
	key := drvKey(dev, cred)
	if w.drv == nil || w.drvKey != key {
		w.closeDriver()
		drv, render, err := w.m.opts.Dial(dev, cred, func(hostKey string) { w.pin(hostKey) })
		if err != nil {
			return &permanentError{err}
		}
		w.drv, w.render, w.drvKey = drv, render, key
		check = true // a new address or new credentials: read the device
	}
	desired, err := w.render(dev, in.Value.Attachments)
	if err != nil {
		return &permanentError{fmt.Errorf("render: %w", err)}
	}
	var running []string
	if !force && !check && w.applied != nil {
		if slices.Equal(w.applied, desired) {
			return nil
		}
		running = w.applied
	} else {
		running, err = w.drv.Running(ctx)
		if err != nil {
			st.Reachable = false
			return fmt.Errorf("read running configuration: %w", err)
		}
		st.Reachable = true
		if slices.Equal(running, desired) && !force {
			st.InSync = true
			w.applied = desired
			return nil
		}
		if w.applied != nil && slices.Equal(w.applied, desired) && !slices.Equal(running, desired) {
			add, del := diff(running, desired)
			w.event(&st, "DriftRepaired", fmt.Sprintf("the device ran %d lines vflink did not commit and lacked %d it did; re-pushing", del, add))
			w.log.Warn("drift", "missing", add, "extra", del)
		}
	}
	start := w.m.opts.Now()
	rev, err := w.drv.Apply(ctx, desired)
	if err != nil {
		w.closeDriver()
		w.event(&st, "CommitFailed", err.Error())
		return fmt.Errorf("commit: %w", err)
	}
	st.Reachable = true
	after, err := w.drv.Running(ctx)
	if err != nil {
		return fmt.Errorf("read back after commit: %w", err)
	}
	if !slices.Equal(after, desired) {
		add, del := diff(after, desired)
		return fmt.Errorf("after commit %s the device runs other configuration (%d lines missing, %d extra)", rev, add, del)
	}
	add, del := diff(running, desired)
	st.InSync = true
	st.Commits++
	st.LastCommitTime = w.m.opts.Now().UTC().Format(time.RFC3339Nano)
	st.LastCommitRevision = rev
	w.applied = desired
	w.event(&st, "Committed", fmt.Sprintf("commit %s: +%d -%d lines in %s", rev, add, del, w.m.opts.Now().Sub(start).Round(time.Millisecond)))
	w.log.Info("committed", "revision", rev, "added", add, "removed", del)
	return nil
}

// pin stores a host key learnt on first use as the device's pinned key.
func (w *worker) pin(hostKey string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := store.Retry(ctx, 8, func(int) error {
		o, err := store.Get[api.DeviceCredentials](ctx, w.m.st, secretKey(w.name))
		if err != nil || o.Value.HostKey != "" {
			return err
		}
		c := o.Value
		c.HostKey = hostKey
		_, err = store.Update(ctx, w.m.st, secretKey(w.name), c, o.ModRevision)
		return err
	})
	if err != nil {
		w.log.Warn("pin host key", "err", err)
		return
	}
	w.log.Info("host key learnt on first use and pinned")
}

func drvKey(dev api.Device, cred api.DeviceCredentials) string {
	b, _ := json.Marshal([]any{dev.Driver, dev.ManagementAddress, dev.Name, cred.Username, cred.Password, cred.HostKey})
	return string(b)
}

func (w *worker) loadStatus(ctx context.Context) api.DeviceStatus {
	if !w.statusOK {
		o, err := store.Get[api.DeviceStatus](ctx, w.m.st, StatusKey(w.name))
		if err == nil {
			w.status = o.Value
		}
		w.statusOK = err == nil || errors.Is(err, store.ErrNotFound)
	}
	st := w.status
	st.Events = slices.Clone(st.Events)
	return st
}

func (w *worker) writeStatus(ctx context.Context, st api.DeviceStatus) error {
	if w.statusOK && statusEqual(st, w.status) {
		return nil
	}
	t := w.m.st.Txn()
	t.Put(StatusKey(w.name), st)
	if _, err := t.Commit(ctx); err != nil {
		return fmt.Errorf("write status of device %s: %w", w.name, err)
	}
	w.status = st
	return nil
}

func statusEqual(a, b api.DeviceStatus) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func (w *worker) event(st *api.DeviceStatus, reason, msg string) {
	e := api.DeviceEvent{Time: w.m.opts.Now().UTC().Format(time.RFC3339Nano), Reason: reason, Message: msg}
	st.Events = append([]api.DeviceEvent{e}, st.Events...)
	if len(st.Events) > 20 {
		st.Events = st.Events[:20]
	}
}

// diff counts the lines of want missing from have, and the lines of have not in want.
func diff(have, want []string) (missing, extra int) {
	h := map[string]bool{}
	for _, l := range have {
		h[l] = true
	}
	wm := map[string]bool{}
	for _, l := range want {
		wm[l] = true
		if !h[l] {
			missing++
		}
	}
	for _, l := range have {
		if !wm[l] {
			extra++
		}
	}
	return missing, extra
}

func portsOf(atts []api.Attachment) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range atts {
		for _, p := range a.Ports {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

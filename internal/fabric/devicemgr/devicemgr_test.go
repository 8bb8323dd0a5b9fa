package devicemgr_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/devicemgr"
	"github.com/vflink/vflink/internal/store"
)

// fakeDevice is a device at the driver seam: it runs lines, counts commits, and can fail or be
// changed by hand.
type fakeDevice struct {
	mu       sync.Mutex
	running  []string
	commits  int
	applyErr error
	readErr  error
	latency  time.Duration
	dials    int
}

func (f *fakeDevice) Running(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	return slices.Clone(f.running), nil
}

func (f *fakeDevice) Apply(ctx context.Context, desired []string) (string, error) {
	f.mu.Lock()
	lat, err := f.latency, f.applyErr
	f.mu.Unlock()
	time.Sleep(lat)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		return "", err
	}
	f.running = slices.Clone(desired)
	f.commits++
	return fmt.Sprintf("rev-%d", f.commits), nil
}

func (f *fakeDevice) Close() error { return nil }

func (f *fakeDevice) get() (running []string, commits int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.running), f.commits
}

func (f *fakeDevice) set(fn func(f *fakeDevice)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// render is a tiny renderer: one line per attachment; VLAN 4095 is refused, as a real renderer
// refuses bad input.
func render(dev api.Device, atts []api.Attachment) ([]string, error) {
	var out []string
	for _, a := range atts {
		if a.VLAN == 4095 {
			return nil, fmt.Errorf("VLAN 4095 is out of range 1-4094")
		}
		out = append(out, fmt.Sprintf("set groups __vflink_access__ interfaces %s unit 0 family ethernet-switching vlan members bd-%d", a.Interface, a.VNI))
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

type env struct {
	t     *testing.T
	st    *store.Store
	devs  map[string]*fakeDevice
	mu    sync.Mutex
	conds map[string]api.Condition
}

func newEnv(t *testing.T) *env {
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, st: st, devs: map[string]*fakeDevice{}, conds: map[string]api.Condition{}}
}

func (e *env) opts() devicemgr.Options {
	return devicemgr.Options{
		Dial: func(dev api.Device, cred api.DeviceCredentials, learn func(string)) (devicemgr.Driver, devicemgr.Renderer, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			f := e.devs[dev.Name]
			if f == nil {
				return nil, nil, fmt.Errorf("no such device %s", dev.Name)
			}
			f.dials++
			return f, render, nil
		},
		Conditions: func(ctx context.Context, port string, c api.Condition) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.conds[port] = c
			return nil
		},
		Resync:     time.Hour,
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 100 * time.Millisecond,
		LeaseTTL:   time.Second,
	}
}

func (e *env) device(name string) *fakeDevice {
	f := &fakeDevice{}
	e.mu.Lock()
	e.devs[name] = f
	e.mu.Unlock()
	ctx := context.Background()
	if _, err := store.Create(ctx, e.st, "devices/"+name, api.Device{Name: name, Driver: "junos", ManagementAddress: "127.0.0.1:830", HasCredentials: true}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := store.Create(ctx, e.st, "device-secrets/"+name, api.DeviceCredentials{Username: "u", Password: "p"}); err != nil {
		e.t.Fatal(err)
	}
	return f
}

func att(dev, iface string, vni int, ports ...string) api.Attachment {
	return api.Attachment{Device: dev, Interface: iface, NetworkID: fmt.Sprintf("net%d", vni), VNI: vni, VLAN: vni, Ports: ports}
}

func (e *env) intent(dev string, atts ...api.Attachment) {
	t := e.st.Txn()
	t.Put("fabric-intent/"+dev, api.DeviceIntent{Device: dev, Attachments: atts})
	if _, err := t.Commit(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) status(dev string) api.DeviceStatus {
	o, _ := store.Get[api.DeviceStatus](context.Background(), e.st, devicemgr.StatusKey(dev))
	return o.Value
}

func (e *env) cond(port string) api.Condition {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conds[port]
}

// eventually polls cond for up to 10 s (a deadline for a test that would otherwise hang, not a
// timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(t *testing.T, m *devicemgr.Manager) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func TestConvergesSkipsAndRemoves(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1"))
	run(t, devicemgr.New(e.st, e.opts()))
	want := []string{"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-15"}
	eventually(t, "leaf1 runs VLAN 15 and reports in sync", func() bool {
		r, _ := leaf1.get()
		s := e.status("leaf1")
		return slices.Equal(r, want) && s.InSync && s.Reachable && s.LastCommitRevision == "rev-1"
	})
	eventually(t, "port p1 DeviceConfigured True", func() bool {
		c := e.cond("p1")
		return c.Status == "True" && strings.Contains(c.Message, "leaf1")
	})
	// another port on the same attachment renders the same: no second commit
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1", "p2"))
	eventually(t, "port p2 DeviceConfigured True", func() bool { return e.cond("p2").Status == "True" })
	if _, n := leaf1.get(); n != 1 {
		t.Fatalf("commits after an intent that renders the same: %d, want 1", n)
	}
	// the last port goes: the VLAN goes
	e.intent("leaf1")
	eventually(t, "leaf1 runs nothing of vflink's", func() bool {
		r, n := leaf1.get()
		return len(r) == 0 && n == 2
	})
	eventually(t, "status counts 2 commits", func() bool {
		s := e.status("leaf1")
		return s.Commits == 2 && len(s.Events) == 2 && s.Events[0].Reason == "Committed" && s.LastCommitRevision == "rev-2"
	})
}

func TestBurstCoalescesIntoTwoCommits(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	leaf1.set(func(f *fakeDevice) { f.latency = 300 * time.Millisecond })
	run(t, devicemgr.New(e.st, e.opts()))
	eventually(t, "first reconcile of the empty device", func() bool { return e.status("leaf1").InSync })
	var atts []api.Attachment
	for i := 1; i <= 100; i++ {
		atts = append(atts, att("leaf1", fmt.Sprintf("xe-0/0/%d", i%48), i, fmt.Sprintf("p%d", i)))
		e.intent("leaf1", atts...)
	}
	want, _ := render(api.Device{}, atts)
	eventually(t, "leaf1 runs all 100 networks", func() bool {
		r, _ := leaf1.get()
		return slices.Equal(r, want)
	})
	if _, n := leaf1.get(); n > 2 {
		t.Fatalf("a burst of 100 changes took %d commits, want at most 2", n)
	}
}

func TestRetriesWithBackoffThenRecovers(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	leaf1.set(func(f *fakeDevice) { f.applyErr = errors.New("commit failed: error: configuration check-out failed") })
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1"))
	run(t, devicemgr.New(e.st, e.opts()))
	eventually(t, "the failure shows in status and in the port condition", func() bool {
		s := e.status("leaf1")
		return !s.InSync && strings.Contains(s.LastError, "check-out failed") && e.cond("p1").Status == "False"
	})
	eventually(t, "several retries", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return leaf1.dials >= 3 // every failed commit drops the session; each retry dials again
	})
	leaf1.set(func(f *fakeDevice) { f.applyErr = nil })
	eventually(t, "in sync after the device recovers", func() bool {
		s := e.status("leaf1")
		return s.InSync && s.LastError == "" && e.cond("p1").Status == "True"
	})
}

func TestUnreachableDevice(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	leaf1.set(func(f *fakeDevice) { f.readErr = errors.New("dial tcp 127.0.0.1:830: connection refused") })
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1"))
	run(t, devicemgr.New(e.st, e.opts()))
	eventually(t, "unreachable in status", func() bool {
		s := e.status("leaf1")
		return !s.Reachable && strings.Contains(s.LastError, "connection refused")
	})
	leaf1.set(func(f *fakeDevice) { f.readErr = nil })
	eventually(t, "converged once reachable", func() bool { s := e.status("leaf1"); return s.Reachable && s.InSync })
}

func TestDriftIsRepaired(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1"))
	o := e.opts()
	o.Resync = 50 * time.Millisecond
	run(t, devicemgr.New(e.st, o))
	eventually(t, "in sync", func() bool { return e.status("leaf1").InSync })
	leaf1.set(func(f *fakeDevice) { f.running = nil }) // an operator deletes the VLAN by hand
	eventually(t, "drift repaired", func() bool {
		r, _ := leaf1.get()
		s := e.status("leaf1")
		return len(r) == 1 && len(s.Events) > 1 && s.Events[1].Reason == "DriftRepaired"
	})
}

func TestBadIntentIsNotRetried(t *testing.T) {
	e := newEnv(t)
	leaf1 := e.device("leaf1")
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 4095, "p1"))
	run(t, devicemgr.New(e.st, e.opts()))
	eventually(t, "render error in status", func() bool {
		return strings.Contains(e.status("leaf1").LastError, "VLAN 4095 is out of range")
	})
	time.Sleep(200 * time.Millisecond) // would be several retries at 20-100 ms backoff
	e.mu.Lock()
	dials := leaf1.dials
	e.mu.Unlock()
	if _, n := leaf1.get(); n != 0 || dials != 1 {
		t.Fatalf("a bad intent was pushed %d times, dialled %d times; want 0 pushes and 1 dial", n, dials)
	}
	e.intent("leaf1", att("leaf1", "xe-0/0/3", 15, "p1"))
	eventually(t, "converges once fixed", func() bool { return e.status("leaf1").InSync })
}

func TestOneActiveReconcilerPerDeviceAndTakeover(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	active := map[string]int{} // device → dials by manager A
	mk := func(tag string) devicemgr.Options {
		o := e.opts()
		dial := o.Dial
		o.Dial = func(dev api.Device, cred api.DeviceCredentials, learn func(string)) (devicemgr.Driver, devicemgr.Renderer, error) {
			mu.Lock()
			active[tag]++
			mu.Unlock()
			return dial(dev, cred, learn)
		}
		return o
	}
	for i := 1; i <= 3; i++ {
		e.device(fmt.Sprintf("leaf%d", i))
		e.intent(fmt.Sprintf("leaf%d", i), att(fmt.Sprintf("leaf%d", i), "xe-0/0/1", 10+i, "p"))
	}
	stopA := run(t, devicemgr.New(e.st, mk("A")))
	eventually(t, "A converges all three", func() bool {
		return e.status("leaf1").InSync && e.status("leaf2").InSync && e.status("leaf3").InSync
	})
	run(t, devicemgr.New(e.st, mk("B")))
	e.intent("leaf2", att("leaf2", "xe-0/0/1", 20, "p"))
	eventually(t, "leaf2 follows its new intent", func() bool {
		r, _ := e.devs["leaf2"].get()
		return len(r) == 1 && strings.HasSuffix(r[0], "bd-20")
	})
	mu.Lock()
	b := active["B"]
	mu.Unlock()
	if b != 0 {
		t.Fatalf("manager B dialled devices %d times while A led them all", b)
	}
	stopA() // A's server goes away
	e.intent("leaf3", att("leaf3", "xe-0/0/1", 30, "p"))
	eventually(t, "B takes over leaf3", func() bool {
		r, _ := e.devs["leaf3"].get()
		return len(r) == 1 && strings.HasSuffix(r[0], "bd-30")
	})
}

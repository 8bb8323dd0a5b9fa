package junos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"

	"github.com/vflink/vflink/internal/fabric/devsim"
)

// These tests run the driver against the device simulator over real SSH on loopback.

const (
	testUser     = "vflink"
	testPassword = "s3cret-pw"
)

// net1 and net2 are two networks on xe-0/0/3; net1Only is the same device without network 2.
var (
	common = []string{
		"set groups __vflink_evpn__ protocols evpn encapsulation vxlan",
		"set groups __vflink_evpn__ protocols evpn extended-vni-list all",
		"set groups __vflink_access__ interfaces xe-0/0/3 mtu 9192",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching interface-mode trunk",
		"set apply-groups __vflink_evpn__",
		"set apply-groups __vflink_access__",
	}
	net1 = []string{
		"set groups __vflink_evpn__ protocols evpn vni-options vni 7 vrf-target target:64512:8000006",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-7",
		`set groups __vflink_access__ vlans bd-7 description "Virtual Network - red"`,
		"set groups __vflink_access__ vlans bd-7 vlan-id 12",
		"set groups __vflink_access__ vlans bd-7 vxlan vni 7",
	}
	net2 = []string{
		"set groups __vflink_evpn__ protocols evpn vni-options vni 8 vrf-target target:64512:8000007",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-8",
		`set groups __vflink_access__ vlans bd-8 description "x\"; delete interfaces; set system host-name pwned"`,
		"set groups __vflink_access__ vlans bd-8 vlan-id 14",
		"set groups __vflink_access__ vlans bd-8 vxlan vni 8",
	}
)

func lines(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func sorted(ls []string) []string {
	out := slices.Clone(ls)
	slices.Sort(out)
	return out
}

// leaf starts a simulator with one device "leaf1" holding some configuration that is not vflink's.
func leaf(t *testing.T, opts devsim.Options) (*devsim.Sim, *devsim.Device) {
	t.Helper()
	opts.Username, opts.Password = testUser, testPassword
	sim := devsim.New(opts)
	t.Cleanup(func() { _ = sim.Close() })
	dev, err := sim.Add("leaf1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Exec("set system host-name leaf1\nset interfaces xe-0/0/5 description \"not vflink's\"\n"); err != nil {
		t.Fatalf("Exec: %v", err)
	}
	return sim, dev
}

func driver(t *testing.T, dev *devsim.Device, mod func(*Config)) *Driver {
	t.Helper()
	cfg := Config{Name: "leaf1", Address: dev.Addr(), Username: testUser, Password: testPassword,
		HostKey: dev.HostKey(), Timeout: 20 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	d := New(cfg)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// vflinkOf is the vflink part of a device's committed configuration.
func vflinkOf(t *testing.T, committed []string) []string {
	t.Helper()
	got, err := filterRunning(strings.Join(committed, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func hasLine(ls []string, l string) bool { return slices.Contains(ls, l) }

// eventually waits (up to 10s) for cond; it is for effects that happen after the call returns
// (a session ending on the device, a confirmed commit rolling back), not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApplyAndRunning(t *testing.T) {
	// Junos speaks base:1.0 (end-of-message framing) unless configured for RFC 6242 chunks.
	for _, version := range []string{"1.0", "1.1"} {
		t.Run("netconf "+version, func(t *testing.T) { testApplyAndRunning(t, version) })
	}
}

func testApplyAndRunning(t *testing.T, version string) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	d.version = version
	ctx := context.Background()

	got, err := d.Running(ctx)
	if err != nil {
		t.Fatalf("Running: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Running on a fresh device = %q, want no vflink lines", got)
	}

	// Apply then Running equals desired.
	want := lines(common, net1, net2)
	rev, err := d.Apply(ctx, want)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rev == "" {
		t.Error("Apply returned no commit revision; the simulator names one")
	}
	got, err = d.Running(ctx)
	if err != nil {
		t.Fatalf("Running: %v", err)
	}
	if diff := cmp.Diff(sorted(want), got); diff != "" {
		t.Errorf("Running after Apply (-desired +running):\n%s", diff)
	}
	committed := dev.Committed()
	if !hasLine(committed, "set system host-name leaf1") {
		t.Errorf("the device lost its host-name (not vflink's): %q", committed)
	}
	if diff := cmp.Diff(sorted(want), vflinkOf(t, committed)); diff != "" {
		t.Errorf("device's vflink configuration (-desired +committed):\n%s", diff)
	}

	// Apply replaces: network 2 removed disappears; the rest stays; a second revision.
	want = lines(common, net1)
	rev2, err := d.Apply(ctx, want)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rev2 == "" || rev2 == rev {
		t.Errorf("second revision = %q, want a new one (first %q)", rev2, rev)
	}
	committed = dev.Committed()
	if diff := cmp.Diff(sorted(want), vflinkOf(t, committed)); diff != "" {
		t.Errorf("device's vflink configuration after removing network 2 (-desired +committed):\n%s", diff)
	}
	for _, l := range committed {
		if strings.Contains(l, "bd-8") || strings.Contains(l, "vni 8 ") {
			t.Errorf("network 2 is still configured: %q", l)
		}
	}
	for _, l := range []string{"set system host-name leaf1", `set interfaces xe-0/0/5 description "not vflink's"`} {
		if !hasLine(committed, l) {
			t.Errorf("non-vflink line %q lost: %q", l, committed)
		}
	}

	// Empty desired removes every vflink group, and only those.
	if _, err := d.Apply(ctx, nil); err != nil {
		t.Fatalf("Apply(nil): %v", err)
	}
	got, err = d.Running(ctx)
	if err != nil {
		t.Fatalf("Running: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Running after Apply(nil) = %q, want none", got)
	}
	if !hasLine(dev.Committed(), "set system host-name leaf1") {
		t.Errorf("Apply(nil) removed non-vflink configuration: %q", dev.Committed())
	}
}

func TestDescriptionStaysADescription(t *testing.T) {
	for _, version := range []string{"1.0", "1.1"} {
		t.Run("netconf "+version, func(t *testing.T) { testDescriptionStaysADescription(t, version) })
	}
}

func testDescriptionStaysADescription(t *testing.T, version string) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	d.version = version
	ctx := context.Background()
	// Not canonical on purpose (bare word quoted, spaces): the driver re-quotes.
	desired := []string{
		`set groups __vflink_access__ vlans "bd-8" description "x\"; delete interfaces; set system host-name pwned"`,
		`set groups __vflink_access__ vlans bd-8 vlan-id   14`,
		`set apply-groups __vflink_access__`,
	}
	// Text that means something to NETCONF framing or to scrapligo's reply matching.
	framing := `set groups __vflink_access__ vlans bd-9 description "]]>]]> </rpc> </rpc-reply> message-id=\"1\" ## #12 &amp; <ok/>"`
	desired = append(desired, framing)
	if _, err := d.Apply(ctx, desired); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	running, err := d.Running(ctx)
	if err != nil {
		t.Fatalf("Running: %v", err)
	}
	if !hasLine(running, framing) {
		t.Errorf("Running = %q, want it to contain %q", running, framing)
	}
	committed := dev.Committed()
	want := `set groups __vflink_access__ vlans bd-8 description "x\"; delete interfaces; set system host-name pwned"`
	if !hasLine(committed, want) {
		t.Errorf("description line %q missing from %q", want, committed)
	}
	if !hasLine(committed, "set system host-name leaf1") || hasLine(committed, "set system host-name pwned") {
		t.Errorf("the description changed the configuration: %q", committed)
	}
	if !hasLine(committed, `set interfaces xe-0/0/5 description "not vflink's"`) {
		t.Errorf("the description deleted interfaces: %q", committed)
	}
}

func TestRejectsForeignLinesBeforeContact(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	before := dev.Commits()
	for _, l := range []string{
		"set system host-name pwned",
		"delete interfaces",
		"set groups __contrail_overlay_evpn__ protocols evpn encapsulation vxlan",
		`set groups __vflink_access__ vlans bd-7 description "unterminated`,
	} {
		_, err := d.Apply(context.Background(), append(slices.Clone(net1), l))
		if err == nil || !strings.Contains(err.Error(), "leaf1") {
			t.Errorf("Apply with %q = %v, want an error naming the device", l, err)
		}
	}
	if dev.Sessions() != 0 || dev.Commits() != before {
		t.Errorf("sessions %d, commits %d→%d: the device was contacted", dev.Sessions(), before, dev.Commits())
	}
}

func TestHostKey(t *testing.T) {
	sim, dev := leaf(t, devsim.Options{})
	other, err := sim.Add("leaf2", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	parse := func(s string) ssh.PublicKey {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		return k
	}

	t.Run("pinned", func(t *testing.T) {
		d := driver(t, dev, nil)
		if _, err := d.Running(ctx); err != nil {
			t.Errorf("Running with the right pinned key: %v", err)
		}
	})

	t.Run("mismatch", func(t *testing.T) {
		d := driver(t, dev, func(c *Config) { c.HostKey = other.HostKey() })
		_, err := d.Running(ctx)
		var hk *HostKeyMismatchError
		if !errors.As(err, &hk) {
			t.Fatalf("Running with another device's key = %v, want a *HostKeyMismatchError", err)
		}
		want := HostKeyMismatchError{Device: "leaf1", Address: dev.Addr(),
			Want: ssh.FingerprintSHA256(parse(other.HostKey())), Got: ssh.FingerprintSHA256(parse(dev.HostKey()))}
		if diff := cmp.Diff(want, *hk); diff != "" {
			t.Errorf("HostKeyMismatchError (-want +got):\n%s", diff)
		}
		if !strings.Contains(err.Error(), "host_key") {
			t.Errorf("error %q does not say to update the credentials' host_key", err)
		}
		if len(vflinkOf(t, dev.Committed())) != 0 {
			t.Error("the device was configured despite the key mismatch")
		}
	})

	t.Run("learnt on first use", func(t *testing.T) {
		var mu sync.Mutex
		var learnt []string
		d := driver(t, dev, func(c *Config) {
			c.HostKey = ""
			c.OnHostKey = func(k string) { mu.Lock(); learnt = append(learnt, k); mu.Unlock() }
		})
		if _, err := d.Running(ctx); err != nil {
			t.Fatalf("Running: %v", err)
		}
		_ = d.Close()
		if _, err := d.Running(ctx); err != nil { // reconnects with the learnt key pinned
			t.Fatalf("Running after Close: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(learnt) != 1 {
			t.Fatalf("OnHostKey called %d times, want once", len(learnt))
		}
		if got, want := ssh.FingerprintSHA256(parse(learnt[0])), ssh.FingerprintSHA256(parse(dev.HostKey())); got != want {
			t.Errorf("learnt key %s, want the device's %s", got, want)
		}
	})

	t.Run("learnt key is pinned", func(t *testing.T) {
		d := driver(t, dev, func(c *Config) { c.HostKey = "" })
		if _, err := d.Running(ctx); err != nil {
			t.Fatalf("Running: %v", err)
		}
		// Another device answers at the address now: the learnt key refuses it.
		d.cfg.Address = other.Addr()
		_ = d.Close()
		var hk *HostKeyMismatchError
		if _, err := d.Running(ctx); !errors.As(err, &hk) {
			t.Errorf("Running against another key after learning = %v, want a *HostKeyMismatchError", err)
		}
	})

	t.Run("bad pinned key", func(t *testing.T) {
		d := driver(t, dev, func(c *Config) { c.HostKey = "ssh-ed25519 not-base64!" })
		if _, err := d.Running(ctx); err == nil || !strings.Contains(err.Error(), "host_key") {
			t.Errorf("Running with an unparsable host_key = %v, want an error naming host_key", err)
		}
	})
}

func TestWrongPassword(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, func(c *Config) { c.Password = "wrong-pw-123" })
	_, err := d.Running(context.Background())
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Running with a wrong password = %v, want ErrAuthFailed", err)
	}
	for _, want := range []string{"leaf1", `"vflink"`, "credentials"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-pw-123") {
		t.Errorf("error %q contains the password", err)
	}
}

func TestFailCommit(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	ctx := context.Background()
	if _, err := d.Apply(ctx, lines(common, net1)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := dev.Committed()

	dev.SetFault(devsim.Fault{FailCommit: "commit blocked by the test"})
	_, err := d.Apply(ctx, lines(common, net1, net2))
	if err == nil {
		t.Fatal("Apply with a failing commit = nil error")
	}
	for _, want := range []string{"leaf1", "commit confirmed", "commit blocked by the test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var re *RPCError
	if !errors.As(err, &re) {
		t.Errorf("error %v does not wrap the device's *RPCError", err)
	}
	// The candidate was discarded and nothing committed.
	if diff := cmp.Diff(dev.Committed(), dev.Candidate()); diff != "" {
		t.Errorf("candidate not discarded (-committed +candidate):\n%s", diff)
	}
	if diff := cmp.Diff(before, dev.Committed()); diff != "" {
		t.Errorf("committed configuration changed (-before +after):\n%s", diff)
	}

	// The lock was released: another driver applies right away; then the first one reconnects.
	dev.SetFault(devsim.Fault{})
	d2 := driver(t, dev, nil)
	if _, err := d2.Apply(ctx, lines(common, net2)); err != nil {
		t.Fatalf("second driver's Apply after the failure: %v", err)
	}
	if _, err := d.Apply(ctx, lines(common, net1, net2)); err != nil {
		t.Fatalf("first driver's Apply after the failure: %v", err)
	}
	if diff := cmp.Diff(sorted(lines(common, net1, net2)), vflinkOf(t, dev.Committed())); diff != "" {
		t.Errorf("device's vflink configuration (-desired +committed):\n%s", diff)
	}
}

func TestHangCommit(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	if _, err := d.Running(context.Background()); err != nil {
		t.Fatalf("Running: %v", err)
	}
	dev.SetFault(devsim.Fault{HangCommit: true})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := d.Apply(ctx, lines(common, net1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply with a hung commit = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "leaf1") {
		t.Errorf("error %q does not name the device", err)
	}
	// The driver closed its session: the device sees it end (and drops its lock and changes).
	eventually(t, "the session ends on the device", func() bool { return dev.Sessions() == 0 })
	if diff := cmp.Diff(dev.Committed(), dev.Candidate()); diff != "" {
		t.Errorf("candidate not discarded (-committed +candidate):\n%s", diff)
	}

	dev.SetFault(devsim.Fault{})
	if _, err := d.Apply(context.Background(), lines(common, net1)); err != nil {
		t.Fatalf("Apply after the hang: %v", err)
	}
	if diff := cmp.Diff(sorted(lines(common, net1)), vflinkOf(t, dev.Committed())); diff != "" {
		t.Errorf("device's vflink configuration (-desired +committed):\n%s", diff)
	}
}

func TestRPCTimeout(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, func(c *Config) { c.Timeout = 300 * time.Millisecond })
	dev.SetFault(devsim.Fault{HangCommit: true})
	_, err := d.Apply(context.Background(), lines(common, net1))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Apply with a hung commit = %v, want ErrTimeout", err)
	}
	for _, want := range []string{"leaf1", "commit confirmed", "300ms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	eventually(t, "the session ends on the device", func() bool { return dev.Sessions() == 0 })
	dev.SetFault(devsim.Fault{})
	if _, err := d.Apply(context.Background(), lines(common, net1)); err != nil {
		t.Fatalf("Apply after the timeout: %v", err)
	}
}

func TestDropAfterConfirmed(t *testing.T) {
	_, dev := leaf(t, devsim.Options{ConfirmUnit: 50 * time.Millisecond})
	d := driver(t, dev, func(c *Config) { c.ConfirmTimeout = 2 })
	ctx := context.Background()
	if _, err := d.Apply(ctx, lines(common, net1)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	before := dev.Committed()

	dev.SetFault(devsim.Fault{DropAfterConfirmed: true})
	if _, err := d.Apply(ctx, lines(common, net1, net2)); err == nil {
		t.Fatal("Apply whose session drops after the confirmed commit = nil error")
	}
	// The confirmation never came: the device rolls back by itself.
	eventually(t, "the device rolls back the unconfirmed commit", func() bool {
		return cmp.Equal(before, dev.Committed())
	})

	dev.SetFault(devsim.Fault{})
	if _, err := d.Apply(ctx, lines(common, net1, net2)); err != nil {
		t.Fatalf("Apply after the drop: %v", err)
	}
	// Confirmed this time: it stays after the confirm timeout (2 units) has long passed.
	time.Sleep(300 * time.Millisecond)
	if diff := cmp.Diff(sorted(lines(common, net1, net2)), vflinkOf(t, dev.Committed())); diff != "" {
		t.Errorf("confirmed configuration rolled back (-desired +committed):\n%s", diff)
	}
}

func TestStopStart(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	ctx := context.Background()
	if _, err := d.Apply(ctx, lines(common, net1)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	dev.Stop()
	if _, err := d.Apply(ctx, lines(common, net1, net2)); err == nil {
		t.Fatal("Apply to a stopped device = nil error")
	}
	if _, err := d.Running(ctx); err == nil {
		t.Fatal("Running on a stopped device = nil error")
	}
	if err := dev.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := d.Apply(ctx, lines(common, net1, net2)); err != nil {
		t.Fatalf("Apply after Start: %v", err)
	}
	if diff := cmp.Diff(sorted(lines(common, net1, net2)), vflinkOf(t, dev.Committed())); diff != "" {
		t.Errorf("device's vflink configuration (-desired +committed):\n%s", diff)
	}
}

func TestRefuse(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	dev.SetFault(devsim.Fault{Refuse: true})
	_, err := d.Running(context.Background())
	if err == nil || !strings.Contains(err.Error(), "leaf1") {
		t.Fatalf("Running on a refusing device = %v, want an error naming the device", err)
	}
	dev.SetFault(devsim.Fault{})
	if _, err := d.Running(context.Background()); err != nil {
		t.Fatalf("Running after the refusal: %v", err)
	}
}

func TestSessionReuseAndClose(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := d.Running(ctx); err != nil {
			t.Fatalf("Running: %v", err)
		}
	}
	if n := dev.Sessions(); n != 1 {
		t.Errorf("device sessions after three calls = %d, want 1 (one kept session)", n)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, "the session ends on the device", func() bool { return dev.Sessions() == 0 })
	if _, err := d.Running(ctx); err != nil {
		t.Fatalf("Running after Close: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Running(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Running with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			want := lines(common, net1)
			if i%2 == 1 {
				want = lines(common, net1, net2)
			}
			if _, err := d.Apply(ctx, want); err != nil {
				errs <- err
			}
			if _, err := d.Running(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
}

// TestNoGoroutineLeak checks that sessions end completely: scrapligo's reader goroutines can
// block forever when a transport reports an error with no RPC waiting, which the transport is
// built to avoid. Goroutines started by the calls under test carry a pprof label.
func TestNoGoroutineLeak(t *testing.T) {
	sim, dev := leaf(t, devsim.Options{})
	other, err := sim.Add("leaf2", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	labelled := func() bool { return labelledGoroutines() != "" }
	labels := pprof.Labels(leakLabel, "yes")
	d := driver(t, dev, nil)
	pprof.Do(context.Background(), labels, func(ctx context.Context) {
		if _, err := d.Apply(ctx, lines(common, net1)); err != nil {
			t.Errorf("Apply: %v", err)
		}
		if _, err := d.Running(ctx); err != nil {
			t.Errorf("Running: %v", err)
		}
		if !labelled() {
			t.Fatal("no labelled goroutine while a session is open: the leak check cannot see them")
		}
		dev.SetFault(devsim.Fault{FailCommit: "no"})
		if _, err := d.Apply(ctx, lines(common, net2)); err == nil {
			t.Error("Apply with a failing commit = nil error")
		}
		dev.SetFault(devsim.Fault{})
		if _, err := d.Running(ctx); err != nil {
			t.Errorf("Running: %v", err)
		}
		dev.Stop()
		if _, err := d.Running(ctx); err == nil {
			t.Error("Running on a stopped device = nil error")
		}
	})
	if err := dev.Start(); err != nil { // outside the label: the device's goroutines are not the driver's
		t.Fatal(err)
	}
	pprof.Do(context.Background(), labels, func(ctx context.Context) {
		if _, err := d.Running(ctx); err != nil {
			t.Errorf("Running: %v", err)
		}
		_ = d.Close()
		bad := driver(t, dev, func(c *Config) { c.Password = "nope" })
		if _, err := bad.Running(ctx); err == nil {
			t.Error("Running with a wrong password = nil error")
		}
		mismatch := driver(t, dev, func(c *Config) { c.HostKey = other.HostKey() })
		if _, err := mismatch.Running(ctx); err == nil {
			t.Error("Running with a wrong host key = nil error")
		}
	})
	noLabelledGoroutines(t)
}

const leakLabel = "junos-leak-test"

// labelledGoroutines returns the stacks of the goroutines carrying leakLabel, or "".
func labelledGoroutines() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	var out []string
	for g := range strings.SplitSeq(b.String(), "\n\n") {
		if strings.Contains(g, `"`+leakLabel+`":"yes"`) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// noLabelledGoroutines waits (up to 10s) until no goroutine carries leakLabel.
func noLabelledGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := labelledGoroutines()
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of the driver's left after 10s:\n%s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLargeConfiguration pushes and reads back a configuration of a few hundred kilobytes (many
// NETCONF chunks and transport reads).
func TestLargeConfiguration(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	for _, version := range []string{"1.0", "1.1"} {
		t.Run("netconf "+version, func(t *testing.T) {
			d := driver(t, dev, nil)
			d.version = version
			want := []string{"set apply-groups __vflink_access__"}
			for i := range 1500 {
				want = append(want,
					fmt.Sprintf(`set groups __vflink_access__ vlans bd-%d description "Virtual Network - %s %d"`, i+1, version, i),
					fmt.Sprintf("set groups __vflink_access__ vlans bd-%d vlan-id %d", i+1, i%4000+1),
					fmt.Sprintf("set groups __vflink_access__ vlans bd-%d vxlan vni %d", i+1, 100000+i))
			}
			ctx := context.Background()
			if _, err := d.Apply(ctx, want); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got, err := d.Running(ctx)
			if err != nil {
				t.Fatalf("Running: %v", err)
			}
			if diff := cmp.Diff(sorted(want), got); diff != "" {
				t.Errorf("Running (-desired +running):\n%s", diff)
			}
		})
	}
}

// TestConnectHonoursContext: a peer that accepts TCP and never speaks SSH holds the connection
// attempt only until the context ends.
func TestConnectHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	d := New(Config{Name: "mute", Address: ln.Addr().String(), Username: testUser, Password: testPassword})
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	pprof.Do(ctx, pprof.Labels(leakLabel, "yes"), func(ctx context.Context) {
		_, err = d.Running(ctx)
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Running against a mute peer = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "mute") {
		t.Errorf("error %q does not name the device", err)
	}
	noLabelledGoroutines(t) // the abandoned connection attempt ends too
}

func TestBadAddress(t *testing.T) {
	for _, addr := range []string{"leaf1", "127.0.0.1:port", "127.0.0.1:0", "[::1"} {
		d := New(Config{Name: "leaf1", Address: addr})
		_, err := d.Running(context.Background())
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("Running with address %q = %v, want an error naming it", addr, err)
		}
	}
}

// A push deletes the vflink groups the driver last saw; a group someone added by hand since then
// survives that push (the device manager's read-back then sees it), and the next push after a
// Running removes it.
func TestStaleLastConfigurationIsCorrectedAfterRunning(t *testing.T) {
	_, dev := leaf(t, devsim.Options{})
	d := driver(t, dev, nil)
	ctx := context.Background()
	if _, err := d.Apply(ctx, lines(common, net1)); err != nil {
		t.Fatal(err)
	}
	extra := "set groups __vflink_lag__ chassis aggregated-devices ethernet device-count 128"
	if err := dev.Exec(extra + "\nset apply-groups __vflink_lag__"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(ctx, lines(common, net2)); err != nil {
		t.Fatal(err)
	}
	got, err := d.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hasLine(got, extra) {
		t.Fatalf("a group added by hand after the last read was removed by a push that did not know it: %q", got)
	}
	if _, err := d.Apply(ctx, lines(common, net2)); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Running(ctx); hasLine(got, extra) || !slices.Equal(got, sorted(lines(common, net2))) {
		t.Fatalf("after Running and another push the device runs %q, want exactly the desired lines", got)
	}
}

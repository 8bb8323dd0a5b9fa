package lldp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func portFrame(t testing.TB, port string, ttl uint16) []byte {
	return buildFrame(t, frameSpec{
		chassisSubtype: layers.LLDPChassisIDSubTypeMACAddr, chassis: switchMAC,
		portSubtype: layers.LLDPPortIDSubtypeLocal, port: []byte(port), ttl: ttl,
		values: []layers.LinkLayerDiscoveryValue{
			tlv(layers.LLDPTLVPortDescription, []byte(port)),
			tlv(layers.LLDPTLVSysName, []byte("leaf1")),
		},
	})
}

func ports(t *testing.T, src Source) []string {
	t.Helper()
	ns, err := src.Neighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.Interface+"="+n.SwitchPort())
	}
	return out
}

func TestNativeExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	n := newNative(nil)
	n.Now = clk.Now

	n.observe("pf0", hostMAC, portFrame(t, "xe-0/0/3", 4))
	if got := fmt.Sprint(ports(t, n)); got != "[pf0=xe-0/0/3]" {
		t.Fatalf("after one frame: %s, want [pf0=xe-0/0/3]", got)
	}
	clk.Add(3 * time.Second)
	n.observe("pf0", hostMAC, portFrame(t, "xe-0/0/3", 4)) // refresh
	clk.Add(3 * time.Second)
	if got := fmt.Sprint(ports(t, n)); got != "[pf0=xe-0/0/3]" {
		t.Fatalf("3 s after a refresh with TTL 4 s: %s, want it alive", got)
	}
	ns, _ := n.Neighbors(context.Background())
	if want := time.Unix(1e9, 0); !ns[0].Changed.Equal(want) {
		t.Errorf("Changed = %v, want the first sighting %v (a refresh is no change)", ns[0].Changed, want)
	}

	// Re-cabling: the new port comes first, the old one waits for its TTL.
	n.observe("pf0", hostMAC, portFrame(t, "xe-0/0/4", 4))
	if got := fmt.Sprint(ports(t, n)); got != "[pf0=xe-0/0/4 pf0=xe-0/0/3]" {
		t.Fatalf("after re-cabling: %s, want the new port first", got)
	}
	clk.Add(time.Second)
	if got := fmt.Sprint(ports(t, n)); got != "[pf0=xe-0/0/4]" {
		t.Fatalf("4 s after the old port's last frame: %s, want it expired", got)
	}
	clk.Add(4 * time.Second)
	if got := ports(t, n); len(got) != 0 {
		t.Fatalf("after every TTL: %v, want none", got)
	}

	// A shutdown LLDPDU (TTL 0) removes the neighbor at once.
	n.observe("pf1", hostMAC, portFrame(t, "xe-0/0/5", 120))
	n.observe("pf1", hostMAC, portFrame(t, "xe-0/0/5", 0))
	if got := ports(t, n); len(got) != 0 {
		t.Fatalf("after a shutdown LLDPDU: %v, want none", got)
	}
}

func TestNativeIgnoresOwnAndBadFrames(t *testing.T) {
	n := newNative(nil)
	n.observe("pf0", switchMAC, portFrame(t, "xe-0/0/3", 120)) // sent by "us"
	n.observe("pf0", hostMAC, []byte{1, 2, 3})
	if got := ports(t, n); len(got) != 0 {
		t.Fatalf("got %v, want no neighbor from our own or a bad frame", got)
	}
}

func TestNativeBounded(t *testing.T) {
	n := newNative(nil)
	for i := range maxPerInterface + 10 {
		n.observe("pf0", hostMAC, portFrame(t, fmt.Sprintf("xe-0/0/%d", i), 120))
	}
	if got := len(ports(t, n)); got != maxPerInterface {
		t.Fatalf("kept %d neighbors, want at most %d", got, maxPerInterface)
	}
}

// fakeSource returns what it is given.
type fakeSource struct {
	mu  sync.Mutex
	ns  []Neighbor
	err error
}

func (f *fakeSource) set(err error, ns ...Neighbor) {
	f.mu.Lock()
	f.ns, f.err = ns, err
	f.mu.Unlock()
}

func (f *fakeSource) Neighbors(context.Context) ([]Neighbor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Neighbor(nil), f.ns...), f.err
}

func TestWatcher(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	src := &fakeSource{}
	var logs bytes.Buffer
	var events []string
	w := &watcher{
		src: src, ifaces: []string{"pf0", "pf1"}, hintAfter: 10 * time.Second, now: clk.Now,
		log: slog.New(slog.NewTextHandler(&logs, nil)),
		onChange: func(pf string, n *Neighbor) {
			if n == nil {
				events = append(events, pf+"=gone")
				return
			}
			events = append(events, pf+"="+n.SystemName+"/"+n.SwitchPort())
		},
		links: map[string]Neighbor{}, silent: map[string]time.Time{"pf0": clk.Now(), "pf1": clk.Now()}, hinted: map[string]bool{},
	}
	ctx := context.Background()
	leaf := func(port string, changed time.Time) Neighbor {
		return Neighbor{Interface: "pf0", ChassisIDSubtype: "mac", ChassisID: "2c:6b:f5:01:02:03", SystemName: "leaf1",
			PortIDSubtype: "local", PortID: "517", PortDescription: port, TTL: 120 * time.Second, LastSeen: clk.Now(), Changed: changed}
	}
	t0 := clk.Now()
	steps := []struct {
		set  func()
		want string
	}{
		{func() { src.set(nil, leaf("xe-0/0/3", t0)) }, "[pf0=leaf1/xe-0/0/3]"},
		{func() { src.set(nil, leaf("xe-0/0/3", t0)) }, "[]"},                                                          // no change
		{func() { src.set(fmt.Errorf("lldpcli: connection refused")) }, "[]"},                                          // keep the link
		{func() { src.set(nil, leaf("xe-0/0/3", t0), leaf("xe-0/0/4", t0.Add(time.Second))) }, "[pf0=leaf1/xe-0/0/4]"}, // re-cabled
		{func() { src.set(nil, leaf("xe-0/0/4", t0.Add(time.Second))) }, "[]"},                                         // old one expired
		{func() { src.set(nil) }, "[pf0=gone]"},
	}
	for i, s := range steps {
		events = nil
		s.set()
		clk.Add(time.Second)
		w.poll(ctx)
		if got := fmt.Sprint(events); got != s.want {
			t.Errorf("step %d: events %s, want %s", i, got, s.want)
		}
	}
	if strings.Contains(logs.String(), "no LLDP on pf1") {
		t.Errorf("hint for pf1 after %v, want it only after 10 s:\n%s", clk.Now().Sub(t0), logs.String())
	}
	clk.Add(10 * time.Second)
	w.poll(ctx)
	w.poll(ctx)
	if c := strings.Count(logs.String(), "no LLDP on pf1: is the switch sending LLDP? Intel X710/E810 firmware may consume LLDP frames; disable its LLDP agent (ethtool --set-priv-flags pf1 disable-fw-lldp on)"); c != 1 {
		t.Errorf("pf1 hint logged %d times, want once:\n%s", c, logs.String())
	}
	if c := strings.Count(logs.String(), "list lldp neighbors"); c != 1 {
		t.Errorf("source error logged %d times, want once", c)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &fakeSource{}
	src.set(nil, Neighbor{Interface: "pf0", SystemName: "leaf1", PortIDSubtype: "ifname", PortID: "swp1"})
	got := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, src, []string{"pf0"}, 10*time.Millisecond, func(pf string, n *Neighbor) {
			got <- pf + "=" + n.SwitchPort()
			cancel()
		}, nil)
	}()
	if g := <-got; g != "pf0=swp1" {
		t.Errorf("onChange %s, want pf0=swp1", g)
	}
	if err := <-done; err != nil {
		t.Errorf("Watch = %v, want nil after cancel", err)
	}
}

package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/host/agent"
	"github.com/vflink/vflink/internal/host/lldp"
)

// fakeLLDP is an lldp.Runner at the seam; the lldp package tests the real lldpd and AF_PACKET.
type fakeLLDP struct {
	mu sync.Mutex
	n  []lldp.Neighbor
}

func (f *fakeLLDP) Neighbors(context.Context) ([]lldp.Neighbor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lldp.Neighbor(nil), f.n...), nil
}

func (f *fakeLLDP) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (f *fakeLLDP) set(n ...lldp.Neighbor) { f.mu.Lock(); f.n = n; f.mu.Unlock() }

func TestAgentReportsPFLinks(t *testing.T) {
	r := newRig(t, 4)
	src := &fakeLLDP{}
	now := time.Now()
	src.set(lldp.Neighbor{Interface: "ens1f1", SystemName: "leaf1", ChassisID: "00:11:22:33:44:55", ChassisIDSubtype: "mac",
		PortID: "517", PortIDSubtype: "local", PortDescription: "xe-0/0/3", TTL: 120 * time.Second, LastSeen: now, Changed: now})
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, LLDP: src, StateDir: r.state})
	if err != nil {
		t.Fatal(err)
	}
	defer start(a)()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			hs, _ := r.c.Hosts(context.Background())
			got = ""
			if len(hs) == 1 && len(hs[0].PFs) == 1 && hs[0].PFs[0].Link != nil {
				got = hs[0].PFs[0].Link.SwitchName + " " + hs[0].PFs[0].Link.PortDescription
			}
			if got == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("registered link: got %q, want %q", got, want)
	}
	wait("leaf1 xe-0/0/3")
	// re-cabling is reported, and so is the neighbor's expiry
	src.set(lldp.Neighbor{Interface: "ens1f1", SystemName: "leaf2", PortID: "xe-0/0/9", PortIDSubtype: "ifname", PortDescription: "xe-0/0/9", TTL: 120 * time.Second, LastSeen: now, Changed: time.Now()})
	wait("leaf2 xe-0/0/9")
	src.set()
	wait("")
}

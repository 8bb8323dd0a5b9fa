package neutron_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
)

// hostPortService is a neutron.Service over the store of a test server that holds one VLAN 15
// network on physical network sriov.
func hostPortService(t *testing.T) (*neutron.Service, *auth.Context, string) {
	t.Helper()
	e := newEnv(t)
	n := e.network("blue", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "sriov", "provider:segmentation_id": 115})
	svc := neutron.New(e.st, neutron.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return svc, &auth.Context{UserID: "u", ProjectID: "p1", Roles: []string{"admin"}}, str(n, "id")
}

func asNeutron(err error, target **neutron.Error) bool { return errors.As(err, target) }

// TestWatchHostPortsFollowsBindings: the feed passes on what host agents see of ports (bound,
// moved, unbound, deleted), says when only the status changed, and nothing else.
func TestWatchHostPortsFollowsBindings(t *testing.T) {
	svc, admin, netID := hostPortService(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []neutron.HostPortChange
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	_, _, stopped, err := svc.WatchHostPorts(ctx, wctx, func(cs []neutron.HostPortChange) {
		mu.Lock()
		got = append(got, cs...)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	next := func(what string) neutron.HostPortChange {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			if len(got) > 0 {
				c := got[0]
				got = got[1:]
				mu.Unlock()
				return c
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no change for %s", what)
		return neutron.HostPortChange{}
	}
	p, err := svc.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "`+netID+`", "binding:vnic_type": "direct", "name": "a"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Bind(ctx, admin, p.ID, neutron.Binding{Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	c := next("bind")
	if c.PortID != p.ID || c.Host != "h1" || c.PrevHost != "" || c.Port.VLAN != 115 || c.Port.PhysicalNetwork != "sriov" || c.Port.Revision != c.Revision || c.StatusOnly {
		t.Fatalf("bind: %+v", c)
	}
	// a condition the agent does not see is not passed on; a status alone is, marked
	if err := svc.SetCondition(ctx, p.ID, api.Condition{Type: "LinkDiscovered", Status: "True"}); err != nil {
		t.Fatal(err)
	}
	revs, errs := svc.ReportStatuses(ctx, "h1", []api.PortReport{{PortID: p.ID, PortStatus: api.PortStatus{Status: api.StatusActive}}}, nil)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	if c = next("report"); c.Host != "h1" || !c.StatusOnly || c.Port.Status != api.StatusActive || c.Revision != revs[0] {
		t.Fatalf("status report: %+v (revision %d)", c, revs[0])
	}
	if _, err := svc.Bind(ctx, admin, p.ID, neutron.Binding{Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	if c = next("move"); c.Host != "h2" || c.PrevHost != "h1" || c.StatusOnly {
		t.Fatalf("move: %+v", c)
	}
	if err := svc.Unbind(ctx, admin, p.ID, ""); err != nil {
		t.Fatal(err)
	}
	if c = next("unbind"); c.Host != "" || c.PrevHost != "h2" {
		t.Fatalf("unbind: %+v", c)
	}
	// a port no agent serves (not VF-backed) is never passed on; a deleted bound port is
	if _, err := svc.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "`+netID+`", "binding:host_id": "h1"}}`)); err != nil {
		t.Fatal(err)
	}
	q, err := svc.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "`+netID+`", "binding:vnic_type": "direct", "binding:host_id": "h1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c = next("create bound"); c.PortID != q.ID || c.Host != "h1" {
		t.Fatalf("create bound: %+v", c)
	}
	if err := svc.DeletePort(ctx, admin, q.ID); err != nil {
		t.Fatal(err)
	}
	if c = next("delete"); c.PortID != q.ID || c.Host != "" || c.PrevHost != "h1" {
		t.Fatalf("delete: %+v", c)
	}
	stop()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the feed did not stop with its context")
	}
}

// TestReportStatusesOneByOne: a batch of reports records the good ones and says why each other
// one was refused; the feed's copies spare reads, and a stale copy is read again.
func TestReportStatusesOneByOne(t *testing.T) {
	svc, admin, netID := hostPortService(t)
	ctx := context.Background()
	bound := func(host string) string {
		p, err := svc.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "`+netID+`", "binding:vnic_type": "direct", "binding:host_id": "`+host+`"}}`))
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	a, b, other := bound("h1"), bound("h1"), bound("h2")
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	feed, _, _, err := svc.WatchHostPorts(ctx, wctx, func([]neutron.HostPortChange) {})
	if err != nil {
		t.Fatal(err)
	}
	// the feed's copy of a is now stale: the report must still land on the latest a
	if err := svc.SetCondition(ctx, a, api.Condition{Type: "LinkDiscovered", Status: "True", Reason: "Seen"}); err != nil {
		t.Fatal(err)
	}
	active := api.PortStatus{Status: api.StatusActive, Profile: map[string]any{"pci_slot": "0000:83:10.1"},
		Conditions: []api.Condition{{Type: "VFProgrammed", Status: "True", Reason: "Programmed"}}}
	revs, errs := svc.ReportStatuses(ctx, "h1", []api.PortReport{{PortID: a, PortStatus: active}, {PortID: b, PortStatus: active},
		{PortID: other, PortStatus: active}, {PortID: "nope", PortStatus: active}, {PortID: a, PortStatus: active},
		{PortID: b, PortStatus: api.PortStatus{Status: "GREAT"}}}, feed)
	want := []string{"", "", "PortNotBoundHere", "PortNotFound", "Invalid", "Invalid"}
	for i, w := range want {
		var ne *neutron.Error
		switch {
		case w == "" && errs[i] != nil:
			t.Fatalf("report %d: %v", i, errs[i])
		case w == "" && revs[i] == 0:
			t.Fatalf("report %d: no revision", i)
		case w != "" && (errs[i] == nil || !asNeutron(errs[i], &ne) || ne.Type != w && !(w == "Invalid" && ne.Status == 400)):
			t.Fatalf("report %d: %v, want %s", i, errs[i], w)
		}
	}
	p, err := svc.Port(ctx, admin, a)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != api.StatusActive || p.Profile["pci_slot"] != "0000:83:10.1" || len(p.Conditions) != 2 {
		t.Fatalf("port a: %s %v %+v, want ACTIVE with its pci_slot and both conditions", p.Status, p.Profile, p.Conditions)
	}
}

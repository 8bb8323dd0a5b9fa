package novanotify

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vflink/vflink/api"
)

const (
	srvA = "5b9f3b4e-8d0e-4d44-9a3c-2f1d7a7f0c11"
	srvB = "0c7b7c86-2a5f-4c93-bb6e-7c0e9e4c8d22"
)

func port(status, owner, device string, ips ...string) *api.Port {
	p := &api.Port{ID: "p1", Status: status, DeviceOwner: owner, DeviceID: device}
	for _, ip := range ips {
		p.FixedIPs = append(p.FixedIPs, api.FixedIP{SubnetID: "s1", IPAddress: ip})
	}
	return p
}

func was(p *api.Port) *portState {
	s := stateOf(p)
	return &s
}

// TestTransition: each change of a port makes Neutron's events, and only those.
func TestTransition(t *testing.T) {
	plugged := func(server, status string) Event {
		return Event{Name: VIFPlugged, ServerUUID: server, Tag: "p1", Status: status}
	}
	for _, tc := range []struct {
		name string
		prev *portState
		cur  *api.Port
		want []Event
	}{
		{"DOWN → ACTIVE", was(port("DOWN", "compute:nova", srvA)), port("ACTIVE", "compute:nova", srvA),
			[]Event{plugged(srvA, "completed")}},
		{"BUILD → ACTIVE", was(port("BUILD", "compute:az1", srvA)), port("ACTIVE", "compute:az1", srvA),
			[]Event{plugged(srvA, "completed")}},
		{"DOWN → ERROR", was(port("DOWN", "compute:nova", srvA)), port("ERROR", "compute:nova", srvA),
			[]Event{plugged(srvA, "failed")}},
		{"BUILD → ERROR", was(port("BUILD", "compute:nova", srvA)), port("ERROR", "compute:nova", srvA),
			[]Event{plugged(srvA, "failed")}},
		{"created ACTIVE (Neutron's NO_VALUE → ACTIVE)", nil, port("ACTIVE", "compute:nova", srvA),
			[]Event{plugged(srvA, "completed")}},
		{"created DOWN", nil, port("DOWN", "compute:nova", srvA, "10.0.0.5"), nil},
		{"ACTIVE → DOWN", was(port("ACTIVE", "compute:nova", srvA)), port("DOWN", "compute:nova", srvA),
			[]Event{{Name: VIFUnplugged, ServerUUID: srvA, Tag: "p1", Status: "completed"}}},
		{"ACTIVE → ERROR: nothing", was(port("ACTIVE", "compute:nova", srvA)), port("ERROR", "compute:nova", srvA), nil},
		{"ERROR → ACTIVE: nothing", was(port("ERROR", "compute:nova", srvA)), port("ACTIVE", "compute:nova", srvA), nil},
		{"ERROR → DOWN: nothing", was(port("ERROR", "compute:nova", srvA)), port("DOWN", "compute:nova", srvA), nil},
		{"ACTIVE → BUILD: nothing", was(port("ACTIVE", "compute:nova", srvA)), port("BUILD", "compute:nova", srvA), nil},
		{"DOWN → DOWN (rebind): nothing", was(port("DOWN", "compute:nova", srvA)), port("DOWN", "compute:nova", srvA), nil},
		{"ACTIVE → ACTIVE: nothing", was(port("ACTIVE", "compute:nova", srvA)), port("ACTIVE", "compute:nova", srvA), nil},
		{"unknown status → ACTIVE: nothing", was(port("WEIRD", "compute:nova", srvA)), port("ACTIVE", "compute:nova", srvA), nil},
		{"not a compute port", was(port("DOWN", "network:dhcp", srvA)), port("ACTIVE", "network:dhcp", srvA), nil},
		{"device port", was(port("DOWN", api.DeviceOwnerDevicePort, srvA)), port("ACTIVE", api.DeviceOwnerDevicePort, srvA), nil},
		{"no device_id", was(port("DOWN", "compute:nova", "")), port("ACTIVE", "compute:nova", ""), nil},
		{"device_id not UUID-like", was(port("DOWN", "compute:nova", "vm1")), port("ACTIVE", "compute:nova", "vm1"), nil},
		{"device_id without hyphens is UUID-like", was(port("DOWN", "compute:nova", "5b9f3b4e8d0e4d449a3c2f1d7a7f0c11")),
			port("ACTIVE", "compute:nova", "5b9f3b4e8d0e4d449a3c2f1d7a7f0c11"),
			[]Event{plugged("5b9f3b4e8d0e4d449a3c2f1d7a7f0c11", "completed")}},
		{"bound and ACTIVE in one write: the server it has now", was(port("DOWN", "", "")), port("ACTIVE", "compute:nova", srvA),
			[]Event{plugged(srvA, "completed")}},
		{"unbound and DOWN in one write: nothing (no server any more)", was(port("ACTIVE", "compute:nova", srvA)), port("DOWN", "", ""), nil},
		{"device_id changed while ACTIVE: nothing", was(port("ACTIVE", "compute:nova", srvA)), port("ACTIVE", "compute:nova", srvB), nil},
		{"moved to another server and DOWN: the new one", was(port("ACTIVE", "compute:nova", srvA)), port("DOWN", "compute:nova", srvB),
			[]Event{{Name: VIFUnplugged, ServerUUID: srvB, Tag: "p1", Status: "completed"}}},
		{"deleted compute port", was(port("ACTIVE", "compute:nova", srvA)), nil,
			[]Event{{Name: VIFDeleted, ServerUUID: srvA, Tag: "p1"}}},
		{"deleted other port", was(port("ACTIVE", "network:dhcp", srvA)), nil, nil},
		{"fixed IPs changed", was(port("ACTIVE", "compute:nova", srvA, "10.0.0.5")), port("ACTIVE", "compute:nova", srvA, "10.0.0.6"),
			[]Event{{Name: NetworkChanged, ServerUUID: srvA, Tag: "p1"}}},
		{"fixed IP added", was(port("DOWN", "compute:nova", srvA, "10.0.0.5")), port("DOWN", "compute:nova", srvA, "10.0.0.5", "10.0.0.9"),
			[]Event{{Name: NetworkChanged, ServerUUID: srvA, Tag: "p1"}}},
		{"fixed IPs reordered: nothing", was(port("ACTIVE", "compute:nova", srvA, "10.0.0.5", "10.0.0.9")),
			port("ACTIVE", "compute:nova", srvA, "10.0.0.9", "10.0.0.5"), nil},
		{"fixed IPs of another port: nothing", was(port("DOWN", "network:dhcp", srvA, "10.0.0.5")), port("DOWN", "network:dhcp", srvA, "10.0.0.6"), nil},
		{"status and fixed IPs in one write: both, status first", was(port("DOWN", "compute:nova", srvA, "10.0.0.5")),
			port("ACTIVE", "compute:nova", srvA, "10.0.0.6"),
			[]Event{plugged(srvA, "completed"), {Name: NetworkChanged, ServerUUID: srvA, Tag: "p1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := transition("p1", tc.prev, tc.cur)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQueue: a full queue drops its oldest events (counted), and the checkpoint never passes an
// event that is waiting or in flight.
func TestQueue(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(3, m, 10)
	ev := func(rev int64) pending { return pending{ev: Event{Name: VIFPlugged, Tag: "p"}, rev: rev} }
	q.push([]pending{ev(11), ev(12)})
	q.setComplete(12)
	if c := q.checkpoint(); c != 10 {
		t.Fatalf("checkpoint with 11 waiting: got %d, want 10", c)
	}
	q.push([]pending{ev(13), ev(14)})
	if d := testutil.ToFloat64(m.dropped.WithLabelValues(VIFPlugged)); d != 1 {
		t.Fatalf("dropped: got %v, want 1", d)
	}
	batch := q.take(nil, 2)
	if len(batch) != 2 || batch[0].rev != 12 || batch[1].rev != 13 {
		t.Fatalf("take: got %+v, want revisions 12 and 13", batch)
	}
	q.setComplete(14)
	if c := q.checkpoint(); c != 11 {
		t.Fatalf("checkpoint with 12 in flight: got %d, want 11", c)
	}
	q.sent()
	if c := q.checkpoint(); c != 13 {
		t.Fatalf("checkpoint with 14 waiting: got %d, want 13", c)
	}
	q.take(nil, 5)
	q.sent()
	if c := q.checkpoint(); c != 14 {
		t.Fatalf("checkpoint with nothing left: got %d, want 14", c)
	}
}

package binder_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/binder"
)

func ptr[T any](v T) *T { return &v }

func link(sw, chassis, portID, subtype, desc string) *api.LLDPLink {
	return &api.LLDPLink{SwitchName: sw, ChassisID: chassis, PortID: portID, PortIDSubtype: subtype, PortDescription: desc}
}

func base() binder.Snapshot {
	return binder.Snapshot{
		Networks: map[string]api.Network{
			"blue":  {ID: "blue", VNID: 5, PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(15)},
			"bare":  {ID: "bare", VNID: 6},
			"red":   {ID: "red", VNID: 7, PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(7)},
			"green": {ID: "green", VNID: 9, PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(9)},
			"trunk": {ID: "trunk", VNID: 3, PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(0)},
		},
		Hosts: map[string]api.Host{
			"c1": {Name: "c1", PFs: []api.PF{
				{Name: "ens1f0", Link: link("leaf1", "00:11:22:33:44:01", "517", "local", "xe-0/0/3")},
				{Name: "ens1f1", Link: link("leaf2", "00:11:22:33:44:02", "xe-0/0/7", "ifname", "")},
				{Name: "ens2f0", Link: link("spine9", "00:aa:00:00:00:09", "xe-0/0/1", "ifname", "")},
				{Name: "ens2f1"},
			}},
		},
		Devices: []api.Device{
			{Name: "leaf1", ManagementAddress: "192.0.2.11:830"},
			{Name: "sw-b", ChassisMAC: "00:11:22:33:44:02", ManagementAddress: "192.0.2.12:830"},
		},
	}
}

func port(id, net, server string) api.Port {
	return api.Port{ID: id, NetworkID: net, HostID: "c1", VNICType: api.VNICDirect, DeviceID: server}
}

func alloc(port, pf string) api.VFAllocation {
	return api.VFAllocation{Host: "c1", PF: pf, PortID: port}
}

func TestDerive(t *testing.T) {
	cases := []struct {
		name     string
		ports    []api.Port
		allocs   []api.VFAllocation
		devices  func([]api.Device) []api.Device
		want     []api.Attachment
		problems []string
	}{
		{
			name:   "access VF: the port description names the interface when Junos sends an ifIndex",
			ports:  []api.Port{port("p1", "blue", "vm1")},
			allocs: []api.VFAllocation{alloc("p1", "ens1f0")},
			want:   []api.Attachment{{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"p1"}}},
		},
		{
			name:   "two VMs on one switch port share the attachment; the switch is matched by chassis MAC",
			ports:  []api.Port{port("p1", "blue", "vm1"), port("p2", "blue", "vm2"), port("p3", "blue", "")},
			allocs: []api.VFAllocation{alloc("p1", "ens1f1"), alloc("p2", "ens1f1"), alloc("p3", "ens1f1")},
			want:   []api.Attachment{{Device: "sw-b", Interface: "xe-0/0/7", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"p1", "p2", "p3"}}},
		},
		{
			name:   "multi-homing: one server's ports on two switches become one port group on both",
			ports:  []api.Port{port("p1", "blue", "vm1"), port("p2", "blue", "vm1")},
			allocs: []api.VFAllocation{alloc("p1", "ens1f0"), alloc("p2", "ens1f1")},
			want: []api.Attachment{
				{Device: "leaf1", PortGroup: []api.Member{{Device: "leaf1", Interface: "xe-0/0/3"}, {Device: "sw-b", Interface: "xe-0/0/7"}}, NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"p1", "p2"}},
				{Device: "sw-b", PortGroup: []api.Member{{Device: "leaf1", Interface: "xe-0/0/3"}, {Device: "sw-b", Interface: "xe-0/0/7"}}, NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"p1", "p2"}},
			},
		},
		{
			name:     "unknown switch, no LLDP, no VF yet, network without VLAN",
			ports:    []api.Port{port("p1", "blue", ""), port("p2", "blue", ""), port("p3", "blue", ""), port("p4", "bare", "")},
			allocs:   []api.VFAllocation{alloc("p1", "ens2f0"), alloc("p2", "ens2f1"), alloc("p4", "ens1f0")},
			problems: []string{"p1 UnknownSwitch", "p2 NoLink", "p3 NoVF", "p4 NoVLAN"},
		},
		{
			name:   "port-name rewrite turns an ifIndex into the interface",
			ports:  []api.Port{port("p1", "blue", "")},
			allocs: []api.VFAllocation{alloc("p1", "ens1f0")},
			devices: func(d []api.Device) []api.Device {
				d[0].PortNameRewrite = &api.PortRewrite{Regex: `^xe-0/0/(\d+)$`, Replacement: "et-0/0/$1"}
				return d
			},
			want: []api.Attachment{{Device: "leaf1", Interface: "et-0/0/3", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"p1"}}},
		},
		{
			name: "manual step 5: a baremetal port with local_link_information drives the same attachment",
			ports: []api.Port{
				{ID: "d1", NetworkID: "blue", VNICType: api.VNICBaremetal, Profile: map[string]any{"local_link_information": []any{
					map[string]any{"switch_info": "leaf1", "port_id": "xe-0/0/5"}}}},
				{ID: "d2", NetworkID: "blue", VNICType: api.VNICBaremetal, Profile: map[string]any{"local_link_information": []any{
					map[string]any{"switch_info": "nope", "port_id": "xe-0/0/5"}}}},
				{ID: "d3", NetworkID: "blue", VNICType: api.VNICBaremetal, Profile: map[string]any{"local_link_information": []any{
					map[string]any{"switch_id": "00:11:22:33:44:02", "port_id": "xe-0/0/1"}, map[string]any{"switch_info": "leaf1", "port_id": "xe-0/0/1"}}}},
			},
			want: []api.Attachment{
				{Device: "leaf1", PortGroup: []api.Member{{Device: "leaf1", Interface: "xe-0/0/1"}, {Device: "sw-b", Interface: "xe-0/0/1"}}, NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"d3"}, Manual: true},
				{Device: "leaf1", Interface: "xe-0/0/5", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"d1"}, Manual: true},
				{Device: "sw-b", PortGroup: []api.Member{{Device: "leaf1", Interface: "xe-0/0/1"}, {Device: "sw-b", Interface: "xe-0/0/1"}}, NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"d3"}, Manual: true},
			},
			problems: []string{"d2 UnknownSwitch"},
		},
	}
	// trunk VFs: a parent port with subports on red and blue; subports are plain unbound ports
	sub := func(id, net string) api.Port { return api.Port{ID: id, NetworkID: net, VNICType: api.VNICNormal} }
	trunkPort := func(id, net, created string, subs ...string) api.Port {
		p := port(id, net, "vm-"+id)
		p.CreatedAt = created
		p.TrunkDetails = &api.TrunkDetails{TrunkID: "tr-" + id, SubPorts: []api.SubPortMAC{}}
		for _, s := range subs {
			p.TrunkDetails.SubPorts = append(p.TrunkDetails.SubPorts, api.SubPortMAC{SubPort: api.SubPort{PortID: s, SegmentationType: "vlan"}})
		}
		return p
	}
	cases = append(cases, []struct {
		name     string
		ports    []api.Port
		allocs   []api.VFAllocation
		devices  func([]api.Device) []api.Device
		want     []api.Attachment
		problems []string
	}{
		{
			name:   "trunk VF, tagged: the parent on the trunk network (VLAN 0) carries only its subports' networks, tagged",
			ports:  []api.Port{trunkPort("t1", "trunk", "1", "s-red", "s-blue"), sub("s-red", "red"), sub("s-blue", "blue")},
			allocs: []api.VFAllocation{alloc("t1", "ens1f0")},
			want: []api.Attachment{
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "red", VNI: 7, VLAN: 7, Ports: []string{"t1"}},
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"t1"}},
			},
		},
		{
			name:   "trunk VF, native: the parent's own network is carried untagged, subports tagged",
			ports:  []api.Port{trunkPort("t1", "green", "1", "s-red", "s-blue"), sub("s-red", "red"), sub("s-blue", "blue")},
			allocs: []api.VFAllocation{alloc("t1", "ens1f0")},
			want: []api.Attachment{
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "red", VNI: 7, VLAN: 7, Ports: []string{"t1"}},
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "green", VNI: 9, VLAN: 9, Native: true, Ports: []string{"t1"}},
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "blue", VNI: 5, VLAN: 15, Ports: []string{"t1"}},
			},
		},
		{
			name: "one untagged network per switch port: the second trunk VF's native network is refused, the first kept",
			ports: []api.Port{trunkPort("t2", "blue", "2"), trunkPort("t1", "green", "1", "s-red"), sub("s-red", "red"),
				port("a1", "trunk", "vm-a")},
			allocs: []api.VFAllocation{alloc("t1", "ens1f0"), alloc("t2", "ens1f0"), alloc("a1", "ens1f0")},
			want: []api.Attachment{
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "red", VNI: 7, VLAN: 7, Ports: []string{"t1"}},
				{Device: "leaf1", Interface: "xe-0/0/3", NetworkID: "green", VNI: 9, VLAN: 9, Native: true, Ports: []string{"t1"}},
			},
			problems: []string{"t2 NativeConflict"},
		},
	}...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			s.Ports, s.Allocations = c.ports, c.allocs
			if c.devices != nil {
				s.Devices = c.devices(s.Devices)
			}
			got := binder.Derive(s)
			if diff := cmp.Diff(c.want, got.Attachments); diff != "" {
				t.Errorf("attachments (-want +got):\n%s", diff)
			}
			var probs []string
			for _, p := range got.Problems {
				probs = append(probs, p.PortID+" "+p.Reason)
				if p.Message == "" {
					t.Errorf("problem of %s has no message", p.PortID)
				}
				if p.Reason == "NativeConflict" && !strings.Contains(p.Message, "already carries network green untagged (VLAN 9, for port t1)") {
					t.Errorf("NativeConflict message does not name the network kept: %s", p.Message)
				}
			}
			if diff := cmp.Diff(c.problems, probs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

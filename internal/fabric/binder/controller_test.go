package binder_test

import (
	"context"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/fabric/binder"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

func TestControllerKeepsDevicePorts(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	net := neutron.New(st, neutron.Config{})
	admin := &auth.Context{ProjectID: "p1", Roles: []string{"admin"}}
	// a VLAN network, a bound VF port with its VF claim, the host's PF link and the device
	n := api.Network{ID: "net1", Name: "red", ProjectID: "p1", TenantID: "p1", VNID: 5, PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(15), NetworkType: ptr("vlan")}
	if _, err := store.Create(ctx, st, "networks/net1", n); err != nil {
		t.Fatal(err)
	}
	vf, err := net.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "net1", "binding:vnic_type": "direct", "binding:host_id": "h1", "device_id": "vm1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	other, err := net.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "net1", "binding:vnic_type": "direct", "binding:host_id": "h1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	store.Create(ctx, st, "vfs/h1/0000:83:10.1", api.VFAllocation{Host: "h1", PF: "ens1f1", PCIAddress: "0000:83:10.1", PortID: vf.ID})
	store.Create(ctx, st, "vfs/h1/0000:83:10.3", api.VFAllocation{Host: "h1", PF: "ens1f0", PCIAddress: "0000:83:10.3", PortID: other.ID})
	store.Create(ctx, st, "hosts/h1", api.Host{Name: "h1", PFs: []api.PF{
		{Name: "ens1f1", Link: link("leaf1", "00:11:22:33:44:55", "517", "local", "xe-0/0/3")},
		{Name: "ens1f0", Link: link("spine7", "00:99:00:00:00:07", "xe-0/0/1", "ifname", "")},
	}})
	store.Create(ctx, st, "devices/leaf1", api.Device{Name: "leaf1", Driver: "junos", ManagementAddress: "127.0.0.1:830", ChassisMAC: "00:11:22:33:44:55"})

	c := binder.NewController(st, net, nil)
	devPorts := func() []api.Port {
		ports, _, _ := store.List[api.Port](ctx, st, "ports/")
		var out []api.Port
		for _, o := range ports {
			if o.Value.DeviceOwner == api.DeviceOwnerDevicePort {
				out = append(out, o.Value)
			}
		}
		return out
	}
	cond := func(id string) api.Condition {
		o, _ := store.Get[api.Port](ctx, st, "ports/"+id)
		for _, c := range o.Value.Conditions {
			if c.Type == binder.CondLinkDiscovered {
				return c
			}
		}
		return api.Condition{}
	}
	for i := 0; i < 2; i++ { // the second sync finds nothing to do
		if _, err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		dp := devPorts()
		if len(dp) != 1 {
			t.Fatalf("sync %d: %d device ports, want 1", i, len(dp))
		}
		lli, _ := dp[0].Profile["local_link_information"].([]any)
		if dp[0].VNICType != api.VNICBaremetal || len(dp[0].FixedIPs) != 0 || len(lli) != 1 {
			t.Fatalf("device port: %+v", dp[0])
		}
		l := lli[0].(map[string]any)
		if l["switch_info"] != "leaf1" || l["port_id"] != "xe-0/0/3" || l["switch_id"] != "00:11:22:33:44:55" {
			t.Fatalf("local_link_information: %v", l)
		}
	}
	intent := func() api.DeviceIntent {
		o, err := store.Get[api.DeviceIntent](ctx, st, binder.IntentKey("leaf1"))
		if err != nil {
			t.Fatalf("intent of leaf1: %v", err)
		}
		return o.Value
	}
	o1, _ := store.Get[api.DeviceIntent](ctx, st, binder.IntentKey("leaf1"))
	if in := intent(); len(in.Attachments) != 1 || in.Attachments[0].Interface != "xe-0/0/3" || in.Attachments[0].VLAN != 15 ||
		in.Attachments[0].VNI != 5 || in.Attachments[0].NetworkName != n.Name || len(in.Attachments[0].Ports) != 1 {
		t.Fatalf("intent of leaf1: %+v", in)
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if o2, _ := store.Get[api.DeviceIntent](ctx, st, binder.IntentKey("leaf1")); o2.ModRevision != o1.ModRevision {
		t.Fatalf("an unchanged intent was rewritten (revision %d → %d)", o1.ModRevision, o2.ModRevision)
	}
	if got := cond(vf.ID); got.Status != "True" || got.Message != "VLAN 15 on leaf1 xe-0/0/3" {
		t.Fatalf("LinkDiscovered of the VF port: %+v", got)
	}
	if got := cond(other.ID); got.Status != "False" || got.Reason != "UnknownSwitch" {
		t.Fatalf("LinkDiscovered of the port behind an unknown switch: %+v", got)
	}
	// the last VF port on the link goes: the device port goes with it
	if err := net.DeletePort(ctx, admin, vf.ID); err != nil {
		t.Fatal(err)
	}
	o, _ := store.Get[api.VFAllocation](ctx, st, "vfs/h1/0000:83:10.1")
	st.Delete(ctx, "vfs/h1/0000:83:10.1", o.ModRevision)
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if dp := devPorts(); len(dp) != 0 {
		t.Fatalf("device ports after the VF port left: %d, want 0", len(dp))
	}
	if in := intent(); len(in.Attachments) != 0 {
		t.Fatalf("intent of leaf1 after the last VF port left: %+v, want no attachments", in)
	}
	// an unregistered device loses its intent
	od, _ := store.Get[api.Device](ctx, st, "devices/leaf1")
	st.Delete(ctx, "devices/leaf1", od.ModRevision)
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get[api.DeviceIntent](ctx, st, binder.IntentKey("leaf1")); err == nil {
		t.Fatal("the intent of a deleted device is still there")
	}
}

func TestRunWakesOnManualDevicePort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	net := neutron.New(st, neutron.Config{})
	store.Create(ctx, st, "networks/net1", api.Network{ID: "net1", Name: "red", ProjectID: "p1", TenantID: "p1", VNID: 5,
		PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(15), NetworkType: ptr("vlan")})
	store.Create(ctx, st, "devices/leaf1", api.Device{Name: "leaf1", Driver: "junos", ManagementAddress: "127.0.0.1:830"})
	done := make(chan struct{})
	go func() { binder.NewController(st, net, nil).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	intent := func() []api.Attachment {
		o, _ := store.Get[api.DeviceIntent](ctx, st, binder.IntentKey("leaf1"))
		return o.Value.Attachments
	}
	// the seed's manual step 5: no host, no binding; only the port's creation can wake the binder
	// before its 30 s tick
	time.Sleep(300 * time.Millisecond)
	admin := &auth.Context{ProjectID: "p1", Roles: []string{"admin"}}
	p, err := net.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "net1", "binding:vnic_type": "baremetal", "fixed_ips": [],
		"binding:profile": {"local_link_information": [{"switch_info": "leaf1", "port_id": "xe-0/0/3"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a := intent(); len(a) != 1 || !a[0].Manual || a[0].Interface != "xe-0/0/3"; a = intent() {
		if time.Now().After(deadline) {
			t.Fatalf("intent of leaf1 after a manual device port: %+v", a)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := net.DeletePort(ctx, admin, p.ID); err != nil {
		t.Fatal(err)
	}
	for a := intent(); len(a) != 0; a = intent() {
		if time.Now().After(deadline) {
			t.Fatalf("intent of leaf1 after the manual device port was deleted: %+v", a)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

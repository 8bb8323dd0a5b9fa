package devicemgr_test

// The device manager against the Junos-like simulator over real SSH (NETCONF), with the real
// junos driver and renderer, the binder and the Neutron service on a real embedded etcd.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/fabric/binder"
	"github.com/vflink/vflink/internal/fabric/devicemgr"
	"github.com/vflink/vflink/internal/fabric/devsim"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

const injection = `x"; delete interfaces; set system host-name pwned`

type fabric struct {
	t    *testing.T
	st   *store.Store
	net  *neutron.Service
	bind *binder.Controller
	leaf *devsim.Device
	vf   api.Port
}

var admin = &auth.Context{ProjectID: "p1", Roles: []string{"admin"}}

// newFabric makes leaf1 (a simulated Junos leaf whose operator set its host name), registers it
// (pinned host key unless tofu), and binds one VF port on network "net1" named name (VN ID 5,
// VLAN 15) to host h1, whose PF ens1f1 hears leaf1 xe-0/0/3 in LLDP.
func newFabric(t *testing.T, name string, tofu bool) *fabric {
	ctx := context.Background()
	sim := devsim.New(devsim.Options{Username: "vflink", Password: "s3cret", ConfirmUnit: 50 * time.Millisecond})
	t.Cleanup(func() { sim.Close() })
	leaf, err := sim.Add("leaf1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.Exec("set system host-name leaf1"); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fabric{t: t, st: st, net: neutron.New(st, neutron.Config{}), leaf: leaf}
	f.bind = binder.NewController(st, f.net, nil)
	creds := api.DeviceCredentials{Username: "vflink", Password: "s3cret", HostKey: leaf.HostKey()}
	if tofu {
		creds.HostKey = ""
	}
	t1 := st.Txn()
	t1.Create("devices/leaf1", api.Device{Name: "leaf1", Driver: "junos", ManagementAddress: leaf.Addr(), ChassisMAC: "00:11:22:33:44:55", HasCredentials: true})
	t1.Create("device-secrets/leaf1", creds)
	t1.Create("networks/net1", api.Network{ID: "net1", Name: name, ProjectID: "p1", TenantID: "p1", VNID: 5,
		PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(15), NetworkType: ptr("vlan")})
	t1.Create("hosts/h1", api.Host{Name: "h1", PFs: []api.PF{{Name: "ens1f1", Link: &api.LLDPLink{
		SwitchName: "leaf1", ChassisID: "00:11:22:33:44:55", ChassisIDSubtype: "mac", PortID: "xe-0/0/3", PortIDSubtype: "ifname"}}}})
	if _, err := t1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f.vf, err = f.net.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "net1", "binding:vnic_type": "direct", "binding:host_id": "h1", "device_id": "vm1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, st, "vfs/h1/0000:83:10.1", api.VFAllocation{Host: "h1", PF: "ens1f1", PCIAddress: "0000:83:10.1", PortID: f.vf.ID}); err != nil {
		t.Fatal(err)
	}
	f.sync()
	return f
}

func ptr[T any](v T) *T { return &v }

func (f *fabric) sync() {
	if _, err := f.bind.Sync(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fabric) opts() devicemgr.Options {
	return devicemgr.Options{Conditions: f.net.SetCondition, Resync: time.Hour,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, LeaseTTL: time.Second, Quiet: 20 * time.Millisecond}
}

func (f *fabric) status() api.DeviceStatus {
	o, _ := store.Get[api.DeviceStatus](context.Background(), f.st, devicemgr.StatusKey("leaf1"))
	return o.Value
}

func (f *fabric) cond(id string) api.Condition {
	o, _ := store.Get[api.Port](context.Background(), f.st, "ports/"+id)
	for _, c := range o.Value.Conditions {
		if c.Type == devicemgr.CondDeviceConfigured {
			return c
		}
	}
	return api.Condition{}
}

func has(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

const vlanLine = "set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-5"

func TestJunosConvergesAndUserStringsStayQuoted(t *testing.T) {
	f := newFabric(t, injection, false)
	m := devicemgr.New(f.st, f.opts())
	run(t, m)
	eventually(t, "leaf1 carries VLAN 15 (bd-5) on xe-0/0/3", func() bool {
		return has(f.leaf.Committed(), vlanLine) && f.status().InSync
	})
	got := f.leaf.Committed()
	desc := `set groups __vflink_access__ vlans bd-5 description "vflink network x\"; delete interfaces; set system host-name pwned (net1)"`
	if !has(got, desc) {
		t.Errorf("the network name did not arrive as one quoted description; device runs:\n%s", strings.Join(got, "\n"))
	}
	for _, l := range got {
		if strings.HasPrefix(l, "set system host-name") && l != "set system host-name leaf1" {
			t.Errorf("a user string reached the configuration as a statement: %s", l)
		}
	}
	if !has(got, "set system host-name leaf1") || !has(got, "set groups __vflink_access__ vlans bd-5 vlan-id 15") {
		t.Errorf("device runs:\n%s", strings.Join(got, "\n"))
	}
	s := f.status()
	if !s.Reachable || !strings.HasPrefix(s.LastCommitRevision, "re0-") || s.Commits != 1 || s.LastError != "" {
		t.Errorf("status: %+v", s)
	}
	eventually(t, "DeviceConfigured True on the VF port", func() bool {
		c := f.cond(f.vf.ID)
		return c.Status == "True" && strings.Contains(c.Message, s.LastCommitRevision)
	})
	// `vflink device config` reads the same lines back from the device
	lines, err := m.Running(context.Background(), "leaf1")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range got {
		if strings.HasPrefix(l, "set groups __vflink_") || strings.HasPrefix(l, "set apply-groups __vflink_") {
			want = append(want, l)
		}
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Running:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// the last VF port of the network on that switch port goes: the VLAN goes, the rest stays
	if err := f.net.DeletePort(context.Background(), admin, f.vf.ID); err != nil {
		t.Fatal(err)
	}
	o, _ := store.Get[api.VFAllocation](context.Background(), f.st, "vfs/h1/0000:83:10.1")
	f.st.Delete(context.Background(), "vfs/h1/0000:83:10.1", o.ModRevision)
	f.sync()
	eventually(t, "vflink's configuration removed from leaf1", func() bool {
		c := f.leaf.Committed()
		return len(c) == 1 && c[0] == "set system host-name leaf1"
	})
}

func TestJunosDeviceDownRetriesThenConverges(t *testing.T) {
	f := newFabric(t, "red", false)
	f.leaf.Stop()
	run(t, devicemgr.New(f.st, f.opts()))
	eventually(t, "unreachable in status", func() bool {
		s := f.status()
		return !s.Reachable && s.LastError != "" && f.cond(f.vf.ID).Status == "False"
	})
	if err := f.leaf.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "converged once the device is back", func() bool {
		s := f.status()
		return has(f.leaf.Committed(), vlanLine) && s.InSync && s.Reachable && s.LastError == "" && f.cond(f.vf.ID).Status == "True"
	})
}

func TestJunosCommitFailureIsDiscardedAndRetried(t *testing.T) {
	f := newFabric(t, "red", false)
	f.leaf.SetFault(devsim.Fault{FailCommit: "error: configuration check-out failed: commit script rejected"})
	run(t, devicemgr.New(f.st, f.opts()))
	eventually(t, "the device's message in status and an event", func() bool {
		s := f.status()
		return strings.Contains(s.LastError, "commit script rejected") && len(s.Events) > 0 && s.Events[0].Reason == "CommitFailed"
	})
	if c, k := f.leaf.Candidate(), f.leaf.Committed(); strings.Join(c, "\n") != strings.Join(k, "\n") {
		t.Fatalf("the failed change was not discarded: candidate\n%s\ncommitted\n%s", strings.Join(c, "\n"), strings.Join(k, "\n"))
	}
	f.leaf.SetFault(devsim.Fault{})
	eventually(t, "converged after the fault clears", func() bool {
		return has(f.leaf.Committed(), vlanLine) && f.status().InSync
	})
}

func TestJunosUnconfirmedCommitRollsBackAndIsRepushed(t *testing.T) {
	f := newFabric(t, "red", false)
	f.leaf.SetFault(devsim.Fault{DropAfterConfirmed: true})
	o := f.opts()
	o.BackoffMin, o.BackoffMax = 400*time.Millisecond, 400*time.Millisecond // longer than the 50 ms confirm timeout
	run(t, devicemgr.New(f.st, o))
	rolledBack := func() bool {
		for _, c := range f.leaf.History() {
			if c.Rollback {
				return true
			}
		}
		return false
	}
	eventually(t, "the device rolls back the unconfirmed commit", rolledBack)
	f.leaf.SetFault(devsim.Fault{})
	eventually(t, "re-pushed and confirmed", func() bool {
		h := f.leaf.History()
		last := h[len(h)-1]
		return has(last.Lines, vlanLine) && !last.Confirmed && !last.Rollback && f.status().InSync
	})
}

func TestJunosDriftIsDetectedAndRepaired(t *testing.T) {
	f := newFabric(t, "red", false)
	o := f.opts()
	o.Resync = 100 * time.Millisecond
	run(t, devicemgr.New(f.st, o))
	eventually(t, "converged", func() bool { return has(f.leaf.Committed(), vlanLine) && f.status().InSync })
	if err := f.leaf.Exec("delete groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-5"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "drift repaired and recorded", func() bool {
		s := f.status()
		for _, e := range s.Events {
			if e.Reason == "DriftRepaired" {
				return has(f.leaf.Committed(), vlanLine) && s.InSync
			}
		}
		return false
	})
}

func TestJunosHostKeyLearntThenPinned(t *testing.T) {
	f := newFabric(t, "red", true)
	run(t, devicemgr.New(f.st, f.opts()))
	eventually(t, "converged", func() bool { return f.status().InSync })
	c, err := store.Get[api.DeviceCredentials](context.Background(), f.st, "device-secrets/leaf1")
	if err != nil || c.Value.HostKey != f.leaf.HostKey() {
		t.Fatalf("pinned host key %q (%v), want the device's %q", c.Value.HostKey, err, f.leaf.HostKey())
	}
	// another key pinned: the device is refused and the status says why
	other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE7qlxvEnHP4yeu5raf5sgamxECtr6dInghgyBY8dUq5"
	cred := c.Value
	cred.HostKey = other
	if _, err := store.Update(context.Background(), f.st, "device-secrets/leaf1", cred, c.ModRevision); err != nil {
		t.Fatal(err)
	}
	eventually(t, "host key mismatch reported", func() bool {
		s := f.status()
		return !s.Reachable && strings.Contains(strings.ToLower(s.LastError), "host key")
	})
}

func TestJunosTrunkVFNativeAndTagged(t *testing.T) {
	f := newFabric(t, "green", false)
	ctx := context.Background()
	// net2 (VN 7, VLAN 7) reaches the VM tagged through a subport; the VF port becomes the trunk's
	// parent, so its own network (VLAN 15) is carried untagged
	if _, err := store.Create(ctx, f.st, "networks/net2", api.Network{ID: "net2", Name: "red", ProjectID: "p1", TenantID: "p1", VNID: 7,
		PhysicalNetwork: ptr("sriov"), SegmentationID: ptr(7), NetworkType: ptr("vlan")}); err != nil {
		t.Fatal(err)
	}
	sub, err := f.net.CreatePort(ctx, admin, []byte(`{"port": {"network_id": "net2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	o, _ := store.Get[api.Port](ctx, f.st, "ports/"+f.vf.ID)
	p := o.Value
	p.TrunkDetails = &api.TrunkDetails{TrunkID: "t1", SubPorts: []api.SubPortMAC{{SubPort: api.SubPort{PortID: sub.ID, SegmentationType: "vlan", SegmentationID: 7}}}}
	if _, err := store.Update(ctx, f.st, "ports/"+p.ID, p, o.ModRevision); err != nil {
		t.Fatal(err)
	}
	f.sync()
	run(t, devicemgr.New(f.st, f.opts()))
	want := []string{
		"set groups __vflink_access__ interfaces xe-0/0/3 native-vlan-id 15",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-5",
		"set groups __vflink_access__ interfaces xe-0/0/3 unit 0 family ethernet-switching vlan members bd-7",
		"set groups __vflink_access__ vlans bd-7 vlan-id 7",
	}
	eventually(t, "leaf1 carries VLAN 15 untagged and VLAN 7 tagged on xe-0/0/3", func() bool {
		c := f.leaf.Committed()
		for _, l := range want {
			if !has(c, l) {
				return false
			}
		}
		return f.status().InSync
	})
}

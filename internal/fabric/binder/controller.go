package binder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// CondLinkDiscovered is the port condition the binder owns.
const CondLinkDiscovered = "LinkDiscovered"

// Controller keeps the device ports (seed step 5: baremetal ports with local_link_information,
// device_owner vflink:device-port) and the ports' LinkDiscovered conditions in line with Derive.
// With several servers on one store, one controller leads (an etcd election) and the others wait.
type Controller struct {
	st  *store.Store
	net *neutron.Service
	log *slog.Logger
}

// NewController returns the binder's controller.
func NewController(st *store.Store, net *neutron.Service, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Controller{st: st, net: net, log: log.With("component", "binder")}
}

var admin = &auth.Context{UserID: "vflink-binder", Roles: []string{"admin"}}

// Run leads, then syncs on every change of port bindings, hosts, VF claims, devices and networks
// (a burst coalesces into one sync) and every 30 s, until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lctx, resign, err := c.st.Lead(ctx, "binder", 10*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("election", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		c.log.Info("binder leads")
		c.loop(lctx)
		resign()
	}
	return nil
}

func (c *Controller) loop(ctx context.Context) {
	trigger := make(chan struct{}, 1)
	kick := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	// bindings (idx/net-bound), links, VF claims, devices, networks and trunks; not ports/ itself, whose
	// status churn (and every unbound port create) does not change what switches carry
	for _, p := range []string{"idx/net-bound/", "hosts/", "vfs/", "devices/", "networks/", "trunks/"} {
		go func(p string) {
			for e := range c.st.Watch(ctx, p, 0) {
				if e.Err != nil {
					return
				}
				kick()
			}
		}(p)
	}
	// ports/ itself only for the manual step-5 form (baremetal ports with local_link_information,
	// which are never bound) and for deletes
	go func() {
		for e := range c.st.Watch(ctx, "ports/", 0) {
			if e.Err != nil {
				return
			}
			if e.Type == store.Deleted || bytes.Contains(e.Value, []byte(`"binding:vnic_type":"baremetal"`)) {
				kick()
			}
		}
	}()
	kick()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick.C:
		}
		time.Sleep(100 * time.Millisecond) // let a burst land, then sync once
		select {
		case <-trigger:
		default:
		}
		if _, err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("sync", "err", err)
		}
	}
}

// Snapshot reads the whole state Derive needs.
func (c *Controller) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	ports, rev, err := store.List[api.Port](ctx, c.st, "ports/")
	if err != nil {
		return s, err
	}
	at := store.ListOptions{Rev: rev}
	nets, _, err := store.List[api.Network](ctx, c.st, "networks/", at)
	if err != nil {
		return s, err
	}
	hosts, _, err := store.List[api.Host](ctx, c.st, "hosts/", at)
	if err != nil {
		return s, err
	}
	allocs, _, err := store.List[api.VFAllocation](ctx, c.st, "vfs/", at)
	if err != nil {
		return s, err
	}
	devs, _, err := store.List[api.Device](ctx, c.st, "devices/", at)
	if err != nil {
		return s, err
	}
	s.Networks, s.Hosts = map[string]api.Network{}, map[string]api.Host{}
	for _, o := range ports {
		s.Ports = append(s.Ports, o.Value)
	}
	for _, o := range nets {
		s.Networks[o.Value.ID] = o.Value
	}
	for _, o := range hosts {
		s.Hosts[o.Value.Name] = o.Value
	}
	for _, o := range allocs {
		s.Allocations = append(s.Allocations, o.Value)
	}
	for _, o := range devs {
		s.Devices = append(s.Devices, o.Value)
	}
	return s, nil
}

// devicePort is one desired device port.
type devicePort struct {
	key, network, name, project string
	links                       []map[string]string
}

// Sync makes the device ports and conditions match one snapshot; it returns what it derived.
func (c *Controller) Sync(ctx context.Context) (Result, error) {
	snap, err := c.Snapshot(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Derive(snap)
	chassis := map[string]string{}
	for _, d := range snap.Devices {
		chassis[d.Name] = d.ChassisMAC
	}
	want := map[string]devicePort{}
	for _, a := range res.Attachments {
		if a.Manual {
			continue // the user's own device port stands for it
		}
		n := snap.Networks[a.NetworkID]
		members := a.PortGroup
		if len(members) == 0 {
			members = []api.Member{{Device: a.Device, Interface: a.Interface}}
		}
		var parts []string
		var links []map[string]string
		for _, m := range members {
			parts = append(parts, m.Device+":"+m.Interface)
			l := map[string]string{"switch_info": m.Device, "port_id": m.Interface}
			if chassis[m.Device] != "" {
				l["switch_id"] = chassis[m.Device]
			}
			links = append(links, l)
		}
		key := "vflink:" + strings.Join(parts, ",")
		want[a.NetworkID+"|"+key] = devicePort{key: key, network: a.NetworkID, name: "vflink-" + strings.Join(parts, ","),
			project: n.ProjectID, links: links}
	}
	have := map[string]api.Port{}
	var errs []string
	for _, p := range snap.Ports {
		if p.DeviceOwner != api.DeviceOwnerDevicePort || !strings.HasPrefix(p.DeviceID, "vflink:") {
			continue // not one the binder made: leave it alone
		}
		k := p.NetworkID + "|" + p.DeviceID
		if _, ok := want[k]; !ok {
			if err := c.net.DeletePort(ctx, admin, p.ID); err != nil {
				errs = append(errs, err.Error())
			} else {
				c.log.Info("device port removed", "port", p.ID, "network", p.NetworkID, "device", p.DeviceID)
			}
			continue
		}
		have[k] = p
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := have[k]; ok {
			continue
		}
		d := want[k]
		body, _ := json.Marshal(map[string]any{"port": map[string]any{
			"network_id": d.network, "name": d.name, "tenant_id": d.project, "fixed_ips": []any{},
			"binding:vnic_type": api.VNICBaremetal, "device_owner": api.DeviceOwnerDevicePort, "device_id": d.key,
			"binding:profile": map[string]any{"local_link_information": d.links},
		}})
		p, err := c.net.CreatePort(ctx, admin, body)
		if err != nil {
			errs = append(errs, fmt.Sprintf("create device port %s on network %s: %v", d.name, d.network, err))
			continue
		}
		c.log.Info("device port created", "port", p.ID, "network", d.network, "device", d.key)
	}
	if err := c.writeIntents(ctx, snap.Devices, res.Attachments); err != nil {
		errs = append(errs, err.Error())
	}
	// one condition per port, whatever the number of devices it reaches
	where := map[string]map[string]bool{}
	for _, a := range res.Attachments {
		w := a.Device + " " + a.Interface
		if len(a.PortGroup) > 0 {
			w = "port group " + strings.TrimSuffix(memberKey(a.PortGroup), ",")
		}
		w = fmt.Sprintf("VLAN %d on %s", a.VLAN, w)
		for _, pid := range a.Ports {
			if where[pid] == nil {
				where[pid] = map[string]bool{}
			}
			where[pid][w] = true
		}
	}
	for pid, ws := range where {
		var list []string
		for w := range ws {
			list = append(list, w)
		}
		sort.Strings(list)
		cond := api.Condition{Type: CondLinkDiscovered, Status: "True", Reason: "Attached", Message: strings.Join(list, "; ")}
		if err := c.net.SetCondition(ctx, pid, cond); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, p := range res.Problems {
		if p.Reason == "NoVF" || p.Reason == "NoVLAN" {
			continue // the agent's VFProgrammed (or the binding) already says why; no link to look for yet
		}
		cond := api.Condition{Type: CondLinkDiscovered, Status: "False", Reason: p.Reason, Message: p.Message}
		if err := c.net.SetCondition(ctx, p.PortID, cond); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("binder sync: %s", strings.Join(errs, "; "))
	}
	return res, nil
}

// IntentKey is where the binder keeps what a device must carry (api.DeviceIntent).
func IntentKey(device string) string { return "fabric-intent/" + device }

// writeIntents keeps one intent per registered device (empty when it carries nothing, so the
// device manager removes what vflink configured there) and removes those of unregistered devices.
// An intent is written only when it changes, so the device manager wakes only for real changes.
func (c *Controller) writeIntents(ctx context.Context, devs []api.Device, atts []api.Attachment) error {
	want := map[string]*api.DeviceIntent{}
	for _, d := range devs {
		want[d.Name] = &api.DeviceIntent{Device: d.Name, Attachments: []api.Attachment{}}
	}
	for _, a := range atts {
		if in := want[a.Device]; in != nil {
			in.Attachments = append(in.Attachments, a)
		}
	}
	have, _, err := store.List[api.DeviceIntent](ctx, c.st, "fabric-intent/")
	if err != nil {
		return err
	}
	t := c.st.Txn()
	n := 0
	for _, o := range have {
		in, ok := want[o.Value.Device]
		if !ok {
			t.Remove(IntentKey(o.Value.Device))
			n++
			continue
		}
		delete(want, o.Value.Device)
		if !reflect.DeepEqual(normal(o.Value), normal(*in)) {
			t.Update(IntentKey(in.Device), in, o.ModRevision)
			n++
		}
	}
	for _, in := range want {
		t.Create(IntentKey(in.Device), in)
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := t.Commit(ctx); err != nil {
		return fmt.Errorf("write device intents: %w", err)
	}
	return nil
}

// normal makes nil and empty slices compare equal.
func normal(in api.DeviceIntent) api.DeviceIntent {
	b, _ := json.Marshal(in)
	var out api.DeviceIntent
	json.Unmarshal(b, &out)
	if out.Attachments == nil {
		out.Attachments = []api.Attachment{}
	}
	return out
}

package neutron_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/neutron"
)

// TestBindingExtendedLiveMigration follows Nova's live migration of an SR-IOV port: an inactive
// binding on the destination (served nowhere), activation (in one write the destination's binding
// and VF become the port's, the port DOWN until that host's agent reports, the source's binding
// inactive and its host no longer serving the port), then the source's binding deleted.
func TestBindingExtendedLiveMigration(t *testing.T) {
	e := newEnv(t)
	n := e.network("blue", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "sriov", "provider:segmentation_id": 115})
	netID := str(n, "id")
	svc := neutron.New(e.st, neutron.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	src := map[string]any{"pci_slot": "0000:81:10.2", "pci_vendor_info": "8086:10ed", "physical_network": "sriov"}
	dst := map[string]any{"pci_slot": "0000:82:10.4", "pci_vendor_info": "8086:10ed", "physical_network": "sriov"}

	// only compute ports have bindings
	plain := e.port(netID, map[string]any{"binding:vnic_type": "direct"}).obj("port")
	r := e.must(400, "GET", "/ports/"+str(plain, "id")+"/bindings", nil)
	if r.errMsg() == "" {
		t.Fatalf("no message: %s", r.raw)
	}

	p := e.port(netID, map[string]any{"binding:vnic_type": "direct", "device_owner": "compute:nova", "device_id": "vm1",
		"binding:host_id": "h1", "binding:profile": src}).obj("port")
	id := str(p, "id")
	if _, err := svc.ReportStatus(ctx, id, "h1", api.PortStatus{Status: api.StatusActive}); err != nil {
		t.Fatal(err)
	}
	l := e.must(200, "GET", "/ports/"+id+"/bindings", nil).body["bindings"].([]any)
	if len(l) != 1 || str(l[0].(map[string]any), "host") != "h1" || str(l[0].(map[string]any), "status") != "ACTIVE" || str(l[0].(map[string]any), "vif_type") != "hw_veb" {
		t.Fatalf("bindings of a bound port: %v", l)
	}

	// a member may not touch bindings; a second binding on the same host conflicts; a VNIC type
	// vflink cannot bind is refused with Neutron's PortBindingError and stores nothing
	e.must(403, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h2"}}, "X-Roles", "member")
	if r := e.must(409, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h1", "vnic_type": "direct"}}); r.errType() != "PortBindingAlreadyExists" {
		t.Fatalf("duplicate: %s", r.raw)
	}
	if r := e.must(500, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h2"}}); r.errType() != "PortBindingError" {
		t.Fatalf("normal binding: %s", r.raw)
	}
	e.must(400, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"vnic_type": "direct"}})
	e.must(400, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h2", "vnic_type": "fast"}})

	// the destination's binding: INACTIVE, not served, the port still ACTIVE on h1
	b := e.must(201, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h2", "vnic_type": "direct", "profile": dst}}).obj("binding")
	if str(b, "status") != "INACTIVE" || str(b, "vif_type") != "hw_veb" || str(b["profile"].(map[string]any), "pci_slot") != "0000:82:10.4" {
		t.Fatalf("new binding: %v", b)
	}
	if hp, _, _ := svc.HostPorts(ctx, "h2"); len(hp) != 0 {
		t.Fatalf("an inactive binding is served: %+v", hp)
	}
	shown := e.must(200, "GET", "/ports/"+id, nil).obj("port")
	if str(shown, "status") != "ACTIVE" || str(shown, "binding:host_id") != "h1" {
		t.Fatalf("port changed by an inactive binding: %v", shown)
	}
	if _, leak := shown["vflink:inactive_bindings"]; leak {
		t.Fatalf("the port shows its stored bindings: %v", shown)
	}
	if r := e.must(200, "GET", "/ports/"+id+"/bindings?status=INACTIVE", nil); len(r.body["bindings"].([]any)) != 1 {
		t.Fatalf("status filter: %s", r.raw)
	}
	e.must(400, "GET", "/ports/"+id+"/bindings?colour=red", nil)
	e.must(200, "GET", "/ports/"+id+"/bindings/h2", nil)
	e.must(404, "GET", "/ports/"+id+"/bindings/h3", nil)
	e.must(404, "PUT", "/ports/"+id+"/bindings/h3/activate", nil)
	if r := e.must(409, "PUT", "/ports/"+id+"/bindings/h1/activate", nil); r.errType() != "PortBindingAlreadyActive" {
		t.Fatalf("activate active: %s", r.raw)
	}

	// an inactive binding's profile can be changed (Nova re-claims another VF); host is the URL's
	moved := map[string]any{"pci_slot": "0000:82:10.2", "pci_vendor_info": "8086:10ed", "physical_network": "sriov"}
	u := e.must(200, "PUT", "/ports/"+id+"/bindings/h2", map[string]any{"binding": map[string]any{"profile": moved}}).obj("binding")
	if str(u["profile"].(map[string]any), "pci_slot") != "0000:82:10.2" || str(u, "status") != "INACTIVE" {
		t.Fatalf("updated binding: %v", u)
	}
	e.must(400, "PUT", "/ports/"+id+"/bindings/h2", map[string]any{"binding": map[string]any{"host": "h4"}})
	e.must(200, "PUT", "/ports/"+id+"/bindings/h2", map[string]any{"binding": map[string]any{"profile": dst}})

	// activation: one write
	a := e.must(200, "PUT", "/ports/"+id+"/bindings/h2/activate", nil).body
	if str(a, "host") != "h2" || str(a, "status") != "ACTIVE" || str(a, "vif_type") != "hw_veb" {
		t.Fatalf("activate answers %v", a)
	}
	shown = e.must(200, "GET", "/ports/"+id, nil).obj("port")
	if str(shown, "binding:host_id") != "h2" || str(shown, "status") != "DOWN" || str(shown["binding:profile"].(map[string]any), "pci_slot") != "0000:82:10.4" {
		t.Fatalf("after activation: %v", shown)
	}
	for _, c := range shown["vflink:conditions"].([]any) {
		if str(c.(map[string]any), "type") == api.ConditionVFProgrammed {
			t.Fatalf("the source's VF condition survived: %v", c)
		}
	}
	h1, _, _ := svc.HostPorts(ctx, "h1")
	h2, _, _ := svc.HostPorts(ctx, "h2")
	if len(h1) != 0 || len(h2) != 1 || h2[0].PCISlot != "0000:82:10.4" || h2[0].VLAN != 115 {
		t.Fatalf("served after activation: h1 %+v, h2 %+v", h1, h2)
	}
	old := e.must(200, "GET", "/ports/"+id+"/bindings/h1", nil).obj("binding")
	if str(old, "status") != "INACTIVE" || str(old["profile"].(map[string]any), "pci_slot") != "0000:81:10.2" {
		t.Fatalf("the source's binding: %v", old)
	}

	// the source's binding deleted; deleting it again is no error (as in Neutron)
	e.must(204, "DELETE", "/ports/"+id+"/bindings/h1", nil)
	e.must(204, "DELETE", "/ports/"+id+"/bindings/h1", nil)
	if l := e.must(200, "GET", "/ports/"+id+"/bindings", nil).body["bindings"].([]any); len(l) != 1 || str(l[0].(map[string]any), "host") != "h2" {
		t.Fatalf("bindings after delete: %v", l)
	}

	// deleting the active binding unbinds the port
	e.must(204, "DELETE", "/ports/"+id+"/bindings/h2", nil)
	shown = e.must(200, "GET", "/ports/"+id, nil).obj("port")
	if str(shown, "binding:host_id") != "" || str(shown, "binding:vif_type") != "unbound" {
		t.Fatalf("after deleting the active binding: %v", shown)
	}
	// a binding on an unbound port is the active one
	b = e.must(201, "POST", "/ports/"+id+"/bindings", map[string]any{"binding": map[string]any{"host": "h3", "vnic_type": "direct", "profile": src}}).obj("binding")
	if str(b, "status") != "ACTIVE" {
		t.Fatalf("first binding: %v", b)
	}
	if h3, _, _ := svc.HostPorts(ctx, "h3"); len(h3) != 1 || h3[0].PCISlot != "0000:81:10.2" {
		t.Fatalf("h3 serves %+v", h3)
	}
}

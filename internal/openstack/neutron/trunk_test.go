package neutron_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vflink/vflink/internal/openstack/neutron"
)

func TestTrunks(t *testing.T) {
	e := newEnv(t)
	vlan := func(name string, seg int) string {
		return str(e.network(name, map[string]any{"provider:network_type": "vlan", "provider:physical_network": "sriov", "provider:segmentation_id": seg}), "id")
	}
	green, red, blue, trunkNet := vlan("green", 109), vlan("red", 107), vlan("blue", 108), vlan("trunknet", 0)
	other := str(e.network("other", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 5}), "id")
	plain := str(e.network("plain", nil), "id")
	port := func(net string, extra map[string]any) string {
		r := e.port(net, extra)
		if r.code != 201 {
			t.Fatalf("port on %s: %d %s", net, r.code, r.raw)
		}
		return str(r.obj("port"), "id")
	}
	direct := map[string]any{"binding:vnic_type": "direct"}
	parent := port(green, direct)
	sRed, sBlue, sRed2 := port(red, nil), port(blue, nil), port(red, nil)
	sOther, sPlain := port(other, nil), port(plain, nil)
	normalParent := port(trunkNet, nil)
	boundParent := port(trunkNet, map[string]any{"binding:vnic_type": "direct", "binding:host_id": "h1"})
	sub := func(p string, seg any) map[string]any {
		return map[string]any{"port_id": p, "segmentation_type": "vlan", "segmentation_id": seg}
	}
	create := func(parent string, subs ...map[string]any) resp {
		if subs == nil {
			subs = []map[string]any{}
		}
		return e.do("POST", "/trunks", map[string]any{"trunk": map[string]any{"name": "t", "port_id": parent, "sub_ports": subs}})
	}

	for _, c := range []struct {
		name, wantType, wantMsg string
		code                    int
		r                       func() resp
	}{
		{"no parent", "HTTPBadRequest", "'port_id' is required", 400, func() resp {
			return e.do("POST", "/trunks", map[string]any{"trunk": map[string]any{"name": "t"}})
		}},
		{"normal parent", "InvalidInput", "binding:vnic_type normal", 400, func() resp { return create(normalParent) }},
		{"bound parent", "ParentPortInUse", "bound to host h1", 409, func() resp { return create(boundParent) }},
		{"VLAN mismatch", "InvalidInput", "segmentation_id 112 does not match VLAN 107", 400, func() resp { return create(parent, sub(sRed, 112)) }},
		{"VLAN out of range", "InvalidInput", "segmentation_id 4095 is not a VLAN ID", 400, func() resp { return create(parent, sub(sRed, 4095)) }},
		{"other physnet", "InvalidInput", "physical network physnet2", 400, func() resp { return create(parent, sub(sOther, 5)) }},
		{"no VLAN", "InvalidInput", "has no provider VLAN", 400, func() resp { return create(parent, sub(sPlain, 5)) }},
		{"bad type", "InvalidInput", `segmentation_type "vxlan" is not supported`, 400, func() resp {
			return create(parent, map[string]any{"port_id": sRed, "segmentation_type": "vxlan", "segmentation_id": 107})
		}},
		{"same VLAN twice", "DuplicateSubPort", "is already used by subport", 409, func() resp { return create(parent, sub(sRed, 107), sub(sRed2, 107)) }},
		{"parent as subport", "PortInUse", "parent port", 409, func() resp { return create(parent, sub(parent, 109)) }},
		{"unknown subport", "PortNotFound", "nope", 404, func() resp { return create(parent, sub("nope", 107)) }},
	} {
		r := c.r()
		if r.code != c.code || r.errType() != c.wantType || !strings.Contains(r.errMsg(), c.wantMsg) {
			t.Errorf("%s: got %d %s %q, want %d %s containing %q", c.name, r.code, r.errType(), r.errMsg(), c.code, c.wantType, c.wantMsg)
		}
	}
	if n := len(e.must(200, "GET", "/trunks", nil).body["trunks"].([]any)); n != 0 {
		t.Fatalf("%d trunks after refused creates, want 0", n)
	}

	r := create(parent, sub(sRed, 107), map[string]any{"port_id": sBlue, "segmentation_type": "inherit"})
	if r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.raw)
	}
	tr := r.obj("trunk")
	tid := str(tr, "id")
	subs := tr["sub_ports"].([]any)
	if len(subs) != 2 || num(subs[1].(map[string]any), "segmentation_id") != 108 || str(tr, "status") != "DOWN" {
		t.Fatalf("trunk: %v (inherit must resolve to the network's VLAN 108)", tr)
	}
	td := e.must(200, "GET", "/ports/"+parent, nil).obj("port")["trunk_details"].(map[string]any)
	if str(td, "trunk_id") != tid || len(td["sub_ports"].([]any)) != 2 || str(td["sub_ports"].([]any)[0].(map[string]any), "mac_address") == "" {
		t.Fatalf("parent's trunk_details: %v", td)
	}
	// a port is in one trunk only; members cannot be deleted
	if r := create(port(trunkNet, direct), sub(sRed, 107)); r.code != 409 || r.errType() != "PortInUse" || !strings.Contains(r.errMsg(), tid) {
		t.Errorf("subport of another trunk: got %d %s", r.code, r.raw)
	}
	for _, p := range []string{parent, sRed} {
		if r := e.do("DELETE", "/ports/"+p, nil); r.code != 409 || r.errType() != "PortInUse" {
			t.Errorf("delete trunk member %s: got %d %s, want 409 PortInUse", p, r.code, r.raw)
		}
	}
	// remove and add subports (Neutron answers with the bare trunk)
	r = e.must(200, "PUT", "/trunks/"+tid+"/remove_subports", map[string]any{"sub_ports": []any{map[string]any{"port_id": sRed}}})
	if len(r.body["sub_ports"].([]any)) != 1 {
		t.Fatalf("after remove: %s", r.raw)
	}
	if r := e.do("PUT", "/trunks/"+tid+"/remove_subports", map[string]any{"sub_ports": []any{map[string]any{"port_id": sRed}}}); r.code != 404 || r.errType() != "SubPortNotFound" {
		t.Errorf("remove a port that is not a subport: %d %s", r.code, r.raw)
	}
	e.must(204, "DELETE", "/ports/"+sRed, nil)
	e.must(200, "PUT", "/trunks/"+tid+"/add_subports", map[string]any{"sub_ports": []any{sub(sRed2, 107)}})
	got := e.must(200, "GET", "/trunks/"+tid+"/get_subports", nil).body["sub_ports"].([]any)
	if len(got) != 2 {
		t.Fatalf("get_subports: %v", got)
	}
	if r := e.do("PUT", "/trunks/"+tid+"/add_subports", map[string]any{"sub_ports": []any{sub(port(red, nil), 107)}}); r.code != 409 || r.errType() != "DuplicateSubPort" {
		t.Errorf("second subport with VLAN 107: %d %s", r.code, r.raw)
	}
	// other projects do not see it
	if r := e.do("GET", "/trunks/"+tid, nil, "X-Project-Id", "p2", "X-Roles", "member"); r.code != 404 {
		t.Errorf("another project's trunk: %d, want 404", r.code)
	}
	e.must(200, "PUT", "/trunks/"+tid, map[string]any{"trunk": map[string]any{"name": "renamed"}})
	if r := e.must(200, "GET", "/trunks?name=renamed", nil); len(r.body["trunks"].([]any)) != 1 {
		t.Errorf("filter by name: %s", r.raw)
	}
	// bound, the parent's VF passes the VM's tags: the host sees VLAN 0 for it
	e.must(200, "PUT", "/ports/"+parent, map[string]any{"port": map[string]any{"binding:host_id": "h1"}})
	hps, _, err := neutron.New(e.st, neutron.Config{}).HostPorts(context.Background(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range hps {
		if hp.PortID == parent && hp.VLAN != 0 {
			t.Errorf("the trunk's parent port reaches its host with VLAN %d, want 0 (a trunk VF)", hp.VLAN)
		}
	}
	if r := e.do("DELETE", "/trunks/"+tid, nil); r.code != 409 || r.errType() != "TrunkInUse" {
		t.Errorf("delete a trunk whose parent is bound: %d %s, want 409 TrunkInUse", r.code, r.raw)
	}
	e.must(200, "PUT", "/ports/"+parent, map[string]any{"port": map[string]any{"binding:host_id": ""}})
	e.must(204, "DELETE", "/trunks/"+tid, nil)
	if p := e.must(200, "GET", "/ports/"+parent, nil).obj("port"); p["trunk_details"] != nil {
		t.Errorf("trunk_details after the trunk went: %v", p["trunk_details"])
	}
	e.must(204, "DELETE", "/ports/"+parent, nil)
	e.must(204, "DELETE", "/ports/"+sRed2, nil)
}

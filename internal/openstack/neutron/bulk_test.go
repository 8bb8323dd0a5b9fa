package neutron_test

import (
	"fmt"
	"strings"
	"testing"
)

func count(e *env, path, plural string) int {
	e.t.Helper()
	l, _ := e.must(200, "GET", path, nil).body[plural].([]any)
	return len(l)
}

func TestBulkCreateNetworksSubnetsPorts(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/networks", map[string]any{"networks": []any{
		map[string]any{"name": "a", "provider:network_type": "vlan", "provider:physical_network": "sriov"},
		map[string]any{"name": "b", "provider:network_type": "vlan", "provider:physical_network": "sriov"},
		map[string]any{"name": "c", "provider:network_type": "vlan", "provider:physical_network": "sriov"}}})
	nets, _ := r.body["networks"].([]any)
	if len(nets) != 3 {
		t.Fatalf("bulk networks: got %s", r.raw)
	}
	vlans := map[float64]bool{}
	ids := make([]string, 3)
	for i, n := range nets {
		m := n.(map[string]any)
		ids[i] = str(m, "id")
		if str(m, "name") != string(rune('a'+i)) {
			t.Errorf("network %d is %q: bulk answers in request order", i, str(m, "name"))
		}
		v, _ := m["provider:segmentation_id"].(float64)
		if vlans[v] {
			t.Errorf("two networks of one bulk got VLAN %v", v)
		}
		vlans[v] = true
	}

	r = e.must(201, "POST", "/subnets", map[string]any{"subnets": []any{
		map[string]any{"network_id": ids[0], "cidr": "10.1.0.0/24", "ip_version": 4},
		map[string]any{"network_id": ids[0], "cidr": "2001:db8:1::/64", "ip_version": 6},
		map[string]any{"network_id": ids[1], "cidr": "10.1.0.0/24", "ip_version": 4}}})
	if l, _ := r.body["subnets"].([]any); len(l) != 3 {
		t.Fatalf("bulk subnets: %s", r.raw)
	}
	// overlapping CIDRs of one network inside one bulk: nothing is created
	r = e.must(400, "POST", "/subnets", map[string]any{"subnets": []any{
		map[string]any{"network_id": ids[2], "cidr": "10.2.0.0/24", "ip_version": 4},
		map[string]any{"network_id": ids[2], "cidr": "10.2.0.0/25", "ip_version": 4}}})
	if !strings.Contains(r.errMsg(), "item 2 of 2") || !strings.Contains(r.errMsg(), "overlaps") {
		t.Errorf("overlap in one bulk: %s", r.raw)
	}
	if n := count(e, "/subnets?network_id="+ids[2], "subnets"); n != 0 {
		t.Errorf("a failed bulk left %d subnets", n)
	}

	var ports []any
	for i := 0; i < 50; i++ {
		ports = append(ports, map[string]any{"network_id": ids[0], "name": fmt.Sprint("p", i)})
	}
	r = e.must(201, "POST", "/ports", map[string]any{"ports": ports})
	got, _ := r.body["ports"].([]any)
	if len(got) != 50 {
		t.Fatalf("bulk ports: %d", len(got))
	}
	ips, macs := map[string]bool{}, map[string]bool{}
	for _, p := range got {
		m := p.(map[string]any)
		fips, _ := m["fixed_ips"].([]any)
		if len(fips) != 2 {
			t.Fatalf("port %s has %v, want one IPv4 and one IPv6 address", str(m, "id"), fips)
		}
		for _, f := range fips {
			ip := str(f.(map[string]any), "ip_address")
			if ips[ip] {
				t.Errorf("address %s given twice in one bulk", ip)
			}
			ips[ip] = true
		}
		if macs[str(m, "mac_address")] {
			t.Errorf("MAC %s given twice", str(m, "mac_address"))
		}
		macs[str(m, "mac_address")] = true
	}

	// all or nothing: the third port asks for an address the first one already has
	before := count(e, "/ports", "ports")
	r = e.must(409, "POST", "/ports", map[string]any{"ports": []any{
		map[string]any{"network_id": ids[1], "fixed_ips": []any{map[string]any{"ip_address": "10.1.0.50"}}},
		map[string]any{"network_id": ids[1]},
		map[string]any{"network_id": ids[1], "fixed_ips": []any{map[string]any{"ip_address": "10.1.0.50"}}}}})
	if r.errType() != "IpAddressAlreadyAllocated" || !strings.Contains(r.errMsg(), "item 3 of 3") {
		t.Errorf("duplicate address in one bulk: %s", r.raw)
	}
	// and a port on an unknown network
	r = e.must(404, "POST", "/ports", map[string]any{"ports": []any{
		map[string]any{"network_id": ids[1]}, map[string]any{"network_id": "nope"}}})
	if r.errType() != "NetworkNotFound" {
		t.Errorf("unknown network in one bulk: %s", r.raw)
	}
	if after := count(e, "/ports", "ports"); after != before {
		t.Errorf("failed bulks changed the port count %d -> %d", before, after)
	}
	// duplicate explicit MAC in one bulk
	r = e.must(409, "POST", "/ports", map[string]any{"ports": []any{
		map[string]any{"network_id": ids[1], "mac_address": "fa:16:3e:00:00:01"},
		map[string]any{"network_id": ids[1], "mac_address": "fa:16:3e:00:00:01"}}})
	if r.errType() != "MacAddressInUse" {
		t.Errorf("duplicate MAC in one bulk: %s", r.raw)
	}

	for _, bad := range []struct {
		body any
		want string
	}{
		{map[string]any{"ports": []any{}}, "Resources required"},
		{map[string]any{"ports": "x"}, "must be a list"},
		{map[string]any{"ports": []any{"x"}}, "must be an object"},
		{map[string]any{"ports": []any{map[string]any{"network_id": ids[1], "bogus": 1}}}, "bogus"},
	} {
		r := e.must(400, "POST", "/ports", bad.body)
		if !strings.Contains(r.raw, bad.want) {
			t.Errorf("%v: got %s, want %q", bad.body, r.raw, bad.want)
		}
	}
}

func TestBulkCreateRespectsQuota(t *testing.T) {
	e := newEnv(t)
	n := e.network("q", nil)
	e.must(200, "PUT", "/quotas/p1", map[string]any{"quota": map[string]any{"port": 3}})
	r := e.must(409, "POST", "/ports", map[string]any{"ports": []any{
		map[string]any{"network_id": str(n, "id")}, map[string]any{"network_id": str(n, "id")},
		map[string]any{"network_id": str(n, "id")}, map[string]any{"network_id": str(n, "id")}}})
	if r.errType() != "OverQuota" {
		t.Errorf("4 ports over a quota of 3: %s", r.raw)
	}
	e.must(201, "POST", "/ports", map[string]any{"ports": []any{
		map[string]any{"network_id": str(n, "id")}, map[string]any{"network_id": str(n, "id")},
		map[string]any{"network_id": str(n, "id")}}})
}

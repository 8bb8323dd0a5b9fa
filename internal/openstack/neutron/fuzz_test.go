package neutron_test

import (
	"testing"
)

// FuzzRequestBodies posts arbitrary bodies to every create and update route of a real server:
// whatever the input, the answer is a success or a 4xx NeutronError, never a 5xx or a panic.
func FuzzRequestBodies(f *testing.F) {
	e := newEnv(f)
	nid := str(e.network("fz", map[string]any{"provider:physical_network": "sriov", "provider:segmentation_id": 7}), "id")
	e.subnet(nid, "10.3.0.0/24", nil)
	pid := str(e.port(nid, nil).obj("port"), "id")
	sgid := str(e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "fz"}}).obj("security_group"), "id")
	for _, s := range []string{
		`{"network": {"name": "x", "provider:physical_network": "sriov", "provider:segmentation_id": "15"}}`,
		`{"port": {"network_id": "` + nid + `", "fixed_ips": [{"ip_address": "10.3.0.9"}], "mac_address": "fa:16:3e:00:00:01"}}`,
		`{"port": {"network_id": "` + nid + `", "binding:profile": {"local_link_information": [{"switch_info": "leaf1"}]}}}`,
		`{"subnet": {"network_id": "` + nid + `", "cidr": "10.4.0.0/24", "allocation_pools": [{"start": "10.4.0.9", "end": "10.4.0.2"}]}}`,
		`{"subnet": {"network_id": "` + nid + `", "cidr": "2001:db8::/64", "ip_version": "6", "gateway_ip": null}}`,
		`{"port": {"fixed_ips": null, "binding:vnic_type": 5}}`, `{"network": []}`, `[]`, `null`, `{"port": {"network_id": "x"`,
		`{"port": {"allowed_address_pairs": [{"ip_address": "10.3.0.0/24"}], "extra_dhcp_opts": [{"opt_name": "router", "opt_value": null, "ip_version": "6"}], "security_groups": ["` + sgid + `"]}}`,
		`{"security_group_rule": {"security_group_id": "` + sgid + `", "direction": "ingress", "protocol": "icmp", "port_range_min": "8", "port_range_max": 0, "ethertype": "ipv6", "remote_ip_prefix": "::1"}}`,
		`{"security_group": {"name": "web", "stateful": "false", "tags": ["a"]}}`, `{"tags": ["a", 1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t
		for _, rt := range []struct{ method, path string }{
			{"POST", "/networks"}, {"POST", "/subnets"}, {"POST", "/ports"},
			{"PUT", "/networks/" + nid}, {"PUT", "/ports/" + pid},
			{"POST", "/security-groups"}, {"PUT", "/security-groups/" + sgid}, {"POST", "/security-group-rules"},
			{"PUT", "/ports/" + pid + "/tags"},
		} {
			r := e.do(rt.method, rt.path, body)
			if r.code >= 500 {
				t.Fatalf("%s %s with %q: got %d %s", rt.method, rt.path, body, r.code, r.raw)
			}
			if r.code >= 400 && r.errType() == "" {
				t.Fatalf("%s %s with %q: got %d without a NeutronError body: %s", rt.method, rt.path, body, r.code, r.raw)
			}
		}
	})
}

package neutron_test

import (
	"strings"
	"testing"
)

func rules(g map[string]any) []map[string]any {
	l, _ := g["security_group_rules"].([]any)
	out := make([]map[string]any, len(l))
	for i, r := range l {
		out[i] = r.(map[string]any)
	}
	return out
}

func TestDefaultSecurityGroup(t *testing.T) {
	e := newEnv(t)
	hdr := []string{"X-Project-Id", "pa", "X-Roles", "member"}
	r := e.must(200, "GET", "/security-groups", nil, hdr...)
	l, _ := r.body["security_groups"].([]any)
	if len(l) != 1 {
		t.Fatalf("got %d groups, want the default one: %s", len(l), r.raw)
	}
	g := l[0].(map[string]any)
	if str(g, "name") != "default" || str(g, "description") != "Default security group" || str(g, "project_id") != "pa" || g["stateful"] != true {
		t.Fatalf("default group: %s", r.raw)
	}
	want := map[string]bool{"ingress/IPv4/self": true, "ingress/IPv6/self": true, "egress/IPv4/": true, "egress/IPv6/": true}
	for _, rule := range rules(g) {
		remote := ""
		if rule["remote_group_id"] == g["id"] {
			remote = "self"
		}
		k := str(rule, "direction") + "/" + str(rule, "ethertype") + "/" + remote
		if !want[k] || rule["protocol"] != nil || rule["remote_ip_prefix"] != nil {
			t.Errorf("unexpected rule %v", rule)
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("missing default rules %v", want)
	}
	// listed again: still one
	if l, _ := e.must(200, "GET", "/security-groups", nil, hdr...).body["security_groups"].([]any); len(l) != 1 {
		t.Fatalf("second list: %d groups", len(l))
	}
	id := str(g, "id")
	for _, c := range []struct {
		method, path string
		body         any
		code         int
		typ          string
	}{
		{"PUT", "/security-groups/" + id, map[string]any{"security_group": map[string]any{"name": "x"}}, 409, "SecurityGroupCannotUpdateDefault"},
		{"PUT", "/security-groups/" + id, map[string]any{"security_group": map[string]any{"description": "mine"}}, 200, ""},
		{"DELETE", "/security-groups/" + id, nil, 409, "SecurityGroupCannotRemoveDefault"},
		{"POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "Default"}}, 409, "SecurityGroupDefaultAlreadyExists"},
	} {
		r := e.do(c.method, c.path, c.body, hdr...)
		if r.code != c.code || r.errType() != c.typ {
			t.Errorf("%s %s %v: got %d %s, want %d %s", c.method, c.path, c.body, r.code, r.raw, c.code, c.typ)
		}
	}
	// another project does not see it
	if r := e.do("GET", "/security-groups/"+id, nil, "X-Project-Id", "pb", "X-Roles", "member"); r.code != 404 || r.errType() != "SecurityGroupNotFound" {
		t.Errorf("other project: got %d %s", r.code, r.raw)
	}
	// an admin may delete it; the next list makes a new one
	e.must(204, "DELETE", "/security-groups/"+id, nil)
	l, _ = e.must(200, "GET", "/security-groups", nil, hdr...).body["security_groups"].([]any)
	if len(l) != 1 || str(l[0].(map[string]any), "id") == id {
		t.Fatalf("after delete: %v", l)
	}
}

func TestSecurityGroupRules(t *testing.T) {
	e := newEnv(t)
	g := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "web", "description": "d"}}).obj("security_group")
	if n := len(rules(g)); n != 2 {
		t.Fatalf("new group has %d rules, want the 2 egress ones", n)
	}
	gid := str(g, "id")
	rule := func(extra map[string]any) map[string]any {
		b := map[string]any{"security_group_id": gid, "direction": "ingress"}
		for k, v := range extra {
			b[k] = v
		}
		return map[string]any{"security_group_rule": b}
	}
	for _, c := range []struct {
		name string
		body map[string]any
		code int
		typ  string
		msg  string
	}{
		{"tcp 22", rule(map[string]any{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}), 201, "", ""},
		{"duplicate by number", rule(map[string]any{"protocol": "6", "port_range_min": "22", "port_range_max": 22}), 409, "SecurityGroupRuleExists", "Security group rule already exists"},
		{"bad protocol", rule(map[string]any{"protocol": "bad"}), 400, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol bad not supported"},
		{"protocol 256", rule(map[string]any{"protocol": 256}), 400, "SecurityGroupRuleInvalidProtocol", ""},
		{"protocol 17", rule(map[string]any{"protocol": 17}), 201, "", ""},
		{"port -16", rule(map[string]any{"protocol": "tcp", "port_range_min": -16, "port_range_max": 80}), 400, "SecurityGroupInvalidPortValue", "Invalid value for port -16"},
		{"min > max", rule(map[string]any{"protocol": "tcp", "port_range_min": 80, "port_range_max": 79}), 400, "SecurityGroupInvalidPortRange", "port_range_min must be <= port_range_max"},
		{"port 65536", rule(map[string]any{"protocol": "tcp", "port_range_min": 80, "port_range_max": 65536}), 400, "SecurityGroupInvalidPortValue", "Invalid value for port 65536"},
		{"no min", rule(map[string]any{"protocol": "tcp", "port_range_max": 6}), 400, "SecurityGroupInvalidPortRange", ""},
		{"port 0", rule(map[string]any{"protocol": "udp", "port_range_min": 0, "port_range_max": 6}), 400, "SecurityGroupInvalidPortValue", "Invalid value for port 0"},
		{"ports without protocol", rule(map[string]any{"port_range_min": 1, "port_range_max": 6}), 400, "SecurityGroupProtocolRequiredWithPorts", ""},
		{"ports for gre", rule(map[string]any{"protocol": "gre", "port_range_min": 1, "port_range_max": 6}), 400, "SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol 47"},
		{"icmp code 256", rule(map[string]any{"protocol": "icmp", "port_range_min": 1, "port_range_max": 256}), 400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP code"},
		{"icmp type 300", rule(map[string]any{"protocol": "icmp", "port_range_min": 300, "port_range_max": 1}), 400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type"},
		{"icmp no type", rule(map[string]any{"protocol": "icmp", "port_range_max": 6}), 400, "SecurityGroupMissingIcmpType", "ICMP type (port-range-min) is missing"},
		{"icmp 8/0", rule(map[string]any{"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}), 201, "", ""},
		{"bad ethertype", rule(map[string]any{"ethertype": "bad"}), 400, "SecurityGroupRuleInvalidEtherType", ""},
		{"ipv6 prefix for IPv4", rule(map[string]any{"protocol": "tcp", "remote_ip_prefix": "2001:db8::/64"}), 400, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype IPv4 for CIDR 2001:db8::/64"},
		{"bad prefix", rule(map[string]any{"remote_ip_prefix": "10.0.0.0/33"}), 400, "InvalidCIDR", ""},
		{"prefix and group", rule(map[string]any{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": gid}), 400, "SecurityGroupMultipleRemoteEntites", ""},
		{"no such remote group", rule(map[string]any{"remote_group_id": "9b6a5e5c-0000-4000-8000-000000000000"}), 404, "SecurityGroupNotFound", ""},
		{"no such group", map[string]any{"security_group_rule": map[string]any{"security_group_id": "9b6a5e5c-0000-4000-8000-000000000000", "direction": "ingress"}}, 404, "SecurityGroupNotFound", ""},
		{"ipv6-icmp on IPv4", rule(map[string]any{"protocol": "ipv6-icmp"}), 400, "SecurityGroupEthertypeConflictWithProtocol", ""},
		{"no direction", map[string]any{"security_group_rule": map[string]any{"security_group_id": gid}}, 400, "HTTPBadRequest", "Required attribute 'direction' not specified"},
		{"bad direction", rule(map[string]any{"direction": "up"}), 400, "HTTPBadRequest", ""},
		{"unknown attribute", rule(map[string]any{"foo": 1}), 400, "HTTPBadRequest", "foo"},
		{"prefix host", rule(map[string]any{"remote_ip_prefix": "10.1.2.3/8", "protocol": "udp"}), 201, "", ""},
	} {
		r := e.do("POST", "/security-group-rules", c.body)
		if r.code != c.code || r.errType() != c.typ || !strings.Contains(r.errMsg(), c.msg) {
			t.Errorf("%s: got %d %s, want %d %s %q", c.name, r.code, r.raw, c.code, c.typ, c.msg)
		}
		if c.name == "prefix host" {
			got := r.obj("security_group_rule")
			if str(got, "remote_ip_prefix") != "10.1.2.3/8" || str(got, "normalized_cidr") != "10.0.0.0/8" {
				t.Errorf("prefix: %s", r.raw)
			}
		}
	}
	// IPv6: icmp becomes ipv6-icmp, and is then a duplicate of an ipv6-icmp rule
	r := e.must(201, "POST", "/security-group-rules", rule(map[string]any{"ethertype": "ipv6", "protocol": "icmp"}))
	if p := str(r.obj("security_group_rule"), "protocol"); p != "ipv6-icmp" {
		t.Errorf("IPv6 icmp rule has protocol %q, want ipv6-icmp", p)
	}
	if r := e.do("POST", "/security-group-rules", rule(map[string]any{"ethertype": "IPv6", "protocol": "58"})); r.code != 409 {
		t.Errorf("ipv6-icmp by number: got %d, want 409", r.code)
	}
	// the group shows its rules; the rules list filters
	g = e.must(200, "GET", "/security-groups/"+gid, nil).obj("security_group")
	if n := len(rules(g)); n != 7 {
		t.Errorf("group has %d rules, want 7", n)
	}
	l, _ := e.must(200, "GET", "/security-group-rules?security_group_id="+gid+"&protocol=tcp", nil).body["security_group_rules"].([]any)
	if len(l) != 1 {
		t.Fatalf("tcp rules: %v", l)
	}
	rid := str(l[0].(map[string]any), "id")
	e.must(200, "GET", "/security-group-rules/"+rid, nil)
	if r := e.do("GET", "/security-group-rules/"+rid, nil, "X-Project-Id", "pb", "X-Roles", "member"); r.code != 404 || r.errType() != "SecurityGroupRuleNotFound" {
		t.Errorf("other project's rule: got %d %s", r.code, r.raw)
	}
	e.must(204, "DELETE", "/security-group-rules/"+rid, nil)
	e.must(404, "GET", "/security-group-rules/"+rid, nil)
	// a rule naming another group as remote goes with that group
	other := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "db"}}).obj("security_group")
	rr := e.must(201, "POST", "/security-group-rules", rule(map[string]any{"remote_group_id": str(other, "id"), "protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432})).obj("security_group_rule")
	e.must(204, "DELETE", "/security-groups/"+str(other, "id"), nil)
	e.must(404, "GET", "/security-group-rules/"+str(rr, "id"), nil)
	// update name and description; deleting the group deletes its rules
	u := e.must(200, "PUT", "/security-groups/"+gid, map[string]any{"security_group": map[string]any{"name": "web2", "description": "new"}}).obj("security_group")
	if str(u, "name") != "web2" || str(u, "description") != "new" {
		t.Errorf("update: %v", u)
	}
	if r := e.do("PUT", "/security-groups/"+gid, map[string]any{"security_group": map[string]any{"name": "default"}}); r.code != 409 || r.errType() != "SecurityGroupDefaultAlreadyExists" {
		t.Errorf("rename to default: got %d %s", r.code, r.raw)
	}
	e.must(204, "DELETE", "/security-groups/"+gid, nil)
	l, _ = e.must(200, "GET", "/security-group-rules?security_group_id="+gid, nil).body["security_group_rules"].([]any)
	if len(l) != 0 {
		t.Errorf("rules of a deleted group: %v", l)
	}
}

func TestPortSecurityGroups(t *testing.T) {
	e := newEnv(t)
	hdr := []string{"X-Project-Id", "pa", "X-Roles", "member"}
	n := e.must(201, "POST", "/networks", map[string]any{"network": map[string]any{"name": "n"}}, hdr...).obj("network")
	// a network create made the project's default group
	all, _ := e.must(200, "GET", "/security-groups", nil).body["security_groups"].([]any) // admin: every project's
	if n := 0; true {
		for _, g := range all {
			if str(g.(map[string]any), "project_id") == "pa" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("pa has %d groups after a network create, want its default one", n)
		}
	}
	e.must(201, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n, "id"), "cidr": "10.0.0.0/24", "ip_version": 4}}, hdr...)
	nid := str(n, "id")
	newPort := func(extra map[string]any) resp {
		b := map[string]any{"network_id": nid}
		for k, v := range extra {
			b[k] = v
		}
		return e.do("POST", "/ports", map[string]any{"port": b}, hdr...)
	}
	p := newPort(nil)
	if p.code != 201 {
		t.Fatalf("create port: %s", p.raw)
	}
	sgs, _ := p.obj("port")["security_groups"].([]any)
	def := e.must(200, "GET", "/security-groups?name=default", nil, hdr...).body["security_groups"].([]any)
	if len(sgs) != 1 || len(def) != 1 || sgs[0] != def[0].(map[string]any)["id"] {
		t.Fatalf("port groups %v, want the default group %v", sgs, def)
	}
	defID := sgs[0].(string)
	if r := e.do("DELETE", "/security-groups/"+defID, nil); r.code != 409 || r.errType() != "SecurityGroupInUse" {
		t.Errorf("delete of a group in use: got %d %s", r.code, r.raw)
	}
	web := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "web"}}, hdr...).obj("security_group")
	other := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "theirs"}}, "X-Project-Id", "pb", "X-Roles", "member").obj("security_group")
	pid := str(p.obj("port"), "id")
	for _, c := range []struct {
		name string
		body map[string]any
		code int
		typ  string
	}{
		{"another project's group", map[string]any{"security_groups": []string{str(other, "id")}}, 404, "SecurityGroupNotFound"},
		{"not a uuid", map[string]any{"security_groups": []string{"nope"}}, 400, "HTTPBadRequest"},
		{"disable with groups kept", map[string]any{"port_security_enabled": false}, 409, "PortSecurityPortHasSecurityGroup"},
		{"disable and add groups", map[string]any{"port_security_enabled": false, "security_groups": []string{str(web, "id")}}, 400, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"replace", map[string]any{"security_groups": []string{str(web, "id")}}, 200, ""},
		{"disable and clear", map[string]any{"port_security_enabled": false, "security_groups": []string{}}, 200, ""},
	} {
		r := e.do("PUT", "/ports/"+pid, map[string]any{"port": c.body}, hdr...)
		if r.code != c.code || r.errType() != c.typ {
			t.Errorf("%s: got %d %s, want %d %s", c.name, r.code, r.raw, c.code, c.typ)
		}
	}
	// the default group is free again; web is not in use either
	e.must(204, "DELETE", "/security-groups/"+str(web, "id"), nil, hdr...)
	// create: explicit groups, no port security, the ports filter
	if r := newPort(map[string]any{"port_security_enabled": false, "security_groups": []string{defID}}); r.code != 400 || r.errType() != "PortSecurityAndIPRequiredForSecurityGroups" {
		t.Errorf("create without port security, with groups: got %d %s", r.code, r.raw)
	}
	if r := newPort(map[string]any{"port_security_enabled": false}); r.code != 201 || len(r.obj("port")["security_groups"].([]any)) != 0 {
		t.Errorf("create without port security: got %d %s", r.code, r.raw)
	}
	q := newPort(map[string]any{"security_groups": []string{defID}, "binding:vnic_type": "direct"})
	if q.code != 201 {
		t.Fatalf("create with groups: %s", q.raw)
	}
	l, _ := e.must(200, "GET", "/ports?security_groups="+defID, nil, hdr...).body["ports"].([]any)
	if len(l) != 1 || str(l[0].(map[string]any), "id") != str(q.obj("port"), "id") {
		t.Errorf("ports of the default group: %v", l)
	}
	e.must(204, "DELETE", "/ports/"+str(q.obj("port"), "id"), nil, hdr...)
	e.must(204, "DELETE", "/security-groups/"+defID, nil) // admin; no port uses it any more
	// Neutron's own ports (network:*) and the binder's device ports get no groups
	for _, owner := range []string{"network:dhcp", "vflink:device-port"} {
		r := e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": nid, "device_owner": owner, "tenant_id": "pa"}})
		if l := r.obj("port")["security_groups"].([]any); len(l) != 0 {
			t.Errorf("%s port has groups %v", owner, l)
		}
	}
}

func TestSecurityGroupQuotas(t *testing.T) {
	e := newEnv(t)
	e.must(200, "PUT", "/quotas/pq", map[string]any{"quota": map[string]any{"security_group": 2, "security_group_rule": 7}})
	hdr := []string{"X-Project-Id", "pq", "X-Roles", "member"}
	e.must(200, "GET", "/security-groups", nil, hdr...) // the default group: 1 group, 4 rules
	g := e.must(201, "POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "a"}}, hdr...).obj("security_group")
	if r := e.do("POST", "/security-groups", map[string]any{"security_group": map[string]any{"name": "b"}}, hdr...); r.code != 409 || r.errType() != "OverQuota" || !strings.Contains(r.errMsg(), "['security_group']") {
		t.Errorf("third group: got %d %s", r.code, r.raw)
	}
	rule := map[string]any{"security_group_rule": map[string]any{"security_group_id": str(g, "id"), "direction": "ingress", "protocol": "tcp"}}
	e.must(201, "POST", "/security-group-rules", rule, hdr...)
	rule["security_group_rule"].(map[string]any)["protocol"] = "udp"
	if r := e.do("POST", "/security-group-rules", rule, hdr...); r.code != 409 || !strings.Contains(r.errMsg(), "['security_group_rule']") {
		t.Errorf("eighth rule: got %d %s", r.code, r.raw)
	}
	d := e.must(200, "GET", "/quotas/pq/details", nil).obj("quota")
	if sg, _ := d["security_group"].(map[string]any); num(sg, "used") != 2 || num(sg, "limit") != 2 {
		t.Errorf("details: %v", d)
	}
}

package neutron_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAllowedAddressPairsAndDHCPOpts(t *testing.T) {
	e := newEnv(t)
	n := e.network("n", nil)
	e.subnet(str(n, "id"), "10.0.0.0/24", nil)
	p := e.port(str(n, "id"), map[string]any{
		"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.50"}, {"ip_address": "10.1.0.0/16", "mac_address": "fa:16:3e:00:00:01"}},
		"extra_dhcp_opts":       []map[string]any{{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}, {"opt_name": "tftp-server", "opt_value": "10.0.0.9", "ip_version": "4"}, {"opt_name": "dns-server", "opt_value": nil}},
		"tags":                  []string{"a", "b"},
	})
	if p.code != 201 {
		t.Fatalf("create: %s", p.raw)
	}
	port := p.obj("port")
	pairs, _ := json.Marshal(port["allowed_address_pairs"])
	want := `[{"ip_address":"10.0.0.50","mac_address":"` + str(port, "mac_address") + `"},{"ip_address":"10.1.0.0/16","mac_address":"fa:16:3e:00:00:01"}]`
	if string(pairs) != want {
		t.Errorf("pairs: got %s, want %s", pairs, want)
	}
	opts, _ := json.Marshal(port["extra_dhcp_opts"])
	if string(opts) != `[{"ip_version":4,"opt_name":"bootfile-name","opt_value":"pxelinux.0"},{"ip_version":4,"opt_name":"tftp-server","opt_value":"10.0.0.9"}]` {
		t.Errorf("dhcp opts: %s", opts)
	}
	if tags, _ := json.Marshal(port["tags"]); string(tags) != `["a","b"]` {
		t.Errorf("tags: %s", tags)
	}
	id := str(port, "id")
	// update: a null value removes an option, another changes, a new one is added; [] changes nothing
	u := e.must(200, "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"extra_dhcp_opts": []map[string]any{
		{"opt_name": "bootfile-name", "opt_value": nil}, {"opt_name": "tftp-server", "opt_value": "10.0.0.10"}, {"opt_name": "server-ip-address", "opt_value": "10.0.0.1", "ip_version": 6}}}}).obj("port")
	opts, _ = json.Marshal(u["extra_dhcp_opts"])
	if string(opts) != `[{"ip_version":4,"opt_name":"tftp-server","opt_value":"10.0.0.10"},{"ip_version":6,"opt_name":"server-ip-address","opt_value":"10.0.0.1"}]` {
		t.Errorf("updated dhcp opts: %s", opts)
	}
	u = e.must(200, "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"extra_dhcp_opts": []any{}}}).obj("port")
	if l, _ := u["extra_dhcp_opts"].([]any); len(l) != 2 {
		t.Errorf("[] changed the options: %v", l)
	}
	eleven := make([]map[string]any, 11)
	for i := range eleven {
		eleven[i] = map[string]any{"ip_address": "10.0.0." + string(rune('a'+i))}
	}
	for _, c := range []struct {
		name string
		body map[string]any
		code int
		typ  string
		msg  string
	}{
		{"too many pairs", map[string]any{"allowed_address_pairs": eleven}, 400, "AllowedAddressPairExhausted", "exceeds the maximum 10"},
		{"no ip", map[string]any{"allowed_address_pairs": []map[string]any{{"mac_address": "fa:16:3e:00:00:01"}}}, 400, "AllowedAddressPairsMissingIP", ""},
		{"duplicate pair", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.5"}}}, 400, "DuplicateAddressPairInRequest", ""},
		{"duplicate after the port's MAC", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.5", "mac_address": str(port, "mac_address")}}}, 400, "DuplicateAddressPairInRequest", ""},
		{"bad ip", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0"}}}, 400, "HTTPBadRequest", "is not a valid IP address"},
		{"bad cidr", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.0/40"}}}, 400, "HTTPBadRequest", "is not a valid IP subnet"},
		{"bad mac", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.5", "mac_address": "ff:ff:ff:ff:ff:ff"}}}, 400, "HTTPBadRequest", "is not a valid MAC address"},
		{"extra key", map[string]any{"allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.5", "foo": 1}}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'"},
		{"pairs without port security", map[string]any{"port_security_enabled": false, "security_groups": []string{}}, 409, "AddressPairAndPortSecurityRequired", ""},
		{"dhcp opt without value", map[string]any{"extra_dhcp_opts": []map[string]any{{"opt_name": "x"}}}, 400, "InvalidInput", "No valid key specs matched"},
		{"dhcp opt ip_version 5", map[string]any{"extra_dhcp_opts": []map[string]any{{"opt_name": "x", "opt_value": "y", "ip_version": 5}}}, 400, "InvalidInput", "No valid key specs matched"},
		{"dhcp opt ip_version word", map[string]any{"extra_dhcp_opts": []map[string]any{{"opt_name": "x", "opt_value": "y", "ip_version": "four"}}}, 400, "InvalidInput", "is not an integer"},
		{"dhcp opt blank", map[string]any{"extra_dhcp_opts": []map[string]any{{"opt_name": " ", "opt_value": "y"}}}, 400, "InvalidInput", ""},
		{"tags in PUT", map[string]any{"tags": []string{"x"}}, 400, "HTTPBadRequest", ""},
	} {
		r := e.do("PUT", "/ports/"+id, map[string]any{"port": c.body})
		if r.code != c.code || r.errType() != c.typ || !strings.Contains(r.errMsg(), c.msg) {
			t.Errorf("%s: got %d %s, want %d %s %q", c.name, r.code, r.raw, c.code, c.typ, c.msg)
		}
	}
	// removing the pairs and the groups lets port security go
	u = e.must(200, "PUT", "/ports/"+id, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{}, "allowed_address_pairs": []any{}}}).obj("port")
	if u["port_security_enabled"] != false {
		t.Errorf("port security: %v", u)
	}
	if r := e.port(str(n, "id"), map[string]any{"port_security_enabled": false, "allowed_address_pairs": []map[string]any{{"ip_address": "10.0.0.5"}}}); r.code != 409 || r.errType() != "AddressPairAndPortSecurityRequired" {
		t.Errorf("create with pairs, without port security: got %d %s", r.code, r.raw)
	}
}

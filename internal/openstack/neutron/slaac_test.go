package neutron_test

import (
	"strings"
	"testing"
)

func fixedIPs(p map[string]any) map[string]string {
	out := map[string]string{}
	l, _ := p["fixed_ips"].([]any)
	for _, f := range l {
		m := f.(map[string]any)
		out[str(m, "subnet_id")] = str(m, "ip_address")
	}
	return out
}

func TestSLAACAddressesFromTheMAC(t *testing.T) {
	e := newEnv(t)
	n := e.network("v6", nil)
	slaac := e.subnet(str(n, "id"), "2001:db8:1::/64", map[string]any{"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
	stateful := e.subnet(str(n, "id"), "2001:db8:2::/64", map[string]any{"ipv6_address_mode": "dhcpv6-stateful"})
	v4 := e.subnet(str(n, "id"), "10.9.0.0/24", nil)

	p := e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(n, "id"), "mac_address": "fa:16:3e:12:34:56"}}).obj("port")
	ips := fixedIPs(p)
	if ips[str(slaac, "id")] != "2001:db8:1:0:f816:3eff:fe12:3456" {
		t.Errorf("SLAAC address %q, want the EUI-64 of the MAC", ips[str(slaac, "id")])
	}
	if !strings.HasPrefix(ips[str(stateful, "id")], "2001:db8:2::") || !strings.HasPrefix(ips[str(v4, "id")], "10.9.0.") || len(ips) != 3 {
		t.Errorf("addresses %v: want one from each subnet", ips)
	}
	// an explicit address on an auto-address subnet is refused; asking for the subnet gives the EUI-64
	r := e.must(400, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(n, "id"),
		"fixed_ips": []any{map[string]any{"subnet_id": str(slaac, "id"), "ip_address": "2001:db8:1::5"}}}})
	if !strings.Contains(r.errMsg(), "automatic addresses") {
		t.Errorf("explicit SLAAC address: %s", r.raw)
	}
	// only the v4 subnet asked: the SLAAC subnet still gives its address
	q := e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(n, "id"), "mac_address": "fa:16:3e:00:00:07",
		"fixed_ips": []any{map[string]any{"subnet_id": str(v4, "id")}}}}).obj("port")
	if ips := fixedIPs(q); ips[str(slaac, "id")] != "2001:db8:1:0:f816:3eff:fe00:7" || len(ips) != 2 {
		t.Errorf("port asking the v4 subnet only: %v", ips)
	}
	// the address follows a MAC change
	u := e.must(200, "PUT", "/ports/"+str(q, "id"), map[string]any{"port": map[string]any{"mac_address": "fa:16:3e:00:00:08"}}).obj("port")
	if ips := fixedIPs(u); ips[str(slaac, "id")] != "2001:db8:1:0:f816:3eff:fe00:8" || len(ips) != 2 {
		t.Errorf("after the MAC change: %v", ips)
	}
	// the SLAAC subnet can be deleted while ports hold its addresses: they lose them
	e.must(409, "DELETE", "/subnets/"+str(stateful, "id"), nil)
	e.must(204, "DELETE", "/subnets/"+str(slaac, "id"), nil)
	got := e.must(200, "GET", "/ports/"+str(p, "id"), nil).obj("port")
	if ips := fixedIPs(got); len(ips) != 2 || ips[str(slaac, "id")] != "" {
		t.Errorf("after deleting the SLAAC subnet: %v", ips)
	}
}

func TestIPv6ModeValidation(t *testing.T) {
	e := newEnv(t)
	n := e.network("v6", nil)
	for _, c := range []struct {
		cidr, ra, am, want string
	}{
		{"2001:db8::/64", "dhcpv6-stateless", "dhcpv6-stateful", "must be the same value"},
		{"2001:db8::/64", "slaac", "dhcpv6-stateless", "must be the same value"},
		{"2001:db8::/80", "slaac", "slaac", "requires the prefix to be /64"},
		{"2001:db8::/80", "", "dhcpv6-stateless", "requires the prefix to be /64"},
		{"10.0.0.0/24", "slaac", "", "not valid when ip_version is 4"},
		{"2001:db8::/64", "", "bogus", "bogus"},
	} {
		b := map[string]any{"network_id": str(n, "id"), "cidr": c.cidr, "ip_version": 6}
		if strings.Contains(c.cidr, ".") {
			b["ip_version"] = 4
		}
		if c.ra != "" {
			b["ipv6_ra_mode"] = c.ra
		}
		if c.am != "" {
			b["ipv6_address_mode"] = c.am
		}
		r := e.must(400, "POST", "/subnets", map[string]any{"subnet": b})
		if !strings.Contains(r.errMsg(), c.want) {
			t.Errorf("%v: %s, want %q", c, r.raw, c.want)
		}
	}
	e.subnet(str(n, "id"), "2001:db8::/80", map[string]any{"ipv6_address_mode": "dhcpv6-stateful", "ipv6_ra_mode": "dhcpv6-stateful"})
}

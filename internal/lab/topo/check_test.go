package topo

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

func TestCheckOverlap(t *testing.T) {
	labRange := netip.MustParsePrefix("10.247.0.0/16")
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name   string
		addrs  []ifAddr
		routes []route
		want   []string // substrings of the error; none: no error
	}{
		{name: "this machine", addrs: []ifAddr{{"lo", pfx("127.0.0.1/8")}, {"eth0", pfx("192.0.2.2/24")}},
			routes: []route{{Default: true, Gateway: "192.0.2.1", Dev: "eth0"}, {Dst: pfx("192.0.2.0/24"), Dev: "eth0"}}},
		{name: "address inside", addrs: []ifAddr{{"eth1", pfx("10.247.3.4/24")}},
			want: []string{"overlaps address 10.247.3.4/24 on eth1"}},
		{name: "address network covers the range", addrs: []ifAddr{{"eth1", pfx("10.1.2.3/8")}},
			want: []string{"overlaps address 10.1.2.3/8 on eth1"}},
		{name: "address next to it", addrs: []ifAddr{{"eth1", pfx("10.246.255.1/16")}, {"eth2", pfx("10.248.0.1/16")}}},
		{name: "route inside", routes: []route{{Dst: pfx("10.247.9.0/24"), Gateway: "192.0.2.7", Dev: "eth0", Table: "100"}},
			want: []string{"overlaps route 10.247.9.0/24 via 192.0.2.7 dev eth0 table 100"}},
		{name: "route covering", routes: []route{{Dst: pfx("10.0.0.0/8"), Dev: "wg0", Type: "unicast"}},
			want: []string{"overlaps route 10.0.0.0/8 dev wg0"}},
		{name: "host route", routes: []route{{Dst: pfx("10.247.1.1/32"), Type: "local", Dev: "lo", Table: "local"}},
			want: []string{"overlaps route local 10.247.1.1/32 dev lo table local"}},
		{name: "default route only", routes: []route{{Default: true, Dev: "eth0"}}},
		{name: "both, one error naming each", addrs: []ifAddr{{"eth1", pfx("10.247.0.1/24")}},
			routes: []route{{Dst: pfx("10.247.0.0/24"), Dev: "eth1"}},
			want:   []string{"address 10.247.0.1/24 on eth1", "route 10.247.0.0/24 dev eth1", "refuses to start"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkOverlap(labRange, tc.addrs, tc.routes)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want one saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "10.247.0.0/16") {
				t.Errorf("error %q does not name the lab's range", err)
			}
		})
	}
}

// The outputs below are `ip -j -4 addr show` and `ip -j -4 route show table all` of the
// development machine, plus a VPN route and address into the lab's range.
const ipAddrJSON = `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":9,"ifname":"tun0","flags":["POINTOPOINT","UP"],"addr_info":[{"family":"inet","local":"10.247.128.5","prefixlen":32,"scope":"global"}]}]`

const ipRouteJSON = `[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},{"dst":"10.247.128.0/17","dev":"tun0","flags":[]},{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},{"type":"broadcast","dst":"127.255.255.255","dev":"lo","table":"local","protocol":"kernel","scope":"link","prefsrc":"127.0.0.1","flags":[]},{"type":"unreachable","dst":"0.0.0.0/0","table":"200","flags":[]}]`

func TestParseIPJSON(t *testing.T) {
	addrs, err := parseAddrs([]byte(ipAddrJSON))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(addrs); got != 3 || addrs[1].Dev != "eth0" || addrs[1].Prefix.String() != "192.0.2.2/24" || addrs[2].Prefix.String() != "10.247.128.5/32" {
		t.Errorf("addresses: got %+v, want lo 127.0.0.1/8, eth0 192.0.2.2/24, tun0 10.247.128.5/32", addrs)
	}
	routes, err := parseRoutes([]byte(ipRouteJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 7 || !routes[0].Default || routes[4].Dst.String() != "127.0.0.1/32" || !routes[6].Default {
		t.Errorf("routes: got %+v", routes)
	}
	err = checkOverlap(netip.MustParsePrefix("10.247.0.0/16"), addrs, routes)
	if err == nil || !strings.Contains(err.Error(), "address 10.247.128.5/32 on tun0") || !strings.Contains(err.Error(), "route 10.247.128.0/17 dev tun0") {
		t.Errorf("got %v, want the tun0 address and route named", err)
	}
	// Without tun0 this machine is fine.
	err = checkOverlap(netip.MustParsePrefix("10.247.0.0/16"), addrs[:2], append(routes[:2:2], routes[3:]...))
	if err != nil {
		t.Errorf("got %v, want no overlap", err)
	}
	if _, err := parseRoutes([]byte(`[{"dst":"10.0.0.0/33"}]`)); err == nil {
		t.Error("parseRoutes accepted a /33")
	}
	if _, err := parseAddrs([]byte(`{`)); err == nil {
		t.Error("parseAddrs accepted broken JSON")
	}
}

// TestCheckAddressesHere runs the real check on this machine's namespace: it needs no root.
func TestCheckAddressesHere(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: ip (iproute2) is not installed")
	}
	if err := CheckAddresses(); err != nil && !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("CheckAddresses could not read this machine's addresses: %v", err)
	} else if err != nil {
		t.Logf("this machine overlaps the lab's range: %v", err)
	}
}

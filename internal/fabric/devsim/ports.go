package devsim

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

var portRangeRE = regexp.MustCompile(`^(.*?)([0-9]+)-([0-9]+)$`)

// ParseInterfaces expands a port list such as "xe-0/0/0-47" or "xe-0/0/0-3,ge-0/0/0,et-0/0/48-49"
// into port names: comma-separated names, where a name ending in "<first>-<last>" stands for the
// ports first to last. Every name must be a physical interface name junosconf accepts.
func ParseInterfaces(spec string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		names := []string{item}
		if m := portRangeRE.FindStringSubmatch(item); m != nil && physicalRE.MatchString(m[1]+m[2]) {
			first, err1 := strconv.Atoi(m[2])
			last, err2 := strconv.Atoi(m[3])
			if err1 != nil || err2 != nil || last < first || last-first >= 4096 {
				return nil, fmt.Errorf("port range %q: want <prefix><first>-<last> with first <= last, at most 4096 ports", item)
			}
			names = names[:0]
			for i := first; i <= last; i++ {
				names = append(names, m[1]+strconv.Itoa(i))
			}
		}
		for _, n := range names {
			if !physicalRE.MatchString(n) {
				return nil, fmt.Errorf("port %q: want a physical interface such as xe-0/0/3 (xe, ge, et or mge), or a range such as xe-0/0/0-47", n)
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("port list %q names no port", spec)
	}
	return out, nil
}

// physicalRE is junosconf's <if> without aggregated Ethernet.
var physicalRE = regexp.MustCompile(`^(?:xe|ge|et|mge)-[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,3}(?::[0-9]{1,3})?$`)

// ListenAddrs returns n listen addresses on host from basePort on (basePort 0: an ephemeral port
// each). host must be a loopback address (or "localhost"): the simulator is for tests and the lab,
// never reachable from the network.
func ListenAddrs(host string, basePort, n int) ([]string, error) {
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q is not a loopback address: devsim listens only on 127.0.0.0/8 or ::1", host)
	}
	if n < 1 {
		return nil, fmt.Errorf("%d devices: want at least 1", n)
	}
	if basePort < 0 || basePort > 65535 || (basePort > 0 && basePort+n-1 > 65535) {
		return nil, fmt.Errorf("base port %d for %d devices: want 0 (ephemeral) or ports that end at 65535 at most", basePort, n)
	}
	out := make([]string, n)
	for i := range out {
		port := 0
		if basePort > 0 {
			port = basePort + i
		}
		out[i] = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	}
	return out, nil
}

package topo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"time"

	"github.com/vflink/vflink/internal/lab"
)

// AptInstall is the command that installs what the lab runs.
const AptInstall = "apt-get install -y openvswitch-switch lldpd iproute2 ethtool python3-openstackclient"

// OVSSchema is the Open vSwitch database schema the lab's database is created from.
const OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// programs the lab runs (util-linux's unshare and mount come with every Debian).
var programs = []string{"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl",
	"lldpd", "lldpcli", "ethtool", "unshare", "mount", "openstack"}

// Missing lists what the lab needs and this machine lacks: programs (by name), the OVS schema
// file, lldpd's _lldpd user, /dev/net/tun (the userspace datapath's bridge ports). Tests skip on
// a non-empty list.
func Missing() []string {
	var out []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			out = append(out, p)
		}
	}
	if _, err := os.Stat(OVSSchema); err != nil {
		out = append(out, OVSSchema)
	}
	if _, err := user.Lookup("_lldpd"); err != nil {
		out = append(out, "user _lldpd")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		out = append(out, "/dev/net/tun")
	}
	return out
}

// Preflight refuses when not root or when something the lab runs is missing (naming what, and
// the apt-get command that installs it).
func Preflight() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root (it creates network namespaces and runs Open vSwitch and lldpd); run it with sudo")
	}
	if m := Missing(); len(m) > 0 {
		return fmt.Errorf("the lab needs %s, which this machine lacks; install with: %s", strings.Join(m, ", "), AptInstall)
	}
	return nil
}

// CheckAddresses refuses when lab.AddressRange overlaps an IPv4 address or a non-default route
// (any table) of this process's network namespace (the root namespace for `vflink lab up`),
// naming both; equivalent to reading `ip -j -4 addr` and `ip -j -4 route show table all`.
func CheckAddresses() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := run(ctx, nil, nil, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return err
	}
	addrs, err := parseAddrs([]byte(a))
	if err != nil {
		return err
	}
	r, err := run(ctx, nil, nil, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return err
	}
	routes, err := parseRoutes([]byte(r))
	if err != nil {
		return err
	}
	return checkOverlap(netip.MustParsePrefix(lab.AddressRange), addrs, routes)
}

// ifAddr is an address of an interface, with its prefix length (10.1.2.3/24).
type ifAddr struct {
	Dev    string
	Prefix netip.Prefix
}

// route is a route's destination; Default routes (0.0.0.0/0) never conflict.
type route struct {
	Dst           netip.Prefix
	Default       bool
	Dev, Table    string
	Type, Gateway string
}

func (r route) String() string {
	s := r.Dst.String()
	if r.Type != "" && r.Type != "unicast" {
		s = r.Type + " " + s
	}
	if r.Gateway != "" {
		s += " via " + r.Gateway
	}
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != "" && r.Table != "main" {
		s += " table " + r.Table
	}
	return s
}

// checkOverlap is CheckAddresses without the machine: every overlap of labRange with an
// address's network or a non-default route, in one error.
func checkOverlap(labRange netip.Prefix, addrs []ifAddr, routes []route) error {
	var errs []error
	for _, a := range addrs {
		if a.Prefix.Masked().Overlaps(labRange) {
			errs = append(errs, fmt.Errorf("the lab's address range %s overlaps address %s on %s of this machine", labRange, a.Prefix, a.Dev))
		}
	}
	for _, r := range routes {
		if !r.Default && r.Dst.Overlaps(labRange) {
			errs = append(errs, fmt.Errorf("the lab's address range %s overlaps route %s of this machine", labRange, r))
		}
	}
	if len(errs) > 0 {
		errs = append(errs, errors.New("the lab refuses to start so that no lab address can be confused with this machine's networks; free that range first"))
	}
	return errors.Join(errs...)
}

// parseAddrs reads `ip -j -4 addr show`.
func parseAddrs(data []byte) ([]ifAddr, error) {
	var links []struct {
		IfName   string `json:"ifname"`
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(data, &links); err != nil {
		return nil, fmt.Errorf("ip -j addr: %w", err)
	}
	var out []ifAddr
	for _, l := range links {
		for _, ai := range l.AddrInfo {
			if ai.Family != "inet" {
				continue
			}
			ip, err := netip.ParseAddr(ai.Local)
			if err != nil {
				return nil, fmt.Errorf("ip -j addr: %s: address %q: %w", l.IfName, ai.Local, err)
			}
			pfx, err := ip.Prefix(ai.PrefixLen)
			if err != nil {
				return nil, fmt.Errorf("ip -j addr: %s: %s/%d: %w", l.IfName, ai.Local, ai.PrefixLen, err)
			}
			out = append(out, ifAddr{Dev: l.IfName, Prefix: netip.PrefixFrom(ip, pfx.Bits())})
		}
	}
	return out, nil
}

// parseRoutes reads `ip -j -4 route show table all`: dst is "default", an address (a host
// route) or a prefix.
func parseRoutes(data []byte) ([]route, error) {
	var rs []struct {
		Type    string `json:"type"`
		Dst     string `json:"dst"`
		Dev     string `json:"dev"`
		Table   string `json:"table"`
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("ip -j route: %w", err)
	}
	var out []route
	for _, r := range rs {
		x := route{Dev: r.Dev, Table: r.Table, Type: r.Type, Gateway: r.Gateway}
		switch {
		case r.Dst == "default":
			x.Default = true
		case strings.Contains(r.Dst, "/"):
			p, err := netip.ParsePrefix(r.Dst)
			if err != nil {
				return nil, fmt.Errorf("ip -j route: destination %q: %w", r.Dst, err)
			}
			x.Dst = p.Masked()
			x.Default = p.Bits() == 0
		default:
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				return nil, fmt.Errorf("ip -j route: destination %q: %w", r.Dst, err)
			}
			x.Dst = netip.PrefixFrom(a, a.BitLen())
		}
		if !x.Dst.Addr().Is4() && !x.Default {
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

package ipam

import (
	"fmt"
	"net"
	"net/netip"
)

// EUI64 is the SLAAC address of a MAC on a /64 (RFC 4291 appendix A, as Neutron's
// netutils.get_ipv6_addr_by_EUI64): the prefix, then the MAC with ff:fe in its middle and the
// universal/local bit of its first octet inverted.
func EUI64(prefix netip.Prefix, mac string) (netip.Addr, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return netip.Addr{}, fmt.Errorf("%q is not a MAC address", mac)
	}
	if !prefix.Addr().Is6() || prefix.Bits() > 64 {
		return netip.Addr{}, fmt.Errorf("%s is not an IPv6 prefix of at most 64 bits", prefix)
	}
	a := prefix.Masked().Addr().As16()
	a[8], a[9], a[10], a[11] = hw[0]^0x02, hw[1], hw[2], 0xff
	a[12], a[13], a[14], a[15] = 0xfe, hw[3], hw[4], hw[5]
	return netip.AddrFrom16(a), nil
}

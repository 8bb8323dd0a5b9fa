package ipam

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
)

// Neutron error types carried by InputError.Type.
const (
	typeInvalidInput    = "InvalidInput"
	typeGatewayConflict = "GatewayConflictWithAllocationPools"
)

// InputError is a user-input error with a Neutron error type.
type InputError struct {
	Type    string // "InvalidInput" or "GatewayConflictWithAllocationPools"
	Message string
}

// Error returns the message (the Neutron type is in e.Type).
func (e *InputError) Error() string { return e.Message }

func invalidf(format string, args ...any) *InputError {
	return &InputError{Type: typeInvalidInput, Message: fmt.Sprintf(format, args...)}
}

// Pool is an inclusive address range.
type Pool struct{ Start, End netip.Addr }

func (p Pool) contains(a netip.Addr) bool {
	return p.Start.Compare(a) <= 0 && a.Compare(p.End) <= 0
}

func poolString(p Pool) string { return p.Start.String() + "-" + p.End.String() }

// SubnetSpec is what a user asked for when creating a subnet.
type SubnetSpec struct {
	CIDR      string // e.g. "10.0.0.0/24" or "2001:db8::/64"
	IPVersion int    // 4 or 6; 0 means "derive from CIDR"
	// Gateway is the requested gateway_ip: nil means the default (the first address after the
	// network address); a pointer to "" means no gateway, like GatewayNone.
	Gateway *string
	// GatewayNone is true when the subnet has no gateway (Neutron's gateway_ip: null). Combining it
	// with a non-empty Gateway is an error.
	GatewayNone bool
	// Pools are the requested allocation pools: nil means the default pools; a non-nil empty slice
	// means no pools at all (only explicitly requested fixed IPs can then be allocated).
	Pools []Pool
}

// Subnet is a validated subnet.
type Subnet struct {
	Prefix  netip.Prefix // masked (network address), e.g. 10.0.0.0/24
	Gateway netip.Addr   // invalid (zero) when none
	Pools   []Pool       // sorted, non-overlapping
}

// ParsePool parses start/end strings into a Pool; errors name the bad value. It only parses (and
// rejects IPv6 zones): NewSubnet checks order, family and containment.
func ParsePool(start, end string) (Pool, error) {
	s, err := parseAddr("allocation pool start", start)
	if err != nil {
		return Pool{}, err
	}
	e, err := parseAddr("allocation pool end", end)
	if err != nil {
		return Pool{}, err
	}
	return Pool{Start: s, End: e}, nil
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalidf("invalid %s %q: must be an IPv4 or IPv6 address", what, s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, invalidf("invalid %s %q: IPv6 zones are not allowed", what, s)
	}
	return a, nil
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// lastAddr returns the last address of p (the broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	host := 128 - p.Bits()
	if host >= 64 {
		lo = math.MaxUint64
		hi |= uint64(1)<<(host-64) - 1
	} else {
		lo |= uint64(1)<<host - 1
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// NewSubnet validates spec and fills in Neutron's defaults:
//   - CIDR must be a network address in CIDR notation; IPv4 prefixes must be at most /30 and
//     IPv6 prefixes at most /126.
//   - IPVersion, if non-zero, must be 4 or 6 and match the CIDR.
//   - The default gateway is the first address after the network address. An explicit gateway
//     must be of the CIDR's family, inside it and (IPv4) not its network or broadcast address.
//   - The default pools span network+1 to broadcast-1 (IPv4) or to the last address (IPv6),
//     minus the gateway, which may split them in two.
//   - Explicit pools must have Start <= End, be of the CIDR's family, lie inside it, not contain
//     the network address or (IPv4) the broadcast address, not overlap each other and not contain
//     the gateway (Type GatewayConflictWithAllocationPools).
//
// The returned pools are sorted by Start. Every error is an *InputError.
func NewSubnet(spec SubnetSpec) (Subnet, error) {
	p, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return Subnet{}, invalidf("invalid CIDR %q: must be an IPv4 or IPv6 network in CIDR notation, e.g. 10.0.0.0/24 or 2001:db8::/64", spec.CIDR)
	}
	if m := p.Masked(); m != p {
		return Subnet{}, invalidf("%s is not a network address; did you mean %s?", p, m)
	}
	network := p.Addr()
	version, maxBits := 6, 126
	if network.Is4() {
		version, maxBits = 4, 30
	}
	switch spec.IPVersion {
	case 0:
	case 4, 6:
		if spec.IPVersion != version {
			return Subnet{}, invalidf("ip_version %d does not match CIDR %s, which is IPv%d", spec.IPVersion, p, version)
		}
	default:
		return Subnet{}, invalidf("invalid ip_version %d: must be 4 or 6", spec.IPVersion)
	}
	if p.Bits() > maxBits {
		return Subnet{}, invalidf("CIDR %s is too small: the IPv%d prefix length must be at most %d", p, version, maxBits)
	}
	last := lastAddr(p)
	var bcast netip.Addr // IPv4 only
	if version == 4 {
		bcast = last
	}

	var gw netip.Addr
	switch {
	case spec.GatewayNone:
		if spec.Gateway != nil && *spec.Gateway != "" {
			return Subnet{}, invalidf("gateway_ip %q given for a subnet without gateway: set one or the other", *spec.Gateway)
		}
	case spec.Gateway == nil:
		gw = network.Next()
	case *spec.Gateway == "":
	default:
		gw, err = parseAddr("gateway_ip", *spec.Gateway)
		if err != nil {
			return Subnet{}, err
		}
		switch {
		case gw.Is4() != network.Is4():
			return Subnet{}, invalidf("gateway_ip %s is not an IPv%d address like CIDR %s", gw, version, p)
		case !p.Contains(gw):
			return Subnet{}, invalidf("gateway_ip %s is outside CIDR %s", gw, p)
		case version == 4 && gw == network:
			return Subnet{}, invalidf("gateway_ip %s is the network address of CIDR %s", gw, p)
		case gw == bcast:
			return Subnet{}, invalidf("gateway_ip %s is the broadcast address of CIDR %s", gw, p)
		}
	}

	s := Subnet{Prefix: p, Gateway: gw}
	if spec.Pools == nil {
		lo, hi := network.Next(), last
		if version == 4 {
			hi = bcast.Prev()
		}
		s.Pools = []Pool{}
		if gw.IsValid() && lo.Compare(gw) <= 0 && gw.Compare(hi) <= 0 {
			if gw != lo {
				s.Pools = append(s.Pools, Pool{lo, gw.Prev()})
			}
			if gw != hi {
				s.Pools = append(s.Pools, Pool{gw.Next(), hi})
			}
		} else {
			s.Pools = append(s.Pools, Pool{lo, hi})
		}
		return s, nil
	}

	for _, pl := range spec.Pools {
		if err := checkPool(pl, p, version, network, bcast); err != nil {
			return Subnet{}, err
		}
	}
	s.Pools = slices.Clone(spec.Pools)
	slices.SortFunc(s.Pools, func(a, b Pool) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(s.Pools); i++ {
		if prev, cur := s.Pools[i-1], s.Pools[i]; cur.Start.Compare(prev.End) <= 0 {
			return Subnet{}, invalidf("allocation pools %s and %s overlap", poolString(prev), poolString(cur))
		}
	}
	if gw.IsValid() {
		for _, pl := range s.Pools {
			if pl.contains(gw) {
				return Subnet{}, &InputError{Type: typeGatewayConflict,
					Message: fmt.Sprintf("Gateway ip %s conflicts with allocation pool %s", gw, poolString(pl))}
			}
		}
	}
	return s, nil
}

func checkPool(pl Pool, p netip.Prefix, version int, network, bcast netip.Addr) error {
	ps := poolString(pl)
	for _, a := range []netip.Addr{pl.Start, pl.End} {
		switch {
		case !a.IsValid():
			return invalidf("allocation pool %s: start and end must both be IP addresses", ps)
		case a.Zone() != "":
			return invalidf("allocation pool %s: IPv6 zones are not allowed", ps)
		case a.Is4() != network.Is4():
			return invalidf("allocation pool %s is not IPv%d like CIDR %s", ps, version, p)
		case !p.Contains(a):
			return invalidf("allocation pool %s is not inside CIDR %s", ps, p)
		}
	}
	switch {
	case pl.Start.Compare(pl.End) > 0:
		return invalidf("allocation pool %s: start must not be after end", ps)
	case pl.Start == network:
		return invalidf("allocation pool %s contains the network address %s of CIDR %s", ps, network, p)
	case pl.End == bcast:
		return invalidf("allocation pool %s contains the broadcast address %s of CIDR %s", ps, bcast, p)
	}
	return nil
}

// Overlaps reports whether two prefixes overlap (for "subnet CIDR overlaps another subnet on the
// same network"). Prefixes of different families never overlap.
func Overlaps(a, b netip.Prefix) bool { return a.Masked().Overlaps(b.Masked()) }

// InPools reports whether addr is inside one of s's pools.
func (s Subnet) InPools(addr netip.Addr) bool {
	// Pools are sorted and disjoint: find the first pool not ending before addr.
	i, _ := slices.BinarySearchFunc(s.Pools, addr, func(pl Pool, a netip.Addr) int { return pl.End.Compare(a) })
	return i < len(s.Pools) && s.Pools[i].contains(addr)
}

// CheckFixed validates an explicitly requested address for a port: inside s.Prefix, not the
// network address, not (IPv4) the broadcast address, not the gateway. It may lie outside the pools
// (Neutron allows that). Errors are *InputError naming the address and the subnet CIDR.
func (s Subnet) CheckFixed(addr netip.Addr) error {
	switch {
	case !addr.IsValid():
		return invalidf("missing IP address: must be an address of subnet %s", s.Prefix)
	case addr.Zone() != "":
		return invalidf("IP address %s of subnet %s must not have an IPv6 zone", addr, s.Prefix)
	case !s.Prefix.Contains(addr):
		return invalidf("IP address %s is not a valid IP for subnet %s", addr, s.Prefix)
	case addr == s.Prefix.Addr():
		return invalidf("IP address %s is the network address of subnet %s", addr, s.Prefix)
	case addr.Is4() && addr == lastAddr(s.Prefix):
		return invalidf("IP address %s is the broadcast address of subnet %s", addr, s.Prefix)
	case s.Gateway.IsValid() && addr == s.Gateway:
		return invalidf("IP address %s is the gateway of subnet %s", addr, s.Prefix)
	}
	return nil
}

// Size returns the number of addresses in the pools, saturated at math.MaxUint64 for huge IPv6
// pools. The default pool of a /64 (gateway ::1) holds exactly 2^64-2 addresses, which still fits.
func (s Subnet) Size() uint64 {
	var total uint64
	for _, pl := range s.Pools {
		if !pl.Start.IsValid() || !pl.End.IsValid() || pl.Start.Compare(pl.End) > 0 {
			continue
		}
		a, b := pl.Start.As16(), pl.End.As16()
		lo, borrow := bits.Sub64(binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(a[8:]), 0)
		hi, _ := bits.Sub64(binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(a[:8]), borrow)
		if hi != 0 {
			return math.MaxUint64
		}
		n, carry := bits.Add64(lo, 1, 0)
		if carry != 0 {
			return math.MaxUint64
		}
		if total, carry = bits.Add64(total, n, 0); carry != 0 {
			return math.MaxUint64
		}
	}
	return total
}

// NextFree returns the first address in s's pools, scanning pool order starting at the first
// address strictly after `after` (wrapping around to the start of the first pool once), that is
// not in used. used must be sorted ascending (netip.Addr.Compare); it may contain duplicates and
// addresses outside the pools. A zero after means "start from the beginning". ok is false when
// every pool address is used.
//
// NextFree never enumerates the address space: it binary-searches used for each pool range and
// then walks pool addresses and used together, so the cost is O(len(pools)·log len(used) +
// len(used)) even for a /64 pool.
func (s Subnet) NextFree(used []netip.Addr, after netip.Addr) (addr netip.Addr, ok bool) {
	if !after.IsValid() {
		for _, pl := range s.Pools {
			if a, ok := firstFree(pl.Start, pl.End, used); ok {
				return a, true
			}
		}
		return netip.Addr{}, false
	}
	next := after.Next() // invalid only if after is the last address of its family
	for _, pl := range s.Pools {
		if pl.End.Compare(after) <= 0 {
			continue
		}
		lo := pl.Start
		if next.IsValid() && next.Compare(lo) > 0 {
			lo = next
		}
		if a, ok := firstFree(lo, pl.End, used); ok {
			return a, true
		}
	}
	// Wrap around: the pool addresses up to and including after.
	for _, pl := range s.Pools {
		if pl.Start.Compare(after) > 0 {
			break
		}
		hi := pl.End
		if hi.Compare(after) > 0 {
			hi = after
		}
		if a, ok := firstFree(pl.Start, hi, used); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// firstFree returns the first address in [lo, hi] (lo <= hi) that is not in the sorted used.
func firstFree(lo, hi netip.Addr, used []netip.Addr) (netip.Addr, bool) {
	if !lo.IsValid() || !hi.IsValid() || lo.Compare(hi) > 0 {
		return netip.Addr{}, false
	}
	i, _ := slices.BinarySearchFunc(used, lo, netip.Addr.Compare)
	cand := lo
	for ; i < len(used); i++ {
		c := used[i].Compare(cand)
		if c < 0 { // duplicate entry
			continue
		}
		if c > 0 {
			break
		}
		if cand == hi {
			return netip.Addr{}, false
		}
		cand = cand.Next()
	}
	return cand, true
}

// Cursor is a goroutine-safe in-memory hint that hands out successive candidate addresses of a
// subnet's pools round-robin (wrapping around), so concurrent allocators in one process try
// different addresses and rarely collide. It is only a hint: the caller confirms each address with
// a compare-and-swap in the store.
type Cursor struct {
	mu    sync.Mutex
	pools []Pool
	last  netip.Addr // the last address handed out (or sought); zero: before the first pool
}

// NewCursor returns a cursor over s's pools whose first Next returns the first pool address after
// after (a zero after means the first pool address).
func NewCursor(s Subnet, after netip.Addr) *Cursor {
	return &Cursor{pools: slices.Clone(s.Pools), last: after}
}

// Next returns the next candidate pool address after the last one handed out (wrapping to the
// first pool after the last pool's end). It returns the zero Addr when the subnet has no pools.
func (c *Cursor) Next() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pools) == 0 {
		return netip.Addr{}
	}
	c.last = nextPoolAddr(c.pools, c.last)
	return c.last
}

// Seek moves the cursor so the next Next returns the first pool address after a (used after a
// rescan). A zero a rewinds to the first pool address.
func (c *Cursor) Seek(a netip.Addr) {
	c.mu.Lock()
	c.last = a
	c.mu.Unlock()
}

// nextPoolAddr returns the first address of the sorted, non-empty pools strictly after after,
// wrapping to the first pool's start.
func nextPoolAddr(pools []Pool, after netip.Addr) netip.Addr {
	if !after.IsValid() {
		return pools[0].Start
	}
	i, _ := slices.BinarySearchFunc(pools, after, func(pl Pool, a netip.Addr) int {
		if pl.End.Compare(a) <= 0 {
			return -1
		}
		return 1
	})
	if i == len(pools) {
		return pools[0].Start
	}
	if pl := pools[i]; pl.Start.Compare(after) > 0 {
		return pl.Start
	}
	return after.Next()
}

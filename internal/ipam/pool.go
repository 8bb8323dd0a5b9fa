package ipam

import (
	"fmt"
	"net/netip"
	"sort"
)

// CompactPrefixes merges a subnet pool's prefixes as Neutron does (netaddr.IPSet.compact): a
// prefix inside another goes, and two halves of a prefix become the prefix. The result is
// sorted. All must be of one IP version (the caller checks).
func CompactPrefixes(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, p.Masked())
	}
	for changed := true; changed; {
		changed = false
		sort.Slice(out, func(i, j int) bool {
			if c := out[i].Addr().Compare(out[j].Addr()); c != 0 {
				return c < 0
			}
			return out[i].Bits() < out[j].Bits()
		})
		var merged []netip.Prefix
		for _, p := range out {
			if n := len(merged); n > 0 {
				last := merged[n-1]
				if last.Contains(p.Addr()) && last.Bits() <= p.Bits() {
					changed = changed || last != p
					continue // inside the previous one
				}
				if last.Bits() == p.Bits() && last.Bits() > 0 {
					parent, _ := last.Addr().Prefix(last.Bits() - 1)
					if parent.Addr() == last.Addr() && parent.Contains(p.Addr()) {
						merged[n-1] = parent
						changed = true
						continue
					}
				}
			}
			merged = append(merged, p)
		}
		out = merged
	}
	return out
}

// Within reports whether p lies inside one of the pool's prefixes.
func Within(pool []netip.Prefix, p netip.Prefix) bool {
	for _, q := range pool {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// AllocatePrefix finds the first prefix of the given length inside the pool that overlaps none
// of used (the pool's subnets), lowest address first, as Neutron's subnet allocator does.
func AllocatePrefix(pool, used []netip.Prefix, bits int) (netip.Prefix, error) {
	for _, q := range CompactPrefixes(pool) {
		if bits < q.Bits() || bits > q.Addr().BitLen() {
			continue
		}
		cand, _ := q.Addr().Prefix(bits)
		for q.Contains(cand.Addr()) {
			clash := netip.Prefix{}
			for _, u := range used {
				if Overlaps(u, cand) {
					clash = u
					break
				}
			}
			if !clash.IsValid() {
				return cand, nil
			}
			// skip past the larger of the two
			last := lastAddr(cand)
			if clash.Bits() < cand.Bits() {
				last = lastAddr(clash)
			}
			next := last.Next()
			if !next.IsValid() {
				break
			}
			cand, _ = next.Prefix(bits)
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d prefix is left in the pool", bits)
}

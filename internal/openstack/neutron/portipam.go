package neutron

// Port addresses: candidates from the subnet cursors, the plan of a port's fixed IPs (explicit,
// automatic, SLAAC), and what a lost reservation means.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/ipam"
	"github.com/vflink/vflink/internal/store"
)

// allocation tracks one request's view of IP candidates across optimistic retries.
type allocation struct {
	fails     map[string]int
	exhausted map[string]bool
	next      map[string]netip.Addr // candidate found by a rescan
	lastTried map[string]netip.Addr
}

func newAllocation() *allocation {
	return &allocation{fails: map[string]int{}, exhausted: map[string]bool{}, next: map[string]netip.Addr{}, lastTried: map[string]netip.Addr{}}
}

// cursor returns the candidate hint of a subnet, seeded by a scan of its allocations.
func (s *Service) cursor(ctx context.Context, so store.Object[api.Subnet], sub ipam.Subnet) (*ipam.Cursor, error) {
	s.mu.Lock()
	sc := s.cursors[so.Value.ID]
	s.mu.Unlock()
	if sc != nil && sc.modRev == so.ModRevision {
		return sc.cur, nil
	}
	used, err := s.usedIPs(ctx, so.Value.ID)
	if err != nil {
		return nil, err
	}
	start, _ := sub.NextFree(used, netip.Addr{})
	c := ipam.NewCursor(sub, netip.Addr{})
	if start.IsValid() {
		c.Seek(prev(start))
	}
	s.mu.Lock()
	s.cursors[so.Value.ID] = &subnetCursor{modRev: so.ModRevision, cur: c}
	s.mu.Unlock()
	return c, nil
}

func prev(a netip.Addr) netip.Addr {
	if p := a.Prev(); p.IsValid() {
		return p
	}
	return a
}

func (s *Service) usedIPs(ctx context.Context, subnetID string) ([]netip.Addr, error) {
	keys, _, err := s.st.Keys(ctx, "ipam/"+subnetID+"/")
	if err != nil {
		return nil, err
	}
	used := make([]netip.Addr, 0, len(keys))
	for _, k := range keys {
		if a, err := netip.ParseAddr(k); err == nil {
			used = append(used, a)
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Less(used[j]) })
	return used, nil
}

// candidate picks an address of sub for this attempt: the cursor's next one, or after repeated
// collisions the first free address of a fresh scan. ok=false means the subnet is full.
func (s *Service) candidate(ctx context.Context, al *allocation, so store.Object[api.Subnet], sub ipam.Subnet, skip map[netip.Addr]bool) (netip.Addr, bool, error) {
	id := so.Value.ID
	if al.exhausted[id] {
		return netip.Addr{}, false, nil
	}
	if a, ok := al.next[id]; ok && !skip[a] {
		delete(al.next, id)
		al.lastTried[id] = a
		return a, true, nil
	}
	if al.fails[id] < 3 {
		c, err := s.cursor(ctx, so, sub)
		if err != nil {
			return netip.Addr{}, false, err
		}
		for i := 0; i < 8; i++ {
			a := c.Next()
			if !skip[a] {
				al.lastTried[id] = a
				return a, true, nil
			}
		}
	}
	used, err := s.usedIPs(ctx, id)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for a := range skip {
		used = append(used, a)
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Less(used[j]) })
	a, ok := sub.NextFree(used, al.lastTried[id])
	if !ok {
		al.exhausted[id] = true
		return netip.Addr{}, false, nil
	}
	if c, err := s.cursor(ctx, so, sub); err == nil {
		c.Seek(a)
	}
	al.lastTried[id] = a
	return a, true, nil
}

// view returns the store view for an optimistic attempt: the first reads serializably (cheap,
// maybe stale: the Txn's compares catch that), retries read linearizably.
func (s *Service) view(attempt int) *store.Store {
	if attempt == 0 {
		return s.st.Serializable()
	}
	return s.st
}

// netSubnets reads the subnets of a network and the revision of that read. A writer that relies
// on the list being complete adds PrefixUnchangedSince("idx/net-subnets/<net>/", rev), so a
// stale (serializable) read that missed a new subnet fails its compare instead of silently
// allocating no address. An indexed subnet that cannot be read is store.ErrConflict (the caller
// reads again): the index and the subnet are written together, so the two reads disagreed, e.g.
// serializable reads answered by two members of a cluster, one of them behind.
func (s *Service) netSubnets(ctx context.Context, st *store.Store, netID string) ([]store.Object[api.Subnet], int64, error) {
	ids, rev, err := st.Keys(ctx, "idx/net-subnets/"+netID+"/")
	if err != nil {
		return nil, 0, err
	}
	out := make([]store.Object[api.Subnet], 0, len(ids))
	for _, id := range ids {
		o, err := store.Get[api.Subnet](ctx, st, subnetKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, fmt.Errorf("subnet %s of network %s is indexed but not found: %w", id, netID, store.ErrConflict)
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, o)
	}
	return out, rev, nil
}

// plannedIP is one address the transaction will reserve.
type plannedIP struct {
	subnet   store.Object[api.Subnet]
	ip       netip.Addr
	explicit bool
}

// planIPs turns the request's fixed_ips (or the default: one address per IP version) into
// addresses to reserve. keep holds addresses the port already has (update) and reuses.
//
// taken holds the addresses other ports of the same transaction have staged on this network (nil
// for a single port); planIPs adds its own. On an auto-address (SLAAC) subnet the address is the
// EUI-64 of mac, and every such subnet of the network gives the port one, as in Neutron.
func (s *Service) planIPs(ctx context.Context, al *allocation, n *api.Network, subs []store.Object[api.Subnet], req portRequest, keep map[netip.Addr]string, taken map[netip.Addr]bool, mac string) ([]plannedIP, error) {
	parsed := make(map[string]ipam.Subnet, len(subs))
	for _, so := range subs {
		sub, err := toIPAM(&so.Value)
		if err != nil {
			return nil, err
		}
		parsed[so.Value.ID] = sub
	}
	skip := taken
	if skip == nil {
		skip = map[netip.Addr]bool{}
	}
	mine := map[netip.Addr]bool{}
	var out []plannedIP
	auto := func(so store.Object[api.Subnet]) (bool, error) {
		a, ok, err := s.candidate(ctx, al, so, parsed[so.Value.ID], skip)
		if err != nil || !ok {
			return false, err
		}
		skip[a], mine[a] = true, true
		out = append(out, plannedIP{subnet: so, ip: a})
		return true, nil
	}
	slaac := map[string]bool{} // auto-address subnets given an address
	eui := func(so store.Object[api.Subnet]) error {
		if slaac[so.Value.ID] {
			return nil
		}
		a, err := ipam.EUI64(parsed[so.Value.ID].Prefix, mac)
		if err != nil {
			return invalidInput("no SLAAC address on subnet %s: %v", so.Value.ID, err)
		}
		slaac[so.Value.ID], skip[a], mine[a] = true, true, true
		out = append(out, plannedIP{subnet: so, ip: a, explicit: true})
		return nil
	}
	allSLAAC := func() ([]plannedIP, error) {
		for _, so := range subs {
			if autoAddress(&so.Value) {
				if err := eui(so); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	if !req.fixedOK {
		for _, v := range []int{4, 6} {
			have, got := false, false
			for _, so := range subs {
				if so.Value.IPVersion != v || autoAddress(&so.Value) {
					continue
				}
				have = true
				ok, err := auto(so)
				if err != nil {
					return nil, err
				}
				if ok {
					got = true
					break
				}
			}
			if have && !got {
				return nil, errf(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
			}
		}
		return allSLAAC()
	}
	for i, fr := range req.fixed {
		var so *store.Object[api.Subnet]
		for j := range subs {
			if fr.subnetID != "" && subs[j].Value.ID == fr.subnetID {
				so = &subs[j]
				break
			}
			if fr.subnetID == "" && parsed[subs[j].Value.ID].Prefix.Contains(fr.ip) {
				so = &subs[j]
				break
			}
		}
		if so == nil {
			if fr.subnetID != "" {
				return nil, invalidInput("fixed_ips[%d]: subnet %s is not a subnet of network %s.", i, fr.subnetID, n.ID)
			}
			return nil, invalidInput("fixed_ips[%d]: IP address %s is in no subnet of network %s.", i, fr.ip, n.ID)
		}
		sub := parsed[so.Value.ID]
		if autoAddress(&so.Value) {
			if _, had := keep[fr.ip]; fr.ip.IsValid() && !had { // the port's own SLAAC address is planned again
				if a, err := ipam.EUI64(sub.Prefix, mac); err != nil || a != fr.ip {
					return nil, invalidInput("IPv6 address %s can not be directly assigned to a port on subnet %s since the subnet is configured for automatic addresses", fr.ip, so.Value.ID)
				}
			}
			if err := eui(*so); err != nil {
				return nil, err
			}
			continue
		}
		if !fr.ip.IsValid() {
			ok, err := auto(*so)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errf(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on subnet %s.", so.Value.ID)
			}
			continue
		}
		if !sub.Prefix.Contains(fr.ip) {
			return nil, invalidInput("fixed_ips[%d]: IP address %s is not in subnet %s (%s).", i, fr.ip, so.Value.ID, so.Value.CIDR)
		}
		if _, had := keep[fr.ip]; !had {
			if err := sub.CheckFixed(fr.ip); err != nil {
				return nil, ipamErr(err)
			}
		}
		if mine[fr.ip] {
			return nil, invalidInput("fixed_ips[%d]: IP address %s is given twice.", i, fr.ip)
		}
		if skip[fr.ip] {
			return nil, errf(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", fr.ip, so.Value.ID)
		}
		skip[fr.ip], mine[fr.ip] = true, true
		out = append(out, plannedIP{subnet: *so, ip: fr.ip, explicit: true})
	}
	return allSLAAC()
}

// portConflict turns a failed reservation into the API error, or nil when a retry with a fresh
// candidate should follow.
func portConflict(ce *store.ConflictError, plan []plannedIP, al *allocation, netID, mac string, macExplicit bool) error {
	if ce.Reason != store.Exists {
		return nil
	}
	if strings.HasPrefix(ce.Key, "mac/") {
		if macExplicit {
			return errf(http.StatusConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", netID, mac)
		}
		return nil
	}
	for _, p := range plan {
		if ce.Key == ipKey(p.subnet.Value.ID, p.ip) {
			if p.explicit {
				return errf(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", p.ip, p.subnet.Value.ID)
			}
			al.fails[p.subnet.Value.ID]++
		}
	}
	return nil
}

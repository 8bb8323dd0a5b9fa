package nova

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// ErrNoValidHost is returned by a Scheduler when no host can take the request.
var ErrNoValidHost = errors.New("No valid host was found. There are not enough hosts available.")

// Scheduler picks a host with a free VF on each physical network the request needs.
type Scheduler interface {
	// Pick returns a host with at least need[physnet] free VFs on every physnet of need, or an error
	// wrapping ErrNoValidHost. With only, it picks among those hosts alone (a forced host).
	Pick(ctx context.Context, need map[string]int, only ...string) (host string, err error)
}

// NewStoreScheduler returns a Scheduler over the hosts the agents register under "hosts/".
//
// A host's free VFs on a physical network are the VFs enabled on its PFs tagged with that network
// (PF.NumVFs) minus the ports already bound to the host (binding:host_id) with VNIC type direct,
// macvtap or direct-physical on a network of that physical network. The choice is deterministic:
// the fitting host with the most free VFs on the needed networks (on all networks when the
// request needs none), ties broken by name.
func NewStoreScheduler(st *store.Store) Scheduler { return storeScheduler{st: st} }

type storeScheduler struct{ st *store.Store }

// needsVF reports whether a port of this VNIC type takes a VF.
func needsVF(vnic string) bool {
	switch vnic {
	case api.VNICDirect, api.VNICMacvtap, api.VNICDirectPhysical:
		return true
	}
	return false
}

// Free returns the free VFs per host and physical network, as Pick counts them.
func (s storeScheduler) free(ctx context.Context) (map[string]map[string]int, error) {
	hosts, _, err := store.List[api.Host](ctx, s.st, "hosts/")
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	free := map[string]map[string]int{}
	for _, o := range hosts {
		name := o.Value.Name
		if name == "" {
			name = strings.TrimPrefix(o.Key, "hosts/")
		}
		m := map[string]int{}
		for _, pf := range o.Value.PFs {
			if pf.PhysicalNetwork != "" && pf.NumVFs > 0 {
				m[pf.PhysicalNetwork] += pf.NumVFs
			}
		}
		free[name] = m
	}
	if len(free) == 0 {
		return free, nil
	}
	nets, _, err := store.List[api.Network](ctx, s.st, "networks/")
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	physnet := make(map[string]string, len(nets))
	for _, o := range nets {
		if p := o.Value.PhysicalNetwork; p != nil && *p != "" {
			physnet[o.Value.ID] = *p
		}
	}
	ports, _, err := store.List[api.Port](ctx, s.st, "ports/")
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	for _, o := range ports {
		p := o.Value
		if p.HostID == "" || !needsVF(p.VNICType) {
			continue
		}
		if m, ok := free[p.HostID]; ok && physnet[p.NetworkID] != "" {
			m[physnet[p.NetworkID]]--
		}
	}
	return free, nil
}

// Pick implements Scheduler.
func (s storeScheduler) Pick(ctx context.Context, need map[string]int, only ...string) (string, error) {
	free, err := s.free(ctx)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(free))
	for n := range free {
		if len(only) == 0 || slices.Contains(only, n) {
			names = append(names, n)
		}
	}
	if len(only) > 0 && len(names) == 0 {
		return "", fmt.Errorf("%w (host %s has no agent registered)", ErrNoValidHost, strings.Join(only, ", "))
	}
	sort.Strings(names)
	best, bestScore := "", -1
	for _, h := range names {
		fits, score := true, 0
		for p, n := range need {
			if free[h][p] < n {
				fits = false
				break
			}
			score += free[h][p]
		}
		if !fits {
			continue
		}
		if len(need) == 0 {
			for _, n := range free[h] {
				score += max(n, 0)
			}
		}
		if score > bestScore {
			best, bestScore = h, score
		}
	}
	if best == "" {
		return "", ErrNoValidHost
	}
	return best, nil
}

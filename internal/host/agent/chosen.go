package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/vflink/vflink/api"
)

// The compute service's choice of VF (Nova's binding:profile pci_slot, in HostPort.PCISlot): a
// port that names its VF is served on exactly that one, or its binding fails.

// claimChosen claims the VF the compute service chose for p (its pci_slot), or says why the
// host cannot bind the port as asked: the VF is not the host's, not on the port's physical
// network, or another port's. A VF being put back is waited for. It returns how many pipelines
// it started; a.mu held.
func (a *Agent) claimChosen(ctx context.Context, p *portState, pl *pool, waitVM bool) int {
	pci := p.PCISlot
	fail := func(reason, msg string) int {
		a.waitingVF[p.PortID] = true // looked at again when VFs change
		if p.Status == api.StatusError {
			return 0
		}
		a.startBindingFailed(ctx, p, reason, msg)
		return 1
	}
	s, known := a.slots[pci]
	if !known {
		return fail("PCISlotUnknown", fmt.Sprintf("binding:profile pci_slot %s is not a VF of host %s (device spec: %s)", pci, a.cfg.Host, a.inventoryHint()))
	}
	if s.physnet != p.PhysicalNetwork {
		return fail("PCISlotWrongNetwork", fmt.Sprintf("binding:profile pci_slot %s of host %s is on physical network %q; the port's network is on %q", pci, a.cfg.Host, s.physnet, p.PhysicalNetwork))
	}
	if al := a.allocs[pci]; al != nil && al.PortID != p.PortID {
		if al.releasing {
			a.waitingVF[p.PortID] = true
			return 0
		}
		return fail("PCISlotInUse", fmt.Sprintf("binding:profile pci_slot %s of host %s is the VF of port %s", pci, a.cfg.Host, al.PortID))
	}
	if other, ok := a.claiming[pci]; ok && other != p.PortID {
		a.waitingVF[p.PortID] = true // a claim for another port is under way: its answer decides
		return 0
	}
	if _, dirty := a.leftover[pci]; dirty {
		a.waitingVF[p.PortID] = true // restored first
		return 0
	}
	for i, f := range pl.free {
		if f.vf.PCIAddress == pci {
			pl.free = append(pl.free[:i:i], pl.free[i+1:]...)
			pl.used++
			break
		}
	}
	a.startClaim(ctx, p, s, waitVM)
	return 1
}

// inventoryHint names the PFs of the host and their VF addresses, for an error message.
func (a *Agent) inventoryHint() string {
	per := map[string][]string{}
	var pfs []string
	for _, pci := range a.order {
		s := a.slots[pci]
		if _, ok := per[s.pf.Name]; !ok {
			pfs = append(pfs, s.pf.Name)
		}
		per[s.pf.Name] = append(per[s.pf.Name], pci)
	}
	if len(pfs) == 0 {
		return "no VFs"
	}
	parts := make([]string, len(pfs))
	for i, pf := range pfs {
		vfs := per[pf]
		parts[i] = fmt.Sprintf("%s VFs %s..%s", pf, vfs[0], vfs[len(vfs)-1])
	}
	return strings.Join(parts, "; ")
}

// startBindingFailed reports that the host cannot bind p as asked; a.mu held.
func (a *Agent) startBindingFailed(ctx context.Context, p *portState, reason, msg string) {
	p.busy = true
	a.begin()
	hp := p.HostPort
	a.wave = append(a.wave, func(wb *waveBuf) { a.sendReport(ctx, wb, p, hp, api.StatusError, reason, msg, nil, true, nil) })
}

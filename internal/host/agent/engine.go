package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/sriov"
)

// How the agent works: it keeps its own copy of the host's desired state (desired), built from
// one whole HostWork and then from the changes it long-polls (pollLoop), each key at the highest
// store revision seen, so a late or repeated piece of news never undoes a newer one. Whenever
// the copy changes, a pass (plan) compares all of it with what is under way and starts what is
// missing, without waiting for what already runs: a port without a VF gets a free one (claim →
// program → report), a port with a VF not yet programmed or verified by this agent gets it
// programmed (and reported), a VF whose port left is restored and released. NIC operations run
// on at most Workers goroutines; claims, releases and reports wait in an outbox that sends them
// in batches, several round trips at once. The pass is level-triggered on the copy: whatever
// fails is tried again by a later pass (after a backoff), and every resync period a pass
// re-reads each programmed VF (drift) and the whole state is read again.

// desired is the host's desired state as this agent knows it.
type desired struct {
	complete     int64                  // revision of the last whole state: a port it lacks was not bound here then
	ports        map[string]*portState  // ports bound here, by ID
	allocs       map[string]*allocState // this host's VF allocations, by PCI address
	byPort       map[string]string      // port → PCI address of its VF
	goneAllocs   map[string]int64       // PCI address → revision that freed it (older news of it is stale)
	gonePorts    map[string]int64       // port → revision at which it left (lets a VF learned from others go)
	servers      []api.HostServer
	serversDirty bool // servers or their ports changed since the hypervisor was last brought in line

	// what the next pass must look at (all of it when planAll)
	planAll     bool
	dirtyPorts  map[string]bool
	dirtyAllocs map[string]bool
	waitingVF   map[string]bool  // ports told there is no free VF: looked at again when one is freed
	pools       map[string]*pool // free VFs per physical network; nil: compute again
}

// pool is the free VFs of one physical network, in inventory order.
type pool struct {
	free        []slot
	total, used int
}

func (d *desired) init() {
	d.ports, d.allocs, d.byPort = map[string]*portState{}, map[string]*allocState{}, map[string]string{}
	d.goneAllocs, d.gonePorts = map[string]int64{}, map[string]int64{}
	d.dirtyPorts, d.dirtyAllocs, d.waitingVF = map[string]bool{}, map[string]bool{}, map[string]bool{}
	d.planAll = true
}

// markAll makes the next pass look at everything (and count free VFs again).
func (d *desired) markAll() {
	d.planAll, d.pools = true, nil
}

// vfsChanged makes the free VFs be counted again and the ports waiting for one looked at.
func (d *desired) vfsChanged() {
	d.pools = nil
	for id := range d.waitingVF {
		d.dirtyPorts[id] = true
	}
	clear(d.waitingVF)
}

type portState struct {
	api.HostPort
	busy       bool      // a claim, a programming or a report of it is under way
	programmed bool      // this agent programmed or verified its VF for the current spec
	retryAt    time.Time // after a failure, not before
	failures   int
}

type allocState struct {
	api.VFAllocation
	mine      bool // this agent claimed it (for a port it saw bound here)
	releasing bool
	retryAt   time.Time
	failures  int
}

// underway is what the agent is doing.
type underway struct {
	claiming       map[string]string // PCI address → port: claim sent, not answered
	busy           int               // pipelines under way
	idle           *sync.Cond        // broadcast when busy drops to 0
	collect        bool              // a Reconcile is running: keep errors for it
	errs           []error
	serversRunning bool
	wave           []func(*waveBuf) // what the pass started, to run as one wave (launch)
}

func (u *underway) init(mu *sync.Mutex) {
	u.claiming = map[string]string{}
	u.idle = sync.NewCond(mu)
}

// slot is one VF of the inventory.
type slot struct {
	pf      *sriov.PF
	vf      sriov.VF
	physnet string
}

// sameSpec compares what the agent programs from (not the status or the revision).
func sameSpec(a, b api.HostPort) bool {
	return a.MAC == b.MAC && a.VNICType == b.VNICType && a.DeviceID == b.DeviceID && a.PhysicalNetwork == b.PhysicalNetwork && a.VLAN == b.VLAN
}

// upsertPort records news of a port; a.mu held.
func (a *Agent) upsertPort(hp api.HostPort) {
	p := a.ports[hp.PortID]
	delete(a.gonePorts, hp.PortID)
	a.dirtyPorts[hp.PortID] = true
	if p == nil {
		a.ports[hp.PortID] = &portState{HostPort: hp}
		return
	}
	if !sameSpec(p.HostPort, hp) {
		p.programmed, p.failures, p.retryAt = false, 0, time.Time{}
		a.serversDirty = true
		if p.DeviceID != hp.DeviceID {
			a.planAll = true // whether it waits for a VM may have changed
		}
	}
	p.HostPort = hp
}

// dropPort records that a port left the host at rev; a.mu held.
func (a *Agent) dropPort(id string, rev int64) {
	if _, ok := a.ports[id]; ok {
		a.serversDirty = true
	}
	if pci, ok := a.byPort[id]; ok {
		a.dirtyAllocs[pci] = true
	}
	delete(a.ports, id)
	delete(a.waitingVF, id)
	a.gonePorts[id] = max(a.gonePorts[id], rev)
}

// upsertAlloc records news of an allocation unless newer news of its VF is known; a.mu held.
func (a *Agent) upsertAlloc(al api.VFAllocation, mine bool) {
	pci := al.PCIAddress
	if a.goneAllocs[pci] >= al.Revision {
		return
	}
	cur := a.allocs[pci]
	switch {
	case cur == nil:
		a.allocs[pci] = &allocState{VFAllocation: al, mine: mine}
	case cur.Revision >= al.Revision:
		if mine && cur.PortID == al.PortID {
			cur.mine = true // its news came before the answer to the claim
		}
		return
	default:
		if cur.PortID != al.PortID {
			if a.byPort[cur.PortID] == pci {
				delete(a.byPort, cur.PortID)
			}
			a.dirtyPorts[cur.PortID] = true
			cur.mine = mine
		}
		cur.VFAllocation = al
	}
	a.dirtyAllocs[pci] = true
	a.dirtyPorts[al.PortID] = true
	delete(a.waitingVF, al.PortID)
	if !mine {
		a.pools = nil // the pass that picked free VFs did not know this one was taken
	}
	if old, ok := a.byPort[al.PortID]; !ok || old != pci {
		if p := a.ports[al.PortID]; p != nil {
			p.programmed = false
		}
	}
	a.byPort[al.PortID] = pci
}

// dropAlloc records that the VF at pci was freed at rev (only al when set); a.mu held.
func (a *Agent) dropAlloc(pci string, rev int64, al *allocState) {
	if cur := a.allocs[pci]; cur != nil && (al == nil || cur == al) {
		delete(a.allocs, pci)
		if a.byPort[cur.PortID] == pci {
			delete(a.byPort, cur.PortID)
		}
		a.dirtyPorts[cur.PortID] = true
		a.vfsChanged()
	}
	a.goneAllocs[pci] = max(a.goneAllocs[pci], rev)
}

// applyFull replaces the copy with a whole state read at w.Revision, keeping what the agent
// learned after it; a.mu held.
func (a *Agent) applyFull(w api.HostWork) {
	a.markAll()
	rev := w.Revision
	seen := make(map[string]bool, len(w.Ports))
	for _, hp := range w.Ports {
		seen[hp.PortID] = true
		if p := a.ports[hp.PortID]; p != nil && p.Revision > hp.Revision {
			continue
		}
		a.upsertPort(hp)
	}
	for id, p := range a.ports {
		if !seen[id] && p.Revision <= rev {
			a.dropPort(id, rev)
		}
	}
	clear(seen)
	for _, al := range w.Allocations {
		seen[al.PCIAddress] = true
		a.upsertAlloc(al, false)
	}
	for pci, al := range a.allocs {
		if !seen[pci] && al.Revision <= rev {
			a.dropAlloc(pci, rev, nil)
		}
	}
	a.complete = max(a.complete, rev)
	for id, r := range a.gonePorts {
		if r <= a.complete {
			delete(a.gonePorts, id)
		}
	}
	for pci, r := range a.goneAllocs {
		if r <= a.complete {
			delete(a.goneAllocs, pci)
		}
	}
	a.servers, a.serversDirty = w.Servers, true
}

// applyChanges applies what changed after the agent's cursor; a.mu held.
func (a *Agent) applyChanges(c api.HostWorkChanges) {
	for _, hp := range c.Ports {
		if hp.Revision <= a.complete || a.gonePorts[hp.PortID] >= hp.Revision {
			continue
		}
		if p := a.ports[hp.PortID]; p != nil && p.Revision >= hp.Revision {
			continue
		}
		a.upsertPort(hp)
	}
	for _, g := range c.GonePorts {
		if g.Revision <= a.complete {
			continue
		}
		if p := a.ports[g.Key]; p != nil && p.Revision > g.Revision {
			continue
		}
		a.dropPort(g.Key, g.Revision)
	}
	for _, al := range c.Allocations {
		if al.Revision > a.complete {
			a.upsertAlloc(al, false)
		}
	}
	for _, g := range c.GoneAllocations {
		if g.Revision <= a.complete {
			continue
		}
		if cur := a.allocs[g.Key]; cur != nil && cur.Revision > g.Revision {
			continue
		}
		a.dropAlloc(g.Key, g.Revision, nil)
	}
	if c.ServersChanged {
		a.servers, a.serversDirty = c.Servers, true
		a.planAll = true
	}
}

// poke asks the dispatcher for a pass.
func (a *Agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// record keeps err for the running Reconcile, or logs it; a.mu held.
func (a *Agent) record(err error) {
	if a.collect {
		a.errs = append(a.errs, err)
	} else {
		a.log.Warn("reconcile", "err", err)
	}
}

// backoff delays the next try of something that failed, then marks it (mark runs with a.mu
// held); a.mu held.
func (a *Agent) backoff(failures *int, retryAt *time.Time, mark func()) {
	*failures++
	d := min(100*time.Millisecond<<min(*failures-1, 9), resync)
	*retryAt = time.Now().Add(d)
	time.AfterFunc(d, func() {
		a.mu.Lock()
		mark()
		a.mu.Unlock()
		a.poke()
	})
}

// begin counts a pipeline; a.mu held.
func (a *Agent) begin() { a.busy++ }

// end uncounts a pipeline; a.mu held.
func (a *Agent) end() {
	if a.busy--; a.busy == 0 {
		a.idle.Broadcast()
	}
}

func (a *Agent) waitIdle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.busy > 0 {
		a.idle.Wait()
	}
}

// portDone ends p's pipeline: err (if any) is recorded and delays p's next try; a pass looks at
// the port again (it may have changed meanwhile).
func (a *Agent) portDone(p *portState, err error) {
	defer a.poke()
	a.mu.Lock()
	defer a.mu.Unlock()
	p.busy = false
	id := p.PortID
	if err != nil {
		a.record(err)
		a.backoff(&p.failures, &p.retryAt, func() { a.dirtyPorts[id] = true })
	} else {
		p.failures, p.retryAt = 0, time.Time{}
		a.dirtyPorts[id] = true
	}
	a.end()
}

// current reports whether p is still the agent's copy of its port with the spec hp; a.mu held.
func (a *Agent) current(p *portState, hp api.HostPort) bool {
	return a.ports[hp.PortID] == p && sameSpec(p.HostPort, hp)
}

// onNIC runs f on one of the Workers; a cancelled context (a stopped agent) changes nothing more.
func (a *Agent) onNIC(ctx context.Context, f func() error) error {
	select {
	case a.workers <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.workers }()
	if err := ctx.Err(); err != nil {
		return err
	}
	return f()
}

// plan compares the copy with what is under way and starts what is missing: the whole copy
// after a whole state, a change of servers or the inventory, and on full passes; otherwise what
// changed since the last pass. It returns how many pipelines it started; a.mu held.
func (a *Agent) plan(ctx context.Context, full bool) int {
	now := time.Now()
	started := 0
	all := full || a.planAll
	allocs, ports := a.dirtyAllocs, a.dirtyPorts
	if all {
		allocs, ports = make(map[string]bool, len(a.allocs)), make(map[string]bool, len(a.ports))
		for pci := range a.allocs {
			allocs[pci] = true
		}
		for id := range a.ports {
			ports[id] = true
		}
	}
	a.planAll, a.dirtyAllocs, a.dirtyPorts = false, map[string]bool{}, map[string]bool{}
	if a.complete > 0 { // the whole state is known: who holds each leftover VF
		for _, e := range a.leftover {
			if !a.recovering[e.PCIAddress] {
				a.startRecover(ctx, e)
				started++
			}
		}
	}
	for pci := range allocs {
		al := a.allocs[pci]
		if al == nil || al.releasing || now.Before(al.retryAt) {
			continue
		}
		if _, bound := a.ports[al.PortID]; bound {
			continue
		}
		// a VF learned from others is freed only on news that its port left after the claim
		if !al.mine && a.complete < al.Revision && a.gonePorts[al.PortID] < al.Revision {
			continue
		}
		a.startRelease(ctx, al)
		started++
	}
	onServer := map[string]bool{}
	if a.cfg.Hypervisor != nil {
		for _, s := range a.servers {
			onServer[s.ID] = true
		}
	}
	var needVF []*portState
	for id := range ports {
		p := a.ports[id]
		if p == nil || p.busy || now.Before(p.retryAt) {
			continue
		}
		waitVM := onServer[p.DeviceID]
		pci, ok := a.byPort[p.PortID]
		if !ok {
			needVF = append(needVF, p)
			continue
		}
		if a.allocs[pci].releasing {
			continue // a new VF once this one is back (its release marks the port)
		}
		if p.PCISlot != "" && p.PCISlot != pci {
			// the compute service chose another VF (a new binding): this one goes back first
			a.startRelease(ctx, a.allocs[pci])
			started++
			continue
		}
		if other, ok := a.claiming[pci]; ok && other != p.PortID {
			continue // served ahead for another port that did not know: programmed once it is put back
		}
		if p.programmed && (p.Status == api.StatusActive || waitVM) && !full {
			continue // served; re-read on the next full pass
		}
		s, known := a.slots[pci]
		if !known {
			if p.Status != api.StatusError {
				a.startReport(ctx, p, api.StatusError, "VFGone",
					fmt.Sprintf("VF %s of port %s is no longer in the inventory of host %s", pci, p.PortID, a.cfg.Host), nil, nil)
				started++
			}
			continue
		}
		a.startProgram(ctx, p, a.allocs[pci].VFAllocation, s, p.Status == api.StatusActive, waitVM)
		started++
	}
	if len(needVF) == 0 {
		return started
	}
	sort.Slice(needVF, func(i, j int) bool { return needVF[i].PortID < needVF[j].PortID })
	// a server's ports go to different PFs when they can (PFs cabled to different switches make a
	// multi-homed server: the binder turns its switch ports into one port group)
	var serverPFs map[string]map[string]bool
	note := func(server, pf string) {
		if server == "" {
			return
		}
		if serverPFs[server] == nil {
			serverPFs[server] = map[string]bool{}
		}
		serverPFs[server][pf] = true
	}
	for _, p := range needVF {
		if p.DeviceID != "" && serverPFs == nil {
			serverPFs = map[string]map[string]bool{}
			for pci, al := range a.allocs {
				if q, sl := a.ports[al.PortID], a.slots[pci]; q != nil && sl.pf != nil {
					note(q.DeviceID, sl.pf.Name)
				}
			}
			for pci, id := range a.claiming {
				if q, sl := a.ports[id], a.slots[pci]; q != nil && sl.pf != nil {
					note(q.DeviceID, sl.pf.Name)
				}
			}
		}
	}
	for _, p := range needVF {
		pl := a.pool(p.PhysicalNetwork)
		if p.PCISlot != "" {
			started += a.claimChosen(ctx, p, pl, onServer[p.DeviceID])
			continue
		}
		if len(pl.free) == 0 {
			a.waitingVF[p.PortID] = true
			if p.Status != api.StatusError {
				msg := fmt.Sprintf("no free VF on host %s for physical network %q: %d of %d VFs in use", a.cfg.Host, p.PhysicalNetwork, pl.used, pl.total)
				if pl.total == 0 {
					msg = fmt.Sprintf("host %s has no PF on physical network %q (device spec)", a.cfg.Host, p.PhysicalNetwork)
				}
				a.startReport(ctx, p, api.StatusError, "NoFreeVF", msg, nil, nil)
				started++
			}
			continue
		}
		k := 0
		if avoid := serverPFs[p.DeviceID]; len(avoid) > 0 {
			for i, s := range pl.free {
				if !avoid[s.pf.Name] {
					k = i
					break
				}
			}
		}
		s := pl.free[k]
		if k == 0 {
			pl.free = pl.free[1:]
		} else {
			pl.free = append(pl.free[:k:k], pl.free[k+1:]...)
		}
		pl.used++
		note(p.DeviceID, s.pf.Name)
		a.startClaim(ctx, p, s, onServer[p.DeviceID])
		started++
	}
	return started
}

// pool returns the free VFs of a physical network, counting them when they are not known; a.mu
// held.
func (a *Agent) pool(physnet string) *pool {
	if a.pools == nil {
		a.pools = map[string]*pool{}
	}
	if pl, ok := a.pools[physnet]; ok {
		return pl
	}
	pl := &pool{}
	for _, pci := range a.order {
		s := a.slots[pci]
		if s.physnet != physnet {
			continue
		}
		pl.total++
		if _, held := a.allocs[pci]; held {
			pl.used++
		} else if _, held := a.claiming[pci]; held {
			pl.used++
		} else if _, dirty := a.leftover[pci]; dirty {
			pl.used++
		} else {
			pl.free = append(pl.free, s)
		}
	}
	a.pools[physnet] = pl
	return pl
}

// launch runs what the pass started as one wave; a.mu held.
func (a *Agent) launch() {
	w := a.wave
	a.wave = nil
	a.runWave(w)
}

// runWave runs bodies at once (their NIC work bounded by the Workers) and puts what they queue
// for a round trip in the outbox together, when the last is done.
func (a *Agent) runWave(bodies []func(*waveBuf)) {
	if len(bodies) == 0 {
		return
	}
	go func() {
		wb := &waveBuf{}
		var wg sync.WaitGroup
		for _, b := range bodies[1:] {
			wg.Go(func() { b(wb) })
		}
		bodies[0](wb)
		wg.Wait()
		a.outMu.Lock()
		for _, add := range wb.adds {
			add(&a.out)
		}
		a.outMu.Unlock()
		a.flush()
	}()
}

// startClaim gives s to p: a port that can be reported at once is served (programmed, then
// claimed with its report); one that waits for its VM is claimed, then programmed; a.mu held.
func (a *Agent) startClaim(ctx context.Context, p *portState, s slot, waitVM bool) {
	pci, hp := s.vf.PCIAddress, p.HostPort
	p.busy = true
	a.claiming[pci] = p.PortID
	a.begin()
	a.wave = append(a.wave, func(wb *waveBuf) {
		var saved sriov.VFState
		err := a.onNIC(ctx, func() (err error) {
			saved, err = sriov.Save(a.cfg.NIC, s.pf.Name, s.vf.Index)
			return err
		})
		if err != nil {
			a.mu.Lock()
			delete(a.claiming, pci)
			a.vfsChanged()
			a.mu.Unlock()
			if ctx.Err() != nil {
				a.portDone(p, ctx.Err())
				return
			}
			msg := fmt.Sprintf("read VF %d of %s on host %s: %v", s.vf.Index, s.pf.Name, a.cfg.Host, err)
			a.report(ctx, wb, p, hp, api.StatusError, "ReadFailed", msg, nil, errors.New(msg))
			return
		}
		al := api.VFAllocation{Host: a.cfg.Host, PF: s.pf.Name, VFIndex: s.vf.Index, PCIAddress: pci, PortID: hp.PortID, Saved: toAPI(saved)}
		if !waitVM {
			a.serve(ctx, wb, p, hp, al, s)
			return
		}
		a.enqueue(wb, func(o *outbox) {
			o.claims = append(o.claims, outItem[api.VFAllocation]{ctx: ctx, v: al, done: func(item api.BatchItem, err error, wave *[]func(*waveBuf)) {
				a.claimed(ctx, p, hp, s, waitVM, item, err, wave)
			}})
		})
	})
}

// claimed handles the answer to a claim.
// A claim done adds the VF's programming to the wave of its round trip.
func (a *Agent) claimed(ctx context.Context, p *portState, hp api.HostPort, s slot, waitVM bool, item api.BatchItem, err error, wave *[]func(*waveBuf)) {
	pci := s.vf.PCIAddress
	a.mu.Lock()
	delete(a.claiming, pci)
	switch {
	case err == nil && item.OK() && item.Allocation != nil:
		a.upsertAlloc(*item.Allocation, true)
		a.mu.Unlock()
		al := *item.Allocation
		*wave = append(*wave, func(wb *waveBuf) { a.program(ctx, wb, p, hp, al, s, false, waitVM) })
	case err == nil && item.Status == http.StatusConflict && item.Allocation != nil:
		// the VF is someone else's, or the port holds another VF: the next pass knows which
		a.upsertAlloc(*item.Allocation, false)
		a.vfsChanged()
		a.mu.Unlock()
		a.portDone(p, nil)
		a.poke()
	case err == nil:
		a.vfsChanged()
		a.mu.Unlock()
		a.portDone(p, fmt.Errorf("claim VF %s for port %s: %d %s", pci, hp.PortID, item.Status, item.Message))
	default:
		a.vfsChanged()
		a.mu.Unlock()
		a.portDone(p, fmt.Errorf("claim VF %s for port %s: %w", pci, hp.PortID, err))
	}
}

// startProgram programs (or, when verify, first re-reads) p's VF; a.mu held.
func (a *Agent) startProgram(ctx context.Context, p *portState, al api.VFAllocation, s slot, verify, waitVM bool) {
	p.busy = true
	a.begin()
	hp := p.HostPort
	a.wave = append(a.wave, func(wb *waveBuf) { a.program(ctx, wb, p, hp, al, s, verify, waitVM) })
}

// program makes the VF carry hp's MAC and VLAN (a verify first re-reads it and changes nothing
// when it is as wanted), then reports the port ACTIVE unless it already is or waits for its VM.
func (a *Agent) program(ctx context.Context, wb *waveBuf, p *portState, hp api.HostPort, al api.VFAllocation, s slot, verify, waitVM bool) {
	a.mu.Lock()
	still := a.current(p, hp)
	a.mu.Unlock()
	if !still {
		a.portDone(p, nil) // it changed or left meanwhile: the next pass decides
		a.poke()
		return
	}
	pf, vf := s.pf.Name, s.vf.Index
	want, err := wantState(hp, s)
	if err != nil {
		a.report(ctx, wb, p, hp, api.StatusError, "BadMAC", err.Error(), nil, err)
		return
	}
	err = a.onNIC(ctx, func() error {
		if verify {
			if cur, err := sriov.Save(a.cfg.NIC, pf, vf); err == nil && cur.String() == want.String() {
				return nil // level-triggered: already as wanted
			}
		}
		return sriov.Apply(a.cfg.NIC, pf, vf, want)
	})
	if ctx.Err() != nil {
		a.portDone(p, ctx.Err())
		return
	}
	if err != nil {
		msg := fmt.Sprintf("program VF %d of %s on host %s: %v", vf, pf, a.cfg.Host, err)
		a.report(ctx, wb, p, hp, api.StatusError, "ProgramFailed", msg, nil, errors.New(msg))
		return
	}
	a.mu.Lock()
	if a.current(p, hp) {
		p.programmed = true
		if a.cfg.Hypervisor != nil {
			a.serversDirty = true
		}
	}
	a.mu.Unlock()
	if (verify && hp.Status == api.StatusActive) || waitVM {
		a.portDone(p, nil)
		if waitVM {
			a.poke()
		}
		return
	}
	a.log.Info("vf programmed", "port", hp.PortID, "pf", pf, "vf", vf, "vlan", hp.VLAN, "mac", hp.MAC)
	a.report(ctx, wb, p, hp, api.StatusActive, "Programmed", programmedMessage(s, hp), profileOf(hp, s), nil)
}

// wantState is what hp's VF must carry.
func wantState(hp api.HostPort, s slot) (sriov.VFState, error) {
	mac, err := net.ParseMAC(hp.MAC)
	if err != nil {
		return sriov.VFState{}, fmt.Errorf("port %s has MAC %q: %v", hp.PortID, hp.MAC, err)
	}
	return sriov.VFState{MAC: mac, VLAN: hp.VLAN, SpoofCheck: true, Trust: s.pf.Trusted, LinkState: sriov.LinkStateAuto}, nil
}

// serve programs al's VF for hp, then sends the claim with the port's ACTIVE report (one
// transaction on the server). The VF's saved state is in the journal before its first change.
// On any failure the VF is put back as it was and leaves a.claiming only then.
func (a *Agent) serve(ctx context.Context, wb *waveBuf, p *portState, hp api.HostPort, al api.VFAllocation, s slot) {
	pci, pf, vf := al.PCIAddress, al.PF, al.VFIndex
	unclaim := func() {
		a.mu.Lock()
		delete(a.claiming, pci)
		a.vfsChanged()
		a.mu.Unlock()
	}
	want, err := wantState(hp, s)
	if err != nil {
		unclaim()
		a.report(ctx, wb, p, hp, api.StatusError, "BadMAC", err.Error(), nil, err)
		return
	}
	entry := journalEntry{PCIAddress: pci, PF: pf, VFIndex: vf, PortID: hp.PortID, Saved: al.Saved}
	if err := a.journal.add(entry); err != nil {
		unclaim()
		msg := fmt.Sprintf("keep the state of VF %d of %s on host %s before programming it: %v", vf, pf, a.cfg.Host, err)
		a.report(ctx, wb, p, hp, api.StatusError, "JournalFailed", msg, nil, errors.New(msg))
		return
	}
	err = a.onNIC(ctx, func() error { return sriov.Apply(a.cfg.NIC, pf, vf, want) })
	if ctx.Err() != nil {
		a.portDone(p, ctx.Err()) // stopping: the journal entry stays for the next start
		return
	}
	if err != nil {
		msg := fmt.Sprintf("program VF %d of %s on host %s: %v", vf, pf, a.cfg.Host, err)
		a.restoreAhead(ctx, entry)
		a.report(ctx, wb, p, hp, api.StatusError, "ProgramFailed", msg, nil, errors.New(msg))
		return
	}
	a.log.Info("vf programmed", "port", hp.PortID, "pf", pf, "vf", vf, "vlan", hp.VLAN, "mac", hp.MAC)
	st := portStatus(api.StatusActive, "Programmed", programmedMessage(s, hp), profileOf(hp, s))
	a.enqueue(wb, func(o *outbox) {
		o.serves = append(o.serves, outItem[api.PortServe]{ctx: ctx, v: api.PortServe{Claim: al, Report: st},
			done: func(item api.BatchItem, err error, wave *[]func(*waveBuf)) {
				a.served(ctx, p, hp, entry, item, err, wave)
			}})
	})
}

// served handles the answer to a serve: done, the store holds the VF's saved state; otherwise
// the VF is put back as it was (in the wave of the round trip) and the next pass decides. A lost
// answer is handled the same way: had the serve committed, the pass programs the VF again.
func (a *Agent) served(ctx context.Context, p *portState, hp api.HostPort, e journalEntry, item api.BatchItem, err error, wave *[]func(*waveBuf)) {
	ok := err == nil && item.OK() && item.Allocation != nil
	if ok {
		a.journal.done(e.PCIAddress) // the allocation keeps the saved state now
	}
	a.mu.Lock()
	if ok {
		delete(a.claiming, e.PCIAddress)
		a.upsertAlloc(*item.Allocation, true)
		if a.current(p, hp) && a.byPort[hp.PortID] == e.PCIAddress {
			p.programmed = true
			if a.cfg.Hypervisor != nil {
				a.serversDirty = true
			}
		}
		p.Status = api.StatusActive // the port's own change brings its revision
		a.mu.Unlock()
		a.portDone(p, nil)
		return
	}
	var cause error
	switch {
	case err != nil:
		cause = fmt.Errorf("serve port %s with VF %s: %w", hp.PortID, e.PCIAddress, err)
	case item.Status == http.StatusConflict && item.Allocation != nil:
		a.upsertAlloc(*item.Allocation, false) // the VF is someone else's, or the port holds another
	case item.Status == http.StatusNotFound || item.Status == http.StatusConflict:
		// gone or moved: a change says so
	default:
		cause = fmt.Errorf("serve port %s with VF %s: %d %s", hp.PortID, e.PCIAddress, item.Status, item.Message)
	}
	a.mu.Unlock()
	*wave = append(*wave, func(*waveBuf) {
		a.restoreAhead(ctx, e)
		a.portDone(p, cause)
	})
}

// restoreAhead puts back a VF programmed ahead of its claim and lets it go: free again, or a
// leftover (kept out of the pool, retried by later passes) when it could not be restored.
func (a *Agent) restoreAhead(ctx context.Context, e journalEntry) {
	err := a.restoreVF(ctx, e)
	if err == nil {
		a.journal.done(e.PCIAddress)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.claiming, e.PCIAddress)
	if al := a.allocs[e.PCIAddress]; al != nil && al.PortID != e.PortID {
		a.dirtyPorts[al.PortID] = true // its holder waited for this VF to be put back
	}
	if err != nil {
		a.leftover[e.PCIAddress] = e // the next start (or a later pass) restores it
		if ctx.Err() == nil {
			a.record(fmt.Errorf("restore VF %d of %s after serving port %s failed: %w", e.VFIndex, e.PF, e.PortID, err))
			time.AfterFunc(time.Second, a.poke)
		}
		return
	}
	a.vfsChanged()
}

// restoreVF puts the VF of a journal entry back in its saved state.
func (a *Agent) restoreVF(ctx context.Context, e journalEntry) error {
	saved, err := fromAPI(e.Saved)
	if err != nil {
		return err
	}
	return a.onNIC(ctx, func() error { return sriov.Apply(a.cfg.NIC, e.PF, e.VFIndex, saved) })
}

// startRecover looks at a leftover VF once the whole state is known: an allocation holds it
// (its serve committed; the allocation keeps the saved state) or it is restored; a.mu held.
func (a *Agent) startRecover(ctx context.Context, e journalEntry) {
	a.recovering[e.PCIAddress] = true
	a.begin()
	_, held := a.allocs[e.PCIAddress]
	a.wave = append(a.wave, func(*waveBuf) {
		var err error
		if !held {
			err = a.restoreVF(ctx, e)
		}
		if err == nil {
			a.journal.done(e.PCIAddress)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.recovering, e.PCIAddress)
		if err != nil {
			if ctx.Err() == nil {
				a.record(fmt.Errorf("restore VF %d of %s (programmed for port %s, never claimed): %w", e.VFIndex, e.PF, e.PortID, err))
				time.AfterFunc(time.Second, a.poke)
			}
		} else {
			delete(a.leftover, e.PCIAddress)
			a.vfsChanged()
			if !held {
				a.log.Info("vf restored: programmed for a port before a restart, never claimed", "pf", e.PF, "vf", e.VFIndex, "port", e.PortID)
			}
		}
		a.end()
	})
}

func programmedMessage(s slot, hp api.HostPort) string {
	return fmt.Sprintf("vf %d of %s (%s) programmed: MAC %s, vlan %d, spoof checking on", s.vf.Index, s.pf.Name, s.vf.PCIAddress, hp.MAC, hp.VLAN)
}

// profileOf is what the agent adds to a port's binding:profile for the VF it chose; nothing when
// the compute service chose the VF (and wrote the profile itself).
func profileOf(hp api.HostPort, s slot) map[string]any {
	if hp.PCISlot != "" {
		return nil
	}
	return map[string]any{"pci_slot": s.vf.PCIAddress, "pci_vendor_info": s.vf.Vendor + ":" + s.vf.Device, "physical_network": s.physnet}
}

// startReport reports p and ends there; a.mu held.
func (a *Agent) startReport(ctx context.Context, p *portState, status, reason, msg string, profile map[string]any, cause error) {
	p.busy = true
	a.begin()
	hp := p.HostPort
	a.wave = append(a.wave, func(wb *waveBuf) { a.report(ctx, wb, p, hp, status, reason, msg, profile, cause) })
}

// portStatus is what the agent says of a port: its status with the VFProgrammed condition.
func portStatus(status, reason, msg string, profile map[string]any) api.PortStatus {
	cond := "True"
	if status == api.StatusError {
		cond = "False"
	}
	return api.PortStatus{Status: status, Profile: profile,
		Conditions: []api.Condition{{Type: CondVFProgrammed, Status: cond, Reason: reason, Message: msg}}}
}

// report sends a port's status and ends its pipeline: cause, when set, is the failure being
// reported (it delays the next try). An ERROR already reported is not sent again (it would only
// wake every watcher).
func (a *Agent) report(ctx context.Context, wb *waveBuf, p *portState, hp api.HostPort, status, reason, msg string, profile map[string]any, cause error) {
	a.sendReport(ctx, wb, p, hp, status, reason, msg, profile, false, cause)
}

// sendReport is report; bindingFailed says the host cannot bind the port as asked.
func (a *Agent) sendReport(ctx context.Context, wb *waveBuf, p *portState, hp api.HostPort, status, reason, msg string, profile map[string]any, bindingFailed bool, cause error) {
	a.mu.Lock()
	already := status == api.StatusError && p.Status == api.StatusError
	a.mu.Unlock()
	if already {
		a.portDone(p, cause)
		return
	}
	if status == api.StatusError {
		a.log.Warn("port not served", "port", hp.PortID, "reason", reason, "message", msg)
	}
	r := api.PortReport{PortID: hp.PortID, PortStatus: portStatus(status, reason, msg, profile)}
	r.BindingFailed = bindingFailed
	a.enqueue(wb, func(o *outbox) {
		o.reports = append(o.reports, outItem[api.PortReport]{ctx: ctx, v: r, done: func(item api.BatchItem, err error, _ *[]func(*waveBuf)) {
			switch {
			case err == nil && item.OK():
				a.mu.Lock()
				p.Status = status // the port's own change brings its revision
				a.mu.Unlock()
				a.portDone(p, cause)
			case err == nil && (item.Status == http.StatusNotFound || item.Status == http.StatusConflict):
				a.portDone(p, cause) // gone or moved: a change says so
			case err == nil:
				a.portDone(p, errors.Join(cause, fmt.Errorf("report port %s: %d %s", hp.PortID, item.Status, item.Message)))
			default:
				a.portDone(p, errors.Join(cause, fmt.Errorf("report port %s: %w", hp.PortID, err)))
			}
		}})
	})
}

// startRelease restores al's VF to its saved state and gives it back; a.mu held.
func (a *Agent) startRelease(ctx context.Context, al *allocState) {
	al.releasing = true
	a.begin()
	v := al.VFAllocation
	done := func(err error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		al.releasing = false
		if err != nil {
			pci := al.PCIAddress
			a.record(err)
			a.backoff(&al.failures, &al.retryAt, func() { a.dirtyAllocs[pci] = true })
		}
		a.end()
	}
	a.wave = append(a.wave, func(wb *waveBuf) {
		saved, err := fromAPI(v.Saved)
		if err == nil {
			err = a.onNIC(ctx, func() error { return sriov.Apply(a.cfg.NIC, v.PF, v.VFIndex, saved) })
		}
		if err != nil {
			done(fmt.Errorf("restore VF %d of %s (port %s gone): %w", v.VFIndex, v.PF, v.PortID, err))
			return
		}
		a.enqueue(wb, func(o *outbox) {
			o.releases = append(o.releases, outItem[api.VFRelease]{ctx: ctx, v: api.VFRelease{PCIAddress: v.PCIAddress, PortID: v.PortID},
				done: func(item api.BatchItem, err error, _ *[]func(*waveBuf)) {
					switch {
					case err == nil && item.OK():
						a.mu.Lock()
						a.dropAlloc(v.PCIAddress, item.Revision, al)
						a.mu.Unlock()
						a.log.Info("vf restored and released", "pf", v.PF, "vf", v.VFIndex, "port", v.PortID)
						done(nil)
						a.poke() // a port waiting for a VF may have one now
					case err == nil:
						done(fmt.Errorf("release VF %s: %d %s", v.PCIAddress, item.Status, item.Message))
					default:
						done(fmt.Errorf("release VF %s: %w", v.PCIAddress, err))
					}
				}})
		})
	})
}

// servers starts the servers whose every port is programmed and stops those no longer placed
// here; it reports the ports of a started server ACTIVE.
func (a *Agent) syncServers(ctx context.Context) error {
	hv := a.cfg.Hypervisor
	if hv == nil {
		return nil
	}
	type ready struct {
		spec  hypervisor.Server
		ports []*portState
		hps   []api.HostPort
		slots []slot
	}
	a.mu.Lock()
	a.serversDirty = false
	var starts []ready
	want := map[string]bool{}
	for _, s := range a.servers {
		want[s.ID] = true
		r := ready{spec: hypervisor.Server{ID: s.ID, Name: s.Name, VCPUs: max(s.VCPUs, 1), MemoryMiB: max(s.MemoryMiB, 64), ImageLocation: s.ImageLocation}}
		ok := true
		for _, pid := range s.PortIDs {
			p := a.ports[pid]
			pci, has := a.byPort[pid]
			if p == nil || !has || !p.programmed {
				ok = false
				break
			}
			r.spec.Interfaces = append(r.spec.Interfaces, hypervisor.Interface{MAC: p.MAC, PCIAddress: pci, VLAN: p.VLAN, PortID: pid})
			r.ports, r.hps, r.slots = append(r.ports, p), append(r.hps, p.HostPort), append(r.slots, a.slots[pci])
		}
		if ok {
			starts = append(starts, r)
		}
	}
	a.mu.Unlock()
	var errs []error
	reportAll := func(r ready, status, reason string, msg func(i int) string, profile func(i int) map[string]any) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, p := range r.ports {
			if p.busy || p.Status == status {
				continue
			}
			p.busy = true
			a.begin()
			hp, m, prof := r.hps[i], msg(i), profile(i)
			a.wave = append(a.wave, func(wb *waveBuf) { a.report(ctx, wb, p, hp, status, reason, m, prof, nil) })
		}
		a.launch()
	}
	for _, r := range starts {
		if err := hv.Start(ctx, r.spec); err != nil {
			errs = append(errs, fmt.Errorf("start server %s: %w", r.spec.ID, err))
			reportAll(r, api.StatusError, "AttachFailed", func(int) string {
				return fmt.Sprintf("start server %s on host %s with its VFs: %v", r.spec.ID, a.cfg.Host, err)
			}, func(int) map[string]any { return nil })
			continue
		}
		reportAll(r, api.StatusActive, "Programmed", func(i int) string { return programmedMessage(r.slots[i], r.hps[i]) },
			func(i int) map[string]any { return profileOf(r.hps[i], r.slots[i]) })
	}
	running, err := hv.Running(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, id := range running {
		if !want[id] {
			if err := hv.Stop(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("stop server %s: %w", id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Reconcile makes the host match one whole snapshot of its desired state: it replaces the
// agent's copy with w and runs passes until nothing more is started, waiting for all of it.
func (a *Agent) Reconcile(ctx context.Context, w api.HostWork) error {
	a.mu.Lock()
	a.applyFull(w)
	a.collect, a.errs = true, nil
	for _, p := range a.ports {
		p.retryAt = time.Time{}
	}
	for _, al := range a.allocs {
		al.retryAt = time.Time{}
	}
	full := time.Since(a.lastFull) > resync
	if full {
		a.lastFull = time.Now()
	}
	for {
		n := a.plan(ctx, full)
		a.launch()
		full = false
		for a.busy > 0 {
			a.idle.Wait()
		}
		if n == 0 || ctx.Err() != nil {
			break
		}
	}
	a.mu.Unlock()
	if ctx.Err() == nil {
		if err := a.syncServers(ctx); err != nil {
			a.mu.Lock()
			a.record(err)
			a.mu.Unlock()
		}
		a.waitIdle()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	errs := a.errs
	a.collect, a.errs = false, nil
	return errors.Join(errs...)
}

// dispatchLoop runs a pass whenever the copy changed or something finished, and a full pass
// every resync period; it brings the hypervisor in line in the background.
func (a *Agent) dispatchLoop(ctx context.Context) {
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
		a.mu.Lock()
		full := time.Since(a.lastFull) > resync
		if full {
			a.lastFull = time.Now()
			a.serversDirty = true
		}
		a.plan(ctx, full)
		a.launch()
		syncVMs := a.cfg.Hypervisor != nil && a.serversDirty && !a.serversRunning
		if syncVMs {
			a.serversRunning = true
			a.begin()
		}
		a.mu.Unlock()
		if syncVMs {
			go func() {
				err := a.syncServers(ctx)
				a.mu.Lock()
				if err != nil && ctx.Err() == nil {
					a.record(err)
				}
				a.serversRunning = false
				again := a.serversDirty
				a.end()
				a.mu.Unlock()
				if again {
					a.poke()
				}
			}()
		}
	}
}

// pollLoop reads the whole state, then long-polls what changed after its cursor and applies it;
// after an error, and every resync period, it reads the whole state again.
func (a *Agent) pollLoop(ctx context.Context) error {
	var cursor string
	var fetched time.Time
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if cursor == "" || time.Since(fetched) > resync {
			var w api.HostWork
			if w, err = a.cfg.Client.HostWork(ctx, a.cfg.Host, 0); err == nil && w.Cursor == "" {
				err = errors.New("the server's whole state carries no cursor")
			}
			if err == nil {
				a.mu.Lock()
				a.applyFull(w)
				a.mu.Unlock()
				cursor, fetched = w.Cursor, time.Now()
				a.poke()
			}
		} else {
			var c api.HostWorkChanges
			if c, err = a.cfg.Client.HostWorkChanges(ctx, a.cfg.Host, cursor, 0); err == nil {
				a.mu.Lock()
				if c.Full != nil {
					a.applyFull(*c.Full)
					fetched = time.Now()
				} else {
					a.applyChanges(c)
				}
				a.mu.Unlock()
				cursor = c.Cursor
				if !c.Empty() {
					a.poke()
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("read desired state", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			cursor = ""
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return nil
}

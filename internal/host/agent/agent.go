// Package agent is the vflink host agent: it reads the host's SR-IOV inventory from sysfs,
// registers it with the controller (a heartbeat renews the host's lease), long-polls the host's
// desired state, and reconciles it level-triggered: each VF-backed port bound to the host gets a
// VF of a PF on its physical network (claimed with compare-and-swap through the API, so a VF is
// never given twice), the VF is programmed (MAC, VLAN, spoof check on, trust per device spec,
// link state auto) and verified, the port reported ACTIVE with its PCI slot, and a VF whose port
// went away is restored to the state saved before its first change and released. It never talks
// to etcd; it only uses the API client.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/lldp"
	"github.com/vflink/vflink/internal/host/sriov"
)

// Condition type the agent owns on ports.
const CondVFProgrammed = "VFProgrammed"

// Config wires an agent.
type Config struct {
	Host   string
	Specs  []sriov.DeviceSpec
	FS     sriov.FS
	NIC    sriov.Programmer
	Client *client.Client
	// Hypervisor starts the servers placed on this host; nil: no VMs (ports are ACTIVE once
	// their VF is programmed).
	Hypervisor hypervisor.Hypervisor
	Logger     *slog.Logger
	// LLDP reports the PFs' switch ports (lldp.Auto picks lldpd or the native listener); nil: none.
	LLDP lldp.Runner
	// Heartbeat is how often the host is re-registered and sysfs rescanned (default 5 s).
	Heartbeat time.Duration
	// Workers bounds the ports programmed at once (default 16).
	Workers int
}

// Agent serves one host.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu          sync.Mutex
	inv         sriov.Inventory
	lastFull    time.Time                // last pass that re-read every programmed VF
	links       map[string]*api.LLDPLink // PF → its LLDP neighbor
	linkChanged chan struct{}
}

// resync is how often a pass re-reads VFs already reported ACTIVE (drift from outside).
const resync = 30 * time.Second

// New checks the configuration and scans the inventory once, so a bad device spec or sysfs root
// stops the agent at start.
func New(cfg Config) (*Agent, error) {
	if cfg.Host == "" {
		return nil, errors.New("the agent needs a host name (--host)")
	}
	if cfg.Client == nil || cfg.NIC == nil {
		return nil, errors.New("the agent needs an API client and a NIC backend")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.Workers == 0 {
		cfg.Workers = 16
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent", "host", cfg.Host),
		links: map[string]*api.LLDPLink{}, linkChanged: make(chan struct{}, 1)}
	if err := a.scan(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) scan() error {
	inv, err := a.cfg.FS.Scan(a.cfg.Specs)
	if err != nil {
		return fmt.Errorf("scan SR-IOV devices under %s: %w", a.cfg.FS.Root(), err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if fmt.Sprint(inv.Problems) != fmt.Sprint(a.inv.Problems) {
		for _, p := range inv.Problems {
			a.log.Warn("device spec", "problem", p)
		}
	}
	a.inv = inv
	return nil
}

func (a *Agent) inventory() sriov.Inventory {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inv
}

// HostRecord is the host as registered with the controller.
func (a *Agent) HostRecord() api.Host {
	h := api.Host{Name: a.cfg.Host}
	inv := a.inventory()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pf := range inv.PFs {
		h.PFs = append(h.PFs, api.PF{Name: pf.Name, PCIAddress: pf.PCIAddress, MAC: pf.MAC, PhysicalNetwork: pf.PhysicalNetwork,
			TotalVFs: pf.TotalVFs, NumVFs: len(pf.VFs), NUMANode: pf.NUMANode, Link: a.links[pf.Name]})
	}
	return h
}

// Run registers the host and reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.cfg.Client.RegisterHost(ctx, a.HostRecord()); err != nil {
		return fmt.Errorf("register host %s: %w", a.cfg.Host, err)
	}
	a.log.Info("host registered", "pfs", len(a.inventory().PFs))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(ctx)
	}()
	if a.cfg.LLDP != nil {
		var pfs []string
		for _, pf := range a.inventory().PFs {
			pfs = append(pfs, pf.Name)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := a.cfg.LLDP.Run(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("lldp", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			lldp.Watch(ctx, a.cfg.LLDP, pfs, time.Second, a.SetLink, a.log)
		}()
	}
	err := a.workLoop(ctx)
	wg.Wait()
	return err
}

// SetLink records a PF's LLDP neighbor (nil: gone) and re-registers the host at once.
func (a *Agent) SetLink(pf string, n *lldp.Neighbor) {
	a.mu.Lock()
	if n == nil {
		delete(a.links, pf)
		a.log.Warn("lldp neighbor expired", "pf", pf)
	} else {
		a.links[pf] = &api.LLDPLink{SwitchName: n.SystemName, ChassisID: n.ChassisID, ChassisIDSubtype: n.ChassisIDSubtype,
			PortID: n.PortID, PortIDSubtype: n.PortIDSubtype, PortDescription: n.PortDescription, MgmtAddress: n.MgmtAddress,
			LastSeen: n.LastSeen.UTC().Format(time.RFC3339)}
		a.log.Info("lldp neighbor", "pf", pf, "switch", n.SystemName, "port", n.SwitchPort())
	}
	a.mu.Unlock()
	select {
	case a.linkChanged <- struct{}{}:
	default:
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.linkChanged:
		}
		if err := a.scan(); err != nil {
			a.log.Error("rescan", "err", err)
		}
		if err := a.cfg.Client.RegisterHost(ctx, a.HostRecord()); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat", "err", err)
		}
	}
}

func (a *Agent) workLoop(ctx context.Context) error {
	var rev int64
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		w, err := a.cfg.Client.HostWork(ctx, a.cfg.Host, rev)
		if err == nil {
			err = a.Reconcile(ctx, w)
			rev = w.Revision
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("reconcile", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			rev = 0
			continue
		}
		backoff = 100 * time.Millisecond
	}
	return nil
}

// slot is one VF of the inventory.
type slot struct {
	pf      *sriov.PF
	vf      sriov.VF
	physnet string
}

// Reconcile makes the host match one snapshot of its desired state.
func (a *Agent) Reconcile(ctx context.Context, w api.HostWork) error {
	inv := a.inventory()
	slots := map[string]slot{}
	var order []string
	for i := range inv.PFs {
		pf := &inv.PFs[i]
		for _, vf := range pf.VFs {
			slots[vf.PCIAddress] = slot{pf: pf, vf: vf, physnet: pf.PhysicalNetwork}
			order = append(order, vf.PCIAddress)
		}
	}
	desired := map[string]api.HostPort{}
	for _, p := range w.Ports {
		desired[p.PortID] = p
	}
	byPort := map[string]api.VFAllocation{}
	taken := map[string]bool{}
	var errs []error
	for _, al := range w.Allocations {
		if _, ok := desired[al.PortID]; ok {
			byPort[al.PortID] = al
			taken[al.PCIAddress] = true
			continue
		}
		if err := a.release(ctx, al); err != nil {
			errs = append(errs, err)
			taken[al.PCIAddress] = true
		}
	}
	ports := make([]api.HostPort, 0, len(desired))
	for _, p := range desired {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].PortID < ports[j].PortID })

	onServer := map[string]bool{}
	for _, sv := range w.Servers {
		onServer[sv.ID] = true
	}
	// assign VFs first (serially, so one pass never picks a VF twice), then program in parallel
	type job struct {
		port  api.HostPort
		alloc api.VFAllocation
		fresh bool
		s     slot
	}
	var jobs []job
	// a server's ports go to different PFs when they can (PFs cabled to different switches make a
	// multi-homed server: the binder turns its switch ports into one port group)
	serverPFs := map[string]map[string]bool{}
	note := func(server, pf string) {
		if server == "" {
			return
		}
		if serverPFs[server] == nil {
			serverPFs[server] = map[string]bool{}
		}
		serverPFs[server][pf] = true
	}
	for _, p := range ports {
		if al, ok := byPort[p.PortID]; ok {
			note(p.DeviceID, al.PF)
		}
	}
	free := func(physnet string, avoid map[string]bool) (slot, int, int) {
		total, used := 0, 0
		var pick slot
		found, spread := false, false
		for _, pci := range order {
			s := slots[pci]
			if s.physnet != physnet {
				continue
			}
			total++
			if taken[pci] {
				used++
				continue
			}
			if !found || (!spread && !avoid[s.pf.Name]) {
				pick, found, spread = s, true, !avoid[s.pf.Name]
			}
		}
		if !found {
			return slot{}, total, used
		}
		return pick, total, used
	}
	a.mu.Lock()
	full := time.Since(a.lastFull) > resync
	if full {
		a.lastFull = time.Now()
	}
	a.mu.Unlock()
	for _, p := range ports {
		if al, ok := byPort[p.PortID]; ok {
			if p.Status == api.StatusActive && !full && (a.cfg.Hypervisor == nil || !onServer[p.DeviceID]) {
				continue // served; re-read on the next full pass
			}
			s, known := slots[al.PCIAddress]
			if !known {
				errs = append(errs, a.report(ctx, p, api.StatusError, "VFGone",
					fmt.Sprintf("VF %s of port %s is no longer in the inventory of host %s", al.PCIAddress, p.PortID, a.cfg.Host), nil))
				continue
			}
			jobs = append(jobs, job{port: p, alloc: al, s: s})
			continue
		}
		s, total, used := free(p.PhysicalNetwork, serverPFs[p.DeviceID])
		if s.pf == nil {
			msg := fmt.Sprintf("no free VF on host %s for physical network %q: %d of %d VFs in use", a.cfg.Host, p.PhysicalNetwork, used, total)
			if total == 0 {
				msg = fmt.Sprintf("host %s has no PF on physical network %q (device spec)", a.cfg.Host, p.PhysicalNetwork)
			}
			errs = append(errs, a.report(ctx, p, api.StatusError, "NoFreeVF", msg, nil))
			continue
		}
		taken[s.vf.PCIAddress] = true
		note(p.DeviceID, s.pf.Name)
		jobs = append(jobs, job{port: p, s: s, fresh: true,
			alloc: api.VFAllocation{Host: a.cfg.Host, PF: s.pf.Name, VFIndex: s.vf.Index, PCIAddress: s.vf.PCIAddress, PortID: p.PortID}})
	}
	var mu sync.Mutex
	programmed := map[string]api.VFAllocation{}
	sem := make(chan struct{}, a.cfg.Workers)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := a.serve(ctx, j.port, j.alloc, j.s, j.fresh, a.cfg.Hypervisor != nil && onServer[j.port.DeviceID])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			programmed[j.port.PortID] = j.alloc
		}()
	}
	wg.Wait()
	if err := a.servers(ctx, w, desired, programmed, slots); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// serve claims (when fresh), programs and verifies one port's VF, then reports the port.
// When waitVM is set the port is reported ACTIVE only once its server runs (see servers).
func (a *Agent) serve(ctx context.Context, p api.HostPort, al api.VFAllocation, s slot, fresh, waitVM bool) error {
	nic := a.cfg.NIC
	pf, vf := s.pf.Name, s.vf.Index
	if fresh {
		saved, err := sriov.Save(nic, pf, vf)
		if err != nil {
			return a.report(ctx, p, api.StatusError, "ReadFailed", fmt.Sprintf("read VF %d of %s on host %s: %v", vf, pf, a.cfg.Host, err), nil)
		}
		al.Saved = toAPI(saved)
		if err := a.cfg.Client.ClaimVF(ctx, a.cfg.Host, al); err != nil {
			// another pass or agent holds it: the next pass sees the allocation and moves on
			return fmt.Errorf("claim VF %s for port %s: %w", al.PCIAddress, p.PortID, err)
		}
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return a.report(ctx, p, api.StatusError, "BadMAC", fmt.Sprintf("port %s has MAC %q: %v", p.PortID, p.MAC, err), nil)
	}
	want := sriov.VFState{MAC: mac, VLAN: p.VLAN, SpoofCheck: true, Trust: s.pf.Trusted, LinkState: sriov.LinkStateAuto}
	if !fresh && p.Status == api.StatusActive {
		if cur, err := sriov.Save(nic, pf, vf); err == nil && cur.String() == want.String() {
			return nil // level-triggered: already as wanted
		}
	}
	if err := sriov.Apply(nic, pf, vf, want); err != nil {
		return a.report(ctx, p, api.StatusError, "ProgramFailed", fmt.Sprintf("program VF %d of %s on host %s: %v", vf, pf, a.cfg.Host, err), nil)
	}
	if (p.Status == api.StatusActive && !fresh) || waitVM {
		return nil
	}
	a.log.Info("vf programmed", "port", p.PortID, "pf", pf, "vf", vf, "vlan", p.VLAN, "mac", p.MAC)
	return a.reportActive(ctx, p, s)
}

func (a *Agent) reportActive(ctx context.Context, p api.HostPort, s slot) error {
	profile := map[string]any{"pci_slot": s.vf.PCIAddress, "pci_vendor_info": s.vf.Vendor + ":" + s.vf.Device, "physical_network": s.physnet}
	return a.report(ctx, p, api.StatusActive, "Programmed",
		fmt.Sprintf("vf %d of %s (%s) programmed: MAC %s, vlan %d, spoof checking on", s.vf.Index, s.pf.Name, s.vf.PCIAddress, p.MAC, p.VLAN), profile)
}

// release restores a VF to the state saved before its first change and frees it.
func (a *Agent) release(ctx context.Context, al api.VFAllocation) error {
	saved, err := fromAPI(al.Saved)
	if err == nil {
		err = sriov.Apply(a.cfg.NIC, al.PF, al.VFIndex, saved)
	}
	if err != nil {
		return fmt.Errorf("restore VF %d of %s (port %s gone): %w", al.VFIndex, al.PF, al.PortID, err)
	}
	if err := a.cfg.Client.ReleaseVF(ctx, a.cfg.Host, al.PCIAddress, al.PortID); err != nil {
		return fmt.Errorf("release VF %s: %w", al.PCIAddress, err)
	}
	a.log.Info("vf restored and released", "pf", al.PF, "vf", al.VFIndex, "port", al.PortID)
	return nil
}

func (a *Agent) report(ctx context.Context, p api.HostPort, status, reason, msg string, profile map[string]any) error {
	if status == api.StatusError && p.Status == api.StatusError {
		return nil // already reported; reporting again would only wake every watcher
	}
	cond := "True"
	if status == api.StatusError {
		cond = "False"
		a.log.Warn("port not served", "port", p.PortID, "reason", reason, "message", msg)
	}
	err := a.cfg.Client.ReportPortStatus(ctx, a.cfg.Host, p.PortID, api.PortStatus{Status: status, Profile: profile,
		Conditions: []api.Condition{{Type: CondVFProgrammed, Status: cond, Reason: reason, Message: msg}}})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("report port %s: %w", p.PortID, err)
	}
	return nil
}

// servers starts the servers whose every port is programmed and stops those no longer placed here.
func (a *Agent) servers(ctx context.Context, w api.HostWork, desired map[string]api.HostPort, programmed map[string]api.VFAllocation, slots map[string]slot) error {
	hv := a.cfg.Hypervisor
	if hv == nil {
		return nil
	}
	var errs []error
	want := map[string]bool{}
	for _, s := range w.Servers {
		want[s.ID] = true
		spec := hypervisor.Server{ID: s.ID, Name: s.Name, VCPUs: max(s.VCPUs, 1), MemoryMiB: max(s.MemoryMiB, 64), ImageLocation: s.ImageLocation}
		ready := true
		for _, pid := range s.PortIDs {
			al, ok := programmed[pid]
			p := desired[pid]
			if !ok {
				ready = false
				break
			}
			spec.Interfaces = append(spec.Interfaces, hypervisor.Interface{MAC: p.MAC, PCIAddress: al.PCIAddress, VLAN: p.VLAN, PortID: pid})
		}
		if !ready {
			continue
		}
		if err := hv.Start(ctx, spec); err != nil {
			errs = append(errs, fmt.Errorf("start server %s: %w", s.ID, err))
			for _, pid := range s.PortIDs {
				errs = append(errs, a.report(ctx, desired[pid], api.StatusError, "AttachFailed",
					fmt.Sprintf("start server %s on host %s with its VFs: %v", s.ID, a.cfg.Host, err), nil))
			}
			continue
		}
		for _, pid := range s.PortIDs {
			if p := desired[pid]; p.Status != api.StatusActive {
				errs = append(errs, a.reportActive(ctx, p, slots[programmed[pid].PCIAddress]))
			}
		}
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

func toAPI(s sriov.VFState) api.VFState {
	return api.VFState{MAC: s.MAC.String(), VLAN: s.VLAN, SpoofCheck: s.SpoofCheck, Trust: s.Trust, LinkState: s.LinkState}
}

func fromAPI(s api.VFState) (sriov.VFState, error) {
	var mac net.HardwareAddr
	if s.MAC != "" {
		var err error
		if mac, err = net.ParseMAC(s.MAC); err != nil {
			return sriov.VFState{}, fmt.Errorf("saved MAC %q: %w", s.MAC, err)
		}
	}
	return sriov.VFState{MAC: mac, VLAN: s.VLAN, SpoofCheck: s.SpoofCheck, Trust: s.Trust, LinkState: s.LinkState}, nil
}

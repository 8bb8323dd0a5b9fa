// Package agent is the vflink host agent: it reads the host's SR-IOV inventory from sysfs,
// registers it with the controller (a heartbeat renews the host's lease), reads the host's whole
// desired state once and then long-polls only what changed (applied to its own copy), and
// reconciles that copy level-triggered: each VF-backed port bound to the host gets a VF of a PF on
// its physical network (claimed with a create-only transaction through the API, so a VF is never
// given twice), the VF is programmed (MAC, VLAN, spoof check on, trust per device spec, link state
// auto) and verified, the port reported ACTIVE with its PCI slot, and a VF whose port went away is
// restored to the state saved before its first change and released. A port that can be reported
// at once gets its VF programmed first and then claimed together with its report, in one
// transaction (a serve); the VF's saved state waits in a journal on the host until then, so a
// crash in between still restores it. Ports are worked on as soon
// as they arrive, while the next changes are fetched; claims, releases and reports travel in
// batches (one round trip for many ports). It never talks to etcd; it only uses the API client.
// A host has one agent (identity.go): a lock on the state directory and an agent ID the server
// checks at each registration.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/lldp"
	"github.com/vflink/vflink/internal/host/sriov"
)

// Condition type the agent owns on ports.
const CondVFProgrammed = api.ConditionVFProgrammed

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
	// StateDir holds the agent's VF journal (required; one directory per host): the saved
	// state of each VF programmed ahead of its claim until the store records it.
	StateDir string
}

// Agent serves one host.
type Agent struct {
	cfg Config
	log *slog.Logger
	id  string // the agent ID the host is registered with (identity.go)

	mu          sync.Mutex
	inv         sriov.Inventory
	slots       map[string]slot          // the inventory's VFs by PCI address
	order       []string                 // their PCI addresses in inventory order
	lastFull    time.Time                // last pass that re-read every programmed VF
	links       map[string]*api.LLDPLink // PF → its LLDP neighbor
	linkChanged chan struct{}

	desired  // the host's desired state as this agent knows it (guarded by mu)
	underway // what is being done about it (guarded by mu)
	outMu    sync.Mutex
	out      outbox // claims, releases and reports waiting for a round trip (guarded by outMu)
	workers  chan struct{}
	kick     chan struct{} // one slot: the desired state changed, or something finished

	journal *journal
	// leftover: VFs that may carry a port's state no allocation records (journal entries of an
	// earlier run, or a restore that failed); given out only once restored (guarded by mu)
	leftover   map[string]journalEntry
	recovering map[string]bool
}

// resync is how often a pass re-reads VFs already reported ACTIVE (drift from outside) and the
// agent reads its whole state again.
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
	if cfg.StateDir == "" {
		return nil, errNoStateDir
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent", "host", cfg.Host),
		links: map[string]*api.LLDPLink{}, linkChanged: make(chan struct{}, 1),
		workers: make(chan struct{}, cfg.Workers), kick: make(chan struct{}, 1)}
	a.desired.init()
	a.underway.init(&a.mu)
	if err := a.scan(); err != nil {
		return nil, err
	}
	j, left, err := openJournal(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if a.id, err = loadAgentID(cfg.StateDir); err != nil {
		return nil, err
	}
	a.journal, a.leftover, a.recovering = j, left, map[string]bool{}
	if len(left) > 0 {
		a.log.Warn("VFs programmed before a restart but never claimed: restored once the state is read", "vfs", len(left))
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
	if reflect.DeepEqual(inv.PFs, a.inv.PFs) {
		a.inv.Problems = inv.Problems
		return nil // the VFs are as they were (slots keep pointing into a.inv)
	}
	a.inv = inv
	a.markAll()
	a.slots = map[string]slot{}
	a.order = make([]string, 0, len(a.order))
	for i := range a.inv.PFs {
		pf := &a.inv.PFs[i]
		for _, vf := range pf.VFs {
			a.slots[vf.PCIAddress] = slot{pf: pf, vf: vf, physnet: pf.PhysicalNetwork}
			a.order = append(a.order, vf.PCIAddress)
		}
	}
	return nil
}

func (a *Agent) inventory() sriov.Inventory {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inv
}

// HostRecord is the host as registered with the controller.
func (a *Agent) HostRecord() api.Host {
	h := api.Host{Name: a.cfg.Host, AgentID: a.id}
	inv := a.inventory()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pf := range inv.PFs {
		h.PFs = append(h.PFs, api.PF{Name: pf.Name, PCIAddress: pf.PCIAddress, MAC: pf.MAC, PhysicalNetwork: pf.PhysicalNetwork,
			TotalVFs: pf.TotalVFs, NumVFs: len(pf.VFs), NUMANode: pf.NUMANode, Link: a.links[pf.Name]})
	}
	return h
}

// Run registers the host and reconciles until ctx ends, or until another agent has taken the
// host over (an error).
func (a *Agent) Run(ctx context.Context) error {
	unlock, err := lockStateDir(a.cfg.StateDir, a.cfg.Host)
	if err != nil {
		return err
	}
	defer unlock()
	if err := a.cfg.Client.RegisterHost(ctx, a.HostRecord()); err != nil {
		return fmt.Errorf("register host %s: %w", a.cfg.Host, err)
	}
	a.log.Info("host registered", "pfs", len(a.inventory().PFs), "agent_id", a.id)
	ctx, displace := context.WithCancelCause(ctx)
	defer displace(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.heartbeat(ctx, displace)
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.dispatchLoop(ctx)
	}()
	err = a.pollLoop(ctx)
	wg.Wait()
	a.waitIdle()
	if cause := context.Cause(ctx); errors.Is(cause, errDisplaced) {
		return cause
	}
	return err
}

// errDisplaced: another agent registered the host; this one stopped serving it.
var errDisplaced = errors.New("another agent registered the host")

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

// heartbeat re-registers the host (rescanning sysfs first) every Heartbeat and whenever a PF's
// link changed. A refusal (409: the registration expired and another agent registered the host)
// ends the agent through displace: the other agent now owns the host's VFs.
func (a *Agent) heartbeat(ctx context.Context, displace context.CancelCauseFunc) {
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
		err := a.cfg.Client.RegisterHost(ctx, a.HostRecord())
		switch {
		case err == nil || ctx.Err() != nil:
		case client.IsConflict(err):
			a.log.Error("another agent registered this host: stopping (its VFs stay as they are, the other agent serves them)", "err", err)
			displace(fmt.Errorf("host %s: %w: %v", a.cfg.Host, errDisplaced, err))
			return
		default:
			a.log.Warn("heartbeat", "err", err)
		}
	}
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

// Package netnshv is the lab's hypervisor: a hypervisor.Hypervisor whose virtual machines are
// network namespaces, so that the unchanged host agent "starts a VM" in the lab exactly as it
// starts a libvirt domain with hostdev VFs.
//
// A VM is the namespace lab.VMNS(server ID). Starting it moves each of its VF netdevs (the VF
// found from Interface.PCIAddress) from the host's namespace into the VM's, renames it eth<i> in
// guest order, checks that it carries Interface.MAC (the NIC backend programmed it before the VM
// starts, as Nova has the PF program the VF before passthrough), brings it up and turns its TX
// checksum offload off (the userspace datapath does not fill checksums in: TCP stalls otherwise).
// This is what passthrough does to a real VF: the host loses the netdev and the guest gets it,
// while the VLAN, spoof check and link state stay in the NIC (package labnic), untouched. The
// guest configures its IP address itself (the lab demo does, as cloud-init would).
//
//	ip netns add vfl-vm-1a2b3c4d && ip -n vfl-vm-1a2b3c4d link set lo up
//	ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-netns=vfl-vm-1a2b3c4d external_ids:vflink-ifname=eth0
//	ip -n vfl-h1 link set dev ens1f0v3 netns vfl-vm-1a2b3c4d
//	ip -n vfl-vm-1a2b3c4d link set dev ens1f0v3 name eth0 up
//	ip netns exec vfl-vm-1a2b3c4d ethtool -K eth0 tx off
//
// Stopping it renames each VF netdev back to lab.VFName inside the VM (so two VMs stopping at once
// never collide on eth0 in the host namespace), moves it back down into the host namespace, clears
// the record on its port and deletes the namespace. A namespace is never deleted while it holds a
// VF netdev: the kernel would destroy the veth pair, the lab's VF, with it.
//
// Which VMs a host runs is kept in Plan.Dir/vms/<namespace>.json (server ID, host index, the
// interfaces and where each VF went): several lab hosts share the machine and its namespaces, and
// Running lists only this host's. The record is written before anything is moved, and the VF's
// port records the move before the netdev moves (labnic.NIC.RecordLocation), so a Stop after a
// crash in the middle of a Start finds every VF again.
//
// Finding a VF from its PCI address: the host's sysfs tree (Plan.SysfsRoot(i), the one the agent
// reads) lists each PF's virtfn<n> links; when it has no such PF, the address is computed as
// sriov.WriteFakeSysfs lays VFs out by default (VF n at the PF's routing ID + 128 + 2n).
//
// The package is hand-written: namespaces and netdev moves through netlink
// (github.com/vishvananda/netlink, netns) plus `ip netns add|del` and ethtool (no library sets
// ethtool features here); the state is a small JSON file per VM.
package netnshv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/labnic"
)

// Config says which lab host this hypervisor serves.
type Config struct {
	Plan lab.Plan
	Host int // i, 1-based
	// HostNS is the host's network namespace; default lab.HostNS(Host). Tests set a unique name.
	HostNS string
	// VMNS names a server's namespace; default lab.VMNS. Tests name theirs apart from the lab's
	// vfl-vm-*, which a lab's teardown (topo.Down) removes wherever they come from.
	VMNS func(serverID string) string
	// IP, Ethtool and Vsctl are the programs run; default "ip", "ethtool", "ovs-vsctl".
	IP, Ethtool, Vsctl string
	Log                *slog.Logger // default: discard
}

// Hypervisor runs the VMs of one lab host as network namespaces. It is safe for concurrent use.
type Hypervisor struct {
	cfg Config
	nic *labnic.NIC // reads and writes where each VF netdev is
	log *slog.Logger
	mu  sync.Mutex // one Start or Stop at a time
}

// New returns the hypervisor of lab host cfg.Host.
func New(cfg Config) *Hypervisor {
	if cfg.HostNS == "" {
		cfg.HostNS = lab.HostNS(cfg.Host)
	}
	if cfg.VMNS == nil {
		cfg.VMNS = lab.VMNS
	}
	if cfg.IP == "" {
		cfg.IP = "ip"
	}
	if cfg.Ethtool == "" {
		cfg.Ethtool = "ethtool"
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hypervisor{
		cfg: cfg,
		nic: labnic.New(labnic.Config{Plan: cfg.Plan, Host: cfg.Host, Vsctl: cfg.Vsctl, HostNS: cfg.HostNS, Log: cfg.Log}),
		log: log.With("component", "netnshv", "host", lab.HostName(cfg.Host)),
	}
}

// vmRecord is Plan.Dir/vms/<namespace>.json.
type vmRecord struct {
	Server     string        `json:"server"`
	Host       int           `json:"host"`
	Namespace  string        `json:"namespace"`
	Interfaces []vmInterface `json:"interfaces"`
}

type vmInterface struct {
	hypervisor.Interface
	PF     string `json:"pf"`     // "ens1f0"
	VF     int    `json:"vf"`     // index on the PF
	Ifname string `json:"ifname"` // "eth0"
}

// Start starts s: its namespace, with each VF moved in as eth<i>. A running server with the same
// interfaces whose VFs are all in place is left alone; otherwise it is stopped and started again.
func (h *Hypervisor) Start(ctx context.Context, s hypervisor.Server) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	want, err := h.resolve(s)
	if err != nil {
		return fmt.Errorf("start server %s: %w", s.ID, err)
	}
	have, err := h.read(want.Namespace)
	if err != nil {
		return fmt.Errorf("start server %s: %w", s.ID, err)
	}
	if have != nil {
		if have.Server != s.ID || have.Host != h.cfg.Host {
			return fmt.Errorf("start server %s: namespace %s belongs to server %s of host %s", s.ID, want.Namespace,
				have.Server, lab.HostName(have.Host))
		}
		if !sameInterfaces(have.Interfaces, want.Interfaces) {
			h.log.Info("server interfaces changed: restarting it", "server", s.ID, "netns", want.Namespace)
		} else if err := h.healthy(have); err != nil {
			h.log.Info("server not as recorded: restarting it", "server", s.ID, "netns", want.Namespace, "reason", err)
		} else {
			h.log.Debug("server running", "server", s.ID, "netns", want.Namespace)
			return nil
		}
		if err := h.stop(ctx, have); err != nil {
			return fmt.Errorf("start server %s: stop it first: %w", s.ID, err)
		}
	} else if nsExists(want.Namespace) {
		if err := h.adoptable(want.Namespace); err != nil {
			return fmt.Errorf("start server %s: %w", s.ID, err)
		}
	}
	if err := h.start(ctx, want); err != nil {
		if serr := h.stop(ctx, want); serr != nil {
			h.log.Warn("undoing a failed start", "server", s.ID, "error", serr)
		}
		return fmt.Errorf("start server %s: %w", s.ID, err)
	}
	h.log.Info("server started", "server", s.ID, "netns", want.Namespace, "interfaces", len(want.Interfaces))
	return nil
}

// Stop moves every VF of the server back into the host namespace under its own name, down, and
// deletes the server's namespace. A server this host does not run is not an error.
func (h *Hypervisor) Stop(ctx context.Context, serverID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	rec, err := h.read(h.cfg.VMNS(serverID))
	if err != nil {
		return fmt.Errorf("stop server %s: %w", serverID, err)
	}
	if rec == nil || rec.Server != serverID || rec.Host != h.cfg.Host {
		return nil
	}
	if err := h.stop(ctx, rec); err != nil {
		return fmt.Errorf("stop server %s: %w", serverID, err)
	}
	h.log.Info("server stopped", "server", serverID, "netns", rec.Namespace)
	return nil
}

// Running lists the servers this host runs (recorded and their namespace present), sorted.
func (h *Hypervisor) Running(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(h.dir())
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	ids := []string{}
	for _, e := range entries {
		ns, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		rec, err := h.read(ns)
		if err != nil {
			return nil, fmt.Errorf("list servers: %w", err)
		}
		if rec != nil && rec.Host == h.cfg.Host && nsExists(ns) {
			ids = append(ids, rec.Server)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// resolve validates s and maps its interfaces to VFs.
func (h *Hypervisor) resolve(s hypervisor.Server) (*vmRecord, error) {
	if s.ID == "" || strings.ContainsAny(s.ID, "/\x00") {
		return nil, fmt.Errorf("server ID %q is not usable as a namespace name: %w", s.ID, hypervisor.ErrInvalid)
	}
	rec := &vmRecord{Server: s.ID, Host: h.cfg.Host, Namespace: h.cfg.VMNS(s.ID)}
	seen := map[string]int{}
	for i, iface := range s.Interfaces {
		mac, err := net.ParseMAC(iface.MAC)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("interface %d (port %q): mac %q is not an Ethernet MAC address: %w", i, iface.PortID, iface.MAC, hypervisor.ErrInvalid)
		}
		iface.MAC = mac.String()
		iface.PCIAddress = strings.ToLower(iface.PCIAddress)
		pf, vf, err := h.vfByPCI(iface.PCIAddress)
		if err != nil {
			return nil, fmt.Errorf("interface %d (port %q): %w", i, iface.PortID, err)
		}
		if j, dup := seen[iface.PCIAddress]; dup {
			return nil, fmt.Errorf("interfaces %d and %d both use vf %s; each VF can be handed out once: %w", j, i, iface.PCIAddress, hypervisor.ErrInvalid)
		}
		seen[iface.PCIAddress] = i
		rec.Interfaces = append(rec.Interfaces, vmInterface{Interface: iface, PF: pf, VF: vf, Ifname: fmt.Sprintf("eth%d", i)})
	}
	return rec, nil
}

// vfByPCI finds the PF and index of the host's VF at a PCI address.
//
// Equivalent to: readlink <sysfs>/bus/pci/devices/0000:81:10.0/physfn; ls -l .../0000:81:00.0/virtfn*
func (h *Hypervisor) vfByPCI(addr string) (pf string, vf int, err error) {
	if !sriov.IsPCIAddress(addr) {
		return "", 0, fmt.Errorf("pci address %q is not of the form 0000:81:10.0: %w", addr, hypervisor.ErrInvalid)
	}
	fs := sriov.NewFS(h.cfg.Plan.SysfsRoot(h.cfg.Host))
	for k := range h.cfg.Plan.PFsPerHost {
		vfs, err := h.pfVFs(fs, k)
		if err != nil {
			return "", 0, err
		}
		if n := slices.Index(vfs, addr); n >= 0 && n < h.cfg.Plan.VFsPerPF {
			return lab.PFName(k), n, nil
		}
	}
	return "", 0, fmt.Errorf("pci address %s is no VF of lab host %s (its PFs are at %s-%s): %w", addr, lab.HostName(h.cfg.Host),
		lab.PFPCI(h.cfg.Host, 0), lab.PFPCI(h.cfg.Host, h.cfg.Plan.PFsPerHost-1), hypervisor.ErrInvalid)
}

// pfVFs lists PF k's VF addresses from sysfs, or as WriteFakeSysfs lays them out by default.
func (h *Hypervisor) pfVFs(fs sriov.FS, k int) ([]string, error) {
	pfAddr := lab.PFPCI(h.cfg.Host, k)
	dev, err := fs.PCIDevice(pfAddr)
	if err == nil {
		return dev.VFs, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the VFs of %s: %w", pfAddr, err)
	}
	var dom, bus, slot, fn int
	if _, err := fmt.Sscanf(pfAddr, "%4x:%2x:%2x.%1x", &dom, &bus, &slot, &fn); err != nil {
		return nil, fmt.Errorf("PF address %s: %w", pfAddr, err)
	}
	vfs := make([]string, h.cfg.Plan.VFsPerPF)
	for n := range vfs {
		rid := (bus<<8 | slot<<3 | fn) + 128 + 2*n
		vfs[n] = fmt.Sprintf("%04x:%02x:%02x.%x", dom, rid>>8, (rid>>3)&0x1f, rid&7)
	}
	return vfs, nil
}

func sameInterfaces(a, b []vmInterface) bool {
	return slices.EqualFunc(a, b, func(x, y vmInterface) bool { return x == y })
}

// healthy reports why a recorded VM is not as recorded: namespace gone, a VF elsewhere or with
// another MAC.
func (h *Hypervisor) healthy(rec *vmRecord) error {
	if !nsExists(rec.Namespace) {
		return fmt.Errorf("namespace %s is gone", rec.Namespace)
	}
	for _, iface := range rec.Interfaces {
		ns, name, err := h.nic.Locate(iface.PF, iface.VF)
		if err != nil {
			return err
		}
		if ns != rec.Namespace || name != iface.Ifname {
			return fmt.Errorf("vf %d of %s is %s in %s, not %s in %s", iface.VF, iface.PF, name, ns, iface.Ifname, rec.Namespace)
		}
		mac, err := h.linkMAC(ns, name)
		if err != nil {
			return err
		}
		if mac.String() != iface.MAC {
			return fmt.Errorf("%s in %s has MAC %s, not %s", name, ns, mac, iface.MAC)
		}
	}
	return nil
}

// adoptable accepts an existing namespace without a record only when it holds nothing but lo (a
// start that crashed between creating it and writing its record cannot happen: the record is
// written first; this is a namespace someone else made).
func (h *Hypervisor) adoptable(ns string) error {
	var names []string
	err := inNS(ns, func(nh *netlink.Handle) error {
		links, err := nh.LinkList()
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				names = append(names, l.Attrs().Name)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("namespace %s exists, holds %v and is no VM of this host (no record in %s)", ns, names, h.dir())
	}
	return nil
}

// start creates the namespace and moves the VFs in (the record first, so stop finds them).
func (h *Hypervisor) start(ctx context.Context, rec *vmRecord) error {
	if err := h.write(rec); err != nil {
		return err
	}
	if !nsExists(rec.Namespace) {
		if err := h.run(ctx, h.cfg.IP, "netns", "add", rec.Namespace); err != nil {
			return err
		}
	}
	if err := h.run(ctx, h.cfg.IP, "-n", rec.Namespace, "link", "set", "dev", "lo", "up"); err != nil {
		return err
	}
	for _, iface := range rec.Interfaces {
		if err := h.attach(ctx, rec.Namespace, iface); err != nil {
			return fmt.Errorf("attach vf %d of %s (%s) as %s: %w", iface.VF, iface.PF, iface.PCIAddress, iface.Ifname, err)
		}
	}
	return nil
}

// attach moves one VF netdev into the VM namespace as iface.Ifname, up, TX checksumming off.
func (h *Hypervisor) attach(ctx context.Context, vmns string, iface vmInterface) error {
	ns, name, err := h.nic.Locate(iface.PF, iface.VF)
	if err != nil {
		return err
	}
	switch ns {
	case vmns: // moved by an earlier, interrupted start
	case h.cfg.HostNS:
		mac, err := h.linkMAC(ns, name)
		if err != nil {
			return err
		}
		if mac.String() != iface.MAC {
			return fmt.Errorf("%s has MAC %s, not the port's %s (the NIC backend programs the VF before its VM starts)", name, mac, iface.MAC)
		}
		if err := h.nic.RecordLocation(iface.PF, iface.VF, vmns, iface.Ifname); err != nil {
			return err
		}
		if err := moveLink(h.cfg.HostNS, name, vmns); err != nil {
			return err
		}
		name = lab.VFName(pfIndex(iface.PF), iface.VF)
	default:
		return fmt.Errorf("it is %s in namespace %s, another VM's", name, ns)
	}
	// ip -n <vm> link set dev <name> name eth<i> up
	err = inNS(vmns, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		if name != iface.Ifname {
			if err := nh.LinkSetDown(l); err != nil {
				return err
			}
			if err := nh.LinkSetName(l, iface.Ifname); err != nil {
				return fmt.Errorf("rename %s to %s: %w", name, iface.Ifname, err)
			}
		}
		if err := nh.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", iface.Ifname, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ip -n %s link set dev %s name %s up: %w", vmns, name, iface.Ifname, err)
	}
	return h.run(ctx, h.cfg.IP, "netns", "exec", vmns, h.cfg.Ethtool, "-K", iface.Ifname, "tx", "off")
}

// stop brings every VF recorded for the VM (in its file or on a port) back and deletes the
// namespace and the record. It goes on past a VF it cannot bring back, but then keeps the
// namespace (deleting it would destroy that VF) and reports the error.
func (h *Hypervisor) stop(ctx context.Context, rec *vmRecord) error {
	type ref struct {
		pf string
		vf int
	}
	var refs []ref
	for _, iface := range rec.Interfaces {
		refs = append(refs, ref{iface.PF, iface.VF})
	}
	onPorts, err := h.nic.InNamespace(rec.Namespace)
	if err != nil {
		return err
	}
	for _, r := range onPorts {
		if !slices.Contains(refs, ref{r.PF, r.VF}) {
			refs = append(refs, ref{r.PF, r.VF})
		}
	}
	var errs []error
	for _, r := range refs {
		if err := h.detach(rec.Namespace, r.pf, r.vf); err != nil {
			errs = append(errs, fmt.Errorf("bring vf %d of %s back: %w", r.vf, r.pf, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if nsExists(rec.Namespace) {
		if err := h.run(ctx, h.cfg.IP, "netns", "del", rec.Namespace); err != nil {
			return err
		}
	}
	if err := os.Remove(h.path(rec.Namespace)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the record of %s: %w", rec.Namespace, err)
	}
	return nil
}

// detach moves one VF netdev from the VM namespace back into the host's as lab.VFName, down.
func (h *Hypervisor) detach(vmns, pf string, vf int) error {
	ns, name, err := h.nic.Locate(pf, vf)
	if errors.Is(err, labnic.ErrNetdevLost) {
		// The netdev is gone (its namespace was deleted under it): nothing to bring back.
		h.log.Warn("vf netdev lost", "pf", pf, "vf", vf, "netns", vmns, "error", err)
		return h.nic.RecordLocation(pf, vf, "", "")
	}
	if err != nil {
		return err
	}
	switch ns {
	case h.cfg.HostNS:
		return h.nic.RecordLocation(pf, vf, "", "")
	case vmns:
	default:
		h.log.Warn("vf is in another namespace: left there", "pf", pf, "vf", vf, "netns", ns, "interface", name)
		return nil
	}
	hostName := lab.VFName(pfIndex(pf), vf)
	// ip -n <vm> link set dev eth<i> down name <VFName>
	err = inNS(vmns, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		if err := nh.LinkSetDown(l); err != nil {
			return err
		}
		if name != hostName {
			return nh.LinkSetName(l, hostName)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ip -n %s link set dev %s down name %s: %w", vmns, name, hostName, err)
	}
	if err := moveLink(vmns, hostName, h.cfg.HostNS); err != nil {
		return err
	}
	return h.nic.RecordLocation(pf, vf, "", "")
}

// pfIndex is k of PF lab.PFName(k) ("ens1f<k>"); the names come from resolve or labnic.
func pfIndex(pf string) int {
	var k int
	fmt.Sscanf(pf, "ens1f%d", &k)
	return k
}

// moveLink moves a netdev from one namespace to another; it arrives down, under the same name.
//
// Equivalent to: ip -n <from> link set dev <name> netns <to>
func moveLink(from, name, to string) error {
	target, err := netns.GetFromName(to)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", to, err)
	}
	defer target.Close()
	err = inNS(from, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		return nh.LinkSetNsFd(l, int(target))
	})
	if err != nil {
		return fmt.Errorf("ip -n %s link set dev %s netns %s: %w", from, name, to, err)
	}
	return nil
}

func (h *Hypervisor) linkMAC(ns, name string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := inNS(ns, func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(name)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ip -n %s link show %s: %w", ns, name, err)
	}
	return mac, nil
}

// inNS runs fn with a netlink handle in the named namespace.
func inNS(ns string, fn func(*netlink.Handle) error) error {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	nh, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	defer nh.Close()
	return fn(nh)
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

func (h *Hypervisor) run(ctx context.Context, bin string, args ...string) error {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (h *Hypervisor) dir() string           { return filepath.Join(h.cfg.Plan.Dir, "vms") }
func (h *Hypervisor) path(ns string) string { return filepath.Join(h.dir(), ns+".json") }

// read returns the record of a VM namespace, nil when there is none.
func (h *Hypervisor) read(ns string) (*vmRecord, error) {
	b, err := os.ReadFile(h.path(ns))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the record of %s: %w", ns, err)
	}
	var rec vmRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("record %s: %w", h.path(ns), err)
	}
	return &rec, nil
}

// write replaces a VM's record atomically.
func (h *Hypervisor) write(rec *vmRecord) error {
	if err := os.MkdirAll(h.dir(), 0o755); err != nil {
		return fmt.Errorf("record server %s: %w", rec.Server, err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := h.path(rec.Namespace) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("record server %s: %w", rec.Server, err)
	}
	if err := os.Rename(tmp, h.path(rec.Namespace)); err != nil {
		return fmt.Errorf("record server %s: %w", rec.Server, err)
	}
	return nil
}

var _ hypervisor.Hypervisor = (*Hypervisor)(nil)

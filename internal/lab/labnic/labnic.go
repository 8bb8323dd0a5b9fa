package labnic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

// External IDs of a VF's bridge port that hold what a real NIC keeps in the PF driver, and where
// the hypervisor moved the VF netdev.
const (
	KeySpoofCheck = "vflink-spoofchk" // "on" | "off"
	KeyTrust      = "vflink-trust"    // "on" | "off"
	KeyLinkState  = "vflink-state"    // "auto" | "enable" | "disable"
	KeyMAC        = "vflink-mac"      // the MAC SetMAC gave the VF: what the spoof check lets through
	KeyNetns      = "vflink-netns"    // the VM namespace holding the VF netdev; absent: the host's
	KeyIfname     = "vflink-ifname"   // the VF netdev's name there ("eth0")
)

// ErrNetdevLost is wrapped when a VF's netdev is in none of the places it can be (see Locate):
// the lab lost it, e.g. with a VM namespace deleted by hand.
var ErrNetdevLost = errors.New("vf netdev not found")

// spoofCookie marks the OpenFlow rules of the spoof check on a NIC bridge.
const spoofCookie = "0x5f1a0001"

// opTimeout bounds one Programmer call (it has no context): a few ovs-vsctl/ovs-ofctl runs.
const opTimeout = 30 * time.Second

// Config says which lab host's NIC this is and how to reach OVS.
type Config struct {
	Plan lab.Plan
	Host int // i, 1-based
	// Vsctl and Ofctl are the OVS clients; default "ovs-vsctl" and "ovs-ofctl" (looked up in PATH).
	Vsctl, Ofctl string
	// OVSRundir is ovs-vswitchd's run directory, where it makes <bridge>.mgmt; default Plan.Dir/ovs.
	OVSRundir string
	// HostNS is the host's network namespace; default lab.HostNS(Host). Tests set a unique name.
	HostNS string
	Log    *slog.Logger // default: discard
}

// NIC programs the VFs of one lab host's PFs. Its methods are safe for concurrent use.
type NIC struct {
	cfg Config
	log *slog.Logger
}

// New returns the NIC of lab host cfg.Host.
func New(cfg Config) *NIC {
	if cfg.Vsctl == "" {
		cfg.Vsctl = "ovs-vsctl"
	}
	if cfg.Ofctl == "" {
		cfg.Ofctl = "ovs-ofctl"
	}
	if cfg.OVSRundir == "" {
		cfg.OVSRundir = cfg.Plan.Dir + "/ovs"
	}
	if cfg.HostNS == "" {
		cfg.HostNS = lab.HostNS(cfg.Host)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &NIC{cfg: cfg, log: log.With("component", "labnic", "host", lab.HostName(cfg.Host))}
}

// HostNS is the namespace of the host's PF and VF netdevs.
func (n *NIC) HostNS() string { return n.cfg.HostNS }

// pfIndex maps a PF netdev name to k; an unknown name wraps sriov.ErrLinkNotFound.
func (n *NIC) pfIndex(pf string) (int, error) {
	for k := range n.cfg.Plan.PFsPerHost {
		if lab.PFName(k) == pf {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%s is not a PF of lab host %s (its PFs are %s-%s): %w", pf, lab.HostName(n.cfg.Host),
		lab.PFName(0), lab.PFName(n.cfg.Plan.PFsPerHost-1), sriov.ErrLinkNotFound)
}

// vfPort checks pf and vf and returns PF k, the NIC bridge and the VF's port on it.
func (n *NIC) vfPort(pf string, vf int) (k int, bridge, port string, err error) {
	if k, err = n.pfIndex(pf); err != nil {
		return 0, "", "", err
	}
	if vf < 0 || vf >= n.cfg.Plan.VFsPerPF {
		return 0, "", "", fmt.Errorf("vf %d is out of range 0-%d on %s: %w", vf, n.cfg.Plan.VFsPerPF-1, pf, syscall.EINVAL)
	}
	return k, lab.NICBridge(n.cfg.Host, k), lab.VFPort(n.cfg.Host, k, vf), nil
}

// VFs lists the PF's VFs: the MAC read from each VF netdev (wherever it is), the VLAN from the VF
// port's vlan_mode and tag, spoof check, trust and link state from its external_ids.
//
// Equivalent to:
//
//	ovs-vsctl --db=unix:/run/vflink-lab/ovs/db.sock --format=json -- \
//	    --columns=name,vlan_mode,tag,external_ids list Port vf-h1p0v0 vf-h1p0v1 ...
//	ip -n vfl-h1 link show ens1f0v0        # or ip -n vfl-vm-<id> link show eth0 when a VM has it
func (n *NIC) VFs(pf string) ([]sriov.VFInfo, error) {
	k, err := n.pfIndex(pf)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	names := make([]string, n.cfg.Plan.VFsPerPF)
	for vf := range names {
		names[vf] = lab.VFPort(n.cfg.Host, k, vf)
	}
	rows, err := n.ports(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("read vfs of %s: %w", pf, err)
	}
	links := nsLinks{}
	out := make([]sriov.VFInfo, 0, len(names))
	for vf, name := range names {
		row := rows[name]
		var mac net.HardwareAddr
		for _, c := range n.candidates(k, vf, row) {
			if m, ok, err := links.mac(c.ns, c.ifname); err != nil {
				return nil, fmt.Errorf("read vf %d of %s: %w", vf, pf, err)
			} else if ok {
				mac = m
				break
			}
		}
		if mac == nil {
			return nil, fmt.Errorf("read vf %d of %s: %w", vf, pf, n.notFound(k, vf, row))
		}
		out = append(out, sriov.VFInfo{Index: vf, VFState: row.state(mac)})
	}
	return out, nil
}

// SetMAC sets the VF netdev's address in whatever namespace it is, and moves the spoof check's
// rules to the new address when the check is on.
//
// Equivalent to:
//
//	ip -n vfl-h1 link set dev ens1f0v3 address 02:5a:0d:c4:39:77   # or -n vfl-vm-<id> ... eth0
//	ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-mac=02:5a:0d:c4:39:77
//	ovs-ofctl del-flows ...; ovs-ofctl add-flows ...                 # with spoof checking on: see SetSpoofCheck
func (n *NIC) SetMAC(pf string, vf int, mac net.HardwareAddr) error {
	k, bridge, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("set mac %s on vf %d: %w", mac, vf, err)
	}
	if err := checkMAC(mac); err != nil {
		return fmt.Errorf("set mac on vf %d of %s: %w: %w", vf, pf, err, syscall.EINVAL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	row, err := n.port(ctx, port)
	if err != nil {
		return fmt.Errorf("set mac %s on vf %d of %s: %w", mac, vf, pf, err)
	}
	loc, err := n.locate(k, vf, row)
	if err != nil {
		return fmt.Errorf("set mac %s on vf %d of %s: %w", mac, vf, pf, err)
	}
	err = inNS(loc.ns, func(h *handle) error {
		l, err := h.LinkByName(loc.ifname)
		if err != nil {
			return err
		}
		return h.LinkSetHardwareAddr(l, mac)
	})
	if err != nil {
		return fmt.Errorf("ip -n %s link set dev %s address %s: %w", loc.ns, loc.ifname, mac, err)
	}
	if _, err := n.vsctl(ctx, "set", "Port", port, "external_ids:"+KeyMAC+"="+mac.String()); err != nil {
		return fmt.Errorf("set mac %s on vf %d of %s: %w", mac, vf, pf, err)
	}
	n.log.Debug("vf mac set", "pf", pf, "vf", vf, "mac", mac.String(), "netns", loc.ns, "interface", loc.ifname)
	if row.ExternalIDs[KeySpoofCheck] == "on" {
		if err := n.spoofFlows(ctx, bridge, port, mac); err != nil {
			return fmt.Errorf("set mac %s on vf %d of %s: move the spoof check: %w", mac, vf, pf, err)
		}
	}
	return nil
}

// SetVLAN sets the VLAN on the VF's port of the NIC bridge, as a real VEB does it: V > 0 is an
// access port (untagged frames from the VF enter VLAN V; frames to it leave untagged), 0 a trunk
// port passing tagged and untagged frames. The VF netdev itself never sees the VLAN.
//
// Equivalent to:
//
//	ovs-vsctl --db=unix:/run/vflink-lab/ovs/db.sock set Port vf-h1p0v3 vlan_mode=access tag=15 trunks=[]
//	ovs-vsctl --db=... set Port vf-h1p0v3 vlan_mode=trunk tag=[] trunks=[]        # vlan 0
func (n *NIC) SetVLAN(pf string, vf int, vlan int) error {
	_, _, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("set vlan %d on vf %d: %w", vlan, vf, err)
	}
	if vlan < 0 || vlan > 4095 {
		return fmt.Errorf("set vlan on vf %d of %s: vlan %d is out of range 0-4095: %w", vf, pf, vlan, syscall.EINVAL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	args := []string{"set", "Port", port, "vlan_mode=trunk", "tag=[]", "trunks=[]"}
	if vlan > 0 {
		args = []string{"set", "Port", port, "vlan_mode=access", "tag=" + strconv.Itoa(vlan), "trunks=[]"}
	}
	if _, err := n.vsctl(ctx, args...); err != nil {
		return fmt.Errorf("set vlan %d on vf %d of %s: %w", vlan, vf, pf, err)
	}
	n.log.Debug("vf vlan set", "pf", pf, "vf", vf, "vlan", vlan, "port", port)
	return nil
}

// SetSpoofCheck records the spoof check on the VF port and enforces it with two OpenFlow rules on
// the NIC bridge: frames from the VF port with the VF's MAC as source go on to the bridge's
// normal switching, every other frame from it is dropped. Off removes both rules. The VF's MAC is
// the one SetMAC gave it (as a real NIC checks the MAC the PF set, not what the guest changed it
// to), or the netdev's when SetMAC never ran.
//
// Equivalent to:
//
//	ovs-ofctl del-flows unix:/run/vflink-lab/ovs/nic-h1p0.mgmt "cookie=0x5f1a0001/-1,in_port=vf-h1p0v3"
//	ovs-ofctl add-flows unix:/run/vflink-lab/ovs/nic-h1p0.mgmt - <<EOF
//	cookie=0x5f1a0001,priority=200,in_port=vf-h1p0v3,dl_src=02:5a:0d:c4:39:77,actions=NORMAL
//	cookie=0x5f1a0001,priority=199,in_port=vf-h1p0v3,actions=drop
//	EOF
//	ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-spoofchk=on
func (n *NIC) SetSpoofCheck(pf string, vf int, on bool) error {
	k, bridge, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("set spoofchk %s on vf %d: %w", onOff(on), vf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if on {
		row, err := n.port(ctx, port)
		if err != nil {
			return fmt.Errorf("set spoofchk on on vf %d of %s: %w", vf, pf, err)
		}
		mac, err := n.adminMAC(k, vf, row)
		if err != nil {
			return fmt.Errorf("set spoofchk on on vf %d of %s: %w", vf, pf, err)
		}
		if err := n.spoofFlows(ctx, bridge, port, mac); err != nil {
			return fmt.Errorf("set spoofchk on on vf %d of %s: %w", vf, pf, err)
		}
	} else if err := n.delSpoofFlows(ctx, bridge, port); err != nil {
		return fmt.Errorf("set spoofchk off on vf %d of %s: %w", vf, pf, err)
	}
	if _, err := n.vsctl(ctx, "set", "Port", port, "external_ids:"+KeySpoofCheck+"="+onOff(on)); err != nil {
		return fmt.Errorf("set spoofchk %s on vf %d of %s: %w", onOff(on), vf, pf, err)
	}
	n.log.Debug("vf spoof check set", "pf", pf, "vf", vf, "spoofchk", onOff(on), "port", port)
	return nil
}

// SetTrust records trust on the VF port. It is recorded only: a veth cannot refuse its user a MAC
// or promiscuous mode change, which is what an untrusted real VF refuses (with spoof checking on,
// frames from a changed MAC are dropped all the same).
//
// Equivalent to: ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-trust=on
func (n *NIC) SetTrust(pf string, vf int, on bool) error {
	_, _, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("set trust %s on vf %d: %w", onOff(on), vf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := n.vsctl(ctx, "set", "Port", port, "external_ids:"+KeyTrust+"="+onOff(on)); err != nil {
		return fmt.Errorf("set trust %s on vf %d of %s: %w", onOff(on), vf, pf, err)
	}
	n.log.Debug("vf trust set", "pf", pf, "vf", vf, "trust", onOff(on), "port", port)
	return nil
}

// SetLinkState records the link state on the VF port and applies it: disable takes the port
// administratively down (the VF netdev loses its carrier and no frame passes either way), auto and
// enable bring it up (the lab's PF link is always up, so auto is enable).
//
// Equivalent to:
//
//	ovs-ofctl mod-port unix:/run/vflink-lab/ovs/nic-h1p0.mgmt vf-h1p0v3 down   # up for auto, enable
//	ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-state=disable
func (n *NIC) SetLinkState(pf string, vf int, state string) error {
	_, bridge, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("set state %s on vf %d: %w", state, vf, err)
	}
	switch state {
	case sriov.LinkStateAuto, sriov.LinkStateEnable, sriov.LinkStateDisable:
	default:
		return fmt.Errorf("set state on vf %d of %s: link state %q is not one of auto, enable, disable: %w", vf, pf, state, syscall.EINVAL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	updown := "up"
	if state == sriov.LinkStateDisable {
		updown = "down"
	}
	if _, err := n.ofctl(ctx, bridge, "", "mod-port", port, updown); err != nil {
		return fmt.Errorf("set state %s on vf %d of %s: %w", state, vf, pf, err)
	}
	if _, err := n.vsctl(ctx, "set", "Port", port, "external_ids:"+KeyLinkState+"="+state); err != nil {
		return fmt.Errorf("set state %s on vf %d of %s: %w", state, vf, pf, err)
	}
	n.log.Debug("vf link state set", "pf", pf, "vf", vf, "state", state, "port", port)
	return nil
}

// Locate finds VF vf of pf's netdev now: the namespace it is in and its name there (the host
// namespace and lab.VFName, or a VM's namespace and the name the hypervisor gave it).
//
// Equivalent to:
//
//	ovs-vsctl --db=... get Port vf-h1p0v3 external_ids
//	ip -n vfl-vm-<id> link show eth0 || ip -n vfl-vm-<id> link show ens1f0v3 || ip -n vfl-h1 link show ens1f0v3
func (n *NIC) Locate(pf string, vf int) (netns, ifname string, err error) {
	k, _, port, err := n.vfPort(pf, vf)
	if err != nil {
		return "", "", fmt.Errorf("locate vf %d: %w", vf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	row, err := n.port(ctx, port)
	if err != nil {
		return "", "", fmt.Errorf("locate vf %d of %s: %w", vf, pf, err)
	}
	loc, err := n.locate(k, vf, row)
	if err != nil {
		return "", "", fmt.Errorf("locate vf %d of %s: %w", vf, pf, err)
	}
	return loc.ns, loc.ifname, nil
}

// RecordLocation records on the VF's port that its netdev is (about to be) in namespace netns
// under the name ifname; the hypervisor calls it before it moves the netdev into a VM. An empty
// netns removes the record: the netdev is (back) in the host namespace as lab.VFName.
//
// Equivalent to:
//
//	ovs-vsctl --db=... set Port vf-h1p0v3 external_ids:vflink-netns=vfl-vm-1a2b3c4d external_ids:vflink-ifname=eth0
//	ovs-vsctl --db=... remove Port vf-h1p0v3 external_ids vflink-netns -- remove Port vf-h1p0v3 external_ids vflink-ifname
func (n *NIC) RecordLocation(pf string, vf int, netns, ifname string) error {
	_, _, port, err := n.vfPort(pf, vf)
	if err != nil {
		return fmt.Errorf("record where vf %d is: %w", vf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	args := []string{"remove", "Port", port, "external_ids", KeyNetns, "--", "remove", "Port", port, "external_ids", KeyIfname}
	if netns != "" {
		if ifname == "" {
			return fmt.Errorf("record where vf %d of %s is: namespace %s without an interface name", vf, pf, netns)
		}
		args = []string{"set", "Port", port, "external_ids:" + KeyNetns + "=" + netns, "external_ids:" + KeyIfname + "=" + ifname}
	}
	if _, err := n.vsctl(ctx, args...); err != nil {
		return fmt.Errorf("record vf %d of %s in %q: %w", vf, pf, netns, err)
	}
	return nil
}

// VFRef is one VF that a record places in a VM namespace.
type VFRef struct {
	PF     string
	VF     int
	Ifname string // the name the record gives it in the namespace
}

// InNamespace lists this host's VFs whose ports record netns as their netdev's namespace, by PF
// and index.
//
// Equivalent to: ovs-vsctl --db=... --columns=name,external_ids find Port external_ids:vflink-netns=vfl-vm-1a2b3c4d
func (n *NIC) InNamespace(netns string) ([]VFRef, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := n.vsctl(ctx, "--format=json", "--", "--columns=name,vlan_mode,tag,external_ids", "find", "Port",
		"external_ids:"+KeyNetns+"="+netns)
	if err != nil {
		return nil, fmt.Errorf("list vfs in %s: %w", netns, err)
	}
	rows, err := parsePorts(out)
	if err != nil {
		return nil, fmt.Errorf("list vfs in %s: %w", netns, err)
	}
	var refs []VFRef
	for k := range n.cfg.Plan.PFsPerHost {
		for vf := range n.cfg.Plan.VFsPerPF {
			if row, ok := rows[lab.VFPort(n.cfg.Host, k, vf)]; ok {
				refs = append(refs, VFRef{PF: lab.PFName(k), VF: vf, Ifname: row.ExternalIDs[KeyIfname]})
			}
		}
	}
	return refs, nil
}

// adminMAC is the MAC SetMAC recorded for the VF, or else its netdev's.
func (n *NIC) adminMAC(k, vf int, row portRow) (net.HardwareAddr, error) {
	if m, err := net.ParseMAC(row.ExternalIDs[KeyMAC]); err == nil {
		return m, nil
	}
	loc, err := n.locate(k, vf, row)
	if err != nil {
		return nil, err
	}
	return linkMAC(loc.ns, loc.ifname)
}

// location is where a VF netdev is.
type location struct{ ns, ifname string }

// candidates are the places a VF netdev can be, most likely first (see the package comment).
func (n *NIC) candidates(k, vf int, row portRow) []location {
	host := location{n.cfg.HostNS, lab.VFName(k, vf)}
	ns := row.ExternalIDs[KeyNetns]
	if ns == "" || ns == n.cfg.HostNS {
		return []location{host}
	}
	var c []location
	if name := row.ExternalIDs[KeyIfname]; name != "" {
		c = append(c, location{ns, name})
	}
	return append(c, location{ns, lab.VFName(k, vf)}, host)
}

// locate finds the VF netdev among the candidates of its port record; a move between reading the
// record and probing is caught by reading the record once more.
func (n *NIC) locate(k, vf int, row portRow) (location, error) {
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			r, err := n.port(ctx, row.Name)
			cancel()
			if err != nil {
				return location{}, err
			}
			row = r
		}
		for _, c := range n.candidates(k, vf, row) {
			ok, err := linkExists(c.ns, c.ifname)
			if err != nil {
				return location{}, err
			}
			if ok {
				return c, nil
			}
		}
	}
	return location{}, n.notFound(k, vf, row)
}

func (n *NIC) notFound(k, vf int, row portRow) error {
	var where []string
	for _, c := range n.candidates(k, vf, row) {
		where = append(where, c.ifname+" in "+c.ns)
	}
	return fmt.Errorf("the netdev of vf %d of %s is nowhere to be found (looked for %v): %w",
		vf, lab.PFName(k), where, ErrNetdevLost)
}

func checkMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("mac %q is not a 6-byte Ethernet address", mac.String())
	case mac[0]&1 != 0:
		return fmt.Errorf("mac %s is a multicast address; a VF needs a unicast one", mac)
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		return fmt.Errorf("mac %s is the zero address", mac)
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

var _ sriov.Programmer = (*NIC)(nil)

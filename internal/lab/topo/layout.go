package topo

import (
	"fmt"
	"strings"

	"github.com/vflink/vflink/internal/lab"
)

// ParkTag is the VLAN of a parked port: vlan_mode=access tag=4095 trunks=[]. No configured
// port carries VLAN 4095, so a parked port exchanges no frame with a configured one (but Open
// vSwitch does not treat 4095 specially: parked ports of one bridge reach each other).
const ParkTag = 4095

// Park returns the ovs-vsctl command (to put after "--") that parks port.
func Park(port string) []string {
	return []string{"set", "Port", port, "vlan_mode=access", fmt.Sprintf("tag=%d", ParkTag), "trunks=[]"}
}

// PFMAC is the locally administered MAC the lab gives PF k (0-based) of host i: 02:76:6c:0i:0k:ff.
func PFMAC(i, k int) string { return fmt.Sprintf("02:76:6c:%02x:%02x:ff", i, k) }

// VFMAC is the locally administered MAC the lab gives VF n of PF k of host i at the start (the
// agent may change it): 02:76:6c:0i:0k:nn.
func VFMAC(i, k, n int) string { return fmt.Sprintf("02:76:6c:%02x:%02x:%02x", i, k, n) }

// Namespaces lists the namespaces a lab of plan p makes: lab.FabricNS, then each host's.
func Namespaces(p lab.Plan) []string {
	out := []string{lab.FabricNS}
	for i := 1; i <= p.Hosts; i++ {
		out = append(out, lab.HostNS(i))
	}
	return out
}

// isLabNS reports whether a namespace name is one the lab makes: vfl-fabric, vfl-h<n> or
// vfl-vm-<id> (a VM's, made by the lab's hypervisor).
func isLabNS(name string) bool {
	if name == lab.FabricNS || strings.HasPrefix(name, "vfl-vm-") {
		return true
	}
	n, ok := strings.CutPrefix(name, "vfl-h")
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkCabling refuses a plan that puts two PFs on one leaf port (PF k and k' of a host reach
// the same leaf when there are fewer leaves than PFs per host, and the port is xe-0/0/<host>).
func checkCabling(p lab.Plan) error {
	seen := map[string]lab.Link{}
	for _, l := range p.Links() {
		if prev, dup := seen[l.LeafPort]; dup {
			return fmt.Errorf("plan cables %s %s and %s to the same port %s of %s: use at least as many leaves (%d) as PFs per host (%d)",
				lab.HostName(l.Host), prev.PFName, l.PFName, l.JunosPort, lab.LeafName(l.Leaf), p.Leaves, p.PFsPerHost)
		}
		seen[l.LeafPort] = l
	}
	return nil
}

// cablesBatch is the `ip -batch -` input (run in the root namespace) that creates every veth
// pair with each end directly in its namespace and the host ends' MACs set:
//
//	link add ens1f0 address 02:76:6c:01:00:ff netns vfl-h1 type veth peer name pf-h1p0 netns vfl-fabric
//	link add w-h1p0 netns vfl-fabric type veth peer name l1-xe1 netns vfl-fabric
//	link add ens1f0v0 address 02:76:6c:01:00:00 netns vfl-h1 type veth peer name vf-h1p0v0 netns vfl-fabric
func cablesBatch(p lab.Plan) string {
	var b strings.Builder
	for _, l := range p.Links() {
		hns := lab.HostNS(l.Host)
		fmt.Fprintf(&b, "link add %s address %s netns %s type veth peer name %s netns %s\n",
			l.PFName, PFMAC(l.Host, l.PF), hns, lab.PFPort(l.Host, l.PF), lab.FabricNS)
		fmt.Fprintf(&b, "link add %s netns %s type veth peer name %s netns %s\n",
			l.WirePort, lab.FabricNS, l.LeafPort, lab.FabricNS)
		for n := range p.VFsPerPF {
			fmt.Fprintf(&b, "link add %s address %s netns %s type veth peer name %s netns %s\n",
				lab.VFName(l.PF, n), VFMAC(l.Host, l.PF, n), hns, lab.VFPort(l.Host, l.PF, n), lab.FabricNS)
		}
	}
	return b.String()
}

// fabricIfaces lists the netdevs in vfl-fabric that are OVS ports (every veth end there).
func fabricIfaces(p lab.Plan) []string {
	var out []string
	for _, l := range p.Links() {
		out = append(out, lab.PFPort(l.Host, l.PF), l.WirePort, l.LeafPort)
		for n := range p.VFsPerPF {
			out = append(out, lab.VFPort(l.Host, l.PF, n))
		}
	}
	return out
}

// hostIfaces lists host i's PF and VF netdevs.
func hostIfaces(p lab.Plan, i int) (pfs, vfs []string) {
	for k := range p.PFsPerHost {
		pfs = append(pfs, lab.PFName(k))
		for n := range p.VFsPerPF {
			vfs = append(vfs, lab.VFName(k, n))
		}
	}
	return pfs, vfs
}

// upBatch is the `ip -n NS -batch -` input that sets ifaces up.
func upBatch(ifaces []string) string {
	var b strings.Builder
	for _, i := range ifaces {
		fmt.Fprintf(&b, "link set %s up\n", i)
	}
	return b.String()
}

// bridgesTxn is the ovs-vsctl transaction (arguments after the global options) that makes every
// bridge and port: leaves, spine and NIC bridges with datapath_type=netdev; the leaf–spine
// patch ports trunking every VLAN; each NIC bridge's PF and wire ports trunking every VLAN and
// untagged frames; every leaf port and VF port parked.
func bridgesTxn(p lab.Plan) []string {
	var a []string
	add := func(args ...string) { a = append(a, append([]string{"--"}, args...)...) }
	br := func(name string, other ...string) {
		add("add-br", name)
		add(append([]string{"set", "Bridge", name, "datapath_type=netdev"}, other...)...)
	}
	parked := []string{"vlan_mode=access", fmt.Sprintf("tag=%d", ParkTag)}
	trunk := []string{"vlan_mode=trunk"}
	port := func(bridge, name string, settings []string) {
		add(append([]string{"add-port", bridge, name}, settings...)...)
	}
	br(lab.SpineBridge)
	for j := 1; j <= p.Leaves; j++ {
		up, dn := lab.LeafUplink(j), lab.SpineDownlink(j)
		br(lab.LeafName(j))
		port(lab.LeafName(j), up, trunk)
		add("set", "Interface", up, "type=patch", "options:peer="+dn)
		port(lab.SpineBridge, dn, trunk)
		add("set", "Interface", dn, "type=patch", "options:peer="+up)
	}
	for _, l := range p.Links() {
		br(l.NICBridge, "other_config:forward-bpdu=true")
		port(l.NICBridge, lab.PFPort(l.Host, l.PF), trunk)
		port(l.NICBridge, l.WirePort, trunk)
		for n := range p.VFsPerPF {
			port(l.NICBridge, lab.VFPort(l.Host, l.PF, n), parked)
		}
		port(lab.LeafName(l.Leaf), l.LeafPort, parked)
	}
	return a
}

// lldpAgent is one lldpd of the lab: a leaf's (on its leaf ports, announcing Junos names) or a
// host's (on its PFs).
type lldpAgent struct {
	Name   string            // "leaf1" or "h1": its hostname and lab.LldpdSocket name
	NS     string            // where it runs
	Ifaces []string          // -I
	Ports  map[string]string // netdev → Junos name to announce (leaves only)
}

// lldpAgents lists the lab's lldpd, leaves first. A leaf with no cable gets none.
func lldpAgents(p lab.Plan) []lldpAgent {
	var out []lldpAgent
	for j := 1; j <= p.Leaves; j++ {
		a := lldpAgent{Name: lab.LeafName(j), NS: lab.FabricNS, Ports: map[string]string{}}
		for _, l := range p.Links() {
			if l.Leaf == j {
				a.Ifaces = append(a.Ifaces, l.LeafPort)
				a.Ports[l.LeafPort] = l.JunosPort
			}
		}
		if len(a.Ifaces) > 0 {
			out = append(out, a)
		}
	}
	for i := 1; i <= p.Hosts; i++ {
		pfs, _ := hostIfaces(p, i)
		out = append(out, lldpAgent{Name: lab.HostName(i), NS: lab.HostNS(i), Ifaces: pfs})
	}
	return out
}

// conf is the lldpcli script for the agent: hostname, a 1 s transmit interval (TTL 4 s), the
// Junos port names as port ID (subtype local) and description, then resume (lldpd starts paused).
func (a lldpAgent) conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configure system hostname %s\n", a.Name)
	b.WriteString("configure lldp tx-interval 1\n")
	for _, ifc := range a.Ifaces {
		if name, ok := a.Ports[ifc]; ok {
			fmt.Fprintf(&b, "configure ports %s lldp portidsubtype local %s description %s\n", ifc, name, name)
		}
	}
	b.WriteString("resume\n")
	return b.String()
}

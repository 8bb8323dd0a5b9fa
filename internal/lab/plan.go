// Package lab is the whole fabric on one machine with real packets (`vflink lab`): Open vSwitch's
// userspace datapath as the leaves, the spine and every host NIC's embedded switch (VEB), veth
// pairs as VFs, PFs and cables, lldpd announcing Junos port names, the Junos-like device simulator
// driving the leaves' bridges from its committed configuration, network namespaces as hosts and
// VMs. Nothing is placed in the root namespace.
//
// Plan is the naming every part of the lab shares; it is pure.
package lab

import "fmt"

// Plan is the shape of a lab.
type Plan struct {
	Hosts      int // compute hosts, h1..hN (1-8)
	PFsPerHost int // PFs per host (1-4)
	VFsPerPF   int // VFs per PF (1-32)
	Leaves     int // leaf switches, leaf1..leafN (1-8)
	// Dir is the lab's state directory (run files, sockets, sysfs trees, logs).
	Dir string
}

// Default is `vflink lab up` without flags.
var Default = Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 8, Leaves: 2, Dir: "/run/vflink-lab"}

// Check reports a plan outside the supported ranges.
func (p Plan) Check() error {
	switch {
	case p.Hosts < 1 || p.Hosts > 8:
		return fmt.Errorf("--hosts %d is out of range 1-8", p.Hosts)
	case p.PFsPerHost < 1 || p.PFsPerHost > 4:
		return fmt.Errorf("--pfs-per-host %d is out of range 1-4", p.PFsPerHost)
	case p.VFsPerPF < 1 || p.VFsPerPF > 32:
		return fmt.Errorf("--vfs-per-pf %d is out of range 1-32", p.VFsPerPF)
	case p.Leaves < 1 || p.Leaves > 8:
		return fmt.Errorf("--leaves %d is out of range 1-8", p.Leaves)
	case p.Dir == "":
		return fmt.Errorf("the lab needs a state directory")
	}
	return nil
}

// Namespaces.
const FabricNS = "vfl-fabric" // ovsdb-server, ovs-vswitchd, every bridge, the leaves' lldpd

// HostName is host i's name (1-based): "h1".
func HostName(i int) string { return fmt.Sprintf("h%d", i) }

// HostNS is host i's namespace, holding its PF and VF netdevs and its lldpd.
func HostNS(i int) string { return fmt.Sprintf("vfl-h%d", i) }

// VMNS is the namespace of a VM (a server), from the server's ID.
func VMNS(serverID string) string {
	id := serverID
	if len(id) > 8 {
		id = id[:8]
	}
	return "vfl-vm-" + id
}

// LeafName is leaf j's name (1-based), its devsim device name and its OVS bridge: "leaf1".
func LeafName(j int) string { return fmt.Sprintf("leaf%d", j) }

// SpineBridge joins the leaves: each leaf's uplink is a patch port pair to it.
const SpineBridge = "spine"

// LeafUplink and SpineDownlink are the patch ports between leaf j and the spine.
func LeafUplink(j int) string    { return fmt.Sprintf("up-l%d", j) }
func SpineDownlink(j int) string { return fmt.Sprintf("dn-l%d", j) }

// PFName is PF k (0-based) of a host as the host sees it: "ens1f0", "ens1f1", ...
func PFName(k int) string { return fmt.Sprintf("ens1f%d", k) }

// PFPCI is the PCI address of PF k of host i: "0000:8<i>:00.<k>".
func PFPCI(i, k int) string { return fmt.Sprintf("0000:8%d:00.%d", i, k) }

// VFName is VF n of PF k as the host sees it: "ens1f0v3".
func VFName(k, n int) string { return fmt.Sprintf("ens1f%dv%d", k, n) }

// NICBridge is the OVS bridge that is PF k of host i's embedded switch (VEB): "nic-h1p0".
func NICBridge(i, k int) string { return fmt.Sprintf("nic-h%dp%d", i, k) }

// PFPort is the NIC bridge's port facing the PF netdev (the peer of PFName in the host ns).
func PFPort(i, k int) string { return fmt.Sprintf("pf-h%dp%d", i, k) }

// VFPort is the NIC bridge's port facing VF n (the peer of VFName in the host ns): "vf-h1p0v3".
func VFPort(i, k, n int) string { return fmt.Sprintf("vf-h%dp%dv%d", i, k, n) }

// WirePort is the NIC bridge's port facing the cable to the leaf: "w-h1p0".
func WirePort(i, k int) string { return fmt.Sprintf("w-h%dp%d", i, k) }

// Cable says where PF k of host i is cabled: leaf ((i-1)+k) mod Leaves + 1, on port xe-0/0/<i>,
// so a host's PFs reach different leaves (multi-homing) and hosts' first PFs alternate leaves.
func (p Plan) Cable(i, k int) (leaf int, junosPort string) {
	return (i-1+k)%p.Leaves + 1, fmt.Sprintf("xe-0/0/%d", i)
}

// LeafPort is the leaf bridge's port (a veth whose peer is WirePort) for the Junos interface
// xe-0/0/<n> of leaf j: "l1-xe3". lldpd on the leaf announces it as xe-0/0/<n>.
func LeafPort(j, n int) string { return fmt.Sprintf("l%d-xe%d", j, n) }

// Link is one PF's cable, as the lab wires it.
type Link struct {
	Host, PF          int    // host i (1-based), PF k (0-based)
	Leaf              int    // leaf j (1-based)
	JunosPort         string // "xe-0/0/1"
	LeafPort          string // OVS port on the leaf bridge
	WirePort          string // OVS port on the NIC bridge
	PFName, NICBridge string
}

// Links lists every PF's cable, host by host.
func (p Plan) Links() []Link {
	var out []Link
	for i := 1; i <= p.Hosts; i++ {
		for k := 0; k < p.PFsPerHost; k++ {
			j, port := p.Cable(i, k)
			out = append(out, Link{Host: i, PF: k, Leaf: j, JunosPort: port, LeafPort: LeafPort(j, i),
				WirePort: WirePort(i, k), PFName: PFName(k), NICBridge: NICBridge(i, k)})
		}
	}
	return out
}

// Address plan: VM networks of the demo come from 10.247.0.0/16 (one /24 per network), the
// only addresses the lab uses; the lab refuses to start when they overlap an address or a
// (non-default) route of the machine. OVS, lldpd and devsim use no IP addresses (devsim and the
// server listen on 127.0.0.1).
const AddressRange = "10.247.0.0/16"

// OVSDB is the lab's OVS database socket.
func (p Plan) OVSDB() string { return "unix:" + p.Dir + "/ovs/db.sock" }

// SysfsRoot is host i's generated sysfs tree (read by its agent's --sysfs-root).
func (p Plan) SysfsRoot(i int) string { return fmt.Sprintf("%s/sys-h%d", p.Dir, i) }

// LldpdSocket is the control socket of the lldpd of a host ("h1") or leaf ("leaf1").
func (p Plan) LldpdSocket(name string) string { return fmt.Sprintf("%s/lldpd-%s.socket", p.Dir, name) }

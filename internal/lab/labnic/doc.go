// Package labnic is the lab's SR-IOV NIC: an sriov.Programmer for the emulated PFs of one lab
// host, so that the unchanged host agent programs lab VFs through sriov.Apply exactly as it
// programs an 82599 through netlink.
//
// In the lab (see package lab) PF k of host i is the OVS bridge lab.NICBridge(i, k), the NIC's
// embedded switch (VEB), and VF n is a veth pair: the VF netdev lab.VFName(k, n) (in the host
// namespace lab.HostNS(i), or in a VM's namespace once the hypervisor moved it there) and the
// bridge port lab.VFPort(i, k, n). Each setting lands where the real NIC keeps it:
//
//	setting      lab                                         real NIC (ip link set ens1f0 vf 3 ...)
//	mac          the VF netdev's address (and                mac M
//	             external_ids:vflink-mac for the spoof check)
//	vlan         the VF port: vlan_mode=access tag=V,        vlan V (the VEB tags and strips it;
//	             or vlan_mode=trunk (0: tagged and untagged  the VF netdev never sees it)
//	             frames pass)
//	spoofchk     external_ids:vflink-spoofchk on the port    spoofchk on|off
//	             + OpenFlow rules on the NIC bridge dropping
//	             frames from the VF whose source MAC is not
//	             the one SetMAC gave it (vflink-mac)
//	trust        external_ids:vflink-trust (recorded only:   trust on|off
//	             a veth cannot refuse a MAC change)
//	state        external_ids:vflink-state + the port        state auto|enable|disable
//	             administratively down (OpenFlow port-mod,
//	             `ovs-ofctl mod-port BR PORT down`) for
//	             disable: the VF netdev loses its carrier
//	             and nothing passes
//
// The external_ids survive agent restarts (the OVS database outlives the agent); VFs reads every
// setting back from where it lives: the MAC from the netdev, the VLAN from the port's vlan_mode
// and tag, the rest from the port's external_ids (absent: spoof checking off, trust off,
// link-state auto — the lab's topology writes none). A VF port the topology parked (vlan_mode=access
// tag=4095) reads back as VLAN 4095, so a VF that the agent restores to its saved state is parked
// again.
//
// Finding a VF netdev that a VM owns: the hypervisor (package netnshv) records the move on the
// VF's bridge port, external_ids:vflink-netns=<namespace> and vflink-ifname=<name in the VM>,
// before it moves the netdev, and removes both after it moved it back (RecordLocation). Locate
// then tries, in order, the recorded namespace and name, the recorded namespace under the VF's
// host name (moved but not yet renamed), and the host namespace under the VF's host name, so
// every intermediate state of a move is found. The OVS database was chosen over a file because
// the hypervisor and the NIC backend already share it, it is transactional, and `ovs-vsctl list
// Port` shows a person where each VF is.
//
// What ovs-vswitchd keeps only in memory — the spoof-check flows and the port-down of a disabled
// VF — is lost when ovs-vswitchd restarts; the records are not, and re-applying a VF's state
// (sriov.Apply) installs both again. Setting a VF's link state through `ovs-vsctl set Interface X
// admin_state=down` does not work: admin_state is a status column that ovs-vswitchd overwrites
// (measured here: the port stays up and keeps forwarding), hence the OpenFlow port-mod.
//
// ovs-vsctl reaches the lab's database at Plan.OVSDB(); ovs-ofctl reaches a bridge at
// unix:<OVSRundir>/<bridge>.mgmt, the socket ovs-vswitchd makes in its run directory (OVS_RUNDIR,
// by default Plan.Dir/ovs, the directory holding the database socket).
//
// The package is hand-written: it is the glue between sriov.Programmer and two command-line
// clients (ovs-vsctl, ovs-ofctl; no Go library speaks OVSDB or OpenFlow to this OVS here, and
// these are what a person runs by hand) plus netlink (github.com/vishvananda/netlink) in the
// VF's network namespace.
package labnic

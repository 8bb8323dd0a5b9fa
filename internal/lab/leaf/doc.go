// Package leaf is the data plane of the lab's leaf switches: the device simulator's committed
// Junos configuration (devsim's OnCommit) drives the leaf's Open vSwitch bridge, so that what
// vflink pushes to a leaf really decides which frames pass.
//
// Written by hand: it is the glue between two parts of this repository (junosconf's statements and
// the lab's OVS naming in lab.Plan); no library maps Junos EVPN-VXLAN configuration onto OVS.
// ovs-vsctl and ovs-ofctl are run as programs (argv, no shell), as the ovs driver does: no Go
// library speaks OVSDB or OpenFlow here, and these are the tools an operator runs by hand.
//
// # What the leaf forwards
//
// The configuration that takes effect is the committed one as Junos inherits it: top-level
// statements, plus the statements of every group named by `apply-groups` (a group that no
// apply-groups names is inert). A top-level value beats a group's; among groups, the first in
// name order wins (the committed lines are sorted, so the apply-groups order is not known);
// multi-valued statements (vlan members) are the union. Statements the lab has no use for
// (descriptions, mtu, EVPN policy, LACP, ESI, ...) are ignored.
//
// Each port l<j>-xe<n> of leaf j's bridge stands for the Junos interface xe-0/0/<n>
// (lab.LeafPort), and gets from `interfaces xe-0/0/<n> unit 0 family ethernet-switching`:
//   - interface-mode trunk + vlan members bd-X ...: vlan_mode=trunk trunks=<their vlan-ids>;
//   - with native-vlan-id V (V the vlan-id of a configured vlan): vlan_mode=native-untagged tag=V
//     trunks=<members and V>, so untagged frames are VLAN V both ways;
//   - interface-mode access (Junos' default when no interface-mode is given) with one member:
//     vlan_mode=access tag=<its vlan-id>;
//   - nothing, or members naming a vlan that does not exist or has no vlan-id, or an access port
//     with more than one member: parked (vlan_mode=access tag=4095 trunks=[]: VLAN 4095 carries
//     nothing, so the port passes no frame).
//
// A member is a vlan name or, as on Junos, a vlan-id that a configured vlan has.
//
// LAG: a member interface (`gigether-options 802.3ad aeN`, or ether-options) forwards as the
// aeN interface is configured, as if that configuration were on the member itself. The lab runs
// no LACP: a member forwards as soon as it is configured (like `lacp force-up`). ESI
// multi-homing needs nothing in the lab's data plane: every leaf of an ESI forwards (all-active),
// without designated-forwarder election or split horizon; the lab has no loop to break because a
// host's PFs are separate NIC bridges.
//
// # Between leaves
//
// The lab's fabric carries VNI v as VLAN v on the spine bridge. The uplink lab.LeafUplink(j)
// trunks exactly the vlan-ids of the bridge domains that have `vxlan vni`. When a bridge domain's
// vlan-id differs from its VNI, the leaf translates with OpenFlow, as Neutron's OVS agent does
// between two bridges joined by patch ports:
//   - on the leaf bridge, frames coming in from the uplink: dl_vlan=<VNI> → mod_vlan_vid:<vlan-id>,
//     NORMAL for every bridge domain with a VNI, and every other frame from the uplink is dropped
//     (else VNI 12 would land in the bridge domain whose vlan-id is 12);
//   - on the spine bridge, frames coming in from the leaf (lab.SpineDownlink(j)): dl_vlan=<vlan-id>
//     → mod_vlan_vid:<VNI>, NORMAL for the bridge domains whose vlan-id differs from their VNI.
//
// The flows carry the cookie Cookie(j) and are replaced in one OpenFlow bundle per bridge; with
// no translation, the leaf's flows are removed and the bridges forward with NORMAL alone. The
// spine is assumed to forward with NORMAL and to trunk every VLAN on its downlinks. VNIs above
// 4094 cannot be carried by the lab's fabric: such a bridge domain stays on its leaf (reported).
// ovs-ofctl reaches a bridge through ovs-vswitchd's <bridge>.mgmt socket in Config.RunDir (the
// daemon's OVS_RUNDIR; by default the directory of the lab's database socket).
//
// A port nothing has configured yet forwards every VLAN (OVS's default): the lab applies each
// leaf's committed configuration once when it builds the bridge, so unconfigured ports start
// parked.
//
// # Problems
//
// Configuration the leaf cannot forward as asked (a configured interface that has no port on the
// bridge, a member naming an unknown vlan, two vlans with one vlan-id, ...) is reported in
// Result.Problems and Apply's error; everything else is still applied, as a switch keeps
// forwarding on its other ports.
package leaf

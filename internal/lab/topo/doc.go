// Package topo builds and removes the lab's topology (see package lab for the naming): the
// network namespaces, Open vSwitch with its userspace datapath in vfl-fabric (leaf bridges, the
// spine, one bridge per host PF as the NIC's embedded switch), the veth pairs that are PFs, VFs
// and cables, lldpd per leaf and per host, and each host's generated sysfs tree.
//
// Up makes everything in order and records each thing in <Dir>/state.json as soon as it exists,
// so Down, which needs only the directory, removes a lab after a crash of `vflink lab up` as well
// as after a clean start. Nothing is placed in the root namespace: every veth is created with both
// ends directly in their lab namespaces (`ip link add A netns X type veth peer name B netns Y`),
// IPv6 is off in the lab's namespaces (no link-local addresses), and the lab's daemons (OVS,
// lldpd) have their own run, log and database directories under Dir.
//
// Measured on the development machine (2 cores; the tests log the figures): for lab.Default
// (2 hosts x 2 PFs x 8 VFs, 2 leaves, 55 OVS ports) Up takes 0.7-0.9 s (OVS starts in about
// 0.1 s, the one ovs-vsctl transaction making every bridge and port about 0.2 s), every PF hears
// its leaf about 1 s after Up returns (Lab.WaitLLDP), and Down takes 0.1-0.75 s.
//
// What each daemon is and how it runs (Up runs these with an argv; sh only for three small
// scripts: a namespace's lo and IPv6 setting, the ethtool loop over a host's netdevs, and lldpd's
// mount setup below):
//
//	ovsdb-tool create <Dir>/ovs/conf.db /usr/share/openvswitch/vswitch.ovsschema
//	ip netns exec vfl-fabric ovsdb-server <Dir>/ovs/conf.db --remote=punix:<Dir>/ovs/db.sock \
//	    --pidfile=<Dir>/ovs/ovsdb-server.pid --detach --log-file=<Dir>/logs/ovsdb-server.log
//	ovs-vsctl --db=unix:<Dir>/ovs/db.sock --no-wait init
//	ip netns exec vfl-fabric ovs-vswitchd unix:<Dir>/ovs/db.sock --disable-system \
//	    --pidfile=<Dir>/ovs/ovs-vswitchd.pid --detach --log-file=<Dir>/logs/ovs-vswitchd.log
//	(with OVS_RUNDIR=<Dir>/ovs, so <bridge>.mgmt and the unixctl sockets are there too)
//
//	setsid ip netns exec <ns> unshare --mount --propagation private sh -c \
//	    'mount -t tmpfs vfl-lldpd /run && <Dir made visible again> && exec lldpd -d -L true \
//	     -u <Dir>/lldpd-<name>.socket -I <its interfaces>'
//	lldpcli -u <Dir>/lldpd-<name>.socket -c <Dir>/lldpd/<name>.conf   (hostname, tx-interval 1,
//	    Junos port names, resume)
//
// lldpd chroots into /run/lldpd and writes /run/lldpd.pid, so each runs in its own mount
// namespace with a private tmpfs over /run (the system's lldpd, if any, is untouched). When Dir
// is itself under /run (the default /run/vflink-lab), the script opens Dir before covering /run
// and binds it back from /proc/self/fd, so the control socket stays where lldpcli finds it.
// `-L true` keeps lldpd from running lldpcli on the system's /etc/lldpd.conf; lldpd then stays
// paused (sends nothing) until our `resume`, so no LLDPDU with the Linux port name ever leaves.
//
// Parking: every leaf port and every VF port starts as vlan_mode=access tag=4095 (ParkTag,
// Park), the convention the leaf and NIC backends share: such a port exchanges no frame with a
// configured port. Open vSwitch treats VLAN 4095 as an ordinary VLAN, though, so parked ports of
// one bridge do reach each other (measured here: two parked VFs of one NIC bridge ping), and the
// trunk-all uplinks carry VLAN 4095 between leaves. (vlan_mode=trunk trunks=[4095] would drop
// untagged frames at ingress; measured too, but the other backends read a parked port as access
// 4095.) For the same reason the leaf bridges do NOT get other_config:forward-bpdu=true: with it,
// a host's LLDPDU entering a parked leaf port is flooded in VLAN 4095 to the other parked ports
// and every host's PF hears the other hosts besides its leaf (measured with lab.Default's
// cabling, where two hosts share each leaf). The leaves' lldpd send and listen on the leaf
// ports' netdevs directly and need no forwarding by their bridge; the NIC bridges do forward LLDP
// (forward-bpdu=true), so a leaf's LLDPDU reaches the PF netdev.
//
// TX checksum offload is off on every host-side PF and VF netdev: the userspace datapath hands
// partial checksums on, and with offload on not even a TCP handshake between two VFs completes
// (measured). The setting belongs to the netdev and is kept when a VF moves into a VM namespace.
//
// Hand-written: it is glue between this repository's lab naming (package lab), its fake sysfs
// writer (sriov.WriteFakeSysfs) and the command-line tools an operator runs by hand (ip,
// ovs-vsctl, lldpcli, ethtool); no Go library drives OVSDB, lldpd or the kernel's namespaces
// more simply here, and each command Up runs can be replayed from a shell.
package topo

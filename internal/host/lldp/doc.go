// Package lldp finds, for each physical function (PF) of a host, the switch
// and switch port behind it, from LLDP (IEEE 802.1AB).
//
// Two sources sit behind one interface, [Source]:
//
//   - [Lldpd] asks a running lldpd, equivalent to
//     `lldpcli [-u SOCKET] -f json0 show neighbors details`. The json0 format
//     is used because plain `-f json` changes shape with the neighbor count.
//   - [Native] listens itself: one AF_PACKET socket per PF for ethertype
//     0x88cc (equivalent to `tcpdump -i PF ether proto 0x88cc`), decodes
//     frames with gopacket ([DecodeFrame]) and expires each neighbor when its
//     TTL runs out. It is used when lldpd does not run (lldpd would otherwise
//     be a second reader of the same frames, which is harmless but pointless).
//
// [Auto] picks lldpd when `lldpcli show configuration` answers, else Native.
// [Watch] polls a Source and reports a PF's link when it appears, changes
// (re-cabling) or expires, and logs a hint once when a PF hears no LLDP at
// all: Intel X710/E810 NICs run a firmware LLDP agent that consumes LLDP
// frames before the host sees them.
//
// Switch port names: many switches (Junos among them) send the port ID as a
// "local" ifIndex such as "517", so [Neighbor.SwitchPort] falls back to the
// port description. A per-device rewrite of port names belongs to the
// controller, not to this package.
//
// The package does no store or server I/O; the agent reports what Watch sees
// through the API client.
package lldp

import (
	"context"
	"regexp"
	"time"
)

// Neighbor is one LLDP neighbor heard on a local interface.
type Neighbor struct {
	// Interface is the local interface (the PF) the neighbor was heard on.
	Interface string
	// ChassisID identifies the switch; a MAC is rendered aa:bb:cc:dd:ee:ff,
	// a network address as an IP.
	ChassisID string
	// ChassisIDSubtype is "chassis", "ifalias", "port", "mac", "ip",
	// "ifname", "local" (lldpd calls chassis and port components
	// "unhandled").
	ChassisIDSubtype string
	// SystemName is the switch's name, e.g. "leaf1".
	SystemName string
	// PortID identifies the switch port.
	PortID string
	// PortIDSubtype is "ifalias", "port", "mac", "ip", "ifname", "agentcid"
	// or "local".
	PortIDSubtype string
	// PortDescription is the port description TLV, e.g. "xe-0/0/3".
	PortDescription string
	// MgmtAddress is the first management address, if any.
	MgmtAddress string
	// TTL is the time to live announced by the neighbor.
	TTL time.Duration
	// LastSeen is when the last LLDPDU was received (Native) or when lldpd
	// last listed the neighbor as alive (Lldpd).
	LastSeen time.Time
	// Changed is when this neighbor first appeared or last changed what it
	// announces (lldpd's "age"). When a PF has several neighbors, the most
	// recently changed one is its link: after re-cabling the new port wins
	// while the old one waits for its TTL.
	Changed time.Time
}

// ifnameRE matches strings that look like interface names: letters, then a
// digit, e.g. xe-0/0/3, Ethernet1/1, ge-0/0/0.0, swp1, eth0, Gi1/0/24.
var ifnameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z-]*[0-9][0-9A-Za-z/:._-]*$`)

// SwitchPort returns the best switch port name: PortID when its subtype names
// an interface (ifname, ifalias) or it looks like one, else PortDescription
// (Junos often sends a local ifIndex such as "517" as port ID). When neither
// helps, PortID is returned as is.
func (n Neighbor) SwitchPort() string {
	switch n.PortIDSubtype {
	case "ifname", "ifalias":
		if n.PortID != "" {
			return n.PortID
		}
	}
	if n.PortIDSubtype != "mac" && n.PortIDSubtype != "ip" && ifnameRE.MatchString(n.PortID) {
		return n.PortID
	}
	if n.PortDescription != "" {
		return n.PortDescription
	}
	return n.PortID
}

// sameLink reports whether a and b describe the same link as far as a report
// is concerned: same switch, same port, same announced names.
func sameLink(a, b Neighbor) bool {
	return a.ChassisID == b.ChassisID && a.ChassisIDSubtype == b.ChassisIDSubtype &&
		a.SystemName == b.SystemName && a.PortID == b.PortID &&
		a.PortIDSubtype == b.PortIDSubtype && a.PortDescription == b.PortDescription &&
		a.MgmtAddress == b.MgmtAddress
}

// Source lists the current, unexpired neighbors of every interface it knows.
type Source interface {
	Neighbors(ctx context.Context) ([]Neighbor, error)
}

// Runner is a Source that may need to run: Native reads frames in Run, Lldpd's
// Run only waits for ctx. Run returns nil when ctx is done.
type Runner interface {
	Source
	Run(ctx context.Context) error
}

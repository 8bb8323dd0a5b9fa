// Package render turns what one Junos EVPN-VXLAN leaf must carry for vflink (its attachments) into
// vflink's configuration groups, as canonical `set` lines: "set " + junosconf.Join(tokens), sorted.
// It is pure: no I/O, no clock, no randomness; the same input in any order renders the same lines.
//
// Groups (see Groups) and what goes in them:
//
//   - __vflink_evpn__: per network (VNI) the EVPN vni-options vrf-target, an import and an export
//     policy-statement matching the network's community, the community, and switch-options
//     vrf-import; once: `protocols evpn encapsulation vxlan` and `extended-vni-list all`.
//     vtep-source-interface and route-distinguisher are not rendered: fabric onboarding owns them.
//   - __vflink_access__: per interface carrying networks (a physical interface, or ae<N> of a port
//     group) a description, mtu 9192, a trunk ethernet-switching unit 0 with `vlan members bd-<VNI>`
//     for every network and `native-vlan-id` for the (at most one) untagged network; per network a
//     `vlans bd-<VNI>` with description, vlan-id and vxlan vni; once `protocols evpn multicast-mode
//     ingress-replication`.
//   - __vflink_lag__: per port group with a member on the device the members' `gigether-options
//     802.3ad ae<N>`, LACP active and fast on ae<N>; once the chassis aggregated-devices count.
//   - __vflink_multihoming__: per port group spanning two or more devices (an ESI-LAG) the ESI
//     (see ESI), all-active, and an LACP system-id derived from the ESI (see LACPSystemID) with
//     system-priority 100 and admin-key 1, so every device of the group announces the same LACP
//     partner to the server. A port group within one device is a plain LAG.
//
// Every group with at least one statement is applied with a top-level `apply-groups`.
//
// # Aggregated interface numbering
//
// The ae<N> of a port group is computed on each device, deterministically from that device's
// attachments alone: the port groups (identified by their sorted, de-duplicated member list
// "dev:iface,dev:iface,...") are processed in sorted order of that list; a group's N is the last
// number in the name of its lowest-sorted (string order) member interface on this device
// (xe-0/0/3 → ae3, xe-0/0/3:1 → ae1); when that N is already taken on the device, by an earlier
// group or by an interface aeN an attachment names directly, the group gets the lowest free N
// (from 0). In the common case (the lowest members of the device's groups end in different
// numbers, and no attachment names that aeN directly) N is therefore the port number and does not
// change when other groups come and go. The numbers are per device: the members of an ESI-LAG on
// two devices may be ae3 on one and ae7 on the other; the ESI is what ties them together.
//
// # Trust
//
// Interface names are identifiers: they are checked against the Junos interface name syntax
// (`(xe|ge|et|mge)-F/P/N[:C]` with numbers 0-999, or `aeN` with N 0-9999, no leading zeros) and
// never quoted; anything else is an error naming it. Network names and ids and device names are
// user strings: they only ever appear as the value of a `description`, through junosconf.Quote,
// so they cannot end the statement or start another.
//
// Collapsing: attachments for the same (interface or port group, VNI) render once; the network
// is untagged there when any of them is Native. A network is identified by its VNI: one VNI is
// one network id with one VLAN on the device, and one VLAN is one VNI.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/junosconf"
)

// Group names.
const (
	GroupEVPN        = "__vflink_evpn__"
	GroupAccess      = "__vflink_access__"
	GroupLAG         = "__vflink_lag__"
	GroupMultihoming = "__vflink_multihoming__"
)

// Groups lists the vflink group names in a stable order.
var Groups = []string{GroupEVPN, GroupAccess, GroupLAG, GroupMultihoming}

// DefaultASN is the AS number used in route targets when the device has none.
const DefaultASN = 64512

// Limits of the values the renderer accepts.
const (
	MinVLAN = 1
	MaxVLAN = 4094
	MinVNI  = 1
	MaxVNI  = 16777214
	// MTU of every interface vflink configures (jumbo, VXLAN overhead included).
	MTU = 9192
	// minDeviceCount is the least aggregated-devices count rendered (as Contrail does).
	minDeviceCount = 128
)

// Input is one device and what it must carry.
type Input struct {
	Device api.Device // Name, ASN (0 → 64512)
	// Attachments is every attachment that touches this device: Device == name, or a PortGroup
	// with a member on it (PortGroup lists ALL members, on every device). Attachments that do not
	// touch the device are ignored.
	Attachments []api.Attachment
}

// num is a number as Junos writes it in a physical interface name: no leading zeros, at most 3
// digits; aeNum the number of an aggregated interface, at most 4 digits.
const (
	num   = `(?:0|[1-9][0-9]{0,2})`
	aeNum = `(?:0|[1-9][0-9]{0,3})`
)

var (
	physicalRE = regexp.MustCompile(`^(?:xe|ge|et|mge)-` + num + `/` + num + `/` + num + `(?::` + num + `)?$`)
	aeRE       = regexp.MustCompile(`^ae(` + aeNum + `)$`)
	lastNumRE  = regexp.MustCompile(`[0-9]+$`)
)

const (
	physicalSyntax = "(xe|ge|et|mge)-F/P/N[:C] with numbers 0-999 without leading zeros"
	ifaceSyntax    = "want a physical interface " + physicalSyntax + " or aeN with N 0-9999"
)

// network is one VNI on the device.
type network struct {
	vni, vlan int
	id, name  string
}

func (n network) String() string {
	return fmt.Sprintf("network %q (id %q, VNI %d)", n.name, n.id, n.vni)
}

// target is an interface carrying networks: a physical interface or aeN, or a port group's ae.
type target struct {
	name   string // interface name; for a port group filled in when ae numbers are assigned
	group  *portGroup
	vnis   map[int]bool
	native int // VNI of the untagged network, 0 for none
}

// portGroup is a LAG (or ESI-LAG) with at least one member on the device.
type portGroup struct {
	key     string       // "dev:iface,dev:iface,..." sorted, de-duplicated
	members []api.Member // all members, sorted by "dev:iface"
	local   []string     // member interfaces on this device, sorted
	multi   bool         // members on two or more devices
	ae      int
}

// Junos returns the device's vflink configuration as canonical set lines, sorted and
// deterministic (independent of the order of the attachments and of port group members), or an
// error naming the bad input. A device with no attachments renders nothing (an empty slice).
func Junos(in Input) ([]string, error) {
	dev := in.Device.Name
	atts, err := normalize(in.Attachments)
	if err != nil {
		return nil, fmt.Errorf("render device %q: %w", dev, err)
	}
	if dev == "" && len(atts) > 0 {
		return nil, fmt.Errorf("render: the device has no name: want the name its attachments carry")
	}
	r := renderer{
		dev:      dev,
		asn:      in.Device.ASN,
		nets:     map[int]*network{},
		byVLAN:   map[int]*network{},
		ifaces:   map[string]*target{},
		groups:   map[string]*target{},
		memberOf: map[string]*portGroup{},
	}
	if r.asn == 0 {
		r.asn = DefaultASN
	}
	for _, a := range atts {
		if err := r.add(a); err != nil {
			return nil, fmt.Errorf("render device %q: %w", dev, err)
		}
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("render device %q: %w", dev, err)
	}
	r.number()
	return r.lines(), nil
}

// normalize copies the attachments with sorted, de-duplicated port group members and sorts them,
// so that everything after (including which error is reported first) is order-independent.
func normalize(in []api.Attachment) ([]api.Attachment, error) {
	out := make([]api.Attachment, 0, len(in))
	for _, a := range in {
		if len(a.PortGroup) > 0 {
			if a.Interface != "" {
				return nil, fmt.Errorf("attachment of network %q has both interface %q and a port group %s: want one of them",
					a.NetworkID, a.Interface, memberKey(a.PortGroup))
			}
			ms := slices.Clone(a.PortGroup)
			sortMembers(ms)
			a.PortGroup = slices.Compact(ms)
		}
		a.Ports = nil
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return lessAttachment(out[i], out[j]) })
	return out, nil
}

func lessAttachment(a, b api.Attachment) bool {
	if a.Interface != b.Interface {
		return a.Interface < b.Interface
	}
	if ka, kb := memberKey(a.PortGroup), memberKey(b.PortGroup); ka != kb {
		return ka < kb
	}
	if a.Device != b.Device {
		return a.Device < b.Device
	}
	if a.VNI != b.VNI {
		return a.VNI < b.VNI
	}
	if a.VLAN != b.VLAN {
		return a.VLAN < b.VLAN
	}
	if a.Native != b.Native {
		return !a.Native
	}
	if a.NetworkID != b.NetworkID {
		return a.NetworkID < b.NetworkID
	}
	return a.NetworkName < b.NetworkName
}

func sortMembers(ms []api.Member) {
	sort.Slice(ms, func(i, j int) bool { return memberString(ms[i]) < memberString(ms[j]) })
}

func memberString(m api.Member) string { return m.Device + ":" + m.Interface }

// memberKey is "dev:iface,dev:iface,..." of members in the given order.
func memberKey(ms []api.Member) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = memberString(m)
	}
	return strings.Join(s, ",")
}

type renderer struct {
	dev      string
	asn      uint32
	nets     map[int]*network   // by VNI
	byVLAN   map[int]*network   // by VLAN
	ifaces   map[string]*target // plain interfaces by name
	groups   map[string]*target // port groups by member key
	memberOf map[string]*portGroup
}

// add records one attachment, checking it against what is recorded already.
func (r *renderer) add(a api.Attachment) error {
	var t *target
	if len(a.PortGroup) > 0 {
		local := false
		for _, m := range a.PortGroup {
			local = local || m.Device == r.dev
		}
		if !local {
			return nil
		}
		for _, m := range a.PortGroup {
			if m.Device == "" || strings.Contains(m.Device, ",") {
				return fmt.Errorf("port group %s of network %q: member device name %q is empty or has a comma",
					memberKey(a.PortGroup), a.NetworkID, m.Device)
			}
			if !physicalRE.MatchString(m.Interface) {
				return fmt.Errorf("port group %s of network %q: member interface %q of device %q is not a physical Junos interface name (%s)",
					memberKey(a.PortGroup), a.NetworkID, m.Interface, m.Device, "want "+physicalSyntax)
			}
		}
		if err := checkNumbers(a); err != nil {
			return err
		}
		key := memberKey(a.PortGroup)
		t = r.groups[key]
		if t == nil {
			g := &portGroup{key: key, members: a.PortGroup}
			devs := map[string]bool{}
			for _, m := range a.PortGroup {
				devs[m.Device] = true
				if m.Device == r.dev {
					g.local = append(g.local, m.Interface)
				}
			}
			g.multi = len(devs) > 1
			sort.Strings(g.local)
			t = &target{group: g, vnis: map[int]bool{}}
			r.groups[key] = t
		}
	} else {
		if a.Device != r.dev {
			return nil
		}
		if !physicalRE.MatchString(a.Interface) && !aeRE.MatchString(a.Interface) {
			return fmt.Errorf("interface %q of network %q is not a Junos interface name (%s)", a.Interface, a.NetworkID, ifaceSyntax)
		}
		if err := checkNumbers(a); err != nil {
			return err
		}
		t = r.ifaces[a.Interface]
		if t == nil {
			t = &target{name: a.Interface, vnis: map[int]bool{}}
			r.ifaces[a.Interface] = t
		}
	}
	n, err := r.network(a)
	if err != nil {
		return err
	}
	t.vnis[n.vni] = true
	if a.Native {
		if t.native != 0 && t.native != n.vni {
			return fmt.Errorf("%s and %s both want to be native (untagged) on %s: want at most one",
				r.nets[t.native], n, t.describe())
		}
		t.native = n.vni
	}
	return nil
}

// describe names a target in errors.
func (t *target) describe() string {
	if t.group != nil {
		return "port group " + t.group.key
	}
	return "interface " + t.name
}

func checkNumbers(a api.Attachment) error {
	if a.VLAN < MinVLAN || a.VLAN > MaxVLAN {
		return fmt.Errorf("network %q: VLAN %d is out of range %d-%d", a.NetworkID, a.VLAN, MinVLAN, MaxVLAN)
	}
	if a.VNI < MinVNI || a.VNI > MaxVNI {
		return fmt.Errorf("network %q: VNI %d is out of range %d-%d", a.NetworkID, a.VNI, MinVNI, MaxVNI)
	}
	return nil
}

// network records the attachment's network (by VNI), checking that a VNI is one network with one
// VLAN on the device and that a VLAN is one VNI.
func (r *renderer) network(a api.Attachment) (*network, error) {
	want := network{vni: a.VNI, vlan: a.VLAN, id: a.NetworkID, name: a.NetworkName}
	if n := r.nets[a.VNI]; n != nil {
		switch {
		case n.id != a.NetworkID:
			return nil, fmt.Errorf("VNI %d is wanted by two networks, %q and %q: want one network per VNI", a.VNI, n.id, a.NetworkID)
		case n.vlan != a.VLAN:
			return nil, fmt.Errorf("%s wants two VLANs on the device, %d and %d: want one", n, n.vlan, a.VLAN)
		}
		// same network, names differ (a rename in flight): take the least non-empty one
		if n.name == "" || a.NetworkName != "" && a.NetworkName < n.name {
			n.name = a.NetworkName
		}
		return n, nil
	}
	if o := r.byVLAN[a.VLAN]; o != nil {
		return nil, fmt.Errorf("VLAN %d is wanted on the device by %s and by %s with different VNIs: want one VNI per VLAN",
			a.VLAN, o, want)
	}
	n := &want
	r.nets[a.VNI] = n
	r.byVLAN[a.VLAN] = n
	return n, nil
}

// check verifies the device-wide invariants: a physical interface is a member of at most one port
// group, and not also an interface carrying networks by itself; a 4-byte AS number leaves room
// for the VNI in the route target.
func (r *renderer) check() error {
	for _, k := range sortedKeys(r.groups) {
		g := r.groups[k].group
		for _, ifc := range g.local {
			if o := r.memberOf[ifc]; o != nil && o != g {
				return fmt.Errorf("interface %s is a member of two port groups, %s and %s: want at most one", ifc, o.key, g.key)
			}
			r.memberOf[ifc] = g
			if _, ok := r.ifaces[ifc]; ok {
				return fmt.Errorf("interface %s is a member of port group %s and also carries networks by itself: want one or the other", ifc, g.key)
			}
		}
	}
	if r.asn > 65535 {
		for _, v := range sortedKeys(r.nets) {
			if v > 65535 {
				return fmt.Errorf("%s: VNI %d does not fit a route target of 4-byte AS number %d (at most 65535)", r.nets[v], v, r.asn)
			}
		}
	}
	return nil
}

// number assigns ae numbers to the port groups (see the package comment).
func (r *renderer) number() {
	taken := map[int]bool{}
	for name := range r.ifaces {
		if m := aeRE.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			taken[n] = true
		}
	}
	for _, k := range sortedKeys(r.groups) {
		t := r.groups[k]
		n, _ := strconv.Atoi(lastNumRE.FindString(t.group.local[0])) // validated: ends in at most 3 digits
		if taken[n] {
			n = 0
			for taken[n] {
				n++
			}
		}
		taken[n] = true
		t.group.ae = n
		t.name = "ae" + strconv.Itoa(n)
	}
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// lines renders the recorded state.
func (r *renderer) lines() []string {
	out := []string{}
	used := map[string]bool{}
	set := func(group string, toks ...string) {
		used[group] = true
		out = append(out, "set "+junosconf.Join(append([]string{"groups", group}, toks...)))
	}

	// evpn and the networks' vlans
	vnis := sortedKeys(r.nets)
	if len(vnis) > 0 {
		set(GroupEVPN, "protocols", "evpn", "encapsulation", "vxlan")
		set(GroupEVPN, "protocols", "evpn", "extended-vni-list", "all")
		set(GroupAccess, "protocols", "evpn", "multicast-mode", "ingress-replication")
	}
	for _, v := range vnis {
		n := r.nets[v]
		vni := strconv.Itoa(v)
		bd, comm := "bd-"+vni, "vflink-bd-"+vni
		imp, exp := comm+"-import", comm+"-export"
		rt := routeTarget(r.asn, v)
		set(GroupEVPN, "protocols", "evpn", "vni-options", "vni", vni, "vrf-target", rt)
		set(GroupEVPN, "policy-options", "policy-statement", imp, "term", "t1", "from", "community", comm)
		set(GroupEVPN, "policy-options", "policy-statement", imp, "term", "t1", "then", "accept")
		set(GroupEVPN, "policy-options", "policy-statement", exp, "term", "t1", "then", "community", "add", comm)
		set(GroupEVPN, "policy-options", "policy-statement", exp, "term", "t1", "then", "accept")
		set(GroupEVPN, "policy-options", "community", comm, "members", rt)
		set(GroupEVPN, "switch-options", "vrf-import", imp)
		set(GroupAccess, "vlans", bd, "description", "vflink network "+n.name+" ("+n.id+")")
		set(GroupAccess, "vlans", bd, "vlan-id", strconv.Itoa(n.vlan))
		set(GroupAccess, "vlans", bd, "vxlan", "vni", vni)
	}

	// interfaces carrying networks
	var targets []*target
	for _, t := range r.ifaces {
		targets = append(targets, t)
	}
	for _, t := range r.groups {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].name < targets[j].name })
	for _, t := range targets {
		if len(t.vnis) == 0 {
			continue
		}
		var desc string
		if t.group != nil {
			desc = fmt.Sprintf("vflink: port group %s, %s", strings.ReplaceAll(t.group.key, ",", " "), plural(len(t.vnis), "network"))
		} else {
			desc = "vflink: " + plural(len(t.vnis), "network")
		}
		set(GroupAccess, "interfaces", t.name, "description", desc)
		set(GroupAccess, "interfaces", t.name, "mtu", strconv.Itoa(MTU))
		set(GroupAccess, "interfaces", t.name, "unit", "0", "family", "ethernet-switching", "interface-mode", "trunk")
		for _, v := range sortedKeys(t.vnis) {
			set(GroupAccess, "interfaces", t.name, "unit", "0", "family", "ethernet-switching", "vlan", "members", "bd-"+strconv.Itoa(v))
		}
		if t.native != 0 {
			set(GroupAccess, "interfaces", t.name, "native-vlan-id", strconv.Itoa(r.nets[t.native].vlan))
		}
	}

	// LAGs and ESI-LAGs
	maxAE := -1
	for _, t := range targets {
		if m := aeRE.FindStringSubmatch(t.name); m != nil {
			n, _ := strconv.Atoi(m[1])
			maxAE = max(maxAE, n)
		}
		g := t.group
		if g == nil {
			continue
		}
		for _, ifc := range g.local {
			set(GroupLAG, "interfaces", ifc, "description", "vflink: member of "+t.name)
			set(GroupLAG, "interfaces", ifc, "gigether-options", "802.3ad", t.name)
		}
		set(GroupLAG, "interfaces", t.name, "aggregated-ether-options", "lacp", "active")
		set(GroupLAG, "interfaces", t.name, "aggregated-ether-options", "lacp", "periodic", "fast")
		if g.multi {
			esi := ESI(g.members)
			set(GroupMultihoming, "interfaces", t.name, "esi", esi)
			set(GroupMultihoming, "interfaces", t.name, "esi", "all-active")
			set(GroupMultihoming, "interfaces", t.name, "aggregated-ether-options", "lacp", "system-id", LACPSystemID(esi))
			set(GroupMultihoming, "interfaces", t.name, "aggregated-ether-options", "lacp", "system-priority", "100")
			set(GroupMultihoming, "interfaces", t.name, "aggregated-ether-options", "lacp", "admin-key", "1")
		}
	}
	if len(r.groups) > 0 {
		set(GroupLAG, "chassis", "aggregated-devices", "ethernet", "device-count", strconv.Itoa(max(minDeviceCount, maxAE+1)))
	}

	for _, g := range Groups {
		if used[g] {
			out = append(out, "set "+junosconf.Join([]string{"apply-groups", g}))
		}
	}
	sort.Strings(out)
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// routeTarget is the network's EVPN route target: target:<asn>:<vni>, or target:<asn>L:<vni> for a
// 4-byte AS number.
func routeTarget(asn uint32, vni int) string {
	if asn > 65535 {
		return fmt.Sprintf("target:%dL:%d", asn, vni)
	}
	return fmt.Sprintf("target:%d:%d", asn, vni)
}

// ESI returns the Ethernet Segment Identifier of a port group: type 0 (operator-configured), that
// is "00" followed by the first 9 octets of the SHA-256 of the group's sorted, de-duplicated
// member list "dev:iface,dev:iface,...", as 10 colon-separated lowercase hex octets. It depends on
// the member set only, so every device of the group derives the same ESI.
func ESI(members []api.Member) string {
	ms := slices.Clone(members)
	sortMembers(ms)
	ms = slices.Compact(ms)
	sum := sha256.Sum256([]byte(memberKey(ms)))
	return colonHex(append([]byte{0}, sum[:9]...))
}

// LACPSystemID returns the LACP system-id the devices of an ESI-LAG announce: octets 4-9
// (counting from 0: the last six) of the ESI, with the locally-administered bit set and the
// multicast bit cleared. It returns "" when esi is not 10 colon-separated hex octets.
func LACPSystemID(esi string) string {
	parts := strings.Split(esi, ":")
	if len(parts) != 10 {
		return ""
	}
	b := make([]byte, 0, 10)
	for _, p := range parts {
		if len(p) != 2 {
			return ""
		}
		o, err := hex.DecodeString(p)
		if err != nil {
			return ""
		}
		b = append(b, o[0])
	}
	id := b[4:]
	id[0] = id[0]&^0x01 | 0x02
	return colonHex(id)
}

func colonHex(b []byte) string {
	s := make([]string, len(b))
	for i, o := range b {
		s[i] = fmt.Sprintf("%02x", o)
	}
	return strings.Join(s, ":")
}

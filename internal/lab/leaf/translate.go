package leaf

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vflink/vflink/internal/fabric/junosconf"
	"github.com/vflink/vflink/internal/lab"
)

// ParkTag is the VLAN of a parked port (vlan_mode=access): OVS carries nothing on it.
const ParkTag = 4095

// Port modes (OVS vlan_mode).
const (
	ModeAccess         = "access"
	ModeTrunk          = "trunk"
	ModeNativeUntagged = "native-untagged"
)

// PortSetting is what one port of the leaf bridge is set to.
type PortSetting struct {
	Port      string // OVS port: "l1-xe3", or the uplink "up-l1"
	Interface string // the Junos interface it stands for ("xe-0/0/3"); "" for the uplink
	Mode      string // OVS vlan_mode: ModeAccess, ModeTrunk or ModeNativeUntagged
	Tag       int    // access or native VLAN; ParkTag when parked; 0 for a trunk
	Trunks    []int  // sorted; nil for an access port
	Why       string // how it came about, for a person: "member of ae3", "parked: ..."
}

// Parked reports whether the port passes no traffic.
func (p PortSetting) Parked() bool { return p.Mode == ModeAccess && p.Tag == ParkTag }

// String is the port's OVS settings: "l1-xe3 vlan_mode=native-untagged tag=9 trunks=7,9".
func (p PortSetting) String() string {
	s := p.Port + " vlan_mode=" + p.Mode
	if p.Tag != 0 {
		s += " tag=" + strconv.Itoa(p.Tag)
	}
	if p.Mode != ModeAccess {
		s += " trunks=" + joinInts(p.Trunks)
	}
	return s
}

// Flow is one OpenFlow flow of the uplink's VLAN/VNI translation, without its cookie.
type Flow struct {
	Bridge string // the leaf's bridge or lab.SpineBridge
	Spec   string // ovs-ofctl flow syntax: "priority=100,in_port=up-l1,dl_vlan=7,actions=mod_vlan_vid:12,NORMAL"
}

// Result is what Translate computes and Apply sets.
type Result struct {
	Bridge string        // the leaf's bridge (lab.LeafName)
	Ports  []PortSetting // every xe port of the bridge and the uplink, by port name
	// Flows is the uplink's translation; empty when every bridge domain's vlan-id is its VNI.
	Flows []Flow
	// Problems is configuration the leaf cannot forward as asked; the rest is applied.
	Problems []string
}

// Port returns the setting of the named port.
func (r Result) Port(name string) (PortSetting, bool) {
	for _, p := range r.Ports {
		if p.Port == name {
			return p, true
		}
	}
	return PortSetting{}, false
}

// ifConf is the ethernet-switching configuration of one interface.
type ifConf struct {
	mode    string   // interface-mode; "" when not set
	members []string // vlan members, sorted
	native  int      // native-vlan-id; 0 when not set
	lag     string   // the aeN it is a member of
}

func (c *ifConf) switching() bool { return c.mode != "" || len(c.members) > 0 || c.native != 0 }

// bd is one bridge domain (`vlans <name>`).
type bd struct {
	name   string
	vlan   int // 0 when none
	vni    int
	hasVNI bool
}

var xeRE = regexp.MustCompile(`^xe-0/0/([0-9]{1,3})$`)

// Effective returns the configuration that takes effect from committed set lines: top-level
// statements and the statements of the groups named by apply-groups (see the package comment for
// the precedence). Lines other than "set" and statements junosconf does not know are skipped; a
// line that does not tokenize is an error.
func Effective(committed []string) (*junosconf.Config, error) {
	var top [][]string
	groups := map[string][][]string{}
	applied := map[string]bool{}
	for _, line := range committed {
		toks, err := junosconf.Tokenize(line)
		if err != nil {
			return nil, fmt.Errorf("committed line %q: %w", line, err)
		}
		if len(toks) < 2 || toks[0] != "set" {
			continue
		}
		toks = toks[1:]
		switch {
		case toks[0] == "groups" && len(toks) >= 3:
			groups[toks[1]] = append(groups[toks[1]], toks[2:])
		case toks[0] == "apply-groups" && len(toks) == 2:
			applied[toks[1]] = true
		default:
			top = append(top, toks)
		}
	}
	eff := junosconf.NewConfig()
	names := slices.Sorted(maps.Keys(applied))
	// Set replaces a single value: the group of lowest priority first, top level last.
	for i := len(names) - 1; i >= 0; i-- {
		for _, st := range groups[names[i]] {
			_ = eff.Set(st) // unknown statements are ignored
		}
	}
	for _, st := range top {
		_ = eff.Set(st)
	}
	return eff, nil
}

// Translate computes leaf cfg.Leaf's bridge settings from its committed configuration, given the
// names of the ports its bridge has (pure). Every port named like lab.LeafPort(j, n) gets a
// setting, and so does the uplink when the bridge has it; other ports are left alone. The error
// is only for lines that are not Junos set syntax.
func Translate(cfg Config, committed []string, bridgePorts []string) (Result, error) {
	j := cfg.Leaf
	res := Result{Bridge: lab.LeafName(j)}
	eff, err := Effective(committed)
	if err != nil {
		return res, fmt.Errorf("%s: %w", res.Bridge, err)
	}
	problem := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }

	bds := map[string]*bd{}
	ifs := map[string]*ifConf{}
	getIf := func(name string) *ifConf {
		c := ifs[name]
		if c == nil {
			c = &ifConf{}
			ifs[name] = c
		}
		return c
	}
	getBD := func(name string) *bd {
		b := bds[name]
		if b == nil {
			b = &bd{name: name}
			bds[name] = b
		}
		return b
	}
	for _, st := range eff.Statements() {
		switch {
		case len(st) >= 2 && st[0] == "interfaces":
			c, rest := getIf(st[1]), st[2:]
			switch {
			case len(rest) == 2 && rest[0] == "native-vlan-id":
				c.native, _ = strconv.Atoi(rest[1])
			case len(rest) == 3 && (rest[0] == "gigether-options" || rest[0] == "ether-options") && rest[1] == "802.3ad":
				if c.lag == "" {
					c.lag = rest[2]
				}
			case len(rest) >= 6 && rest[0] == "unit" && rest[1] == "0" && rest[2] == "family" && rest[3] == "ethernet-switching":
				switch {
				case len(rest) == 6 && rest[4] == "interface-mode":
					c.mode = rest[5]
				case len(rest) == 7 && rest[4] == "vlan" && rest[5] == "members":
					c.members = append(c.members, rest[6])
				}
			}
		case len(st) == 4 && st[0] == "vlans" && st[2] == "vlan-id":
			getBD(st[1]).vlan, _ = strconv.Atoi(st[3])
		case len(st) == 5 && st[0] == "vlans" && st[2] == "vxlan" && st[3] == "vni":
			b := getBD(st[1])
			b.vni, _ = strconv.Atoi(st[4])
			b.hasVNI = true
		}
	}

	// Bridge domains that can forward: a vlan-id 1-4094 no other vlan has.
	byVLAN := map[int]*bd{}
	usable := map[string]*bd{}
	for _, name := range slices.Sorted(maps.Keys(bds)) {
		b := bds[name]
		switch {
		case b.vlan == 0:
			// A vlan without vlan-id forwards nothing in the lab; members naming it are reported.
		case b.vlan > 4094:
			problem("vlans %s vlan-id %d: not a VLAN 1-4094", name, b.vlan)
		case byVLAN[b.vlan] != nil:
			problem("vlans %s and %s both have vlan-id %d: %s is not forwarded", byVLAN[b.vlan].name, name, b.vlan, name)
		default:
			byVLAN[b.vlan] = b
			usable[name] = b
		}
	}

	// Ports of the bridge that stand for xe interfaces: lab.LeafPort(j, n).
	portRE := regexp.MustCompile(`xe([0-9]{1,3})$`)
	onBridge := map[string]bool{}
	uplink := lab.LeafUplink(j)
	hasUplink := false
	for _, p := range bridgePorts {
		onBridge[p] = true
		if p == uplink {
			hasUplink = true
		}
	}

	// Every configured physical interface needs its port.
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(ifs)) {
		if strings.HasPrefix(name, "ae") {
			continue
		}
		m := xeRE.FindStringSubmatch(name)
		if m == nil {
			missing = append(missing, fmt.Sprintf("%s (the lab's leaves have xe-0/0/<n> ports only)", name))
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if p := lab.LeafPort(j, n); !onBridge[p] {
			missing = append(missing, fmt.Sprintf("%s (no port %s)", name, p))
		}
	}
	if len(missing) > 0 {
		problem("interfaces configured on %s but not on its bridge: %s", res.Bridge, strings.Join(missing, ", "))
	}

	for _, p := range slices.Sorted(slices.Values(bridgePorts)) {
		m := portRE.FindStringSubmatch(p)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if lab.LeafPort(j, n) != p {
			continue
		}
		ifname := "xe-0/0/" + strconv.Itoa(n)
		s, prob := portSetting(ifname, ifs, usable, byVLAN)
		s.Port = p
		if prob != "" {
			problem("%s", prob)
		}
		res.Ports = append(res.Ports, s)
	}

	// The uplink and the translation.
	var vniBDs []*bd
	vniOwner := map[int]string{}
	for _, name := range slices.Sorted(maps.Keys(usable)) {
		b := usable[name]
		if !b.hasVNI {
			continue
		}
		switch {
		case b.vni < 1 || b.vni > 4094:
			problem("vlans %s vxlan vni %d: the lab's fabric carries VNIs 1-4094 only (as VLANs on the spine): %s stays on %s", name, b.vni, name, res.Bridge)
		case vniOwner[b.vni] != "":
			problem("vlans %s and %s both have vxlan vni %d: %s stays on %s", vniOwner[b.vni], name, b.vni, name, res.Bridge)
		default:
			vniOwner[b.vni] = name
			vniBDs = append(vniBDs, b)
		}
	}
	if !hasUplink {
		if len(vniBDs) > 0 {
			problem("the bridge %s has no uplink %s: VNIs stay on the leaf", res.Bridge, uplink)
		}
	} else {
		up := PortSetting{Port: uplink, Mode: ModeTrunk}
		translate := false
		for _, b := range vniBDs {
			up.Trunks = append(up.Trunks, b.vlan)
			if b.vlan != b.vni {
				translate = true
			}
		}
		slices.Sort(up.Trunks)
		if len(up.Trunks) == 0 {
			up = park(uplink, "", "no vlan has a vxlan vni")
		} else {
			up.Why = "vlans with a vxlan vni"
		}
		res.Ports = append(res.Ports, up)
		slices.SortFunc(res.Ports, func(a, b PortSetting) int { return strings.Compare(a.Port, b.Port) })
		if translate {
			res.Flows = flows(j, vniBDs)
		}
	}
	return res, nil
}

// flows is the uplink's translation for leaf j (see the package comment).
func flows(j int, vniBDs []*bd) []Flow {
	leaf, up, dn := lab.LeafName(j), lab.LeafUplink(j), lab.SpineDownlink(j)
	byVNI := slices.Clone(vniBDs)
	slices.SortFunc(byVNI, func(a, b *bd) int { return a.vni - b.vni })
	var out []Flow
	for _, b := range byVNI {
		act := "NORMAL"
		if b.vlan != b.vni {
			act = fmt.Sprintf("mod_vlan_vid:%d,NORMAL", b.vlan)
		}
		out = append(out, Flow{Bridge: leaf, Spec: fmt.Sprintf("priority=100,in_port=%s,dl_vlan=%d,actions=%s", up, b.vni, act)})
	}
	out = append(out, Flow{Bridge: leaf, Spec: fmt.Sprintf("priority=90,in_port=%s,actions=drop", up)})
	byVLAN := slices.Clone(vniBDs)
	slices.SortFunc(byVLAN, func(a, b *bd) int { return a.vlan - b.vlan })
	for _, b := range byVLAN {
		if b.vlan != b.vni {
			out = append(out, Flow{Bridge: lab.SpineBridge, Spec: fmt.Sprintf("priority=100,in_port=%s,dl_vlan=%d,actions=mod_vlan_vid:%d,NORMAL", dn, b.vlan, b.vni)})
		}
	}
	return out
}

func park(port, ifname, why string) PortSetting {
	return PortSetting{Port: port, Interface: ifname, Mode: ModeAccess, Tag: ParkTag, Why: "parked: " + why}
}

// portSetting is the setting of the port standing for ifname, and a problem to report when the
// configuration asks for something the leaf cannot do.
func portSetting(ifname string, ifs map[string]*ifConf, usable map[string]*bd, byVLAN map[int]*bd) (PortSetting, string) {
	c := ifs[ifname]
	var from []string
	if c != nil && c.lag != "" {
		from = append(from, "member of "+c.lag)
		ae := ifs[c.lag]
		if ae == nil || !ae.switching() {
			return park("", ifname, fmt.Sprintf("member of %s, which has no ethernet-switching configuration", c.lag)), ""
		}
		c = ae
	}
	if c == nil || !c.switching() {
		return park("", ifname, "no ethernet-switching configuration"), ""
	}
	name := ifname
	if len(from) > 0 {
		name = ifname + " (" + from[0] + ")"
	}
	var vlans []int
	var unknownNames []string
	for _, m := range c.members {
		if b := usable[m]; b != nil {
			vlans = append(vlans, b.vlan)
			continue
		}
		if n, err := strconv.Atoi(m); err == nil && byVLAN[n] != nil {
			vlans = append(vlans, n)
			continue
		}
		unknownNames = append(unknownNames, m)
	}
	if len(unknownNames) > 0 {
		why := fmt.Sprintf("vlan members %s: no such vlan with a vlan-id", strings.Join(unknownNames, ", "))
		return park("", ifname, why), fmt.Sprintf("interfaces %s %s: parked", name, why)
	}
	slices.Sort(vlans)
	vlans = slices.Compact(vlans)
	mode := c.mode
	if mode == "" {
		mode = "access" // Junos' default interface-mode
	}
	var notes []string
	prob := ""
	s := PortSetting{Interface: ifname}
	switch mode {
	case "access":
		if len(vlans) != 1 {
			why := fmt.Sprintf("interface-mode access needs exactly one vlan member, it has %d", len(vlans))
			return park("", ifname, why), fmt.Sprintf("interfaces %s %s: parked", name, why)
		}
		s.Mode, s.Tag = ModeAccess, vlans[0]
	default: // trunk
		s.Mode, s.Trunks = ModeTrunk, vlans
		if c.native != 0 {
			if byVLAN[c.native] != nil {
				s.Mode, s.Tag = ModeNativeUntagged, c.native
				if !slices.Contains(s.Trunks, c.native) {
					s.Trunks = append(s.Trunks, c.native)
					slices.Sort(s.Trunks)
				}
				notes = append(notes, fmt.Sprintf("untagged is VLAN %d", c.native))
			} else {
				why := fmt.Sprintf("native-vlan-id %d is no vlan's vlan-id: untagged frames are dropped", c.native)
				notes = append(notes, why)
				prob = fmt.Sprintf("interfaces %s %s", name, why)
			}
		}
		if len(s.Trunks) == 0 {
			return park("", ifname, "interface-mode trunk without vlan members"), prob
		}
	}
	s.Why = strings.Join(append(from, notes...), "; ")
	return s, prob
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

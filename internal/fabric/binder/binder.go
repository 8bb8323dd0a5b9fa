// Package binder derives, level-triggered and without I/O, what every switch must carry from
// the state of the cloud: for each bound VF port, its host's VF allocation gives the PF, the PF's
// LLDP link gives the switch (matched to a registered device by system name, chassis MAC or
// management address) and the switch port (the LLDP port ID when it names an interface, else the
// port description, after the device's port-name rewrite); the port's network gives the VLAN and
// VNI. A server whose VF ports reach two switches (or two ports of one switch) gets one port
// group over those interfaces — an ESI-LAG (or a LAG) — instead of single interfaces.
//
// Derive is pure: the controller feeds it a snapshot and reconciles device ports and device
// configuration towards its answer.
package binder

import (
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"

	"github.com/vflink/vflink/api"
)

// Snapshot is the state Derive reads.
type Snapshot struct {
	Ports       []api.Port
	Networks    map[string]api.Network
	Hosts       map[string]api.Host
	Allocations []api.VFAllocation
	Devices     []api.Device
}

// Problem says why a port has no attachment (condition LinkDiscovered False).
type Problem struct {
	PortID  string
	Reason  string // NoVF, NoLink, UnknownSwitch, NoVLAN
	Message string
}

// Result is what the fabric must look like.
type Result struct {
	Attachments []api.Attachment
	Problems    []Problem
}

// endpoint is where one VF port meets the fabric.
type endpoint struct {
	port      api.Port
	device    string
	iface     string
	networkID string
	vlan, vni int
	native    bool // untagged on the switch port (a trunk parent's own network)
}

// expand turns a VF port's endpoint into what its switch port carries: the port's network (tagged
// for an access VF; untagged for a trunk's parent, unless it is a trunk network, VLAN 0, which
// carries nothing itself) and, for a trunk's parent, each subport's network tagged.
func expand(s Snapshot, ep endpoint, byID map[string]api.Port) []endpoint {
	var out []endpoint
	td := ep.port.TrunkDetails
	if ep.vlan != 0 {
		ep.native = td != nil
		out = append(out, ep)
	}
	if td == nil {
		return out
	}
	for _, sp := range td.SubPorts {
		sub, ok := byID[sp.PortID]
		if !ok {
			continue
		}
		n, ok := s.Networks[sub.NetworkID]
		if !ok || n.SegmentationID == nil || *n.SegmentationID == 0 {
			continue
		}
		e := ep
		e.networkID, e.vlan, e.vni, e.native = n.ID, *n.SegmentationID, n.VNID, false
		out = append(out, e)
	}
	return out
}

// Derive computes the attachments of a snapshot. Its output is sorted and deterministic.
func Derive(s Snapshot) Result {
	var res Result
	allocByPort := map[string]api.VFAllocation{}
	for _, a := range s.Allocations {
		allocByPort[a.PortID] = a
	}
	byID := make(map[string]api.Port, len(s.Ports))
	for _, p := range s.Ports {
		byID[p.ID] = p
	}
	var eps []endpoint
	for _, p := range s.Ports {
		if p.HostID == "" || !vfBacked(p.VNICType) {
			continue
		}
		ep, prob := locate(s, p, allocByPort)
		if prob != nil {
			res.Problems = append(res.Problems, *prob)
			continue
		}
		eps = append(eps, expand(s, ep, byID)...)
	}
	// group the endpoints of one server on one network: two or more distinct interfaces make a
	// port group
	type key struct{ server, network string }
	groups := map[key][]endpoint{}
	var single []endpoint
	for _, ep := range eps {
		if ep.port.DeviceID == "" {
			single = append(single, ep)
			continue
		}
		k := key{ep.port.DeviceID, ep.networkID}
		groups[k] = append(groups[k], ep)
	}
	att := map[string]*api.Attachment{}
	add := func(a api.Attachment, port string) {
		k := fmt.Sprintf("%s|%s|%s|%d|%t|%t", a.Device, a.Interface, memberKey(a.PortGroup), a.VLAN, a.Manual, a.Native)
		if cur, ok := att[k]; ok {
			cur.Ports = append(cur.Ports, port)
			return
		}
		a.Ports = []string{port}
		att[k] = &a
	}
	for _, p := range s.Ports {
		if p.VNICType != api.VNICBaremetal || p.DeviceOwner == api.DeviceOwnerDevicePort {
			continue
		}
		ms, prob := manualMembers(s, p)
		if prob != nil {
			res.Problems = append(res.Problems, *prob)
			continue
		}
		if len(ms) == 0 {
			continue
		}
		n := s.Networks[p.NetworkID]
		for _, m := range ms {
			a := api.Attachment{Device: m.Device, Interface: m.Interface, NetworkID: n.ID, VNI: n.VNID, VLAN: *n.SegmentationID, Manual: true}
			if len(ms) > 1 {
				a.Interface, a.PortGroup = "", ms
			}
			add(a, p.ID)
		}
	}
	for _, ep := range single {
		add(api.Attachment{Device: ep.device, Interface: ep.iface, NetworkID: ep.networkID, VNI: ep.vni, VLAN: ep.vlan, Native: ep.native}, ep.port.ID)
	}
	for _, g := range groups {
		members := map[api.Member]bool{}
		for _, ep := range g {
			members[api.Member{Device: ep.device, Interface: ep.iface}] = true
		}
		if len(members) < 2 {
			for _, ep := range g {
				add(api.Attachment{Device: ep.device, Interface: ep.iface, NetworkID: ep.networkID, VNI: ep.vni, VLAN: ep.vlan, Native: ep.native}, ep.port.ID)
			}
			continue
		}
		var ms []api.Member
		for m := range members {
			ms = append(ms, m)
		}
		sort.Slice(ms, func(i, j int) bool {
			if ms[i].Device != ms[j].Device {
				return ms[i].Device < ms[j].Device
			}
			return ms[i].Interface < ms[j].Interface
		})
		devs := map[string]bool{}
		for _, m := range ms {
			devs[m.Device] = true
		}
		for d := range devs {
			for _, ep := range g {
				add(api.Attachment{Device: d, PortGroup: ms, NetworkID: ep.networkID, VNI: ep.vni, VLAN: ep.vlan, Native: ep.native}, ep.port.ID)
			}
		}
	}
	for _, a := range att {
		a.NetworkName = s.Networks[a.NetworkID].Name
		sort.Strings(a.Ports)
		a.Ports = dedupe(a.Ports)
	}
	res.Problems = append(res.Problems, oneNative(att, byID, s.Networks)...)
	for _, a := range att {
		res.Attachments = append(res.Attachments, *a)
	}
	sort.Slice(res.Attachments, func(i, j int) bool {
		a, b := res.Attachments[i], res.Attachments[j]
		if a.Device != b.Device {
			return a.Device < b.Device
		}
		if a.Interface+memberKey(a.PortGroup) != b.Interface+memberKey(b.PortGroup) {
			return a.Interface+memberKey(a.PortGroup) < b.Interface+memberKey(b.PortGroup)
		}
		return a.VLAN < b.VLAN
	})
	sort.Slice(res.Problems, func(i, j int) bool { return res.Problems[i].PortID < res.Problems[j].PortID })
	return res
}

// oneNative keeps one untagged network per switch interface (or port group): the one whose
// earliest port was created first (then the lowest network ID). The others lose their native
// attachment, and their ports get a problem naming the network the switch port already carries.
func oneNative(att map[string]*api.Attachment, byID map[string]api.Port, nets map[string]api.Network) []Problem {
	first := func(a *api.Attachment) string {
		t := ""
		for _, p := range a.Ports {
			if c := byID[p].CreatedAt; t == "" || c < t {
				t = c
			}
		}
		return t + "|" + a.NetworkID
	}
	keep := map[string]*api.Attachment{}
	var keys []string
	for k, a := range att {
		if a.Native {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return first(att[keys[i]]) < first(att[keys[j]]) })
	var probs []Problem
	for _, k := range keys {
		a := att[k]
		where := a.Device + " " + a.Interface + memberKey(a.PortGroup)
		cur, ok := keep[where]
		if !ok || cur.NetworkID == a.NetworkID {
			keep[where] = a
			continue
		}
		for _, p := range a.Ports {
			probs = append(probs, Problem{PortID: p, Reason: "NativeConflict", Message: fmt.Sprintf(
				"switch %s %s already carries network %s untagged (VLAN %d, for port %s); one untagged network per switch port, so network %s (VLAN %d) of trunk port %s is not carried; make the trunk's parent a port on a trunk network (VLAN 0) and add %s as a tagged subport",
				a.Device, strings.TrimSpace(a.Interface+" "+strings.TrimSuffix(memberKey(a.PortGroup), ",")), netName(nets, cur.NetworkID), cur.VLAN, strings.Join(cur.Ports, ","),
				netName(nets, a.NetworkID), a.VLAN, p, netName(nets, a.NetworkID))})
		}
		delete(att, k)
	}
	return probs
}

// netName is a network's name, or its ID when it has none.
func netName(nets map[string]api.Network, id string) string {
	if n := nets[id].Name; n != "" {
		return n
	}
	return id
}

func memberKey(ms []api.Member) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Device + "/" + m.Interface + ",")
	}
	return b.String()
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func vfBacked(t string) bool {
	return t == api.VNICDirect || t == api.VNICMacvtap || t == api.VNICDirectPhysical
}

// manualMembers reads a manual device port's local_link_information: each entry names a
// registered device (switch_info, or switch_id as its chassis MAC) and an interface (port_id).
func manualMembers(s Snapshot, p api.Port) ([]api.Member, *Problem) {
	raw, ok := p.Profile["local_link_information"].([]any)
	if !ok || len(raw) == 0 {
		return nil, nil
	}
	n, ok := s.Networks[p.NetworkID]
	if !ok || n.SegmentationID == nil || n.PhysicalNetwork == nil {
		return nil, &Problem{PortID: p.ID, Reason: "NoVLAN", Message: fmt.Sprintf("network %s of device port %s has no physical network and VLAN", p.NetworkID, p.ID)}
	}
	var ms []api.Member
	for i, e := range raw {
		m, _ := e.(map[string]any)
		info, _ := m["switch_info"].(string)
		id, _ := m["switch_id"].(string)
		port, _ := m["port_id"].(string)
		dev := matchDevice(s.Devices, &api.LLDPLink{SwitchName: info, ChassisID: id})
		if dev == nil || port == "" {
			return nil, &Problem{PortID: p.ID, Reason: "UnknownSwitch", Message: fmt.Sprintf(
				"local_link_information[%d] of port %s names switch %q (switch_id %q) port %q: want a registered device and a port_id", i, p.ID, info, id, port)}
		}
		ms = append(ms, api.Member{Device: dev.Name, Interface: port})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Device+ms[i].Interface < ms[j].Device+ms[j].Interface })
	return ms, nil
}

// locate finds where a bound VF port meets the fabric.
func locate(s Snapshot, p api.Port, allocs map[string]api.VFAllocation) (endpoint, *Problem) {
	prob := func(reason, format string, args ...any) (endpoint, *Problem) {
		return endpoint{}, &Problem{PortID: p.ID, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	n, ok := s.Networks[p.NetworkID]
	if !ok || n.SegmentationID == nil || n.PhysicalNetwork == nil {
		return prob("NoVLAN", "network %s of port %s has no physical network and VLAN", p.NetworkID, p.ID)
	}
	al, ok := allocs[p.ID]
	if !ok {
		return prob("NoVF", "port %s has no VF on host %s yet", p.ID, p.HostID)
	}
	h, ok := s.Hosts[al.Host]
	var pf *api.PF
	for i := range h.PFs {
		if h.PFs[i].Name == al.PF {
			pf = &h.PFs[i]
		}
	}
	if !ok || pf == nil {
		return prob("NoLink", "host %s (PF %s of port %s) is not registered", al.Host, al.PF, p.ID)
	}
	if pf.Link == nil {
		return prob("NoLink", "PF %s of host %s hears no LLDP neighbor", pf.Name, al.Host)
	}
	l := pf.Link
	dev := matchDevice(s.Devices, l)
	if dev == nil {
		return prob("UnknownSwitch", "PF %s of host %s is cabled to switch %q (chassis %s, port %s) which is not a registered device",
			pf.Name, al.Host, l.SwitchName, l.ChassisID, l.PortID)
	}
	iface := portName(l, dev.PortNameRewrite)
	if iface == "" {
		return prob("NoLink", "switch %s announces no usable port name to PF %s of host %s (port ID %q, subtype %s, no description)",
			dev.Name, pf.Name, al.Host, l.PortID, l.PortIDSubtype)
	}
	return endpoint{port: p, device: dev.Name, iface: iface, networkID: n.ID, vlan: *n.SegmentationID, vni: n.VNID}, nil
}

// matchDevice finds the registered device an LLDP neighbor is: by system name, chassis MAC, or
// management address.
func matchDevice(devs []api.Device, l *api.LLDPLink) *api.Device {
	mac := ""
	if hw, err := net.ParseMAC(l.ChassisID); err == nil {
		mac = hw.String()
	}
	for i := range devs {
		d := &devs[i]
		host, _, _ := net.SplitHostPort(d.ManagementAddress)
		switch {
		case l.SwitchName != "" && strings.EqualFold(d.Name, l.SwitchName):
			return d
		case mac != "" && d.ChassisMAC == mac:
			return d
		case l.MgmtAddress != "" && host == l.MgmtAddress:
			return d
		}
	}
	return nil
}

// interfaceName looks like a switch interface (xe-0/0/3, ge-1/0/0, et-0/0/48:1, ae0, Ethernet12).
var interfaceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*[0-9](/[0-9]+)*(:[0-9]+)?$`)

// portName is the switch's interface name for a link: the port ID when it names an interface,
// else the port description (Junos often sends a local ifIndex as the port ID), after the rewrite.
func portName(l *api.LLDPLink, rw *api.PortRewrite) string {
	name := ""
	switch {
	case (l.PortIDSubtype == "ifname" || l.PortIDSubtype == "ifalias") && l.PortID != "":
		name = l.PortID
	case interfaceName.MatchString(l.PortID) && !isNumber(l.PortID):
		name = l.PortID
	case l.PortDescription != "":
		name = l.PortDescription
	default:
		name = l.PortID
	}
	if rw != nil && rw.Regex != "" {
		if re, err := regexp.Compile(rw.Regex); err == nil {
			name = re.ReplaceAllString(name, rw.Replacement)
		}
	}
	return name
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

package lldp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// EtherType is the LLDP ethertype.
const EtherType = 0x88cc

// MulticastAddr is the nearest-bridge LLDP group address, 01:80:c2:00:00:0e.
var MulticastAddr = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}

// ErrNotLLDP is returned by DecodeFrame for a frame that carries no LLDPDU.
var ErrNotLLDP = errors.New("not an LLDP frame")

// chassisSubtypes names chassis ID subtypes (802.1AB-2009 table 8-2) as
// lldpd does where it has a name.
var chassisSubtypes = map[layers.LLDPChassisIDSubType]string{
	layers.LLDPChassisIDSubTypeChassisComp: "chassis",
	layers.LLDPChassisIDSubtypeIfaceAlias:  "ifalias",
	layers.LLDPChassisIDSubTypePortComp:    "port",
	layers.LLDPChassisIDSubTypeMACAddr:     "mac",
	layers.LLDPChassisIDSubTypeNetworkAddr: "ip",
	layers.LLDPChassisIDSubtypeIfaceName:   "ifname",
	layers.LLDPChassisIDSubTypeLocal:       "local",
}

// portSubtypes names port ID subtypes (802.1AB-2009 table 8-3).
var portSubtypes = map[layers.LLDPPortIDSubType]string{
	layers.LLDPPortIDSubtypeIfaceAlias:     "ifalias",
	layers.LLDPPortIDSubtypePortComp:       "port",
	layers.LLDPPortIDSubtypeMACAddr:        "mac",
	layers.LLDPPortIDSubtypeNetworkAddr:    "ip",
	layers.LLDPPortIDSubtypeIfaceName:      "ifname",
	layers.LLDPPortIDSubtypeAgentCircuitID: "agentcid",
	layers.LLDPPortIDSubtypeLocal:          "local",
}

// DecodeFrame decodes an Ethernet frame with ethertype 0x88cc (an 802.1Q tag
// in front is tolerated) into a Neighbor. Interface, LastSeen and Changed are
// left for the caller. A malformed optional TLV (management address, system
// capabilities) does not lose the mandatory ones nor the names.
func DecodeFrame(frame []byte) (Neighbor, error) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true, Lazy: false})
	l, ok := p.Layer(layers.LayerTypeLinkLayerDiscovery).(*layers.LinkLayerDiscovery)
	if !ok || l == nil {
		if el := p.ErrorLayer(); el != nil {
			return Neighbor{}, fmt.Errorf("decode lldp frame: %w", el.Error())
		}
		return Neighbor{}, ErrNotLLDP
	}
	var n Neighbor
	n.ChassisIDSubtype = subtypeName(chassisSubtypes[l.ChassisID.Subtype], byte(l.ChassisID.Subtype))
	n.ChassisID = renderID(n.ChassisIDSubtype, l.ChassisID.ID)
	n.PortIDSubtype = subtypeName(portSubtypes[l.PortID.Subtype], byte(l.PortID.Subtype))
	n.PortID = renderID(n.PortIDSubtype, l.PortID.ID)
	n.TTL = time.Duration(l.TTL) * time.Second

	info, _ := p.Layer(layers.LayerTypeLinkLayerDiscoveryInfo).(*layers.LinkLayerDiscoveryInfo)
	if info != nil && p.ErrorLayer() == nil {
		n.PortDescription = cleanString(info.PortDescription)
		n.SystemName = cleanString(info.SysName)
		n.MgmtAddress = renderMgmt(info.MgmtAddress)
		return n, nil
	}
	// gopacket stops decoding the optional TLVs at the first malformed one;
	// the names are plain strings, so take them from the raw TLVs.
	for _, v := range l.Values {
		switch v.Type {
		case layers.LLDPTLVPortDescription:
			n.PortDescription = cleanString(string(v.Value))
		case layers.LLDPTLVSysName:
			n.SystemName = cleanString(string(v.Value))
		}
	}
	return n, nil
}

func subtypeName(name string, code byte) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("subtype-%d", code)
}

// renderID renders a chassis or port ID value by its subtype.
func renderID(subtype string, id []byte) string {
	switch subtype {
	case "mac":
		if len(id) == 6 {
			return net.HardwareAddr(id).String()
		}
		return hexString(id)
	case "ip":
		// An IANA address family byte, then the address.
		if len(id) >= 1 {
			if s, ok := renderAddr(layers.IANAAddressFamily(id[0]), id[1:]); ok {
				return s
			}
		}
		return hexString(id)
	}
	if isPrintable(id) {
		return string(id)
	}
	return hexString(id)
}

func renderMgmt(m layers.LLDPMgmtAddress) string {
	if len(m.Address) == 0 {
		return ""
	}
	if s, ok := renderAddr(m.Subtype, m.Address); ok {
		return s
	}
	return hexString(m.Address)
}

func renderAddr(family layers.IANAAddressFamily, b []byte) (string, bool) {
	switch family {
	case layers.IANAAddressFamilyIPV4, layers.IANAAddressFamilyIPV6:
		if a, ok := netip.AddrFromSlice(b); ok && (family == layers.IANAAddressFamilyIPV4) == (len(b) == 4) {
			return a.String(), true
		}
	case layers.IANAAddressFamily802:
		if len(b) == 6 {
			return net.HardwareAddr(b).String(), true
		}
	}
	return "", false
}

func hexString(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

func isPrintable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// cleanString drops what a log line or a JSON report should not carry from a
// string TLV: invalid UTF-8, control characters and trailing NULs.
func cleanString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

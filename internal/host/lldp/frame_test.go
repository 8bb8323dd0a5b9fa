package lldp

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	switchMAC = net.HardwareAddr{0x2c, 0x6b, 0xf5, 0x01, 0x02, 0x03}
	hostMAC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
)

func tlv(t layers.LLDPTLVType, v []byte) layers.LinkLayerDiscoveryValue {
	return layers.LinkLayerDiscoveryValue{Type: t, Length: uint16(len(v)), Value: v}
}

// mgmtTLV builds a management address TLV (802.1AB 8.5.9).
func mgmtTLV(family layers.IANAAddressFamily, addr []byte, ifnum uint32) layers.LinkLayerDiscoveryValue {
	v := []byte{byte(1 + len(addr)), byte(family)}
	v = append(v, addr...)
	v = append(v, byte(layers.LLDPInterfaceSubtypeifIndex))
	v = binary.BigEndian.AppendUint32(v, ifnum)
	v = append(v, 0) // no OID
	return tlv(layers.LLDPTLVMgmtAddress, v)
}

type frameSpec struct {
	chassisSubtype layers.LLDPChassisIDSubType
	chassis        []byte
	portSubtype    layers.LLDPPortIDSubType
	port           []byte
	ttl            uint16
	values         []layers.LinkLayerDiscoveryValue
	vlan           uint16 // 0: untagged
}

func buildFrame(t testing.TB, f frameSpec) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: switchMAC, DstMAC: MulticastAddr, EthernetType: layers.EthernetTypeLinkLayerDiscovery}
	lldp := &layers.LinkLayerDiscovery{
		ChassisID: layers.LLDPChassisID{Subtype: f.chassisSubtype, ID: f.chassis},
		PortID:    layers.LLDPPortID{Subtype: f.portSubtype, ID: f.port},
		TTL:       f.ttl,
		Values:    f.values,
	}
	ls := []gopacket.SerializableLayer{eth}
	if f.vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: f.vlan, Type: layers.EthernetTypeLinkLayerDiscovery})
	}
	ls = append(ls, lldp)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

// junosFrame is what a Junos leaf sends: chassis MAC, port ID a local
// ifIndex, the interface name in the port description.
func junosFrame(t testing.TB, vlan uint16) []byte {
	return buildFrame(t, frameSpec{
		chassisSubtype: layers.LLDPChassisIDSubTypeMACAddr, chassis: switchMAC,
		portSubtype: layers.LLDPPortIDSubtypeLocal, port: []byte("517"),
		ttl: 120, vlan: vlan,
		values: []layers.LinkLayerDiscoveryValue{
			tlv(layers.LLDPTLVPortDescription, []byte("xe-0/0/3")),
			tlv(layers.LLDPTLVSysName, []byte("leaf1")),
			tlv(layers.LLDPTLVSysDescription, []byte("Juniper Networks, Inc. qfx5120-48y")),
			tlv(layers.LLDPTLVSysCapabilities, []byte{0, 0x14, 0, 0x14}),
			mgmtTLV(layers.IANAAddressFamilyIPV4, []byte{10, 1, 2, 3}, 33),
		},
	})
}

func TestDecodeFrameJunos(t *testing.T) {
	want := Neighbor{
		ChassisID: "2c:6b:f5:01:02:03", ChassisIDSubtype: "mac",
		SystemName: "leaf1",
		PortID:     "517", PortIDSubtype: "local",
		PortDescription: "xe-0/0/3",
		MgmtAddress:     "10.1.2.3",
		TTL:             120 * time.Second,
	}
	for _, vlan := range []uint16{0, 42} {
		got, err := DecodeFrame(junosFrame(t, vlan))
		if err != nil {
			t.Fatalf("vlan %d: DecodeFrame: %v", vlan, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("vlan %d: DecodeFrame mismatch (-want +got):\n%s", vlan, d)
		}
		if sp := got.SwitchPort(); sp != "xe-0/0/3" {
			t.Errorf("vlan %d: SwitchPort() = %q, want xe-0/0/3", vlan, sp)
		}
	}
}

func TestDecodeFrameChassisLocal(t *testing.T) {
	got, err := DecodeFrame(buildFrame(t, frameSpec{
		chassisSubtype: layers.LLDPChassisIDSubTypeLocal, chassis: []byte("FDO12345678"),
		portSubtype: layers.LLDPPortIDSubtypeLocal, port: []byte("517"), ttl: 120,
		values: []layers.LinkLayerDiscoveryValue{
			tlv(layers.LLDPTLVPortDescription, []byte("xe-0/0/3")),
			tlv(layers.LLDPTLVSysName, []byte("leaf1")),
			mgmtTLV(layers.IANAAddressFamilyIPV6, net.ParseIP("2001:db8::1"), 1),
		},
	}))
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	if got.ChassisIDSubtype != "local" || got.ChassisID != "FDO12345678" {
		t.Errorf("chassis = %s %q, want local \"FDO12345678\"", got.ChassisIDSubtype, got.ChassisID)
	}
	if got.MgmtAddress != "2001:db8::1" {
		t.Errorf("MgmtAddress = %q, want 2001:db8::1", got.MgmtAddress)
	}
}

func TestDecodeFrameSubtypes(t *testing.T) {
	v4 := append([]byte{byte(layers.IANAAddressFamilyIPV4)}, 192, 0, 2, 7)
	v6 := append([]byte{byte(layers.IANAAddressFamilyIPV6)}, net.ParseIP("2001:db8::7")...)
	chassis := []struct {
		st   layers.LLDPChassisIDSubType
		id   []byte
		name string
		want string
	}{
		{layers.LLDPChassisIDSubTypeChassisComp, []byte("chassis-1"), "chassis", "chassis-1"},
		{layers.LLDPChassisIDSubtypeIfaceAlias, []byte("uplink"), "ifalias", "uplink"},
		{layers.LLDPChassisIDSubTypePortComp, []byte("backplane"), "port", "backplane"},
		{layers.LLDPChassisIDSubTypeMACAddr, switchMAC, "mac", "2c:6b:f5:01:02:03"},
		{layers.LLDPChassisIDSubTypeMACAddr, []byte{1, 2, 3}, "mac", "01:02:03"},
		{layers.LLDPChassisIDSubTypeNetworkAddr, v4, "ip", "192.0.2.7"},
		{layers.LLDPChassisIDSubTypeNetworkAddr, v6, "ip", "2001:db8::7"},
		{layers.LLDPChassisIDSubTypeNetworkAddr, []byte{99, 1}, "ip", "63:01"},
		{layers.LLDPChassisIDSubtypeIfaceName, []byte("mgmt0"), "ifname", "mgmt0"},
		{layers.LLDPChassisIDSubTypeLocal, []byte("leaf1-serial"), "local", "leaf1-serial"},
		{layers.LLDPChassisIDSubTypeLocal, []byte{0, 1, 0xff}, "local", "00:01:ff"},
		{9, []byte("reserved"), "subtype-9", "reserved"},
	}
	for _, c := range chassis {
		got, err := DecodeFrame(buildFrame(t, frameSpec{chassisSubtype: c.st, chassis: c.id,
			portSubtype: layers.LLDPPortIDSubtypeIfaceName, port: []byte("Ethernet1"), ttl: 120}))
		if err != nil {
			t.Errorf("chassis subtype %d: DecodeFrame: %v", c.st, err)
			continue
		}
		if got.ChassisIDSubtype != c.name || got.ChassisID != c.want {
			t.Errorf("chassis subtype %d: got %s %q, want %s %q", c.st, got.ChassisIDSubtype, got.ChassisID, c.name, c.want)
		}
	}
	ports := []struct {
		st   layers.LLDPPortIDSubType
		id   []byte
		name string
		want string
	}{
		{layers.LLDPPortIDSubtypeIfaceAlias, []byte("to-host7"), "ifalias", "to-host7"},
		{layers.LLDPPortIDSubtypePortComp, []byte("port-comp"), "port", "port-comp"},
		{layers.LLDPPortIDSubtypeMACAddr, switchMAC, "mac", "2c:6b:f5:01:02:03"},
		{layers.LLDPPortIDSubtypeNetworkAddr, v4, "ip", "192.0.2.7"},
		{layers.LLDPPortIDSubtypeIfaceName, []byte("Ethernet1/1"), "ifname", "Ethernet1/1"},
		{layers.LLDPPortIDSubtypeAgentCircuitID, []byte("circuit-9"), "agentcid", "circuit-9"},
		{layers.LLDPPortIDSubtypeLocal, []byte("517"), "local", "517"},
		{8, []byte("x"), "subtype-8", "x"},
	}
	for _, c := range ports {
		got, err := DecodeFrame(buildFrame(t, frameSpec{chassisSubtype: layers.LLDPChassisIDSubTypeMACAddr, chassis: switchMAC,
			portSubtype: c.st, port: c.id, ttl: 120}))
		if err != nil {
			t.Errorf("port subtype %d: DecodeFrame: %v", c.st, err)
			continue
		}
		if got.PortIDSubtype != c.name || got.PortID != c.want {
			t.Errorf("port subtype %d: got %s %q, want %s %q", c.st, got.PortIDSubtype, got.PortID, c.name, c.want)
		}
	}
}

func TestDecodeFrameMalformedOptionalTLV(t *testing.T) {
	// A management address TLV whose address length runs past the TLV: the
	// names must survive.
	frame := buildFrame(t, frameSpec{
		chassisSubtype: layers.LLDPChassisIDSubTypeMACAddr, chassis: switchMAC,
		portSubtype: layers.LLDPPortIDSubtypeLocal, port: []byte("517"), ttl: 120,
		values: []layers.LinkLayerDiscoveryValue{
			tlv(layers.LLDPTLVMgmtAddress, []byte{200, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 0}),
			tlv(layers.LLDPTLVPortDescription, []byte("xe-0/0/3")),
			tlv(layers.LLDPTLVSysName, []byte("leaf1\x00")),
		},
	})
	got, err := DecodeFrame(frame)
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	if got.SystemName != "leaf1" || got.PortDescription != "xe-0/0/3" || got.MgmtAddress != "" {
		t.Errorf("got name %q descr %q mgmt %q, want leaf1, xe-0/0/3 and no address", got.SystemName, got.PortDescription, got.MgmtAddress)
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := junosFrame(t, 0)
	ipv4 := func() []byte {
		buf := gopacket.NewSerializeBuffer()
		_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
			&layers.Ethernet{SrcMAC: switchMAC, DstMAC: hostMAC, EthernetType: layers.EthernetTypeIPv4},
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}, Protocol: layers.IPProtocolUDP},
			&layers.UDP{SrcPort: 1, DstPort: 2})
		return buf.Bytes()
	}()
	noEnd := good[:len(good)-2]
	for name, frame := range map[string][]byte{
		"empty":     nil,
		"short":     good[:10],
		"truncated": good[:30],
		"no end":    noEnd,
		"ipv4":      ipv4,
	} {
		if n, err := DecodeFrame(frame); err == nil {
			t.Errorf("%s: DecodeFrame = %+v, want an error", name, n)
		}
	}
	if _, err := DecodeFrame(ipv4); !errors.Is(err, ErrNotLLDP) {
		t.Errorf("ipv4: err = %v, want ErrNotLLDP", err)
	}
}

func TestSwitchPort(t *testing.T) {
	for _, c := range []struct {
		n    Neighbor
		want string
	}{
		{Neighbor{PortIDSubtype: "ifname", PortID: "Ethernet1/1", PortDescription: "to host7"}, "Ethernet1/1"},
		{Neighbor{PortIDSubtype: "ifalias", PortID: "uplink", PortDescription: "xe-0/0/3"}, "uplink"},
		{Neighbor{PortIDSubtype: "local", PortID: "517", PortDescription: "xe-0/0/3"}, "xe-0/0/3"},
		{Neighbor{PortIDSubtype: "local", PortID: "xe-0/0/3", PortDescription: "xe-0/0/3"}, "xe-0/0/3"},
		{Neighbor{PortIDSubtype: "local", PortID: "ge-0/0/1.0", PortDescription: "server7"}, "ge-0/0/1.0"},
		{Neighbor{PortIDSubtype: "local", PortID: "swp12", PortDescription: "server7"}, "swp12"},
		{Neighbor{PortIDSubtype: "mac", PortID: "2c:6b:f5:01:02:03", PortDescription: "eth1"}, "eth1"},
		{Neighbor{PortIDSubtype: "local", PortID: "517"}, "517"},
		{Neighbor{PortIDSubtype: "ifname", PortID: "", PortDescription: "xe-0/0/9"}, "xe-0/0/9"},
		{Neighbor{PortIDSubtype: "agentcid", PortID: "circuit 9", PortDescription: "Gi1/0/24"}, "Gi1/0/24"},
	} {
		if got := c.n.SwitchPort(); got != c.want {
			t.Errorf("SwitchPort(%s %q, descr %q) = %q, want %q", c.n.PortIDSubtype, c.n.PortID, c.n.PortDescription, got, c.want)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(junosFrame(f, 0))
	f.Add(junosFrame(f, 42))
	f.Add(buildFrame(f, frameSpec{chassisSubtype: layers.LLDPChassisIDSubTypeNetworkAddr, chassis: []byte{2, 1, 2},
		portSubtype: layers.LLDPPortIDSubtypeMACAddr, port: []byte{1, 2, 3, 4, 5, 6}, ttl: 0}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := DecodeFrame(frame)
		if err != nil {
			return
		}
		if n.ChassisIDSubtype == "" || n.PortIDSubtype == "" {
			t.Errorf("decoded without subtypes: %+v", n)
		}
		_ = n.SwitchPort()
	})
}

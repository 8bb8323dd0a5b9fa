package hypervisor

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"
)

// ErrInvalid is matched (errors.Is) by every error about a bad Server or Interface value: such an
// error will not go away by retrying.
var ErrInvalid = errors.New("invalid server definition")

// invalidError is a user-input error; its message names the offending value and what is allowed.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// domainPrefix marks the libvirt domains that vflink owns.
const domainPrefix = "vflink-"

// maxNameLen bounds the sanitized part of a domain name; qemu puts the name into socket paths.
const maxNameLen = 56

// metadataNS is the XML namespace of the vflink element in the domain <metadata>.
const metadataNS = "https://github.com/vflink/vflink/xmlns/server/1"

// domainTypes are the libvirt domain types DomainXML renders.
var domainTypes = map[string]bool{"kvm": true, "qemu": true, "test": true}

// pciAddressRE is a full PCI address as sysfs and lspci -D print it: domain:bus:slot.function.
var pciAddressRE = regexp.MustCompile(`^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$`)

// parsePCIAddress parses "0000:83:13.3" into libvirt's PCI address.
func parsePCIAddress(s string) (*libvirtxml.DomainAddressPCI, error) {
	m := pciAddressRE.FindStringSubmatch(s)
	if m == nil {
		return nil, invalidf("pci address %q is not of the form 0000:83:13.3 (domain:bus:slot.function in hex)", s)
	}
	var v [4]uint
	for i := range v {
		n, err := strconv.ParseUint(m[i+1], 16, 16)
		if err != nil { // unreachable: the expression admits only hex digits
			return nil, invalidf("pci address %q: %v", s, err)
		}
		v[i] = uint(n)
	}
	if v[2] > 0x1f {
		return nil, invalidf("pci address %q has slot 0x%02x; slots are 0x00-0x1f", s, v[2])
	}
	return &libvirtxml.DomainAddressPCI{Domain: &v[0], Bus: &v[1], Slot: &v[2], Function: &v[3]}, nil
}

// formatPCIAddress is the inverse of parsePCIAddress, in lower case.
func formatPCIAddress(a *libvirtxml.DomainAddressPCI) string {
	if a == nil || a.Domain == nil || a.Bus == nil || a.Slot == nil || a.Function == nil {
		return ""
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", *a.Domain, *a.Bus, *a.Slot, *a.Function)
}

// parseMAC returns the canonical (lower-case, colon-separated) form of a unicast Ethernet MAC.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", invalidf("mac address %q is not an Ethernet MAC address such as 02:5a:0d:c4:39:77", s)
	}
	if hw[0]&1 != 0 {
		return "", invalidf("mac address %q is a multicast address; a VF needs a unicast address", s)
	}
	if string(hw) == "\x00\x00\x00\x00\x00\x00" {
		return "", invalidf("mac address %q is all zeros; a VF needs a unicast address", s)
	}
	return hw.String(), nil
}

// HostdevInterface renders one VF as a libvirt hostdev interface: managed='yes' (libvirt binds the
// VF to vfio-pci and back), the MAC address, <driver name='vfio'/>, the VF's PCI address as the
// source and the VLAN as <vlan><tag id='N'/></vlan>. VLAN 0 is rendered too (tag id='0'): it
// makes a trunk VF, clearing any VLAN left on the VF so the guest sees tagged traffic.
// An invalid PCI address, MAC or VLAN is an error (matching ErrInvalid) that names the value.
func HostdevInterface(i Interface) (libvirtxml.DomainInterface, error) {
	addr, err := parsePCIAddress(i.PCIAddress)
	if err != nil {
		return libvirtxml.DomainInterface{}, err
	}
	mac, err := parseMAC(i.MAC)
	if err != nil {
		return libvirtxml.DomainInterface{}, err
	}
	if i.VLAN < 0 || i.VLAN > 4094 {
		return libvirtxml.DomainInterface{}, invalidf("vlan %d for vf %s is out of range 0-4094 (1-4094 for an access VF, 0 for a trunk VF)", i.VLAN, i.PCIAddress)
	}
	return libvirtxml.DomainInterface{
		XMLName: xml.Name{Local: "interface"}, // as libvirtxml sets it when parsing
		Managed: "yes",
		MAC:     &libvirtxml.DomainInterfaceMAC{Address: mac},
		Source: &libvirtxml.DomainInterfaceSource{
			Hostdev: &libvirtxml.DomainInterfaceSourceHostdev{
				PCI: &libvirtxml.DomainHostdevSubsysPCISource{Address: addr},
			},
		},
		VLan: &libvirtxml.DomainInterfaceVLan{
			Tags: []libvirtxml.DomainInterfaceVLanTag{{ID: uint(i.VLAN)}},
		},
		Driver: &libvirtxml.DomainInterfaceDriver{Name: "vfio"},
	}, nil
}

// DomainXML renders the whole libvirt domain for s: name "vflink-<name>" (sanitized), the server
// ID as UUID, memory in MiB, vcpus, an hvm OS (architecture and machine left to libvirt's host
// defaults), a virtio disk from ImageLocation when it is set, the hostdev interfaces in order, and
// a <metadata> element recording the server and its ports. domainType is "kvm" (production),
// "qemu" (no hardware virtualization) or "test" (libvirt's test driver; the test driver accepts
// "kvm" too). The output is deterministic.
func DomainXML(s Server, domainType string) (string, error) {
	d, err := buildDomain(s, domainType)
	if err != nil {
		return "", err
	}
	out, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("render domain for server %s: %w", s.ID, err)
	}
	return out + "\n", nil
}

// buildDomain validates s and builds its domain.
func buildDomain(s Server, domainType string) (*libvirtxml.Domain, error) {
	if !domainTypes[domainType] {
		return nil, invalidf("domain type %q is not supported; want kvm, qemu or test", domainType)
	}
	id, err := canonicalID(s.ID)
	if err != nil {
		return nil, err
	}
	if s.VCPUs < 1 {
		return nil, invalidf("vcpus %d for server %s is out of range; want at least 1", s.VCPUs, id)
	}
	if s.MemoryMiB < 1 {
		return nil, invalidf("memory %d MiB for server %s is out of range; want at least 1 MiB", s.MemoryMiB, id)
	}
	devices := &libvirtxml.DomainDeviceList{}
	if s.ImageLocation != "" {
		disk, err := bootDisk(s.ImageLocation)
		if err != nil {
			return nil, err
		}
		devices.Disks = []libvirtxml.DomainDisk{disk}
	}
	meta := metaServer{XMLNS: metadataNS, ID: id, Name: s.Name}
	seenPCI := map[string]int{}
	seenMAC := map[string]int{}
	for n, i := range s.Interfaces {
		iface, err := HostdevInterface(i)
		if err != nil {
			return nil, fmt.Errorf("server %s interface %d (port %q): %w", id, n, i.PortID, err)
		}
		pci := formatPCIAddress(iface.Source.Hostdev.PCI.Address)
		if m, dup := seenPCI[pci]; dup {
			return nil, invalidf("server %s interfaces %d and %d both use vf %s; each VF can be handed out once", id, m, n, pci)
		}
		if m, dup := seenMAC[iface.MAC.Address]; dup {
			return nil, invalidf("server %s interfaces %d and %d both use mac address %s; MAC addresses must be unique", id, m, n, iface.MAC.Address)
		}
		seenPCI[pci], seenMAC[iface.MAC.Address] = n, n
		devices.Interfaces = append(devices.Interfaces, iface)
		meta.Ports = append(meta.Ports, metaPort{ID: i.PortID, MAC: iface.MAC.Address, PCI: pci, VLAN: i.VLAN})
	}
	metaXML, err := xml.MarshalIndent(meta, "    ", "  ")
	if err != nil {
		return nil, fmt.Errorf("render metadata for server %s: %w", id, err)
	}
	return &libvirtxml.Domain{
		Type:     domainType,
		Name:     domainName(s.Name, id),
		UUID:     id,
		Metadata: &libvirtxml.DomainMetadata{XML: "\n    " + strings.TrimSpace(string(metaXML)) + "\n  "},
		Memory:   &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(s.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    devices,
	}, nil
}

// metaServer is the vflink element in the domain <metadata>: which server and Neutron ports the
// domain serves, for people reading `virsh dumpxml`.
type metaServer struct {
	XMLName xml.Name   `xml:"vflink:server"`
	XMLNS   string     `xml:"xmlns:vflink,attr"`
	ID      string     `xml:"id,attr"`
	Name    string     `xml:"name,attr"`
	Ports   []metaPort `xml:"vflink:port"`
}

type metaPort struct {
	ID   string `xml:"id,attr,omitempty"`
	MAC  string `xml:"mac,attr"`
	PCI  string `xml:"vf,attr"`
	VLAN int    `xml:"vlan,attr"`
}

// canonicalID checks that id is a UUID in its canonical 36-character form and returns it in
// lower case, as libvirt prints domain UUIDs.
func canonicalID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", invalidf("server id %q is not a UUID such as 6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f", id)
	}
	return u.String(), nil
}

// domainName is "vflink-" followed by name with every character outside [A-Za-z0-9._-] replaced
// by '-', runs of '-' collapsed, leading and trailing '-' and '.' trimmed and the result cut to
// maxNameLen bytes. A name with nothing left becomes the server ID. Two server names can map to
// one domain name; libvirt then refuses the second define, naming the domain.
func domainName(name, id string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok || r == '-' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), "-.")
	if len(s) > maxNameLen {
		s = strings.TrimRight(s[:maxNameLen], "-.")
	}
	if s == "" {
		s = id
	}
	return domainPrefix + s
}

// bootDisk renders the server's image as a virtio disk: a local raw file, or an http(s) URL that
// qemu reads through its curl driver (read-only, hence <readonly/>).
func bootDisk(loc string) (libvirtxml.DomainDisk, error) {
	disk := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
	}
	path := loc
	if strings.Contains(loc, "://") {
		u, err := url.Parse(loc)
		if err != nil {
			return disk, invalidf("image location %q is not a valid URL: %v", loc, err)
		}
		switch u.Scheme {
		case "file":
			if u.Host != "" && u.Host != "localhost" {
				return disk, invalidf("image location %q names host %q; a file URL must be local (file:///path)", loc, u.Host)
			}
			path = u.Path
		case "http", "https":
			if u.Hostname() == "" {
				return disk, invalidf("image location %q has no host", loc)
			}
			if u.User != nil {
				return disk, invalidf("image location %q carries credentials; they would be stored in the domain XML", u.Redacted())
			}
			host := libvirtxml.DomainDiskSourceHost{Name: u.Hostname(), Port: u.Port()}
			if host.Port == "" {
				host.Port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			disk.Source = &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
				Protocol: u.Scheme,
				Name:     u.Path,
				Query:    u.RawQuery,
				Hosts:    []libvirtxml.DomainDiskSourceHost{host},
			}}
			disk.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
			return disk, nil
		default:
			return disk, invalidf("image location %q has scheme %q; want an absolute file path, file://, http:// or https://", loc, u.Scheme)
		}
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return disk, invalidf("image location %q is not a clean absolute file path such as /var/lib/vflink/images/cirros.raw", loc)
	}
	disk.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
	return disk, nil
}

// hostdevKey is what Start compares between a running domain and the wanted one.
type hostdevKey struct {
	MAC  string
	PCI  string
	VLAN int
}

// interfaceKeys lists a domain's interfaces as (MAC, PCI address, VLAN); an interface that is not
// a PCI hostdev has an empty PCI address and a VLAN of -1 when it has no single tag.
func interfaceKeys(d *libvirtxml.Domain) []hostdevKey {
	if d.Devices == nil {
		return nil
	}
	keys := make([]hostdevKey, 0, len(d.Devices.Interfaces))
	for _, i := range d.Devices.Interfaces {
		k := hostdevKey{VLAN: -1}
		if i.MAC != nil {
			k.MAC = strings.ToLower(i.MAC.Address)
		}
		if i.Source != nil && i.Source.Hostdev != nil && i.Source.Hostdev.PCI != nil {
			k.PCI = formatPCIAddress(i.Source.Hostdev.PCI.Address)
		}
		if i.VLan != nil && len(i.VLan.Tags) == 1 && i.VLan.Trunk == "" {
			k.VLAN = int(i.VLan.Tags[0].ID)
		}
		keys = append(keys, k)
	}
	return keys
}

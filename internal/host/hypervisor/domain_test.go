package hypervisor

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"libvirt.org/go/libvirtxml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// seedInterface is the interface of SRIOV.md section 3.2.
var seedInterface = Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:13.3", VLAN: 15, PortID: "3c1e7a52-6a64-4b43-9a3c-2f1d0c9e8b11"}

// goldens are the servers whose domains are kept under testdata/.
var goldens = []struct {
	file   string
	server Server
}{
	{"access-vlan15.xml", Server{
		ID:            "6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f",
		Name:          "access-vlan15",
		VCPUs:         2,
		MemoryMiB:     2048,
		ImageLocation: "/var/lib/vflink/images/cirros-0.6.2-x86_64-disk.raw",
		Interfaces:    []Interface{seedInterface},
	}},
	{"trunk-vlan0.xml", Server{
		ID:            "0b7c6d2e-91f4-4a8e-b5d3-7c2e1f0a9d84",
		Name:          "trunk vlan0",
		VCPUs:         1,
		MemoryMiB:     512,
		ImageLocation: "https://images.example.net/cirros-0.6.2-x86_64-disk.raw",
		Interfaces: []Interface{
			{MAC: "02:5a:0d:c4:39:78", PCIAddress: "0000:83:13.4", VLAN: 0, PortID: "9d2f4b7a-0c1e-4e5f-8a6b-3c7d9e1f2a40"},
		},
	}},
}

func TestDomainXMLGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			got, err := DomainXML(g.server, "kvm")
			if err != nil {
				t.Fatalf("DomainXML: %v", err)
			}
			again, err := DomainXML(g.server, "kvm")
			if err != nil || again != got {
				t.Fatalf("DomainXML is not deterministic: second call gave err %v and diff (-first +second):\n%s", err, cmp.Diff(got, again))
			}
			path := filepath.Join("testdata", g.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("DomainXML differs from %s (-want +got; run go test -update if the change is intended):\n%s", path, diff)
			}
		})
	}
}

// TestHostdevInterfaceMatchesSeed parses the seed's interface and the one HostdevInterface
// renders, with libvirtxml, and compares them without the alias and guest PCI address, which
// libvirt assigns when the domain is defined.
func TestHostdevInterfaceMatchesSeed(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "seed-interface.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var want libvirtxml.DomainInterface
	if err := want.Unmarshal(string(raw)); err != nil {
		t.Fatalf("parse seed interface: %v", err)
	}
	if want.Alias == nil || want.Address == nil {
		t.Fatalf("seed interface lost its alias or guest address in parsing: %+v", want)
	}
	want.Alias, want.Address = nil, nil

	got, err := HostdevInterface(seedInterface)
	if err != nil {
		t.Fatalf("HostdevInterface: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HostdevInterface differs from the seed (-seed +got):\n%s", diff)
	}

	// The golden domain carries the same interface, after a round trip through XML.
	doc, err := os.ReadFile(filepath.Join("testdata", "access-vlan15.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(string(doc)); err != nil {
		t.Fatalf("parse golden domain: %v", err)
	}
	if d.Devices == nil || len(d.Devices.Interfaces) != 1 {
		t.Fatalf("golden domain has interfaces %+v, want exactly the seed's", d.Devices)
	}
	if diff := cmp.Diff(want, d.Devices.Interfaces[0]); diff != "" {
		t.Errorf("interface in access-vlan15.xml differs from the seed (-seed +golden):\n%s", diff)
	}
}

func TestTrunkVFHasTagZero(t *testing.T) {
	got, err := HostdevInterface(Interface{MAC: "02:5a:0d:c4:39:78", PCIAddress: "0000:83:13.4", VLAN: 0})
	if err != nil {
		t.Fatal(err)
	}
	s, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, `<tag id="0">`) {
		t.Errorf("trunk VF interface has no <tag id='0'/>:\n%s", s)
	}
}

// TestGoldenValidates runs libvirt's own schema check (virt-xml-validate, from libvirt-clients)
// on the golden files.
func TestGoldenValidates(t *testing.T) {
	validate, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Skip("virt-xml-validate not found (apt-get install libvirt-clients libxml2-utils); CI installs it")
	}
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			out, err := exec.Command(validate, filepath.Join("testdata", g.file), "domain").CombinedOutput()
			if err != nil {
				t.Errorf("virt-xml-validate %s domain: %v\n%s", g.file, err, out)
			}
		})
	}
}

func TestDomainXMLRejects(t *testing.T) {
	good := goldens[0].server
	withIface := func(i Interface) Server {
		s := good
		s.Interfaces = []Interface{i}
		return s
	}
	with := func(f func(*Server)) Server {
		s := good
		s.Interfaces = append([]Interface(nil), good.Interfaces...)
		f(&s)
		return s
	}
	tests := []struct {
		name       string
		server     Server
		domainType string
		want       string // in the error message
	}{
		{"pci short form", withIface(Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "83:13.3", VLAN: 15}), "kvm", `pci address "83:13.3" is not of the form 0000:83:13.3`},
		{"pci empty", withIface(Interface{MAC: "02:5a:0d:c4:39:77", VLAN: 15}), "kvm", `pci address ""`},
		{"pci function 8", withIface(Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:13.8", VLAN: 15}), "kvm", `pci address "0000:83:13.8"`},
		{"pci slot 0x20", withIface(Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:20.0", VLAN: 15}), "kvm", `pci address "0000:83:20.0" has slot 0x20; slots are 0x00-0x1f`},
		{"mac garbage", withIface(Interface{MAC: "02:5a:0d:c4:39", PCIAddress: "0000:83:13.3", VLAN: 15}), "kvm", `mac address "02:5a:0d:c4:39" is not an Ethernet MAC address`},
		{"mac 8 bytes", withIface(Interface{MAC: "02:5a:0d:c4:39:77:00:01", PCIAddress: "0000:83:13.3", VLAN: 15}), "kvm", `mac address "02:5a:0d:c4:39:77:00:01"`},
		{"mac multicast", withIface(Interface{MAC: "01:00:5e:00:00:01", PCIAddress: "0000:83:13.3", VLAN: 15}), "kvm", `mac address "01:00:5e:00:00:01" is a multicast address`},
		{"mac zero", withIface(Interface{MAC: "00:00:00:00:00:00", PCIAddress: "0000:83:13.3", VLAN: 15}), "kvm", `mac address "00:00:00:00:00:00" is all zeros`},
		{"vlan 4095", withIface(Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:13.3", VLAN: 4095}), "kvm", "vlan 4095 for vf 0000:83:13.3 is out of range 0-4094"},
		{"vlan -1", withIface(Interface{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:13.3", VLAN: -1}), "kvm", "vlan -1 for vf 0000:83:13.3 is out of range 0-4094"},
		{"same vf twice", with(func(s *Server) {
			s.Interfaces = append(s.Interfaces, Interface{MAC: "02:5a:0d:c4:39:99", PCIAddress: "0000:83:13.3", VLAN: 16})
		}), "kvm", "interfaces 0 and 1 both use vf 0000:83:13.3"},
		{"same mac twice", with(func(s *Server) {
			s.Interfaces = append(s.Interfaces, Interface{MAC: "02:5A:0D:C4:39:77", PCIAddress: "0000:83:13.5", VLAN: 16})
		}), "kvm", "interfaces 0 and 1 both use mac address 02:5a:0d:c4:39:77"},
		{"id not uuid", with(func(s *Server) { s.ID = "server-1" }), "kvm", `server id "server-1" is not a UUID`},
		{"id urn form", with(func(s *Server) { s.ID = "urn:uuid:6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f" }), "kvm", `server id "urn:uuid:6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f"`},
		{"no vcpus", with(func(s *Server) { s.VCPUs = 0 }), "kvm", "vcpus 0 for server 6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f is out of range"},
		{"no memory", with(func(s *Server) { s.MemoryMiB = -5 }), "kvm", "memory -5 MiB for server"},
		{"relative image", with(func(s *Server) { s.ImageLocation = "images/cirros.raw" }), "kvm", `image location "images/cirros.raw" is not a clean absolute file path`},
		{"unclean image", with(func(s *Server) { s.ImageLocation = "/var/lib/../cirros.raw" }), "kvm", `image location "/var/lib/../cirros.raw"`},
		{"ftp image", with(func(s *Server) { s.ImageLocation = "ftp://images.example.net/cirros.raw" }), "kvm", `has scheme "ftp"`},
		{"remote file url", with(func(s *Server) { s.ImageLocation = "file://nfs1/cirros.raw" }), "kvm", `names host "nfs1"`},
		{"image credentials", with(func(s *Server) { s.ImageLocation = "https://bob:secret@images.example.net/c.raw" }), "kvm", "carries credentials"},
		{"domain type", good, "xen", `domain type "xen" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DomainXML(tt.server, tt.domainType)
			if err == nil {
				t.Fatalf("DomainXML accepted it:\n%s", got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the image password", err)
			}
		})
	}
}

func TestDomainXMLImageLocation(t *testing.T) {
	tests := []struct {
		loc  string
		want libvirtxml.DomainDisk
	}{
		{"file:///srv/img/a.raw", libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: "/srv/img/a.raw"}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}},
		{"http://10.0.0.1:8080/img/a.raw?sig=x", libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source: &libvirtxml.DomainDiskSource{Network: &libvirtxml.DomainDiskSourceNetwork{
				Protocol: "http", Name: "/img/a.raw", Query: "sig=x",
				Hosts: []libvirtxml.DomainDiskSourceHost{{Name: "10.0.0.1", Port: "8080"}},
			}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		}},
	}
	for _, tt := range tests {
		s := goldens[0].server
		s.ImageLocation = tt.loc
		doc, err := DomainXML(s, "kvm")
		if err != nil {
			t.Fatalf("DomainXML with image %q: %v", tt.loc, err)
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(doc); err != nil {
			t.Fatal(err)
		}
		if len(d.Devices.Disks) != 1 {
			t.Fatalf("image %q: got disks %+v, want one", tt.loc, d.Devices.Disks)
		}
		got := d.Devices.Disks[0]
		got.XMLName = tt.want.XMLName
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("image %q: disk differs (-want +got):\n%s", tt.loc, diff)
		}
	}

	s := goldens[0].server
	s.ImageLocation = ""
	doc, err := DomainXML(s, "kvm")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc, "<disk") {
		t.Errorf("server without image got a disk:\n%s", doc)
	}
}

func TestDomainName(t *testing.T) {
	const id = "6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f"
	tests := []struct{ name, want string }{
		{"web-1", "vflink-web-1"},
		{"web 1", "vflink-web-1"},
		{"  --Web/1..  ", "vflink-Web-1"},
		{"db_primary.eu", "vflink-db_primary.eu"},
		{"ünïcode", "vflink-n-code"},
		{"", "vflink-" + id},
		{"///", "vflink-" + id},
		{strings.Repeat("a", 100), "vflink-" + strings.Repeat("a", maxNameLen)},
	}
	for _, tt := range tests {
		if got := domainName(tt.name, id); got != tt.want {
			t.Errorf("domainName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

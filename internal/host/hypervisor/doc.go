// Package hypervisor hands SR-IOV VFs to virtual machines on a compute host.
//
// A VF reaches a VM as a libvirt interface of type hostdev, exactly as Nova does it (SRIOV.md
// section 3.2): libvirt detaches the VF from its host driver, binds it to vfio-pci, sets the MAC
// address and VLAN on the VF through the PF and passes the PCI function to the guest:
//
//	<interface type='hostdev' managed='yes'>
//	  <mac address='02:5a:0d:c4:39:77'/>
//	  <driver name='vfio'/>
//	  <source>
//	    <address type='pci' domain='0x0000' bus='0x83' slot='0x13' function='0x3'/>
//	  </source>
//	  <vlan>
//	    <tag id='15'/>
//	  </vlan>
//	</interface>
//
// equivalent to: ip link set <pf> vf 13 mac 02:5a:0d:c4:39:77 vlan 15, then VFIO passthrough of
// 0000:83:13.3. An access VF carries the port's VLAN; a trunk VF carries VLAN 0 (tag id='0'),
// which clears any VLAN the VF had so the guest sends and receives its own tags.
//
// HostdevInterface and DomainXML are pure renderers built on libvirt.org/go/libvirtxml: they
// validate their input (PCI address, MAC, VLAN, server ID, sizes, image location) and return
// errors that match ErrInvalid and name the offending value, and their output is deterministic
// (golden files under testdata/ hold it).
//
// Libvirt implements Hypervisor by running the virsh command-line client (define, start, destroy,
// undefine, list, dumpxml) rather than through the cgo binding libvirt.org/go/libvirt, so the
// vflink binary stays pure Go and cross-compiles; a host that runs VMs has virsh anyway. Every
// virsh error carries the command line that was run and virsh's stderr. A domain belongs to
// vflink when its name starts with "vflink-"; its UUID is the server ID, so Running, Stop and
// Start find domains by UUID and never depend on the (sanitized, possibly renamed) domain name.
//
// libvirt's test driver (test:///default) keeps its state in the memory of one virsh process, so
// separate virsh invocations never see each other's domains. The package tests therefore run
// Libvirt against the test driver in replay mode (unexported): each call runs one virsh process
// that first replays the state-changing commands that succeeded before, then the new command, and
// records every command line it ran.
package hypervisor

import "context"

// Interface is one VF handed to a VM.
type Interface struct {
	// MAC is the guest-visible MAC address set on the VF, e.g. 02:5a:0d:c4:39:77.
	MAC string
	// PCIAddress is the VF's full PCI address, domain:bus:slot.function, e.g. 0000:83:13.3.
	PCIAddress string
	// VLAN is the VLAN the VF tags untagged guest traffic with (1-4094); 0 is a trunk VF.
	VLAN int
	// PortID is the Neutron port the VF serves; it is recorded in the domain metadata.
	PortID string
}

// Server is what the host needs to run a VM.
type Server struct {
	// ID is the server's UUID; it becomes the libvirt domain UUID.
	ID string
	// Name is the server name; the domain is called "vflink-<name>", sanitized.
	Name      string
	VCPUs     int
	MemoryMiB int
	// ImageLocation is the boot disk: an absolute file path (or file:// URL) of a raw image, an
	// http(s):// URL (attached read-only), or "" for no disk.
	ImageLocation string
	// Interfaces are the VFs, in guest order.
	Interfaces []Interface
}

// Hypervisor starts and stops servers on this host.
type Hypervisor interface {
	// Start defines and starts s. It is idempotent: a running server with the same interfaces
	// is left alone; a server whose interfaces changed is stopped, redefined and started.
	Start(ctx context.Context, s Server) error
	// Stop stops the server and removes its definition; stopping an unknown server succeeds.
	Stop(ctx context.Context, serverID string) error
	// Running returns the IDs of the servers running on this host, sorted.
	Running(ctx context.Context) ([]string, error)
}

package sriov

import (
	"fmt"
)

// Inventory is a host's SR-IOV PFs selected by the device spec, and what the spec selected that
// cannot be used.
type Inventory struct {
	PFs []PF `json:"pfs"` // sorted by name
	// Problems are messages for the operator: a selected device without SR-IOV, a spec that
	// selects nothing, VFs of one PF selected for two physical networks.
	Problems []string `json:"problems,omitempty"`
}

// PF is a physical function with a netdev on the host, tagged with the physical network of the
// device spec that selected it (or selected some of its VFs).
type PF struct {
	Name            string `json:"name"`
	PCIAddress      string `json:"pci_address"`
	MAC             string `json:"mac"`
	LinkUp          bool   `json:"link_up"` // operstate is "up"
	PhysicalNetwork string `json:"physical_network"`
	Trusted         bool   `json:"trusted"`
	TotalVFs        int    `json:"total_vfs"`
	NumVFs          int    `json:"num_vfs"`
	NUMANode        int    `json:"numa_node"` // -1 when unknown
	Vendor          string `json:"vendor"`    // "8086"
	Device          string `json:"device"`    // "10fb"
	Driver          string `json:"driver"`    // "ixgbe"
	VFs             []VF   `json:"vfs"`       // the selected VFs, by index
}

// VF is a virtual function of a PF.
type VF struct {
	Index      int    `json:"index"`
	PCIAddress string `json:"pci_address"`
	Vendor     string `json:"vendor"`
	Device     string `json:"device"` // "10ed"
	Driver     string `json:"driver"` // "ixgbevf", "vfio-pci", "" when unbound
	Netdev     string `json:"netdev,omitempty"`
}

// Scan reads every netdev in class/net and returns the PFs the specs select, in name order. A
// spec selecting the PF selects all its VFs; a spec selecting VFs (by VF address, VF netdev name
// or the VFs' vendor/product ID) selects those. The first matching spec wins, as in Nova. Invalid
// specs are an error; devices that cannot be used are Problems.
func (fs FS) Scan(specs []DeviceSpec) (Inventory, error) {
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			return Inventory{}, fmt.Errorf("device_spec[%d]: %w", i, err)
		}
	}
	names, err := fs.NetDevices()
	if err != nil {
		return Inventory{}, err
	}
	inv := Inventory{PFs: []PF{}}
	used := make([]bool, len(specs))
	firstMatch := func(ifname, addr, vendor, product string) int {
		for i, s := range specs {
			if s.matches(ifname, addr, vendor, product) {
				used[i] = true
				return i
			}
		}
		return -1
	}
	seen := map[string]bool{} // PCI addresses already taken by a netdev
	for _, name := range names {
		addr, err := fs.NetDevicePCI(name)
		if err != nil {
			return Inventory{}, err
		}
		if addr == "" {
			if i := firstMatch(name, "", "", ""); i >= 0 {
				inv.Problems = append(inv.Problems, fmt.Sprintf("%s matches device_spec[%d] but is not a PCI device", name, i))
			}
			continue
		}
		if seen[addr] {
			continue // a second netdev of one function (rare; e.g. an IPoIB child); the first name wins
		}
		seen[addr] = true
		dev, err := fs.PCIDevice(addr)
		if err != nil {
			return Inventory{}, err
		}
		if dev.PhysFn != "" {
			continue // a VF bound on the host: it is seen through its PF
		}
		pfSpec := firstMatch(name, addr, dev.Vendor, dev.Device)
		if !dev.HasSRIOV {
			if pfSpec >= 0 {
				inv.Problems = append(inv.Problems, fmt.Sprintf("%s (%s) matches device_spec[%d] but has no SR-IOV (no sriov_totalvfs)", name, addr, pfSpec))
			}
			continue
		}
		pf, problems, err := fs.scanPF(name, dev, pfSpec, specs, firstMatch)
		inv.Problems = append(inv.Problems, problems...)
		if err != nil {
			return Inventory{}, err
		}
		if pf != nil {
			inv.PFs = append(inv.PFs, *pf)
		}
	}
	for i, u := range used {
		if !u {
			inv.Problems = append(inv.Problems, fmt.Sprintf("device_spec[%d] %s matches no network device", i, specs[i]))
		}
	}
	return inv, nil
}

// scanPF builds the PF for an SR-IOV function, or nil when neither it nor any of its VFs is
// selected.
func (fs FS) scanPF(name string, dev PCIDevice, pfSpec int, specs []DeviceSpec, firstMatch func(ifname, addr, vendor, product string) int) (*PF, []string, error) {
	var problems []string
	spec := pfSpec
	var vfs []VF
	for i, vfAddr := range dev.VFs {
		if vfAddr == "" {
			continue // a gap in virtfnN; the kernel does not leave one, but do not invent a VF
		}
		vd, err := fs.PCIDevice(vfAddr)
		if err != nil {
			return nil, problems, fmt.Errorf("%s vf %d: %w", name, i, err)
		}
		vf := VF{Index: i, PCIAddress: vfAddr, Vendor: vd.Vendor, Device: vd.Device, Driver: vd.Driver}
		if len(vd.Netdevs) > 0 {
			vf.Netdev = vd.Netdevs[0]
		}
		if pfSpec < 0 {
			s := firstMatch(vf.Netdev, vfAddr, vd.Vendor, vd.Device)
			if s < 0 {
				continue
			}
			if spec < 0 {
				spec = s
			} else if specs[s].PhysicalNetwork != specs[spec].PhysicalNetwork {
				problems = append(problems, fmt.Sprintf("%s vf %d (%s) matches device_spec[%d] for physical_network %q, but %s is on %q from device_spec[%d]; the VF is left out",
					name, i, vfAddr, s, specs[s].PhysicalNetwork, name, specs[spec].PhysicalNetwork, spec))
				continue
			}
		}
		vfs = append(vfs, vf)
	}
	if spec < 0 {
		return nil, problems, nil
	}
	mac, err := fs.NetDeviceMAC(name)
	if err != nil {
		return nil, problems, err
	}
	oper, err := fs.NetDeviceOperState(name)
	if err != nil {
		return nil, problems, err
	}
	if vfs == nil {
		vfs = []VF{}
	}
	return &PF{
		Name:            name,
		PCIAddress:      dev.Address,
		MAC:             mac,
		LinkUp:          oper == "up",
		PhysicalNetwork: specs[spec].PhysicalNetwork,
		Trusted:         specs[spec].Trusted,
		TotalVFs:        dev.TotalVFs,
		NumVFs:          dev.NumVFs,
		NUMANode:        dev.NUMANode,
		Vendor:          dev.Vendor,
		Device:          dev.Device,
		Driver:          dev.Driver,
		VFs:             vfs,
	}, problems, nil
}

package api

// VFState is a VF's programmable state, as `ip link show <pf>` prints it.
type VFState struct {
	MAC        string `json:"mac"`
	VLAN       int    `json:"vlan"`
	SpoofCheck bool   `json:"spoof_check"`
	Trust      bool   `json:"trust"`
	LinkState  string `json:"link_state"`
}

// VFAllocation records that a VF of a host is given to a port, with the VF's state from before
// the first change so it can be restored exactly.
type VFAllocation struct {
	Host       string  `json:"host"`
	PF         string  `json:"pf"`
	VFIndex    int     `json:"vf_index"`
	PCIAddress string  `json:"pci_address"`
	PortID     string  `json:"port_id"`
	Saved      VFState `json:"saved"`
}

// HostPort is one port a host must serve: a port bound to it with a VF-backed VNIC type, and
// the network facts the agent needs to program the VF.
type HostPort struct {
	PortID          string `json:"port_id"`
	MAC             string `json:"mac_address"`
	VNICType        string `json:"vnic_type"`
	DeviceID        string `json:"device_id"`
	PhysicalNetwork string `json:"physical_network"`
	VLAN            int    `json:"vlan"`
	Status          string `json:"status"`
}

// HostServer is a server placed on a host, with what the hypervisor needs to start it.
type HostServer struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	VCPUs         int      `json:"vcpus"`
	MemoryMiB     int      `json:"memory_mib"`
	ImageLocation string   `json:"image_location"`
	PortIDs       []string `json:"port_ids"`
}

// HostWork is the whole desired state of one host at a store revision: the agent reconciles it
// and asks again with ?wait=<revision> to block until something changes.
type HostWork struct {
	Host        string         `json:"host"`
	Revision    int64          `json:"revision"`
	Ports       []HostPort     `json:"ports"`
	Allocations []VFAllocation `json:"allocations"`
	Servers     []HostServer   `json:"servers"`
}

// PortStatus is what an agent reports about a port it serves.
type PortStatus struct {
	Status     string         `json:"status"`
	Profile    map[string]any `json:"binding:profile,omitempty"`
	Conditions []Condition    `json:"conditions,omitempty"`
}

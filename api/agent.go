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
	// Revision is the store revision that wrote the allocation, in answers only (never stored).
	Revision int64 `json:"revision,omitempty"`
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
	// PCISlot is the VF the compute service chose for the port (Nova's binding:profile
	// pci_slot): the agent serves the port on exactly that VF or not at all. Empty: the agent
	// picks a free VF of the physical network.
	PCISlot string `json:"pci_slot,omitempty"`
	// Revision is the store revision of the port as described (its last write).
	Revision int64 `json:"revision,omitempty"`
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

// HostWork is the whole desired state of one host at a store revision. An agent reconciles it,
// then follows it with GET /v1/hosts/<host>/changes?cursor=<Cursor> (HostWorkChanges: only what
// changed); ?wait=<revision> on the whole state blocks until something changed after it.
type HostWork struct {
	Host        string         `json:"host"`
	Revision    int64          `json:"revision"`
	Ports       []HostPort     `json:"ports"`
	Allocations []VFAllocation `json:"allocations"`
	Servers     []HostServer   `json:"servers"`
	// Cursor names the server's change feed just before this state was read: every change the
	// state does not hold comes after it.
	Cursor string `json:"cursor,omitempty"`
}

// Gone names a port no longer bound to a host (Key: its ID) or a VF no longer allocated (Key: its
// PCI address), with the store revision that removed it.
type Gone struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
}

// HostWorkChanges is what changed in a host's desired state after a cursor: for each port and
// VF allocation, only its latest state (Revision tells which). When the cursor cannot be served
// (another server's, or too old) Full holds the whole state instead and the other lists are empty.
type HostWorkChanges struct {
	Host            string         `json:"host"`
	Cursor          string         `json:"cursor"`
	Full            *HostWork      `json:"full,omitempty"`
	Ports           []HostPort     `json:"ports,omitempty"`
	GonePorts       []Gone         `json:"gone_ports,omitempty"`
	Allocations     []VFAllocation `json:"allocations,omitempty"`
	GoneAllocations []Gone         `json:"gone_allocations,omitempty"`
	// Servers is the host's whole server list when it may have changed (ServersChanged).
	ServersChanged bool         `json:"servers_changed,omitempty"`
	Servers        []HostServer `json:"servers,omitempty"`
}

// Empty reports whether the answer holds no change at all (a long poll that timed out).
func (c HostWorkChanges) Empty() bool {
	return c.Full == nil && len(c.Ports) == 0 && len(c.GonePorts) == 0 && len(c.Allocations) == 0 &&
		len(c.GoneAllocations) == 0 && !c.ServersChanged
}

// PortStatus is what an agent reports about a port it serves.
type PortStatus struct {
	Status string `json:"status"`
	// BindingFailed: the host cannot bind the port as asked (the VF the compute service chose
	// is not the host's, or is another port's): binding:vif_type becomes binding_failed.
	BindingFailed bool           `json:"binding_failed,omitempty"`
	Profile       map[string]any `json:"binding:profile,omitempty"`
	Conditions    []Condition    `json:"conditions,omitempty"`
}

// PortReport is a PortStatus of one port, in a HostBatch.
type PortReport struct {
	PortID string `json:"port_id"`
	PortStatus
}

// VFRelease gives back a VF of the host that port held (its agent restored it first).
type VFRelease struct {
	PCIAddress string `json:"pci_address"`
	PortID     string `json:"port_id"`
}

// PortServe claims a VF for a port and reports the port, in one transaction: the claim commits
// only with the report, the report only with the claim. An agent sends it once it has programmed
// the VF, keeping the VF's saved state in its own journal until the answer (so a crash before it
// commits still restores the VF).
type PortServe struct {
	Claim  VFAllocation `json:"claim"`
	Report PortStatus   `json:"report"`
}

// HostBatch is one round trip of a host agent (POST /v1/hosts/<host>/batch): VFs to release, VFs
// to claim, VFs to claim with their port's report (serves) and port reports. Releases commit
// before claims and serves; claims and serves commit in create-only transactions, so a VF is
// never given twice nor a port two VFs; reports commit in their own.
type HostBatch struct {
	Releases []VFRelease    `json:"releases,omitempty"`
	Claims   []VFAllocation `json:"claims,omitempty"`
	Serves   []PortServe    `json:"serves,omitempty"`
	Reports  []PortReport   `json:"reports,omitempty"`
}

// BatchItem is the outcome of one item of a HostBatch. Status is an HTTP status: 200 or 201 done
// (201: a new claim), 400 bad item, 404 port gone, 409 conflict (a claim or a serve: the VF or
// the port is taken, Allocation then holds the holder's allocation when known; a serve or a
// report: the port is bound to another host), 503 store unavailable. A serve that failed wrote
// nothing.
type BatchItem struct {
	Status     int           `json:"status"`
	Message    string        `json:"message,omitempty"`
	Revision   int64         `json:"revision,omitempty"`
	Allocation *VFAllocation `json:"allocation,omitempty"`
}

// OK reports whether the item was done.
func (b BatchItem) OK() bool { return b.Status >= 200 && b.Status < 300 }

// HostBatchResult answers a HostBatch item by item, in order.
type HostBatchResult struct {
	Releases []BatchItem `json:"releases"`
	Claims   []BatchItem `json:"claims"`
	Serves   []BatchItem `json:"serves"`
	Reports  []BatchItem `json:"reports"`
}

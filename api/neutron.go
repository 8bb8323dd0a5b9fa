// Package api holds vflink's public resource types: the JSON shapes of the Neutron v2.0 subset
// (networks, subnets, ports) exactly as real Neutron writes them, shared by the server, the Go
// client and the CLI.
package api

// Network is a Neutron network plus vflink's VN ID (its VNI in the fabric).
type Network struct {
	ID                    string   `json:"id"`
	Name                  string   `json:"name"`
	TenantID              string   `json:"tenant_id"`
	ProjectID             string   `json:"project_id"`
	AdminStateUp          bool     `json:"admin_state_up"`
	MTU                   int      `json:"mtu"`
	Status                string   `json:"status"`
	Subnets               []string `json:"subnets"`
	Shared                bool     `json:"shared"`
	PortSecurityEnabled   bool     `json:"port_security_enabled"`
	RouterExternal        bool     `json:"router:external"`
	NetworkType           *string  `json:"provider:network_type"`
	PhysicalNetwork       *string  `json:"provider:physical_network"`
	SegmentationID        *int     `json:"provider:segmentation_id"`
	AvailabilityZoneHints []string `json:"availability_zone_hints"`
	AvailabilityZones     []string `json:"availability_zones"`
	IPv4AddressScope      *string  `json:"ipv4_address_scope"`
	IPv6AddressScope      *string  `json:"ipv6_address_scope"`
	Description           string   `json:"description"`
	Tags                  []string `json:"tags"`
	CreatedAt             string   `json:"created_at"`
	UpdatedAt             string   `json:"updated_at"`
	RevisionNumber        int64    `json:"revision_number"`
	VNID                  int      `json:"vflink:vn_id"`
}

// Network types vflink supports for provider networks.
const (
	NetworkTypeVLAN = "vlan"
	NetworkTypeFlat = "flat"
)

// AllocationPool is an inclusive range of addresses IPAM hands out.
type AllocationPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a static route handed to ports of a subnet.
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	TenantID        string           `json:"tenant_id"`
	ProjectID       string           `json:"project_id"`
	NetworkID       string           `json:"network_id"`
	IPVersion       int              `json:"ip_version"`
	SubnetPoolID    *string          `json:"subnetpool_id"`
	EnableDHCP      bool             `json:"enable_dhcp"`
	IPv6RAMode      *string          `json:"ipv6_ra_mode"`
	IPv6AddressMode *string          `json:"ipv6_address_mode"`
	GatewayIP       *string          `json:"gateway_ip"`
	CIDR            string           `json:"cidr"`
	AllocationPools []AllocationPool `json:"allocation_pools"`
	HostRoutes      []HostRoute      `json:"host_routes"`
	DNSNameservers  []string         `json:"dns_nameservers"`
	Description     string           `json:"description"`
	ServiceTypes    []string         `json:"service_types"`
	Tags            []string         `json:"tags"`
	CreatedAt       string           `json:"created_at"`
	UpdatedAt       string           `json:"updated_at"`
	RevisionNumber  int64            `json:"revision_number"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// Condition tells an operator where a port stands in one stage of the workflow
// (VFProgrammed, LinkDiscovered, DeviceConfigured).
type Condition struct {
	Type               string `json:"type"`
	Status             string `json:"status"` // "True", "False", "Unknown"
	Reason             string `json:"reason"`
	Message            string `json:"message"`
	LastTransitionTime string `json:"last_transition_time"`
}

// Port is a Neutron port with the binding extension and vflink's conditions.
type Port struct {
	ID                  string         `json:"id"`
	Name                string         `json:"name"`
	NetworkID           string         `json:"network_id"`
	TenantID            string         `json:"tenant_id"`
	ProjectID           string         `json:"project_id"`
	MACAddress          string         `json:"mac_address"`
	AdminStateUp        bool           `json:"admin_state_up"`
	Status              string         `json:"status"`
	DeviceID            string         `json:"device_id"`
	DeviceOwner         string         `json:"device_owner"`
	FixedIPs            []FixedIP      `json:"fixed_ips"`
	PortSecurityEnabled bool           `json:"port_security_enabled"`
	SecurityGroups      []string       `json:"security_groups"`
	VNICType            string         `json:"binding:vnic_type"`
	Profile             map[string]any `json:"binding:profile"`
	HostID              string         `json:"binding:host_id"`
	VIFType             string         `json:"binding:vif_type"`
	VIFDetails          map[string]any `json:"binding:vif_details"`
	AllowedAddressPairs []AddressPair  `json:"allowed_address_pairs"`
	ExtraDHCPOpts       []ExtraDHCPOpt `json:"extra_dhcp_opts"`
	Description         string         `json:"description"`
	Tags                []string       `json:"tags"`
	CreatedAt           string         `json:"created_at"`
	UpdatedAt           string         `json:"updated_at"`
	RevisionNumber      int64          `json:"revision_number"`
	Conditions          []Condition    `json:"vflink:conditions"`
	// TrunkDetails is set on a trunk's parent port (Neutron's trunk-details extension).
	TrunkDetails *TrunkDetails `json:"trunk_details,omitempty"`
	// PCIRequest is the VF the compute service chose: binding:profile's pci_slot as the binding
	// request set it (Nova's PCI tracker picked it), "" when vflink's agent chooses. Stored,
	// never shown (the agent's own choice is reported in binding:profile too).
	PCIRequest string `json:"vflink:pci_request,omitempty"`
	// Inactive are the port's inactive bindings (Neutron's binding-extended): the destination of
	// a live migration, bound but not served until it is activated. The active binding is the
	// port's binding:* attributes. Stored, shown only through /ports/<id>/bindings.
	Inactive []PortBinding `json:"vflink:inactive_bindings,omitempty"`
}

// PortBinding is one host's binding of a port (binding-extended's "binding").
type PortBinding struct {
	Host       string         `json:"host"`
	VNICType   string         `json:"vnic_type"`
	Profile    map[string]any `json:"profile"`
	VIFType    string         `json:"vif_type"`
	VIFDetails map[string]any `json:"vif_details"`
	Status     string         `json:"status"`
}

// Binding statuses (binding-extended).
const (
	BindingActive   = "ACTIVE"
	BindingInactive = "INACTIVE"
)

// ConditionVFProgrammed is the port condition the host agent owns: its VF is programmed.
const ConditionVFProgrammed = "VFProgrammed"

// TrunkDetails is what a trunk's parent port shows of its trunk.
type TrunkDetails struct {
	TrunkID  string       `json:"trunk_id"`
	SubPorts []SubPortMAC `json:"sub_ports"`
}

// SubPortMAC is a subport as the parent port shows it.
type SubPortMAC struct {
	SubPort
	MACAddress string `json:"mac_address"`
}

// Trunk is a Neutron trunk: a VLAN-aware VM's parent port (untagged traffic, on its own network)
// and subports (tagged traffic, one network per VLAN). In vflink the parent is a VF port: its VF
// passes the VM's tags (VLAN 0) and the switch port carries the subports' networks tagged and the
// parent's network, unless it is a trunk network (VLAN 0), untagged.
type Trunk struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	PortID         string    `json:"port_id"`
	SubPorts       []SubPort `json:"sub_ports"`
	TenantID       string    `json:"tenant_id"`
	ProjectID      string    `json:"project_id"`
	AdminStateUp   bool      `json:"admin_state_up"`
	Status         string    `json:"status"`
	Tags           []string  `json:"tags"`
	CreatedAt      string    `json:"created_at"`
	UpdatedAt      string    `json:"updated_at"`
	RevisionNumber int64     `json:"revision_number"`
}

// SubPort is one subport of a trunk.
type SubPort struct {
	PortID           string `json:"port_id"`
	SegmentationType string `json:"segmentation_type"`
	SegmentationID   int    `json:"segmentation_id"`
}

// VNIC types a port may have.
const (
	VNICNormal         = "normal"
	VNICDirect         = "direct"
	VNICDirectPhysical = "direct-physical"
	VNICMacvtap        = "macvtap"
	VNICBaremetal      = "baremetal"
)

// VNICTypes lists the accepted binding:vnic_type values.
var VNICTypes = []string{VNICNormal, VNICDirect, VNICDirectPhysical, VNICMacvtap, VNICBaremetal}

// VIF types the server reports in binding:vif_type.
const (
	VIFUnbound       = "unbound"
	VIFBindingFailed = "binding_failed"
	VIFHwVeb         = "hw_veb"
	VIFHostdevPhys   = "hostdev_physical"
	VIFOther         = "other"
)

// Port statuses.
const (
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
	StatusActive = "ACTIVE"
	StatusError  = "ERROR"
)

// DeviceOwnerDevicePort marks the device ports vflink derives (seed step 5).
const DeviceOwnerDevicePort = "vflink:device-port"

// NeutronError is the error body every Neutron API error carries.
type NeutronError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// ErrorBody wraps NeutronError as it appears on the wire.
type ErrorBody struct {
	NeutronError NeutronError `json:"NeutronError"`
}

// Extension is one entry of GET /v2.0/extensions.
type Extension struct {
	Alias       string   `json:"alias"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Updated     string   `json:"updated"`
	Links       []string `json:"links"`
}

package api

// Device is a switch vflink configures. Credentials are write-only: they are accepted on create
// and update and never returned; HasCredentials says whether some are stored.
type Device struct {
	Name              string       `json:"name"`
	Driver            string       `json:"driver"`             // "junos" or "ovs"
	ManagementAddress string       `json:"management_address"` // host:port of NETCONF/SSH (junos) or the OVSDB (ovs)
	ChassisMAC        string       `json:"chassis_mac,omitempty"`
	ASN               uint32       `json:"asn,omitempty"`
	PortNameRewrite   *PortRewrite `json:"port_name_rewrite,omitempty"`
	Description       string       `json:"description,omitempty"`
	HasCredentials    bool         `json:"has_credentials"`
	Status            DeviceStatus `json:"status"`
	CreatedAt         string       `json:"created_at"`
	UpdatedAt         string       `json:"updated_at"`
}

// PortRewrite maps the port names a switch announces in LLDP to its interface names.
type PortRewrite struct {
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
}

// DeviceCredentials log in to a device; only ever sent, never answered.
type DeviceCredentials struct {
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	// HostKey pins the device's SSH host key (authorized_keys form); empty: learnt on first use.
	HostKey string `json:"host_key,omitempty"`
}

// DeviceStatus is written by the device manager only.
type DeviceStatus struct {
	Reachable          bool   `json:"reachable"`
	InSync             bool   `json:"in_sync"`
	LastCommitTime     string `json:"last_commit_time,omitempty"`
	LastCommitRevision string `json:"last_commit_revision,omitempty"`
	LastError          string `json:"last_error,omitempty"`
	// Commits counts the commits this device manager made on the device.
	Commits int `json:"commits,omitempty"`
	// ObservedGeneration is the intent revision the status describes.
	ObservedGeneration int64 `json:"observed_generation,omitempty"`
	// Events are the newest events, last first (at most 20).
	Events []DeviceEvent `json:"events,omitempty"`
}

// LLDPLink is what a host's PF hears from the switch port it is cabled to.
type LLDPLink struct {
	SwitchName       string `json:"switch_name"`
	ChassisID        string `json:"chassis_id"`
	ChassisIDSubtype string `json:"chassis_id_subtype"`
	PortID           string `json:"port_id"`
	PortIDSubtype    string `json:"port_id_subtype"`
	PortDescription  string `json:"port_description"`
	MgmtAddress      string `json:"management_address,omitempty"`
	LastSeen         string `json:"last_seen"`
}

// Attachment is one thing a switch must carry for vflink: a network's VLAN on an interface or on
// a port group (LAG, or ESI-LAG across switches) of interfaces.
type Attachment struct {
	Device    string   `json:"device"`
	Interface string   `json:"interface"`            // "" for a port group
	PortGroup []Member `json:"port_group,omitempty"` // all members, on every device of the group
	NetworkID string   `json:"network_id"`
	// NetworkName is the network's name when the attachment was derived (for descriptions only).
	NetworkName string   `json:"network_name,omitempty"`
	VNI         int      `json:"vni"`
	VLAN        int      `json:"vlan"`
	Native      bool     `json:"native"` // untagged on the interface
	Ports       []string `json:"ports"`  // the ports that need it (VF ports, or a manual device port)
	// Manual is set for an attachment a user asked for with a baremetal port carrying
	// local_link_information (the seed's manual step 5), for hosts without an agent.
	Manual bool `json:"manual,omitempty"`
}

// Member is one (device, interface) of a port group.
type Member struct {
	Device    string `json:"device"`
	Interface string `json:"interface"`
}

// DeviceIntent is what one device must carry, as the binder derived it: the device manager renders
// it into the device's configuration. Kept under fabric-intent/<device>; one writer (the binder).
type DeviceIntent struct {
	Device      string       `json:"device"`
	Attachments []Attachment `json:"attachments"`
}

// DeviceEvent is one thing the device manager saw on a device (drift repaired, commit failed, ...).
type DeviceEvent struct {
	Time    string `json:"time"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

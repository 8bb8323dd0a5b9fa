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
}

package api

// SecurityGroup is a Neutron security group (the security-group extension) with its rules
// embedded, as Neutron shows it.
type SecurityGroup struct {
	ID             string              `json:"id"`
	Name           string              `json:"name"`
	Description    string              `json:"description"`
	TenantID       string              `json:"tenant_id"`
	ProjectID      string              `json:"project_id"`
	Stateful       bool                `json:"stateful"`
	Rules          []SecurityGroupRule `json:"security_group_rules"`
	Tags           []string            `json:"tags"`
	CreatedAt      string              `json:"created_at"`
	UpdatedAt      string              `json:"updated_at"`
	RevisionNumber int64               `json:"revision_number"`
}

// SecurityGroupRule is one rule of a security group. Nil pointers are JSON null, as in Neutron.
type SecurityGroupRule struct {
	ID              string  `json:"id"`
	TenantID        string  `json:"tenant_id"`
	ProjectID       string  `json:"project_id"`
	SecurityGroupID string  `json:"security_group_id"`
	Direction       string  `json:"direction"` // ingress or egress
	Ethertype       string  `json:"ethertype"` // IPv4 or IPv6
	Protocol        *string `json:"protocol"`  // a name (tcp) or a number as a string ("17")
	PortRangeMin    *int    `json:"port_range_min"`
	PortRangeMax    *int    `json:"port_range_max"`
	RemoteIPPrefix  *string `json:"remote_ip_prefix"`
	NormalizedCIDR  *string `json:"normalized_cidr"`
	RemoteGroupID   *string `json:"remote_group_id"`
	Description     string  `json:"description"`
	CreatedAt       string  `json:"created_at"`
	UpdatedAt       string  `json:"updated_at"`
	RevisionNumber  int64   `json:"revision_number"`
}

// AddressPair is one of a port's allowed address pairs: an IP address or CIDR the port may also
// send from, with a MAC (the port's own unless given).
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// ExtraDHCPOpt is one of a port's extra DHCP options (Neutron's extra_dhcp_opt extension).
type ExtraDHCPOpt struct {
	OptName   string `json:"opt_name"`
	OptValue  string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

package api

// SubnetPool is a Neutron subnet pool (the subnet_allocation extension): prefixes subnets are
// carved from when they name the pool instead of a CIDR.
type SubnetPool struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	TenantID         string   `json:"tenant_id"`
	ProjectID        string   `json:"project_id"`
	Prefixes         []string `json:"prefixes"`
	DefaultPrefixLen int      `json:"default_prefixlen"`
	MinPrefixLen     int      `json:"min_prefixlen"`
	MaxPrefixLen     int      `json:"max_prefixlen"`
	IPVersion        int      `json:"ip_version"`
	Shared           bool     `json:"shared"`
	IsDefault        bool     `json:"is_default"`
	DefaultQuota     *int     `json:"default_quota"`
	AddressScopeID   *string  `json:"address_scope_id"`
	Description      string   `json:"description"`
	Tags             []string `json:"tags"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
	RevisionNumber   int64    `json:"revision_number"`
}

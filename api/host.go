package api

import "regexp"

// AgentIDRule says what an agent ID may be (Host.AgentID).
const AgentIDRule = "1-64 letters, digits, '-', '_' or '.'"

var agentIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidAgentID reports whether s follows AgentIDRule.
func ValidAgentID(s string) bool { return agentIDPattern.MatchString(s) }

// Host is a compute host as its agent registers it (liveness by an etcd lease).
type Host struct {
	Name string `json:"name"`
	// AgentID names the agent that registers the host (kept in its state directory, so it
	// survives restarts). While the host's registration lives, another agent_id is refused: a
	// host has one agent. Empty: not checked (the registered agent, if any, is kept).
	AgentID   string `json:"agent_id,omitempty"`
	PFs       []PF   `json:"pfs"`
	UpdatedAt string `json:"updated_at"`
}

// PF is an SR-IOV physical function of a host, matched by the device spec to a physical network.
type PF struct {
	Name            string `json:"name"`
	PCIAddress      string `json:"pci_address"`
	MAC             string `json:"mac_address"`
	PhysicalNetwork string `json:"physical_network"`
	TotalVFs        int    `json:"total_vfs"`
	NumVFs          int    `json:"num_vfs"`
	NUMANode        int    `json:"numa_node"`
	// Link is the PF's LLDP neighbor, nil until one is heard (or after it expired).
	Link *LLDPLink `json:"link,omitempty"`
}

// AgentRecord is a host agent as the Neutron agent API lists it: written when the agent first
// registers the host and on every fresh registration after it, and kept when the agent dies (the
// leased Host is its liveness), until an admin deletes it.
type AgentRecord struct {
	Host         string `json:"host"`
	AgentID      string `json:"agent_id,omitempty"`
	CreatedAt    string `json:"created_at"`
	StartedAt    string `json:"started_at"`
	AdminStateUp bool   `json:"admin_state_up"`
	Description  string `json:"description"`
}

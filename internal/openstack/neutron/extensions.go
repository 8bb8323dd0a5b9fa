package neutron

import (
	"net/http"

	"github.com/vflink/vflink/api"
)

func ext(alias, name, desc string) api.Extension {
	return api.Extension{Alias: alias, Name: name, Description: desc, Updated: "2026-11-25T00:00:00-00:00", Links: []string{}}
}

// extensions lists only what this server really implements.
var extensions = []api.Extension{
	ext("provider", "Provider Network", "Expose mapping of virtual networks to physical networks (vlan, flat)"),
	ext("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
	ext("binding-extended", "Port Bindings Extended", "Expose port bindings of a virtual port to external application"),
	ext("port-security", "Port Security", "Provides port security"),
	ext("security-group", "security-group", "The security groups extension."),
	ext("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
	ext("security-groups-normalized-cidr", "Normalized CIDR field for security group rules", "Add new field with normalized remote_ip_prefix cidr in SG rule"),
	ext("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
	ext("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
	ext("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network, security_group, port", "Enables to set tag on resources with standard attribute."),
	ext("tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"),
	ext("standard-attr-revisions", "Resource revision numbers", "Expose revision_number and If-Match constraints on standard attribute resources"),
	ext("revision-if-match", "If-Match constraints based on revision_number", "Updates can be made conditional on If-Match: revision_number=N"),
	ext("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
	ext("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
	ext("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
	ext("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
	ext("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
	ext("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
	ext("trunk", "Trunk Extension", "Provides support for trunk ports"),
	ext("trunk-details", "Trunk port details", "Expose trunk port details"),
	ext("external-net", "Neutron external network", "Adds external network attribute to network resource."),
	ext("agent", "agent", "The agent management extension."),
	ext("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
	ext("service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron advanced services"),
	ext("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"),
	ext("quotas", "Quota management support", "Expose functions for quotas management per project"),
	ext("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
}

func (s *Service) listExtensions(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"extensions": extensions})
	return nil
}

func (s *Service) showExtension(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	for _, e := range extensions {
		if e.Alias == alias {
			writeJSON(w, http.StatusOK, map[string]any{"extension": e})
			return nil
		}
	}
	return errf(http.StatusNotFound, "ExtensionNotFound", "Extension with alias %s does not exist", alias)
}

func (s *Service) versionDoc(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"resources": []map[string]any{
		{"name": "network", "collection": "networks", "links": []map[string]string{{"rel": "self", "href": "networks"}}},
		{"name": "subnet", "collection": "subnets", "links": []map[string]string{{"rel": "self", "href": "subnets"}}},
		{"name": "port", "collection": "ports", "links": []map[string]string{{"rel": "self", "href": "ports"}}},
	}})
	return nil
}

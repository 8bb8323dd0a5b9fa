package neutron

import "net/http"

// listRouters answers GET /routers with the truth: vflink has no Neutron routers (L3 lives in
// the EVPN-VXLAN fabric, and the router extension is not listed), so the list is always empty.
// Clients that list routers before cleaning up a network (Tempest's DHCPv6 tests, Horizon) get
// an answer instead of a 404; every other /routers call is 404, as without the L3 plugin.
func (s *Service) listRouters(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"routers": []any{}})
	return nil
}

// serviceProvider is one entry of Neutron's service-type extension.
type serviceProvider struct {
	ServiceType string `json:"service_type"`
	Name        string `json:"name"`
	Default     bool   `json:"default"`
}

// listServiceProviders answers the service-type extension: vflink loads no advanced-service
// drivers (L3, VPN, load balancing), so there is no provider to list.
func (s *Service) listServiceProviders(w http.ResponseWriter, r *http.Request) error {
	return writeList(w, r, "service_providers", []serviceProvider{}, func(p *serviceProvider, f string) ([]string, bool) {
		switch f {
		case "service_type":
			return []string{p.ServiceType}, true
		case "name":
			return []string{p.Name}, true
		}
		return nil, false
	})
}

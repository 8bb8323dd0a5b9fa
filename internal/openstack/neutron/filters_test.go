package neutron_test

import "testing"

func TestIPSubstringFilterAndServiceProviders(t *testing.T) {
	e := newEnv(t)
	n := e.network("f", nil)
	sub := e.subnet(str(n, "id"), "10.7.0.0/24", nil)
	for _, ip := range []string{"10.7.0.19", "10.7.0.21"} {
		e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(n, "id"),
			"fixed_ips": []any{map[string]any{"subnet_id": str(sub, "id"), "ip_address": ip}}}})
	}
	for q, want := range map[string]int{
		"fixed_ips=ip_address_substr=10.7.0.1": 1,
		"fixed_ips=ip_address_substr=10.7.0.":  2,
		"fixed_ips=ip_address_substr=10.8":     0,
		"fixed_ips=ip_address=10.7.0.21":       1,
	} {
		if l, _ := e.must(200, "GET", "/ports?"+q, nil).body["ports"].([]any); len(l) != want {
			t.Errorf("%s: %d ports, want %d", q, len(l), want)
		}
	}
	r := e.must(200, "GET", "/service-providers", nil)
	if l, ok := r.body["service_providers"].([]any); !ok || len(l) != 0 {
		t.Errorf("service providers: %s", r.raw)
	}
	if l, ok := e.must(200, "GET", "/routers", nil).body["routers"].([]any); !ok || len(l) != 0 {
		t.Errorf("routers: want an empty list")
	}
	e.must(404, "POST", "/routers", map[string]any{"router": map[string]any{}})
	if l, _ := e.must(200, "GET", "/networks.json", nil).body["networks"].([]any); len(l) != 1 {
		t.Errorf("GET /networks.json: %d networks", len(l))
	}
}

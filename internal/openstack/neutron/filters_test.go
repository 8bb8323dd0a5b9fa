package neutron_test

import (
	"strings"
	"testing"
)

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

func TestSortingAndPaging(t *testing.T) {
	e := newEnv(t)
	for _, n := range []struct {
		name string
		mtu  int
	}{{"b", 1500}, {"a", 9000}, {"c", 1500}, {"d", 576}} {
		e.network(n.name, map[string]any{"mtu": n.mtu})
	}
	names := func(path string) string {
		t.Helper()
		l, _ := e.must(200, "GET", path, nil).body["networks"].([]any)
		var out []string
		for _, n := range l {
			out = append(out, str(n.(map[string]any), "name"))
		}
		return strings.Join(out, "")
	}
	for path, want := range map[string]string{
		"/networks?sort_key=name&sort_dir=asc":                            "abcd",
		"/networks?sort_key=name&sort_dir=desc":                           "dcba",
		"/networks?sort_key=mtu&sort_dir=asc&sort_key=name&sort_dir=desc": "dcba",
		"/networks?sort_key=mtu&sort_dir=desc&sort_key=name&sort_dir=asc": "abcd",
		"/networks?sort_key=name&limit=2":                                 "ab",
		"/networks?sort_key=name&sort_dir=asc&page_reverse=True&limit=2":  "cd",
	} {
		if got := names(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	// the next link continues in the same order
	r := e.must(200, "GET", "/networks?sort_key=name&limit=3", nil)
	links, _ := r.body["networks_links"].([]any)
	if len(links) != 1 {
		t.Fatalf("links: %s", r.raw)
	}
	href := str(links[0].(map[string]any), "href")
	if got := names(strings.TrimPrefix(href, "/v2.0")); got != "d" {
		t.Errorf("next page %s: %s, want d", href, got)
	}
	for _, bad := range []string{"sort_key=bogus", "sort_key=name&sort_dir=up", "sort_key=name&sort_dir=asc&sort_dir=desc", "sort_dir=asc"} {
		e.must(400, "GET", "/networks?"+bad, nil)
	}
}

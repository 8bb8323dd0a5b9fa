package neutron_test

import (
	"strings"
	"sync"
	"testing"
)

func TestSubnetPools(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, "POST", "/subnetpools", map[string]any{"subnetpool": map[string]any{
		"name": "sp", "prefixes": []any{"10.20.0.0/17", "10.20.128.0/17", "10.20.1.0/24"}, "default_prefixlen": 24}})
	pool := r.obj("subnetpool")
	if l, _ := pool["prefixes"].([]any); len(l) != 1 || l[0] != "10.20.0.0/16" || num(pool, "min_prefixlen") != 8 || num(pool, "max_prefixlen") != 32 || num(pool, "ip_version") != 4 {
		t.Fatalf("pool: %s", r.raw)
	}
	pid := str(pool, "id")
	for _, bad := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"prefixes": []any{}}, "Empty subnet pool prefix list"},
		{map[string]any{"prefixes": []any{"10.0.0.0/8", "2001:db8::/32"}}, "Cannot mix"},
		{map[string]any{"prefixes": []any{"nope"}}, "not a valid IP subnet"},
		{map[string]any{"prefixes": []any{"10.0.0.0/8"}, "min_prefixlen": 24, "max_prefixlen": 16}, "Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16"},
		{map[string]any{"prefixes": []any{"10.0.0.0/8"}, "default_prefixlen": 4}, "Illegal prefix bounds: default_prefixlen=4, min_prefixlen=8"},
		{map[string]any{"name": "x"}, "'prefixes' not specified"},
	} {
		if r := e.must(400, "POST", "/subnetpools", map[string]any{"subnetpool": bad.body}); !strings.Contains(r.errMsg(), bad.want) {
			t.Errorf("%v: %s, want %q", bad.body, r.raw, bad.want)
		}
	}
	// only an admin shares a pool
	e.must(403, "POST", "/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []any{"10.0.0.0/8"}, "shared": true}}, "X-Roles", "member")

	n := e.network("n", nil)
	fromPool := func(extra map[string]any) map[string]any {
		b := map[string]any{"network_id": str(n, "id"), "ip_version": 4, "subnetpool_id": pid}
		for k, v := range extra {
			b[k] = v
		}
		return e.must(201, "POST", "/subnets", map[string]any{"subnet": b}).obj("subnet")
	}
	s1 := fromPool(nil)
	if str(s1, "cidr") != "10.20.0.0/24" || str(s1, "subnetpool_id") != pid || str(s1, "gateway_ip") != "10.20.0.1" {
		t.Errorf("first subnet from the pool: %v", s1)
	}
	s2 := fromPool(map[string]any{"prefixlen": 26})
	if str(s2, "cidr") != "10.20.1.0/26" {
		t.Errorf("a /26: %v", s2)
	}
	// a CIDR inside the pool, not overlapping
	n2 := e.network("n2", nil)
	r = e.must(400, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n2, "id"), "ip_version": 4, "subnetpool_id": pid, "cidr": "10.20.0.128/25"}})
	if !strings.Contains(r.errMsg(), "overlaps") {
		t.Errorf("overlapping CIDR from another network: %s", r.raw)
	}
	r = e.must(400, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n2, "id"), "ip_version": 4, "subnetpool_id": pid, "cidr": "10.30.0.0/24"}})
	if !strings.Contains(r.errMsg(), "within the subnet pool") {
		t.Errorf("CIDR outside: %s", r.raw)
	}
	e.must(400, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n2, "id"), "ip_version": 4, "subnetpool_id": pid, "prefixlen": 4}})
	e.must(400, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n2, "id"), "ip_version": 4}})
	// concurrent allocations never share a prefix
	var wg sync.WaitGroup
	cidrs := make([]string, 8)
	for i := range cidrs {
		wg.Go(func() {
			r := e.do("POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(n2, "id"), "ip_version": 4, "subnetpool_id": pid, "prefixlen": 24, "name": "c"}})
			cidrs[i] = str(r.obj("subnet"), "cidr")
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, c := range cidrs {
		if c == "" || seen[c] {
			t.Errorf("concurrent allocations: %v", cidrs)
			break
		}
		seen[c] = true
	}
	// in use: no delete; the pool grows but never shrinks
	if r := e.must(409, "DELETE", "/subnetpools/"+pid, nil); r.errType() != "SubnetPoolInUse" {
		t.Errorf("delete in use: %s", r.raw)
	}
	e.must(400, "PUT", "/subnetpools/"+pid, map[string]any{"subnetpool": map[string]any{"prefixes": []any{"10.20.0.0/17"}}})
	u := e.must(200, "PUT", "/subnetpools/"+pid, map[string]any{"subnetpool": map[string]any{"prefixes": []any{"10.20.0.0/16", "10.21.0.0/16"}, "name": "sp2"}}).obj("subnetpool")
	if l, _ := u["prefixes"].([]any); len(l) != 1 || l[0] != "10.20.0.0/15" || str(u, "name") != "sp2" {
		t.Errorf("grown pool: %v", u)
	}
	// another project does not see it
	e.must(404, "GET", "/subnetpools/"+pid, nil, "X-Project-Id", "p2", "X-Roles", "member")
	// deleting the subnets (and a whole network) gives the prefixes back
	e.must(204, "DELETE", "/networks/"+str(n2, "id"), nil)
	e.must(204, "DELETE", "/subnets/"+str(s1, "id"), nil)
	e.must(204, "DELETE", "/subnets/"+str(s2, "id"), nil)
	e.must(204, "DELETE", "/subnetpools/"+pid, nil)
	e.must(404, "GET", "/subnetpools/"+pid, nil)
}

func TestTagsInCreateBodies(t *testing.T) {
	e := newEnv(t)
	n := e.network("t", map[string]any{"tags": []any{"red", "blue"}})
	if l, _ := n["tags"].([]any); len(l) != 2 {
		t.Errorf("network tags: %v", n["tags"])
	}
	sn := e.subnet(str(n, "id"), "10.40.0.0/24", map[string]any{"tags": []any{"x"}})
	if l, _ := sn["tags"].([]any); len(l) != 1 {
		t.Errorf("subnet tags: %v", sn["tags"])
	}
	if l, _ := e.must(200, "GET", "/networks?tags=red", nil).body["networks"].([]any); len(l) != 1 {
		t.Errorf("tags filter: %v", l)
	}
	e.must(400, "PUT", "/networks/"+str(n, "id"), map[string]any{"network": map[string]any{"tags": []any{"z"}}})
	// an update without tags keeps them
	u := e.must(200, "PUT", "/networks/"+str(n, "id"), map[string]any{"network": map[string]any{"name": "t2"}}).obj("network")
	if l, _ := u["tags"].([]any); len(l) != 2 {
		t.Errorf("tags after an update: %v", u["tags"])
	}
	e.must(400, "PUT", "/subnets/"+str(sn, "id"), map[string]any{"subnet": map[string]any{"tags": []any{"z"}}})
	e.must(400, "POST", "/networks", map[string]any{"network": map[string]any{"tags": "red"}})
	sp := e.must(201, "POST", "/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []any{"10.50.0.0/16"}, "tags": []any{"p"}}}).obj("subnetpool")
	e.must(201, "PUT", "/subnetpools/"+str(sp, "id")+"/tags/q", nil)
	if l, _ := e.must(200, "GET", "/subnetpools/"+str(sp, "id")+"/tags", nil).body["tags"].([]any); len(l) != 2 {
		t.Errorf("pool tags: %v", l)
	}
}

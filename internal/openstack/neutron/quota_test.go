package neutron_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func member(p string) []string { return []string{"X-Project-Id", p, "X-Roles", "member"} }

func TestQuotasShowSetDelete(t *testing.T) {
	e := newEnv(t)
	// unlimited by default (vflink's default; Neutron's own are 100/100/500)
	q := e.must(200, "GET", "/quotas/p2", nil).obj("quota")
	for _, k := range []string{"network", "subnet", "port"} {
		if num(q, k) != -1 {
			t.Fatalf("default %s quota %v, want -1", k, q[k])
		}
	}
	// a member sees its own project's quota, not another's, and cannot set one
	e.must(200, "GET", "/quotas/p2", nil, member("p2")...)
	if r := e.do("GET", "/quotas/p3", nil, member("p2")...); r.code != 403 {
		t.Fatalf("member reading another project's quota: %d %s", r.code, r.raw)
	}
	if r := e.do("PUT", "/quotas/p2", map[string]any{"quota": map[string]any{"port": 1}}, member("p2")...); r.code != 403 {
		t.Fatalf("member setting a quota: %d %s", r.code, r.raw)
	}
	// bad values name the field and what is allowed; nothing is stored
	for body, want := range map[string]string{
		`{"quota": {"port": -2}}`:  "port",
		`{"quota": {"port": "x"}}`: "port",
		`{"quota": {"router": 3}}`: "router",
		`{"quotas": {"port": 3}}`:  "quota",
	} {
		r := e.do("PUT", "/quotas/p2", body)
		if r.code != 400 || !strings.Contains(r.errMsg(), want) {
			t.Fatalf("PUT %s: %d %s, want 400 naming %s", body, r.code, r.raw, want)
		}
	}
	if num(e.must(200, "GET", "/quotas/p2", nil).obj("quota"), "port") != -1 {
		t.Fatal("a refused update changed the quota")
	}
	got := e.must(200, "PUT", "/quotas/p2", map[string]any{"quota": map[string]any{"port": "5", "network": 2}}).obj("quota")
	if num(got, "port") != 5 || num(got, "network") != 2 || num(got, "subnet") != -1 {
		t.Fatalf("after PUT: %v", got)
	}
	e.must(200, "PUT", "/quotas/p2", map[string]any{"quota": map[string]any{"subnet": 7}})
	got = e.must(200, "GET", "/quotas/p2", nil).obj("quota")
	if num(got, "port") != 5 || num(got, "subnet") != 7 {
		t.Fatalf("a second PUT must merge: %v", got)
	}
	list := e.must(200, "GET", "/quotas", nil).body["quotas"].([]any)
	if len(list) != 1 || str(list[0].(map[string]any), "project_id") != "p2" {
		t.Fatalf("quota list: %v", list)
	}
	e.must(204, "DELETE", "/quotas/p2", nil)
	if num(e.must(200, "GET", "/quotas/p2", nil).obj("quota"), "port") != -1 {
		t.Fatal("DELETE did not reset the quota to the default")
	}
	ext := e.must(200, "GET", "/extensions/quotas", nil).obj("extension")
	if str(ext, "alias") != "quotas" {
		t.Fatalf("quotas extension not listed: %v", ext)
	}
}

// Creates past a limit get Neutron's 409 OverQuota, even when many race for the last places;
// a delete frees a place; details count what is used.
func TestQuotaEnforcedUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	e.must(200, "PUT", "/quotas/p2", map[string]any{"quota": map[string]any{"port": 5, "network": 1, "subnet": 1}})
	hdr := member("p2")
	net := e.must(201, "POST", "/networks", map[string]any{"network": map[string]any{"name": "n"}}, hdr...).obj("network")
	if r := e.do("POST", "/networks", map[string]any{"network": map[string]any{"name": "n2"}}, hdr...); r.code != 409 || r.errType() != "OverQuota" || r.errMsg() != "Quota exceeded for resources: ['network']." {
		t.Fatalf("second network: %d %s", r.code, r.raw)
	}
	e.must(201, "POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(net, "id"), "cidr": "10.0.0.0/24", "ip_version": 4}}, hdr...)
	if r := e.do("POST", "/subnets", map[string]any{"subnet": map[string]any{"network_id": str(net, "id"), "cidr": "10.0.1.0/24", "ip_version": 4}}, hdr...); r.code != 409 || r.errType() != "OverQuota" {
		t.Fatalf("second subnet: %d %s", r.code, r.raw)
	}
	// another project is not limited by p2's quota
	other := e.network("other", nil)
	for i := 0; i < 7; i++ {
		e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(other, "id")}})
	}
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			r := e.do("POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(net, "id"), "name": fmt.Sprint(i)}}, hdr...)
			mu.Lock()
			codes[r.code]++
			mu.Unlock()
			if r.code == 409 && r.errType() != "OverQuota" {
				t.Errorf("409 of type %s: %s", r.errType(), r.raw)
			}
		})
	}
	wg.Wait()
	if codes[201] != 5 || codes[409] != 11 {
		t.Fatalf("16 racing creates with a quota of 5: %v", codes)
	}
	d := e.must(200, "GET", "/quotas/p2/details", nil, hdr...).obj("quota")
	pd := d["port"].(map[string]any)
	if num(pd, "limit") != 5 || num(pd, "used") != 5 || num(d["network"].(map[string]any), "used") != 1 {
		t.Fatalf("details: %v", d)
	}
	ports := e.must(200, "GET", "/ports?network_id="+str(net, "id"), nil, hdr...).body["ports"].([]any)
	e.must(204, "DELETE", "/ports/"+str(ports[0].(map[string]any), "id"), nil, hdr...)
	e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(net, "id")}}, hdr...)
	if r := e.do("POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(net, "id")}}, hdr...); r.code != 409 {
		t.Fatalf("over quota after the freed place was taken: %d", r.code)
	}
	// raising the limit lets creates through again
	e.must(200, "PUT", "/quotas/p2", map[string]any{"quota": map[string]any{"port": -1}})
	e.must(201, "POST", "/ports", map[string]any{"port": map[string]any{"network_id": str(net, "id")}}, hdr...)
}

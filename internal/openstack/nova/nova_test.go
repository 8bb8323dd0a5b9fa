package nova_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/nova"
	"github.com/vflink/vflink/internal/store"
)

func TestVersionsAndMicroversions(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/compute", "/compute/"} {
		r := e.must(200, "GET", p, nil)
		vs, _ := r.body["versions"].([]any)
		if len(vs) != 1 {
			t.Fatalf("GET %s: got %s, want one version", p, r.raw)
		}
		v := vs[0].(map[string]any)
		if v["id"] != "v2.1" || v["status"] != "CURRENT" || v["version"] != "2.1" || v["min_version"] != "2.1" {
			t.Errorf("GET %s: got %v", p, v)
		}
		href := v["links"].([]any)[0].(map[string]any)["href"]
		if href != e.url+"/compute/v2.1/" {
			t.Errorf("GET %s: self link %v, want %s", p, href, e.url+"/compute/v2.1/")
		}
	}
	for _, p := range []string{"/compute/v2.1", "/compute/v2.1/"} {
		if v := e.must(200, "GET", p, nil).obj("version"); v["id"] != "v2.1" {
			t.Errorf("GET %s: got %v", p, v)
		}
	}
	r := e.must(200, "GET", "/compute/v2.1/flavors", nil, "X-OpenStack-Nova-API-Version", "2.1")
	for h, want := range map[string]string{"OpenStack-API-Version": "compute 2.1", "X-OpenStack-Nova-API-Version": "2.1",
		"Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"} {
		if got := r.hdr.Get(h); got != want {
			t.Errorf("header %s: got %q, want %q", h, got, want)
		}
	}
	e.must(200, "GET", "/compute/v2.1/flavors", nil, "OpenStack-API-Version", "compute latest")
	r = e.must(406, "GET", "/compute/v2.1/flavors", nil, "OpenStack-API-Version", "compute 2.60")
	if msg := r.fault("computeFault"); !strings.Contains(msg, "2.60") || !strings.Contains(msg, "2.1") {
		t.Errorf("406 message %q should name 2.60 and 2.1", msg)
	}
	e.must(406, "GET", "/compute/v2.1/flavors", nil, "X-OpenStack-Nova-API-Version", "2.47")
}

func TestFlavors(t *testing.T) {
	e := newEnv(t)
	f := e.must(200, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20, "id": nil, "swap": 0,
		"OS-FLV-EXT-DATA:ephemeral": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": true}}).obj("flavor")
	id := str(f, "id")
	if len(id) != 36 {
		t.Errorf("generated id %q is not a UUID", id)
	}
	for k, want := range map[string]any{"name": "m1.small", "ram": 2048.0, "vcpus": 1.0, "disk": 20.0, "swap": "",
		"OS-FLV-EXT-DATA:ephemeral": 0.0, "OS-FLV-DISABLED:disabled": false, "rxtx_factor": 1.0,
		"os-flavor-access:is_public": true} {
		if f[k] != want {
			t.Errorf("flavor %s: got %v, want %v", k, f[k], want)
		}
	}
	if l, _ := f["links"].([]any); len(l) != 2 {
		t.Errorf("links: got %v, want self and bookmark", f["links"])
	}
	e.must(200, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": "tiny", "ram": "256", "vcpus": 1, "disk": 0, "id": "1", "swap": 512}})
	e.must(200, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": "hidden", "ram": 256, "vcpus": 1, "disk": 0, "id": "auto", "os-flavor-access:is_public": false}})

	r := e.must(409, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{"name": "m1.small", "ram": 1, "vcpus": 1, "disk": 0}})
	if msg := r.fault("conflictingRequest"); msg != "Flavor with name m1.small already exists." {
		t.Errorf("duplicate name: got %q", msg)
	}
	e.must(409, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{"name": "other", "ram": 1, "vcpus": 1, "disk": 0, "id": "1"}})
	e.must(403, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{"name": "x", "ram": 1, "vcpus": 1, "disk": 0}}, member("p2")...)
	for _, bad := range []map[string]any{
		{"name": "x", "ram": 0, "vcpus": 1, "disk": 0},
		{"name": "x", "ram": "lots", "vcpus": 1, "disk": 0},
		{"name": "x", "ram": 1, "disk": 0},
		{"name": "", "ram": 1, "vcpus": 1, "disk": 0},
		{"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "id": "a/b"},
	} {
		r := e.must(400, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": bad})
		if r.fault("badRequest") == "" {
			t.Errorf("%v: got %s, want a badRequest message", bad, r.raw)
		}
	}

	if got := e.must(200, "GET", "/compute/v2.1/flavors/1", nil).obj("flavor"); got["swap"] != 512.0 || got["ram"] != 256.0 {
		t.Errorf("flavor 1: got %v", got)
	}
	list := func(path string, hdr ...string) []string {
		var names []string
		for _, f := range e.must(200, "GET", path, nil, hdr...).body["flavors"].([]any) {
			names = append(names, str(f.(map[string]any), "name"))
		}
		return names
	}
	if got := strings.Join(list("/compute/v2.1/flavors"), ","); got != "tiny,m1.small" && got != "m1.small,tiny" {
		t.Errorf("flavors: got %s", got)
	}
	if got := list("/compute/v2.1/flavors/detail?is_public=None&sort_key=name"); len(got) != 3 {
		t.Errorf("admin flavors?is_public=None: got %v, want all 3", got)
	}
	if got := list("/compute/v2.1/flavors/detail?is_public=None", member("p2")...); len(got) != 2 {
		t.Errorf("member flavors: got %v, want the 2 public ones", got)
	}
	if got := list("/compute/v2.1/flavors/detail?minRam=1000"); len(got) != 1 || got[0] != "m1.small" {
		t.Errorf("minRam=1000: got %v", got)
	}
	e.must(200, "GET", "/compute/v2.1/flavors/"+id, nil, member("p2")...)
	if r := e.must(200, "GET", "/compute/v2.1/flavors/"+id+"/os-extra_specs", nil); r.raw != "{\"extra_specs\":{}}\n" {
		t.Errorf("extra specs: got %s", r.raw)
	}
	r = e.must(404, "GET", "/compute/v2.1/flavors/m1.small", nil)
	if msg := r.fault("itemNotFound"); msg != "Flavor m1.small could not be found." {
		t.Errorf("404: got %q", msg)
	}
	e.must(403, "DELETE", "/compute/v2.1/flavors/"+id, nil, member("p2")...)
	e.must(202, "DELETE", "/compute/v2.1/flavors/"+id, nil)
	e.must(404, "GET", "/compute/v2.1/flavors/"+id, nil)
	e.must(404, "DELETE", "/compute/v2.1/flavors/"+id, nil)
	// the name is free again
	e.must(200, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{"name": "m1.small", "ram": 1, "vcpus": 1, "disk": 0}})
}

func TestServerNoHost(t *testing.T) {
	e := newEnv(t)
	img, fl := e.image("cirros"), e.flavor("m1")
	net := e.network("sriov15", "sriov", 15)
	p := e.port(net, "p1", "direct")
	r := e.createServer("vm1", img, fl, []string{str(p, "id")})
	if r.code != 202 {
		t.Fatalf("create: got %d %s, want 202", r.code, r.raw)
	}
	s := r.obj("server")
	if str(s, "adminPass") == "" || s["OS-DCF:diskConfig"] != "MANUAL" || len(str(s, "id")) != 36 {
		t.Errorf("create answer: got %v", s)
	}
	got := e.server(str(s, "id"))
	if got["status"] != "ERROR" || got["OS-EXT-STS:vm_state"] != "error" {
		t.Fatalf("status: got %v/%v, want ERROR/error", got["status"], got["OS-EXT-STS:vm_state"])
	}
	fault, _ := got["fault"].(map[string]any)
	if fault["message"] != "No valid host was found. There are not enough hosts available." || fault["code"] != 500.0 || str(fault, "created") == "" {
		t.Errorf("fault: got %v", fault)
	}
	if _, ok := got["adminPass"]; ok {
		t.Error("adminPass is shown again")
	}
	port := e.getPort(str(p, "id"))
	if port["device_id"] != "" || port["binding:host_id"] != "" || port["device_owner"] != "" {
		t.Errorf("port after no valid host: device %q host %q owner %q, want all empty", port["device_id"], port["binding:host_id"], port["device_owner"])
	}
	// the port is free for another try; the ERROR server is deleted without touching it
	e.must(204, "DELETE", "/compute/v2.1/servers/"+str(s, "id"), nil)
	e.must(404, "GET", "/compute/v2.1/servers/"+str(s, "id"), nil)
}

func TestServerLifecycle(t *testing.T) {
	e := newEnv(t)
	e.addHost("h1", api.PF{Name: "ens1f1", PhysicalNetwork: "sriov", TotalVFs: 8, NumVFs: 2})
	img, fl := e.image("cirros"), e.flavor("m1")
	net := e.network("sriov15", "sriov", 15)
	var ports []string
	for _, n := range []string{"a", "b", "c", "d"} {
		ports = append(ports, str(e.port(net, n, "direct"), "id"))
	}

	r := e.createServer("vm1", img, fl, ports[:1])
	if r.code != 202 {
		t.Fatalf("create: got %d %s", r.code, r.raw)
	}
	id := str(r.obj("server"), "id")
	s := e.server(id)
	if s["status"] != "BUILD" || s["OS-EXT-STS:vm_state"] != "building" || s["OS-EXT-STS:power_state"] != 0.0 {
		t.Fatalf("after create: got status %v vm_state %v power %v, want BUILD/building/0", s["status"], s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:power_state"])
	}
	if s["OS-EXT-SRV-ATTR:host"] != "h1" || len(str(s, "hostId")) != 56 || s["tenant_id"] != "p1" {
		t.Errorf("placement: host %v hostId %v tenant %v", s["OS-EXT-SRV-ATTR:host"], s["hostId"], s["tenant_id"])
	}
	if img2 := s["image"].(map[string]any); img2["id"] != img {
		t.Errorf("image: got %v, want %s", img2, img)
	}
	addrs, _ := s["addresses"].(map[string]any)
	a, _ := addrs["sriov15"].([]any)
	if len(a) != 1 || str(a[0].(map[string]any), "OS-EXT-IPS:type") != "fixed" || a[0].(map[string]any)["version"] != 4.0 {
		t.Errorf("addresses: got %v", s["addresses"])
	}
	p := e.getPort(ports[0])
	for k, want := range map[string]string{"binding:host_id": "h1", "device_id": id, "device_owner": "compute:nova", "binding:vif_type": "hw_veb"} {
		if p[k] != want {
			t.Errorf("port %s: got %v, want %s", k, p[k], want)
		}
	}
	if str(a[0].(map[string]any), "OS-EXT-IPS-MAC:mac_addr") != p["mac_address"] {
		t.Errorf("address MAC: got %v, want %v", a[0], p["mac_address"])
	}

	// the host agent reports the port up: the server is ACTIVE
	e.setPortStatus(ports[0], "ACTIVE")
	s = e.server(id)
	if s["status"] != "ACTIVE" || s["OS-EXT-STS:vm_state"] != "active" || s["OS-EXT-STS:power_state"] != 1.0 {
		t.Fatalf("after port ACTIVE: got %v/%v/%v", s["status"], s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:power_state"])
	}
	// listing filters: status, name regex, host
	names := func(path string, hdr ...string) string {
		var out []string
		for _, v := range e.must(200, "GET", path, nil, hdr...).body["servers"].([]any) {
			out = append(out, str(v.(map[string]any), "name"))
		}
		return strings.Join(out, ",")
	}
	if got := names("/compute/v2.1/servers?status=ACTIVE"); got != "vm1" {
		t.Errorf("?status=ACTIVE: got %q", got)
	}
	if got := names("/compute/v2.1/servers/detail?name=^vm"); got != "vm1" {
		t.Errorf("?name=^vm: got %q", got)
	}
	if got := names("/compute/v2.1/servers?name=^x"); got != "" {
		t.Errorf("?name=^x: got %q", got)
	}
	if got := names("/compute/v2.1/servers/detail?host=h2"); got != "" {
		t.Errorf("?host=h2: got %q", got)
	}

	// the port is taken
	r = e.createServer("vm-dup", img, fl, ports[:1])
	if r.code != 409 || r.fault("conflictingRequest") != "Port "+ports[0]+" is still in use." {
		t.Errorf("port in use: got %d %s", r.code, r.raw)
	}
	// the second VF
	r = e.createServer("vm2", img, fl, ports[1:2])
	id2 := str(r.obj("server"), "id")
	if s := e.server(id2); s["status"] != "BUILD" {
		t.Fatalf("vm2: got %v %v, want BUILD", s["status"], s["fault"])
	}
	// both VFs are used: no valid host, and the port stays free
	r = e.createServer("vm3", img, fl, ports[2:3])
	id3 := str(r.obj("server"), "id")
	s = e.server(id3)
	if s["status"] != "ERROR" || str(s["fault"].(map[string]any), "message") != nova.ErrNoValidHost.Error() {
		t.Fatalf("vm3: got %v %v, want ERROR no valid host", s["status"], s["fault"])
	}
	if p := e.getPort(ports[2]); p["device_id"] != "" || p["binding:host_id"] != "" {
		t.Errorf("vm3's port: got device %v host %v, want unbound", p["device_id"], p["binding:host_id"])
	}
	if got := names("/compute/v2.1/servers?status=error"); got != "vm3" {
		t.Errorf("?status=error: got %q", got)
	}

	// another project sees nothing
	e.must(404, "GET", "/compute/v2.1/servers/"+id, nil, member("p2")...)
	e.must(404, "DELETE", "/compute/v2.1/servers/"+id, nil, member("p2")...)
	if got := names("/compute/v2.1/servers/detail", member("p2")...); got != "" {
		t.Errorf("p2's servers: got %q", got)
	}
	// a member of p1 sees them, without the admin attributes
	s = e.server(id, member("p1")...)
	if _, ok := s["OS-EXT-SRV-ATTR:host"]; ok {
		t.Error("a member sees OS-EXT-SRV-ATTR:host")
	}

	// delete unbinds and frees the VF
	e.must(204, "DELETE", "/compute/v2.1/servers/"+id, nil)
	e.must(404, "GET", "/compute/v2.1/servers/"+id, nil)
	if p := e.getPort(ports[0]); p["device_id"] != "" || p["binding:host_id"] != "" || p["device_owner"] != "" {
		t.Errorf("after delete: port device %v host %v owner %v, want unbound", p["device_id"], p["binding:host_id"], p["device_owner"])
	}
	r = e.createServer("vm4", img, fl, ports[3:4])
	if s := e.server(str(r.obj("server"), "id")); s["status"] != "BUILD" {
		t.Errorf("vm4 after a VF was freed: got %v %v, want BUILD", s["status"], s["fault"])
	}
}

func TestServerCreateValidation(t *testing.T) {
	e := newEnv(t)
	e.addHost("h1", api.PF{Name: "ens1f1", PhysicalNetwork: "sriov", NumVFs: 4})
	img, fl := e.image("cirros"), e.flavor("m1")
	net := e.network("sriov15", "sriov", 15)
	port := str(e.port(net, "a", "direct"), "id")
	other := str(e.port(e.network("p2net", "", 20, member("p2")...), "b", "normal", member("p2")...), "id")
	body := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"name": "vm", "imageRef": img, "flavorRef": fl, "networks": []any{map[string]any{"port": port}}}
		mod(m)
		return map[string]any{"server": m}
	}
	cases := []struct {
		name string
		body map[string]any
		hdr  []string
		code int
		msg  string
	}{
		{"networks auto", body(func(m map[string]any) { m["networks"] = "auto" }), nil, 400, `vflink servers take existing ports: networks: [{"port": ID}]`},
		{"networks none", body(func(m map[string]any) { m["networks"] = "none" }), nil, 400, `vflink servers take existing ports: networks: [{"port": ID}]`},
		{"network uuid", body(func(m map[string]any) { m["networks"] = []any{map[string]any{"uuid": net}} }), nil, 400, `vflink servers take existing ports: networks: [{"port": ID}]`},
		{"port and fixed_ip", body(func(m map[string]any) {
			m["networks"] = []any{map[string]any{"port": port, "fixed_ip": "10.0.15.9"}}
		}), nil, 400, `vflink servers take existing ports: networks: [{"port": ID}]`},
		{"no networks", body(func(m map[string]any) { delete(m, "networks") }), nil, 400, `vflink servers take existing ports: networks: [{"port": ID}]`},
		{"max_count 2", body(func(m map[string]any) { m["max_count"] = 2 }), nil, 400, ""},
		{"no name", body(func(m map[string]any) { delete(m, "name") }), nil, 400, ""},
		{"unknown image", body(func(m map[string]any) { m["imageRef"] = "nope" }), nil, 400, "Image nope could not be found."},
		{"unknown flavor", body(func(m map[string]any) { m["flavorRef"] = "nope" }), nil, 400, "Flavor nope could not be found."},
		{"unknown port", body(func(m map[string]any) { m["networks"] = []any{map[string]any{"port": "nope"}} }), nil, 400, "Port id nope not found."},
		{"another project's port", body(func(m map[string]any) { m["networks"] = []any{map[string]any{"port": other}} }), member("p1"), 400, "Port id " + other + " not found."},
		{"another project's image", body(func(m map[string]any) {}), member("p3"), 400, "Image " + img + " could not be found."},
		{"unknown zone", body(func(m map[string]any) { m["availability_zone"] = "az9" }), nil, 400,
			`Invalid input for field/attribute availability_zone. Value: "az9". vflink has one availability zone, nova; force a host with nova:HOST.`},
	}
	for _, c := range cases {
		r := e.do("POST", "/compute/v2.1/servers", c.body, c.hdr...)
		if r.code != c.code {
			t.Errorf("%s: got %d %s, want %d", c.name, r.code, r.raw, c.code)
			continue
		}
		if msg := r.fault("badRequest"); msg == "" || (c.msg != "" && msg != c.msg) {
			t.Errorf("%s: got message %q, want %q", c.name, msg, c.msg)
		}
	}
	if r := e.do("POST", "/compute/v2.1/servers", body(func(m map[string]any) { m["availability_zone"] = "nova:h1" }), member("p1")...); r.code != 403 {
		t.Errorf("a member forcing a host: got %d %s, want 403", r.code, r.raw)
	}
	if got := e.must(200, "GET", "/compute/v2.1/servers?all_tenants=1", nil).body["servers"].([]any); len(got) != 0 {
		t.Errorf("rejected creates left servers: %v", got)
	}
	if p := e.getPort(port); p["device_id"] != "" {
		t.Errorf("rejected creates bound the port: %v", p["device_id"])
	}
	// unknown keys are ignored, a member of the port's project may boot on it
	r := e.do("POST", "/compute/v2.1/servers", body(func(m map[string]any) {
		m["metadata"] = map[string]any{"k": "v"}
		m["key_name"] = nil
		m["availability_zone"] = "nova"
		m["config_drive"] = true
	}), member("p1")...)
	if r.code != 202 {
		t.Fatalf("create with extra keys: got %d %s", r.code, r.raw)
	}
	// the admin's default list is its own project, all_tenants lists everything
	if got := e.must(200, "GET", "/compute/v2.1/servers", nil, "X-Project-Id", "admin").body["servers"].([]any); len(got) != 0 {
		t.Errorf("admin of another project lists %d servers without all_tenants, want 0", len(got))
	}
	if got := e.must(200, "GET", "/compute/v2.1/servers?all_tenants=True", nil, "X-Project-Id", "admin").body["servers"].([]any); len(got) != 1 {
		t.Errorf("admin all_tenants lists %d servers, want 1", len(got))
	}
}

func TestStoreScheduler(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sched := nova.NewStoreScheduler(st)
	if _, err := sched.Pick(ctx, map[string]int{"sriov": 1}); !errors.Is(err, nova.ErrNoValidHost) {
		t.Fatalf("no hosts: got %v, want ErrNoValidHost", err)
	}
	put := func(key string, v any) {
		t.Helper()
		if _, err := store.Create(ctx, st, key, v); err != nil {
			t.Fatal(err)
		}
	}
	sriov, physnet2 := "sriov", "physnet2"
	put("hosts/h1", api.Host{Name: "h1", PFs: []api.PF{{Name: "a", PhysicalNetwork: "sriov", NumVFs: 2}}})
	put("hosts/h2", api.Host{Name: "h2", PFs: []api.PF{
		{Name: "a", PhysicalNetwork: "sriov", NumVFs: 2}, {Name: "b", PhysicalNetwork: "sriov", NumVFs: 1},
		{Name: "c", PhysicalNetwork: "physnet2", NumVFs: 1}}})
	put("hosts/h3", api.Host{Name: "h3", PFs: []api.PF{{Name: "a", PhysicalNetwork: "sriov", NumVFs: 3}}})
	put("networks/n1", api.Network{ID: "n1", PhysicalNetwork: &sriov})
	put("networks/n2", api.Network{ID: "n2", PhysicalNetwork: &physnet2})
	put("networks/n3", api.Network{ID: "n3"})
	// h3: two direct ports on sriov use 2 of its 3 VFs; a normal port and a port on a network
	// without a physnet use none
	put("ports/p1", api.Port{ID: "p1", NetworkID: "n1", HostID: "h3", VNICType: "direct"})
	put("ports/p2", api.Port{ID: "p2", NetworkID: "n1", HostID: "h3", VNICType: "macvtap"})
	put("ports/p3", api.Port{ID: "p3", NetworkID: "n1", HostID: "h3", VNICType: "normal"})
	put("ports/p4", api.Port{ID: "p4", NetworkID: "n3", HostID: "h3", VNICType: "direct"})
	put("ports/p5", api.Port{ID: "p5", NetworkID: "n1", VNICType: "direct"}) // unbound
	cases := []struct {
		need map[string]int
		want string
	}{
		{map[string]int{"sriov": 1}, "h2"},                // free sriov: h1 2, h2 3, h3 1
		{map[string]int{"sriov": 3}, "h2"},                // only h2 has 3
		{map[string]int{"sriov": 4}, ""},                  // nobody
		{map[string]int{"physnet2": 1}, "h2"},             // only h2 has physnet2
		{map[string]int{"physnet2": 2}, ""},               //
		{map[string]int{"sriov": 1, "physnet2": 1}, "h2"}, //
		{map[string]int{"physnet3": 1}, ""},               // unknown physnet
		{map[string]int{}, "h2"},                          // most free VFs overall: h2 4
		{map[string]int{"sriov": 2, "physnet2": 0}, "h2"}, //
	}
	for _, c := range cases {
		got, err := sched.Pick(ctx, c.need)
		if c.want == "" {
			if !errors.Is(err, nova.ErrNoValidHost) {
				t.Errorf("need %v: got %q %v, want ErrNoValidHost", c.need, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("need %v: got %q %v, want %s", c.need, got, err, c.want)
		}
	}
	// a forced host (availability_zone nova:HOST) is the only candidate
	if got, err := sched.Pick(ctx, map[string]int{"sriov": 1}, "h1"); err != nil || got != "h1" {
		t.Errorf("forced h1: got %q %v, want h1", got, err)
	}
	if got, err := sched.Pick(ctx, map[string]int{"sriov": 3}, "h1"); !errors.Is(err, nova.ErrNoValidHost) {
		t.Errorf("forced h1 without 3 free VFs: got %q %v, want ErrNoValidHost", got, err)
	}
	if _, err := sched.Pick(ctx, map[string]int{}, "h9"); !errors.Is(err, nova.ErrNoValidHost) || !strings.Contains(err.Error(), "h9") {
		t.Errorf("forced unknown host: got %v, want ErrNoValidHost naming h9", err)
	}
	// ties go to the first name: take one VF of h2, then h1 and h2 both have 2
	put("ports/p6", api.Port{ID: "p6", NetworkID: "n1", HostID: "h2", VNICType: "direct-physical"})
	if got, err := sched.Pick(ctx, map[string]int{"sriov": 1}); err != nil || got != "h1" {
		t.Errorf("tie: got %q %v, want h1", got, err)
	}
}

// TestConcurrentCreatesOnePort races servers for one port: exactly one gets it, the others are
// refused (409) or end in ERROR, and the port belongs to the winner.
func TestConcurrentCreatesOnePort(t *testing.T) {
	e := newEnv(t)
	e.addHost("h1", api.PF{Name: "ens1f1", PhysicalNetwork: "sriov", NumVFs: 8})
	img, fl := e.image("cirros"), e.flavor("m1")
	port := str(e.port(e.network("sriov15", "sriov", 15), "a", "direct"), "id")
	const n = 6
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.createServer("vm", img, fl, []string{port})
			switch r.code {
			case 202:
				ids <- str(r.obj("server"), "id")
			case 409:
			default:
				t.Errorf("create: got %d %s, want 202 or 409", r.code, r.raw)
			}
		}()
	}
	wg.Wait()
	close(ids)
	var winners []string
	for id := range ids {
		if s := e.server(id); s["status"] == "BUILD" {
			winners = append(winners, id)
		} else if s["status"] != "ERROR" {
			t.Errorf("server %s: got %v, want BUILD or ERROR", id, s["status"])
		}
	}
	if len(winners) != 1 {
		t.Fatalf("got %d servers in BUILD, want 1", len(winners))
	}
	if p := e.getPort(port); p["device_id"] != winners[0] {
		t.Errorf("port device_id: got %v, want the winner %s", p["device_id"], winners[0])
	}
}

func TestQuotaSetsReadOnlyUnlimited(t *testing.T) {
	e := newEnv(t)
	q := e.must(200, "GET", "/compute/v2.1/os-quota-sets/p1", nil).obj("quota_set")
	if q["instances"] != -1.0 || q["cores"] != -1.0 || q["ram"] != -1.0 || str(q, "id") != "p1" {
		t.Errorf("quota set: %v", q)
	}
	e.must(200, "GET", "/compute/v2.1/os-quota-sets/p1/defaults", nil)
	e.must(400, "PUT", "/compute/v2.1/os-quota-sets/p1", map[string]any{"quota_set": map[string]any{"instances": 5}})
	e.must(403, "GET", "/compute/v2.1/os-quota-sets/p2", nil, "X-Roles", "member")
}

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// The tests in this file run the real `vflink server` binary as a subprocess on loopback, kill or
// stop it, start it again on the same data dir, and check what survived through the API and, with
// the server stopped, in the raw etcd keyspace.

// restartBuild builds cmd/vflink into a temporary directory of t and returns the binary's path.
func restartBuild(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: not inside a module (%q)", gomod)
	}
	bin := filepath.Join(t.TempDir(), "vflink")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vflink/vflink/cmd/vflink")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// restartFreeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func restartFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// restartProc is one `vflink server` subprocess started by a test.
type restartProc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:PORT
	logf   string // its stderr
	done   chan struct{}
	err    error // cmd.Wait's, valid once done is closed
	exited atomic.Bool
}

// restartStart starts `vflink server` on listen and dataDir; its stderr goes to a file in logDir
// whose tail is logged if the test fails. t.Cleanup kills (by PID) and reaps the process if it is
// still running.
func restartStart(t *testing.T, bin, listen, dataDir, logDir, name string) *restartProc {
	t.Helper()
	logf := filepath.Join(logDir, name+".stderr")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "--listen", listen, "--data-dir", dataDir, "--auth", "none")
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &restartProc{cmd: cmd, base: "http://" + listen, logf: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		p.exited.Store(true)
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited.Load() {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("tail of %s stderr (pid %d):\n%s", name, p.cmd.Process.Pid, restartTail(logf, 4096))
		}
	})
	return p
}

func restartTail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// waitHealthy polls GET /healthz until 200, the process exits, or the deadline passes.
func (p *restartProc) waitHealthy(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(p.base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("server exited before becoming healthy (%v); stderr:\n%s", p.err, restartTail(p.logf, 4096))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(start) > within {
			t.Fatalf("server not healthy after %s (last error %v); stderr:\n%s", within, err, restartTail(p.logf, 4096))
		}
	}
}

// kill sends SIGKILL and reaps the process.
func (p *restartProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill -9 %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("pid %d still there 30s after SIGKILL", p.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *restartProc) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("pid %d did not exit within 30s of SIGTERM; stderr:\n%s", p.cmd.Process.Pid, restartTail(p.logf, 4096))
	}
	if p.err != nil {
		t.Errorf("server exited with %v after SIGTERM; stderr:\n%s", p.err, restartTail(p.logf, 4096))
	}
	return time.Since(start)
}

// restartClient talks JSON to one server.
type restartClient struct {
	base string
	hc   *http.Client
}

func restartNewClient(base string) *restartClient {
	return &restartClient{base: base, hc: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, Proxy: nil},
	}}
}

// do sends body (nil: none) as JSON; err is a transport error only.
func (c *restartClient) do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, b, err
	}
	return resp.StatusCode, b, nil
}

// must does a request that must answer want, decoding the body's key into out (if not nil).
func (c *restartClient) must(t *testing.T, method, path string, body any, want int, key string, out any) []byte {
	t.Helper()
	code, b, err := c.do(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, b)
	}
	if out != nil {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
		if err := json.Unmarshal(m[key], out); err != nil {
			t.Fatalf("%s %s: decode %q of %s: %v", method, path, key, b, err)
		}
	}
	return b
}

// restartSetupNetwork creates a network of project p1 on provider physnet sriov with subnet cidr.
func restartSetupNetwork(t *testing.T, c *restartClient, name, cidr string) (api.Network, api.Subnet) {
	t.Helper()
	var n api.Network
	c.must(t, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": name, "tenant_id": "p1"}}, 201, "network", &n)
	c.must(t, "PUT", "/v2.0/networks/"+n.ID, map[string]any{"network": map[string]any{"provider:physical_network": "sriov"}}, 200, "network", &n)
	if n.PhysicalNetwork == nil || *n.PhysicalNetwork != "sriov" || n.NetworkType == nil || *n.NetworkType != "vlan" || n.SegmentationID == nil {
		t.Fatalf("network after provider PUT: physnet %v type %v vlan %v", restartDeref(n.PhysicalNetwork), restartDeref(n.NetworkType), restartDerefInt(n.SegmentationID))
	}
	var s api.Subnet
	c.must(t, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"network_id": n.ID, "tenant_id": "p1", "cidr": cidr, "ip_version": 4, "name": name + "-sub",
	}}, 201, "subnet", &s)
	return n, s
}

func restartDeref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func restartDerefInt(p *int) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

func restartIPs(p api.Port) []string {
	out := make([]string, 0, len(p.FixedIPs))
	for _, f := range p.FixedIPs {
		out = append(out, f.SubnetID+"/"+f.IPAddress)
	}
	slices.Sort(out)
	return out
}

// restartAcked is what a 201 told the client.
type restartAcked struct {
	mac         string
	ips         []string // subnet/ip, sorted
	explicitMAC bool
	noIPs       bool
}

func TestKill9MidBurstKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary; skipped with -short")
	}
	const (
		workers   = 8
		killAfter = 300
	)
	bin := restartBuild(t)
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	listen := restartFreeAddr(t)

	srv := restartStart(t, bin, listen, dataDir, tmp, "server-1")
	firstStart := srv.waitHealthy(t, 60*time.Second)
	c := restartNewClient(srv.base)
	n, sub := restartSetupNetwork(t, c, "burst", "10.30.0.0/16")
	vlan := *n.SegmentationID
	t.Logf("first start healthy in %s; network %s vlan %d, subnet %s", firstStart.Round(time.Millisecond), n.ID, vlan, sub.ID)

	// The burst: workers create ports until a transport error (the kill) stops each.
	var (
		seq       atomic.Int64
		mu        sync.Mutex
		acked     = map[string]restartAcked{}
		ackedN    atomic.Int64
		sentMACs  = map[string]bool{} // explicit MACs sent (acknowledged or not)
		unexpect  []string            // non-201 answers
		transport []string
		reached   = make(chan struct{})
		reachOnce sync.Once
		wg        sync.WaitGroup
	)
	hardStop := time.Now().Add(2 * time.Minute)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(hardStop) {
				i := seq.Add(1)
				body := map[string]any{"network_id": n.ID, "tenant_id": "p1", "binding:vnic_type": "direct", "name": fmt.Sprintf("burst-%d", i)}
				var mac string
				if i%5 == 0 {
					mac = fmt.Sprintf("02:00:5e:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
					body["mac_address"] = mac
					mu.Lock()
					sentMACs[mac] = true
					mu.Unlock()
				}
				if i%7 == 0 {
					body["fixed_ips"] = []any{}
				}
				code, b, err := c.do("POST", "/v2.0/ports", map[string]any{"port": body})
				if err != nil {
					mu.Lock()
					transport = append(transport, err.Error())
					mu.Unlock()
					return
				}
				if code != http.StatusCreated {
					mu.Lock()
					unexpect = append(unexpect, fmt.Sprintf("port #%d: %d %s", i, code, b))
					mu.Unlock()
					continue
				}
				var resp struct {
					Port api.Port `json:"port"`
				}
				if err := json.Unmarshal(b, &resp); err != nil || resp.Port.ID == "" {
					mu.Lock()
					unexpect = append(unexpect, fmt.Sprintf("port #%d: 201 with undecodable body %s: %v", i, b, err))
					mu.Unlock()
					continue
				}
				a := restartAcked{mac: resp.Port.MACAddress, ips: restartIPs(resp.Port), explicitMAC: mac != "", noIPs: i%7 == 0}
				mu.Lock()
				acked[resp.Port.ID] = a
				mu.Unlock()
				if ackedN.Add(1) >= killAfter {
					reachOnce.Do(func() { close(reached) })
				}
			}
		}()
	}
	select {
	case <-reached:
	case <-time.After(90 * time.Second):
		mu.Lock()
		u := slices.Clone(unexpect)
		mu.Unlock()
		t.Fatalf("only %d ports acknowledged after 90s; unexpected answers: %v", ackedN.Load(), u)
	}
	srv.kill(t)
	ackedAtKill := ackedN.Load()
	wg.Wait()
	c.hc.CloseIdleConnections()
	if len(unexpect) > 0 {
		t.Errorf("%d non-201 answers during the burst, first: %v", len(unexpect), unexpect[:min(5, len(unexpect))])
	}
	t.Logf("kill -9 at %d acknowledged; %d acknowledged in total, %d requests sent, %d workers stopped on transport errors (e.g. %v)",
		ackedAtKill, len(acked), seq.Load(), len(transport), restartFirst(transport))

	// Restart on the same data dir and listen address.
	restartAt := time.Now()
	srv2 := restartStart(t, bin, listen, dataDir, tmp, "server-2")
	srv2.waitHealthy(t, 60*time.Second)
	restart := time.Since(restartAt)
	t.Logf("restart after kill -9: healthy in %s", restart.Round(time.Millisecond))
	c = restartNewClient(srv2.base)

	// Every acknowledged port is there, unchanged.
	var listed []api.Port
	c.must(t, "GET", "/v2.0/ports", nil, 200, "ports", &listed)
	byID := map[string]api.Port{}
	for _, p := range listed {
		byID[p.ID] = p
	}
	for id, a := range acked {
		p, ok := byID[id]
		if !ok {
			t.Errorf("acknowledged port %s (mac %s, ips %v) is gone after kill -9", id, a.mac, a.ips)
			continue
		}
		if p.MACAddress != a.mac || !slices.Equal(restartIPs(p), a.ips) {
			t.Errorf("port %s: after restart mac %s ips %v; acknowledged mac %s ips %v", id, p.MACAddress, restartIPs(p), a.mac, a.ips)
		}
		if a.noIPs && len(p.FixedIPs) != 0 {
			t.Errorf("port %s was created with fixed_ips [] but has %v", id, restartIPs(p))
		}
		if !a.noIPs && len(p.FixedIPs) != 1 {
			t.Errorf("port %s should have one IP of %s, has %v", id, sub.CIDR, restartIPs(p))
		}
		if a.explicitMAC && !sentMACs[p.MACAddress] {
			t.Errorf("port %s: explicit MAC not kept: %s", id, p.MACAddress)
		}
	}
	// A few acknowledged ports, one by one.
	checked := 0
	for id, a := range acked {
		if checked == 20 {
			break
		}
		checked++
		var p api.Port
		c.must(t, "GET", "/v2.0/ports/"+id, nil, 200, "port", &p)
		if p.MACAddress != a.mac || !slices.Equal(restartIPs(p), a.ips) {
			t.Errorf("GET port %s: mac %s ips %v; acknowledged mac %s ips %v", id, p.MACAddress, restartIPs(p), a.mac, a.ips)
		}
	}
	if len(listed) < len(acked) {
		t.Errorf("%d ports listed after restart, fewer than the %d acknowledged", len(listed), len(acked))
	}
	var extras []string
	for _, p := range listed {
		if _, ok := acked[p.ID]; !ok {
			extras = append(extras, fmt.Sprintf("%s(%s mac %s ips %v)", p.ID, p.Name, p.MACAddress, restartIPs(p)))
		}
	}
	t.Logf("after restart: %d ports listed, %d acknowledged, %d extra (created but 201 lost in the kill): %v", len(listed), len(acked), len(extras), extras)

	// No address or MAC handed out twice.
	seenIP, seenMAC := map[string]string{}, map[string]string{}
	for _, p := range listed {
		if other, ok := seenMAC[p.NetworkID+"/"+p.MACAddress]; ok {
			t.Errorf("MAC %s on ports %s and %s", p.MACAddress, other, p.ID)
		}
		seenMAC[p.NetworkID+"/"+p.MACAddress] = p.ID
		for _, ip := range restartIPs(p) {
			if other, ok := seenIP[ip]; ok {
				t.Errorf("IP %s on ports %s and %s", ip, other, p.ID)
			}
			seenIP[ip] = p.ID
		}
	}

	// The network kept its provider attributes.
	var n2 api.Network
	c.must(t, "GET", "/v2.0/networks/"+n.ID, nil, 200, "network", &n2)
	if restartDeref(n2.PhysicalNetwork) != "sriov" || restartDeref(n2.NetworkType) != "vlan" || n2.SegmentationID == nil || *n2.SegmentationID != vlan {
		t.Errorf("network after restart: physnet %s type %s vlan %s; want sriov vlan %d",
			restartDeref(n2.PhysicalNetwork), restartDeref(n2.NetworkType), restartDerefInt(n2.SegmentationID), vlan)
	}
	if !slices.Equal(n2.Subnets, []string{sub.ID}) {
		t.Errorf("network subnets after restart: %v, want [%s]", n2.Subnets, sub.ID)
	}

	// The API still writes: create, rename, delete a port.
	var np api.Port
	c.must(t, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"network_id": n.ID, "tenant_id": "p1", "binding:vnic_type": "direct", "name": "after-restart",
	}}, 201, "port", &np)
	if len(np.FixedIPs) != 1 {
		t.Errorf("port created after restart has IPs %v", restartIPs(np))
	}
	for _, ip := range restartIPs(np) {
		if other, ok := seenIP[ip]; ok {
			t.Errorf("port created after restart got %s, which port %s has", ip, other)
		}
	}
	if other, ok := seenMAC[np.NetworkID+"/"+np.MACAddress]; ok {
		t.Errorf("port created after restart got MAC %s, which port %s has", np.MACAddress, other)
	}
	var up api.Port
	c.must(t, "PUT", "/v2.0/ports/"+np.ID, map[string]any{"port": map[string]any{"name": "renamed"}}, 200, "port", &up)
	if up.Name != "renamed" || up.MACAddress != np.MACAddress || !slices.Equal(restartIPs(up), restartIPs(np)) {
		t.Errorf("PUT name: got name %q mac %s ips %v", up.Name, up.MACAddress, restartIPs(up))
	}
	c.must(t, "DELETE", "/v2.0/ports/"+np.ID, nil, 204, "", nil)
	c.must(t, "GET", "/v2.0/ports/"+np.ID, nil, 404, "", nil)

	// The network cannot go while its ports are there.
	b := c.must(t, "DELETE", "/v2.0/networks/"+n.ID, nil, 409, "", nil)
	var ne api.ErrorBody
	if err := json.Unmarshal(b, &ne); err != nil || ne.NeutronError.Type != "NetworkInUse" {
		t.Errorf("DELETE network with ports: %s, want NeutronError type NetworkInUse", b)
	}

	// Stop gracefully and look at the raw keyspace.
	stopIn := srv2.stop(t)
	t.Logf("SIGTERM: exited in %s", stopIn.Round(time.Millisecond))
	st := restartOpenStore(t, dataDir)
	checkKeyspace(t, st)
	ports, _, err := store.List[api.Port](context.Background(), st, "ports/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != len(listed) {
		t.Errorf("keyspace holds %d ports, the API listed %d before the stop", len(ports), len(listed))
	}
}

func restartFirst(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return l[0]
}

// restartOpenStore opens the embedded etcd of a stopped server's data dir in the test process.
func restartOpenStore(t *testing.T, dataDir string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	st, err := store.Open(ctx, store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatalf("open the data dir's store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	t.Logf("store opened in the test in %s", time.Since(start).Round(time.Millisecond))
	return st
}

// checkKeyspace checks the invariants of the Neutron key layout (see
// internal/openstack/neutron/doc.go) in st: every port has its index key, its MAC reservation and
// one IP reservation per fixed IP, all pointing back at it; every reservation and index key
// points to an object that exists and agrees; subnets, VLANs and VN IDs likewise.
func checkKeyspace(t *testing.T, st *store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list := func(prefix string) []store.Object[string] {
		t.Helper()
		l, _, err := store.List[string](ctx, st, prefix)
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		return l
	}
	// split cuts "prefix/a/b" into a, b.
	split := func(key, prefix string) (string, string, bool) {
		return strings.Cut(strings.TrimPrefix(key, prefix), "/")
	}

	nets, _, err := store.List[api.Network](ctx, st, "networks/")
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	subs, _, err := store.List[api.Subnet](ctx, st, "subnets/")
	if err != nil {
		t.Fatalf("list subnets: %v", err)
	}
	ports, _, err := store.List[api.Port](ctx, st, "ports/")
	if err != nil {
		t.Fatalf("list ports: %v", err)
	}
	netByID := map[string]api.Network{}
	for _, o := range nets {
		if o.Key != "networks/"+o.Value.ID {
			t.Errorf("%s holds network %q", o.Key, o.Value.ID)
		}
		netByID[o.Value.ID] = o.Value
	}
	subByID := map[string]api.Subnet{}
	for _, o := range subs {
		if o.Key != "subnets/"+o.Value.ID {
			t.Errorf("%s holds subnet %q", o.Key, o.Value.ID)
		}
		if _, ok := netByID[o.Value.NetworkID]; !ok {
			t.Errorf("subnet %s is on network %s, which does not exist", o.Value.ID, o.Value.NetworkID)
		}
		subByID[o.Value.ID] = o.Value
	}
	portByID := map[string]api.Port{}
	for _, o := range ports {
		if o.Key != "ports/"+o.Value.ID {
			t.Errorf("%s holds port %q", o.Key, o.Value.ID)
		}
		portByID[o.Value.ID] = o.Value
	}

	ipam := map[string]string{}     // subnet/ip -> port
	macs := map[string]string{}     // net/mac -> port
	netPorts := map[string]bool{}   // net/port
	netBound := map[string]string{} // net/port -> host
	netSubs := map[string]bool{}    // net/subnet
	for _, o := range list("ipam/") {
		ipam[strings.TrimPrefix(o.Key, "ipam/")] = o.Value
	}
	for _, o := range list("mac/") {
		macs[strings.TrimPrefix(o.Key, "mac/")] = o.Value
	}
	for _, o := range list("idx/net-ports/") {
		netPorts[strings.TrimPrefix(o.Key, "idx/net-ports/")] = true
	}
	for _, o := range list("idx/net-bound/") {
		netBound[strings.TrimPrefix(o.Key, "idx/net-bound/")] = o.Value
	}
	for _, o := range list("idx/net-subnets/") {
		netSubs[strings.TrimPrefix(o.Key, "idx/net-subnets/")] = true
	}
	// Keys agrees with List on the reservation prefixes (no value that fails to decode, no key
	// List skipped).
	for prefix, want := range map[string]int{"ipam/": len(ipam), "mac/": len(macs), "idx/net-ports/": len(netPorts)} {
		keys, _, err := st.Keys(ctx, prefix)
		if err != nil {
			t.Fatalf("keys %s: %v", prefix, err)
		}
		if len(keys) != want {
			t.Errorf("%d keys under %s, %d listed", len(keys), prefix, want)
		}
	}

	// Forward: every object has its keys.
	for _, s := range subByID {
		if !netSubs[s.NetworkID+"/"+s.ID] {
			t.Errorf("subnet %s has no idx/net-subnets/%s/%s", s.ID, s.NetworkID, s.ID)
		}
	}
	for _, p := range portByID {
		if _, ok := netByID[p.NetworkID]; !ok {
			t.Errorf("port %s is on network %s, which does not exist", p.ID, p.NetworkID)
		}
		if !netPorts[p.NetworkID+"/"+p.ID] {
			t.Errorf("port %s has no idx/net-ports/%s/%s", p.ID, p.NetworkID, p.ID)
		}
		if got, ok := macs[p.NetworkID+"/"+p.MACAddress]; !ok {
			t.Errorf("port %s has no mac/%s/%s", p.ID, p.NetworkID, p.MACAddress)
		} else if got != p.ID {
			t.Errorf("mac/%s/%s holds %q, not port %s", p.NetworkID, p.MACAddress, got, p.ID)
		}
		for _, f := range p.FixedIPs {
			k := f.SubnetID + "/" + f.IPAddress
			if got, ok := ipam[k]; !ok {
				t.Errorf("port %s has no ipam/%s", p.ID, k)
			} else if got != p.ID {
				t.Errorf("ipam/%s holds %q, not port %s", k, got, p.ID)
			}
			s, ok := subByID[f.SubnetID]
			if !ok {
				t.Errorf("port %s has an IP in subnet %s, which does not exist", p.ID, f.SubnetID)
				continue
			}
			pfx, err1 := netip.ParsePrefix(s.CIDR)
			ip, err2 := netip.ParseAddr(f.IPAddress)
			if err1 != nil || err2 != nil || !pfx.Contains(ip) {
				t.Errorf("port %s: IP %s is not in subnet %s (%s)", p.ID, f.IPAddress, s.ID, s.CIDR)
			}
			if s.NetworkID != p.NetworkID {
				t.Errorf("port %s on network %s has an IP of subnet %s of network %s", p.ID, p.NetworkID, s.ID, s.NetworkID)
			}
		}
		if p.HostID != "" {
			if got, ok := netBound[p.NetworkID+"/"+p.ID]; !ok {
				t.Errorf("bound port %s (host %s) has no idx/net-bound/%s/%s", p.ID, p.HostID, p.NetworkID, p.ID)
			} else if got != p.HostID {
				t.Errorf("idx/net-bound/%s/%s holds host %q, port says %q", p.NetworkID, p.ID, got, p.HostID)
			}
		}
	}

	// Backward: every reservation and index key points to an object that agrees.
	for k, id := range ipam {
		subID, ip, _ := strings.Cut(k, "/")
		p, ok := portByID[id]
		if !ok {
			t.Errorf("ipam/%s reserved for port %q, which does not exist (leaked)", k, id)
			continue
		}
		if !slices.Contains(p.FixedIPs, api.FixedIP{SubnetID: subID, IPAddress: ip}) {
			t.Errorf("ipam/%s reserved for port %s, whose fixed IPs are %v (leaked)", k, id, restartIPs(p))
		}
	}
	for k, id := range macs {
		netID, mac, _ := strings.Cut(k, "/")
		p, ok := portByID[id]
		if !ok {
			t.Errorf("mac/%s reserved for port %q, which does not exist (leaked)", k, id)
			continue
		}
		if p.NetworkID != netID || p.MACAddress != mac {
			t.Errorf("mac/%s reserved for port %s, which has network %s mac %s (leaked)", k, id, p.NetworkID, p.MACAddress)
		}
	}
	for k := range netPorts {
		netID, id, _ := split(k, "")
		p, ok := portByID[id]
		if !ok {
			t.Errorf("idx/net-ports/%s names port %s, which does not exist", k, id)
		} else if p.NetworkID != netID {
			t.Errorf("idx/net-ports/%s: port %s is on network %s", k, id, p.NetworkID)
		}
	}
	for k := range netBound {
		netID, id, _ := split(k, "")
		p, ok := portByID[id]
		if !ok {
			t.Errorf("idx/net-bound/%s names port %s, which does not exist", k, id)
		} else if p.NetworkID != netID || p.HostID == "" {
			t.Errorf("idx/net-bound/%s: port %s is on network %s, host %q", k, id, p.NetworkID, p.HostID)
		}
	}
	for k := range netSubs {
		netID, id, _ := split(k, "")
		s, ok := subByID[id]
		if !ok {
			t.Errorf("idx/net-subnets/%s names subnet %s, which does not exist", k, id)
		} else if s.NetworkID != netID {
			t.Errorf("idx/net-subnets/%s: subnet %s is on network %s", k, id, s.NetworkID)
		}
	}

	// VLAN and VN ID reservations, both ways.
	vlans := map[string]string{}
	for _, o := range list("vlan/") {
		vlans[strings.TrimPrefix(o.Key, "vlan/")] = o.Value
	}
	vnids := map[string]string{}
	for _, o := range list("vnid/") {
		vnids[strings.TrimPrefix(o.Key, "vnid/")] = o.Value
	}
	for _, n := range netByID {
		if got := vnids[fmt.Sprint(n.VNID)]; got != n.ID {
			t.Errorf("network %s (VN ID %d): vnid/%d holds %q", n.ID, n.VNID, n.VNID, got)
		}
		if n.PhysicalNetwork == nil {
			continue
		}
		seg := "flat"
		if n.SegmentationID != nil && restartDeref(n.NetworkType) == api.NetworkTypeVLAN {
			seg = fmt.Sprint(*n.SegmentationID)
		}
		k := *n.PhysicalNetwork + "/" + seg
		if got := vlans[k]; got != n.ID {
			t.Errorf("network %s (%s %s): vlan/%s holds %q", n.ID, restartDeref(n.NetworkType), k, k, got)
		}
	}
	for k, id := range vlans {
		if _, ok := netByID[id]; !ok {
			t.Errorf("vlan/%s reserved for network %q, which does not exist (leaked)", k, id)
		}
	}
	for k, id := range vnids {
		n, ok := netByID[id]
		if !ok {
			t.Errorf("vnid/%s reserved for network %q, which does not exist (leaked)", k, id)
		} else if fmt.Sprint(n.VNID) != k {
			t.Errorf("vnid/%s reserved for network %s, whose VN ID is %d", k, id, n.VNID)
		}
	}
	t.Logf("keyspace checked: %d networks, %d subnets, %d ports, %d IP and %d MAC reservations, %d VLANs",
		len(netByID), len(subByID), len(portByID), len(ipam), len(macs), len(vlans))
}

func TestRestartKeepsEverything(t *testing.T) {
	bin := restartBuild(t)
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	listen := restartFreeAddr(t)

	srv := restartStart(t, bin, listen, dataDir, tmp, "server-1")
	srv.waitHealthy(t, 60*time.Second)
	c := restartNewClient(srv.base)
	n, s := restartSetupNetwork(t, c, "keep", "10.31.0.0/24")
	var p1, p2 api.Port
	c.must(t, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"network_id": n.ID, "tenant_id": "p1", "binding:vnic_type": "direct", "name": "one",
	}}, 201, "port", &p1)
	c.must(t, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
		"network_id": n.ID, "tenant_id": "p1", "binding:vnic_type": "direct", "name": "two",
		"mac_address": "02:00:5e:aa:bb:cc", "binding:host_id": "compute-1",
		"fixed_ips": []any{map[string]any{"subnet_id": s.ID, "ip_address": "10.31.0.77"}},
	}}, 201, "port", &p2)

	paths := []string{
		"/v2.0/networks/" + n.ID, "/v2.0/subnets/" + s.ID, "/v2.0/ports/" + p1.ID, "/v2.0/ports/" + p2.ID,
		"/v2.0/networks", "/v2.0/subnets", "/v2.0/ports",
	}
	before := map[string][]byte{}
	for _, p := range paths {
		before[p] = c.must(t, "GET", p, nil, 200, "", nil)
	}
	c.hc.CloseIdleConnections()
	stopIn := srv.stop(t)

	restartAt := time.Now()
	srv2 := restartStart(t, bin, listen, dataDir, tmp, "server-2")
	srv2.waitHealthy(t, 60*time.Second)
	t.Logf("SIGTERM exit in %s, restart healthy in %s", stopIn.Round(time.Millisecond), time.Since(restartAt).Round(time.Millisecond))
	c = restartNewClient(srv2.base)
	for _, p := range paths {
		after := c.must(t, "GET", p, nil, 200, "", nil)
		if !bytes.Equal(before[p], after) {
			t.Errorf("GET %s differs after restart:\nbefore %s\nafter  %s", p, before[p], after)
		}
	}
	c.hc.CloseIdleConnections()
	srv2.stop(t)
	checkKeyspace(t, restartOpenStore(t, dataDir))
}

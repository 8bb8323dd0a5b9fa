package leaf

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/fabric/devsim"
	"github.com/vflink/vflink/internal/lab"
)

// The tests below build a small lab of their own: a private ovsdb-server and ovs-vswitchd
// --disable-system in a test namespace (never the system's OVS), leaf bridges with an uplink to a
// spine bridge, and per host a namespace whose VF netdev is a veth behind an OVS bridge standing
// for the NIC's embedded switch (the VF's VLAN is that bridge's access tag: this machine's kernel
// cannot make VLAN netdevs), cabled by a veth pair to a leaf port. Packets really pass or not.

const ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"

var labSeq atomic.Int32

type testLab struct {
	t      *testing.T
	plan   lab.Plan
	prefix string // of every namespace the test makes
	ovsNS  string // where OVS and every bridge-side netdev live
	runDir string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth pairs and a private Open vSwitch")
	}
	for _, bin := range []string{"ip", "ping", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (Debian: apt-get install iproute2 iputils-ping openvswitch-switch): %v", bin, err)
		}
	}
	if _, err := os.Stat(ovsSchema); err != nil {
		t.Skipf("the OVS schema is missing (apt-get install openvswitch-switch): %v", err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newTestLab starts a private OVS for a lab of the given number of leaves (and the spine).
func newTestLab(t *testing.T, leaves int) *testLab {
	t.Helper()
	needRoot(t)
	dir, err := os.MkdirTemp("", "vflt") // short: unix socket paths are limited to 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	runDir := filepath.Join(dir, "ovs")
	if err := os.Mkdir(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tl := &testLab{
		t:      t,
		plan:   lab.Plan{Hosts: 2, PFsPerHost: 1, VFsPerPF: 1, Leaves: leaves, Dir: dir},
		prefix: fmt.Sprintf("vflt%d-%d", os.Getpid(), labSeq.Add(1)),
		runDir: runDir,
	}
	tl.ovsNS = tl.netns("o")

	db := filepath.Join(runDir, "conf.db")
	run(t, "ovsdb-tool", "create", db, ovsSchema)
	sock := filepath.Join(runDir, "db.sock")
	if "unix:"+sock != tl.plan.OVSDB() {
		t.Fatalf("plan's database %s is not %s", tl.plan.OVSDB(), sock)
	}
	tl.daemon("ovsdb-server", db, "--remote=punix:"+sock, "--unixctl="+filepath.Join(runDir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(runDir, "ovsdb-server.log"), "--no-chdir")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ovs-vsctl", "--db="+tl.plan.OVSDB(), "--no-wait", "--timeout=5", "init").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovsdb-server did not come up: %v: %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tl.daemon("ovs-vswitchd", tl.plan.OVSDB(), "--disable-system", "--unixctl="+filepath.Join(runDir, "ovs-vswitchd.ctl"),
		"--log-file="+filepath.Join(runDir, "ovs-vswitchd.log"), "--no-chdir")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ovs-vsctl show:\n%s", tl.vsctlOut("show"))
			for j := 1; j <= leaves; j++ {
				t.Logf("flows of %s:\n%s", lab.LeafName(j), tl.flows(lab.LeafName(j)))
			}
			t.Logf("flows of spine:\n%s", tl.flows(lab.SpineBridge))
			log, _ := os.ReadFile(filepath.Join(runDir, "ovs-vswitchd.log"))
			t.Logf("ovs-vswitchd.log:\n%s", log)
		}
	})
	tl.bridge(lab.SpineBridge)
	for j := 1; j <= leaves; j++ {
		up, dn := lab.LeafUplink(j), lab.SpineDownlink(j)
		tl.bridge(lab.LeafName(j))
		tl.vsctl("add-port", lab.LeafName(j), up, "--", "set", "Interface", up, "type=patch", "options:peer="+dn,
			"--", "add-port", lab.SpineBridge, dn, "--", "set", "Interface", dn, "type=patch", "options:peer="+up)
	}
	return tl
}

// netns makes a namespace named prefix+suffix, deleted when the test ends.
func (tl *testLab) netns(suffix string) string {
	name := tl.prefix + suffix
	run(tl.t, "ip", "netns", "add", name)
	tl.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tl.t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(tl.t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// daemon runs an OVS daemon in the OVS namespace, stopped by its PID when the test ends.
func (tl *testLab) daemon(prog string, args ...string) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", tl.ovsNS, prog}, args...)...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+tl.runDir, "OVS_LOGDIR="+tl.runDir, "OVS_DBDIR="+tl.runDir)
	if err := cmd.Start(); err != nil {
		tl.t.Fatalf("start %s: %v", prog, err)
	}
	tl.t.Cleanup(func() {
		_ = cmd.Process.Kill() // ip netns exec execs the daemon: this is its PID
		_ = cmd.Wait()
	})
}

func (tl *testLab) vsctlOut(args ...string) string {
	out, err := exec.Command("ovs-vsctl", append([]string{"--db=" + tl.plan.OVSDB(), "--timeout=10"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ovs-vsctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// vsctl changes the database and waits for ovs-vswitchd to apply it.
func (tl *testLab) vsctl(args ...string) string {
	tl.t.Helper()
	return run(tl.t, "ovs-vsctl", append([]string{"--db=" + tl.plan.OVSDB(), "--timeout=10"}, args...)...)
}

func (tl *testLab) bridge(name string) {
	tl.vsctl("add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev")
}

// flows dumps the OpenFlow table of a bridge, without counters.
func (tl *testLab) flows(bridge string) string {
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow14", "--no-stats", "--names", "dump-flows",
		"unix:"+filepath.Join(tl.runDir, bridge+".mgmt")).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("dump-flows %s: %v: %s", bridge, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (tl *testLab) veth(a, b string) {
	run(tl.t, "ip", "-n", tl.ovsNS, "link", "add", a, "type", "veth", "peer", "name", b)
	run(tl.t, "ip", "-n", tl.ovsNS, "link", "set", a, "up")
	run(tl.t, "ip", "-n", tl.ovsNS, "link", "set", b, "up")
}

// host is one test host: a namespace with a VF netdev eth0 behind its NIC bridge.
type host struct {
	i    int
	ns   string
	addr string
}

// addHost makes host i with address addr (/24) whose PF 0 is cabled to leaf j's port xe-0/0/n.
func (tl *testLab) addHost(i, j, n int, addr string) host {
	h := host{i: i, ns: tl.netns(fmt.Sprintf("h%d", i)), addr: addr}
	nic, vf, wire, lp := lab.NICBridge(i, 0), lab.VFPort(i, 0, 0), lab.WirePort(i, 0), lab.LeafPort(j, n)
	tl.bridge(nic)
	run(tl.t, "ip", "-n", tl.ovsNS, "link", "add", vf, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	run(tl.t, "ip", "-n", tl.ovsNS, "link", "set", vf, "up")
	run(tl.t, "ip", "-n", h.ns, "addr", "add", addr+"/24", "dev", "eth0")
	run(tl.t, "ip", "-n", h.ns, "link", "set", "eth0", "up")
	tl.veth(lp, wire)
	tl.vsctl("add-port", nic, vf, "--", "add-port", nic, wire, "--", "add-port", lab.LeafName(j), lp)
	return h
}

// vfVLAN sets host i's VF VLAN as the NIC does: its frames enter the NIC's switch in that VLAN
// (0: untagged, as they are).
func (tl *testLab) vfVLAN(i, vlan int) {
	vf := lab.VFPort(i, 0, 0)
	if vlan == 0 {
		tl.vsctl("set", "Port", vf, "vlan_mode=[]", "tag=[]", "trunks=[]")
		return
	}
	tl.vsctl("set", "Port", vf, "vlan_mode=access", fmt.Sprintf("tag=%d", vlan), "trunks=[]")
}

// port is a port's VLAN settings as OVS has them: "trunk [] [15]" (vlan_mode tag trunks).
func (tl *testLab) port(name string) string {
	return strings.Join(strings.Fields(tl.vsctlOut("get", "Port", name, "vlan_mode", "tag", "trunks")), " ")
}

func (tl *testLab) wantPort(name, want string) {
	tl.t.Helper()
	if got := tl.port(name); got != want {
		tl.t.Errorf("OVS port %s: %q, want %q", name, got, want)
	}
}

// waitPort waits until OVS has the port as wanted (the hook applies asynchronously).
func (tl *testLab) waitPort(name, want string) {
	tl.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := tl.port(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tl.t.Fatalf("OVS port %s stayed %q, want %q", name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(from host, to string, count int) bool {
	return exec.Command("ip", "netns", "exec", from.ns, "ping", "-q", "-n", "-c", fmt.Sprint(count), "-i", "0.3", "-W", "1", to).Run() == nil
}

// pingPasses requires a reply (allowing for ARP and the bridges to settle).
func pingPasses(t *testing.T, from host, to string) {
	t.Helper()
	for range 15 {
		if ping(from, to, 1) {
			return
		}
	}
	t.Fatalf("%s cannot ping %s", from.addr, to)
}

// pingFails requires that no reply comes back (after one ping that may still meet the old
// forwarding state).
func pingFails(t *testing.T, from host, to string) {
	t.Helper()
	ping(from, to, 1)
	if ping(from, to, 3) {
		t.Fatalf("%s can still ping %s", from.addr, to)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (tl *testLab) apply(j int, lines []string) Result {
	tl.t.Helper()
	cfg := Config{Plan: tl.plan, Leaf: j, Log: testLogger(tl.t)}
	r, err := Apply(context.Background(), cfg, lines)
	if err != nil {
		tl.t.Fatalf("Apply leaf%d: %v", j, err)
	}
	return r
}

// access is the renderer's access group for the given interfaces → bridge domains (bd-V: VLAN V,
// VNI V).
func access(ifs map[string][]int) []string {
	g := "set groups __vflink_access__ "
	lines := []string{"set apply-groups __vflink_access__"}
	vlans := map[int]bool{}
	for ifname, vs := range ifs {
		lines = append(lines,
			g+"interfaces "+ifname+" mtu 9192",
			g+"interfaces "+ifname+" unit 0 family ethernet-switching interface-mode trunk")
		for _, v := range vs {
			lines = append(lines, fmt.Sprintf("%sinterfaces %s unit 0 family ethernet-switching vlan members bd-%d", g, ifname, v))
			vlans[v] = true
		}
	}
	for v := range vlans {
		lines = append(lines, fmt.Sprintf("%svlans bd-%d vlan-id %d", g, v, v), fmt.Sprintf("%svlans bd-%d vxlan vni %d", g, v, v))
	}
	return lines
}

func TestOVSTrunk(t *testing.T) {
	tl := newTestLab(t, 1)
	h1 := tl.addHost(1, 1, 1, "10.247.15.1")
	h2 := tl.addHost(2, 1, 2, "10.247.15.2")
	tl.vfVLAN(1, 15)
	tl.vfVLAN(2, 15)

	// Both ports in bd-15: the VFs' VLAN 15 reaches the leaf tagged and passes.
	tl.apply(1, access(map[string][]int{"xe-0/0/1": {15}, "xe-0/0/2": {15}}))
	tl.wantPort("l1-xe1", "trunk [] [15]")
	tl.wantPort("l1-xe2", "trunk [] [15]")
	tl.wantPort("up-l1", "trunk [] [15]")
	pingPasses(t, h1, h2.addr)

	// A new commit takes bd-15 off xe-0/0/2 (it carries bd-16 now): VLAN 15 no longer reaches h2.
	tl.apply(1, access(map[string][]int{"xe-0/0/1": {15}, "xe-0/0/2": {16}}))
	tl.wantPort("l1-xe2", "trunk [] [16]")
	tl.wantPort("up-l1", "trunk [] [15, 16]")
	pingFails(t, h1, h2.addr)

	// Back in bd-15: it passes again, so the failure was the configuration.
	tl.apply(1, access(map[string][]int{"xe-0/0/1": {15}, "xe-0/0/2": {15, 16}}))
	tl.wantPort("l1-xe2", "trunk [] [15, 16]")
	pingPasses(t, h1, h2.addr)

	// Nothing configured: every port parked.
	tl.apply(1, nil)
	tl.wantPort("l1-xe1", "access 4095 []")
	tl.wantPort("l1-xe2", "access 4095 []")
	tl.wantPort("up-l1", "access 4095 []")
	pingFails(t, h1, h2.addr)
}

func TestOVSNativeVLAN(t *testing.T) {
	tl := newTestLab(t, 1)
	h1 := tl.addHost(1, 1, 1, "10.247.9.1")
	h2 := tl.addHost(2, 1, 2, "10.247.9.2")
	tl.vfVLAN(1, 0) // both untagged
	tl.vfVLAN(2, 0)

	g := "set groups __vflink_access__ "
	conf := []string{
		"set apply-groups __vflink_access__",
		g + "interfaces xe-0/0/1 native-vlan-id 9",
		g + "interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
		g + "interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-7",
		g + "interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-9",
		g + "interfaces xe-0/0/2 unit 0 family ethernet-switching interface-mode access",
		g + "interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-9",
		g + "vlans bd-7 vlan-id 7",
		g + "vlans bd-9 vlan-id 9",
	}
	// Untagged frames on xe-0/0/1 are VLAN 9, which xe-0/0/2 carries untagged (access).
	tl.apply(1, conf)
	tl.wantPort("l1-xe1", "native-untagged 9 [7, 9]")
	tl.wantPort("l1-xe2", "access 9 []")
	tl.wantPort("up-l1", "access 4095 []") // no VNI: nothing crosses the fabric
	pingPasses(t, h1, h2.addr)

	// Without native-vlan-id, xe-0/0/1 is a plain trunk: untagged frames are dropped.
	var noNative []string
	for _, l := range conf {
		if !strings.Contains(l, "native-vlan-id") {
			noNative = append(noNative, l)
		}
	}
	tl.apply(1, noNative)
	tl.wantPort("l1-xe1", "trunk [] [7, 9]")
	pingFails(t, h1, h2.addr)
}

// recorder keeps the error records of a logger (the hook logs from its own goroutine, possibly
// after a test's logger is gone).
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level < slog.LevelError {
		return nil
	}
	s := rec.Message
	rec.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	r.mu.Lock()
	r.errs = append(r.errs, s)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }
func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestOVSDevsimHook(t *testing.T) {
	tl := newTestLab(t, 1)
	h1 := tl.addHost(1, 1, 1, "10.247.15.1")
	h2 := tl.addHost(2, 1, 2, "10.247.15.2")
	tl.vfVLAN(1, 15)
	tl.vfVLAN(2, 15)

	rec := &recorder{}
	hk := newHook(func(device string) (Config, bool) {
		if device != lab.LeafName(1) {
			return Config{}, false
		}
		return Config{Plan: tl.plan, Leaf: 1, Log: slog.New(rec)}, true
	})
	sim := devsim.New(devsim.Options{OnCommit: hk.onCommit, Interfaces: devsim.DefaultInterfaces(8)})
	t.Cleanup(func() {
		_ = sim.Close()
		// Let the last apply finish before OVS goes away.
		for deadline := time.Now().Add(30 * time.Second); !hk.idle() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	dev, err := sim.Add(lab.LeafName(1), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Add("other", "127.0.0.1:0"); err != nil { // not a leaf of the lab: ignored
		t.Fatal(err)
	}

	conf := strings.Join(access(map[string][]int{"xe-0/0/1": {15}, "xe-0/0/2": {15}}), "\n")
	if err := dev.Exec(conf); err != nil {
		t.Fatal(err)
	}
	if err := sim.Device("other").Exec(conf); err != nil {
		t.Fatal(err)
	}
	tl.waitPort("l1-xe1", "trunk [] [15]")
	tl.waitPort("l1-xe2", "trunk [] [15]")
	pingPasses(t, h1, h2.addr)

	// An operator removes xe-0/0/2's configuration: the port is parked and h2 is cut off.
	if err := dev.Exec("delete groups __vflink_access__ interfaces xe-0/0/2"); err != nil {
		t.Fatal(err)
	}
	tl.waitPort("l1-xe2", "access 4095 []")
	pingFails(t, h1, h2.addr)

	// A burst of commits: the bridge ends at the last one.
	for v := 20; v < 30; v++ {
		if err := dev.Exec(fmt.Sprintf("set groups __vflink_access__ interfaces xe-0/0/2 unit 0 family ethernet-switching vlan members bd-15\n"+
			"set groups __vflink_access__ interfaces xe-0/0/2 native-vlan-id %d", v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := dev.Exec("delete groups __vflink_access__ interfaces xe-0/0/2 native-vlan-id\n" +
		"set groups __vflink_access__ interfaces xe-0/0/2 unit 0 family ethernet-switching interface-mode trunk"); err != nil {
		t.Fatal(err)
	}
	tl.waitPort("l1-xe2", "trunk [] [15]")
	pingPasses(t, h1, h2.addr)
	for deadline := time.Now().Add(30 * time.Second); !hk.idle(); {
		if time.Now().After(deadline) {
			t.Fatal("the hook never became idle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The burst's native VLANs 20-29 are no vlan's vlan-id: those commits were reported.
	for _, e := range rec.errors() {
		if !strings.Contains(e, "is no vlan's vlan-id") {
			t.Errorf("hook logged: %s", e)
		}
	}
}

func TestOVSVNIAcrossLeaves(t *testing.T) {
	tl := newTestLab(t, 2)
	h1 := tl.addHost(1, 1, 1, "10.247.7.1") // leaf1 xe-0/0/1
	h2 := tl.addHost(2, 2, 1, "10.247.7.2") // leaf2 xe-0/0/1
	tl.vfVLAN(1, 12)
	tl.vfVLAN(2, 14)

	// Network red is VNI 7 on the fabric, VLAN 12 on leaf1 and VLAN 14 on leaf2, where h2 is on
	// an ESI-LAG (ae1).
	leaf1 := func(vni int) []string {
		g := "set groups __vflink_access__ "
		return []string{
			"set apply-groups __vflink_access__",
			g + "interfaces xe-0/0/1 unit 0 family ethernet-switching interface-mode trunk",
			g + "interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members bd-7",
			g + "vlans bd-7 vlan-id 12",
			fmt.Sprintf("%svlans bd-7 vxlan vni %d", g, vni),
		}
	}
	leaf2 := func(vlan, vni int) []string {
		a, l, m := "set groups __vflink_access__ ", "set groups __vflink_lag__ ", "set groups __vflink_multihoming__ "
		return []string{
			"set apply-groups __vflink_access__",
			"set apply-groups __vflink_lag__",
			"set apply-groups __vflink_multihoming__",
			a + "interfaces ae1 unit 0 family ethernet-switching interface-mode trunk",
			a + "interfaces ae1 unit 0 family ethernet-switching vlan members bd-7",
			fmt.Sprintf("%svlans bd-7 vlan-id %d", a, vlan),
			fmt.Sprintf("%svlans bd-7 vxlan vni %d", a, vni),
			l + "interfaces ae1 aggregated-ether-options lacp active",
			l + "interfaces xe-0/0/1 gigether-options 802.3ad ae1",
			m + "interfaces ae1 esi 00:11:22:33:44:55:66:77:88:99",
			m + "interfaces ae1 esi all-active",
		}
	}
	r := tl.apply(1, leaf1(7))
	if len(r.Flows) == 0 {
		t.Fatal("leaf1 needs translation flows")
	}
	tl.apply(2, leaf2(14, 7))
	tl.wantPort("l1-xe1", "trunk [] [12]")
	tl.wantPort("up-l1", "trunk [] [12]")
	tl.wantPort("l2-xe1", "trunk [] [14]")
	tl.wantPort("up-l2", "trunk [] [14]")
	for _, want := range []string{"in_port=\"dn-l1\",dl_vlan=12 actions=set_field:4103->vlan_vid,NORMAL",
		"in_port=\"dn-l2\",dl_vlan=14 actions=set_field:4103->vlan_vid,NORMAL"} {
		if f := tl.flows(lab.SpineBridge); !strings.Contains(f, want) {
			t.Errorf("spine flows lack %s:\n%s", want, f)
		}
	}
	pingPasses(t, h1, h2.addr)

	// leaf2 puts its bd-7 on VNI 8: a different network on the fabric, so no path.
	tl.apply(2, leaf2(14, 8))
	pingFails(t, h1, h2.addr)

	// VNI 7 again, now as VLAN 7 on leaf2 (no translation there): leaf2's flows are gone, and
	// leaf1's translation alone carries the traffic.
	tl.vfVLAN(2, 7)
	tl.apply(2, leaf2(7, 7))
	tl.wantPort("l2-xe1", "trunk [] [7]")
	if f := tl.flows(lab.LeafName(2)) + tl.flows(lab.SpineBridge); strings.Contains(f, fmt.Sprintf("cookie=0x%x", Cookie(2))) {
		t.Errorf("leaf2's flows are still there:\n%s", f)
	}
	pingPasses(t, h1, h2.addr)
}

func TestOVSApplyErrors(t *testing.T) {
	tl := newTestLab(t, 1)
	tl.addHost(1, 1, 1, "10.247.15.1")

	// xe-0/0/5 has no port on the bridge: named in the error, and xe-0/0/1 is set all the same.
	r, err := Apply(context.Background(), Config{Plan: tl.plan, Leaf: 1},
		access(map[string][]int{"xe-0/0/1": {15}, "xe-0/0/5": {15}}))
	if err == nil || !strings.Contains(err.Error(), "xe-0/0/5 (no port l1-xe5)") {
		t.Fatalf("Apply: %v, want an error naming xe-0/0/5", err)
	}
	if p, _ := r.Port("l1-xe1"); p.String() != "l1-xe1 vlan_mode=trunk trunks=15" {
		t.Errorf("result: %v", p)
	}
	tl.wantPort("l1-xe1", "trunk [] [15]")

	// A leaf the lab does not have, and one whose bridge is missing.
	if _, err := Apply(context.Background(), Config{Plan: tl.plan, Leaf: 2}, nil); err == nil {
		t.Error("leaf 2 of a one-leaf lab was accepted")
	}
	p := tl.plan
	p.Leaves = 2
	if _, err := Apply(context.Background(), Config{Plan: p, Leaf: 2}, nil); err == nil || !strings.Contains(err.Error(), "leaf2") {
		t.Errorf("missing bridge: %v", err)
	}
}

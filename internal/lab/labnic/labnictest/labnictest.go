// Package labnictest builds, for the tests of the lab's NIC backend and hypervisor, the part of
// the lab that one host's NIC needs: a private ovsdb-server and ovs-vswitchd (userspace datapath)
// in a fabric namespace, one NIC bridge per PF with its PF and VF veth pairs (the host ends in a
// host namespace, named and parked as the lab's topology names and parks them), and the host's
// sysfs tree. Names follow package lab except the namespaces, which carry a unique prefix so that
// parallel tests and a running lab never collide. Everything is removed when the test ends,
// processes by PID.
//
// It is hand-written test scaffolding; the lab itself is built by package topo.
package labnictest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

const schema = "/usr/share/openvswitch/vswitch.ovsschema"

// Env is one lab host's NIC, built for a test.
type Env struct {
	Plan     lab.Plan
	Host     int
	FabricNS string // ovsdb-server, ovs-vswitchd, the bridge ends of every veth
	HostNS   string // the PF and VF netdevs
	Prefix   string // the namespaces' unique prefix ("vfln1a2b3c")
}

// Require skips the test unless it runs as root with every program the lab NIC needs.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and run Open vSwitch (CI runs as root)")
	}
	for _, bin := range []string{"ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool", "ping"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping: %s is not installed (apt-get install -y openvswitch-switch iproute2 ethtool iputils-ping): %v", bin, err)
		}
	}
	if _, err := os.Stat(schema); err != nil {
		t.Skipf("skipping: the OVS schema is missing (apt-get install -y openvswitch-switch): %v", err)
	}
}

// VFMAC is the MAC the test lab gives VF n of PF k of host i before anything programs it.
func VFMAC(i, k, n int) string { return fmt.Sprintf("02:1a:%02x:%02x:00:%02x", i, k, n) }

// PFMAC is the MAC of PF k of host i.
func PFMAC(i, k int) string { return fmt.Sprintf("02:1a:%02x:%02x:ff:00", i, k) }

// Setup builds host i's NIC with pfs PFs of vfs VFs each.
func Setup(t testing.TB, host, pfs, vfs int) *Env {
	t.Helper()
	Require(t)
	b := make([]byte, 3)
	rand.Read(b)
	prefix := "vfln" + hex.EncodeToString(b)
	dir, err := os.MkdirTemp("", "vfln")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &Env{
		Plan:     lab.Plan{Hosts: max(host, 1), PFsPerHost: pfs, VFsPerPF: vfs, Leaves: 1, Dir: dir},
		Host:     host,
		FabricNS: prefix + "-fab",
		HostNS:   prefix + "-h",
		Prefix:   prefix,
	}
	if err := e.Plan.Check(); err != nil {
		t.Fatal(err)
	}
	e.AddNS(t, e.FabricNS)
	e.AddNS(t, e.HostNS)
	e.startOVS(t)

	var fake []sriov.FakePF
	for k := range pfs {
		br := lab.NICBridge(host, k)
		e.Vsctl(t, "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev", "other_config:forward-bpdu=true")
		e.veth(t, lab.PFPort(host, k), lab.PFName(k), PFMAC(host, k))
		e.Vsctl(t, "add-port", br, lab.PFPort(host, k), "--", "set", "Port", lab.PFPort(host, k), "vlan_mode=trunk")
		fpf := sriov.FakePF{Name: lab.PFName(k), PCIAddress: lab.PFPCI(host, k), MAC: PFMAC(host, k),
			TotalVFs: vfs, NumVFs: vfs, VFs: map[int]sriov.FakeVF{}}
		for n := range vfs {
			e.veth(t, lab.VFPort(host, k, n), lab.VFName(k, n), VFMAC(host, k, n))
			e.Exec(t, e.HostNS, "ethtool", "-K", lab.VFName(k, n), "tx", "off")
			e.Vsctl(t, "add-port", br, lab.VFPort(host, k, n), "--", "set", "Port", lab.VFPort(host, k, n), "vlan_mode=access", "tag=4095")
			fpf.VFs[n] = sriov.FakeVF{Netdev: lab.VFName(k, n), MAC: VFMAC(host, k, n)}
		}
		fake = append(fake, fpf)
	}
	if err := sriov.WriteFakeSysfs(e.Plan.SysfsRoot(host), fake); err != nil {
		t.Fatal(err)
	}
	return e
}

// AddNS creates network namespace name (lo up), deleted when the test ends.
func (e *Env) AddNS(t testing.TB, name string) {
	t.Helper()
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// veth makes the pair bridgeEnd (fabric namespace) ↔ hostEnd (host namespace, with mac), both up,
// created in place so that nothing appears in the root namespace.
func (e *Env) veth(t testing.TB, bridgeEnd, hostEnd, mac string) {
	t.Helper()
	mustRun(t, "ip", "link", "add", bridgeEnd, "netns", e.FabricNS, "type", "veth", "peer", "name", hostEnd, "netns", e.HostNS)
	mustRun(t, "ip", "-n", e.HostNS, "link", "set", "dev", hostEnd, "address", mac, "up")
	mustRun(t, "ip", "-n", e.FabricNS, "link", "set", "dev", bridgeEnd, "up")
}

func (e *Env) startOVS(t testing.TB) {
	t.Helper()
	ovsDir := filepath.Join(e.Plan.Dir, "ovs")
	if err := os.MkdirAll(ovsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(ovsDir, "conf.db")
	mustRun(t, "ovsdb-tool", "create", db, schema)
	env := append(os.Environ(), "OVS_RUNDIR="+ovsDir, "OVS_DBDIR="+ovsDir, "OVS_LOGDIR="+ovsDir)
	e.daemon(t, env, filepath.Join(ovsDir, "ovsdb-server.log"), "ovsdb-server", db,
		"--remote=punix:"+filepath.Join(ovsDir, "db.sock"), "--unixctl="+filepath.Join(ovsDir, "ovsdb-server.ctl"),
		"--log-file="+filepath.Join(ovsDir, "ovsdb-server.log"), "--no-chdir")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ovs-vsctl", "--db="+e.Plan.OVSDB(), "--no-wait", "--timeout=5", "init").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ovsdb-server did not come up: %v: %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.daemon(t, env, filepath.Join(ovsDir, "ovs-vswitchd.log"), "ovs-vswitchd", e.Plan.OVSDB(), "--disable-system",
		"--unixctl="+filepath.Join(ovsDir, "ovs-vswitchd.ctl"), "--log-file="+filepath.Join(ovsDir, "ovs-vswitchd.log"), "--no-chdir")
}

// daemon starts argv in the fabric namespace (ip netns exec execs it, so the PID is the
// daemon's) and stops it by PID when the test ends: SIGTERM, then SIGKILL after 5 s.
func (e *Env) daemon(t testing.TB, env []string, logFile string, argv ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", e.FabricNS}, argv...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("%s output:\n%s\nlog:\n%s", argv[0], out.String(), log)
		}
	})
}

// Vsctl runs ovs-vsctl against the test lab's database and returns its trimmed output.
func (e *Env) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ovs-vsctl", append([]string{"--db=" + e.Plan.OVSDB(), "--timeout=10"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Ofctl runs ovs-ofctl CMD on a bridge of the test lab and returns its output.
func (e *Env) Ofctl(t testing.TB, cmd, bridge string, args ...string) string {
	t.Helper()
	target := "unix:" + filepath.Join(e.Plan.Dir, "ovs", bridge+".mgmt")
	out, err := exec.Command("ovs-ofctl", append([]string{cmd, target}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl %s %s: %v: %s", cmd, bridge, err, out)
	}
	return string(out)
}

// Exec runs argv in namespace ns and returns its output; failure fails the test.
func (e *Env) Exec(t testing.TB, ns string, argv ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Ping reports whether ns reaches addr (an address of the test lab, 10.247.0.0/16): two echo
// requests, one second each, at least one answered.
func Ping(ns, addr string) bool {
	if !strings.HasPrefix(addr, "10.247.") {
		panic("labnictest: ping only 10.247.0.0/16, the lab's range: " + addr)
	}
	return exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "2", "-W", "1", addr).Run() == nil
}

// NSExists reports whether network namespace name exists.
func NSExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func mustRun(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

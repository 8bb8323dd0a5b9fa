package topo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

// requireRoot skips unless this test may build a lab: root, and everything Preflight wants.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: building a lab needs root (network namespaces, Open vSwitch, lldpd); CI runs as root")
	}
	if m := Missing(); len(m) > 0 {
		t.Skipf("skipping: this machine lacks %s (%s)", strings.Join(m, ", "), AptInstall)
	}
}

// lockMachine holds the machine's lab lock for the test (one lab at a time per machine).
func lockMachine(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	release, err := Acquire(ctx)
	if err != nil {
		t.Fatalf("waiting for the machine's lab lock %s: %v", MachineLock, err)
	}
	t.Cleanup(release)
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// smallPlan is two hosts with one PF and two VFs each, cabled to two leaves: host 1's PF to
// leaf1 xe-0/0/1, host 2's to leaf2 xe-0/0/2, so a frame between them crosses the spine.
func smallPlan(dir string) lab.Plan {
	return lab.Plan{Hosts: 2, PFsPerHost: 1, VFsPerPF: 2, Leaves: 2, Dir: dir}
}

// assertGone checks that nothing of a lab remains: no lab namespace, no recorded process, no dir.
// labDir returns a fresh lab directory path: short (unix socket paths hold 107 bytes, and
// t.TempDir carries the test's name) and reachable by user _lldpd (lldpcli is setuid _lldpd).
func labDir(t *testing.T) string {
	t.Helper()
	tmp, err := os.MkdirTemp("", "vfltopo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(tmp, "lab")
}

func assertGone(t *testing.T, dir string, procs []Proc) {
	t.Helper()
	for _, p := range procs {
		if p.alive() {
			t.Errorf("%s (pid %d) still runs after Down", p.Role, p.PID)
		}
	}
	es, _ := os.ReadDir(netnsDir)
	for _, e := range es {
		if isLabNS(e.Name()) {
			t.Errorf("namespace %s still exists after Down", e.Name())
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s still exists after Down (stat: %v)", dir, err)
	}
}

func TestUpDown(t *testing.T) {
	requireRoot(t)
	lockMachine(t)
	ctx := t.Context()
	dir := labDir(t)
	t.Cleanup(func() { Down(context.Background(), dir, nil) }) // also when the test fails

	start := time.Now()
	l, err := Up(ctx, smallPlan(dir), testLog(t))
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("up took %v (%v)", time.Since(start).Round(time.Millisecond), l.Steps)

	st, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !st.Ready || len(st.Namespaces) != 3 {
		t.Errorf("state: ready %v, namespaces %v; want ready and vfl-fabric, vfl-h1, vfl-h2", st.Ready, st.Namespaces)
	}
	roles := map[string]bool{}
	for _, p := range st.Procs {
		roles[p.Role] = true
		if !p.alive() {
			t.Errorf("%s (pid %d) is not running", p.Role, p.PID)
		}
	}
	for _, r := range []string{"ovsdb-server", "ovs-vswitchd", "lldpd-leaf1", "lldpd-leaf2", "lldpd-h1", "lldpd-h2"} {
		if !roles[r] {
			t.Errorf("state records no %s; procs %+v", r, st.Procs)
		}
	}

	t.Run("RefusesSecondLab", func(t *testing.T) {
		_, err := Up(ctx, smallPlan(labDir(t)), nil)
		if err == nil || !strings.Contains(err.Error(), "namespace vfl-fabric exists") {
			t.Fatalf("second Up: got %v, want a refusal naming namespace vfl-fabric", err)
		}
		_, err = Up(ctx, smallPlan(dir), nil)
		if err == nil || !strings.Contains(err.Error(), "vflink lab down") {
			t.Fatalf("Up on the same dir: got %v, want a refusal saying run vflink lab down", err)
		}
		// A directory that is not the lab's own: refused before anything is made (Down would
		// remove it whole).
		other := t.TempDir()
		if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = Up(ctx, smallPlan(other), nil)
		if err == nil || !strings.Contains(err.Error(), "is not empty (it holds notes.txt") {
			t.Fatalf("Up in a non-empty directory: got %v, want a refusal naming notes.txt", err)
		}
		if _, err := os.Stat(filepath.Join(other, "notes.txt")); err != nil {
			t.Fatalf("a refused Up removed notes.txt: %v", err)
		}
		if _, err := Load(dir); err != nil {
			t.Fatalf("a refused Up touched the running lab: %v", err)
		}
	})

	t.Run("Layout", func(t *testing.T) {
		for port, want := range map[string]string{"vf-h1p0v0": "4095", "l1-xe1": "4095", "l2-xe2": "4095", "pf-h1p0": "[]"} {
			got, err := l.Vsctl(ctx, "get", "Port", port, "tag")
			if err != nil || strings.TrimSpace(got) != want {
				t.Errorf("tag of %s: got %q (%v), want %s", port, got, err, want)
			}
		}
		got, err := l.Vsctl(ctx, "get", "Bridge", "nic-h1p0", "other_config:forward-bpdu")
		if err != nil || strings.TrimSpace(got) != `"true"` {
			t.Errorf("nic-h1p0 forward-bpdu: got %q (%v), want \"true\"", got, err)
		}
		out, err := Exec(ctx, lab.HostNS(1), "ip", "-j", "link", "show", "ens1f0v1")
		if err != nil || !strings.Contains(out, VFMAC(1, 0, 1)) || !strings.Contains(out, `"UP"`) {
			t.Errorf("ens1f0v1 in vfl-h1: %s (%v); want up with MAC %s", out, err, VFMAC(1, 0, 1))
		}
		out, err = Exec(ctx, lab.HostNS(1), "ethtool", "-k", "ens1f0v1")
		if err != nil || !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("ethtool -k ens1f0v1: %v\n%s; want tx-checksumming off", err, out)
		}
		out, err = Exec(ctx, lab.HostNS(2), "ip", "-j", "addr", "show")
		if err != nil || strings.Contains(out, `"inet6"`) {
			t.Errorf("vfl-h2 has IPv6 addresses (want IPv6 off in lab namespaces): %s %v", out, err)
		}
		// Nothing of the lab in the root namespace.
		if out, err := run(ctx, nil, nil, "ip", "-o", "link", "show"); err != nil || strings.Contains(out, "ens1f0") || strings.Contains(out, "vf-h1") {
			t.Errorf("root namespace holds lab interfaces: %s %v", out, err)
		}
		// The sysfs tree reads back as the lab's PFs and VFs.
		fs := sriov.NewFS(l.Plan.SysfsRoot(2))
		addr, err := fs.NetDevicePCI("ens1f0")
		if err != nil || addr != lab.PFPCI(2, 0) {
			t.Fatalf("sysfs of h2: ens1f0 at %q (%v), want %s", addr, err, lab.PFPCI(2, 0))
		}
		d, err := fs.PCIDevice(addr)
		if err != nil || d.NumVFs != 2 || len(d.VFs) != 2 {
			t.Fatalf("sysfs of h2: PF %+v (%v), want 2 VFs", d, err)
		}
		if mac, err := fs.NetDeviceMAC("ens1f0v1"); err != nil || mac != VFMAC(2, 0, 1) {
			t.Errorf("sysfs of h2: ens1f0v1 MAC %q (%v), want %s", mac, err, VFMAC(2, 0, 1))
		}
		if mac, err := fs.NetDeviceMAC("ens1f0"); err != nil || mac != PFMAC(2, 0) {
			t.Errorf("sysfs of h2: ens1f0 MAC %q (%v), want %s", mac, err, PFMAC(2, 0))
		}
	})

	t.Run("LLDP", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		t0 := time.Now()
		if err := l.WaitLLDP(wctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("every PF hears exactly its leaf after %v", time.Since(t0).Round(time.Millisecond))
		out, err := run(ctx, nil, nil, "lldpcli", "-u", l.Plan.LldpdSocket("h1"), "-f", "json0", "show", "neighbors")
		if err != nil || !strings.Contains(out, `"leaf1"`) || !strings.Contains(out, `"xe-0/0/1"`) || !strings.Contains(out, `"ens1f0"`) {
			t.Errorf("lldpcli -f json0 show neighbors on h1: %v\n%s\nwant leaf1 / xe-0/0/1 on ens1f0", err, out)
		}
	})

	t.Run("Packets", func(t *testing.T) {
		if _, err := exec.LookPath("ping"); err != nil {
			t.Skip("skipping: ping is not installed (apt-get install iputils-ping)")
		}
		testPackets(t, l)
	})

	t.Run("StartStop", func(t *testing.T) {
		p, err := l.Start("test-sleep", lab.HostNS(2), "sleep", "600")
		if err != nil {
			t.Fatal(err)
		}
		if !p.alive() || p.NS != lab.HostNS(2) {
			t.Fatalf("Start: %+v, alive %v", p, p.alive())
		}
		if err := l.Stop("test-sleep"); err != nil {
			t.Fatal(err)
		}
		if p.alive() {
			t.Error("test-sleep runs after Stop")
		}
		s, _ := Load(dir)
		for _, q := range s.Procs {
			if q.Role == "test-sleep" {
				t.Errorf("Stop left %+v in the state", q)
			}
		}
		// One left running: Down ends it by the state.
		p, err = l.Start("test-sleep2", "", "sleep", "600")
		if err != nil {
			t.Fatal(err)
		}
		st.Procs = append(st.Procs, p)
	})

	procs := st.Procs
	t0 := time.Now()
	if err := Down(ctx, dir, testLog(t)); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("down took %v", time.Since(t0).Round(time.Millisecond))
	assertGone(t, dir, procs)
	if err := Down(ctx, dir, nil); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

// testPackets puts 10.247.250.1/24 and .2/24 on VF 0 of host 1 and host 2 and configures VLAN
// 100 from VF port to VF port: VF ports access 100, the leaf ports (l1-xe1, l2-xe2) and the
// uplinks trunking 100. Ping passes; with a leaf port or a VF port parked it does not.
func testPackets(t *testing.T, l *Lab) {
	ctx := t.Context()
	mustExec := func(ns string, argv ...string) {
		t.Helper()
		if _, err := Exec(ctx, ns, argv...); err != nil {
			t.Fatal(err)
		}
	}
	vsctl := func(args ...string) {
		t.Helper()
		if _, err := l.Vsctl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(lab.HostNS(1), "ip", "addr", "add", "10.247.250.1/24", "dev", lab.VFName(0, 0))
	mustExec(lab.HostNS(2), "ip", "addr", "add", "10.247.250.2/24", "dev", lab.VFName(0, 0))
	ping := func(extra ...string) error {
		_, err := Exec(ctx, lab.HostNS(1), append(append([]string{"ping", "-c", "2", "-W", "1"}, extra...), "10.247.250.2")...)
		return err
	}
	configure := func() {
		vsctl("--", "set", "Port", "vf-h1p0v0", "vlan_mode=access", "tag=100",
			"--", "set", "Port", "vf-h2p0v0", "vlan_mode=access", "tag=100",
			"--", "set", "Port", "l1-xe1", "vlan_mode=trunk", "tag=[]", "trunks=[100]",
			"--", "set", "Port", "l2-xe2", "vlan_mode=trunk", "tag=[]", "trunks=[100]",
			"--", "set", "Port", "up-l1", "trunks=[100]",
			"--", "set", "Port", "up-l2", "trunks=[100]")
	}
	// expectDropped: OVS revalidates its datapath flows just after a change, so a first ping is
	// a warm-up; the next two echo requests must both go unanswered.
	expectDropped := func(what string) {
		t.Helper()
		Exec(ctx, lab.HostNS(1), "ping", "-c", "1", "-W", "1", "10.247.250.2")
		if err := ping("-i", "0.2"); err == nil {
			t.Errorf("ping h1 VF0 → h2 VF0 passed with %s; want it dropped", what)
		}
	}

	expectDropped("every port parked, as Up leaves them")
	configure()
	if err := ping(); err != nil {
		t.Fatalf("ping h1 VF0 → h2 VF0 over VLAN 100 (leaf1 → spine → leaf2): %v", err)
	}
	testTCP(t)
	if got, err := l.Vsctl(ctx, "get", "Port", "vf-h2p0v0", "tag"); err != nil || strings.TrimSpace(got) != "100" {
		t.Errorf("vf-h2p0v0 tag: %q %v, want 100", got, err)
	}

	vsctl(append([]string{"--"}, Park("l1-xe1")...)...)
	expectDropped("leaf port l1-xe1 parked")
	configure()
	if err := ping(); err != nil {
		t.Fatalf("ping after configuring again: %v", err)
	}
	vsctl(append([]string{"--"}, Park("vf-h2p0v0")...)...)
	expectDropped("VF port vf-h2p0v0 parked")
	configure()
	vsctl("--", "set", "Port", "up-l2", "trunks=[200]")
	expectDropped("leaf2's uplink not carrying VLAN 100")
}

// testTCP sends 4 MiB over TCP from host 1's VF 0 to host 2's (10.247.250.1 → .2:5001): with
// TX checksum offload on, the userspace datapath passes partial checksums on and not even the
// handshake completes (measured), so this shows Up turned it off.
func testTCP(t *testing.T) {
	t.Helper()
	const size = 4 << 20
	var ln net.Listener
	if err := inNetns(lab.HostNS(2), func() (err error) {
		ln, err = net.Listen("tcp", "10.247.250.2:5001")
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", lab.HostNS(2), err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	var c net.Conn
	if err := inNetns(lab.HostNS(1), func() (err error) {
		c, err = net.DialTimeout("tcp", "10.247.250.2:5001", 10*time.Second)
		return err
	}); err != nil {
		t.Fatalf("TCP connect from %s to 10.247.250.2:5001: %v", lab.HostNS(1), err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	_, werr := c.Write(make([]byte, size))
	c.Close()
	if n := <-got; werr != nil || n != size {
		t.Errorf("TCP h1 VF0 → h2 VF0: sent %d bytes (%v), received %d", size, werr, n)
	}
}

// inNetns runs fn on an OS thread in network namespace ns; the thread is never unlocked, so Go
// discards it afterwards rather than reuse it in the wrong namespace. Sockets fn opens stay in ns.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// TestCrash shows that Down removes a lab whose `lab up` process died: killed after Up returned
// (its daemons live on, detached), and killed in the middle of Up (state.json lists only part).
// The lab directory is under /run, as the default one is, so lldpd's private /run is exercised.
func TestCrash(t *testing.T) {
	requireRoot(t)
	lockMachine(t)
	for _, tc := range []struct{ name, crashAfter string }{{"AfterUp", ""}, {"InUp", "lldpd"}} {
		t.Run(tc.name, func(t *testing.T) {
			parent, err := os.MkdirTemp("/run", "vflink-topo-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(parent) })
			if err := os.Chmod(parent, 0o755); err != nil { // lldpcli runs as _lldpd
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "lab")
			t.Cleanup(func() { Down(context.Background(), dir, nil) })

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), "VFLINK_TOPO_CHILD_DIR="+dir, "VFLINK_TOPO_CHILD_CRASH="+tc.crashAfter)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				var all []string
				for sc.Scan() {
					all = append(all, sc.Text())
					if sc.Text() == "UP-DONE" {
						done <- "up"
						return
					}
				}
				done <- strings.Join(all, "\n")
			}()
			select {
			case got := <-done:
				if tc.crashAfter == "" && got != "up" {
					t.Fatalf("child Up did not finish:\n%s", got)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("child Up took more than 2 minutes")
			}
			if tc.crashAfter == "" {
				cmd.Process.Signal(syscall.SIGKILL) // the child we started, by its PID
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if tc.crashAfter != "" && (!errors.As(err, &ee) || ee.ExitCode() != 3) {
				t.Fatalf("child: %v, want exit status 3 (its crash after step %s)", err, tc.crashAfter)
			}

			st, err := Load(dir)
			if err != nil {
				t.Fatalf("state after the crash: %v", err)
			}
			if st.Ready != (tc.crashAfter == "") {
				t.Errorf("state ready = %v after a crash after %q", st.Ready, tc.crashAfter)
			}
			if len(st.Procs) < 4 {
				t.Errorf("state lists %d processes, want OVS and lldpd: %+v", len(st.Procs), st.Procs)
			}
			for _, p := range st.Procs {
				if !p.alive() {
					t.Errorf("%s (pid %d) died with the process that started it; want it detached", p.Role, p.PID)
				}
			}
			var stray *exec.Cmd
			if tc.crashAfter == "" {
				// The lab outlives its starter: OVS and lldpd still work (and lldpd's private /run
				// kept the control sockets under /run reachable).
				l, err := Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				wctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				if err := l.WaitLLDP(wctx); err != nil {
					t.Errorf("after the crash: %v", err)
				}
				// A process nobody recorded, in a lab namespace: Down ends it too.
				stray = exec.Command("ip", "netns", "exec", lab.HostNS(1), "sleep", "600")
				stray.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				if err := stray.Start(); err != nil {
					t.Fatal(err)
				}
				go stray.Wait()
				t.Cleanup(func() { stray.Process.Kill() })
			}
			t0 := time.Now()
			if err := Down(t.Context(), dir, testLog(t)); err != nil {
				t.Fatalf("Down after the crash: %v", err)
			}
			if stray != nil {
				st, _ := startTime(stray.Process.Pid)
				if p := (Proc{Role: "stray sleep", PID: stray.Process.Pid, Start: st}); p.alive() {
					t.Errorf("an unrecorded process in %s survived Down", lab.HostNS(1))
				}
			}
			t.Logf("down after the crash took %v", time.Since(t0).Round(time.Millisecond))
			assertGone(t, dir, st.Procs)
		})
	}
}

// TestCrashChild is TestCrash's `lab up` process: it builds the lab in VFLINK_TOPO_CHILD_DIR,
// exiting with status 3 after the step VFLINK_TOPO_CHILD_CRASH, else printing UP-DONE and
// waiting to be killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("VFLINK_TOPO_CHILD_DIR")
	if dir == "" {
		t.Skip("skipping: only run by TestCrash")
	}
	crash := os.Getenv("VFLINK_TOPO_CHILD_CRASH")
	_, err := up(context.Background(), smallPlan(dir), nil, func(step string) error {
		if step == crash {
			os.Exit(3)
		}
		return nil
	})
	if err != nil {
		fmt.Println("UP-FAILED", err)
		os.Exit(1)
	}
	fmt.Println("UP-DONE")
	time.Sleep(time.Hour)
}

// TestUpFailureRemovesAll makes a step fail and checks that Up removed what it had made.
func TestUpFailureRemovesAll(t *testing.T) {
	requireRoot(t)
	lockMachine(t)
	dir := labDir(t)
	t.Cleanup(func() { Down(context.Background(), dir, nil) })
	var procs []Proc
	_, err := up(t.Context(), smallPlan(dir), nil, func(step string) error {
		if step == "lldpd" {
			st, err := Load(dir)
			if err != nil {
				return err
			}
			procs = st.Procs
			return errors.New("injected failure")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "after lldpd: injected failure") {
		t.Fatalf("Up: got %v, want the injected failure after step lldpd", err)
	}
	if len(procs) == 0 {
		t.Fatal("no processes were recorded before the failure")
	}
	assertGone(t, dir, procs)
}

// TestDefaultPlan builds lab.Default's shape (2 hosts x 2 PFs x 8 VFs, 2 leaves) and logs how
// long Up, LLDP and Down take.
func TestDefaultPlan(t *testing.T) {
	requireRoot(t)
	lockMachine(t)
	p := lab.Default
	p.Dir = labDir(t)
	t.Cleanup(func() { Down(context.Background(), p.Dir, nil) })
	t0 := time.Now()
	l, err := Up(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := time.Since(t0)
	wctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	t1 := time.Now()
	if err := l.WaitLLDP(wctx); err != nil {
		t.Error(err)
	}
	lldpTook := time.Since(t1)
	// And it stays so: with 1 s between LLDPDUs, an LLDPDU flooded from one host to another
	// (as it is when the leaf bridges forward LLDP: two hosts share leaf1) would show by now.
	time.Sleep(2500 * time.Millisecond)
	if bad := l.lldpMismatches(t.Context()); len(bad) > 0 {
		t.Errorf("LLDP: %s", strings.Join(bad, "; "))
	}
	out, err := l.Vsctl(t.Context(), "--bare", "--columns=name", "list", "Port")
	// Per PF: its PF, wire and 8 VF ports and a leaf port (4 x 11); 2 uplinks and 2 spine
	// downlinks; each of the 7 bridges' own port.
	if n, want := len(strings.Fields(out)), 4*11+2+2+7; err != nil || n != want {
		t.Errorf("OVS has %d ports (%v), want %d", n, err, want)
	}
	t2 := time.Now()
	if err := Down(t.Context(), p.Dir, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab.Default shape: up took %v (%v), every PF heard its leaf %v later, down took %v",
		up.Round(time.Millisecond), l.Steps, lldpTook.Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
}

package topo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/internal/host/lldp"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

// Lab is a running lab topology.
type Lab struct {
	Plan      lab.Plan
	OVSDB     string // ovs-vsctl --db value: unix:<Dir>/ovs/db.sock
	OVSRundir string // OVS_RUNDIR of the lab's ovs-vswitchd: <bridge>.mgmt is there (ovs-ofctl)
	// Steps says how long each step of Up took (empty for a Lab from Open).
	Steps []Step
}

// Step is one timed step of Up.
type Step struct {
	Name string
	Took time.Duration
}

// Open returns the Lab whose state is in dir (made by Up, possibly in another process).
func Open(dir string) (*Lab, error) {
	s, err := Load(dir)
	if err != nil {
		return nil, err
	}
	if !s.Ready {
		return nil, fmt.Errorf("the lab in %s is not up (Up did not finish); run `vflink lab down --dir %s`", dir, dir)
	}
	return &Lab{Plan: s.Plan, OVSDB: s.OVSDB, OVSRundir: s.OVSRundir}, nil
}

// Vsctl runs ovs-vsctl against the lab's database; equivalent to
// `ovs-vsctl --db=unix:<Dir>/ovs/db.sock --timeout=30 ARGS...`. It returns standard output.
func (l *Lab) Vsctl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, nil, nil, append([]string{"ovs-vsctl", "--db=" + l.OVSDB, "--timeout=30"}, args...)...)
}

// OfctlTarget is the ovs-ofctl target of a lab bridge: unix:<OVSRundir>/<bridge>.mgmt.
func (l *Lab) OfctlTarget(bridge string) string {
	return "unix:" + filepath.Join(l.OVSRundir, bridge+".mgmt")
}

// Start starts argv detached (own session, outliving the caller) in network namespace ns ("" =
// the caller's), with its output in <Dir>/logs/<role>.log, and records it in the lab's state so
// Down ends it. role names it in the state and the logs ("vm-1234", ...).
func (l *Lab) Start(role, ns string, argv ...string) (Proc, error) {
	if len(argv) == 0 {
		return Proc{}, errors.New("start: no command")
	}
	p, err := startDetached(role, ns, filepath.Join(l.Plan.Dir, "logs", role+".log"), nil, argv...)
	if err != nil {
		return Proc{}, err
	}
	if err := updateState(l.Plan.Dir, false, func(s *State) { s.Procs = append(s.Procs, p) }); err != nil {
		stopProcs([]Proc{p}, 2*time.Second)
		return Proc{}, fmt.Errorf("record %s in the lab state: %w", role, err)
	}
	return p, nil
}

// Stop ends the processes recorded under role (SIGTERM to each one's process group, SIGKILL
// after 5 s) and forgets them.
func (l *Lab) Stop(role string) error {
	s, err := Load(l.Plan.Dir)
	if err != nil {
		return err
	}
	var ps []Proc
	for _, p := range s.Procs {
		if p.Role == role {
			ps = append(ps, p)
		}
	}
	if stuck := stopProcs(ps, 5*time.Second); len(stuck) > 0 {
		return fmt.Errorf("stop %s: still running after SIGKILL: %s", role, strings.Join(stuck, ", "))
	}
	return updateState(l.Plan.Dir, false, func(s *State) {
		s.Procs = slices.DeleteFunc(s.Procs, func(p Proc) bool { return p.Role == role })
	})
}

// WaitLLDP waits until every PF's lldpd hears exactly its leaf, under the leaf's name, with the
// Junos port name as port ID (lldpd answers `lldpcli -u <host socket> -f json0 show neighbors
// details`), or ctx ends; the error then says what each PF hears.
func (l *Lab) WaitLLDP(ctx context.Context) error {
	for {
		bad := l.lldpMismatches(ctx)
		if len(bad) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("LLDP: %s: %w", strings.Join(bad, "; "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *Lab) lldpMismatches(ctx context.Context) []string {
	var bad []string
	byHost := map[int][]lldp.Neighbor{}
	for i := 1; i <= l.Plan.Hosts; i++ {
		ns, err := (&lldp.Lldpd{Socket: l.Plan.LldpdSocket(lab.HostName(i))}).Neighbors(ctx)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", lab.HostName(i), err))
			continue
		}
		byHost[i] = ns
	}
	for _, lk := range l.Plan.Links() {
		var heard []string
		ok := false
		for _, n := range byHost[lk.Host] {
			if n.Interface != lk.PFName {
				continue
			}
			heard = append(heard, n.SystemName+" "+n.PortID)
			ok = n.SystemName == lab.LeafName(lk.Leaf) && n.PortID == lk.JunosPort
		}
		if !ok || len(heard) != 1 {
			bad = append(bad, fmt.Sprintf("%s %s hears %q, want [%s %s]", lab.HostName(lk.Host), lk.PFName, heard, lab.LeafName(lk.Leaf), lk.JunosPort))
		}
	}
	return bad
}

// Up builds the whole lab for plan p, in order, and returns it; on any error it removes what it
// made (Down) and returns the error, naming the step and the failing command's standard error.
// It refuses when <Dir>/state.json exists or one of the lab's namespaces does (a lab is up), and
// when Dir is not empty (Down removes it whole). Up does not wait for LLDP: Lab.WaitLLDP does.
func Up(ctx context.Context, p lab.Plan, log *slog.Logger) (*Lab, error) {
	return up(ctx, p, log, nil)
}

// up is Up with a hook run after each step (tests: fail or crash there).
func up(ctx context.Context, p lab.Plan, log *slog.Logger, after func(step string) error) (_ *Lab, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	downLog := log
	log = log.With("component", "lab/topo")
	if err := p.Check(); err != nil {
		return nil, err
	}
	if err := checkCabling(p); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(p.Dir)
	if err != nil {
		return nil, err
	}
	p.Dir = dir
	l := &Lab{Plan: p, OVSDB: p.OVSDB(), OVSRundir: filepath.Join(dir, "ovs")}
	step := func(name string, fn func() error) error {
		t := time.Now()
		err := fn()
		l.Steps = append(l.Steps, Step{Name: name, Took: time.Since(t)})
		if err != nil {
			return fmt.Errorf("lab up: %s: %w", name, err)
		}
		log.Info("lab step done", "step", name, "took", time.Since(t).Round(time.Millisecond))
		if after != nil {
			if err := after(name); err != nil {
				return fmt.Errorf("lab up: after %s: %w", name, err)
			}
		}
		return nil
	}

	if err := step("preflight", func() error {
		if err := Preflight(); err != nil {
			return err
		}
		if err := CheckAddresses(); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
			return fmt.Errorf("%s exists: a lab is up in %s (or was not taken down); run `vflink lab down --dir %s`", filepath.Join(dir, StateFile), dir, dir)
		}
		if es, err := os.ReadDir(dir); err == nil && len(es) > 0 {
			return fmt.Errorf("the lab directory %s is not empty (it holds %s, ...): the lab needs a directory of its own, which `vflink lab down` removes whole; if it is what is left of a lab, run `vflink lab down --dir %s`", dir, es[0].Name(), dir)
		}
		if err := checkDir(p); err != nil {
			return err
		}
		for _, ns := range Namespaces(p) {
			if _, err := os.Stat(filepath.Join(netnsDir, ns)); err == nil {
				return fmt.Errorf("network namespace %s exists: another lab is up on this machine; run `vflink lab down --dir DIR` with its directory", ns)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}

	// From here on, whatever fails removes what was made.
	var sysfs sync.WaitGroup // writing the sysfs trees (slow on some disks) overlaps the steps
	var sysfsErr error
	defer func() {
		if err == nil {
			return
		}
		sysfs.Wait() // before Down removes the directory it writes into
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := Down(dctx, dir, downLog); derr != nil {
			err = fmt.Errorf("%w (removing what was made failed too: %v)", err, derr)
		}
	}()

	if err := step("state", func() error {
		for _, d := range []string{dir, filepath.Join(dir, "logs"), filepath.Join(dir, "ovs"), filepath.Join(dir, "lldpd")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		return updateState(dir, true, func(s *State) {
			*s = State{Plan: p, Created: time.Now().UTC(), Namespaces: Namespaces(p), OVSDB: l.OVSDB, OVSRundir: l.OVSRundir}
		})
	}); err != nil {
		return nil, err
	}

	sysfs.Go(func() { sysfsErr = writeSysfs(p) })
	if err := step("namespaces", func() error { return makeNamespaces(ctx, p) }); err != nil {
		return nil, err
	}
	if err := step("ovs", func() error { return startOVS(ctx, l) }); err != nil {
		return nil, err
	}
	if err := step("cables", func() error { return makeCables(ctx, p) }); err != nil {
		return nil, err
	}
	if err := step("bridges", func() error { return makeBridges(ctx, l) }); err != nil {
		return nil, err
	}
	if err := step("lldpd", func() error { return startLldpd(ctx, p) }); err != nil {
		return nil, err
	}
	if err := step("sysfs", func() error { sysfs.Wait(); return sysfsErr }); err != nil {
		return nil, err
	}
	if err := step("ready", func() error {
		return updateState(dir, false, func(s *State) { s.Ready = true })
	}); err != nil {
		return nil, err
	}
	return l, nil
}

// maxSocketPath is the longest path a unix socket address holds (sun_path is 108 bytes with the
// terminating NUL). Open vSwitch works around it; lldpd does not.
const maxSocketPath = 107

// checkDir refuses a lab directory (absolute) whose lldpd control sockets would not fit a unix
// socket address, or that the user _lldpd cannot reach: lldpcli is setuid _lldpd, and it opens
// the control sockets and configuration files in the lab directory.
func checkDir(p lab.Plan) error {
	for _, a := range lldpAgents(p) {
		if s := p.LldpdSocket(a.Name); len(s) > maxSocketPath {
			return fmt.Errorf("the lab directory's path is too long: lldpd's control socket %s would be %d bytes, over the %d a unix socket address holds; use a shorter directory", s, len(s), maxSocketPath)
		}
	}
	for d := filepath.Dir(p.Dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("lldpcli (setuid user _lldpd) cannot reach the lab directory %s: %s has mode %04o; use a directory whose parents everyone may enter (chmod o+x %s)", p.Dir, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

// makeNamespaces adds the lab's namespaces, sets lo up and IPv6 off in each (so no interface of
// the lab gets a link-local address or sends router solicitations).
func makeNamespaces(ctx context.Context, p lab.Plan) error {
	var b strings.Builder
	for _, ns := range Namespaces(p) {
		fmt.Fprintf(&b, "netns add %s\n", ns)
	}
	if _, err := run(ctx, nil, []byte(b.String()), "ip", "-batch", "-"); err != nil {
		return err
	}
	const script = `ip link set lo up || exit 1
if [ -d /proc/sys/net/ipv6 ]; then
	echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 || exit 1
fi`
	return parallel(Namespaces(p), func(ns string) error {
		_, err := Exec(ctx, ns, "sh", "-c", script)
		return err
	})
}

// ovsEnv keeps Open vSwitch's tools out of the system's directories.
func ovsEnv(dir string) []string {
	o := filepath.Join(dir, "ovs")
	return []string{"OVS_RUNDIR=" + o, "OVS_DBDIR=" + o, "OVS_SYSCONFDIR=" + o, "OVS_LOGDIR=" + filepath.Join(dir, "logs")}
}

// startOVS creates the lab's OVS database and starts ovsdb-server and ovs-vswitchd (userspace
// datapath only) in vfl-fabric, recording each.
func startOVS(ctx context.Context, l *Lab) error {
	dir := l.Plan.Dir
	env := ovsEnv(dir)
	o, logs := filepath.Join(dir, "ovs"), filepath.Join(dir, "logs")
	db := filepath.Join(o, "conf.db")
	if _, err := run(ctx, env, nil, "ovsdb-tool", "create", db, OVSSchema); err != nil {
		return err
	}
	daemon := func(role string, argv ...string) error {
		pidf := filepath.Join(o, role+".pid")
		argv = append([]string{"ip", "netns", "exec", lab.FabricNS}, argv...)
		argv = append(argv, "--pidfile="+pidf, "--detach", "--log-file="+filepath.Join(logs, role+".log"))
		if _, err := run(ctx, env, nil, argv...); err != nil {
			return err
		}
		pid, err := pidFile(pidf)
		if err != nil {
			return err
		}
		start, err := startTime(pid)
		if err != nil {
			return fmt.Errorf("%s (pid %d) exited at once; see %s", role, pid, filepath.Join(logs, role+".log"))
		}
		proc := Proc{Role: role, PID: pid, NS: lab.FabricNS, Argv: argv, Log: filepath.Join(logs, role+".log"), Start: start}
		return updateState(dir, false, func(s *State) { s.Procs = append(s.Procs, proc) })
	}
	if err := daemon("ovsdb-server", "ovsdb-server", db, "--remote=punix:"+filepath.Join(o, "db.sock")); err != nil {
		return err
	}
	if _, err := run(ctx, env, nil, "ovs-vsctl", "--db="+l.OVSDB, "--no-wait", "init"); err != nil {
		return err
	}
	return daemon("ovs-vswitchd", "ovs-vswitchd", l.OVSDB, "--disable-system")
}

// makeCables creates every veth pair (both ends directly in their namespaces), sets them up and
// turns TX checksum offload off on the host ends (the userspace datapath passes partial
// checksums on, and TCP between VFs then stalls).
func makeCables(ctx context.Context, p lab.Plan) error {
	if _, err := run(ctx, nil, []byte(cablesBatch(p)), "ip", "-batch", "-"); err != nil {
		return err
	}
	if _, err := run(ctx, nil, []byte(upBatch(fabricIfaces(p))), "ip", "-n", lab.FabricNS, "-batch", "-"); err != nil {
		return err
	}
	return parallel(hostNumbers(p), func(i int) error {
		pfs, vfs := hostIfaces(p, i)
		ifs := append(pfs, vfs...)
		if _, err := run(ctx, nil, []byte(upBatch(ifs)), "ip", "-n", lab.HostNS(i), "-batch", "-"); err != nil {
			return err
		}
		// equivalent to: ip netns exec vfl-h1 ethtool -K ens1f0v0 tx off (each PF and VF)
		_, err := Exec(ctx, lab.HostNS(i), append([]string{"sh", "-c",
			`for i do ethtool -K "$i" tx off >/dev/null || { echo "ethtool -K $i tx off failed" >&2; exit 1; }; done`, "ethtool"}, ifs...)...)
		return err
	})
}

// makeBridges makes every bridge and port in one ovs-vsctl transaction (which waits until
// ovs-vswitchd has applied it), then checks that ovs-vswitchd opened every interface.
func makeBridges(ctx context.Context, l *Lab) error {
	if _, err := l.Vsctl(ctx, bridgesTxn(l.Plan)...); err != nil {
		return err
	}
	out, err := l.Vsctl(ctx, "--format=json", "--columns=name,error", "list", "Interface")
	if err != nil {
		return err
	}
	bad, err := interfaceErrors([]byte(out))
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("ovs-vswitchd could not open %s (log: %s)", strings.Join(bad, "; "), filepath.Join(l.Plan.Dir, "logs", "ovs-vswitchd.log"))
	}
	return nil
}

// interfaceErrors reads `ovs-vsctl --format=json --columns=name,error list Interface`: the
// interfaces whose error column is set, as "name: error".
func interfaceErrors(data []byte) ([]string, error) {
	var t struct {
		Data [][]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("ovs-vsctl list Interface: %w", err)
	}
	var bad []string
	for _, row := range t.Data {
		if len(row) != 2 {
			continue
		}
		var name, msg string
		if json.Unmarshal(row[0], &name) != nil {
			continue
		}
		if json.Unmarshal(row[1], &msg) == nil && msg != "" { // an empty column is ["set",[]]
			bad = append(bad, name+": "+msg)
		}
	}
	return bad, nil
}

// lldpdScript runs lldpd (its arguments after the lab directory) with a private tmpfs over /run,
// where lldpd keeps its chroot and pidfile. When covering /run hides the lab directory (it is
// under /run), the directory, opened before, is bound back from /proc/self/fd/3 so the control
// socket lands where lldpcli finds it (--no-canonicalize: mount would otherwise resolve the link
// to the now hidden path).
const lldpdScript = `set -e
exec 3<"$1"
mount -t tmpfs -o mode=0755 vfl-lldpd /run
if [ ! -d "$1" ]; then mkdir -p "$1"; mount --no-canonicalize --bind /proc/self/fd/3 "$1"; fi
exec 3<&-
shift
exec lldpd "$@"`

// startLldpd starts every lldpd of the lab and configures each through its control socket.
func startLldpd(ctx context.Context, p lab.Plan) error {
	trueBin, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	agents := lldpAgents(p)
	for _, a := range agents {
		sock := p.LldpdSocket(a.Name)
		argv := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", lldpdScript, "lldpd-" + a.Name,
			p.Dir, "-d", "-L", trueBin, "-u", sock, "-I", strings.Join(a.Ifaces, ",")}
		proc, err := startDetached("lldpd-"+a.Name, a.NS, filepath.Join(p.Dir, "logs", "lldpd-"+a.Name+".log"), nil, argv...)
		if err != nil {
			return err
		}
		if err := updateState(p.Dir, false, func(s *State) { s.Procs = append(s.Procs, proc) }); err != nil {
			return err
		}
	}
	return parallel(agents, func(a lldpAgent) error {
		sock := p.LldpdSocket(a.Name)
		if err := waitSocket(ctx, sock, 10*time.Second); err != nil {
			return fmt.Errorf("lldpd %s did not open %s: %w (log: %s)", a.Name, sock, err, filepath.Join(p.Dir, "logs", "lldpd-"+a.Name+".log"))
		}
		conf := filepath.Join(p.Dir, "lldpd", a.Name+".conf")
		if err := os.WriteFile(conf, []byte(a.conf()), 0o644); err != nil {
			return err
		}
		_, err := run(ctx, nil, nil, "lldpcli", "-u", sock, "-c", conf)
		return err
	})
}

// waitSocket waits until a unix socket accepts a connection.
func waitSocket(ctx context.Context, path string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// writeSysfs writes each host's sysfs tree: its PFs (PCI address lab.PFPCI, the PF netdev's
// MAC) with every VF present, bound and named as the lab names its netdev.
func writeSysfs(p lab.Plan) error {
	return parallel(hostNumbers(p), func(i int) error {
		var pfs []sriov.FakePF
		for k := range p.PFsPerHost {
			pf := sriov.FakePF{Name: lab.PFName(k), PCIAddress: lab.PFPCI(i, k), MAC: PFMAC(i, k),
				TotalVFs: p.VFsPerPF, NumVFs: p.VFsPerPF, VFs: map[int]sriov.FakeVF{}}
			for n := range p.VFsPerPF {
				pf.VFs[n] = sriov.FakeVF{Netdev: lab.VFName(k, n), MAC: VFMAC(i, k, n)}
			}
			pfs = append(pfs, pf)
		}
		if err := sriov.WriteFakeSysfs(p.SysfsRoot(i), pfs); err != nil {
			return fmt.Errorf("%s: %w", lab.HostName(i), err)
		}
		return nil
	})
}

// hostNumbers is 1..p.Hosts.
func hostNumbers(p lab.Plan) []int {
	out := make([]int, p.Hosts)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// parallel runs fn for each item at once and joins the errors.
func parallel[T any](items []T, fn func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { errs[i] = fn(it) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// buildEtcd builds the etcd server binary of the etcd version this module pins (go.mod/go.sum of
// the module root decide it) into a temporary directory and returns its path. The go build cache
// makes every build after the first cheap.
func buildEtcd(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building etcd needs the go command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD = %q: not inside the module", gomod)
	}
	bin := filepath.Join(t.TempDir(), "etcd")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "go.etcd.io/etcd/server/v3")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build go.etcd.io/etcd/server/v3 (in %s): %v\n%s", cmd.Dir, err, b)
	}
	return bin
}

// etcdMember is one etcd server process of an etcdCluster.
type etcdMember struct {
	name      string
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{} // closed once cmd.Wait returned
	waitErr   error         // cmd.Wait's result, valid after exited is closed
}

// alive reports whether the process has not exited yet.
func (m *etcdMember) alive() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the member's own process (by its PID, through cmd.Process) and waits
// until it is reaped.
func (m *etcdMember) kill(t *testing.T) {
	t.Helper()
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill etcd member %s (pid %d): %v", m.name, m.cmd.Process.Pid, err)
	}
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("etcd member %s (pid %d) did not exit within 10s of SIGKILL", m.name, m.cmd.Process.Pid)
	}
}

// logTail returns the last bytes the member wrote to stdout/stderr.
func (m *etcdMember) logTail() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// etcdCluster is a cluster of etcd processes this test started, listening on loopback only.
type etcdCluster struct {
	members []*etcdMember
	cli     *clientv3.Client // the test's own client, for Status calls
}

// endpoints returns the client URLs of every member.
func (c *etcdCluster) endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL
	}
	return out
}

// leader asks every live member for its status and returns the member that says it is the leader
// (Header.MemberId == Leader).
func (c *etcdCluster) leader(ctx context.Context) (*etcdMember, error) {
	var errs []error
	for _, m := range c.members {
		if !m.alive() {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := c.cli.Status(sctx, m.clientURL)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
			continue
		}
		if r.Leader != 0 && r.Header.MemberId == r.Leader {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no live member says it leads: %w", errors.Join(errs...))
}

// loopbackPorts reserves n distinct free loopback ports by listening on 127.0.0.1:0 with all of
// them open at once, then closes the listeners so the processes can bind them.
func loopbackPorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startEtcdCluster starts an n-member etcd cluster from bin on loopback and waits until every
// member answers Status and a leader is elected. Every process it starts is killed (by PID) and
// reaped in t.Cleanup. A start that fails (say a port picked here was taken by someone else in
// between) is retried with fresh ports.
func startEtcdCluster(t *testing.T, bin string, n int) *etcdCluster {
	t.Helper()
	base := t.TempDir() // before any Cleanup below, so it is removed after the processes are gone
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dir := filepath.Join(base, fmt.Sprintf("attempt%d", attempt))
		c, err := tryStartEtcdCluster(t, bin, dir, n)
		if err == nil {
			return c
		}
		lastErr = err
		t.Logf("etcd cluster start attempt %d failed: %v", attempt+1, err)
		for _, m := range c.members {
			m.kill(t)
			t.Logf("etcd member %s log tail:\n%s", m.name, m.logTail())
		}
		if c.cli != nil {
			c.cli.Close()
		}
	}
	t.Fatalf("could not start a %d-member etcd cluster: %v", n, lastErr)
	return nil
}

func tryStartEtcdCluster(t *testing.T, bin, dir string, n int) (*etcdCluster, error) {
	c := &etcdCluster{}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, err
	}
	ports, err := loopbackPorts(2 * n)
	if err != nil {
		return c, fmt.Errorf("pick loopback ports: %w", err)
	}
	var initial []string
	for i := 0; i < n; i++ {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			exited:    make(chan struct{}),
		}
		m.dataDir = filepath.Join(dir, m.name+".etcd")
		m.logPath = filepath.Join(dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	token := fmt.Sprintf("vflink-test-%d", time.Now().UnixNano())
	for _, m := range c.members {
		logf, err := os.Create(m.logPath)
		if err != nil {
			return c, err
		}
		cmd := exec.Command(bin,
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--log-level", "error",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return c, fmt.Errorf("start %s: %w", m.name, err)
		}
		m.cmd = cmd
		go func() {
			m.waitErr = cmd.Wait()
			logf.Close()
			close(m.exited)
		}()
		// Registered per process, right after it started, so nothing started here outlives the test.
		t.Cleanup(func() { m.kill(t) })
	}

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.endpoints(),
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return c, fmt.Errorf("etcd client: %w", err)
	}
	c.cli = cli
	deadline := time.Now().Add(30 * time.Second)
	for {
		var notReady []string
		for _, m := range c.members {
			if !m.alive() {
				return c, fmt.Errorf("etcd member %s exited during start: %v", m.name, m.waitErr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r, err := cli.Status(ctx, m.clientURL)
			cancel()
			if err != nil {
				notReady = append(notReady, fmt.Sprintf("%s: %v", m.name, err))
			} else if r.Leader == 0 {
				notReady = append(notReady, m.name+": no leader yet")
			}
		}
		if len(notReady) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("etcd cluster not ready after 30s: %s", strings.Join(notReady, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { cli.Close() })
	return c, nil
}

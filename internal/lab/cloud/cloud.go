// Package cloud starts vflink's own processes on a lab topology: the server (embedded etcd,
// Keystone) on 127.0.0.1, the leaves (devsim, driving their OVS bridges), one agent per host (lab
// NIC backend, netns hypervisor, lldpd of its namespace), registers the leaves as devices and
// writes a clouds.yaml for the real openstack CLI. Processes run detached (their own session) so
// they outlive `vflink lab up`; their PIDs are kept in <dir>/procs.json for Stop.
package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vflink/vflink/client"
	"github.com/vflink/vflink/internal/lab"
)

// Proc is one process the cloud started.
type Proc struct {
	Role string `json:"role"`
	PID  int    `json:"pid"`
}

// Cloud is a running control plane.
type Cloud struct {
	URL          string `json:"url"`
	CloudsYAML   string `json:"clouds_yaml"`
	PasswordFile string `json:"password_file"`
	Procs        []Proc `json:"procs"`
}

// DevsimFile is where `vflink lab devsim` writes its leaves (name, address, host key).
func DevsimFile(dir string) string { return filepath.Join(dir, "devsim.json") }

// Leaf is one simulated leaf as DevsimFile lists it.
type Leaf struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	HostKey string `json:"host_key"`
}

func stateFile(dir string) string { return filepath.Join(dir, "cloud.json") }

// Load reads the cloud of a lab directory.
func Load(dir string) (*Cloud, error) {
	b, err := os.ReadFile(stateFile(dir))
	if err != nil {
		return nil, err
	}
	var c Cloud
	return &c, json.Unmarshal(b, &c)
}

func (c *Cloud) save(dir string) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(stateFile(dir), b, 0o600)
}

// Client returns an API client logged in as the lab's admin.
func (c *Cloud) Client() (*client.Client, error) {
	pw, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return nil, err
	}
	return client.New(c.URL, client.WithLogin(client.Credentials{AuthURL: c.URL + "/v3", Username: "admin",
		Password: strings.TrimSpace(string(pw)), Project: "admin", Domain: "Default"}))
}

// Start starts the control plane of plan p with the vflink binary exe, and waits until every host
// has registered with an LLDP link on each PF and every leaf is reachable.
func Start(ctx context.Context, p lab.Plan, exe string, log *slog.Logger) (c *Cloud, err error) {
	c = &Cloud{PasswordFile: filepath.Join(p.Dir, "admin-password")}
	defer func() {
		if err != nil {
			c.Stop()
		}
		c.save(p.Dir)
	}()
	if err := os.MkdirAll(filepath.Join(p.Dir, "logs"), 0o700); err != nil {
		return c, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	if err := os.WriteFile(c.PasswordFile, []byte(hex.EncodeToString(pw)+"\n"), 0o600); err != nil {
		return c, err
	}
	port, err := freePort()
	if err != nil {
		return c, err
	}
	c.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := c.spawn(p.Dir, "server", exe, "server", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(p.Dir, "server"), "--bootstrap-password-file", c.PasswordFile,
		"--device-resync", "2s", "--network-vlan-ranges", "sriov:1:4094"); err != nil {
		return c, err
	}
	if err := waitFor(ctx, 30*time.Second, "the server's /healthz", func() error {
		r, err := http.Get(c.URL + "/healthz")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	}); err != nil {
		return c, err
	}
	c.CloudsYAML = filepath.Join(p.Dir, "server", "clouds.yaml")
	if err := c.spawn(p.Dir, "devsim", exe, "lab", "devsim", "--dir", p.Dir, "--leaves", fmt.Sprint(p.Leaves),
		"--hosts", fmt.Sprint(p.Hosts), "--pfs-per-host", fmt.Sprint(p.PFsPerHost), "--vfs-per-pf", fmt.Sprint(p.VFsPerPF),
		"--password-file", c.PasswordFile); err != nil {
		return c, err
	}
	var leaves []Leaf
	if err := waitFor(ctx, 15*time.Second, "the simulated leaves", func() error {
		b, err := os.ReadFile(DevsimFile(p.Dir))
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &leaves)
	}); err != nil {
		return c, err
	}
	cl, err := c.Client()
	if err != nil {
		return c, err
	}
	for _, l := range leaves {
		_, err := cl.CreateDevice(ctx, map[string]any{"name": l.Name, "driver": "junos", "management_address": l.Address,
			"credentials": map[string]any{"username": "vflink", "password": readPassword(c.PasswordFile), "host_key": l.HostKey}})
		if err != nil {
			return c, fmt.Errorf("register leaf %s: %w", l.Name, err)
		}
	}
	paths, err := WriteAgentConfigs(p)
	if err != nil {
		return c, err
	}
	for i, path := range paths {
		h := lab.HostName(i + 1)
		if err := c.spawn(p.Dir, "agent-"+h, exe, "agent", "--server", c.URL, "--host", h,
			"--config", path, "--username", "admin", "--password-file", c.PasswordFile, "--project", "admin"); err != nil {
			return c, err
		}
	}
	err = waitFor(ctx, 30*time.Second, "every host registered with an LLDP link on each PF", func() error {
		hosts, err := cl.Hosts(ctx)
		if err != nil {
			return err
		}
		if len(hosts) != p.Hosts {
			return fmt.Errorf("%d of %d hosts registered", len(hosts), p.Hosts)
		}
		for _, h := range hosts {
			if len(h.PFs) != p.PFsPerHost {
				return fmt.Errorf("host %s registered %d of %d PFs", h.Name, len(h.PFs), p.PFsPerHost)
			}
			for _, pf := range h.PFs {
				if pf.Link == nil {
					return fmt.Errorf("host %s PF %s hears no LLDP yet", h.Name, pf.Name)
				}
			}
		}
		return nil
	})
	return c, err
}

// WriteAgentConfigs writes each lab host's agent configuration (its PFs' device spec on physical
// network sriov, the host's sysfs tree, the lab NIC and netns hypervisor, its lldpd) and returns
// their paths, host 1 first. Agents run with them on the lab's topology (also without the
// cloud: vflink lab up --topology-only, for another control plane).
func WriteAgentConfigs(p lab.Plan) ([]string, error) {
	var paths []string
	for i := 1; i <= p.Hosts; i++ {
		var specs []map[string]any
		for k := 0; k < p.PFsPerHost; k++ {
			specs = append(specs, map[string]any{"devname": lab.PFName(k), "physical_network": "sriov"})
		}
		cfg := map[string]any{
			"device_spec": specs,
			"sysfs_root":  p.SysfsRoot(i), "nic": "lab", "hypervisor": "netns",
			"lldp":      "lldpd:" + p.LldpdSocket(lab.HostName(i)),
			"lab":       map[string]any{"dir": p.Dir, "host": i, "hosts": p.Hosts, "pfs_per_host": p.PFsPerHost, "vfs_per_pf": p.VFsPerPF, "leaves": p.Leaves},
			"state_dir": filepath.Join(p.Dir, "agent-state-"+lab.HostName(i)),
		}
		path := AgentConfig(p.Dir, i)
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// AgentConfig is the path of host i's agent configuration.
func AgentConfig(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("agent-%s.json", lab.HostName(i)))
}

func readPassword(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func (c *Cloud) spawn(dir, role, exe string, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(dir, "logs", role+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", role, err)
	}
	c.Procs = append(c.Procs, Proc{Role: role, PID: cmd.Process.Pid})
	go cmd.Wait() // reap it if it ends while we run
	return c.save(dir)
}

// Stop ends the cloud's processes (SIGTERM, then SIGKILL after 5 s), by the PIDs it started.
func (c *Cloud) Stop() {
	for i := len(c.Procs) - 1; i >= 0; i-- {
		syscall.Kill(c.Procs[i].PID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pr := range c.Procs {
		for alive(pr.PID) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pr.PID) {
			syscall.Kill(pr.PID, syscall.SIGKILL)
		}
	}
	c.Procs = nil
}

// StopDir stops the cloud recorded in a lab directory, if any.
func StopDir(dir string) error {
	c, err := Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c.Stop()
	return c.save(dir)
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// a zombie child of ours counts as gone
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// Alive reports which of the cloud's processes run.
func (c *Cloud) Alive() map[string]bool {
	out := map[string]bool{}
	for _, p := range c.Procs {
		out[p.Role] = alive(p.PID)
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check every 100 ms until it succeeds or d passes; the error names what and the
// last reason.
func waitFor(ctx context.Context, d time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s: %v", d, what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LoadLeaves reads the simulated leaves of a lab directory, by name.
func LoadLeaves(dir string) (map[string]Leaf, error) {
	b, err := os.ReadFile(DevsimFile(dir))
	if err != nil {
		return nil, err
	}
	var ls []Leaf
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, err
	}
	out := map[string]Leaf{}
	for _, l := range ls {
		out[l.Name] = l
	}
	return out, nil
}

package leaf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/internal/lab"
)

// Config says which leaf of which lab Apply works on and how it reaches OVS.
type Config struct {
	Plan  lab.Plan     // the lab: its OVS database is Plan.OVSDB()
	Leaf  int          // j (1-based): the bridge lab.LeafName(j)
	Vsctl string       // the ovs-vsctl program; "ovs-vsctl" when empty
	Log   *slog.Logger // discarded when nil
	// Ofctl is the ovs-ofctl program, for the uplink's translation flows; "ovs-ofctl" when empty.
	Ofctl string
	// RunDir is ovs-vswitchd's run directory (its OVS_RUNDIR), holding the <bridge>.mgmt
	// OpenFlow sockets; Plan.Dir/ovs (beside the database socket) when empty.
	RunDir string
}

func (c Config) vsctl() string {
	if c.Vsctl == "" {
		return "ovs-vsctl"
	}
	return c.Vsctl
}

func (c Config) ofctl() string {
	if c.Ofctl == "" {
		return "ovs-ofctl"
	}
	return c.Ofctl
}

func (c Config) runDir() string {
	if c.RunDir == "" {
		return filepath.Join(c.Plan.Dir, "ovs")
	}
	return c.RunDir
}

func (c Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Cookie is the OpenFlow cookie of leaf j's translation flows (on its bridge and on the spine).
func Cookie(j int) uint64 { return 0x76666c0000000000 | uint64(j) } // "vfl" + j

// vsctlTimeout bounds one ovs-vsctl run (it waits for ovs-vswitchd to apply a change).
const vsctlTimeout = 30

// Apply makes leaf j's OVS bridge forward what the committed configuration says, in one
// ovs-vsctl transaction (commands joined with "--", waiting for ovs-vswitchd to apply it), then
// replaces the uplink's translation flows (one OpenFlow bundle per bridge). It returns what it
// set, for logs and tests. Configuration the leaf cannot forward as asked is applied as far as it
// goes and reported: the error then lists Result.Problems.
func Apply(ctx context.Context, cfg Config, committed []string) (Result, error) {
	j := cfg.Leaf
	bridge := lab.LeafName(j)
	if j < 1 || (cfg.Plan.Leaves > 0 && j > cfg.Plan.Leaves) {
		return Result{Bridge: bridge}, fmt.Errorf("leaf %d is not a leaf of the lab (1-%d)", j, cfg.Plan.Leaves)
	}
	out, err := runVsctl(ctx, cfg, "list-ports", bridge)
	if err != nil {
		return Result{Bridge: bridge}, fmt.Errorf("%s: read its ports: %w", bridge, err)
	}
	ports := strings.Fields(string(out))
	res, err := Translate(cfg, committed, ports)
	if err != nil {
		return res, err
	}
	var args []string
	for _, p := range res.Ports {
		tag := "[]"
		if p.Tag != 0 {
			tag = strconv.Itoa(p.Tag)
		}
		args = append(args, "--", "set", "Port", p.Port, "vlan_mode="+p.Mode, "tag="+tag, "trunks=["+joinInts(p.Trunks)+"]")
	}
	if len(args) > 0 {
		if _, err := runVsctl(ctx, cfg, args...); err != nil {
			return res, fmt.Errorf("%s: set its ports: %w", bridge, err)
		}
	}
	for _, br := range []string{bridge, lab.SpineBridge} {
		if err := replaceFlows(ctx, cfg, br, res.Flows); err != nil {
			return res, fmt.Errorf("%s: uplink translation on bridge %s: %w", bridge, br, err)
		}
	}
	settings := make([]string, len(res.Ports))
	for i, p := range res.Ports {
		settings[i] = p.String()
	}
	log := cfg.log().With("component", "lab-leaf", "bridge", bridge)
	log.Info("leaf bridge follows the committed configuration", "ports", settings, "flows", len(res.Flows))
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("%s: %s", bridge, strings.Join(res.Problems, "; "))
	}
	return res, nil
}

// replaceFlows replaces leaf cfg.Leaf's flows on bridge br with those of flows that are for br, in
// one bundle. With nothing to install and no OpenFlow socket for br, there is nothing to remove.
func replaceFlows(ctx context.Context, cfg Config, br string, flows []Flow) error {
	cookie := fmt.Sprintf("0x%x", Cookie(cfg.Leaf))
	var b strings.Builder
	fmt.Fprintf(&b, "delete cookie=%s/-1\n", cookie)
	n := 0
	for _, f := range flows {
		if f.Bridge == br {
			fmt.Fprintf(&b, "add cookie=%s,%s\n", cookie, f.Spec)
			n++
		}
	}
	sock := filepath.Join(cfg.runDir(), br+".mgmt")
	if _, err := os.Stat(sock); err != nil {
		if n == 0 {
			return nil
		}
		return fmt.Errorf("no OpenFlow socket %s (is ovs-vswitchd running with OVS_RUNDIR=%s, and does the bridge exist?): %w",
			sock, cfg.runDir(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, vsctlTimeout*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cfg.ofctl(), "-O", "OpenFlow14", "--bundle", "add-flows", "unix:"+sock, "-")
	cmd.Stdin = strings.NewReader(b.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s add-flows: %w: %s", cfg.ofctl(), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// runVsctl runs ovs-vsctl against the lab's database (waiting for ovs-vswitchd on changes).
func runVsctl(ctx context.Context, cfg Config, args ...string) ([]byte, error) {
	argv := append([]string{"--db=" + cfg.Plan.OVSDB(), "--timeout=" + strconv.Itoa(vsctlTimeout)}, args...)
	cmd := exec.CommandContext(ctx, cfg.vsctl(), argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return nil, fmt.Errorf("%s %s: %w: %s", cfg.vsctl(), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// hookApplyTimeout bounds one Apply started by a Hook.
const hookApplyTimeout = 2 * time.Minute

// Hook returns a devsim OnCommit function for the lab's leaves: cfg maps a device name to its
// leaf's Config (false: not a leaf, ignored). Each device's commits are applied asynchronously
// but in order by one goroutine at a time; when commits come faster than they apply, only the
// latest waiting one is applied (it holds the whole configuration). The hook never blocks the
// commit and never calls back into the device; errors are logged to the Config's Log.
func Hook(cfg func(device string) (Config, bool)) func(device string, committed []string) {
	return newHook(cfg).onCommit
}

func newHook(cfg func(device string) (Config, bool)) *hook {
	return &hook{cfg: cfg, workers: map[string]*worker{}}
}

type hook struct {
	cfg     func(string) (Config, bool)
	mu      sync.Mutex
	workers map[string]*worker
}

// worker applies one device's commits; its fields are guarded by hook.mu.
type worker struct {
	running bool
	pending bool
	cfg     Config
	lines   []string
}

func (h *hook) onCommit(device string, committed []string) {
	c, ok := h.cfg(device)
	if !ok {
		return
	}
	lines := append([]string(nil), committed...)
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.workers[device]
	if w == nil {
		w = &worker{}
		h.workers[device] = w
	}
	w.cfg, w.lines, w.pending = c, lines, true
	if !w.running {
		w.running = true
		go h.run(device, w)
	}
}

// idle reports whether no commit is waiting or being applied (for tests).
func (h *hook) idle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.workers {
		if w.running || w.pending {
			return false
		}
	}
	return true
}

// run applies w's pending commit until none is left, then ends.
func (h *hook) run(device string, w *worker) {
	for {
		h.mu.Lock()
		if !w.pending {
			w.running = false
			h.mu.Unlock()
			return
		}
		c, lines := w.cfg, w.lines
		w.pending, w.lines = false, nil
		h.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), hookApplyTimeout)
		_, err := Apply(ctx, c, lines)
		cancel()
		if err != nil {
			c.log().Error("leaf bridge does not follow the committed configuration", "component", "lab-leaf",
				"device", device, "error", err)
		}
	}
}

// Package topotest builds a real lab topology (package topo) for the tests of the lab's other
// parts: it skips where a lab cannot be built, takes turns with other test binaries (the lab's
// namespace names are fixed, so one lab at a time fits on a machine) and removes the lab after
// the test, also when the test fails.
//
// Hand-written test helper; it only wires topo.Acquire, topo.Up and topo.Down together.
package topotest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/topo"
)

// Small is the plan Start uses for a zero Plan (without Dir): two hosts with one PF and two VFs
// each, on two leaves (host 1's PF on leaf1 xe-0/0/1, host 2's on leaf2 xe-0/0/2: frames between
// them cross the spine).
func Small() lab.Plan { return lab.Plan{Hosts: 2, PFsPerHost: 1, VFsPerPF: 2, Leaves: 2} }

// SkipUnlessLab skips the test unless it may build a lab: root, and everything topo.Preflight
// wants installed.
func SkipUnlessLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: building a lab needs root (network namespaces, Open vSwitch, lldpd); CI runs as root")
	}
	if m := topo.Missing(); len(m) > 0 {
		t.Skipf("skipping: this machine lacks %s (%s)", strings.Join(m, ", "), topo.AptInstall)
	}
}

// Start builds a lab of plan p (a zero plan: Small; an empty Dir: a fresh directory under
// the temporary directory, removed after the test) once the machine's lab lock is free (waiting up to 10 minutes), and removes it at
// cleanup, failing the test when Down does. It skips like SkipUnlessLab.
func Start(t testing.TB, p lab.Plan) *topo.Lab {
	t.Helper()
	SkipUnlessLab(t)
	if p.Hosts == 0 {
		dir := p.Dir
		p = Small()
		p.Dir = dir
	}
	if p.Dir == "" {
		// Short (lldpd's control socket path must fit a unix socket address, and t.TempDir
		// carries the test's name) and reachable by user _lldpd (lldpcli is setuid _lldpd).
		tmp, err := os.MkdirTemp("", "vfllab")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(tmp) })
		if err := os.Chmod(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		p.Dir = filepath.Join(tmp, "lab")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	release, err := topo.Acquire(ctx)
	if err != nil {
		t.Fatalf("waiting for the machine's lab lock %s: %v", topo.MachineLock, err)
	}
	t.Cleanup(release)
	t.Cleanup(func() {
		if err := topo.Down(context.Background(), p.Dir, nil); err != nil {
			t.Errorf("remove the test's lab: %v", err)
		}
	})
	l, err := topo.Up(ctx, p, nil)
	if err != nil {
		t.Fatalf("build a lab: %v", err)
	}
	return l
}

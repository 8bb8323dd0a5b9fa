package topo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Down removes everything a lab made: the processes recorded in <dir>/state.json (each only
// while it is still the process that was started), any process still inside a lab namespace,
// the lab's namespaces (those recorded, and every vfl-fabric, vfl-h<n> and vfl-vm-<id> found),
// and dir. It needs nothing but dir, so it works after a crash; it is idempotent. Without a
// state file it removes only the files a lab makes in dir, and dir when that leaves it empty.
func Down(ctx context.Context, dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "lab/topo")
	if dir == "" {
		return errors.New("lab down: no lab directory")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	t := time.Now()
	var errs []error
	st, err := Load(dir)
	haveState := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("lab state unreadable; removing lab namespaces and files anyway", "err", err)
	}

	// 1. The processes the lab started, newest first in the signal order (all at once, then wait).
	var procs []Proc
	var namespaces []string
	if haveState {
		procs = slices.Clone(st.Procs)
		slices.Reverse(procs)
		namespaces = slices.Clone(st.Namespaces)
	}
	if stuck := stopProcs(procs, 5*time.Second); len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("still running after SIGKILL: %s", strings.Join(stuck, ", ")))
	}

	// 2. The lab's namespaces, with whatever still runs in them (a crash between starting a
	// process and recording it, or a process another part of the lab did not record).
	found, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range found {
		if isLabNS(e.Name()) && !slices.Contains(namespaces, e.Name()) {
			namespaces = append(namespaces, e.Name())
		}
	}
	var left []Proc
	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			continue
		}
		out, err := run(ctx, nil, nil, "ip", "netns", "pids", ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range strings.Fields(out) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid == os.Getpid() {
				continue
			}
			start, err := startTime(pid)
			if err != nil {
				continue
			}
			log.Warn("ending a process left in a lab namespace", "ns", ns, "pid", pid, "cmd", cmdline(pid))
			left = append(left, Proc{Role: "in " + ns, PID: pid, NS: ns, Start: start})
		}
	}
	if stuck := stopProcs(left, 5*time.Second); len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("still running after SIGKILL: %s", strings.Join(stuck, ", ")))
	}
	for _, ns := range namespaces {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			continue
		}
		if _, err := run(ctx, nil, nil, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}

	// 3. The directory.
	if haveState {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	} else if err := removeLabFiles(dir); err != nil {
		errs = append(errs, err)
	}
	log.Info("lab down", "dir", dir, "took", time.Since(t).Round(time.Millisecond), "processes", len(procs)+len(left), "namespaces", len(namespaces))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// removeLabFiles removes what a lab puts in dir when there is no state file to say dir is the
// lab's (a crash before it was written, or a second Down), then dir if that empties it.
func removeLabFiles(dir string) error {
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range es {
		n := e.Name()
		if n == "ovs" || n == "logs" || n == "lldpd" || strings.HasPrefix(n, "sys-h") || strings.HasPrefix(n, "lldpd-") ||
			strings.HasPrefix(n, "state.") {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		if es, _ := os.ReadDir(dir); len(es) > 0 {
			var names []string
			for _, e := range es {
				names = append(names, e.Name())
			}
			errs = append(errs, fmt.Errorf("%s has no lab state and still holds %s; remove it by hand if it was the lab's", dir, strings.Join(names, ", ")))
		} else {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

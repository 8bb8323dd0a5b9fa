package topo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs argv (no shell) and returns its standard output; the error names the command and
// carries its standard error.
func run(ctx context.Context, env []string, stdin []byte, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", shellWords(argv), err, msg)
	}
	return stdout.String(), nil
}

// shellWords renders argv for a message, quoting words a shell would split.
func shellWords(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$;&|<>(){}*?[]#~") {
			b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		} else {
			b.WriteString(a)
		}
	}
	if len(argv) > 0 && len(b.String()) > 600 {
		return b.String()[:600] + " ..."
	}
	return b.String()
}

// Exec runs argv in network namespace ns and returns its standard output; equivalent to
// `ip netns exec NS ARGV...`. The error carries the command's standard error.
func Exec(ctx context.Context, ns string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("exec: no command")
	}
	return run(ctx, nil, nil, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// startDetached starts argv in its own session (setsid), so it outlives the starter, with
// standard input from /dev/null and its output appended to logFile. The starter reaps it if it
// exits first. The process runs in network namespace ns when ns is not "" (through `ip netns
// exec`, which execs: the PID is the program's).
func startDetached(role, ns, logFile string, env []string, argv ...string) (Proc, error) {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return Proc{}, err
	}
	lf, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", shellWords(argv), err)
	}
	p := Proc{Role: role, PID: cmd.Process.Pid, NS: ns, Argv: argv, Log: logFile}
	// Read before anything reaps it: until then even a child that exited at once has its entry.
	p.Start, err = startTime(p.PID)
	go cmd.Wait() // reap it if it exits while we run; nothing waits for the result
	if err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", shellWords(argv), err)
	}
	return p, nil
}

// procStat reads /proc/<pid>/stat: the state letter and the start time (field 22).
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain anything; fields after the
	// last ')' are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 overall: 3 + 19
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

func startTime(pid int) (uint64, error) {
	_, s, err := procStat(pid)
	return s, err
}

// alive reports whether p still runs as the process the lab started (same PID and start time,
// not a zombie).
func (p Proc) alive() bool {
	if p.PID <= 1 {
		return false
	}
	state, start, err := procStat(p.PID)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return p.Start == 0 || start == p.Start
}

// signal sends sig to p's process group when p leads one (it was started in its own session, so
// children such as lldpd's privilege-separated half go too), else to p alone.
func (p Proc) signal(sig syscall.Signal) error {
	if !p.alive() {
		return nil
	}
	if pgid, err := syscall.Getpgid(p.PID); err == nil && pgid == p.PID {
		return syscall.Kill(-p.PID, sig)
	}
	return syscall.Kill(p.PID, sig)
}

// stopProcs ends procs: SIGTERM to all, up to grace for them to exit, then SIGKILL to those left.
// It returns the roles of those that would not die.
func stopProcs(procs []Proc, grace time.Duration) []string {
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for {
		left := procs[:0:0]
		for _, p := range procs {
			if p.alive() {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				p.signal(syscall.SIGKILL)
			}
			var stuck []string
			for range 200 { // SIGKILL cannot be caught; exiting may still take a moment
				stuck = stuck[:0]
				for _, p := range left {
					if p.alive() {
						stuck = append(stuck, fmt.Sprintf("%s (pid %d)", p.Role, p.PID))
					}
				}
				if len(stuck) == 0 {
					return nil
				}
				time.Sleep(10 * time.Millisecond)
			}
			return stuck
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidFile reads a daemon's pidfile.
func pidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pidfile %s: %w", path, err)
	}
	return pid, nil
}

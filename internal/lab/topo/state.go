package topo

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vflink/vflink/internal/lab"
)

// StateFile is the lab's state, relative to Plan.Dir.
const StateFile = "state.json"

// State is what a lab made, kept in <Dir>/state.json. It is written as each thing is made, so a
// Down after a crash of Up finds everything Up had made.
type State struct {
	Plan       lab.Plan  `json:"plan"`
	Created    time.Time `json:"created"`
	Ready      bool      `json:"ready"`      // Up finished
	Namespaces []string  `json:"namespaces"` // namespaces the lab made (Down also removes lab-named ones it finds)
	Procs      []Proc    `json:"procs"`      // processes the lab started, in start order
	OVSDB      string    `json:"ovsdb"`      // ovs-vsctl --db value: unix:<Dir>/ovs/db.sock
	OVSRundir  string    `json:"ovs_rundir"` // OVS_RUNDIR: <bridge>.mgmt, unixctl sockets
}

// Proc is a process the lab started, detached from the starter (own session).
type Proc struct {
	Role string   `json:"role"`           // "ovsdb-server", "ovs-vswitchd", "lldpd-leaf1", "lldpd-h1", ...
	PID  int      `json:"pid"`            // also its process group and session
	NS   string   `json:"ns,omitempty"`   // the network namespace it runs in ("" = the root namespace)
	Argv []string `json:"argv,omitempty"` // how it was started
	Log  string   `json:"log,omitempty"`  // its log file
	// Start is the process's start time in clock ticks since boot (/proc/<pid>/stat field 22);
	// Down signals a PID only while it still has this start time, never a reused PID.
	Start uint64 `json:"start"`
}

// Load reads <dir>/state.json.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

// updateState changes <dir>/state.json under an exclusive lock on <dir>/state.lock (other
// processes may add their own processes), writing it whole through a rename. create makes a
// new state when none exists; otherwise a missing state is an error.
func updateState(dir string, create bool, fn func(*State)) error {
	unlock, err := flock(filepath.Join(dir, "state.lock"), true)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := Load(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && create:
		s = &State{}
	case err != nil:
		return err
	}
	fn(s)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

// flock takes an exclusive flock(2) on path (created if missing). With wait false it fails at
// once when another holder has it.
func flock(path string, wait bool) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vflink/vflink/api"
)

// One agent per host, enforced twice:
//   - on this machine, Run holds an exclusive lock on <state_dir>/lock (flock(2), released when
//     the process ends however it ends), so a second agent with the same state directory stops at
//     start;
//   - across machines, the agent registers its host with an agent ID kept in
//     <state_dir>/agent-id (made on the first start, so a restart keeps it), and the server
//     refuses another ID while the host's registration lives. An agent whose heartbeat is refused
//     (its registration expired and another agent registered the host) stops serving at once.

// loadAgentID reads the agent ID from dir, making one on the first start.
func loadAgentID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("agent state directory: %w", err)
	}
	path := filepath.Join(dir, "agent-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !api.ValidAgentID(id) {
			return "", fmt.Errorf("%s holds %q, not an agent ID (%s); remove the file to make a new one", path, id, api.AgentIDRule)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("agent ID: %w", err)
	}
	r := make([]byte, 8)
	if _, err := rand.Read(r); err != nil {
		return "", fmt.Errorf("agent ID: %w", err)
	}
	host, _ := os.Hostname()
	id := hex.EncodeToString(r)
	if host != "" && api.ValidAgentID(host+"-"+id) {
		id = host + "-" + id // names the machine in the server's refusal
	}
	// written whole or not at all: a crash between the two leaves no half ID
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("agent ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("agent ID: %w", err)
	}
	return id, nil
}

// lockStateDir takes <dir>/lock for this process, or says which process holds it.
func lockStateDir(dir, host string) (unlock func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent state directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("another vflink agent (pid %s) runs with state directory %s for host %s: a host has one agent", pid, dir, host)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

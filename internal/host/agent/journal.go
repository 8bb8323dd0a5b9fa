package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vflink/vflink/api"
)

// The journal: the agent programs a VF before the store records it (the claim commits together
// with the port's report, in one transaction: a "serve"), so until the serve is answered the
// only record of the VF's state before the change is on this host. Each VF about to be
// programmed that way gets an entry, written before the first change to the VF; the entry ends
// when the serve is answered (the allocation in the store then holds the saved state, or the VF
// was restored). After a crash of the agent, the entries still open name the VFs that may carry
// a port's MAC and VLAN without the store knowing: the restarted agent restores each one whose
// VF has no allocation, once it has read the whole state, before it gives out any VF.
//
// It is a file of JSON lines ("add" with the entry, "done" with the PCI address), appended to
// with write(2) and never fsync'd, on purpose: what it guards against is the agent process
// dying, and the page cache outlives the process. What would lose unsynced lines (a kernel crash,
// a power cut) also resets every VF: VF MACs and VLANs live in the PF driver and the NIC, not on
// disk, and the VFs come back (if sriov_numvfs is set again) unprogrammed. Leaving out the fsync
// keeps the disk out of a serve's path (measured: an fsync per wave doubled the binding p50 with
// etcd syncing its WAL on the same disk). When no entry is open the file is emptied. Written by
// hand: a few dozen lines, and no library does just this.

// journalEntry is one VF programmed ahead of its claim.
type journalEntry struct {
	PCIAddress string      `json:"pci_address"`
	PF         string      `json:"pf"`
	VFIndex    int         `json:"vf_index"`
	PortID     string      `json:"port_id"`
	Saved      api.VFState `json:"saved"`
}

type journalLine struct {
	Op string `json:"op"` // "add" or "done"
	journalEntry
}

type journal struct {
	path string

	mu   sync.Mutex
	f    *os.File
	open map[string]bool // PCI addresses with an entry not done
}

// openJournal opens (creating) the journal in dir and returns the entries a previous run left
// open, by PCI address (the latest entry of each VF).
func openJournal(dir string) (*journal, map[string]journalEntry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("agent state directory: %w", err)
	}
	path := filepath.Join(dir, "vf-journal")
	left := map[string]journalEntry{}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("agent journal: %w", err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l journalLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			break // a line cut short by a crash ends the journal: it was never synced
		}
		switch l.Op {
		case "add":
			left[l.PCIAddress] = l.journalEntry
		case "done":
			delete(left, l.PCIAddress)
		}
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read agent journal %s: %w", path, err)
	}
	j := &journal{path: path, f: f, open: map[string]bool{}}
	// what is left is rewritten as the journal's only lines, so a torn tail goes away
	var b []byte
	for _, e := range left {
		j.open[e.PCIAddress] = true
		b = appendLine(b, "add", e)
	}
	if err := j.rewrite(b); err != nil {
		f.Close()
		return nil, nil, err
	}
	return j, left, nil
}

func appendLine(b []byte, op string, e journalEntry) []byte {
	line, _ := json.Marshal(journalLine{Op: op, journalEntry: e})
	return append(append(b, line...), '\n')
}

// rewrite replaces the file's contents with b; j.mu held (or j not yet shared).
func (j *journal) rewrite(b []byte) error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("agent journal %s: %w", j.path, err)
	}
	if _, err := j.f.Seek(0, 0); err != nil {
		return fmt.Errorf("agent journal %s: %w", j.path, err)
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("agent journal %s: %w", j.path, err)
	}
	return nil
}

// add records e before its VF is changed.
func (j *journal) add(e journalEntry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(appendLine(nil, "add", e)); err != nil {
		return fmt.Errorf("agent journal %s: %w", j.path, err)
	}
	j.open[e.PCIAddress] = true
	return nil
}

// done ends the entry of the VF at pci: the store records it, or it was restored. A "done" that
// is not written only makes the next start look at the VF again (it restores it to the saved
// state only if no allocation holds it). With no entry left, the file is emptied.
func (j *journal) done(pci string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.open[pci] {
		return
	}
	delete(j.open, pci)
	if len(j.open) == 0 {
		if err := j.rewrite(nil); err == nil {
			return
		}
	}
	j.f.Write(appendLine(nil, "done", journalEntry{PCIAddress: pci}))
}

// errNoStateDir: the agent needs somewhere to keep its journal.
var errNoStateDir = errors.New("the agent needs a state directory (state_dir) for its VF journal")

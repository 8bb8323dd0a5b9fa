package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vflink/vflink/api"
)

func TestJournalKeepsOpenEntriesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	j, left, err := openJournal(dir)
	if err != nil || len(left) != 0 {
		t.Fatalf("fresh journal: %v left, %v", left, err)
	}
	e := func(pci, port string) journalEntry {
		return journalEntry{PCIAddress: pci, PF: "ens1f1", VFIndex: 1, PortID: port, Saved: api.VFState{MAC: "02:00:00:00:00:01", VLAN: 7}}
	}
	for _, x := range []journalEntry{e("0000:83:10.1", "pA"), e("0000:83:10.3", "pB"), e("0000:83:10.1", "pC")} {
		if err := j.add(x); err != nil {
			t.Fatal(err)
		}
	}
	j.done("0000:83:10.3")
	j.f.Close() // the agent dies here
	path := filepath.Join(dir, "vf-journal")
	// a line cut short by the crash ends the journal
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"op":"add","pci_address":"0000:83:10.5","pf":"ens1`)
	f.Close()

	j, left, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left["0000:83:10.1"].PortID != "pC" || left["0000:83:10.1"].Saved.VLAN != 7 {
		t.Fatalf("left open after a restart: %+v, want only 0000:83:10.1 for pC (its latest entry)", left)
	}
	j.done("0000:83:10.1")
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("with no entry open the journal is emptied, it holds %q", b)
	}
	if _, left, _ = openJournal(dir); len(left) != 0 {
		t.Fatalf("after all entries are done: %+v left", left)
	}
}

func TestAgentNeedsAStateDir(t *testing.T) {
	cfg := testAgent(t).cfg
	cfg.StateDir = ""
	if _, err := New(cfg); err == nil || err != errNoStateDir {
		t.Fatalf("an agent without a state directory: %v, want %v", err, errNoStateDir)
	}
}

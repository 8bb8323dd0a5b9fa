package devsim

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutines returns the stacks of the goroutines that run simulator code (not test code), and
// the number that run x/crypto/ssh code.
func goroutines() (ours []string, sshCount int) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "golang.org/x/crypto/ssh.") {
			sshCount++
		}
		if strings.Contains(g, "internal/fabric/devsim.") && !strings.Contains(g, "_test.go") {
			ours = append(ours, g)
		}
	}
	return ours, sshCount
}

// TestCloseLeavesNoGoroutines closes a Sim with devices in every state (sessions open, a commit
// hanging, a rollback armed, a device stopped) and checks that none of its goroutines is left,
// nor any SSH connection goroutine.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	_, sshBefore := goroutines()
	s := New(Options{Username: testUser, Password: testPass, ConfirmUnit: time.Hour})
	var clients []*client
	for i, name := range []string{"leaf1", "leaf2", "leaf3"} {
		d := addDevice(t, s, name)
		c := dial(t, d, i%2 == 0)
		clients = append(clients, c, dial(t, d, true))
		mustOK(t, "load", c.load("set vlans bd-7 vlan-id 7"))
		mustOK(t, "confirmed", c.commit("<confirmed/><confirm-timeout>5</confirm-timeout>"))
		mustOK(t, "lock", c.rpc(`<lock><target><candidate/></target></lock>`))
		switch name {
		case "leaf2":
			d.SetFault(Fault{HangCommit: true})
			go c.tryRPC("<commit-configuration/>")
			eventually(t, "the commit to hang", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.hanging == 1 })
		case "leaf3":
			d.Stop()
		}
	}
	if ours, _ := goroutines(); len(ours) == 0 {
		t.Fatalf("test setup: no simulator goroutine running before Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ours, sshNow := goroutines()
		if len(ours) == 0 && sshNow <= sshBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close: %d simulator goroutines and %d SSH goroutines (%d before) left:\n%s",
				len(ours), sshNow, sshBefore, strings.Join(ours, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Add("leaf4", "127.0.0.1:0"); err == nil {
		t.Errorf("Add after Close succeeded")
	}
}

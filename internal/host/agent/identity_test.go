package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/host/agent"
)

func (r *rig) agentIn(t *testing.T, state string, heartbeat time.Duration) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: state, Heartbeat: heartbeat})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// runErr runs a and returns Run's error, failing the test when Run has not returned in time.
func runErr(t *testing.T, a *agent.Agent, ctx context.Context, within time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("Run still runs after %v", within)
		return nil
	}
}

func TestAgentIDKeptAcrossRestarts(t *testing.T) {
	r := newRig(t, 4)
	first := r.agent(t).HostRecord().AgentID
	if first == "" {
		t.Fatal("the host record carries no agent ID")
	}
	if again := r.agent(t).HostRecord().AgentID; again != first {
		t.Fatalf("a restarted agent has agent ID %q, the first had %q", again, first)
	}
	if other := r.agentIn(t, t.TempDir(), 0).HostRecord().AgentID; other == first {
		t.Fatalf("an agent with another state directory has the same agent ID %q", other)
	}
	// a damaged ID stops the agent at start, naming the file
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "agent-id"), []byte("two words\n"), 0o600)
	_, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: bad})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(bad, "agent-id")) || !strings.Contains(err.Error(), `"two words"`) {
		t.Fatalf("a damaged agent-id file: %v, want an error naming the file and its content", err)
	}
}

func TestSecondAgentOnOneStateDirStopsAtStart(t *testing.T) {
	r := newRig(t, 4)
	stop := start(r.agent(t))
	defer stop()
	err := runErr(t, r.agent(t), context.Background(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "a host has one agent") || !strings.Contains(err.Error(), r.state) ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second agent on the same state directory: %v, want a refusal naming the directory and the holder's pid", err)
	}
}

func TestSecondAgentForOneHostRefused(t *testing.T) {
	r := newRig(t, 4)
	a := r.agent(t)
	stop := start(a)
	defer stop()
	b := r.agentIn(t, t.TempDir(), 0)
	err := runErr(t, b, context.Background(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "registered by another agent") || !strings.Contains(err.Error(), a.HostRecord().AgentID) {
		t.Fatalf("a second agent for host h1: %v, want a refusal naming the agent that has it", err)
	}
	hosts, err := r.c.Hosts(context.Background())
	if err != nil || len(hosts) != 1 || hosts[0].AgentID != a.HostRecord().AgentID {
		t.Fatalf("hosts after the refusal: %+v %v, want h1 still registered by the first agent", hosts, err)
	}
}

func TestDisplacedAgentStopsServing(t *testing.T) {
	r := newRig(t, 4)
	ids := r.bind(t, 1)
	a := r.agentIn(t, r.state, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	ports := r.waitPorts(t, ids, api.StatusActive)
	programmed, _ := r.nic.VFs("ens1f1")

	// the host's registration lapsed (as when the agent was cut off for longer than its TTL) and
	// another agent registered the host: one write, so this agent's heartbeat cannot come between
	lapse := r.st.Txn()
	lapse.Put("hosts/h1", api.Host{Name: "h1", AgentID: "other-agent"})
	if _, err := lapse.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "another agent registered the host") || !strings.Contains(err.Error(), "other-agent") {
			t.Fatalf("the displaced agent ended with %v, want an error saying another agent (other-agent) has the host", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the displaced agent still runs")
	}
	// it left the VFs as they were: the other agent serves them now
	if now, _ := r.nic.VFs("ens1f1"); fmt.Sprint(now) != fmt.Sprint(programmed) {
		t.Fatalf("the displaced agent changed the VFs on its way out:\n%v\nwas\n%v", now, programmed)
	}
	if p, err := r.c.GetPort(context.Background(), ports[0].ID); err != nil || p.Status != api.StatusActive {
		t.Fatalf("port after the agent was displaced: %v %v, want still ACTIVE", p, err)
	}
}

package hosts_test

import (
	"context"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

func TestRegistrationKeepsAnAgentRecord(t *testing.T) {
	ctx := context.Background()
	st, c := newAPI(t)
	reg := func() {
		t.Helper()
		if err := c.RegisterHost(ctx, api.Host{Name: "h1", AgentID: "a1"}); err != nil {
			t.Fatal(err)
		}
	}
	reg()
	first, err := store.Get[api.AgentRecord](ctx, st, "agents/h1")
	if err != nil || first.Value.AgentID != "a1" || first.Value.CreatedAt == "" || first.Value.StartedAt != first.Value.CreatedAt || !first.Value.AdminStateUp {
		t.Fatalf("record after the first registration: %+v %v", first.Value, err)
	}
	time.Sleep(1100 * time.Millisecond) // timestamps have seconds
	reg() // a heartbeat: the record stays as it was
	again, _ := store.Get[api.AgentRecord](ctx, st, "agents/h1")
	if again.ModRevision != first.ModRevision {
		t.Errorf("a heartbeat rewrote the agent record: %+v", again.Value)
	}
	// the registration lapses (here: deleted) and the agent registers afresh: started_at moves
	o, _ := store.Get[api.Host](ctx, st, "hosts/h1")
	if _, err := st.Delete(ctx, "hosts/h1", o.ModRevision); err != nil {
		t.Fatal(err)
	}
	reg()
	fresh, _ := store.Get[api.AgentRecord](ctx, st, "agents/h1")
	if fresh.Value.CreatedAt != first.Value.CreatedAt || fresh.Value.StartedAt == first.Value.StartedAt {
		t.Errorf("after a fresh registration: %+v, first %+v", fresh.Value, first.Value)
	}
}

package hosts

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/nova"
	"github.com/vflink/vflink/internal/store"
)

// TestCompactionStartsAnotherView: when the revision a view would watch from was compacted, the
// view stops (ErrCompacted) and the next request starts another one, whose cursors are of
// another epoch: an agent holding an old cursor gets its whole state again.
func TestCompactionStartsAnotherView(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nsvc := neutron.New(st, neutron.Config{Logger: log})
	img := glance.New(st, glance.Config{Logger: log})
	svc := New(st, nsvc, nova.New(st, nsvc, img, nova.NewStoreScheduler(st), nova.Config{Logger: log}), log)

	viewReadsHook = func() {
		viewReadsHook = nil
		// two writes, and a compaction at the second: the view's watch from the revision after its
		// reads (the first write) starts before what is kept
		store.Create(ctx, st, "vfs/h1/0000:83:10.1", api.VFAllocation{Host: "h1", PCIAddress: "0000:83:10.1", PortID: "p1"})
		rev, err := store.Create(ctx, st, "vfs/h1/0000:83:10.3", api.VFAllocation{Host: "h1", PCIAddress: "0000:83:10.3", PortID: "p3"})
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := st.Client().Compact(ctx, rev); err != nil {
			t.Error(err)
		}
	}
	defer func() { viewReadsHook = nil }()
	v1, err := svc.currentView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := v1.now()
	select {
	case <-v1.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a view whose watch start was compacted did not stop")
	}
	if !errors.Is(v1.err, store.ErrCompacted) {
		t.Fatalf("view stopped with %v, want ErrCompacted", v1.err)
	}
	v2, err := svc.currentView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == v1 || v2.epoch == v1.epoch {
		t.Fatal("no new view after the compaction")
	}
	if _, ok := v2.parseCursor(old); ok {
		t.Fatalf("the new view accepts cursor %s of the stopped one", old)
	}
	// the new view follows changes
	since, _ := v2.parseCursor(v2.now())
	if _, err := store.Create(ctx, st, "vfs/h1/0000:83:10.2", api.VFAllocation{Host: "h1", PCIAddress: "0000:83:10.2", PortID: "p2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, st, "servers/s1", map[string]any{"id": "s1"}); err != nil { // wakes every host
		t.Fatal(err)
	}
	ch, ok, err := v2.changes(ctx, "h1", since, 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("changes: %v %v", ok, err)
	}
	for len(ch.Allocations) == 0 { // the servers' change may come first
		next, _ := v2.parseCursor(ch.Cursor)
		if ch, ok, err = v2.changes(ctx, "h1", next, 10*time.Second); err != nil || !ok {
			t.Fatalf("changes: %v %v", ok, err)
		}
	}
	if len(ch.Allocations) != 1 || ch.Allocations[0].PCIAddress != "0000:83:10.2" {
		t.Fatalf("changes after the new view: %+v", ch)
	}
}

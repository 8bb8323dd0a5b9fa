package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/store"
)

type thing struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	return st
}

func TestCRUDAndCompareAndSwap(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	if _, err := store.Get[thing](ctx, st, "things/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: got %v, want ErrNotFound", err)
	}
	if _, err := store.Create(ctx, st, "things/a", thing{"a", 1}); err != nil {
		t.Fatal(err)
	}
	var ce *store.ConflictError
	if _, err := store.Create(ctx, st, "things/a", thing{"a", 2}); !errors.As(err, &ce) || ce.Reason != store.Exists || ce.Key != "things/a" {
		t.Fatalf("create twice: got %v, want conflict things/a exists", err)
	}
	o, err := store.Get[thing](ctx, st, "things/a")
	if err != nil || o.Value != (thing{"a", 1}) {
		t.Fatalf("get: got %+v %v", o, err)
	}
	if _, err := store.Update(ctx, st, "things/a", thing{"a", 2}, o.ModRevision); err != nil {
		t.Fatal(err)
	}
	// a second writer with the old revision loses
	if _, err := store.Update(ctx, st, "things/a", thing{"a", 3}, o.ModRevision); !errors.As(err, &ce) || ce.Reason != store.Changed {
		t.Fatalf("stale update: got %v, want conflict changed", err)
	}
	if _, err := st.Delete(ctx, "things/a", o.ModRevision); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: got %v, want ErrConflict", err)
	}
	o2, _ := store.Get[thing](ctx, st, "things/a")
	if o2.Value.N != 2 {
		t.Fatalf("after a lost update: got n=%d, want 2", o2.Value.N)
	}
	if _, err := st.Delete(ctx, "things/a", o2.ModRevision); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, st, "things/a", thing{}, o2.ModRevision); !errors.As(err, &ce) || ce.Reason != store.Missing {
		t.Fatalf("update of a deleted key: got %v, want conflict missing", err)
	}
}

func TestTxnPrefixCompares(t *testing.T) {
	ctx := context.Background()
	st := open(t, t.TempDir())
	defer st.Close()
	store.Create(ctx, st, "idx/n1/p1", "")
	var ce *store.ConflictError
	tx := st.Txn()
	tx.PrefixEmpty("idx/n1/")
	tx.Create("x", 1)
	if _, err := tx.Commit(ctx); !errors.As(err, &ce) || ce.Reason != store.NotEmpty || ce.Key != "idx/n1/" {
		t.Fatalf("prefix not empty: got %v", err)
	}
	if _, err := store.Get[int](ctx, st, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a failed Txn wrote its put")
	}
	keys, rev, err := st.Keys(ctx, "idx/n1/")
	if err != nil || len(keys) != 1 || keys[0] != "p1" {
		t.Fatalf("keys: got %v %v", keys, err)
	}
	store.Create(ctx, st, "idx/n1/p2", "")
	tx = st.Txn()
	tx.PrefixUnchangedSince("idx/n1/", rev)
	tx.Create("y", 1)
	if _, err := tx.Commit(ctx); !errors.As(err, &ce) || ce.Reason != store.Touched {
		t.Fatalf("prefix touched since %d: got %v", rev, err)
	}
	_, rev, _ = st.Keys(ctx, "idx/n1/")
	tx = st.Txn()
	tx.PrefixUnchangedSince("idx/n1/", rev)
	tx.PrefixEmpty("idx/n2/")
	tx.Create("y", 1)
	tx.DeletePrefix("idx/n1/")
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatalf("all compares hold: got %v", err)
	}
	if n, _ := st.Count(ctx, "idx/"); n != 0 {
		t.Fatalf("after DeletePrefix: %d keys left", n)
	}
}

func TestWatchFromRevisionAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	st := open(t, dir)
	rev, _ := store.Create(ctx, st, "w/a", thing{"a", 1})
	store.Create(ctx, st, "w/b", thing{"b", 1})
	o, _ := store.Get[thing](ctx, st, "w/a")
	st.Delete(ctx, "w/a", o.ModRevision)
	// a watcher that resumes from rev sees all three changes, in order
	ch := st.Watch(ctx, "w/", rev)
	var got []string
	for len(got) < 3 {
		select {
		case e := <-ch:
			if e.Err != nil {
				t.Fatal(e.Err)
			}
			kind := "put"
			if e.Type == store.Deleted {
				kind = "del"
			}
			got = append(got, kind+" "+e.Key)
		case <-ctx.Done():
			t.Fatalf("watch: got %v before the deadline", got)
		}
	}
	want := []string{"put w/a", "put w/b", "del w/a"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("watch events: got %v, want %v", got, want)
		}
	}
	st.Close()
	// everything survives a restart on the same directory
	st = open(t, dir)
	defer st.Close()
	b, err := store.Get[thing](ctx, st, "w/b")
	if err != nil || b.Value != (thing{"b", 1}) {
		t.Fatalf("after restart: got %+v %v", b, err)
	}
	if _, err := store.Get[thing](ctx, st, "w/a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key after restart: got %v", err)
	}
	// a compacted revision is reported, not silently skipped
	cur, _ := store.Create(ctx, st, "w/c", thing{})
	if _, err := st.Client().Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	e := <-st.Watch(ctx, "w/", rev)
	if !errors.Is(e.Err, store.ErrCompacted) {
		t.Fatalf("watch from a compacted revision: got %+v, want ErrCompacted", e)
	}
}

func TestExternalEndpointErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, store.Options{Endpoints: []string{"etcd1:2379"}}); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
	if _, err := store.Open(ctx, store.Options{Endpoints: []string{"http://127.0.0.1:1"}, CertFile: "/nonexistent"}); err == nil {
		t.Fatal("a cert without a key was accepted")
	}
	if _, err := store.Open(ctx, store.Options{}); err == nil {
		t.Fatal("an embedded store without a data dir was accepted")
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	n := 0
	err := store.Retry(ctx, 8, func(attempt int) error {
		n++
		if attempt < 2 {
			return &store.ConflictError{Key: "k", Reason: store.Changed}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("succeeds on the third attempt: got %v after %d calls", err, n)
	}
	n = 0
	err = store.Retry(ctx, 4, func(int) error { n++; return &store.ConflictError{Key: "k", Reason: store.Changed} })
	if !errors.Is(err, store.ErrContention) || n != 4 {
		t.Fatalf("always conflicting: got %v after %d calls, want ErrContention after 4", err, n)
	}
	boom := errors.New("boom")
	if err := store.Retry(ctx, 4, func(int) error { return boom }); err != boom {
		t.Fatalf("other errors pass through: got %v", err)
	}
}

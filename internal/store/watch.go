package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrCompacted is returned (in Event.Err) when a watch asks for history that was compacted away;
// the watcher must re-list and watch from the new revision.
var ErrCompacted = errors.New("revision compacted")

// EventType is what happened to a key.
type EventType int

// Event types.
const (
	Put EventType = iota
	Deleted
)

// Event is one change under a watched prefix.
type Event struct {
	Type        EventType
	Key         string // relative to the store prefix
	Value       []byte // the new value (Put) or nil (Deleted)
	ModRevision int64
	Err         error // set on the last event of a broken watch
}

// Watch streams changes under prefix starting at revision fromRev (0: from now). The channel is
// closed when ctx ends; a watch that cannot continue sends one event with Err set and closes.
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) <-chan Event {
	out := make(chan Event, 64)
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if fromRev > 0 {
		opts = append(opts, clientv3.WithRev(fromRev))
	}
	wctx := clientv3.WithRequireLeader(ctx)
	wc := s.c.Watch(wctx, s.full(prefix), opts...)
	go func() {
		defer close(out)
		for resp := range wc {
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					err = fmt.Errorf("watch %s from %d: %w", prefix, fromRev, ErrCompacted)
				} else {
					err = wrap("watch "+prefix, err)
				}
				select {
				case out <- Event{Err: err}:
				case <-ctx.Done():
				}
				return
			}
			for _, ev := range resp.Events {
				e := Event{Key: s.rel(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}
				if ev.Type == clientv3.EventTypeDelete {
					e.Type = Deleted
				} else {
					e.Type, e.Value = Put, ev.Kv.Value
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

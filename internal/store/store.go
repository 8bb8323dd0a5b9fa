package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped by every *ConflictError.
var ErrConflict = errors.New("conflict")

// ErrUnavailable wraps errors from an etcd that cannot be reached or has no leader.
var ErrUnavailable = errors.New("store unavailable")

// Store is a handle on vflink's etcd keyspace.
type Store struct {
	c            *clientv3.Client
	prefix       string
	log          *slog.Logger
	close        func() error
	closeOnce    *sync.Once
	closeErr     *error
	serializable bool
}

// Serializable returns a view of the store whose reads are served from the local member without
// a round of consensus: faster, and possibly a little behind. Use it only where a stale read is
// caught by a later compare (a Txn's ModRevision checks) and retried with a linearizable read.
func (s *Store) Serializable() *Store {
	v := *s
	v.serializable = true
	return &v
}

// Linearizable returns a view of the store whose reads see every write acknowledged before them.
func (s *Store) Linearizable() *Store {
	v := *s
	v.serializable = false
	return &v
}

func (s *Store) readOpts(opts ...clientv3.OpOption) []clientv3.OpOption {
	if s.serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	return opts
}

// Object is a decoded value with the revisions it was read at.
type Object[T any] struct {
	Key            string // relative to the store prefix
	Value          T
	ModRevision    int64
	CreateRevision int64
}

// Client returns the underlying etcd client (for leases and elections).
func (s *Store) Client() *clientv3.Client { return s.c }

// Close releases the client and, for an embedded member, stops it. Closing twice is harmless.
func (s *Store) Close() error {
	if s.close == nil {
		return nil
	}
	s.closeOnce.Do(func() { *s.closeErr = s.close() })
	return *s.closeErr
}

func newStore(c *clientv3.Client, prefix string, log *slog.Logger, closeFn func() error) *Store {
	return &Store{c: c, prefix: prefix, log: log, close: closeFn, closeOnce: new(sync.Once), closeErr: new(error)}
}

func (s *Store) full(key string) string { return s.prefix + key }

func (s *Store) rel(key []byte) string { return strings.TrimPrefix(string(key), s.prefix) }

// wrap classifies client errors: context errors pass through, the rest are ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Get reads one object. It returns ErrNotFound when the key is absent.
func Get[T any](ctx context.Context, s *Store, key string) (Object[T], error) {
	return GetAt[T](ctx, s, key, ListOptions{})
}

// GetAt reads one object as of the revision in opts (0: latest).
func GetAt[T any](ctx context.Context, s *Store, key string, opts ListOptions) (Object[T], error) {
	var o Object[T]
	ops := []clientv3.OpOption{}
	if opts.Rev > 0 {
		ops = append(ops, clientv3.WithRev(opts.Rev))
	}
	r, err := s.c.Get(ctx, s.full(key), s.readOpts(ops...)...)
	if err != nil {
		return o, wrap("get "+key, err)
	}
	if len(r.Kvs) == 0 {
		return o, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	kv := r.Kvs[0]
	if err := json.Unmarshal(kv.Value, &o.Value); err != nil {
		return o, fmt.Errorf("decode %s: %w", key, err)
	}
	o.Key, o.ModRevision, o.CreateRevision = key, kv.ModRevision, kv.CreateRevision
	return o, nil
}

// ListOptions narrow a List.
type ListOptions struct {
	Rev int64 // read at this revision (0: latest)
}

// List reads every object under prefix, in key order, and the revision it read at.
func List[T any](ctx context.Context, s *Store, prefix string, opts ...ListOptions) ([]Object[T], int64, error) {
	ops := []clientv3.OpOption{clientv3.WithPrefix()}
	for _, o := range opts {
		if o.Rev > 0 {
			ops = append(ops, clientv3.WithRev(o.Rev))
		}
	}
	r, err := s.c.Get(ctx, s.full(prefix), s.readOpts(ops...)...)
	if err != nil {
		return nil, 0, wrap("list "+prefix, err)
	}
	out := make([]Object[T], 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		var o Object[T]
		if err := json.Unmarshal(kv.Value, &o.Value); err != nil {
			return nil, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		o.Key, o.ModRevision, o.CreateRevision = s.rel(kv.Key), kv.ModRevision, kv.CreateRevision
		out = append(out, o)
	}
	return out, r.Header.Revision, nil
}

// Keys lists the keys under prefix (relative to prefix itself), without values.
func (s *Store) Keys(ctx context.Context, prefix string, opts ...ListOptions) ([]string, int64, error) {
	ops := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithKeysOnly()}
	for _, o := range opts {
		if o.Rev > 0 {
			ops = append(ops, clientv3.WithRev(o.Rev))
		}
	}
	r, err := s.c.Get(ctx, s.full(prefix), s.readOpts(ops...)...)
	if err != nil {
		return nil, 0, wrap("keys "+prefix, err)
	}
	out := make([]string, len(r.Kvs))
	for i, kv := range r.Kvs {
		out[i] = strings.TrimPrefix(string(kv.Key), s.full(prefix))
	}
	return out, r.Header.Revision, nil
}

// Count returns how many keys exist under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	r, err := s.c.Get(ctx, s.full(prefix), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, wrap("count "+prefix, err)
	}
	return r.Count, nil
}

// Create stores v under key, failing with a *ConflictError when the key exists.
func Create[T any](ctx context.Context, s *Store, key string, v T) (int64, error) {
	t := s.Txn()
	t.Create(key, v)
	return t.Commit(ctx)
}

// Update replaces the object at key if it is still at modRev.
func Update[T any](ctx context.Context, s *Store, key string, v T, modRev int64) (int64, error) {
	t := s.Txn()
	t.Update(key, v, modRev)
	return t.Commit(ctx)
}

// Delete removes key if it is still at modRev.
func (s *Store) Delete(ctx context.Context, key string, modRev int64) (int64, error) {
	t := s.Txn()
	t.Delete(key, modRev)
	return t.Commit(ctx)
}

// Status is a short health summary of the store for /healthz.
func (s *Store) Status(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := s.c.Get(ctx, s.full("health"), clientv3.WithCountOnly())
	return wrap("health", err)
}

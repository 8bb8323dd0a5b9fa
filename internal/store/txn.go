package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reason says why a compare of a Txn failed.
type Reason string

// Reasons a Txn compare fails.
const (
	Exists   Reason = "exists"    // Create: the key is already there
	Missing  Reason = "missing"   // Update/Delete/Unchanged: the key is gone
	Changed  Reason = "changed"   // Update/Delete/Unchanged: the key was written since it was read
	NotEmpty Reason = "not-empty" // PrefixEmpty: some key exists under the prefix
	Touched  Reason = "touched"   // PrefixUnchangedSince: a key under the prefix was written since
)

// ConflictError reports the first compare of a Txn that did not hold.
type ConflictError struct {
	Key    string // relative key or prefix
	Reason Reason
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %s", e.Key, e.Reason)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

type checkKind int

const (
	checkAbsent checkKind = iota
	checkModRev
	checkPrefixEmpty
	checkPrefixSince
)

type check struct {
	kind checkKind
	key  string // relative
	rev  int64
}

// Txn collects compares and writes that commit atomically. Build it with the methods below, then
// Commit. A Txn is not safe for concurrent use.
type Txn struct {
	s      *Store
	checks []check
	seen   map[check]bool
	ops    []clientv3.Op
	err    error
}

// addCheck records a compare once: a transaction that stages many objects (a bulk create)
// repeats the same compare (the network unchanged, its subnets unchanged) for each of them.
func (t *Txn) addCheck(c check) {
	if t.seen == nil {
		t.seen = map[check]bool{}
	}
	if t.seen[c] {
		return
	}
	t.seen[c] = true
	t.checks = append(t.checks, c)
}

// TooLargeError is a transaction etcd refused for its size: more operations than the cluster's
// --max-txn-ops, or more bytes than its --max-request-bytes.
type TooLargeError struct {
	Compares, Ops int
	Cause         error
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("transaction of %d compares and %d writes is too large for the etcd cluster: %v", e.Compares, e.Ops, e.Cause)
}

func (e *TooLargeError) Unwrap() error { return e.Cause }

// Txn starts a transaction.
func (s *Store) Txn() *Txn { return &Txn{s: s} }

func (t *Txn) put(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("encode %s: %w", key, err)
	}
	t.ops = append(t.ops, clientv3.OpPut(t.s.full(key), string(b)))
}

// Create puts v at key, which must not exist.
func (t *Txn) Create(key string, v any) {
	t.addCheck(check{kind: checkAbsent, key: key})
	t.put(key, v)
}

// Update puts v at key, which must still be at modRev.
func (t *Txn) Update(key string, v any, modRev int64) {
	t.addCheck(check{kind: checkModRev, key: key, rev: modRev})
	t.put(key, v)
}

// Delete removes key, which must still be at modRev.
func (t *Txn) Delete(key string, modRev int64) {
	t.addCheck(check{kind: checkModRev, key: key, rev: modRev})
	t.ops = append(t.ops, clientv3.OpDelete(t.s.full(key)))
}

// Put writes v at key unconditionally (a key the transaction owns through another compare).
func (t *Txn) Put(key string, v any) { t.put(key, v) }

// Remove deletes key unconditionally (a key the transaction owns through another compare).
func (t *Txn) Remove(key string) {
	t.ops = append(t.ops, clientv3.OpDelete(t.s.full(key)))
}

// DeletePrefix removes every key under prefix, unconditionally (pair it with a compare).
func (t *Txn) DeletePrefix(prefix string) {
	t.ops = append(t.ops, clientv3.OpDelete(t.s.full(prefix), clientv3.WithPrefix()))
}

// Unchanged requires key to still be at modRev, without writing it.
func (t *Txn) Unchanged(key string, modRev int64) {
	t.addCheck(check{kind: checkModRev, key: key, rev: modRev})
}

// PrefixEmpty requires that no key exists under prefix.
func (t *Txn) PrefixEmpty(prefix string) {
	t.addCheck(check{kind: checkPrefixEmpty, key: prefix})
}

// PrefixUnchangedSince requires that no key under prefix was created or written after rev
// (a List at rev saw them all). Deletions under the prefix are not detected.
func (t *Txn) PrefixUnchangedSince(prefix string, rev int64) {
	t.addCheck(check{kind: checkPrefixSince, key: prefix, rev: rev})
}

func (t *Txn) cmps() []clientv3.Cmp {
	out := make([]clientv3.Cmp, 0, len(t.checks))
	for _, c := range t.checks {
		k := t.s.full(c.key)
		switch c.kind {
		case checkAbsent:
			out = append(out, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		case checkModRev:
			out = append(out, clientv3.Compare(clientv3.ModRevision(k), "=", c.rev))
		case checkPrefixEmpty:
			out = append(out, clientv3.Compare(clientv3.CreateRevision(k), "=", 0).WithPrefix())
		case checkPrefixSince:
			out = append(out, clientv3.Compare(clientv3.ModRevision(k), "<", c.rev+1).WithPrefix())
		}
	}
	return out
}

// elseOps read back what every compare looked at, so a failure can be explained.
func (t *Txn) elseOps() []clientv3.Op {
	out := make([]clientv3.Op, 0, len(t.checks))
	for _, c := range t.checks {
		k := t.s.full(c.key)
		switch c.kind {
		case checkAbsent, checkModRev:
			out = append(out, clientv3.OpGet(k, clientv3.WithKeysOnly()))
		case checkPrefixEmpty:
			out = append(out, clientv3.OpGet(k, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		case checkPrefixSince:
			out = append(out, clientv3.OpGet(k, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
				clientv3.WithMinModRev(c.rev+1), clientv3.WithLimit(1)))
		}
	}
	return out
}

// Commit applies the transaction. It returns the new store revision, a *ConflictError naming
// the first compare that failed, or an error wrapping ErrUnavailable.
func (t *Txn) Commit(ctx context.Context) (int64, error) {
	if t.err != nil {
		return 0, t.err
	}
	r, err := t.s.c.Txn(ctx).If(t.cmps()...).Then(t.ops...).Else(t.elseOps()...).Commit()
	if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) ||
		errors.Is(err, rpctypes.ErrGRPCTooManyOps) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge) {
		return 0, &TooLargeError{Compares: len(t.checks), Ops: len(t.ops), Cause: err}
	}
	if err != nil {
		return 0, wrap("commit", err)
	}
	if r.Succeeded {
		return r.Header.Revision, nil
	}
	return 0, t.explain(r.Responses)
}

func (t *Txn) explain(rs []*etcdserverpb.ResponseOp) error {
	for i, c := range t.checks {
		if i >= len(rs) {
			break
		}
		rr := rs[i].GetResponseRange()
		if rr == nil {
			continue
		}
		switch c.kind {
		case checkAbsent:
			if len(rr.Kvs) > 0 {
				return &ConflictError{Key: c.key, Reason: Exists}
			}
		case checkModRev:
			if len(rr.Kvs) == 0 {
				if c.rev != 0 {
					return &ConflictError{Key: c.key, Reason: Missing}
				}
			} else if rr.Kvs[0].ModRevision != c.rev {
				return &ConflictError{Key: c.key, Reason: Changed}
			}
		case checkPrefixEmpty:
			if rr.Count > 0 {
				return &ConflictError{Key: c.key, Reason: NotEmpty}
			}
		case checkPrefixSince:
			if len(rr.Kvs) > 0 {
				return &ConflictError{Key: c.key, Reason: Touched}
			}
		}
	}
	// The state moved again between the failed compare and the read-back; callers retry.
	return &ConflictError{Key: "", Reason: Changed}
}

// LeaseID names an etcd lease: keys written with it disappear when it expires or is revoked.
type LeaseID = clientv3.LeaseID

// Grant creates a lease of at least ttl (rounded up to whole seconds).
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	secs := int64(math.Ceil(ttl.Seconds()))
	if secs < 1 {
		secs = 1
	}
	r, err := s.c.Grant(ctx, secs)
	if err != nil {
		return 0, wrap("grant lease", err)
	}
	return r.ID, nil
}

// Revoke ends a lease and deletes its keys.
func (s *Store) Revoke(ctx context.Context, id LeaseID) error {
	_, err := s.c.Revoke(ctx, id)
	return wrap("revoke lease", err)
}

// PutLeased writes v at key unconditionally, attached to lease id.
func (t *Txn) PutLeased(key string, v any, id LeaseID) {
	b, err := json.Marshal(v)
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("encode %s: %w", key, err)
	}
	t.ops = append(t.ops, clientv3.OpPut(t.s.full(key), string(b), clientv3.WithLease(id)))
}

// KeepAlive renews a lease once; it fails when the lease has expired.
func (s *Store) KeepAlive(ctx context.Context, id LeaseID) error {
	r, err := s.c.KeepAliveOnce(ctx, id)
	if err != nil {
		return wrap("keep lease alive", err)
	}
	if r.TTL <= 0 {
		return fmt.Errorf("lease %x: %w", id, ErrNotFound)
	}
	return nil
}

package keystoneclient

import (
	"context"
	"sync"
)

// flight runs one call per key at a time; callers that ask for a key while its call runs wait
// for that call's result instead of starting another (as golang.org/x/sync/singleflight, which
// is not a direct dependency, but here a waiter can give up when its own context ends and the
// call goes on for the others).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int // callers that joined after the first, under flight.mu
}

// do returns the result of fn for key, running fn in its own goroutine unless a call for key is
// under way, and reports whether the result came from another caller's call. fn must not depend
// on ctx being alive: it runs to its end even when every caller has given up.
func (f *flight[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (v V, shared bool, err error) {
	f.mu.Lock()
	c, ok := f.calls[key]
	if ok {
		c.waiters++
	} else {
		c = f.launch(key, fn)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, ok, c.err
	case <-ctx.Done():
		var zero V
		return zero, ok, ctx.Err()
	}
}

// start runs fn for key unless a call for key is under way, and returns at once.
func (f *flight[K, V]) start(key K, fn func() (V, error)) {
	f.mu.Lock()
	if _, ok := f.calls[key]; !ok {
		f.launch(key, fn)
	}
	f.mu.Unlock()
}

// launch starts the call of key; f.mu is held.
func (f *flight[K, V]) launch(key K, fn func() (V, error)) *call[V] {
	if f.calls == nil {
		f.calls = make(map[K]*call[V])
	}
	c := &call[V]{done: make(chan struct{})}
	f.calls[key] = c
	go func() {
		c.val, c.err = fn()
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	return c
}

// waiting returns how many callers wait for the call of key besides its first (tests).
func (f *flight[K, V]) waiting(key K) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c.waiters
	}
	return 0
}

package store

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Lead blocks until this process leads the election called name (an etcd election under the
// store prefix, kept by a session lease of ttl), then returns a context that ends when the
// leadership is lost (the lease expired, the store went away) and a function to resign.
func (s *Store) Lead(ctx context.Context, name string, ttl time.Duration) (context.Context, func(), error) {
	sess, err := concurrency.NewSession(s.c, concurrency.WithTTL(int(max(ttl/time.Second, 1))), concurrency.WithContext(ctx))
	if err != nil {
		return nil, nil, wrap("election session", err)
	}
	e := concurrency.NewElection(sess, s.full("elections/"+name))
	host, _ := os.Hostname()
	if err := e.Campaign(ctx, fmt.Sprintf("%s/%d", host, os.Getpid())); err != nil {
		sess.Close()
		return nil, nil, wrap("campaign "+name, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
		case <-lctx.Done():
		}
		cancel()
	}()
	resign := func() {
		cancel()
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		e.Resign(rctx)
		rcancel()
		sess.Close()
	}
	return lctx, resign, nil
}

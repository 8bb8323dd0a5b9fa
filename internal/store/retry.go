package store

import (
	"context"
	"errors"
	"time"
)

// ErrContention is returned by Retry when every attempt lost its compare-and-swap.
var ErrContention = errors.New("the object changed concurrently too many times")

// Retry runs fn(attempt) until it succeeds or fails with something other than a conflict
// (ErrConflict), at most attempts times; fn must read fresh state on every call. After a few lost
// races it waits a little longer each time. When every attempt conflicts it returns an error
// wrapping ErrContention, which each API maps to its own "retry the request" answer.
func Retry(ctx context.Context, attempts int, fn func(attempt int) error) error {
	for i := 0; i < attempts; i++ {
		err := fn(i)
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i > 4 {
			time.Sleep(time.Duration(i) * 100 * time.Microsecond)
		}
	}
	return ErrContention
}

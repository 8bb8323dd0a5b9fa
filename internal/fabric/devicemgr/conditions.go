package devicemgr

import (
	"context"
	"log/slog"
	"sync"

	"github.com/vflink/vflink/api"
)

// conditions writes the ports' DeviceConfigured conditions in the background, newest wins, and
// only when they change: a reconcile never waits for thousands of port writes.
type conditions struct {
	setter  ConditionSetter
	log     *slog.Logger
	mu      sync.Mutex
	pending map[string]api.Condition
	written map[string]api.Condition
	wake    chan struct{}
}

func newConditions(setter ConditionSetter, log *slog.Logger) *conditions {
	return &conditions{setter: setter, log: log, pending: map[string]api.Condition{}, written: map[string]api.Condition{}, wake: make(chan struct{}, 1)}
}

func (c *conditions) set(ports []string, cond api.Condition) {
	if c == nil || c.setter == nil {
		return
	}
	c.mu.Lock()
	for _, p := range ports {
		if c.written[p] != cond {
			c.pending[p] = cond
		} else {
			delete(c.pending, p)
		}
	}
	n := len(c.pending)
	c.mu.Unlock()
	if n > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (c *conditions) run(ctx context.Context) {
	if c.setter == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		c.mu.Lock()
		batch := c.pending
		c.pending = map[string]api.Condition{}
		c.mu.Unlock()
		for p, cond := range batch {
			if ctx.Err() != nil {
				return
			}
			if err := c.setter(ctx, p, cond); err != nil {
				c.log.Warn("set port condition", "port", p, "err", err)
				continue
			}
			c.mu.Lock()
			c.written[p] = cond
			c.mu.Unlock()
		}
	}
}

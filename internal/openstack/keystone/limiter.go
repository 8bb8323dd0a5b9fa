package keystone

import (
	"sync"
	"time"
)

// limiter counts failed logins per user in fixed windows. An attempt is counted as a failure as
// soon as it starts (so a burst of concurrent guesses cannot overrun the limit) and uncounted when
// it succeeds; a success never clears failures already counted.
type limiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	m         map[string]*failures
	lastSweep time.Time
}

type failures struct {
	n     int
	start time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, m: map[string]*failures{}}
}

// attempt starts a login for key. When key already has max failures in its window it returns how
// long to wait and false; otherwise it counts the attempt as a failure and returns true.
func (l *limiter) attempt(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	f := l.m[key]
	if f == nil || !now.Before(f.start.Add(l.window)) {
		f = &failures{start: now}
		l.m[key] = f
	}
	if f.n >= l.max {
		return f.start.Add(l.window).Sub(now), false
	}
	f.n++
	return 0, true
}

// succeeded uncounts the attempt that attempt(key) counted.
func (l *limiter) succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.m[key]; f != nil && f.n > 0 {
		f.n--
		if f.n == 0 {
			delete(l.m, key)
		}
	}
}

// sweep drops windows that have passed, at most once per window.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.window {
		return
	}
	l.lastSweep = now
	for k, f := range l.m {
		if !now.Before(f.start.Add(l.window)) {
			delete(l.m, k)
		}
	}
}

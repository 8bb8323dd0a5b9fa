// Package bench measures vflink — or any Neutron-compatible API — from the outside, through the
// public client: Ports creates N ports with C concurrent workers reusing keep-alive connections,
// times every successful create, and deletes what it made. It does no I/O of its own beyond the
// API calls; the CLI (`vflink bench ports`) prints its result.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vflink/vflink/client"
)

// maxErrorSamples is how many error messages a phase keeps for the operator.
const maxErrorSamples = 3

// PortsOptions configures Ports.
type PortsOptions struct {
	NetworkID   string        // network the ports go on (required)
	Count       int           // ports to create (N, > 0)
	Concurrency int           // workers (C, > 0); more than Count is capped at Count
	Project     string        // tenant_id sent in each body; default "demo" (real Neutron in noauth mode needs one)
	NoIP        bool          // send "fixed_ips": [] so no address is allocated
	Keep        bool          // leave the ports in place instead of deleting them afterwards
	Timeout     time.Duration // stop issuing creates after this long; 0 means no limit
	// Bulk > 1 sends the creates as native bulk requests of Bulk ports each ({"ports": [...]});
	// latencies are then per request.
	Bulk int
}

// PortsResult holds the figures of one Ports run. Latency figures cover successful creates only;
// the delete phase is not timed.
type PortsResult struct {
	Count        int           // create requests issued
	OK           int           // creates that succeeded
	Errors       int           // creates that failed (API error or transport error)
	ErrorSamples []string      // the first few create error messages
	Elapsed      time.Duration // wall time of the create phase
	P50, P99     time.Duration // create latency percentiles
	Deleted      int           // ports deleted afterwards
	DeleteErrors int           // deletes that failed
	DeleteSample []string      // the first few delete error messages
	TimedOut     bool          // Timeout stopped the create phase before Count requests
	Bulk         int           // ports per request (1: one create per port)
}

// Rate is successful creates per second of the create phase's wall time.
func (r PortsResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// String is the one machine-readable line of a run:
// "ports/s=<f> p50_ms=<f> p99_ms=<f> errors=<n>".
func (r PortsResult) String() string {
	s := fmt.Sprintf("ports/s=%.1f p50_ms=%.1f p99_ms=%.1f errors=%d", r.Rate(), ms(r.P50), ms(r.P99), r.Errors)
	if r.Bulk > 1 {
		s += fmt.Sprintf(" bulk=%d", r.Bulk)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// errorLog counts errors and keeps the first few messages; safe for concurrent use.
type errorLog struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.samples) < maxErrorSamples {
		l.samples = append(l.samples, err.Error())
	}
}

// Ports creates opts.Count ports named bench-<i> on opts.NetworkID through c with
// opts.Concurrency workers, then, unless opts.Keep, deletes them with the same concurrency.
// Failed requests are counted in the result, not returned; the error is for bad options or a
// cancelled ctx (the result then holds what was measured so far).
func Ports(ctx context.Context, c *client.Client, opts PortsOptions) (PortsResult, error) {
	if opts.NetworkID == "" {
		return PortsResult{}, errors.New("bench ports: no network ID given")
	}
	if opts.Count <= 0 {
		return PortsResult{}, fmt.Errorf("bench ports: count %d: want at least 1", opts.Count)
	}
	if opts.Concurrency <= 0 {
		return PortsResult{}, fmt.Errorf("bench ports: concurrency %d: want at least 1", opts.Concurrency)
	}
	if opts.Timeout < 0 {
		return PortsResult{}, fmt.Errorf("bench ports: timeout %s: want 0 (none) or more", opts.Timeout)
	}
	if opts.Project == "" {
		opts.Project = "demo"
	}
	if opts.Bulk < 0 {
		return PortsResult{}, fmt.Errorf("bench ports: bulk %d: want 0 or more", opts.Bulk)
	}
	if opts.Bulk > 1 {
		return bulkPorts(ctx, c, opts)
	}
	workers := min(opts.Concurrency, opts.Count)

	var (
		next    atomic.Int64 // index of the next port to create
		errs    errorLog
		mu      sync.Mutex
		lat     []time.Duration
		created []string
		stopped atomic.Bool
	)
	var deadline time.Time
	start := time.Now()
	if opts.Timeout > 0 {
		deadline = start.Add(opts.Timeout)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var myLat []time.Duration
			var myIDs []string
			for ctx.Err() == nil {
				if !deadline.IsZero() && time.Now().After(deadline) {
					stopped.Store(true)
					break
				}
				i := next.Add(1)
				if i > int64(opts.Count) {
					break
				}
				fields := map[string]any{
					"name":              fmt.Sprintf("bench-%d", i),
					"network_id":        opts.NetworkID,
					"tenant_id":         opts.Project,
					"admin_state_up":    true,
					"binding:vnic_type": "direct",
				}
				if opts.NoIP {
					fields["fixed_ips"] = []any{}
				}
				t0 := time.Now()
				p, err := c.CreatePort(ctx, fields)
				d := time.Since(t0)
				if err != nil {
					errs.add(err)
					continue
				}
				myLat = append(myLat, d)
				myIDs = append(myIDs, p.ID)
			}
			mu.Lock()
			lat = append(lat, myLat...)
			created = append(created, myIDs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	slices.Sort(lat)
	res := PortsResult{
		Count:        len(lat) + errs.n,
		OK:           len(lat),
		Errors:       errs.n,
		ErrorSamples: errs.samples,
		Elapsed:      elapsed,
		P50:          percentile(lat, 0.50),
		P99:          percentile(lat, 0.99),
		TimedOut:     stopped.Load() && int(next.Load()) < opts.Count,
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench ports: stopped after %d creates, %d ports left in place: %w", res.Count, len(created), err)
	}
	if opts.Keep {
		return res, nil
	}

	// Delete phase: same concurrency, not timed.
	var (
		delNext atomic.Int64
		delErrs errorLog
		deleted atomic.Int64
	)
	for range min(workers, max(len(created), 1)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(delNext.Add(1)) - 1
				if i >= len(created) {
					return
				}
				if err := c.DeletePort(ctx, created[i]); err != nil {
					delErrs.add(err)
					continue
				}
				deleted.Add(1)
			}
		})
	}
	wg.Wait()
	res.Deleted = int(deleted.Load())
	res.DeleteErrors = delErrs.n
	res.DeleteSample = delErrs.samples
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench ports: cleanup stopped, %d ports left in place: %w", len(created)-res.Deleted, err)
	}
	return res, nil
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the nearest-rank method: the
// smallest value with at least q of all values at or below it. It is 0 for no values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float error (0.29*100 = 28.999999999999996) from moving a rank.
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

package agent

import (
	"context"
	"errors"
	"sync"

	"github.com/vflink/vflink/api"
)

// The outbox: claims, releases, serves and reports wait here for a round trip (POST .../batch). Up to
// maxInflight round trips run at once; whatever arrives meanwhile goes out together in the next
// one, so a burst costs few round trips and a lone port waits for none.

const (
	maxInflight = 4
	// per round trip, so that each list is one transaction on the server
	batchClaims   = 60
	batchReleases = 60
	batchServes   = 40
	batchReports  = 64
)

type outItem[T any] struct {
	ctx context.Context
	v   T
	// done handles the item's answer; what it adds to wave runs as one wave after the round trip
	done func(item api.BatchItem, err error, wave *[]func(*waveBuf))
}

type outbox struct {
	releases []outItem[api.VFRelease]
	claims   []outItem[api.VFAllocation]
	serves   []outItem[api.PortServe]
	reports  []outItem[api.PortReport]
	inflight int
}

// waveBuf collects what the pipelines of one wave queue, to put in the outbox at once.
type waveBuf struct {
	mu   sync.Mutex
	adds []func(*outbox)
}

func (o *outbox) pending() bool {
	return len(o.releases)+len(o.claims)+len(o.serves)+len(o.reports) > 0
}

func take[T any](q *[]outItem[T], n int) []outItem[T] {
	n = min(n, len(*q))
	out := (*q)[:n:n]
	*q = (*q)[n:]
	return out
}

// enqueue adds items (with add, under the outbox lock) and sends what it can; within a wave
// (wb set) the items wait for the wave's end.
func (a *Agent) enqueue(wb *waveBuf, add func(o *outbox)) {
	if wb != nil {
		wb.mu.Lock()
		wb.adds = append(wb.adds, add)
		wb.mu.Unlock()
		return
	}
	a.outMu.Lock()
	add(&a.out)
	a.outMu.Unlock()
	a.flush()
}

// flush starts round trips while fewer than maxInflight run.
func (a *Agent) flush() {
	a.outMu.Lock()
	defer a.outMu.Unlock()
	for a.out.inflight < maxInflight && a.out.pending() {
		rel, cl, sv := take(&a.out.releases, batchReleases), take(&a.out.claims, batchClaims), take(&a.out.serves, batchServes)
		rep := take(&a.out.reports, batchReports)
		a.out.inflight++
		go a.roundTrip(rel, cl, sv, rep)
	}
}

func itemAt(items []api.BatchItem, i int) api.BatchItem {
	if i < len(items) {
		return items[i]
	}
	return api.BatchItem{}
}

func (a *Agent) roundTrip(rel []outItem[api.VFRelease], cl []outItem[api.VFAllocation], sv []outItem[api.PortServe], rep []outItem[api.PortReport]) {
	var ctx context.Context
	var b api.HostBatch
	for _, it := range rel {
		ctx = it.ctx
		b.Releases = append(b.Releases, it.v)
	}
	for _, it := range cl {
		ctx = it.ctx
		b.Claims = append(b.Claims, it.v)
	}
	for _, it := range sv {
		ctx = it.ctx
		b.Serves = append(b.Serves, it.v)
	}
	for _, it := range rep {
		ctx = it.ctx
		b.Reports = append(b.Reports, it.v)
	}
	res, err := a.cfg.Client.HostBatch(ctx, a.cfg.Host, b)
	if err == nil && (len(res.Releases) != len(rel) || len(res.Claims) != len(cl) || len(res.Serves) != len(sv) ||
		len(res.Reports) != len(rep)) {
		err = errors.New("the server answered a batch with a different number of items")
	}
	var wave []func(*waveBuf)
	for i, it := range rel {
		it.done(itemAt(res.Releases, i), err, &wave)
	}
	for i, it := range cl {
		it.done(itemAt(res.Claims, i), err, &wave)
	}
	for i, it := range sv {
		it.done(itemAt(res.Serves, i), err, &wave)
	}
	for i, it := range rep {
		it.done(itemAt(res.Reports, i), err, &wave)
	}
	a.runWave(wave)
	a.outMu.Lock()
	a.out.inflight--
	a.outMu.Unlock()
	a.flush()
}

package novanotify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// pending is an event waiting to be sent, with the store revision of the change that made it.
type pending struct {
	ev  Event
	rev int64
}

// queue holds the events of one leadership between the follower (which never waits on it) and
// the sender, and what the checkpoint is computed from.
type queue struct {
	limit int
	m     *metrics
	wake  chan struct{} // one slot: events are waiting

	mu       sync.Mutex
	items    []pending
	inflight int64 // revision of the oldest event being sent, 0 when none is
	complete int64 // every change up to this revision has been turned into events
}

func newQueue(limit int, m *metrics, complete int64) *queue {
	return &queue{limit: limit, m: m, wake: make(chan struct{}, 1), complete: complete}
}

// push appends events; beyond the limit the oldest waiting ones are dropped (and counted).
func (q *queue) push(evs []pending) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, evs...)
	if over := len(q.items) - q.limit; over > 0 {
		for _, p := range q.items[:over] {
			q.m.dropped.WithLabelValues(p.ev.Name).Inc()
		}
		q.items = q.items[over:]
	}
	q.m.queued.Set(float64(len(q.items)))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// setComplete records that every change up to rev has been turned into events.
func (q *queue) setComplete(rev int64) {
	q.mu.Lock()
	q.complete = max(q.complete, rev)
	q.mu.Unlock()
}

// take moves waiting events to batch until it holds max, and marks them in flight.
func (q *queue) take(batch []pending, max int) []pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max-len(batch), len(q.items))
	if n > 0 {
		batch = append(batch, q.items[:n]...)
		q.items = q.items[n:]
		if len(q.items) == 0 {
			q.items = nil // let the array go
		}
		q.m.queued.Set(float64(len(q.items)))
	}
	if len(batch) > 0 {
		q.inflight = batch[0].rev
	}
	return batch
}

// sent records that the events in flight are done with (sent, refused or given up).
func (q *queue) sent() {
	q.mu.Lock()
	q.inflight = 0
	q.mu.Unlock()
}

// checkpoint is the revision up to which every change has been notified (or given up on): the
// changes after it are either waiting here or not yet turned into events.
func (q *queue) checkpoint() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.complete
	if q.inflight > 0 {
		c = min(c, q.inflight-1)
	}
	if len(q.items) > 0 {
		c = min(c, q.items[0].rev-1)
	}
	return c
}

type metrics struct {
	sent, failed, dropped *prometheus.CounterVec
	queued                prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vflink_nova_events_sent_total", Help: "External events Nova accepted, by event name.",
		}, []string{"event"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vflink_nova_events_failed_total", Help: "External events Nova refused (unknown server, no host, bad request), not retried, by event name.",
		}, []string{"event"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vflink_nova_events_dropped_total", Help: "External events dropped unsent because the queue was full, by event name.",
		}, []string{"event"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vflink_nova_events_queued", Help: "External events waiting to be sent.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.dropped, m.queued} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register nova notifier metrics: %w", err)
		}
	}
	return m, nil
}

// send posts what the queue holds until ctx ends: after the first event of a quiet spell it
// waits BatchWindow, then posts everything waiting (MaxBatch per request) one request after the
// other, each retried until it is done with.
func (n *Notifier) send(ctx context.Context, q *queue) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		if !sleep(ctx, n.opts.BatchWindow) {
			return
		}
		for ctx.Err() == nil {
			batch := q.take(nil, n.opts.MaxBatch)
			if len(batch) == 0 {
				break
			}
			if !n.deliver(ctx, q, batch) {
				return // the leadership ended: the next leader sends them (the checkpoint is below)
			}
			q.sent()
		}
	}
}

// errUnauthorized marks a 401: the token was invalidated and the request may go again at once.
var errUnauthorized = errors.New("nova refused the token")

// deliver posts batch until Nova has answered it for good (true) or ctx ends (false). Between
// tries (jittered exponential backoff) the batch is topped up from the queue.
func (n *Notifier) deliver(ctx context.Context, q *queue, batch []pending) bool {
	failures := 0
	lastAuth := false
	for {
		err := n.post(ctx, batch)
		switch {
		case err == nil:
			return true
		case ctx.Err() != nil:
			return false
		}
		auth := errors.Is(err, errUnauthorized)
		if auth && !lastAuth {
			lastAuth = true
			n.log.Info("nova refused the token; posting again with a new one", "events", len(batch))
			continue // a token that expired or was revoked: straight again, once, with a new one
		}
		lastAuth = auth
		failures++
		delay := backoff(failures, n.opts.BackoffMin, n.opts.BackoffMax)
		n.log.Warn("nova external events not delivered; retrying", "events", len(batch), "attempt", failures, "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return false
		}
		batch = q.take(batch, n.opts.MaxBatch)
	}
}

// post sends one batch. It returns nil when Nova answered for good (accepted, refused, or 404:
// none of the servers is known) and an error when the request should go again (no endpoint or
// token, network error, timeout, 5xx, 408, 429, 401).
func (n *Notifier) post(ctx context.Context, batch []pending) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	endpoint := n.opts.Endpoint
	if endpoint == "" {
		var err error
		if endpoint, err = n.opts.Session.Endpoint(ctx, "compute", n.opts.Interface); err != nil {
			return fmt.Errorf("find the %s compute endpoint: %w", n.opts.Interface, err)
		}
	}
	url := strings.TrimRight(endpoint, "/") + "/os-server-external-events"
	var token string
	if n.opts.Session != nil {
		var err error
		if token, err = n.opts.Session.Token(ctx); err != nil {
			return fmt.Errorf("get a token for nova: %w", err)
		}
	}
	body := struct {
		Events []Event `json:"events"`
	}{Events: make([]Event, len(batch))}
	for i, p := range batch {
		body.Events[i] = p.ev
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode external events: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("compute endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "vflink-novanotify")
	req.Header.Set("OpenStack-API-Version", "compute 2.1")
	req.Header.Set("X-OpenStack-Nova-API-Version", "2.1")
	reqID := "req-" + uuid.NewString()
	req.Header.Set("X-OpenStack-Request-ID", reqID)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := n.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("post %d external events to %s: %w", len(batch), url, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && resp.StatusCode/100 == 5 {
		return fmt.Errorf("read nova's answer: %w", err)
	}
	log := n.log.With("request_id", reqID, "code", resp.StatusCode)
	switch c := resp.StatusCode; {
	case c == http.StatusMultiStatus || c/100 == 2:
		n.results(log, batch, c, rb)
		return nil
	case c == http.StatusUnauthorized:
		if n.opts.Session != nil && token != "" {
			n.opts.Session.Invalidate(token)
		}
		return fmt.Errorf("%w: %s", errUnauthorized, snippet(rb))
	case c == http.StatusNotFound:
		// "No instances found for any event": none of the servers exists (or has a host)
		log.Info("nova knows none of the servers of these events; dropped", "events", describe(batch), "answer", snippet(rb))
		n.count(n.m.failed, batch)
		return nil
	case c/100 == 5 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests:
		return fmt.Errorf("nova answered %s: %s", resp.Status, snippet(rb))
	default:
		log.Error("nova refused the external events; dropped", "events", describe(batch), "answer", snippet(rb))
		n.count(n.m.failed, batch)
		return nil
	}
}

// results accounts for Nova's 200 or 207 answer: each event carries its own code (200 accepted;
// 404 unknown server, 422 server without a host, 400: refused, and not retried).
func (n *Notifier) results(log *slog.Logger, batch []pending, code int, body []byte) {
	var answer struct {
		Events []struct {
			Event
			Code int `json:"code"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || len(answer.Events) != len(batch) {
		if code == http.StatusMultiStatus {
			log.Warn("nova's answer does not say which events it refused; counted as failed", "events", describe(batch), "answer", snippet(body))
			n.count(n.m.failed, batch)
			return
		}
		n.count(n.m.sent, batch) // a 200 accepted them all
		return
	}
	for i, e := range answer.Events {
		name := batch[i].ev.Name
		if e.Code == 0 || e.Code == http.StatusOK {
			n.m.sent.WithLabelValues(name).Inc()
			log.Debug("nova took the external event", "event", name, "server", batch[i].ev.ServerUUID, "port", batch[i].ev.Tag)
			continue
		}
		n.m.failed.WithLabelValues(name).Inc()
		log.Warn("nova refused the external event; dropped", "event", name, "server", batch[i].ev.ServerUUID, "port", batch[i].ev.Tag, "event_code", e.Code)
	}
}

func (n *Notifier) count(c *prometheus.CounterVec, batch []pending) {
	for _, p := range batch {
		c.WithLabelValues(p.ev.Name).Inc()
	}
}

// describe names the events of a batch for a log line (the first few).
func describe(batch []pending) string {
	var b strings.Builder
	for i, p := range batch {
		if i == 8 {
			fmt.Fprintf(&b, " and %d more", len(batch)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s port %s", p.ev.Name, p.ev.ServerUUID, p.ev.Tag)
	}
	return b.String()
}

// snippet is the start of an answer's body, for a log line or an error.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// backoff is the jittered exponential delay after n failures: min·2^(n-1), at most max, then a
// random part of up to a half of it.
func backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

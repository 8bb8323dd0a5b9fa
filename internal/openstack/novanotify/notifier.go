package novanotify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// Session is the service session the notifier calls Nova with (keystoneclient.Session).
type Session interface {
	// Token returns a token, logging in when the session has none.
	Token(ctx context.Context) (string, error)
	// Invalidate forgets token (Nova refused it), so that the next Token logs in again.
	Invalidate(token string)
	// Endpoint returns a service's URL from the catalog: ("compute", "public") for Nova.
	Endpoint(ctx context.Context, serviceType, iface string) (string, error)
}

// PortWatcher is the feed of ports the notifier follows: neutron.Service.WatchPorts.
type PortWatcher interface {
	WatchPorts(ctx context.Context, rev int64) (ports []api.Port, atRev int64, events <-chan neutron.PortEvent, err error)
}

// Options configure a Notifier; zero values take the defaults.
type Options struct {
	// Session authenticates to Nova and finds its endpoint. It may be nil only with Endpoint
	// set, and then no X-Auth-Token is sent.
	Session Session
	// Endpoint, when set, is the compute endpoint to use instead of the catalog's (Neutron's
	// [nova] endpoint_override), e.g. http://nova:8774/v2.1.
	Endpoint string
	// Interface is the catalog interface of the compute endpoint (Neutron's [nova]
	// endpoint_type; default "public").
	Interface string
	// BatchWindow is how long events collect after the first of a quiet spell before they are
	// posted together (default 150 ms).
	BatchWindow time.Duration
	// MaxBatch is the most events in one request (default 200).
	MaxBatch int
	// QueueSize is the most events waiting; beyond it the oldest are dropped (default 10000).
	QueueSize int
	// BackoffMin and BackoffMax bound the delay before a failed request goes again (default
	// 100 ms and 30 s).
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// LeaseTTL is the election lease (default 10 s): a dead leader is replaced within about it.
	LeaseTTL time.Duration
	// CheckpointInterval is how often the leader records how far it has notified (default 1 s).
	CheckpointInterval time.Duration
	// HTTPClient makes the requests (default: a client of its own over http.DefaultTransport).
	HTTPClient *http.Client
	// Registry, when set, gets the notifier's metrics.
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Notifier sends Nova the external events of port changes (see the package comment).
type Notifier struct {
	st    *store.Store
	ports PortWatcher
	opts  Options
	log   *slog.Logger
	m     *metrics
}

// New returns a notifier over st (its election and checkpoint) following ports. It fails when
// opts name no way to reach Nova or the metrics cannot be registered.
func New(st *store.Store, ports PortWatcher, opts Options) (*Notifier, error) {
	if st == nil || ports == nil {
		return nil, errors.New("nova notifier: a store and a port watcher are needed")
	}
	if opts.Endpoint != "" {
		u, err := url.Parse(opts.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("nova endpoint %q is not an absolute http(s) URL like http://nova:8774/v2.1", opts.Endpoint)
		}
	} else if opts.Session == nil {
		return nil, errors.New("nova notifier: a session (to find the compute endpoint and get tokens) or a fixed endpoint is needed")
	}
	if opts.Interface == "" {
		opts.Interface = "public"
	}
	if opts.BatchWindow <= 0 {
		opts.BatchWindow = 150 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 200
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	return &Notifier{st: st, ports: ports, opts: opts, log: opts.Log.With("component", "novanotify"), m: m}, nil
}

// electionName is the store election of the notifiers of a cluster.
const electionName = "nova-notifier"

// Run campaigns for leadership and, while it leads, follows the ports and sends their events,
// until ctx ends. It returns nil then.
func (n *Notifier) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lctx, resign, err := n.st.Lead(ctx, electionName, n.opts.LeaseTTL)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("election", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		n.log.Info("nova notifier leads")
		n.lead(lctx)
		resign()
	}
	return nil
}

// lead follows and sends until ctx (the leadership) ends, then records how far it got.
func (n *Notifier) lead(ctx context.Context) {
	q := newQueue(n.opts.QueueSize, n.m, 0)
	var wg sync.WaitGroup
	wg.Go(func() { n.send(ctx, q) })
	wg.Go(func() { n.checkpoints(ctx, q) })
	n.follow(ctx, q)
	wg.Wait()
	n.m.queued.Set(0)
	if c := q.checkpoint(); c > 0 {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := n.writeCheckpoint(wctx, c); err != nil {
			n.log.Warn("record the notified revision", "revision", c, "err", err)
		} else {
			n.log.Debug("recorded the notified revision", "revision", c)
		}
		cancel()
	}
}

// settleTime is how long the feed stays quiet before the revision of its last event is taken
// as complete (a transaction's changes of several ports arrive one by one, back to back).
const settleTime = 50 * time.Millisecond

// follow reads the ports as of the checkpoint (or the latest, when that is gone) and turns their
// changes into events until ctx ends; a broken watch reads them again from where it was.
func (n *Notifier) follow(ctx context.Context, q *queue) {
	rev, started, failures := int64(0), false, 0
	retry := func(what string, err error) {
		failures++
		d := backoff(failures, 100*time.Millisecond, 10*time.Second)
		n.log.Warn(what, "retry_in", d, "err", err)
		sleep(ctx, d)
	}
	for ctx.Err() == nil {
		if !started {
			c, err := n.readCheckpoint(ctx)
			if err != nil {
				if ctx.Err() == nil {
					retry("read the notified revision", err)
				}
				continue
			}
			rev, started = c, true
			n.log.Debug("starting from the notified revision", "revision", c)
		}
		ports, at, events, err := n.ports.WatchPorts(ctx, rev)
		if err != nil && rev > 0 && ctx.Err() == nil {
			n.log.Warn("cannot read the ports as of the last notified revision (compacted?); starting from the latest: changes since then are not notified",
				"revision", rev, "err", err)
			ports, at, events, err = n.ports.WatchPorts(ctx, 0)
		}
		if err != nil {
			if ctx.Err() == nil {
				retry("read the ports", err)
			}
			continue
		}
		failures = 0
		state := make(map[string]portState, len(ports))
		for i := range ports {
			state[ports[i].ID] = stateOf(&ports[i])
		}
		ports = nil
		n.log.Debug("following the ports", "revision", at, "ports", len(state))
		q.setComplete(at)
		rev, err = n.consume(ctx, q, state, events, at)
		if ctx.Err() == nil {
			n.log.Warn("the port watch broke; reading the ports again", "revision", rev, "err", err)
		}
	}
}

// consume turns the events of one watch into Nova events until it breaks or ctx ends, and
// returns the revision up to which it is complete.
func (n *Notifier) consume(ctx context.Context, q *queue, state map[string]portState, events <-chan neutron.PortEvent, at int64) (int64, error) {
	last, complete := at, at
	done := func(rev int64) {
		complete = rev
		q.setComplete(rev)
	}
	settle := time.NewTimer(settleTime)
	settle.Stop()
	defer settle.Stop()
	var out []pending
	// The leadership ends (a shutdown, usually): with nothing buffered the last revision is taken
	// as whole without waiting for the timer, so that the next leader does not repeat it. (Its
	// other changes could only be missing if the watch stopped in the microseconds between two
	// of them.)
	end := func() (int64, error) {
		if len(events) == 0 {
			done(last)
		}
		return complete, ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return end()
		case <-settle.C:
			done(last)
		case e, ok := <-events:
			switch {
			case !ok && ctx.Err() != nil:
				return end()
			case !ok:
				return complete, errors.New("port watch closed")
			case e.Err != nil:
				return complete, e.Err
			}
			if e.Revision > last {
				done(last) // a later revision: the earlier one has come whole
				last = e.Revision
			}
			out = apply(state, e, out[:0])
			q.push(out)
			if len(events) == 0 {
				settle.Reset(settleTime)
			} else {
				settle.Stop() // more is buffered: not quiet yet
			}
		}
	}
}

// apply records one port change in state and appends the events it makes to out.
func apply(state map[string]portState, e neutron.PortEvent, out []pending) []pending {
	var prev *portState
	if s, ok := state[e.PortID]; ok {
		prev = &s
	}
	for _, ev := range transition(e.PortID, prev, e.Port) {
		out = append(out, pending{ev: ev, rev: e.Revision})
	}
	if e.Port == nil {
		delete(state, e.PortID)
	} else {
		state[e.PortID] = stateOf(e.Port)
	}
	return out
}

// checkpointKey holds how far the leader has notified.
const checkpointKey = "novanotify/checkpoint"

type checkpoint struct {
	Revision int64 `json:"revision"`
}

// checkpoints records the queue's checkpoint every CheckpointInterval while it moves.
func (n *Notifier) checkpoints(ctx context.Context, q *queue) {
	t := time.NewTicker(n.opts.CheckpointInterval)
	defer t.Stop()
	var written int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c := q.checkpoint(); c > written {
			if err := n.writeCheckpoint(ctx, c); err != nil {
				if ctx.Err() == nil {
					n.log.Warn("record the notified revision", "revision", c, "err", err)
				}
				continue
			}
			written = c
		}
	}
}

func (n *Notifier) readCheckpoint(ctx context.Context) (int64, error) {
	o, err := store.Get[checkpoint](ctx, n.st, checkpointKey)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	return o.Value.Revision, err
}

// writeCheckpoint raises the recorded revision to rev (never lowers it: a leader that lost its
// lease without knowing it yet may still write one).
func (n *Notifier) writeCheckpoint(ctx context.Context, rev int64) error {
	return store.Retry(ctx, 8, func(int) error {
		o, err := store.Get[checkpoint](ctx, n.st, checkpointKey)
		switch {
		case errors.Is(err, store.ErrNotFound):
			_, err = store.Create(ctx, n.st, checkpointKey, checkpoint{Revision: rev})
			return err
		case err != nil:
			return err
		case o.Value.Revision >= rev:
			return nil
		}
		_, err = store.Update(ctx, n.st, checkpointKey, checkpoint{Revision: rev}, o.ModRevision)
		return err
	})
}

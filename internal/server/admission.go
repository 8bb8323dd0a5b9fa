package server

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// admission gives the host agents' writes priority over the users' writes while the agents are
// at work, as Neutron keeps separate workers for its agents' RPCs so that API load cannot starve
// them.
//
// A host agent's write (anything but a read under /v1/hosts/: VF claims, serves, status reports,
// releases, registration) finishes work a user already asked for: it is what turns a bound port
// ACTIVE. A user's write (any other write, but Keystone's) asks for more. On a saturated server
// every write waits behind the others in the same queues (the store's commit above all), so
// without priority a burst of binds delays the very reports that settle them. While an agent
// write is in flight, or one ended less than agentWindow ago, users' writes therefore run at
// most slots at a time (one per CPU, at least two); the rest wait their turn in arrival order, and
// agents' writes never wait here. With the agents idle, users' writes are not held at all.
//
// The cost is throughput during a burst: the server takes users' writes more slowly while the
// agents catch up (measured by `vflink bench binding`: see ARCHITECTURE.md). Reads are never
// held.
type admission struct {
	slots     chan struct{}
	agents    atomic.Int64 // agents' writes in flight
	lastAgent atomic.Int64 // UnixNano the latest agent write ended
	window    time.Duration
	now       func() time.Time

	waiting prometheus.Gauge
	queued  prometheus.Counter
}

// agentWindow is how long after an agent's last write users' writes are still held: between two
// round trips of a busy agent there is no agent write in flight, yet it is at work.
const agentWindow = 50 * time.Millisecond

func newAdmission(slots int, window time.Duration, reg prometheus.Registerer) *admission {
	a := &admission{
		slots: make(chan struct{}, max(slots, 1)), window: window, now: time.Now,
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vflink_http_user_writes_waiting",
			Help: "Users' write requests waiting for a slot while host agents are writing.",
		}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vflink_http_user_writes_queued_total",
			Help: "Users' write requests that had to wait for a slot while host agents were writing.",
		}),
	}
	reg.MustRegister(a.waiting, a.queued)
	return a
}

func isRead(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
}

// isAgentWrite: a write of a host agent's API.
func isAgentWrite(r *http.Request) bool {
	return !isRead(r) && strings.HasPrefix(r.URL.Path, "/v1/hosts/")
}

// isUserWrite: any other write but Keystone's (logging in must not wait behind a burst).
func isUserWrite(r *http.Request) bool {
	return !isRead(r) && !strings.HasPrefix(r.URL.Path, "/v1/hosts/") && !strings.HasPrefix(r.URL.Path, "/v3/")
}

// agentsBusy: an agent write is in flight or ended within the window.
func (a *admission) agentsBusy() bool {
	return a.agents.Load() > 0 || a.now().UnixNano()-a.lastAgent.Load() < int64(a.window)
}

func (a *admission) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case isAgentWrite(r):
			a.agents.Add(1)
			defer func() {
				a.lastAgent.Store(a.now().UnixNano())
				a.agents.Add(-1)
			}()
		case isUserWrite(r) && a.agentsBusy():
			select {
			case a.slots <- struct{}{}:
			default:
				a.queued.Inc()
				a.waiting.Inc()
				select {
				case a.slots <- struct{}{}:
					a.waiting.Dec()
				case <-r.Context().Done():
					a.waiting.Dec()
					// the client went away while waiting: nothing was done
					writeErr(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The request was given up while waiting for the host agents' writes; nothing was changed.")
					return
				}
			}
			defer func() { <-a.slots }()
		}
		next.ServeHTTP(w, r)
	})
}

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// admissionRig runs requests through an admission whose inner handler holds each request until
// it is released, counting what is inside.
type admissionRig struct {
	t       *testing.T
	adm     *admission
	h       http.Handler
	clock   atomic.Int64 // the admission's now, UnixNano
	entered chan string  // "METHOD PATH" of each request that reached the inner handler
	mu      sync.Mutex
	held    map[string]chan struct{} // by "METHOD PATH": closed to let that request finish
	closed  bool
	wg      sync.WaitGroup
}

func newAdmissionRig(t *testing.T, slots int) *admissionRig {
	r := &admissionRig{t: t, entered: make(chan string, 64), held: map[string]chan struct{}{}}
	r.clock.Store(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixNano())
	r.adm = newAdmission(slots, agentWindow, prometheus.NewRegistry())
	r.adm.now = func() time.Time { return time.Unix(0, r.clock.Load()) }
	r.h = r.adm.wrap(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Method + " " + req.URL.Path
		done := r.gate(id)
		r.entered <- id
		<-done
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() {
		r.mu.Lock()
		for id, c := range r.held {
			close(c)
			delete(r.held, id)
		}
		r.closed = true
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

// gate returns the channel that lets the request id finish.
func (r *admissionRig) gate(id string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.held[id]
	if c == nil {
		c = make(chan struct{})
		if r.closed {
			close(c)
		} else {
			r.held[id] = c
		}
	}
	return c
}

// finish lets the request id (which reached the handler) end.
func (r *admissionRig) finish(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.held[id])
	delete(r.held, id)
}

// send runs a request in the background; its recorder may be read once done is closed.
func (r *admissionRig) send(ctx context.Context, method, path string) (rec *httptest.ResponseRecorder, done chan struct{}) {
	rec, done = httptest.NewRecorder(), make(chan struct{})
	req := httptest.NewRequestWithContext(ctx, method, path, nil)
	r.wg.Go(func() {
		defer close(done)
		r.h.ServeHTTP(rec, req)
	})
	return rec, done
}

// expectEntered waits for n requests to reach the inner handler and returns them.
func (r *admissionRig) expectEntered(n int) []string {
	r.t.Helper()
	var got []string
	for range n {
		select {
		case s := <-r.entered:
			got = append(got, s)
		case <-time.After(5 * time.Second):
			r.t.Fatalf("only %d of %d requests reached the handler: %v", len(got), n, got)
		}
	}
	return got
}

// expectHeld checks that no further request reaches the inner handler for a while.
func (r *admissionRig) expectHeld() {
	r.t.Helper()
	select {
	case s := <-r.entered:
		r.t.Fatalf("%s reached the handler, want it held", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func (r *admissionRig) waitingGauge() float64 { return testutil.ToFloat64(r.adm.waiting) }

func TestAdmissionUnlimitedWhileAgentsIdle(t *testing.T) {
	r := newAdmissionRig(t, 2)
	for i := range 5 {
		r.send(context.Background(), http.MethodPost, "/v2.0/ports/p"+strconv.Itoa(i))
	}
	r.expectEntered(5)
	if q := testutil.ToFloat64(r.adm.queued); q != 0 {
		t.Fatalf("%v user writes queued with no agent at work, want 0", q)
	}
}

func TestAdmissionHoldsUserWritesWhileAnAgentWrites(t *testing.T) {
	r := newAdmissionRig(t, 2)
	r.send(context.Background(), http.MethodPost, "/v1/hosts/h1/batch")
	if got := r.expectEntered(1); got[0] != "POST /v1/hosts/h1/batch" {
		t.Fatalf("entered %v", got)
	}
	for i := range 4 {
		r.send(context.Background(), http.MethodPut, "/v2.0/ports/p"+strconv.Itoa(i))
		time.Sleep(10 * time.Millisecond) // in this order
	}
	first := r.expectEntered(2) // the slots
	r.expectHeld()
	if w := r.waitingGauge(); w != 2 {
		t.Fatalf("waiting gauge %v, want 2", w)
	}
	// with every slot taken, an agent's write, a read and a login still go through
	r.send(context.Background(), http.MethodPost, "/v1/hosts/h2/batch")
	r.send(context.Background(), http.MethodGet, "/v2.0/ports")
	r.send(context.Background(), http.MethodPost, "/v3/auth/tokens")
	got := strings.Join(r.expectEntered(3), ",")
	for _, want := range []string{"POST /v1/hosts/h2/batch", "GET /v2.0/ports", "POST /v3/auth/tokens"} {
		if !strings.Contains(got, want) {
			t.Fatalf("entered %s, want %s among them", got, want)
		}
	}
	r.expectHeld()
	// neither an agent's write nor a read ending frees a slot; a user write ending does, for the
	// user write that waited longest
	r.finish("POST /v1/hosts/h2/batch")
	r.finish("GET /v2.0/ports")
	r.expectHeld()
	r.finish(first[0])
	if got := r.expectEntered(1); got[0] != "PUT /v2.0/ports/p2" {
		t.Fatalf("entered %v, want the user write that waited longest", got)
	}
	if w := r.waitingGauge(); w != 1 {
		t.Fatalf("waiting gauge %v, want 1", w)
	}
	if q := testutil.ToFloat64(r.adm.queued); q != 2 {
		t.Fatalf("queued counter %v, want 2", q)
	}
}

func TestAdmissionWindowAfterTheLastAgentWrite(t *testing.T) {
	r := newAdmissionRig(t, 1)
	r.send(context.Background(), http.MethodPost, "/v1/hosts/h1/batch")
	r.expectEntered(1)
	r.finish("POST /v1/hosts/h1/batch")
	for r.adm.agents.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	// within the window the agent is still at work: one user write at a time
	r.send(context.Background(), http.MethodDelete, "/v2.0/ports/p1")
	r.send(context.Background(), http.MethodDelete, "/v2.0/ports/p2")
	r.expectEntered(1)
	r.expectHeld()
	// past the window users' writes are not held (the one waiting keeps its turn)
	r.clock.Add(int64(agentWindow) + 1)
	r.send(context.Background(), http.MethodDelete, "/v2.0/ports/p3")
	if got := r.expectEntered(1); got[0] != "DELETE /v2.0/ports/p3" {
		t.Fatalf("entered %v, want the write sent after the window", got)
	}
}

func TestAdmissionGivenUpWhileWaiting(t *testing.T) {
	r := newAdmissionRig(t, 1)
	r.send(context.Background(), http.MethodPost, "/v1/hosts/h1/batch")
	r.expectEntered(1)
	r.send(context.Background(), http.MethodPost, "/v2.0/networks/n1") // takes the slot
	r.expectEntered(1)
	ctx, cancel := context.WithCancel(context.Background())
	rec, done := r.send(ctx, http.MethodPost, "/v2.0/networks/n2")
	r.expectHeld()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for r.waitingGauge() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the given-up request still waits")
		}
		time.Sleep(time.Millisecond)
	}
	<-done
	r.expectHeld() // it never reached the handler
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "nothing was changed") {
		t.Fatalf("given up: %d %s, want 503 saying nothing was changed", rec.Code, rec.Body.String())
	}
}

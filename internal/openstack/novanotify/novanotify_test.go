package novanotify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/novanotify"
	"github.com/vflink/vflink/internal/store"
)

// request is one POST the fake Nova received.
type request struct {
	Method, Path, Token, ContentType, APIVersion string
	Body                                         string
	Events                                       []novanotify.Event
}

// fakeNova records external-event requests and answers them as answer says (default: 200,
// every event accepted, as Nova answers).
type fakeNova struct {
	srv  *httptest.Server
	reqs chan request

	mu     sync.Mutex
	n      int
	answer func(n int, r request) (int, string) // n counts requests from 1
}

func accepted(r request, codes ...int) string {
	type ev struct {
		novanotify.Event
		Code int `json:"code"`
	}
	out := struct {
		Events []ev `json:"events"`
	}{}
	for i, e := range r.Events {
		c := http.StatusOK
		if i < len(codes) {
			c = codes[i]
		}
		e.Status = "completed"
		if c != http.StatusOK {
			e.Status = "failed"
		}
		out.Events = append(out.Events, ev{e, c})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func newFakeNova(t *testing.T) *fakeNova {
	f := &fakeNova{reqs: make(chan request, 100)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("X-Auth-Token"),
			ContentType: r.Header.Get("Content-Type"), APIVersion: r.Header.Get("OpenStack-API-Version"), Body: string(b)}
		var body struct {
			Events []novanotify.Event `json:"events"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("nova got a body that is not JSON: %q", b)
		}
		req.Events = body.Events
		f.mu.Lock()
		f.n++
		n, answer := f.n, f.answer
		f.mu.Unlock()
		code, resp := http.StatusOK, accepted(req)
		if answer != nil {
			code, resp = answer(n, req)
		}
		f.reqs <- req
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, resp)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNova) setAnswer(a func(n int, r request) (int, string)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// next returns the next request Nova got.
func (f *fakeNova) next(t *testing.T, what string) request {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(15 * time.Second):
		t.Fatalf("nova got no request for %s", what)
		return request{}
	}
}

// fakeSession hands out tokens prefix-1, prefix-2, … (a new one after each invalidation) and the
// fake Nova's endpoint.
type fakeSession struct {
	prefix, endpoint string

	mu          sync.Mutex
	n           int
	invalidated []string
	lookups     []string
}

func (s *fakeSession) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%s-%d", s.prefix, s.n+1), nil
}

func (s *fakeSession) Invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, tok)
	if tok == fmt.Sprintf("%s-%d", s.prefix, s.n+1) {
		s.n++
	}
}

func (s *fakeSession) Endpoint(_ context.Context, serviceType, iface string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups = append(s.lookups, serviceType+"/"+iface)
	return s.endpoint, nil
}

// rig is a real embedded etcd store, the real Neutron service over it with one network and
// subnet, and a fake Nova.
type rig struct {
	st     *store.Store
	svc    *neutron.Service
	api    http.Handler
	nova   *fakeNova
	netID  string
	subID  string
	admin  *auth.Context
	logger *slog.Logger
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := &rig{st: st, svc: neutron.New(st, neutron.Config{Logger: log}), nova: newFakeNova(t),
		admin: &auth.Context{UserID: "admin", ProjectID: "p1", Roles: []string{"admin"}}, logger: log}
	mux := http.NewServeMux()
	r.svc.Register(mux, "/v2.0")
	r.api = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mux.ServeHTTP(w, req.WithContext(auth.With(req.Context(), r.admin)))
	})
	var n, s struct{ Network, Subnet struct{ ID string } }
	r.call(t, "POST", "/v2.0/networks", `{"network": {"name": "blue"}}`, &n)
	r.call(t, "POST", "/v2.0/subnets", `{"subnet": {"network_id": "`+n.Network.ID+`", "cidr": "10.0.0.0/24", "ip_version": 4}}`, &s)
	r.netID, r.subID = n.Network.ID, s.Subnet.ID
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// call sends one request to the Neutron API as admin and decodes the answer into out.
func (r *rig) call(t *testing.T, method, path, body string, out any) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.api.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewBufferString(body)))
	if rec.Code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// port creates a port with device_owner owner and binds it to host h1 for server, as Nova does.
func (r *rig) port(t *testing.T, owner, server string) api.Port {
	t.Helper()
	ctx := context.Background()
	p, err := r.svc.CreatePort(ctx, r.admin, []byte(`{"port": {"network_id": "`+r.netID+`", "binding:vnic_type": "direct"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = r.svc.Bind(ctx, r.admin, p.ID, neutron.Binding{Host: "h1", DeviceID: server, DeviceOwner: owner}); err != nil {
		t.Fatal(err)
	}
	return p
}

// report records what h1's agent says about a port.
func (r *rig) report(t *testing.T, id, status string) {
	t.Helper()
	if _, err := r.svc.ReportStatus(context.Background(), id, "h1", api.PortStatus{Status: status}); err != nil {
		t.Fatalf("report %s %s: %v", id, status, err)
	}
}

// running is a notifier under test: stop ends it and waits for it (its last checkpoint is
// written and it has resigned); reg holds its metrics.
type running struct {
	stop func()
	reg  *prometheus.Registry
}

// notifier runs a notifier on the rig's store. With lead set it waits until the notifier leads
// and follows the ports from a revision no earlier than now (it has recorded it), so that later
// changes are news to it.
func (r *rig) notifier(t *testing.T, sess novanotify.Session, lead bool) running {
	t.Helper()
	now := r.revision(t)
	reg := prometheus.NewRegistry()
	n, err := novanotify.New(r.st, r.svc, novanotify.Options{
		Session: sess, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		CheckpointInterval: 20 * time.Millisecond, LeaseTTL: 2 * time.Second, Registry: reg, Log: r.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	if lead {
		eventually(t, "the notifier follows the ports", func() bool { return r.checkpoint(t) >= now })
	}
	return running{stop: stop, reg: reg}
}

// revision is the store's current revision.
func (r *rig) revision(t *testing.T) int64 {
	t.Helper()
	_, rev, err := r.st.Keys(context.Background(), "test/")
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// checkpoint reads the revision the leading notifier has recorded (the raw key).
func (r *rig) checkpoint(t *testing.T) int64 {
	t.Helper()
	o, err := store.Get[struct {
		Revision int64 `json:"revision"`
	}](context.Background(), r.st, "novanotify/checkpoint")
	if errors.Is(err, store.ErrNotFound) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return o.Value.Revision
}

func (r *rig) session(prefix string) *fakeSession {
	return &fakeSession{prefix: prefix, endpoint: r.nova.srv.URL + "/v2.1/"}
}

func plugged(server, port, status string) novanotify.Event {
	return novanotify.Event{Name: novanotify.VIFPlugged, ServerUUID: server, Tag: port, Status: status}
}

func wantEvents(t *testing.T, what string, r request, want ...novanotify.Event) {
	t.Helper()
	if diff := cmp.Diff(want, r.Events); diff != "" {
		t.Fatalf("%s: events (-want +got):\n%s", what, diff)
	}
}

// counter reads one of the notifier's counters for an event name.
func counter(t *testing.T, reg *prometheus.Registry, name, event string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event" && l.GetValue() == event {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// eventually waits for a counter that is updated after Nova's answer.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEvents: each kind of port change sends Nova exactly Neutron's event, with Neutron's body,
// to the catalog's public compute endpoint with the session's token.
func TestEvents(t *testing.T) {
	r := newRig(t)
	sess := r.session("tok")
	reg := r.notifier(t, sess, true).reg
	srv := uuid.NewString()
	p := r.port(t, "compute:nova", srv) // created DOWN and bound: nothing yet

	r.report(t, p.ID, api.StatusActive)
	req := r.nova.next(t, "ACTIVE")
	if req.Method != "POST" || req.Path != "/v2.1/os-server-external-events" || req.Token != "tok-1" ||
		req.ContentType != "application/json" || req.APIVersion != "compute 2.1" {
		t.Fatalf("request: %+v", req)
	}
	if want := `{"events":[{"name":"network-vif-plugged","server_uuid":"` + srv + `","tag":"` + p.ID + `","status":"completed"}]}`; req.Body != want {
		t.Fatalf("body:\n got %s\nwant %s", req.Body, want)
	}
	sess.mu.Lock()
	if len(sess.lookups) == 0 || sess.lookups[0] != "compute/public" {
		t.Errorf("endpoint lookups: got %v, want compute/public", sess.lookups)
	}
	sess.mu.Unlock()

	r.report(t, p.ID, api.StatusDown)
	wantEvents(t, "ACTIVE → DOWN", r.nova.next(t, "DOWN"),
		novanotify.Event{Name: novanotify.VIFUnplugged, ServerUUID: srv, Tag: p.ID, Status: "completed"})

	r.call(t, "PUT", "/v2.0/ports/"+p.ID, `{"port": {"fixed_ips": [{"subnet_id": "`+r.subID+`", "ip_address": "10.0.0.77"}]}}`, nil)
	req = r.nova.next(t, "fixed IPs")
	if want := `{"events":[{"name":"network-changed","server_uuid":"` + srv + `","tag":"` + p.ID + `"}]}`; req.Body != want {
		t.Fatalf("network-changed body:\n got %s\nwant %s", req.Body, want)
	}
	// an update that leaves the fixed IPs alone (a name) sends nothing: the next request is the next event
	r.call(t, "PUT", "/v2.0/ports/"+p.ID, `{"port": {"name": "renamed"}}`, nil)

	q := r.port(t, "compute:nova", srv)
	r.report(t, q.ID, api.StatusError)
	wantEvents(t, "DOWN → ERROR", r.nova.next(t, "ERROR"), plugged(srv, q.ID, "failed"))

	if err := r.svc.DeletePort(context.Background(), r.admin, p.ID); err != nil {
		t.Fatal(err)
	}
	req = r.nova.next(t, "delete")
	if want := `{"events":[{"name":"network-vif-deleted","server_uuid":"` + srv + `","tag":"` + p.ID + `"}]}`; req.Body != want {
		t.Fatalf("network-vif-deleted body:\n got %s\nwant %s", req.Body, want)
	}
	eventually(t, "five events counted as sent", func() bool {
		return counter(t, reg, "vflink_nova_events_sent_total", novanotify.VIFPlugged) == 2 &&
			counter(t, reg, "vflink_nova_events_sent_total", novanotify.VIFUnplugged) == 1 &&
			counter(t, reg, "vflink_nova_events_sent_total", novanotify.NetworkChanged) == 1 &&
			counter(t, reg, "vflink_nova_events_sent_total", novanotify.VIFDeleted) == 1
	})
}

// TestBaselineAndOtherPorts: what the ports are when the notifier starts is no news, and ports
// that do not belong to a server never notify; the first request Nova gets carries only the
// compute port's change made after the start.
func TestBaselineAndOtherPorts(t *testing.T) {
	r := newRig(t)
	srv := uuid.NewString()
	before := r.port(t, "compute:nova", srv)
	r.report(t, before.ID, api.StatusActive) // ACTIVE before the start: the baseline
	r.notifier(t, r.session("tok"), true)

	dhcp := r.port(t, "network:dhcp", srv)
	r.report(t, dhcp.ID, api.StatusActive)
	none := r.port(t, "compute:nova", "") // no server
	r.report(t, none.ID, api.StatusActive)
	dev := r.port(t, api.DeviceOwnerDevicePort, srv)
	r.report(t, dev.ID, api.StatusActive)
	if err := r.svc.DeletePort(context.Background(), r.admin, dhcp.ID); err != nil {
		t.Fatal(err)
	}
	r.report(t, before.ID, api.StatusDown) // the baseline's status was taken: ACTIVE → DOWN
	wantEvents(t, "first request", r.nova.next(t, "ACTIVE → DOWN"),
		novanotify.Event{Name: novanotify.VIFUnplugged, ServerUUID: srv, Tag: before.ID, Status: "completed"})
}

// TestBatch: ports going ACTIVE together reach Nova in one request.
func TestBatch(t *testing.T) {
	r := newRig(t)
	r.notifier(t, r.session("tok"), true)
	var reports []api.PortReport
	var want []novanotify.Event
	for range 3 {
		srv := uuid.NewString()
		p := r.port(t, "compute:nova", srv)
		reports = append(reports, api.PortReport{PortID: p.ID, PortStatus: api.PortStatus{Status: api.StatusActive}})
		want = append(want, plugged(srv, p.ID, "completed"))
	}
	if _, errs := r.svc.ReportStatuses(context.Background(), "h1", reports, nil); errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("report: %v", errs)
	}
	req := r.nova.next(t, "three ports ACTIVE")
	byTag := func(evs []novanotify.Event) {
		sort.Slice(evs, func(i, j int) bool { return evs[i].Tag < evs[j].Tag })
	}
	byTag(want)
	byTag(req.Events)
	wantEvents(t, "one request", req, want...)
}

// TestNovaAnswers: a 500 is retried with the same events, a 401 gets a new token, a 404 and the
// refused events of a 207 are not retried.
func TestNovaAnswers(t *testing.T) {
	r := newRig(t)
	sess := r.session("tok")
	reg := r.notifier(t, sess, true).reg
	srv := uuid.NewString()
	ports := make([]api.Port, 6)
	for i := range ports {
		ports[i] = r.port(t, "compute:nova", srv)
	}

	t.Run("500 then success", func(t *testing.T) {
		r.nova.setAnswer(func(n int, req request) (int, string) {
			if n == 1 {
				return http.StatusInternalServerError, `{"computeFault": {"code": 500, "message": "oops"}}`
			}
			return http.StatusOK, accepted(req)
		})
		r.report(t, ports[0].ID, api.StatusActive)
		first, second := r.nova.next(t, "first try"), r.nova.next(t, "retry")
		wantEvents(t, "first try", first, plugged(srv, ports[0].ID, "completed"))
		if second.Body != first.Body {
			t.Fatalf("retry body %s, want %s", second.Body, first.Body)
		}
		eventually(t, "sent once", func() bool { return counter(t, reg, "vflink_nova_events_sent_total", novanotify.VIFPlugged) == 1 })
	})

	t.Run("401 gets a new token", func(t *testing.T) {
		r.nova.setAnswer(func(n int, req request) (int, string) {
			if req.Token == "tok-1" {
				return http.StatusUnauthorized, `{"error": {"code": 401}}`
			}
			return http.StatusOK, accepted(req)
		})
		r.report(t, ports[1].ID, api.StatusActive)
		first, second := r.nova.next(t, "old token"), r.nova.next(t, "new token")
		if first.Token != "tok-1" || second.Token != "tok-2" || second.Body != first.Body {
			t.Fatalf("tokens %q then %q, bodies %s then %s", first.Token, second.Token, first.Body, second.Body)
		}
		wantEvents(t, "with the new token", second, plugged(srv, ports[1].ID, "completed"))
		sess.mu.Lock()
		if diff := cmp.Diff([]string{"tok-1"}, sess.invalidated); diff != "" {
			t.Errorf("invalidated (-want +got):\n%s", diff)
		}
		sess.mu.Unlock()
	})

	t.Run("404 is not retried", func(t *testing.T) {
		r.nova.setAnswer(func(n int, req request) (int, string) {
			if len(req.Events) == 1 && req.Events[0].Tag == ports[2].ID {
				return http.StatusNotFound, `{"itemNotFound": {"code": 404, "message": "No instances found for any event"}}`
			}
			return http.StatusOK, accepted(req)
		})
		r.report(t, ports[2].ID, api.StatusActive)
		wantEvents(t, "refused", r.nova.next(t, "404"), plugged(srv, ports[2].ID, "completed"))
		r.report(t, ports[3].ID, api.StatusActive)
		wantEvents(t, "next request", r.nova.next(t, "after 404"), plugged(srv, ports[3].ID, "completed"))
		if f := counter(t, reg, "vflink_nova_events_failed_total", novanotify.VIFPlugged); f != 1 {
			t.Fatalf("failed: got %v, want 1", f)
		}
	})

	t.Run("207 refused events are not retried", func(t *testing.T) {
		r.nova.setAnswer(func(n int, req request) (int, string) {
			if len(req.Events) == 2 {
				return http.StatusMultiStatus, accepted(req, http.StatusOK, http.StatusUnprocessableEntity)
			}
			return http.StatusOK, accepted(req)
		})
		if _, errs := r.svc.ReportStatuses(context.Background(), "h1", []api.PortReport{
			{PortID: ports[4].ID, PortStatus: api.PortStatus{Status: api.StatusActive}},
			{PortID: ports[5].ID, PortStatus: api.PortStatus{Status: api.StatusActive}},
		}, nil); errs[0] != nil || errs[1] != nil {
			t.Fatalf("report: %v", errs)
		}
		if req := r.nova.next(t, "207"); len(req.Events) != 2 {
			t.Fatalf("207 request: %+v", req.Events)
		}
		r.report(t, ports[4].ID, api.StatusDown)
		wantEvents(t, "next request", r.nova.next(t, "after 207"),
			novanotify.Event{Name: novanotify.VIFUnplugged, ServerUUID: srv, Tag: ports[4].ID, Status: "completed"})
		if f := counter(t, reg, "vflink_nova_events_failed_total", novanotify.VIFPlugged); f != 2 {
			t.Fatalf("failed: got %v, want 2 (the 404 and the 422)", f)
		}
	})
}

// TestLeadership: two notifiers on one store send each event once, and when the leader stops
// the other one takes over where it left off.
func TestLeadership(t *testing.T) {
	r := newRig(t)
	srv := uuid.NewString()
	p1, p2 := r.port(t, "compute:nova", srv), r.port(t, "compute:nova", srv)
	a := r.notifier(t, r.session("a"), true)
	r.notifier(t, r.session("b"), false)
	r.report(t, p1.ID, api.StatusActive)
	req := r.nova.next(t, "p1 ACTIVE")
	if req.Token != "a-1" {
		t.Fatalf("p1 sent with token %q, want a-1 (the first notifier leads)", req.Token)
	}
	wantEvents(t, "p1 ACTIVE", req, plugged(srv, p1.ID, "completed"))
	r.report(t, p1.ID, api.StatusDown)
	wantEvents(t, "p1 DOWN", r.nova.next(t, "p1 DOWN"),
		novanotify.Event{Name: novanotify.VIFUnplugged, ServerUUID: srv, Tag: p1.ID, Status: "completed"})
	eventually(t, "the leader has its answers", func() bool {
		return counter(t, a.reg, "vflink_nova_events_sent_total", novanotify.VIFUnplugged) == 1
	})

	a.stop()
	r.report(t, p2.ID, api.StatusActive)
	req = r.nova.next(t, "p2 ACTIVE")
	if req.Token != "b-1" {
		t.Fatalf("p2 sent with token %q, want b-1 (the second notifier took over)", req.Token)
	}
	wantEvents(t, "after the takeover (nothing repeated)", req, plugged(srv, p2.ID, "completed"))
}

// TestFailoverWindow: a change made while no notifier runs is sent by the next leader (it starts
// from the revision the last one notified up to); when that revision has been compacted away the
// next leader starts from the latest state (that change is not sent) and goes on.
func TestFailoverWindow(t *testing.T) {
	r := newRig(t)
	srv := uuid.NewString()
	p1, p2, p3 := r.port(t, "compute:nova", srv), r.port(t, "compute:nova", srv), r.port(t, "compute:nova", srv)
	a := r.notifier(t, r.session("a"), true)
	r.report(t, p1.ID, api.StatusActive)
	wantEvents(t, "p1", r.nova.next(t, "p1 ACTIVE"), plugged(srv, p1.ID, "completed"))
	eventually(t, "a has its answer", func() bool { return counter(t, a.reg, "vflink_nova_events_sent_total", novanotify.VIFPlugged) == 1 })
	a.stop()

	r.report(t, p2.ID, api.StatusActive) // no notifier runs
	b := r.notifier(t, r.session("b"), false)
	req := r.nova.next(t, "p2 ACTIVE")
	wantEvents(t, "the window's change, once", req, plugged(srv, p2.ID, "completed"))
	if req.Token != "b-1" {
		t.Fatalf("p2 sent with token %q, want b-1", req.Token)
	}
	eventually(t, "b has its answer", func() bool { return counter(t, b.reg, "vflink_nova_events_sent_total", novanotify.VIFPlugged) == 1 })
	b.stop()

	r.report(t, p2.ID, api.StatusDown) // no notifier runs, and then the history goes
	rev, err := store.Create(context.Background(), r.st, "test/compact-here", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.Client().Compact(context.Background(), rev); err != nil {
		t.Fatal(err)
	}
	r.notifier(t, r.session("c"), true)
	r.report(t, p3.ID, api.StatusActive)
	wantEvents(t, "after the compaction", r.nova.next(t, "p3 ACTIVE"), plugged(srv, p3.ID, "completed"))
}

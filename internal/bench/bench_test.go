package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/client"
)

// fakePorts is a minimal Neutron port collection: POST creates, DELETE removes. failEvery > 0
// makes every failEvery-th create answer 409; delay slows each create.
type fakePorts struct {
	failEvery int
	delay     time.Duration

	mu      sync.Mutex
	creates int
	bulks   int
	bodies  []map[string]any
	live    map[string]bool
	deletes int
}

func (f *fakePorts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2.0/ports":
		var body struct {
			Port  map[string]any   `json:"port"`
			Ports []map[string]any `json:"ports"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if body.Ports != nil { // native bulk: all or nothing
			f.mu.Lock()
			f.bulks++
			var out []string
			for _, p := range body.Ports {
				f.creates++
				id := fmt.Sprintf("port-%d", f.creates)
				f.live[id] = true
				f.bodies = append(f.bodies, p)
				out = append(out, fmt.Sprintf(`{"id": %q, "name": %q}`, id, p["name"]))
			}
			f.mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"ports": [%s]}`, strings.Join(out, ","))
			return
		}
		time.Sleep(f.delay)
		f.mu.Lock()
		f.creates++
		n := f.creates
		f.bodies = append(f.bodies, body.Port)
		fail := f.failEvery > 0 && n%f.failEvery == 0
		id := fmt.Sprintf("port-%d", n)
		if !fail {
			f.live[id] = true
		}
		f.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, `{"NeutronError": {"type": "IpAddressGenerationFailure", "message": "No more IP addresses available on network %s.", "detail": ""}}`, body.Port["network_id"])
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"port": {"id": %q, "name": %q}}`, id, body.Port["name"])
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/v2.0/ports/"):
		id := strings.TrimPrefix(r.URL.Path, "/v2.0/ports/")
		f.mu.Lock()
		ok := f.live[id]
		delete(f.live, id)
		f.deletes++
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"NeutronError": {"type": "PortNotFound", "message": "Port %s could not be found.", "detail": ""}}`, id)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func newFake(t *testing.T, f *fakePorts) *client.Client {
	t.Helper()
	f.live = map[string]bool{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPortsCreatesAndDeletes(t *testing.T) {
	f := &fakePorts{}
	c := newFake(t, f)
	res, err := Ports(context.Background(), c, PortsOptions{NetworkID: "n1", Count: 50, Concurrency: 8})
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	if res.Count != 50 || res.OK != 50 || res.Errors != 0 || res.Deleted != 50 || res.DeleteErrors != 0 {
		t.Errorf("result %+v, want 50 issued, 50 ok, 0 errors, 50 deleted", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Elapsed <= 0 {
		t.Errorf("latencies p50=%s p99=%s elapsed=%s, want 0 < p50 <= p99 and elapsed > 0", res.P50, res.P99, res.Elapsed)
	}
	if len(f.live) != 0 {
		t.Errorf("%d ports left after cleanup, want 0", len(f.live))
	}
	names := map[any]bool{}
	for _, b := range f.bodies {
		names[b["name"]] = true
		if b["tenant_id"] != "demo" || b["binding:vnic_type"] != "direct" || b["network_id"] != "n1" {
			t.Errorf("body %v, want tenant_id demo, binding:vnic_type direct, network_id n1", b)
		}
		if _, ok := b["fixed_ips"]; ok {
			t.Errorf("body %v has fixed_ips without NoIP", b)
		}
	}
	for i := 1; i <= 50; i++ {
		if !names[fmt.Sprintf("bench-%d", i)] {
			t.Errorf("no port named bench-%d was created", i)
		}
	}
}

func TestPortsCountsErrorsAndKeeps(t *testing.T) {
	f := &fakePorts{failEvery: 5}
	c := newFake(t, f)
	res, err := Ports(context.Background(), c, PortsOptions{NetworkID: "n1", Count: 40, Concurrency: 4, NoIP: true, Keep: true, Project: "p"})
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	if res.Count != 40 || res.OK != 32 || res.Errors != 8 {
		t.Errorf("result %+v, want 40 issued, 32 ok, 8 errors", res)
	}
	if len(res.ErrorSamples) != 3 || !strings.Contains(res.ErrorSamples[0], "409 IpAddressGenerationFailure") {
		t.Errorf("error samples %q, want 3 decoded 409s", res.ErrorSamples)
	}
	if f.deletes != 0 || len(f.live) != 32 {
		t.Errorf("deletes %d, live %d with Keep; want 0 and 32", f.deletes, len(f.live))
	}
	for _, b := range f.bodies {
		fips, ok := b["fixed_ips"].([]any)
		if !ok || len(fips) != 0 || b["tenant_id"] != "p" {
			t.Errorf("body %v, want fixed_ips [] and tenant_id p", b)
		}
	}
	if !strings.HasSuffix(res.String(), " errors=8") {
		t.Errorf("String() = %q, want it to end in errors=8", res.String())
	}
}

func TestPortsTimeoutStopsIssuing(t *testing.T) {
	// One worker, each create slower than the whole timeout: the first request runs to its end,
	// then no other is issued.
	f := &fakePorts{delay: 50 * time.Millisecond}
	c := newFake(t, f)
	res, err := Ports(context.Background(), c, PortsOptions{NetworkID: "n1", Count: 100, Concurrency: 1, Timeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	if res.Count != 1 || res.OK != 1 || !res.TimedOut || res.Deleted != 1 {
		t.Errorf("result %+v, want 1 issued and ok, timed out, 1 deleted", res)
	}
}

func TestPortsRejectsBadOptions(t *testing.T) {
	c := newFake(t, &fakePorts{})
	for _, o := range []PortsOptions{
		{Count: 1, Concurrency: 1},
		{NetworkID: "n", Count: 0, Concurrency: 1},
		{NetworkID: "n", Count: 1, Concurrency: 0},
		{NetworkID: "n", Count: 1, Concurrency: 1, Timeout: -time.Second},
	} {
		if _, err := Ports(context.Background(), c, o); err == nil {
			t.Errorf("Ports(%+v) succeeded, want an error", o)
		}
	}
}

func TestPortsBulk(t *testing.T) {
	f := &fakePorts{}
	c := newFake(t, f)
	res, err := Ports(context.Background(), c, PortsOptions{NetworkID: "n1", Count: 25, Concurrency: 4, Bulk: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 25 || res.Errors != 0 || f.bulks != 3 || f.creates != 25 {
		t.Fatalf("25 ports in bulks of 10: ok=%d errors=%d, server saw %d bulk requests and %d creates; want 25, 0, 3, 25", res.OK, res.Errors, f.bulks, f.creates)
	}
	if res.Deleted != 25 || len(f.live) != 0 {
		t.Errorf("deleted %d, %d left", res.Deleted, len(f.live))
	}
	if !strings.HasSuffix(res.String(), " bulk=10") {
		t.Errorf("result line %q does not name the bulk size", res.String())
	}
	if f.bodies[24]["name"] != "bench-25" || f.bodies[0]["binding:vnic_type"] != "direct" {
		t.Errorf("bodies: first %v, last %v", f.bodies[0], f.bodies[24])
	}
	if _, err := Ports(context.Background(), c, PortsOptions{NetworkID: "n1", Count: 5, Concurrency: 1, Bulk: -1}); err == nil {
		t.Error("bulk -1 accepted")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, ms(i))
	}
	tests := []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{ms(7)}, 0.5, ms(7)},
		{[]time.Duration{ms(7)}, 0.99, ms(7)},
		{[]time.Duration{ms(1), ms(2)}, 0.5, ms(1)},
		{[]time.Duration{ms(1), ms(2), ms(3)}, 0.5, ms(2)},
		{hundred, 0.5, ms(50)},
		{hundred, 0.99, ms(99)},
		{hundred, 0.29, ms(29)},
		{hundred, 1, ms(100)},
		{hundred, 0.001, ms(1)},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.q); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %s, want %s", len(tt.sorted), tt.q, got, tt.want)
		}
	}
}

func TestResultString(t *testing.T) {
	r := PortsResult{OK: 500, Errors: 2, Elapsed: 2 * time.Second, P50: 12345 * time.Microsecond, P99: 80 * time.Millisecond}
	if got, want := r.String(), "ports/s=250.0 p50_ms=12.3 p99_ms=80.0 errors=2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (PortsResult{}).String(), "ports/s=0.0 p50_ms=0.0 p99_ms=0.0 errors=0"; got != want {
		t.Errorf("zero String() = %q, want %q", got, want)
	}
}

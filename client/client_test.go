package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/api"
)

// recorded is one request the fake saw.
type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                map[string]any
}

// fakeNeutron answers from a fixed table keyed by "METHOD path?query" and records every request.
type fakeNeutron struct {
	mu       sync.Mutex
	reqs     []recorded
	replies  map[string]reply
	fallback reply
}

type reply struct {
	status int
	body   string
}

func (f *fakeNeutron) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &rec.Body); err != nil {
			http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	key := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		key += "?" + r.URL.RawQuery
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, rec)
	rep, ok := f.replies[key]
	f.mu.Unlock()
	if !ok {
		rep = f.fallback
		if rep.status == 0 {
			rep = reply{404, `{"NeutronError": {"type": "HTTPNotFound", "message": "no reply for ` + key + `", "detail": ""}}`}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeNeutron) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func newFake(t *testing.T, replies map[string]reply) (*fakeNeutron, *httptest.Server) {
	t.Helper()
	f := &fakeNeutron{replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

const netJSON = `{"network": {"id": "n1", "name": "net-sriov", "tenant_id": "demo", "provider:network_type": "vlan",
 "provider:physical_network": "sriov", "provider:segmentation_id": 15, "subnets": [], "revision_number": 1, "vflink:vn_id": 10015}}`

func TestNewNormalizesBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"http://127.0.0.1:9696", "http://127.0.0.1:9696/v2.0"},
		{"http://127.0.0.1:9696/", "http://127.0.0.1:9696/v2.0"},
		{"http://127.0.0.1:9696/v2.0", "http://127.0.0.1:9696/v2.0"},
		{"http://127.0.0.1:9696/v2.0/", "http://127.0.0.1:9696/v2.0"},
		{"http://h/network", "http://h/network/v2.0"},
		{"https://h/network/v2.0", "https://h/network/v2.0"},
	}
	for _, tt := range tests {
		c, err := New(tt.in)
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if got := c.BaseURL(); got != tt.want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:9696", "ftp://h/", "http://", "http://h/?x=1"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) succeeded, want an error", bad)
		}
	}
}

func TestURLFormsReachSamePaths(t *testing.T) {
	f, srv := newFake(t, map[string]reply{
		"GET /network/v2.0/networks/n1": {200, netJSON},
	})
	for _, base := range []string{srv.URL + "/network", srv.URL + "/network/v2.0", srv.URL + "/network/"} {
		c, err := New(base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetNetwork(context.Background(), "n1"); err != nil {
			t.Errorf("base %q: GetNetwork: %v", base, err)
		}
	}
	for _, r := range f.requests() {
		if r.Path != "/network/v2.0/networks/n1" {
			t.Errorf("got path %q, want /network/v2.0/networks/n1", r.Path)
		}
	}
}

func TestCreateNetworkSendsBodyAndHeaders(t *testing.T) {
	f, srv := newFake(t, map[string]reply{"POST /v2.0/networks": {201, netJSON}})
	c, err := New(srv.URL, WithToken("secret"), WithProject("demo"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]any{"name": "net-sriov", "provider:segmentation_id": 15}
	n, err := c.CreateNetwork(context.Background(), fields)
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	seg := 15
	want := &api.Network{ID: "n1", Name: "net-sriov", TenantID: "demo", NetworkType: ptr("vlan"),
		PhysicalNetwork: ptr("sriov"), SegmentationID: &seg, Subnets: []string{}, RevisionNumber: 1, VNID: 10015}
	if d := cmp.Diff(want, n); d != "" {
		t.Errorf("network (-want +got):\n%s", d)
	}
	if _, ok := fields["tenant_id"]; ok {
		t.Errorf("CreateNetwork changed the caller's map: %v", fields)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wantBody := map[string]any{"network": map[string]any{"name": "net-sriov", "provider:segmentation_id": float64(15), "tenant_id": "demo"}}
	if d := cmp.Diff(wantBody, r.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if got := r.Header.Get("X-Auth-Token"); got != "secret" {
		t.Errorf("X-Auth-Token = %q, want secret", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
}

func TestWithProjectKeepsExplicitProject(t *testing.T) {
	f, srv := newFake(t, map[string]reply{"POST /v2.0/ports": {201, `{"port": {"id": "p1"}}`}})
	c, _ := New(srv.URL, WithProject("demo"))
	if _, err := c.CreatePort(context.Background(), map[string]any{"project_id": "other", "fixed_ips": []any{}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"port": map[string]any{"project_id": "other", "fixed_ips": []any{}}}
	if d := cmp.Diff(want, f.requests()[0].Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if got := f.requests()[0].Header.Get("X-Auth-Token"); got != "" {
		t.Errorf("X-Auth-Token = %q without WithToken, want none", got)
	}
}

func TestUpdateIfRevision(t *testing.T) {
	f, srv := newFake(t, map[string]reply{"PUT /v2.0/ports/p1": {200, `{"port": {"id": "p1", "name": "x", "revision_number": 4}}`}})
	c, _ := New(srv.URL)
	p, err := c.UpdatePort(context.Background(), "p1", map[string]any{"name": "x"}, IfRevision(3))
	if err != nil {
		t.Fatal(err)
	}
	if p.RevisionNumber != 4 {
		t.Errorf("revision_number = %d, want 4", p.RevisionNumber)
	}
	r := f.requests()[0]
	if got := r.Header.Get("If-Match"); got != "revision_number=3" {
		t.Errorf("If-Match = %q, want revision_number=3", got)
	}
	if d := cmp.Diff(map[string]any{"port": map[string]any{"name": "x"}}, r.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}

	// Without the option there is no If-Match.
	if _, err := c.UpdatePort(context.Background(), "p1", map[string]any{"name": "x"}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[1].Header.Get("If-Match"); got != "" {
		t.Errorf("If-Match = %q without IfRevision, want none", got)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	f, srv := newFake(t, map[string]reply{
		"GET /v2.0/subnets/s 1":           {200, `{"subnet": {"id": "s 1"}}`},
		"GET /v2.0/subnets?network_id=n1": {200, `{"subnets": [{"id": "s1"}, {"id": "s2"}]}`},
		"GET /v2.0/ports":                 {200, `{"ports": []}`},
		"DELETE /v2.0/networks/n1":        {204, ``},
		"DELETE /v2.0/subnets/s1":         {204, ``},
		"DELETE /v2.0/ports/p1":           {204, ``},
		"PUT /v2.0/subnets/s1":            {200, `{"subnet": {"id": "s1"}}`},
		"PUT /v2.0/networks/n1":           {200, `{"network": {"id": "n1"}}`},
	})
	c, _ := New(srv.URL)
	ctx := context.Background()
	if s, err := c.GetSubnet(ctx, "s 1"); err != nil || s.ID != "s 1" {
		t.Errorf("GetSubnet = %v, %v; want s 1", s, err)
	}
	ss, err := c.ListSubnets(ctx, url.Values{"network_id": {"n1"}})
	if err != nil || len(ss) != 2 {
		t.Errorf("ListSubnets = %v, %v; want 2 subnets", ss, err)
	}
	ps, err := c.ListPorts(ctx, nil)
	if err != nil || ps == nil || len(ps) != 0 {
		t.Errorf("ListPorts = %#v, %v; want an empty non-nil list", ps, err)
	}
	for name, err := range map[string]error{
		"DeleteNetwork": c.DeleteNetwork(ctx, "n1"),
		"DeleteSubnet":  c.DeleteSubnet(ctx, "s1"),
		"DeletePort":    c.DeletePort(ctx, "p1"),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.UpdateSubnet(ctx, "s1", map[string]any{"gateway_ip": nil}); err != nil {
		t.Errorf("UpdateSubnet: %v", err)
	}
	if _, err := c.UpdateNetwork(ctx, "n1", map[string]any{"name": "x"}); err != nil {
		t.Errorf("UpdateNetwork: %v", err)
	}
	var got []string
	for _, r := range f.requests() {
		got = append(got, r.Method+" "+r.Path)
	}
	// Deletes ran in map order; compare as a set of request lines.
	want := map[string]bool{
		"GET /v2.0/subnets/s 1": true, "GET /v2.0/subnets": true, "GET /v2.0/ports": true,
		"DELETE /v2.0/networks/n1": true, "DELETE /v2.0/subnets/s1": true, "DELETE /v2.0/ports/p1": true,
		"PUT /v2.0/subnets/s1": true, "PUT /v2.0/networks/n1": true,
	}
	if len(got) != len(want) {
		t.Errorf("got requests %q, want %d", got, len(want))
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected request %q", g)
		}
	}
	for _, r := range f.requests() {
		if r.Method == http.MethodPut && r.Path == "/v2.0/subnets/s1" {
			if d := cmp.Diff(map[string]any{"subnet": map[string]any{"gateway_ip": nil}}, r.Body); d != "" {
				t.Errorf("PUT subnet body (-want +got):\n%s", d)
			}
		}
	}
}

func TestErrorDecoding(t *testing.T) {
	_, srv := newFake(t, map[string]reply{
		"POST /v2.0/ports":   {409, `{"NeutronError": {"type": "IpAddressGenerationFailure", "message": "No more IP addresses available on network X.", "detail": ""}}`},
		"GET /v2.0/ports/p1": {404, `{"NeutronError": {"type": "PortNotFound", "message": "Port p1 could not be found.", "detail": ""}}`},
		"GET /v2.0/ports/p2": {502, "<html>\n<body>Bad   Gateway</body></html>" + strings.Repeat("x", 2000)},
		"PUT /v2.0/ports/p3": {412, `{"NeutronError": {"type": "RevisionNumberConstraintFailed", "message": "Constrained to 3, but current revision is 4", "detail": "d"}}`},
	})
	c, _ := New(srv.URL)
	ctx := context.Background()

	_, err := c.CreatePort(ctx, map[string]any{"network_id": "X"})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("CreatePort error %v (%T), want *Error", err, err)
	}
	want := &Error{StatusCode: 409, Type: "IpAddressGenerationFailure", Message: "No more IP addresses available on network X."}
	if d := cmp.Diff(want, e); d != "" {
		t.Errorf("error (-want +got):\n%s", d)
	}
	if got, want := e.Error(), "409 IpAddressGenerationFailure: No more IP addresses available on network X."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !IsConflict(err) || IsNotFound(err) {
		t.Errorf("IsConflict = %v, IsNotFound = %v for a 409, want true, false", IsConflict(err), IsNotFound(err))
	}

	_, err = c.GetPort(ctx, "p1")
	if !IsNotFound(err) || IsConflict(err) {
		t.Errorf("IsNotFound = %v, IsConflict = %v for a 404, want true, false", IsNotFound(err), IsConflict(err))
	}

	_, err = c.GetPort(ctx, "p2")
	if !errors.As(err, &e) {
		t.Fatalf("GetPort p2 error %v (%T), want *Error", err, err)
	}
	if e.StatusCode != 502 || e.Type != "BadGateway" || !strings.HasPrefix(e.Message, "<html> <body>Bad Gateway</body></html>xxx") || len(e.Message) > maxErrorBody+3 {
		t.Errorf("non-Neutron body decoded as %+v, want 502 BadGateway with the truncated text", e)
	}

	_, err = c.UpdatePort(ctx, "p3", map[string]any{"name": "x"}, IfRevision(3))
	if !IsPreconditionFailed(err) {
		t.Errorf("IsPreconditionFailed(%v) = false, want true", err)
	}
	if !strings.Contains(err.Error(), "412 RevisionNumberConstraintFailed: Constrained to 3, but current revision is 4 (d)") {
		t.Errorf("error %q lacks the decoded 412", err)
	}
}

func TestFind(t *testing.T) {
	_, srv := newFake(t, map[string]reply{
		"GET /v2.0/networks/n1":             {200, netJSON},
		"GET /v2.0/networks?name=net-sriov": {200, `{"networks": [{"id": "n1", "name": "net-sriov"}]}`},
		"GET /v2.0/networks?name=dup":       {200, `{"networks": [{"id": "a", "name": "dup"}, {"id": "b", "name": "dup"}]}`},
		"GET /v2.0/networks?name=none":      {200, `{"networks": []}`},
		"GET /v2.0/networks/boom":           {500, `{"NeutronError": {"type": "HTTPInternalServerError", "message": "boom", "detail": ""}}`},
		"GET /v2.0/subnets?name=s":          {200, `{"subnets": [{"id": "s1", "name": "s"}]}`},
		"GET /v2.0/ports?name=p":            {200, `{"ports": [{"id": "p1", "name": "p"}]}`},
	})
	c, _ := New(srv.URL)
	ctx := context.Background()

	if n, err := c.FindNetwork(ctx, "n1"); err != nil || n.ID != "n1" {
		t.Errorf("FindNetwork(n1) = %v, %v; want n1 by ID", n, err)
	}
	if n, err := c.FindNetwork(ctx, "net-sriov"); err != nil || n.ID != "n1" {
		t.Errorf("FindNetwork(net-sriov) = %v, %v; want n1 by name", n, err)
	}
	if s, err := c.FindSubnet(ctx, "s"); err != nil || s.ID != "s1" {
		t.Errorf("FindSubnet(s) = %v, %v; want s1", s, err)
	}
	if p, err := c.FindPort(ctx, "p"); err != nil || p.ID != "p1" {
		t.Errorf("FindPort(p) = %v, %v; want p1", p, err)
	}

	_, err := c.FindNetwork(ctx, "none")
	if err == nil || err.Error() != `no network named or with ID "none"` || !IsNotFound(err) {
		t.Errorf("FindNetwork(none) error = %v, want not found naming the value", err)
	}
	_, err = c.FindNetwork(ctx, "dup")
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("FindNetwork(dup) error = %v, want ambiguous listing a, b", err)
	}
	_, err = c.FindNetwork(ctx, "boom")
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 500 {
		t.Errorf("FindNetwork(boom) error = %v, want the 500 without a name lookup", err)
	}
	if _, err := c.FindNetwork(ctx, ""); err == nil {
		t.Error("FindNetwork(\"\") succeeded, want an error")
	}
}

func TestTransportKeepsConnectionsAlive(t *testing.T) {
	c, _ := New("http://127.0.0.1:9696")
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", c.hc.Transport)
	}
	if tr.MaxIdleConnsPerHost < 64 || tr.DisableKeepAlives {
		t.Errorf("MaxIdleConnsPerHost = %d, DisableKeepAlives = %v; want >= 64 and false", tr.MaxIdleConnsPerHost, tr.DisableKeepAlives)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWithRequestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"networks": []}`))
	}))
	defer srv.Close()
	c, _ := New(srv.URL, WithRequestTimeout(50*time.Millisecond))
	if _, err := c.ListNetworks(context.Background(), nil); err == nil {
		t.Error("a 300 ms answer within a 50 ms request timeout")
	}
	c, _ = New(srv.URL, WithRequestTimeout(5*time.Second))
	if _, err := c.ListNetworks(context.Background(), nil); err != nil {
		t.Errorf("within 5 s: %v", err)
	}
}

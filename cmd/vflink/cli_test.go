package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// apiCall is one request the fake API saw.
type apiCall struct {
	Line string // "METHOD path?query"
	Body map[string]any
	Hdr  http.Header
}

// fakeAPI answers from a table keyed by "METHOD path?query"; anything else is a Neutron 404.
type fakeAPI struct {
	mu      sync.Mutex
	calls   []apiCall
	replies map[string]string // key -> "STATUS body"
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	c := apiCall{Line: line, Hdr: r.Header.Clone()}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &c.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	rep, ok := f.replies[line]
	f.mu.Unlock()
	status, body := "404", `{"NeutronError": {"type": "NotFound", "message": "not found: `+line+`", "detail": ""}}`
	if ok {
		status, body, _ = strings.Cut(rep, " ")
	}
	code := map[string]int{"200": 200, "201": 201, "204": 204, "404": 404, "409": 409}[status]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

func (f *fakeAPI) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Line)
	}
	return out
}

func (f *fakeAPI) call(line string) (apiCall, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.Line == line {
			return c, true
		}
	}
	return apiCall{}, false
}

// runCmd runs cmd with args against srv and returns stdout, stderr and the error.
func runCmd(t *testing.T, cmd *cobra.Command, srv *httptest.Server, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetArgs(append(args, "--url", srv.URL))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func newFakeAPI(t *testing.T, replies map[string]string) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

const (
	netBody = `{"id": "n1", "name": "net-sriov", "provider:network_type": "vlan", "provider:physical_network": "sriov",
		"provider:segmentation_id": 15, "subnets": ["s1"], "revision_number": 1, "vflink:vn_id": 10015}`
	subBody  = `{"id": "s1", "name": "sub-sriov", "network_id": "n1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"}`
	portBody = `{"id": "p1", "name": "vm1", "network_id": "n1", "mac_address": "fa:16:3e:26:e5:27", "status": "DOWN",
		"binding:vnic_type": "direct", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
		"binding:profile": {"pci_slot": "0000:3b:02.5"}}`
)

func TestNetworkCreateSendsOnlyGivenFields(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{"POST /v2.0/networks": "201 {\"network\": " + netBody + "}"})
	out, _, err := runCmd(t, newNetworkCmd(), srv, "create", "net-sriov", "--provider-network-type", "vlan",
		"--provider-physical-network", "sriov", "--provider-segment", "15", "--project", "demo", "--token", "tok")
	if err != nil {
		t.Fatalf("network create: %v", err)
	}
	c, ok := f.call("POST /v2.0/networks")
	if !ok {
		t.Fatalf("no POST /v2.0/networks; got %q", f.lines())
	}
	want := map[string]any{"network": map[string]any{
		"name": "net-sriov", "admin_state_up": true, "provider:network_type": "vlan",
		"provider:physical_network": "sriov", "provider:segmentation_id": float64(15), "tenant_id": "demo",
	}}
	if d := cmp.Diff(want, c.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if got := c.Hdr.Get("X-Auth-Token"); got != "tok" {
		t.Errorf("X-Auth-Token = %q, want tok", got)
	}
	for _, want := range []string{"Field", "provider:segmentation_id   15", `subnets                    ["s1"]`, "vflink:vn_id               10015"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNetworkSetByNameWithRevision(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks?name=net-sriov": "200 {\"networks\": [" + netBody + "]}",
		"PUT /v2.0/networks/n1":             "200 {\"network\": " + netBody + "}",
	})
	out, _, err := runCmd(t, newNetworkCmd(), srv, "set", "net-sriov", "--provider-segment", "16", "--if-revision", "1")
	if err != nil {
		t.Fatalf("network set: %v", err)
	}
	if out != "" {
		t.Errorf("set printed %q, want nothing", out)
	}
	wantLines := []string{"GET /v2.0/networks/net-sriov", "GET /v2.0/networks?name=net-sriov", "PUT /v2.0/networks/n1"}
	if d := cmp.Diff(wantLines, f.lines()); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	c, _ := f.call("PUT /v2.0/networks/n1")
	if d := cmp.Diff(map[string]any{"network": map[string]any{"provider:segmentation_id": float64(16)}}, c.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if got := c.Hdr.Get("If-Match"); got != "revision_number=1" {
		t.Errorf("If-Match = %q, want revision_number=1", got)
	}

	if _, _, err := runCmd(t, newNetworkCmd(), srv, "set", "net-sriov"); err == nil || !strings.Contains(err.Error(), "nothing to set") {
		t.Errorf("set without flags: err = %v, want nothing to set", err)
	}
}

func TestPortCreateResolvesNamesAndFixedIPs(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks?name=net-sriov": "200 {\"networks\": [" + netBody + "]}",
		"GET /v2.0/subnets/s1":              "200 {\"subnet\": " + subBody + "}",
		"POST /v2.0/ports":                  "201 {\"port\": " + portBody + "}",
	})
	out, _, err := runCmd(t, newPortCmd(), srv, "create", "vm1", "--network", "net-sriov", "--vnic-type", "direct",
		"--fixed-ip", "subnet=s1,ip-address=10.0.0.5", "--binding-profile", `{"pci_slot": "0000:3b:02.5"}`, "--host", "c1", "-o", "json")
	if err != nil {
		t.Fatalf("port create: %v", err)
	}
	c, ok := f.call("POST /v2.0/ports")
	if !ok {
		t.Fatalf("no POST /v2.0/ports; got %q", f.lines())
	}
	want := map[string]any{"port": map[string]any{
		"name": "vm1", "admin_state_up": true, "network_id": "n1", "binding:vnic_type": "direct",
		"fixed_ips":       []any{map[string]any{"subnet_id": "s1", "ip_address": "10.0.0.5"}},
		"binding:profile": map[string]any{"pci_slot": "0000:3b:02.5"}, "binding:host_id": "c1",
	}}
	if d := cmp.Diff(want, c.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["id"] != "p1" {
		t.Errorf("-o json output %q (%v), want the port as JSON", out, err)
	}
}

func TestPortCreateNoFixedIPSendsEmptyList(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks/n1": "200 {\"network\": " + netBody + "}",
		"POST /v2.0/ports":      "201 {\"port\": " + portBody + "}",
	})
	if _, _, err := runCmd(t, newPortCmd(), srv, "create", "vm1", "--network", "n1", "--no-fixed-ip"); err != nil {
		t.Fatalf("port create: %v", err)
	}
	c, _ := f.call("POST /v2.0/ports")
	fips, ok := c.Body["port"].(map[string]any)["fixed_ips"]
	if !ok || fips == nil || len(fips.([]any)) != 0 {
		t.Errorf("fixed_ips = %#v (present %v), want []", fips, ok)
	}
}

func TestPortListTable(t *testing.T) {
	_, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks/n1":         "200 {\"network\": " + netBody + "}",
		"GET /v2.0/ports?network_id=n1": "200 {\"ports\": [" + portBody + "]}",
		"GET /v2.0/subnets":             "200 {\"subnets\": [" + subBody + "]}",
	})
	out, _, err := runCmd(t, newPortCmd(), srv, "list", "--network", "n1")
	if err != nil {
		t.Fatalf("port list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want header + 1 row:\n%s", len(lines), out)
	}
	for _, want := range []string{"p1", "vm1", "fa:16:3e:26:e5:27", "10.0.0.5 (sub-sriov)", "direct", "DOWN"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func TestDeleteReportsEachFailure(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/ports/p1":        "200 {\"port\": " + portBody + "}",
		"DELETE /v2.0/ports/p1":     "204 ",
		"GET /v2.0/ports?name=nope": "200 {\"ports\": []}",
	})
	out, errOut, err := runCmd(t, newPortCmd(), srv, "delete", "nope", "p1")
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Errorf("err = %v, want 1 of 2 ports not deleted", err)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	if !strings.Contains(errOut, `no port named or with ID "nope"`) {
		t.Errorf("stderr %q does not name the missing port", errOut)
	}
	if _, ok := f.call("DELETE /v2.0/ports/p1"); !ok {
		t.Errorf("p1 was not deleted after nope failed; requests %q", f.lines())
	}
}

func TestInvalidFlagValues(t *testing.T) {
	tests := []struct {
		cmd  func() *cobra.Command
		args []string
		want string
	}{
		{newNetworkCmd, []string{"list", "-o", "yaml"}, `invalid --output "yaml": want table or json`},
		{newNetworkCmd, []string{"create", "x", "--provider-network-type", "vxlan"}, `"vxlan": want vlan or flat`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--fixed-ip", "foo"}, `invalid --fixed-ip "foo"`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--fixed-ip", "subnet=s,ip=1"}, `unknown key "ip"`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--fixed-ip", "ip-address=10.0.0.300"}, `"10.0.0.300" is not an IP address`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--binding-profile", "{"}, `invalid --binding-profile "{": want a JSON object`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--vnic-type", "fast"}, `invalid --vnic-type "fast": want one of normal, direct`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--mac-address", "zz"}, `invalid --mac-address "zz"`},
		{newPortCmd, []string{"create", "x", "--network", "n", "--no-fixed-ip", "--fixed-ip", "subnet=s"}, `exclude each other`},
		{newSubnetCmd, []string{"create", "x", "--network", "n", "--subnet-range", "10.0.0.0"}, `invalid --subnet-range "10.0.0.0"`},
		{newSubnetCmd, []string{"create", "x", "--network", "n", "--subnet-range", "10.0.0.0/24", "--gateway", "gw"}, `invalid --gateway "gw": want an IP address, auto or none`},
		{newSubnetCmd, []string{"create", "x", "--network", "n", "--subnet-range", "10.0.0.0/24", "--allocation-pool", "start=10.0.0.2"}, ""},
		{newSubnetCmd, []string{"create", "x", "--network", "n", "--subnet-range", "10.0.0.0/24", "--ip-version", "6"}, `--ip-version 6 does not match`},
	}
	f, srv := newFakeAPI(t, nil)
	for _, tt := range tests {
		_, _, err := runCmd(t, tt.cmd(), srv, tt.args...)
		if err == nil || (tt.want != "" && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: err = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
	if calls := f.lines(); len(calls) != 0 {
		t.Errorf("invalid flags still sent requests: %q", calls)
	}
}

func TestSubnetCreateBody(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks/n1": "200 {\"network\": " + netBody + "}",
		"POST /v2.0/subnets":    "201 {\"subnet\": " + subBody + "}",
	})
	_, _, err := runCmd(t, newSubnetCmd(), srv, "create", "sub-sriov", "--network", "n1", "--subnet-range", "10.0.0.0/24",
		"--gateway", "none", "--allocation-pool", "start=10.0.0.10,end=10.0.0.20", "--allocation-pool", "start=10.0.0.30,end=10.0.0.40")
	if err != nil {
		t.Fatalf("subnet create: %v", err)
	}
	c, _ := f.call("POST /v2.0/subnets")
	want := map[string]any{"subnet": map[string]any{
		"name": "sub-sriov", "network_id": "n1", "cidr": "10.0.0.0/24", "ip_version": float64(4), "gateway_ip": nil,
		"allocation_pools": []any{
			map[string]any{"start": "10.0.0.10", "end": "10.0.0.20"},
			map[string]any{"start": "10.0.0.30", "end": "10.0.0.40"},
		},
	}}
	if d := cmp.Diff(want, c.Body); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

func TestBenchPortsLastLine(t *testing.T) {
	f, srv := newFakeAPI(t, map[string]string{
		"GET /v2.0/networks/n1": "200 {\"network\": " + netBody + "}",
		"POST /v2.0/ports":      "201 {\"port\": " + portBody + "}",
		"DELETE /v2.0/ports/p1": "204 ",
	})
	out, errOut, err := runCmd(t, newBenchCmd(), srv, "ports", "--network", "n1", "--count", "5", "--concurrency", "2", "--no-ip")
	if err != nil {
		t.Fatalf("bench ports: %v (stderr %q)", err, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^ports/s=\d+\.\d p50_ms=\d+\.\d p99_ms=\d+\.\d errors=0$`).MatchString(last) {
		t.Errorf("last line %q, want ports/s=<f> p50_ms=<f> p99_ms=<f> errors=0", last)
	}
	posts, deletes := 0, 0
	for _, l := range f.lines() {
		switch l {
		case "POST /v2.0/ports":
			posts++
		case "DELETE /v2.0/ports/p1":
			deletes++
		}
	}
	if posts != 5 || deletes != 5 {
		t.Errorf("%d creates and %d deletes, want 5 and 5", posts, deletes)
	}
}

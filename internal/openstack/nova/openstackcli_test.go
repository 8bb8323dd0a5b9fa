package nova_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/nova"
	"github.com/vflink/vflink/internal/store"
)

// TestOpenstackCLI drives the seed's server workflow with the real openstack CLI (Debian's
// python3-openstackclient 6.0) in its noauth clouds.yaml form: flavor, image (its stdin is not a
// terminal, so the CLI also uploads empty image data), server create on a direct port, show,
// list, delete.
func TestOpenstackCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("the real openstack CLI takes about 30 s; run without -short")
	}
	cli, err := exec.LookPath("openstack")
	if err != nil {
		t.Skip("the openstack CLI is not installed (apt-get install python3-openstackclient)")
	}
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	net := neutron.New(st, neutron.Config{})
	net.Register(mux, "/network/v2.0")
	netVersions := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"versions": []any{map[string]any{"id": "v2.0", "status": "CURRENT",
			"links": []any{map[string]string{"rel": "self", "href": "http://" + r.Host + "/network/v2.0/"}}}}})
	}
	mux.HandleFunc("GET /network", netVersions)
	mux.HandleFunc("GET /network/{$}", netVersions)
	img := glance.New(st, glance.Config{})
	img.Register(mux, "/image")
	nova.New(st, net, img, nova.NewStoreScheduler(st), nova.Config{}).Register(mux, "/compute")
	var mu sync.Mutex
	var trace []string // every request, shown when the test fails
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		withCaller(mux).ServeHTTP(rec, r)
		mu.Lock()
		trace = append(trace, fmt.Sprintf("%s %s -> %d", r.Method, r.URL.RequestURI(), rec.code))
		mu.Unlock()
	})
	srv := httptest.NewServer(logged)
	t.Cleanup(func() {
		srv.Close()
		st.Close()
		if t.Failed() || os.Getenv("VFLINK_TRACE") != "" {
			t.Log("requests:\n" + strings.Join(trace, "\n"))
		}
	})
	e := &env{t: t, url: srv.URL, st: st}
	e.addHost("compute1", api.PF{Name: "ens1f1", PhysicalNetwork: "sriov", TotalVFs: 8, NumVFs: 4})

	dir := t.TempDir()
	clouds := "clouds:\n  noauth:\n    auth_type: none\n    auth: {endpoint: " + srv.URL + "/compute/v2.1}\n" +
		"    network_endpoint_override: " + srv.URL + "/network\n    image_endpoint_override: " + srv.URL + "/image\n"
	if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "OS_CLIENT_CONFIG_FILE="+filepath.Join(dir, "clouds.yaml"), "OS_CLOUD=noauth")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	must("network", "create", "NET")
	must("network", "set", "--provider-physical-network", "sriov", "--provider-segment", "15", "NET")
	must("subnet", "create", "--network", "NET", "--subnet-range", "10.0.15.0/24", "SUB")
	must("port", "create", "--network", "NET", "--vnic-type", "direct", "P")
	must("flavor", "create", "--ram", "512", "--vcpus", "1", "--disk", "1", "F")
	if got := must("flavor", "show", "F", "-f", "value", "-c", "ram"); got != "512" {
		t.Errorf("flavor show: got %q, want 512", got)
	}
	must("image", "create", "--disk-format", "qcow2", "--property", "location=/var/lib/vflink/cirros.qcow2", "I")
	if got := must("image", "show", "I", "-f", "value", "-c", "status"); got != "active" {
		t.Errorf("image show: got %q, want active", got)
	}
	out := must("server", "create", "--image", "I", "--flavor", "F", "--port", "P", "VM", "-f", "json")
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("server create output: %v\n%s", err, out)
	}
	if created["status"] != "BUILD" || created["OS-EXT-SRV-ATTR:host"] != "compute1" || !strings.HasPrefix(str(created, "image"), "I (") || !strings.HasPrefix(str(created, "flavor"), "F (") {
		t.Errorf("server create: got %v", created)
	}
	portID := must("port", "show", "P", "-f", "value", "-c", "id")
	if got := must("port", "show", "P", "-f", "value", "-c", "binding_host_id"); got != "compute1" {
		t.Errorf("port host: got %q, want compute1", got)
	}
	e.setPortStatus(portID, "ACTIVE")
	if got := must("server", "show", "VM", "-f", "value", "-c", "status"); got != "ACTIVE" {
		t.Errorf("server show: got %q, want ACTIVE", got)
	}
	if got := must("server", "list", "-f", "value", "-c", "Name", "-c", "Status"); got != "VM ACTIVE" {
		t.Errorf("server list: got %q", got)
	}
	must("server", "delete", "VM")
	if got := must("server", "list", "-f", "value"); got != "" {
		t.Errorf("server list after delete: got %q", got)
	}
	if got := must("port", "show", "P", "-f", "value", "-c", "device_id"); got != "" {
		t.Errorf("port device_id after delete: got %q, want empty", got)
	}
	must("image", "delete", "I")
	must("flavor", "delete", "F")
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

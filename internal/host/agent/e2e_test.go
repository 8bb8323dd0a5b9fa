package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/host/agent"
)

// TestServerCreateGoesActive: with an agent serving host h1, the real openstack CLI's
// `server create --port P` goes BUILD → ACTIVE, the VF carries the port's MAC and VLAN, and
// `server delete` gives the VF back in its original state.
func TestServerCreateGoesActive(t *testing.T) {
	cli, err := exec.LookPath("openstack")
	if err != nil {
		t.Skip("the openstack CLI is not installed (apt-get install python3-openstackclient); .ci/run installs it")
	}
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	r := newRig(t, 8)
	before, _ := r.nic.VFs("ens1f1")
	a, err := agent.New(agent.Config{Host: "h1", Specs: r.specs, FS: r.fs, NIC: r.nic, Client: r.c, StateDir: r.state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(start(a))

	root := strings.TrimSuffix(r.c.BaseURL(), "/v2.0")
	dir := t.TempDir()
	clouds := "clouds:\n  noauth:\n    auth_type: none\n    auth: {endpoint: " + root + "/compute/v2.1}\n" +
		"    network_endpoint_override: " + root + "/network\n    image_endpoint_override: " + root + "/image\n"
	os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600)
	must := func(args ...string) string {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(c, cli, args...)
		cmd.Env = append(os.Environ(), "OS_CLIENT_CONFIG_FILE="+filepath.Join(dir, "clouds.yaml"), "OS_CLOUD=noauth")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	must("port", "create", "--network", r.net, "--vnic-type", "direct", "P")
	must("flavor", "create", "--vcpus", "1", "--ram", "512", "--disk", "1", "F")
	must("image", "create", "--disk-format", "raw", "--container-format", "bare", "--property", "location=/var/lib/images/vm.raw", "I")
	id := must("server", "create", "--image", "I", "--flavor", "F", "--port", "P", "-f", "value", "-c", "id", "VM")
	deadline := time.Now().Add(30 * time.Second)
	status := ""
	for time.Now().Before(deadline) {
		resp, err := http.Get(root + "/compute/v2.1/servers/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Server struct {
				Status string `json:"status"`
			} `json:"server"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if status = body.Server.Status; status == "ACTIVE" || status == "ERROR" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "ACTIVE" {
		t.Fatalf("server status: got %q, want ACTIVE", status)
	}
	var p map[string]any
	json.Unmarshal([]byte(must("port", "show", "P", "-f", "json")), &p)
	prof, _ := p["binding_profile"].(map[string]any)
	if p["binding_host_id"] != "h1" || p["status"] != "ACTIVE" || prof["pci_slot"] == nil || prof["physical_network"] != "sriov" {
		t.Fatalf("port after placement: host %v status %v profile %v", p["binding_host_id"], p["status"], prof)
	}
	vfs, _ := r.nic.VFs("ens1f1")
	found := false
	for _, v := range vfs {
		if v.MAC.String() == p["mac_address"] && v.VLAN == 15 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no VF carries MAC %v with VLAN 15: %v", p["mac_address"], vfs)
	}
	must("server", "delete", "VM")
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		after, _ := r.nic.VFs("ens1f1")
		same := true
		for i := range before {
			if before[i].VFState.String() != after[i].VFState.String() {
				same = false
			}
		}
		if same {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the VF was not restored after server delete")
}

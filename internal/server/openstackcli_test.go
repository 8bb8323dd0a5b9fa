package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/server"
	"github.com/vflink/vflink/internal/store"
)

// TestOpenstackCLINoauth drives the seed's steps 1-2 and 5 with the real openstack CLI
// (Debian's python3-openstackclient) in its noauth clouds.yaml form.
func TestOpenstackCLINoauth(t *testing.T) {
	cli, err := exec.LookPath("openstack")
	if err != nil {
		t.Skip("the openstack CLI is not installed (apt-get install python3-openstackclient); .ci/run installs it")
	}
	st, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(server.Handler(st, auth.NoAuth{DefaultProject: "demo"}, neutron.Config{Logger: log}, log))
	t.Cleanup(func() { srv.Close(); st.Close() })
	dir := t.TempDir()
	clouds := "clouds:\n  noauth:\n    auth_type: none\n    auth: {endpoint: " + srv.URL + "/compute/v2.1}\n" +
		"    network_endpoint_override: " + srv.URL + "/network\n    image_endpoint_override: " + srv.URL + "/image\n"
	if err := os.WriteFile(filepath.Join(dir, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	os := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(cmd.Environ(), "OS_CLIENT_CONFIG_FILE="+filepath.Join(dir, "clouds.yaml"), "OS_CLOUD=noauth")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := os(args...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	must("network", "create", "NET")
	must("network", "set", "--provider-physical-network", "sriov", "--provider-segment", "15", "NET")
	if got := must("network", "show", "NET", "-f", "value", "-c", "provider:segmentation_id"); got != "15" {
		t.Fatalf("segmentation id: got %q, want 15", got)
	}
	must("subnet", "create", "--network", "NET", "--subnet-range", "10.5.0.0/24", "SUB")
	must("port", "create", "--network", "NET", "--vnic-type", "direct", "P")
	var p map[string]any
	if err := json.Unmarshal([]byte(must("port", "show", "P", "-f", "json")), &p); err != nil {
		t.Fatal(err)
	}
	if p["binding_vnic_type"] != "direct" || p["mac_address"] == "" || !strings.Contains(must("port", "show", "P", "-f", "value", "-c", "fixed_ips"), "10.5.0.") {
		t.Fatalf("port P: got %v", p)
	}
	must("port", "create", "--network", "NET", "--vnic-type", "baremetal", "--binding-profile",
		`{"local_link_information": [{"switch_info": "leaf1", "port_id": "xe-0/0/3"}]}`, "--no-fixed-ip", "DEVPORT")
	if got := must("port", "show", "DEVPORT", "-f", "value", "-c", "fixed_ips"); got != "" && got != "[]" {
		t.Fatalf("device port fixed_ips: got %q, want none", got)
	}
	if out, err := os("network", "delete", "NET"); err == nil || !strings.Contains(out, "409") {
		t.Fatalf("network delete with ports: got %v %s, want a 409 refusal", err, out)
	}
	if out, err := os("network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "sriov", "--provider-segment", "15", "DUP"); err == nil || !strings.Contains(out, "VLAN 15") {
		t.Fatalf("duplicate VLAN: got %v %s, want a refusal naming VLAN 15", err, out)
	}
	must("port", "delete", "P", "DEVPORT")
	must("network", "delete", "NET")
}

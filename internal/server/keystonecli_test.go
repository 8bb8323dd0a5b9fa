package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/server"
)

// startKeystoneServer runs a whole `vflink server` (Keystone auth, embedded etcd) in-process.
func startKeystoneServer(t *testing.T, password string) (url, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			Listen: addr, DataDir: filepath.Join(dir, "data"), Auth: "keystone", VLANRanges: "sriov:1:4094",
			BaseMAC: "fa:16:3e:00:00:00", BootstrapPasswordFile: pw, PublicURL: "http://" + addr,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(a string) { ready <- a },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start in 60 s")
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + addr, filepath.Join(dir, "data")
}

// TestOpenstackCLIKeystone runs the seed's whole workflow with the real openstack CLI and
// password authentication, then checks that another project sees none of it.
func TestOpenstackCLIKeystone(t *testing.T) {
	cli, err := exec.LookPath("openstack")
	if err != nil {
		t.Skip("the openstack CLI is not installed (apt-get install python3-openstackclient); .ci/run installs it")
	}
	if testing.Short() {
		t.Skip("runs the openstack CLI about 30 times")
	}
	const adminPW = "S3cret-admin-pw"
	url, dataDir := startKeystoneServer(t, adminPW)
	if b, err := os.ReadFile(filepath.Join(dataDir, server.OpenrcFile)); err != nil || !strings.Contains(string(b), url+"/v3") {
		t.Fatalf("openrc: %v %s", err, b)
	}
	env := func(user, pw, project string) []string {
		return []string{"OS_AUTH_URL=" + url + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=" + user, "OS_PASSWORD=" + pw,
			"OS_PROJECT_NAME=" + project, "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne"}
	}
	admin := env("admin", adminPW, "admin")
	run := func(e []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), e...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(e []string, args ...string) string {
		t.Helper()
		out, err := run(e, args...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	must(admin, "network", "create", "NET")
	must(admin, "network", "set", "--provider-physical-network", "sriov", "--provider-segment", "15", "NET")
	if got := must(admin, "network", "show", "NET", "-f", "value", "-c", "provider:segmentation_id"); got != "15" {
		t.Fatalf("segment: got %q, want 15", got)
	}
	must(admin, "subnet", "create", "--network", "NET", "--subnet-range", "10.5.0.0/24", "SUB")
	must(admin, "port", "create", "--network", "NET", "--vnic-type", "direct", "P")
	var p map[string]any
	json.Unmarshal([]byte(must(admin, "port", "show", "P", "-f", "json")), &p)
	if p["binding_vnic_type"] != "direct" || p["mac_address"] == "" || !strings.Contains(must(admin, "port", "show", "P", "-f", "value", "-c", "fixed_ips"), "10.5.0.") {
		t.Fatalf("port P: %v", p)
	}
	must(admin, "flavor", "create", "--vcpus", "2", "--ram", "2048", "--disk", "10", "F")
	must(admin, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--property", "location=file:///var/lib/images/i.raw", "I")
	must(admin, "server", "create", "--image", "I", "--flavor", "F", "--port", "P", "VM")
	if st := must(admin, "server", "show", "VM", "-f", "value", "-c", "status"); st != "ERROR" {
		t.Fatalf("server status with no host agent: got %q, want ERROR", st)
	}
	if fault := must(admin, "server", "show", "VM", "-f", "value", "-c", "fault"); !strings.Contains(fault, "No valid host was found") {
		t.Fatalf("server fault: got %q, want No valid host", fault)
	}
	if h := must(admin, "port", "show", "P", "-f", "value", "-c", "binding_host_id"); h != "" && h != "None" {
		t.Fatalf("port host after a failed schedule: got %q, want unbound", h)
	}
	must(admin, "port", "create", "--network", "NET", "--vnic-type", "baremetal", "--binding-profile",
		`{"local_link_information": [{"switch_info": "leaf1", "port_id": "xe-0/0/3"}]}`, "--no-fixed-ip", "DEVPORT")
	must(admin, "port", "create", "--network", "NET", "--vnic-type", "baremetal", "--device-owner", "vflink:device-port", "--no-fixed-ip", "DERIVED")
	if got := must(admin, "port", "list", "--device-owner", "vflink:device-port", "-f", "value", "-c", "Name"); got != "DERIVED" {
		t.Fatalf("port list --device-owner vflink:device-port: got %q, want DERIVED", got)
	}
	must(admin, "port", "delete", "DERIVED")
	if out, err := run(admin, "network", "delete", "NET"); err == nil {
		t.Fatalf("network with ports deleted: %s", out)
	}
	must(admin, "project", "create", "p2")
	must(admin, "user", "create", "--domain", "Default", "--password", "u2-Passw0rd", "u2")
	must(admin, "role", "add", "--project", "p2", "--user", "u2", "member")
	u2 := env("u2", "u2-Passw0rd", "p2")
	if nets := must(u2, "network", "list", "-f", "value", "-c", "Name"); strings.Contains(nets, "NET") {
		t.Fatalf("p2 sees admin's network: %s", nets)
	}
	if ports := must(u2, "port", "list", "-f", "value", "-c", "Name"); ports != "" {
		t.Fatalf("p2 sees ports: %s", ports)
	}
	must(u2, "network", "create", "N2")
	if out, err := run(u2, "network", "set", "--provider-physical-network", "sriov", "--provider-segment", "20", "N2"); err == nil {
		t.Fatalf("a member set provider attributes: %s", out)
	}
	if out, err := run(env("admin", "wrong", "admin"), "network", "list"); err == nil {
		t.Fatalf("a wrong password was accepted: %s", out)
	}
	must(admin, "server", "delete", "VM")
	must(admin, "port", "delete", "P", "DEVPORT")
	must(admin, "network", "delete", "NET")
	must(admin, "image", "delete", "I")
	must(admin, "flavor", "delete", "F")
}

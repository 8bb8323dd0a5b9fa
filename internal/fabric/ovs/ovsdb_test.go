package ovs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vflink/vflink/api"
)

const schema = "/usr/share/openvswitch/vswitch.ovsschema"

// ovsdb starts a private ovsdb-server on a unix socket in a temporary directory (never the
// system's /run/openvswitch), stopped by PID when the test ends, and returns its --db value.
func ovsdb(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"ovsdb-server", "ovsdb-tool", "ovs-vsctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (Debian: apt-get install openvswitch-switch): %v", bin, err)
		}
	}
	if _, err := os.Stat(schema); err != nil {
		t.Skipf("the OVS schema is missing: %v", err)
	}
	dir := t.TempDir()
	if len(dir) > 90 { // unix socket paths are limited to 107 bytes
		t.Skipf("temporary directory %s is too long for a unix socket path", dir)
	}
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command("ovsdb-tool", "create", db, schema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v: %s", err, out)
	}
	sock := filepath.Join(dir, "db.sock")
	srv := exec.Command("ovsdb-server", db, "--remote=punix:"+sock,
		"--unixctl="+filepath.Join(dir, "ctl"), "--log-file="+filepath.Join(dir, "log"), "--no-chdir")
	if err := srv.Start(); err != nil {
		t.Fatalf("start ovsdb-server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	remote := "unix:" + sock
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ovs-vsctl", "--db="+remote, "--no-wait", "--timeout=5", "init").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("ovsdb-server did not come up: %v: %s\nlog:\n%s", err, out, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return remote
}

// vsctl runs ovs-vsctl against db (test set-up and checks).
func vsctl(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ovs-vsctl", append([]string{"--db=" + db, "--no-wait", "--timeout=5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-vsctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestOVSDB(t *testing.T) {
	db := ovsdb(t)
	vsctl(t, db, "add-br", "br0", "--", "add-port", "br0", "p1", "--", "add-port", "br0", "p2",
		"--", "add-port", "br0", "p3", "--", "add-br", "br1", "--", "add-port", "br1", "q1")
	// p3 is configured by hand and not vflink's: it must stay as it is.
	vsctl(t, db, "set", "Port", "p3", "vlan_mode=trunk", "trunks=[99]", "external_ids:owner=operator")
	vsctl(t, db, "set", "Port", "p2", "external_ids:foo=bar")

	ctx := context.Background()
	d := New(Config{Name: "ovs1", DB: db, Bridge: "br0", NoWait: true})
	defer d.Close()

	running := func() []string {
		t.Helper()
		got, err := d.Running(ctx)
		if err != nil {
			t.Fatalf("Running: %v", err)
		}
		return got
	}
	if got := running(); len(got) != 0 {
		t.Fatalf("Running before any Apply = %q, want none", got)
	}

	// Apply then Running equals desired.
	desired, err := Render([]api.Attachment{
		{Device: "ovs1", Interface: "p1", NetworkID: "blue", VLAN: 10},
		{Device: "ovs1", Interface: "p1", NetworkID: "red", VLAN: 20},
		{Device: "ovs1", Interface: "p2", NetworkID: "red", VLAN: 20},
		{Device: "ovs1", Interface: "p2", NetworkID: "green", VLAN: 5, Native: true},
	}, "ovs1")
	if err != nil {
		t.Fatal(err)
	}
	rev, err := d.Apply(ctx, desired)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rev != "" {
		t.Errorf("revision = %q, want \"\" (OVS has none)", rev)
	}
	if diff := cmp.Diff(desired, running()); diff != "" {
		t.Errorf("Running after Apply (-desired +running):\n%s", diff)
	}
	if got := vsctl(t, db, "get", "Port", "p2", "tag"); got != "5" {
		t.Errorf("p2 tag = %s, want 5", got)
	}

	// Apply again with p2 gone: p2 is parked and unmarked, its other external_ids kept.
	desired2 := []string{"port p1 vlan_mode=trunk trunks=10"}
	if _, err := d.Apply(ctx, desired2); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if diff := cmp.Diff(desired2, running()); diff != "" {
		t.Errorf("Running after the second Apply (-desired +running):\n%s", diff)
	}
	for col, want := range map[string]string{
		"vlan_mode": "access", "tag": "4095", "trunks": "[]", "external_ids": `{foo=bar}`,
	} {
		if got := vsctl(t, db, "get", "Port", "p2", col); got != want {
			t.Errorf("parked p2 %s = %s, want %s", col, got, want)
		}
	}
	// The operator's port is untouched.
	for col, want := range map[string]string{
		"vlan_mode": "trunk", "trunks": "[99]", "external_ids": `{owner=operator}`,
	} {
		if got := vsctl(t, db, "get", "Port", "p3", col); got != want {
			t.Errorf("p3 %s = %s, want %s (not vflink's)", col, got, want)
		}
	}

	// Drift by hand shows in Running.
	vsctl(t, db, "set", "Port", "p1", "trunks=[10,30]")
	if diff := cmp.Diff([]string{"port p1 vlan_mode=trunk trunks=10,30"}, running()); diff != "" {
		t.Errorf("Running after a hand change (-want +got):\n%s", diff)
	}

	// A port of another bridge, or no port at all: an error naming it and the bridge; nothing changes.
	for _, port := range []string{"q1", "nope"} {
		_, err := d.Apply(ctx, []string{"port p1 vlan_mode=trunk trunks=10", "port " + port + " vlan_mode=trunk trunks=10"})
		if err == nil || !strings.Contains(err.Error(), "port "+port+" is not on bridge br0") {
			t.Errorf("Apply(%s) = %v, want an error naming the port and the bridge", port, err)
		}
	}
	if diff := cmp.Diff([]string{"port p1 vlan_mode=trunk trunks=10,30"}, running()); diff != "" {
		t.Errorf("Running after refused Applies (-want +got):\n%s", diff)
	}
	if got := vsctl(t, db, "get", "Port", "q1", "external_ids"); got != "{}" {
		t.Errorf("q1 external_ids = %s, want {} (another bridge's port)", got)
	}

	// Empty desired parks everything vflink manages.
	if _, err := d.Apply(ctx, nil); err != nil {
		t.Fatalf("Apply(nil): %v", err)
	}
	if got := running(); len(got) != 0 {
		t.Errorf("Running after Apply(nil) = %q, want none", got)
	}
	if got := vsctl(t, db, "get", "Port", "p1", "tag"); got != "4095" {
		t.Errorf("p1 tag after Apply(nil) = %s, want 4095 (parked)", got)
	}

	// A bad desired line is refused before ovs-vsctl runs.
	if _, err := d.Apply(ctx, []string{"port p1 vlan_mode=trunk trunks=10 -- del-br br0"}); err == nil {
		t.Error("Apply(injection attempt) = nil error, want one")
	}
	if got := vsctl(t, db, "list-br"); got != "br0\nbr1" {
		t.Errorf("bridges = %q, want br0 and br1", got)
	}
}

func TestOVSDBErrors(t *testing.T) {
	db := ovsdb(t)
	ctx := context.Background()
	d := New(Config{Name: "ovs1", DB: db, Bridge: "nobr", NoWait: true})
	_, err := d.Running(ctx)
	if err == nil || !strings.Contains(err.Error(), "nobr") {
		t.Errorf("Running on a missing bridge = %v, want an error naming it", err)
	}
	d = New(Config{Name: "ovs1", DB: db, Bridge: "br0", Vsctl: "/nonexistent/ovs-vsctl"})
	if _, err := d.Running(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/ovs-vsctl") {
		t.Errorf("Running with a missing ovs-vsctl = %v, want an error naming it", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	d = New(Config{Name: "ovs1", DB: db, Bridge: "br0"})
	if _, err := d.Running(cctx); err == nil {
		t.Error("Running with a cancelled context = nil error, want one")
	}
}

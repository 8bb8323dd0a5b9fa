package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenstackCLINeutronExtensions drives issue 19's attributes through the real openstack CLI:
// external networks, the agent list, security group rules, allowed address pairs, tags, subnet
// pools, quotas.
func TestOpenstackCLINeutronExtensions(t *testing.T) {
	cli, err := exec.LookPath("openstack")
	if err != nil {
		t.Skip("the openstack CLI is not installed (apt-get install python3-openstackclient); .ci/run installs it")
	}
	if testing.Short() {
		t.Skip("runs the openstack CLI about 20 times")
	}
	const adminPW = "S3cret-admin-pw"
	url, _ := startKeystoneServer(t, adminPW)
	env := []string{"OS_AUTH_URL=" + url + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin", "OS_PASSWORD=" + adminPW,
		"OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne"}
	must := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	must("network", "create", "--tag", "blue", "EXT")
	must("network", "set", "--external", "EXT")
	if got := must("network", "show", "EXT", "-f", "value", "-c", "router:external"); got != "True" && got != "External" {
		t.Errorf("router:external after network set --external: %q", got)
	}
	if got := must("network", "list", "--external", "-f", "value", "-c", "Name"); got != "EXT" {
		t.Errorf("network list --external: %q", got)
	}
	if got := must("network", "list", "--tags", "blue", "-f", "value", "-c", "Name"); got != "EXT" {
		t.Errorf("network list --tags blue: %q", got)
	}
	// no agent has registered: an empty list, not an error
	if got := must("network", "agent", "list", "-f", "json"); got != "[]" {
		t.Errorf("network agent list: %q", got)
	}
	must("security", "group", "create", "web")
	must("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "10.0.0.0/8", "web")
	var rules []map[string]any
	json.Unmarshal([]byte(must("security", "group", "rule", "list", "web", "-f", "json")), &rules)
	found := false
	for _, r := range rules {
		if r["IP Protocol"] == "tcp" && r["Port Range"] == "22:22" && r["IP Range"] == "10.0.0.0/8" {
			found = true
		}
	}
	if !found {
		t.Errorf("the tcp/22 rule is not listed: %v", rules)
	}
	must("subnet", "pool", "create", "--pool-prefix", "10.20.0.0/16", "--default-prefix-length", "24", "SP")
	must("network", "create", "N")
	must("subnet", "create", "--subnet-pool", "SP", "--network", "N", "S")
	if got := must("subnet", "show", "S", "-f", "value", "-c", "cidr"); got != "10.20.0.0/24" {
		t.Errorf("subnet from pool SP: cidr %q, want 10.20.0.0/24", got)
	}
	must("port", "create", "--network", "N", "--security-group", "web", "--allowed-address", "ip-address=10.20.0.200", "P")
	if got := must("port", "show", "P", "-f", "value", "-c", "allowed_address_pairs"); !strings.Contains(got, "10.20.0.200") {
		t.Errorf("allowed_address_pairs: %q", got)
	}
	must("quota", "set", "--ports", "7", "admin")
	if got := must("quota", "show", "admin", "-f", "json"); !strings.Contains(got, `"ports": 7`) {
		t.Errorf("quota show: %s", got)
	}
}

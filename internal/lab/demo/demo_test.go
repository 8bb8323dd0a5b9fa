package demo_test

// The README's main command, as CI runs it: every scenario of `vflink lab demo` on a real lab
// (root, Open vSwitch, lldpd, the openstack CLI). The demo itself asserts the positive and
// negative pings, the switch configuration (read from the simulated leaves), the drift repair and
// the restored VF state; this test asserts it ends with "demo: PASS <scenario>" and that the lab
// is gone afterwards.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vflink/vflink/internal/lab/topo"
	"github.com/vflink/vflink/internal/lab/topo/topotest"
)

func TestDemoScenarios(t *testing.T) {
	topotest.SkipUnlessLab(t)
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("skipping: the openstack CLI is not installed (apt-get install -y python3-openstackclient); CI installs it")
	}
	release, err := topo.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	bin := filepath.Join(t.TempDir(), "vflink")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vflink/vflink/cmd/vflink").CombinedOutput(); err != nil {
		t.Fatalf("build vflink: %v\n%s", err, out)
	}
	dir := fmt.Sprintf("/run/vflink-labtest-%d", os.Getpid())
	t.Cleanup(func() { exec.Command(bin, "lab", "down", "--dir", dir).Run() })
	for _, s := range scenarios {
		t.Run(s, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, "lab", "demo", "--scenario", s, "--dir", dir)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			last := ""
			for i := len(lines) - 1; i >= 0; i-- {
				if strings.HasPrefix(lines[i], "demo: ") {
					last = lines[i]
					break
				}
			}
			if err != nil || !strings.HasPrefix(last, "demo: PASS "+s+" ") {
				t.Fatalf("scenario %s: %v, last line %q\n%s", s, err, last, out.String())
			}
			t.Logf("%s", last)
			for _, want := range []string{"ok: demo-vm1 reaches", "does not reach", "restored"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("scenario %s: the output has no %q", s, want)
				}
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("scenario %s: the lab directory %s is still there after the demo", s, dir)
			}
		})
	}
}

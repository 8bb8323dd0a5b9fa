package hypervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"libvirt.org/go/libvirtxml"
)

// testDefaultUUID is the UUID of the "test" domain that test:///default always has running.
const testDefaultUUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

func needVirsh(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("virsh")
	if err != nil {
		t.Skip("virsh not found (apt-get install libvirt-clients); CI installs it")
	}
	return path
}

// testLibvirt is a Libvirt on libvirt's test driver in replay mode (see replay).
func testLibvirt(t *testing.T) (Libvirt, *replay) {
	t.Helper()
	needVirsh(t)
	r := newReplay(t.TempDir())
	return Libvirt{URI: "test:///default", replay: r}, r
}

// TestTestDriverDefinesGolden defines each golden domain in libvirt's test driver and reads it
// back, in one virsh process: libvirt's own parser accepts the files, with the interfaces intact.
func TestTestDriverDefinesGolden(t *testing.T) {
	virsh := needVirsh(t)
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join("testdata", g.file))
			if err != nil {
				t.Fatal(err)
			}
			script := "define " + quote(path) + "; dumpxml " + g.server.ID
			out, err := exec.Command(virsh, "-c", "test:///default", script).CombinedOutput()
			if err != nil {
				t.Fatalf("virsh -c test:///default %q: %v\n%s", script, err, out)
			}
			_, dump, ok := strings.Cut(string(out), "\n\n")
			if !ok || strings.Contains(string(out), "error:") {
				t.Fatalf("virsh -c test:///default %q printed:\n%s", script, out)
			}
			var d libvirtxml.Domain
			if err := d.Unmarshal(dump); err != nil {
				t.Fatalf("parse dumpxml: %v\n%s", err, dump)
			}
			want, err := buildDomain(g.server, "kvm")
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != want.Name || d.UUID != want.UUID {
				t.Errorf("test driver defined %s %s, want %s %s", d.Name, d.UUID, want.Name, want.UUID)
			}
			if diff := cmp.Diff(interfaceKeys(want), interfaceKeys(&d)); diff != "" {
				t.Errorf("interfaces after define differ (-want +got):\n%s", diff)
			}
		})
	}
}

// verbs lists the first word of each state-changing command the replay journal holds.
func verbs(r *replay) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v []string
	for _, c := range r.journal {
		v = append(v, c[0])
	}
	return v
}

func TestLibvirtLifecycleOnTestDriver(t *testing.T) {
	ctx := context.Background()
	l, r := testLibvirt(t)
	s := goldens[0].server
	id := s.ID

	running := func() []string {
		t.Helper()
		ids, err := l.Running(ctx)
		if err != nil {
			t.Fatalf("Running: %v", err)
		}
		return ids
	}
	if got := running(); len(got) != 0 {
		t.Fatalf("Running on a fresh test driver = %v, want none (its own \"test\" domain is not vflink's)", got)
	}

	if err := l.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if diff := cmp.Diff([]string{id}, running()); diff != "" {
		t.Errorf("Running after Start (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"define", "start"}, verbs(r)); diff != "" {
		t.Errorf("commands after Start (-want +got):\n%s", diff)
	}

	// Start again: the running domain has the same interfaces and is left alone.
	before := len(r.ran())
	if err := l.Start(ctx, s); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if diff := cmp.Diff([]string{"define", "start"}, verbs(r)); diff != "" {
		t.Errorf("second Start changed the domain (-want +got):\n%s", diff)
	}
	var lastCmds []string
	for _, argv := range r.ran()[before:] {
		script := argv[len(argv)-1]
		lastCmds = append(lastCmds, script[strings.LastIndex(script, "; ")+2:])
	}
	if diff := cmp.Diff([]string{"list --all --uuid --name", "dumpxml " + id}, lastCmds); diff != "" {
		t.Errorf("second Start ran (-want +got):\n%s", diff)
	}

	// A changed VLAN is applied: destroy, define, start.
	s2 := s
	s2.Interfaces = []Interface{seedInterface}
	s2.Interfaces[0].VLAN = 16
	if err := l.Start(ctx, s2); err != nil {
		t.Fatalf("Start with VLAN 16: %v", err)
	}
	if diff := cmp.Diff([]string{"define", "start", "destroy", "define", "start"}, verbs(r)); diff != "" {
		t.Errorf("commands after changing the VLAN (-want +got):\n%s", diff)
	}
	out, err := l.virsh(ctx, "dumpxml", id)
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]hostdevKey{{MAC: "02:5a:0d:c4:39:77", PCI: "0000:83:13.3", VLAN: 16}}, interfaceKeys(&d)); diff != "" {
		t.Errorf("interfaces after the VLAN change (-want +got):\n%s", diff)
	}
	if d.ID == nil {
		t.Errorf("domain is not running after Start:\n%s", out)
	}

	// A renamed server is undefined under its old name first.
	s3 := s2
	s3.Name = "renamed"
	if err := l.Start(ctx, s3); err != nil {
		t.Fatalf("Start renamed: %v", err)
	}
	if diff := cmp.Diff([]string{"define", "start", "destroy", "define", "start", "destroy", "undefine", "define", "start"}, verbs(r)); diff != "" {
		t.Errorf("commands after renaming (-want +got):\n%s", diff)
	}

	// A second server.
	other := goldens[1].server
	if err := l.Start(ctx, other); err != nil {
		t.Fatalf("Start %s: %v", other.ID, err)
	}
	if diff := cmp.Diff([]string{other.ID, id}, running()); diff != "" {
		t.Errorf("Running with two servers (-want +got, sorted):\n%s", diff)
	}

	// Stop removes the domain; stopping again is a no-op.
	if err := l.Stop(ctx, id); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if diff := cmp.Diff([]string{other.ID}, running()); diff != "" {
		t.Errorf("Running after Stop (-want +got):\n%s", diff)
	}
	n := len(verbs(r))
	if err := l.Stop(ctx, id); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if got := verbs(r)[n:]; len(got) != 0 {
		t.Errorf("second Stop ran %v, want nothing", got)
	}
	all, err := l.virsh(ctx, "list", "--all", "--uuid", "--name")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(all, id) {
		t.Errorf("stopped server is still defined:\n%s", all)
	}
}

// TestLibvirtStopsOnlyItsOwnDomains: the test driver's own "test" domain is not vflink's.
func TestLibvirtStopsOnlyItsOwnDomains(t *testing.T) {
	l, r := testLibvirt(t)
	err := l.Stop(context.Background(), testDefaultUUID)
	if err == nil || !strings.Contains(err.Error(), "domain test with uuid "+testDefaultUUID+" is not managed by vflink") {
		t.Errorf("Stop of the test driver's own domain: error %v, want one saying it is not vflink's", err)
	}
	if got := verbs(r); len(got) != 0 {
		t.Errorf("Stop of a foreign domain ran %v", got)
	}
}

// TestLibvirtErrorsNameTheCommand checks that virsh failures carry the command and virsh's
// stderr, in replay mode and when each call is its own virsh process.
func TestLibvirtErrorsNameTheCommand(t *testing.T) {
	ctx := context.Background()
	l, r := testLibvirt(t)
	const missing = "00000000-0000-4000-8000-000000000001"
	_, err := l.virsh(ctx, "start", missing)
	if err == nil {
		t.Fatal("starting a domain that does not exist succeeded")
	}
	for _, want := range []string{"virsh -c test:///default '", "'echo " + replayMarker + "; start " + missing + "'", "failed to get domain '" + missing + "'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := verbs(r); len(got) != 0 {
		t.Errorf("a failed command entered the replay journal: %v", got)
	}

	// Without replay, every virsh call is a fresh test driver: define succeeds in one process and
	// the start in the next finds no domain. Start says exactly that.
	plain := Libvirt{URI: "test:///default"}
	err = plain.Start(ctx, goldens[0].server)
	if err == nil {
		t.Fatal("Start on test:///default without replay succeeded; the test driver keeps no state between virsh processes")
	}
	for _, want := range []string{"virsh -c test:///default start " + goldens[0].server.ID, "failed to get domain"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// Read-only calls work without replay.
	ids, err := plain.Running(ctx)
	if err != nil || len(ids) != 0 {
		t.Errorf("Running without replay = %v, %v; want none, nil", ids, err)
	}
	if err := plain.Stop(ctx, goldens[0].server.ID); err != nil {
		t.Errorf("Stop of an unknown server without replay: %v", err)
	}
}

func TestLibvirtBadInput(t *testing.T) {
	ctx := context.Background()
	l := Libvirt{URI: "test:///default", Virsh: "/nonexistent/virsh"} // nothing may run
	s := goldens[0].server
	s.Interfaces = []Interface{{MAC: "02:5a:0d:c4:39:77", PCIAddress: "0000:83:13.3", VLAN: 5000}}
	if err := l.Start(ctx, s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "vlan 5000") {
		t.Errorf("Start with VLAN 5000: error %v, want ErrInvalid naming vlan 5000", err)
	}
	if err := l.Stop(ctx, "not-a-uuid"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"not-a-uuid"`) {
		t.Errorf("Stop(not-a-uuid): error %v, want ErrInvalid naming the id", err)
	}
	if _, err := l.Running(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/virsh") {
		t.Errorf("Running with a missing virsh binary: error %v, want one naming the binary", err)
	}
	if _, err := (Libvirt{}).Running(ctx); err == nil || !strings.Contains(err.Error(), "no libvirt URI") {
		t.Errorf("Running without URI: error %v, want one about the missing URI", err)
	}
}

func TestParseList(t *testing.T) {
	out := "6695eb01-f6a4-8304-79aa-97f2502e193f test\n6A1F0E1C-2D3B-4C5D-8E9F-0A1B2C3D4E5F vflink-x\n\n"
	got, err := parseList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{testDefaultUUID: "test", "6a1f0e1c-2d3b-4c5d-8e9f-0a1b2c3d4e5f": "vflink-x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseList (-want +got):\n%s", diff)
	}
	for _, bad := range []string{" Id   Name   State\n", "vflink-x\n", "notauuid vflink-x\n"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) accepted it", bad)
		}
	}
}

func TestQuote(t *testing.T) {
	virsh := needVirsh(t)
	for _, s := range []string{"plain", "two words", "it's", `back\slash`, "semi;colon", `"dq"`} {
		out, err := exec.Command(virsh, "-c", "test:///default", "echo "+quote(s)).CombinedOutput()
		if err != nil {
			t.Fatalf("virsh echo %s: %v\n%s", quote(s), err, out)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != s {
			t.Errorf("virsh read quote(%q) = %s as %q", s, quote(s), got)
		}
	}
}

// TestReplayReportsFailedReplay: virsh exits 0 when only an earlier command of a script fails, so
// the replay reads stderr. Removing the file a replayed define reads makes the replay fail.
func TestReplayReportsFailedReplay(t *testing.T) {
	ctx := context.Background()
	l, r := testLibvirt(t)
	if err := l.Start(ctx, goldens[0].server); err != nil {
		t.Fatalf("Start: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(r.dir, "vflink-domain-*.xml"))
	if err != nil || len(files) != 1 {
		t.Fatalf("replay dir holds %v (%v), want one domain file", files, err)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	_, err = l.Running(ctx)
	if err == nil || !strings.Contains(err.Error(), "a replayed command failed") || !strings.Contains(err.Error(), files[0]) {
		t.Errorf("Running after its replayed define lost its file: error %v, want one about the failed replay naming %s", err, files[0])
	}
}

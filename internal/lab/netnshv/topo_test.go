package netnshv_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
	"github.com/vflink/vflink/internal/lab/labnic"
	"github.com/vflink/vflink/internal/lab/labnic/labnictest"
	"github.com/vflink/vflink/internal/lab/netnshv"
	"github.com/vflink/vflink/internal/lab/topo"
)

// TestOnTopology runs the NIC backend and the hypervisor with their production defaults (the
// lab's namespace names, OVS_RUNDIR, sysfs tree) on a lab that topo.Up built: two VMs on host 1
// whose VFs the agent's sriov.Apply put in one access VLAN reach each other through the NIC's
// VEB, and a disabled VF cuts them apart.
func TestOnTopology(t *testing.T) {
	labnictest.Require(t)
	if m := topo.Missing(); len(m) > 0 {
		t.Skipf("skipping: this machine lacks %s (%s)", strings.Join(m, ", "), topo.AptInstall)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	release, err := topo.Acquire(ctx)
	if err != nil {
		t.Fatalf("waiting for the machine's lab lock %s: %v", topo.MachineLock, err)
	}
	t.Cleanup(release)
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} { // lldpd's helpers run as _lldpd
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(tmp, "lab")
	t.Cleanup(func() {
		if err := topo.Down(context.Background(), dir, nil); err != nil {
			t.Errorf("topo.Down: %v", err)
		}
	})
	p := lab.Plan{Hosts: 1, PFsPerHost: 1, VFsPerPF: 2, Leaves: 1, Dir: dir}
	if _, err := topo.Up(ctx, p, nil); err != nil {
		t.Fatalf("topo.Up: %v", err)
	}
	nic := labnic.New(labnic.Config{Plan: p, Host: 1})
	hv := netnshv.New(netnshv.Config{Plan: p, Host: 1})

	dev, err := sriov.NewFS(p.SysfsRoot(1)).PCIDevice(lab.PFPCI(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for n, mac := range []string{"02:5a:0d:00:01:01", "02:5a:0d:00:01:02"} {
		hw, _ := net.ParseMAC(mac)
		if err := sriov.Apply(nic, "ens1f0", n, sriov.VFState{MAC: hw, VLAN: 100, SpoofCheck: true}); err != nil {
			t.Fatalf("Apply vf %d: %v", n, err)
		}
		id := uuid.NewString()
		ids = append(ids, id)
		t.Cleanup(func() {
			if err := hv.Stop(context.Background(), id); err != nil {
				t.Errorf("Stop(%s): %v", id, err)
			}
		})
		s := hypervisor.Server{ID: id, Interfaces: []hypervisor.Interface{{MAC: mac, PCIAddress: dev.VFs[n], VLAN: 100}}}
		if err := hv.Start(ctx, s); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if out, err := topo.Exec(ctx, lab.VMNS(id), "ip", "addr", "add", "10.247.253."+string(rune('1'+n))+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("address in %s: %v: %s", lab.VMNS(id), err, out)
		}
	}
	a := lab.VMNS(ids[0])
	ok := false
	for range 5 {
		if ok = labnictest.Ping(a, "10.247.253.2"); ok {
			break
		}
	}
	if !ok {
		t.Fatal("two VMs whose VFs are in VLAN 100 cannot reach each other on the lab's NIC bridge")
	}
	if err := nic.SetLinkState("ens1f0", 1, sriov.LinkStateDisable); err != nil {
		t.Fatal(err)
	}
	if labnictest.Ping(a, "10.247.253.2") {
		t.Error("a disabled VF still passes traffic")
	}
	if got, err := hv.Running(ctx); err != nil || len(got) != 2 {
		t.Errorf("Running = %v, %v; want both VMs", got, err)
	}
}

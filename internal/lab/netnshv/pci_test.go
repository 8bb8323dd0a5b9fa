package netnshv

import (
	"errors"
	"testing"

	"github.com/vflink/vflink/internal/host/hypervisor"
	"github.com/vflink/vflink/internal/host/sriov"
	"github.com/vflink/vflink/internal/lab"
)

// TestVFByPCI maps PCI addresses to VFs from the host's sysfs tree and, without one, from
// WriteFakeSysfs's default layout: both must agree.
func TestVFByPCI(t *testing.T) {
	p := lab.Plan{Hosts: 2, PFsPerHost: 2, VFsPerPF: 8, Leaves: 1, Dir: t.TempDir()}
	computed := New(Config{Plan: p, Host: 2})
	for pf, vfs := range map[string]map[int]string{
		"ens1f0": {0: "0000:82:10.0", 3: "0000:82:10.6", 7: "0000:82:11.6"},
		"ens1f1": {0: "0000:82:10.1", 5: "0000:82:11.3"},
	} {
		for vf, addr := range vfs {
			gotPF, gotVF, err := computed.vfByPCI(addr)
			if err != nil || gotPF != pf || gotVF != vf {
				t.Errorf("vfByPCI(%s) without sysfs = %s %d %v, want %s %d", addr, gotPF, gotVF, err, pf, vf)
			}
		}
	}

	var fake []sriov.FakePF
	for k := range p.PFsPerHost {
		fake = append(fake, sriov.FakePF{Name: lab.PFName(k), PCIAddress: lab.PFPCI(2, k), TotalVFs: 8, NumVFs: 8})
	}
	if err := sriov.WriteFakeSysfs(p.SysfsRoot(2), fake); err != nil {
		t.Fatal(err)
	}
	fs := sriov.NewFS(p.SysfsRoot(2))
	for k := range p.PFsPerHost {
		dev, err := fs.PCIDevice(lab.PFPCI(2, k))
		if err != nil {
			t.Fatal(err)
		}
		for n, addr := range dev.VFs {
			gotPF, gotVF, err := computed.vfByPCI(addr)
			if err != nil || gotPF != lab.PFName(k) || gotVF != n {
				t.Errorf("vfByPCI(%s) from sysfs = %s %d %v, want %s %d", addr, gotPF, gotVF, err, lab.PFName(k), n)
			}
		}
	}
	for _, addr := range []string{"0000:81:10.0", "0000:82:00.0", "0000:82:12.0", "82:10.0", ""} {
		if _, _, err := computed.vfByPCI(addr); !errors.Is(err, hypervisor.ErrInvalid) {
			t.Errorf("vfByPCI(%q) = %v, want ErrInvalid", addr, err)
		}
	}
}

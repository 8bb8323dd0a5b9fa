package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadAgentConfigLab(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (agentConfig, error) {
		t.Helper()
		path := filepath.Join(dir, "agent.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := loadAgentConfig(path)
		return cfg, err
	}
	const spec = `"device_spec": [{"devname": "ens1f*", "physical_network": "sriov"}]`
	const labObj = `"lab": {"dir": "/run/vflink-lab", "host": 2, "hosts": 2, "pfs_per_host": 2, "vfs_per_pf": 8, "leaves": 2}`

	cfg, err := load(`{` + spec + `, "nic": "lab", "hypervisor": "netns", "lldp": "lldpd:/run/vflink-lab/lldpd-h2.socket", ` + labObj + `}`)
	if err != nil {
		t.Fatalf("lab config: %v", err)
	}
	want := agentLabConfig{Dir: "/run/vflink-lab", Host: 2, Hosts: 2, PFsPerHost: 2, VFsPerPF: 8, Leaves: 2}
	if diff := cmp.Diff(want, *cfg.Lab); diff != "" {
		t.Errorf("lab (-want +got):\n%s", diff)
	}
	if cfg.SysfsRoot != "/run/vflink-lab/sys-h2" {
		t.Errorf("sysfs_root defaults to %q with a lab NIC, want the lab host's tree /run/vflink-lab/sys-h2", cfg.SysfsRoot)
	}
	if cfg, err := load(`{` + spec + `}`); err != nil || cfg.SysfsRoot != "/sys" || cfg.NIC != "netlink" || cfg.LLDP != "auto" {
		t.Errorf("plain config = %+v, %v; want /sys, netlink, auto", cfg, err)
	}

	for body, wantErr := range map[string]string{
		`{` + spec + `, "nic": "lab"}`:          `need "lab"`,
		`{` + spec + `, "hypervisor": "netns"}`: `need "lab"`,
		`{` + spec + `, "nic": "nope"}`:         `nic "nope" is not known; allowed: netlink, lab`,
		`{` + spec + `, "hypervisor": "xen"}`:   `hypervisor "xen" is not known; allowed: none, libvirt, netns`,
		`{` + spec + `, "lldp": "lldpd:"}`:      `lldp "lldpd:" is not known`,
		`{` + spec + `, "lldp": "snmp"}`:        `allowed: auto, none, lldpd:<control socket>`,
		`{` + spec + `, "nic": "lab", "lab": {"dir": "/x", "host": 3, "hosts": 2, "pfs_per_host": 1, "vfs_per_pf": 1, "leaves": 1}}`: `lab host 3 is out of range 1-2`,
		`{` + spec + `, "nic": "lab", "lab": {"dir": "/x", "host": 1, "hosts": 1, "pfs_per_host": 9, "vfs_per_pf": 1, "leaves": 1}}`: `--pfs-per-host 9 is out of range`,
	} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("load(%s) = %v, want an error containing %q", body, err, wantErr)
		}
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vflink/vflink/internal/host/sriov"
)

// vflink agent inventory --nova prints what the device_spec selects in Nova's PCI device form,
// so a compute host's [pci] device_spec can be set to exactly those VFs.
func TestInventoryNovaForm(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "sys")
	if err := sriov.WriteFakeSysfs(root, []sriov.FakePF{{Name: "ens1f1", PCIAddress: "0000:83:00.1", TotalVFs: 4, NumVFs: 2}}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agent.json")
	os.WriteFile(cfg, []byte(`{"device_spec": [{"devname": "ens1f1", "physical_network": "sriov"}], "sysfs_root": "`+root+`"}`), 0o600)
	cmd := newInventoryCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--config", cfg, "--nova"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var devs []map[string]string
	if err := json.Unmarshal(out.Bytes(), &devs); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(devs) != 3 || devs[0]["dev_type"] != "type-PF" || devs[0]["address"] != "0000:83:00.1" {
		t.Fatalf("devices: %v", devs)
	}
	for _, d := range devs[1:] {
		if d["dev_type"] != "type-VF" || d["parent_addr"] != "0000:83:00.1" || d["physical_network"] != "sriov" || d["vendor_id"] == "" || d["product_id"] == "" {
			t.Fatalf("VF entry %v", d)
		}
	}
}

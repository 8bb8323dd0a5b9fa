package sriov

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/sys-82599 from sys82599()")

const testdataSys = "testdata/sys-82599"

// sys82599 describes the committed tree testdata/sys-82599: a dual-port Intel 82599 card on NUMA
// node 1; port 0 (ens1f0) has SR-IOV disabled, port 1 (ens1f1) has 16 of its 63 VFs enabled.
// VFs 0-12 are bound to ixgbevf on the host (netdevs ens1f1v0-12), VF 13 is given to a VM
// (vfio-pci, as the seed's 83:13.3), VFs 14 and 15 are unbound.
func sys82599() []FakePF {
	vfs := map[int]FakeVF{13: {Driver: "vfio-pci"}, 14: {Driver: "-"}, 15: {Driver: "-"}}
	for i := range 13 {
		vfs[i] = FakeVF{Netdev: fmt.Sprintf("ens1f1v%d", i)}
	}
	return []FakePF{
		{Name: "ens1f0", PCIAddress: "0000:83:00.0", MAC: "90:e2:ba:8a:11:40", OperState: "down", NUMANode: 1},
		{Name: "ens1f1", PCIAddress: "0000:83:00.1", MAC: "90:e2:ba:8a:11:41", NUMANode: 1, TotalVFs: 63, NumVFs: 16, VFs: vfs},
	}
}

// vfAddrs82599 are the PCI addresses of ens1f1's 16 VFs: offset 128, stride 2 from 83:00.1.
var vfAddrs82599 = []string{
	"0000:83:10.1", "0000:83:10.3", "0000:83:10.5", "0000:83:10.7",
	"0000:83:11.1", "0000:83:11.3", "0000:83:11.5", "0000:83:11.7",
	"0000:83:12.1", "0000:83:12.3", "0000:83:12.5", "0000:83:12.7",
	"0000:83:13.1", "0000:83:13.3", "0000:83:13.5", "0000:83:13.7",
}

func TestUpdateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite " + testdataSys)
	}
	if err := os.RemoveAll(testdataSys); err != nil {
		t.Fatal(err)
	}
	if err := WriteFakeSysfs(testdataSys, sys82599()); err != nil {
		t.Fatal(err)
	}
}

func want82599VFs() []VF {
	var vfs []VF
	for i, a := range vfAddrs82599 {
		vf := VF{Index: i, PCIAddress: a, Vendor: "8086", Device: "10ed", Driver: "ixgbevf"}
		switch {
		case i < 13:
			vf.Netdev = fmt.Sprintf("ens1f1v%d", i)
		case i == 13:
			vf.Driver = "vfio-pci"
		default:
			vf.Driver = ""
		}
		vfs = append(vfs, vf)
	}
	return vfs
}

func want82599PF() PF {
	return PF{
		Name: "ens1f1", PCIAddress: "0000:83:00.1", MAC: "90:e2:ba:8a:11:41", LinkUp: true,
		PhysicalNetwork: "sriov", TotalVFs: 63, NumVFs: 16, NUMANode: 1,
		Vendor: "8086", Device: "10fb", Driver: "ixgbe", VFs: want82599VFs(),
	}
}

func TestScan82599(t *testing.T) {
	// A spec selecting both ports: ens1f1 becomes a PF; ens1f0 is a problem.
	specs := []DeviceSpec{{Address: "0000:83:00.*", PhysicalNetwork: "sriov"}}
	inv, err := NewFS(testdataSys).Scan(specs)
	if err != nil {
		t.Fatal(err)
	}
	want := Inventory{
		PFs:      []PF{want82599PF()},
		Problems: []string{"ens1f0 (0000:83:00.0) matches device_spec[0] but has no SR-IOV (no sriov_totalvfs)"},
	}
	if diff := cmp.Diff(want, inv); diff != "" {
		t.Errorf("Scan (-want +got):\n%s", diff)
	}
}

func TestScanSpecs(t *testing.T) {
	vfs := want82599VFs()
	pf := func(physnet string, trusted bool, vfs []VF) PF {
		p := want82599PF()
		p.PhysicalNetwork, p.Trusted, p.VFs = physnet, trusted, vfs
		return p
	}
	tests := []struct {
		name  string
		specs string
		want  Inventory
	}{
		{
			name:  "devname of the PF covers all VFs",
			specs: `[{"devname": "ens1f1", "physical_network": "sriov", "trusted": "true"}]`,
			want:  Inventory{PFs: []PF{pf("sriov", true, vfs)}},
		},
		{
			name:  "exact address",
			specs: `[{"address": "0000:83:00.1", "physical_network": "sriov"}]`,
			want:  Inventory{PFs: []PF{pf("sriov", false, vfs)}},
		},
		{
			name:  "PF vendor and product",
			specs: `[{"vendor_id": "8086", "product_id": "10FB", "physical_network": "sriov"}]`,
			want: Inventory{PFs: []PF{pf("sriov", false, vfs)}, Problems: []string{
				"ens1f0 (0000:83:00.0) matches device_spec[0] but has no SR-IOV (no sriov_totalvfs)"}},
		},
		{
			name:  "VF vendor and product select the VFs",
			specs: `[{"vendor_id": "8086", "product_id": "10ed", "physical_network": "sriov"}]`,
			want:  Inventory{PFs: []PF{pf("sriov", false, vfs)}},
		},
		{
			name:  "VF address glob selects some VFs",
			specs: `[{"address": "*:83:13.*", "physical_network": "sriov"}]`,
			want:  Inventory{PFs: []PF{pf("sriov", false, vfs[12:])}},
		},
		{
			name:  "VF netdev name selects one VF",
			specs: `[{"devname": "ens1f1v3", "physical_network": "sriov"}]`,
			want:  Inventory{PFs: []PF{pf("sriov", false, vfs[3:4])}},
		},
		{
			name: "first matching spec wins; conflicting physnet on VFs is a problem",
			specs: `[{"address": "0000:83:10.*", "physical_network": "a"},
			         {"address": "0000:83:11.1", "physical_network": "b"}]`,
			want: Inventory{PFs: []PF{pf("a", false, vfs[:4])}, Problems: []string{
				`ens1f1 vf 4 (0000:83:11.1) matches device_spec[1] for physical_network "b", but ens1f1 is on "a" from device_spec[0]; the VF is left out`}},
		},
		{
			name: "specs matching nothing and a non-PCI device",
			specs: `[{"devname": "ens9f0", "physical_network": "sriov"},
			         {"devname": "lo", "physical_network": "sriov"},
			         {"vendor_id": "15b3", "product_id": "1017", "physical_network": "sriov"}]`,
			want: Inventory{PFs: []PF{}, Problems: []string{
				"lo matches device_spec[1] but is not a PCI device",
				`device_spec[0] {"devname":"ens9f0","physical_network":"sriov"} matches no network device`,
				`device_spec[2] {"vendor_id":"15b3","product_id":"1017","physical_network":"sriov"} matches no network device`,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := ParseDeviceSpecs([]byte(tt.specs))
			if err != nil {
				t.Fatal(err)
			}
			inv, err := NewFS(testdataSys).Scan(specs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, inv); diff != "" {
				t.Errorf("Scan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScanInvalidSpecAndMissingRoot(t *testing.T) {
	_, err := NewFS(testdataSys).Scan([]DeviceSpec{{DevName: "ens1f1"}})
	if err == nil || !strings.Contains(err.Error(), "device_spec[0]: physical_network is required") {
		t.Errorf("Scan with a spec without physnet: got %v, want an error naming device_spec[0] and physical_network", err)
	}
	if _, err := NewFS(t.TempDir()).Scan(nil); err == nil {
		t.Error("Scan of an empty root: got no error, want one (no class/net)")
	}
}

func TestPCIDeviceVF(t *testing.T) {
	d, err := NewFS(testdataSys).PCIDevice("0000:83:13.3")
	if err != nil {
		t.Fatal(err)
	}
	want := PCIDevice{Address: "0000:83:13.3", Vendor: "8086", Device: "10ed", Driver: "vfio-pci",
		NUMANode: 1, PhysFn: "0000:83:00.1"}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("PCIDevice (-want +got):\n%s", diff)
	}
}

// TestGeneratorMatchesTestdata checks that the committed tree is exactly what WriteFakeSysfs
// writes for sys82599(), file by file and link by link, and that Scan reads both the same.
func TestGeneratorMatchesTestdata(t *testing.T) {
	gen := t.TempDir()
	if err := WriteFakeSysfs(gen, sys82599()); err != nil {
		t.Fatal(err)
	}
	committed, generated := readTree(t, testdataSys), readTree(t, gen)
	if diff := cmp.Diff(committed, generated); diff != "" {
		t.Errorf("WriteFakeSysfs differs from %s (-committed +generated; run go test -run TestUpdateTestdata -update):\n%s", testdataSys, diff)
	}
	specs := []DeviceSpec{{Address: "0000:83:00.*", PhysicalNetwork: "sriov"}}
	a, err := NewFS(testdataSys).Scan(specs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFS(gen).Scan(specs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("Scan of committed vs generated tree (-committed +generated):\n%s", diff)
	}
}

// readTree maps each path under root to "link -> target", "file: content" or "dir".
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(target) {
				t.Errorf("%s is an absolute link to %s; want relative links", rel, target)
			}
			tree[rel] = "link -> " + target
		case d.IsDir():
			tree[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tree[rel] = "file: " + string(bytes.TrimSpace(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func TestWriteFakeSysfs64VFs(t *testing.T) {
	root := t.TempDir()
	err := WriteFakeSysfs(root, []FakePF{{Name: "ens2f1", PCIAddress: "0000:3b:00.1", NUMANode: -1,
		TotalVFs: 64, NumVFs: 64, Device: "1572", VFDevice: "154c", Driver: "i40e", VFDriver: "iavf"}})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := NewFS(root).Scan([]DeviceSpec{{DevName: "ens2f1", PhysicalNetwork: "physnet1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.PFs) != 1 || len(inv.Problems) != 0 {
		t.Fatalf("Scan: got %d PFs and problems %q, want 1 PF and none", len(inv.PFs), inv.Problems)
	}
	pf := inv.PFs[0]
	if got, want := len(pf.VFs), 64; got != want {
		t.Fatalf("got %d VFs, want %d", got, want)
	}
	for _, c := range []struct {
		vf   int
		addr string
	}{{0, "0000:3b:10.1"}, {13, "0000:3b:13.3"}, {63, "0000:3b:1f.7"}} {
		if got := pf.VFs[c.vf]; got.PCIAddress != c.addr || got.Driver != "iavf" || got.Device != "154c" {
			t.Errorf("vf %d: got %+v, want address %s, driver iavf, device 154c", c.vf, got, c.addr)
		}
	}
	if pf.NUMANode != -1 || pf.Driver != "i40e" {
		t.Errorf("got NUMA node %d and driver %q, want -1 and i40e", pf.NUMANode, pf.Driver)
	}
}

func TestWriteFakeSysfsErrors(t *testing.T) {
	tests := []struct {
		name string
		pfs  []FakePF
		want string
	}{
		{"bad address", []FakePF{{Name: "x", PCIAddress: "83:00.1"}}, `PCI address like 0000:83:00.1`},
		{"too many VFs", []FakePF{{Name: "x", PCIAddress: "0000:83:00.1", TotalVFs: 4, NumVFs: 8}}, "num VFs 8 is out of range 0-4"},
		{"beyond bus ff", []FakePF{{Name: "x", PCIAddress: "0000:ff:00.1", TotalVFs: 128, NumVFs: 128}}, "beyond bus ff"},
		{"overlapping VFs", []FakePF{
			{Name: "a", PCIAddress: "0000:83:00.0", TotalVFs: 2, NumVFs: 2, VFStride: 1},
			{Name: "b", PCIAddress: "0000:83:00.1", TotalVFs: 2, NumVFs: 2, VFStride: 1},
		}, "PCI address 0000:83:10.1 is used by a vf 1 and b vf 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFakeSysfs(t.TempDir(), tt.pfs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

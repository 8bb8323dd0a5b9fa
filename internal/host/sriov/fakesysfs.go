package sriov

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FakePF describes a PCI network function for WriteFakeSysfs.
type FakePF struct {
	Name       string // PF netdev, "ens1f1"
	PCIAddress string // "0000:83:00.1"
	MAC        string // "" → a locally administered MAC derived from Name
	OperState  string // "" → "up"
	Vendor     string // "" → "8086"
	Device     string // "" → "10fb" (82599 PF)
	Driver     string // "" → "ixgbe"
	NUMANode   int    // -1 when the platform does not say

	// TotalVFs 0 writes no sriov_* files: a function without SR-IOV.
	TotalVFs int
	NumVFs   int
	VFDevice string // "" → "10ed" (82599 VF)
	VFDriver string // default driver of the VFs; "" → "ixgbevf"
	// VFOffset and VFStride place VF n at routing ID PF + VFOffset + n*VFStride, as the
	// capability's First VF Offset and VF Stride do; 0 → 128 and 2 (82599: PF 83:00.1 has VFs
	// 83:10.1, 83:10.3, ... and VF 13 at 83:13.3).
	VFOffset, VFStride int
	// VFs overrides the driver and host netdev of single VFs, by index.
	VFs map[int]FakeVF
}

// FakeVF overrides one VF of a FakePF.
type FakeVF struct {
	Driver string // "-" for no driver (unbound); "" keeps FakePF.VFDriver
	Netdev string // netdev name on the host, e.g. "ens1f1v0"; needs a netdev driver
	MAC    string // the netdev's MAC; "" → derived from Netdev
}

// WriteFakeSysfs writes the sysfs layout the kernel shows for pfs under root (which it creates):
//
//	devices/pci0000:80/0000:80:03.0/<pf>/{vendor,device,numa_node,sriov_*,virtfnN,driver,net/<if>/}
//	devices/pci0000:80/0000:80:03.0/<vf>/{vendor,device,numa_node,physfn,driver,net/<if>/}
//	bus/pci/devices/<addr> -> ../../../devices/...
//	bus/pci/drivers/<driver>/<addr> -> ../../../../devices/...
//	class/net/<if> -> ../../devices/.../net/<if>  (and class/net/lo, as every host has it)
//
// with relative symlinks, so the tree can be copied or committed. Scan and FindMAC read it as
// they read /sys.
func WriteFakeSysfs(root string, pfs []FakePF) error {
	w := fakeWriter{root: root}
	w.netdev(filepath.Join("devices", "virtual", "net", "lo"), "lo", "00:00:00:00:00:00", "unknown", "")
	seen := map[string]string{}
	claim := func(addr, what string) {
		if prev, dup := seen[addr]; dup && w.err == nil {
			w.err = fmt.Errorf("fake sysfs: PCI address %s is used by %s and %s", addr, prev, what)
		}
		seen[addr] = what
	}
	for _, pf := range pfs {
		pf = pf.withDefaults()
		if pf.Name == "" || !IsPCIAddress(pf.PCIAddress) {
			return fmt.Errorf("fake sysfs: PF %q at %q: want a name and a PCI address like 0000:83:00.1", pf.Name, pf.PCIAddress)
		}
		if pf.NumVFs < 0 || pf.NumVFs > pf.TotalVFs {
			return fmt.Errorf("fake sysfs: %s: num VFs %d is out of range 0-%d", pf.Name, pf.NumVFs, pf.TotalVFs)
		}
		claim(pf.PCIAddress, pf.Name)
		bridge := filepath.Join("devices", "pci"+pf.PCIAddress[:4]+":80", pf.PCIAddress[:4]+":80:03.0")
		dir := filepath.Join(bridge, pf.PCIAddress)
		w.function(dir, pf.PCIAddress, pf.Vendor, pf.Device, pf.Driver, pf.NUMANode)
		if pf.TotalVFs > 0 {
			w.file(filepath.Join(dir, "sriov_totalvfs"), fmt.Sprint(pf.TotalVFs))
			w.file(filepath.Join(dir, "sriov_numvfs"), fmt.Sprint(pf.NumVFs))
			w.file(filepath.Join(dir, "sriov_offset"), fmt.Sprint(pf.VFOffset))
			w.file(filepath.Join(dir, "sriov_stride"), fmt.Sprint(pf.VFStride))
			w.file(filepath.Join(dir, "sriov_vf_device"), pf.VFDevice)
		}
		w.netdev(dir, pf.Name, pf.MAC, pf.OperState, dir)
		for i := range pf.NumVFs {
			vfAddr, err := vfAddress(pf.PCIAddress, pf.VFOffset, pf.VFStride, i)
			if err != nil {
				return fmt.Errorf("fake sysfs: %s vf %d: %w", pf.Name, i, err)
			}
			claim(vfAddr, fmt.Sprintf("%s vf %d", pf.Name, i))
			o := pf.VFs[i]
			driver := pf.VFDriver
			switch o.Driver {
			case "":
			case "-":
				driver = ""
			default:
				driver = o.Driver
			}
			if o.Netdev != "" && driver == "" {
				return fmt.Errorf("fake sysfs: %s vf %d: netdev %s needs a driver", pf.Name, i, o.Netdev)
			}
			vdir := filepath.Join(bridge, vfAddr)
			w.function(vdir, vfAddr, pf.Vendor, pf.VFDevice, driver, pf.NUMANode)
			w.symlink(filepath.Join(vdir, "physfn"), dir)
			w.symlink(filepath.Join(dir, fmt.Sprintf("virtfn%d", i)), vdir)
			if o.Netdev != "" {
				mac := o.MAC
				if mac == "" {
					mac = fakeMAC(o.Netdev, 0).String()
				}
				w.netdev(vdir, o.Netdev, mac, "up", vdir)
			}
		}
	}
	return w.err
}

func (pf FakePF) withDefaults() FakePF {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&pf.OperState, "up")
	def(&pf.Vendor, "8086")
	def(&pf.Device, "10fb")
	def(&pf.Driver, "ixgbe")
	def(&pf.VFDevice, "10ed")
	def(&pf.VFDriver, "ixgbevf")
	def(&pf.MAC, fakeMAC(pf.Name, 0xffff).String())
	if pf.VFOffset == 0 {
		pf.VFOffset = 128
	}
	if pf.VFStride == 0 {
		pf.VFStride = 2
	}
	return pf
}

// vfAddress computes VF n's PCI address from its PF's: routing ID (bus<<8 | slot<<3 | function)
// plus offset plus n*stride.
func vfAddress(pf string, offset, stride, n int) (string, error) {
	var dom, bus, slot, fn int
	if _, err := fmt.Sscanf(pf, "%4x:%2x:%2x.%1x", &dom, &bus, &slot, &fn); err != nil {
		return "", fmt.Errorf("PCI address %q: %w", pf, err)
	}
	rid := (bus<<8 | slot<<3 | fn) + offset + n*stride
	if rid > 0xffff {
		return "", fmt.Errorf("routing ID %#x of PF %s + %d + %d*%d is beyond bus ff", rid, pf, offset, n, stride)
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", dom, rid>>8, (rid>>3)&0x1f, rid&7), nil
}

// fakeWriter writes files and links under root, keeping the first error.
type fakeWriter struct {
	root string
	err  error
}

func (w *fakeWriter) file(rel, content string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.err = err
		return
	}
	w.err = os.WriteFile(p, []byte(content+"\n"), 0o644)
}

// symlink makes rel a relative link to target (both relative to root).
func (w *fakeWriter) symlink(rel, target string) {
	if w.err != nil {
		return
	}
	t, err := filepath.Rel(filepath.Dir(rel), target)
	if err != nil {
		w.err = err
		return
	}
	w.symlinkTarget(rel, t)
}

// symlinkTarget makes rel a link with the literal target.
func (w *fakeWriter) symlinkTarget(rel, target string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.err = err
		return
	}
	if err := os.Symlink(target, p); err != nil {
		if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("fake sysfs: %s exists already (write into an empty directory)", rel)
		}
		w.err = err
	}
}

// function writes a PCI function's directory and its bus/pci links.
func (w *fakeWriter) function(dir, addr, vendor, device, driver string, numa int) {
	w.file(filepath.Join(dir, "vendor"), "0x"+vendor)
	w.file(filepath.Join(dir, "device"), "0x"+device)
	w.file(filepath.Join(dir, "class"), "0x020000") // Ethernet controller
	w.file(filepath.Join(dir, "numa_node"), fmt.Sprint(numa))
	w.symlink(filepath.Join("bus", "pci", "devices", addr), dir)
	if driver != "" {
		drv := filepath.Join("bus", "pci", "drivers", driver)
		w.symlink(filepath.Join(dir, "driver"), drv)
		w.symlink(filepath.Join(drv, addr), dir)
	}
}

// netdev writes <dir>/net/<name>/ and class/net/<name>; device is the PCI function directory, or
// "" for a virtual netdev (dir is then the netdev's own directory).
func (w *fakeWriter) netdev(dir, name, mac, operstate, device string) {
	ndir := dir
	if device != "" {
		ndir = filepath.Join(dir, "net", name)
		// The kernel writes this link as ../../../<address> rather than the shortest path.
		w.symlinkTarget(filepath.Join(ndir, "device"), filepath.Join("..", "..", "..", filepath.Base(device)))
	}
	w.file(filepath.Join(ndir, "address"), mac)
	w.file(filepath.Join(ndir, "operstate"), operstate)
	w.symlink(filepath.Join("class", "net", name), ndir)
}

package sriov

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FS reads the parts of sysfs that describe network devices and their PCI functions. Its root is
// "/sys" in production; tests and the lab root it at a fake tree (see WriteFakeSysfs).
type FS struct {
	root string
}

// NewFS returns a reader of the sysfs tree mounted at root.
func NewFS(root string) FS { return FS{root: root} }

// Root is the directory the reader is rooted at.
func (fs FS) Root() string { return fs.root }

func (fs FS) path(elem ...string) string {
	return filepath.Join(append([]string{fs.root}, elem...)...)
}

// pciAddrRE is a full PCI address as sysfs names it: domain:bus:slot.function, lower-case hex.
var pciAddrRE = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$`)

// IsPCIAddress reports whether s is a full PCI address as sysfs writes it ("0000:83:00.1").
func IsPCIAddress(s string) bool { return pciAddrRE.MatchString(s) }

// PCIDevice is what sysfs says about one PCI function (bus/pci/devices/<address>/).
type PCIDevice struct {
	Address  string // "0000:83:00.1"
	Vendor   string // "8086" (the vendor file without its 0x)
	Device   string // "10fb"
	Driver   string // base name of the driver link ("ixgbe"), "" when unbound
	NUMANode int    // -1 when the platform does not say
	// SR-IOV: HasSRIOV is false when sriov_totalvfs is absent (not a PF, or SR-IOV disabled in
	// firmware). VFs[i] is the PCI address of virtfn<i>.
	HasSRIOV bool
	TotalVFs int
	NumVFs   int
	VFs      []string
	PhysFn   string   // the PF's PCI address when this function is a VF
	Netdevs  []string // net/<ifname> entries: netdevs of this function bound on the host, sorted
}

// NetDevices lists class/net, sorted.
//
// Equivalent to: ls /sys/class/net
func (fs FS) NetDevices() ([]string, error) {
	entries, err := os.ReadDir(fs.path("class", "net"))
	if err != nil {
		return nil, fmt.Errorf("list network devices: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// NetDevicePCI returns the PCI address behind a netdev, or "" when the netdev is not a PCI
// function (lo, veth, bridges, virtio devices).
//
// Equivalent to: basename $(readlink /sys/class/net/<ifname>/device)
func (fs FS) NetDevicePCI(ifname string) (string, error) {
	target, err := os.Readlink(fs.path("class", "net", ifname, "device"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read device link of %s: %w", ifname, err)
	}
	addr := filepath.Base(target)
	if !IsPCIAddress(addr) {
		return "", nil
	}
	return addr, nil
}

// NetDeviceMAC returns class/net/<ifname>/address, lower case.
func (fs FS) NetDeviceMAC(ifname string) (string, error) {
	s, err := fs.readString("class", "net", ifname, "address")
	if err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

// NetDeviceOperState returns class/net/<ifname>/operstate ("up", "down", "unknown", ...).
func (fs FS) NetDeviceOperState(ifname string) (string, error) {
	return fs.readString("class", "net", ifname, "operstate")
}

// PCIDevice reads bus/pci/devices/<addr>.
func (fs FS) PCIDevice(addr string) (PCIDevice, error) {
	d := PCIDevice{Address: addr, NUMANode: -1}
	dir := []string{"bus", "pci", "devices", addr}
	if _, err := os.Stat(fs.path(dir...)); err != nil {
		return d, fmt.Errorf("pci device %s: %w", addr, err)
	}
	at := func(name string) []string { return append(append([]string(nil), dir...), name) }

	var err error
	if d.Vendor, err = fs.readHexID(at("vendor")...); err != nil {
		return d, err
	}
	if d.Device, err = fs.readHexID(at("device")...); err != nil {
		return d, err
	}
	if d.Driver, err = fs.linkBase(at("driver")...); err != nil {
		return d, err
	}
	if d.PhysFn, err = fs.linkBase(at("physfn")...); err != nil {
		return d, err
	}
	if s, err := fs.readString(at("numa_node")...); err == nil {
		n, perr := strconv.Atoi(s)
		if perr != nil {
			return d, fmt.Errorf("pci device %s: numa_node %q is not a number", addr, s)
		}
		d.NUMANode = n
	} else if !errors.Is(err, os.ErrNotExist) {
		return d, err
	}

	total, err := fs.readString(at("sriov_totalvfs")...)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return d, err
	default:
		d.HasSRIOV = true
		if d.TotalVFs, err = strconv.Atoi(total); err != nil {
			return d, fmt.Errorf("pci device %s: sriov_totalvfs %q is not a number", addr, total)
		}
		num, err := fs.readString(at("sriov_numvfs")...)
		if err != nil {
			return d, err
		}
		if d.NumVFs, err = strconv.Atoi(num); err != nil {
			return d, fmt.Errorf("pci device %s: sriov_numvfs %q is not a number", addr, num)
		}
	}

	entries, err := os.ReadDir(fs.path(dir...))
	if err != nil {
		return d, fmt.Errorf("pci device %s: %w", addr, err)
	}
	vfs := map[int]string{}
	maxVF := -1
	for _, e := range entries {
		idx, ok := strings.CutPrefix(e.Name(), "virtfn")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 {
			continue
		}
		vf, err := fs.linkBase(at(e.Name())...)
		if err != nil {
			return d, err
		}
		vfs[n] = vf
		maxVF = max(maxVF, n)
	}
	if maxVF >= 0 {
		d.VFs = make([]string, maxVF+1)
		for n, vf := range vfs {
			d.VFs[n] = vf
		}
	}

	nets, err := os.ReadDir(fs.path(at("net")...))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return d, fmt.Errorf("pci device %s: %w", addr, err)
	}
	for _, e := range nets {
		d.Netdevs = append(d.Netdevs, e.Name())
	}
	sort.Strings(d.Netdevs)
	return d, nil
}

// readString reads a one-line sysfs attribute without its trailing newline. A missing file is an
// error wrapping fs.ErrNotExist.
func (fs FS) readString(elem ...string) (string, error) {
	b, err := os.ReadFile(fs.path(elem...))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Join(elem...), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readHexID reads a vendor or device file ("0x8086\n") and returns "8086".
func (fs FS) readHexID(elem ...string) (string, error) {
	s, err := fs.readString(elem...)
	if err != nil {
		return "", err
	}
	id := strings.ToLower(strings.TrimPrefix(s, "0x"))
	if !isHexID(id) {
		return "", fmt.Errorf("read %s: %q is not a 16-bit hex ID", filepath.Join(elem...), s)
	}
	return id, nil
}

// linkBase returns the base name of a symlink's target, or "" when the link does not exist.
func (fs FS) linkBase(elem ...string) (string, error) {
	target, err := os.Readlink(fs.path(elem...))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read link %s: %w", filepath.Join(elem...), err)
	}
	return filepath.Base(target), nil
}

func isHexID(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

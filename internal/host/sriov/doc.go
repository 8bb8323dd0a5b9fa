// Package sriov is the compute host's view of its SR-IOV hardware: which physical functions (PFs)
// and virtual functions (VFs) it has, which physical network each PF serves, and how a VF is
// programmed (MAC, VLAN, spoof check, trust, link state) for a VM and restored afterwards.
//
// It has four parts:
//
//   - FS reads sysfs rooted at an injectable directory ("/sys" in production; a fake tree under
//     testdata/ or one written by WriteFakeSysfs in tests and in the lab).
//   - DeviceSpec is Nova's `[pci] device_spec` (formerly passthrough_whitelist) JSON form;
//     ParseDeviceSpecs validates it and FS.Scan matches it against the netdevs in
//     class/net to produce an Inventory of PFs and their VFs. A PF match covers all its VFs; a
//     spec that selects VFs (by VF address, VF netdev name or the VFs' vendor/product ID) selects only those.
//   - Programmer is the seam to the kernel's VF settings. Netlink implements it with
//     github.com/vishvananda/netlink; Fake implements it in memory, enforcing the kernel's rules,
//     for tests of this package and of its users. Apply programs a VF and reads the result back
//     (VF drivers apply settings asynchronously); Save captures a VF's state so that releasing it
//     is Apply with the saved state.
//   - FindMAC finds the VF that carries a MAC address, on any SR-IOV PF of the host: the seed
//     workflow's "find the PF from the port's MAC" script as a function.
//
// Shell equivalents:
//
//	cat /sys/class/net/ens1f1/device/sriov_totalvfs        # FS.PCIDevice(...).TotalVFs
//	cat /sys/class/net/ens1f1/device/sriov_numvfs          # FS.PCIDevice(...).NumVFs
//	readlink /sys/class/net/ens1f1/device/virtfn13         # ../0000:83:13.3 (VF 13's PCI address)
//	readlink /sys/bus/pci/devices/0000:83:13.3/physfn      # ../0000:83:00.1 (the PF)
//	ls /sys/bus/pci/devices/0000:83:13.3/net               # the VF's netdev, if bound on the host
//	ip link show ens1f1                                    # Programmer.VFs
//	ip link set ens1f1 vf 13 mac 02:5a:0d:c4:39:77         # Programmer.SetMAC
//	ip link set ens1f1 vf 13 vlan 15                       # Programmer.SetVLAN
//	ip link set ens1f1 vf 13 spoofchk on                   # Programmer.SetSpoofCheck
//	ip link set ens1f1 vf 13 trust on                      # Programmer.SetTrust
//	ip link set ens1f1 vf 13 state auto                    # Programmer.SetLinkState
//	ip link | grep -i 02:5a:0d:c4:39:77                    # FindMAC
//
// The sysfs reader is hand-written because no library kept by this module reads the SR-IOV
// layout with an injectable root. The nearest, github.com/prometheus/procfs/sysfs (v0.22, already in
// go.sum), has a rooted NewFS and reads sriov_totalvfs/sriov_numvfs and virtfnN, but only as a scan
// of every device in bus/pci/devices that fails unless each has class, subsystem and revision files;
// it does not read physfn, driver or a function's net/<ifname>, nor map a netdev to its PCI
// device, so the inventory would still need a second reader. What is read here is small and
// stable kernel ABI (Documentation/ABI/testing/sysfs-bus-pci, sysfs-class-net).
//
// The package never imports the store or any server package: the host agent feeds its results
// to the server through the API client.
package sriov

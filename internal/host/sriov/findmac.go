package sriov

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrNotFound is returned by FindMAC when no VF of the host carries the MAC.
var ErrNotFound = errors.New("no VF has this MAC")

// Match is the VF that carries a MAC, with its PF and the VF's current settings.
type Match struct {
	PF           string `json:"pf"`
	PFPCIAddress string `json:"pf_pci_address"`
	VFIndex      int    `json:"vf_index"`
	VFPCIAddress string `json:"vf_pci_address"` // "" when sysfs has no virtfn link for the index
	VLAN         int    `json:"vlan"`
	SpoofCheck   bool   `json:"spoofchk"`
	Trust        bool   `json:"trust"`
	LinkState    string `json:"link_state"`
}

// FindMAC looks at every SR-IOV PF in class/net, whatever the device spec says, asks p for its
// VFs and returns the one whose MAC is mac (a byte compare, so the case it was typed in does not
// matter). It returns an error wrapping ErrNotFound when no VF has it, and an error naming every
// VF when more than one has it. When a PF cannot be read and no other PF has the MAC, the error
// says which PFs could not be read rather than ErrNotFound.
//
// Equivalent to:
//
//	for pf in $(ls /sys/class/net); do
//	  [ -e /sys/class/net/$pf/device/sriov_totalvfs ] && ip link show $pf | grep -i 02:5a:0d:c4:39:77
//	done
func FindMAC(fs FS, p Programmer, mac net.HardwareAddr) (Match, error) {
	if len(mac) == 0 {
		return Match{}, errors.New("find mac: empty MAC address")
	}
	names, err := fs.NetDevices()
	if err != nil {
		return Match{}, fmt.Errorf("find mac %s: %w", mac, err)
	}
	var found []Match
	var readErrs []error
	for _, name := range names {
		addr, err := fs.NetDevicePCI(name)
		if err != nil {
			readErrs = append(readErrs, err)
			continue
		}
		if addr == "" {
			continue
		}
		dev, err := fs.PCIDevice(addr)
		if err != nil {
			readErrs = append(readErrs, err)
			continue
		}
		if !dev.HasSRIOV || dev.PhysFn != "" {
			continue
		}
		vfs, err := p.VFs(name)
		if err != nil {
			readErrs = append(readErrs, fmt.Errorf("read vfs of %s: %w", name, err))
			continue
		}
		for _, v := range vfs {
			if !bytes.Equal(v.MAC, mac) {
				continue
			}
			m := Match{PF: name, PFPCIAddress: addr, VFIndex: v.Index, VLAN: v.VLAN,
				SpoofCheck: v.SpoofCheck, Trust: v.Trust, LinkState: v.LinkState}
			if v.Index >= 0 && v.Index < len(dev.VFs) {
				m.VFPCIAddress = dev.VFs[v.Index]
			}
			found = append(found, m)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		where := make([]string, len(found))
		for i, m := range found {
			where[i] = fmt.Sprintf("%s vf %d", m.PF, m.VFIndex)
		}
		return Match{}, fmt.Errorf("find mac %s: it is set on %d VFs: %s", mac, len(found), strings.Join(where, ", "))
	case len(readErrs) > 0:
		return Match{}, fmt.Errorf("find mac %s: not on any readable PF, and some could not be read: %w", mac, errors.Join(readErrs...))
	}
	return Match{}, fmt.Errorf("find mac %s: %w", mac, ErrNotFound)
}

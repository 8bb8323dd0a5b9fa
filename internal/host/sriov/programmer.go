package sriov

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"
)

// Link states of a VF, as `ip link set <pf> vf N state ...` names them.
const (
	LinkStateAuto    = "auto"    // follow the PF's link
	LinkStateEnable  = "enable"  // always up
	LinkStateDisable = "disable" // always down
)

// VFState is the part of a VF's configuration that vflink programs from the PF.
type VFState struct {
	MAC        net.HardwareAddr
	VLAN       int // 0: no VLAN (a trunk VF passes tagged frames untouched)
	SpoofCheck bool
	Trust      bool
	LinkState  string // LinkStateAuto, LinkStateEnable or LinkStateDisable
}

// String renders the state as `ip link` shows a VF.
func (s VFState) String() string {
	return fmt.Sprintf("MAC %s, vlan %d, spoof checking %s, link-state %s, trust %s",
		s.MAC, s.VLAN, onOff(s.SpoofCheck), s.LinkState, onOff(s.Trust))
}

// VFInfo is one VF as the PF reports it.
type VFInfo struct {
	Index int
	VFState
}

// Programmer is the kernel seam for VF settings. Netlink is the real one, Fake the test double.
// pf is the PF's netdev name, vf the VF index on it.
type Programmer interface {
	// VFs lists the PF's VFs by index, as `ip link show <pf>` does.
	VFs(pf string) ([]VFInfo, error)
	// SetMAC is `ip link set <pf> vf N mac M`.
	SetMAC(pf string, vf int, mac net.HardwareAddr) error
	// SetVLAN is `ip link set <pf> vf N vlan V` (0 removes the VLAN).
	SetVLAN(pf string, vf int, vlan int) error
	// SetSpoofCheck is `ip link set <pf> vf N spoofchk on|off`.
	SetSpoofCheck(pf string, vf int, on bool) error
	// SetTrust is `ip link set <pf> vf N trust on|off`.
	SetTrust(pf string, vf int, on bool) error
	// SetLinkState is `ip link set <pf> vf N state auto|enable|disable`.
	SetLinkState(pf string, vf int, state string) error
}

// ErrLinkNotFound is wrapped by programmers when the PF netdev does not exist.
var ErrLinkNotFound = errors.New("link not found")

// Read-back policy of Apply: VF drivers (ixgbe, i40e) apply some settings through a mailbox to the
// VF and report them a little later.
const (
	verifyAttempts = 10
	verifyInterval = 20 * time.Millisecond
)

// MismatchError is returned by Apply when a VF does not report what was set on it.
type MismatchError struct {
	PF        string
	VF        int
	Field     string // "mac", "vlan", "spoofchk", "trust", "state"
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("vf %d on %s: %s is %s after setting it to %s", e.VF, e.PF, e.Field, e.Got, e.Want)
}

// Apply programs a VF (MAC, VLAN, spoof check, trust, link state, in that order), then reads the
// VF back until it reports all of want, briefly, because VF drivers lag. A nil want.MAC leaves the
// MAC alone; an empty want.LinkState means LinkStateAuto. A VF still differing after that is a
// *MismatchError naming the field, the wanted and the reported value.
//
// Equivalent to:
//
//	ip link set ens1f1 vf 13 mac 02:5a:0d:c4:39:77 vlan 15 spoofchk on trust on state auto
//	ip link show ens1f1 | grep 'vf 13 '
func Apply(p Programmer, pf string, vf int, want VFState) error {
	if want.LinkState == "" {
		want.LinkState = LinkStateAuto
	}
	if err := checkLinkState(want.LinkState); err != nil {
		return fmt.Errorf("program vf %d on %s: %w", vf, pf, err)
	}
	if want.MAC != nil {
		if err := p.SetMAC(pf, vf, want.MAC); err != nil {
			return fmt.Errorf("program vf %d on %s: set mac %s: %w", vf, pf, want.MAC, err)
		}
	}
	if err := p.SetVLAN(pf, vf, want.VLAN); err != nil {
		return fmt.Errorf("program vf %d on %s: set vlan %d: %w", vf, pf, want.VLAN, err)
	}
	if err := p.SetSpoofCheck(pf, vf, want.SpoofCheck); err != nil {
		return fmt.Errorf("program vf %d on %s: set spoofchk %s: %w", vf, pf, onOff(want.SpoofCheck), err)
	}
	if err := p.SetTrust(pf, vf, want.Trust); err != nil {
		return fmt.Errorf("program vf %d on %s: set trust %s: %w", vf, pf, onOff(want.Trust), err)
	}
	if err := p.SetLinkState(pf, vf, want.LinkState); err != nil {
		return fmt.Errorf("program vf %d on %s: set state %s: %w", vf, pf, want.LinkState, err)
	}

	var mismatch error
	for attempt := range verifyAttempts {
		if attempt > 0 {
			time.Sleep(verifyInterval)
		}
		got, err := Save(p, pf, vf)
		if err != nil {
			return fmt.Errorf("verify vf %d on %s: %w", vf, pf, err)
		}
		if mismatch = compareState(pf, vf, want, got); mismatch == nil {
			return nil
		}
	}
	return fmt.Errorf("verify vf %d on %s after %d reads: %w", vf, pf, verifyAttempts, mismatch)
}

// Save reads a VF's current state, so that it can be restored with Apply after the VF is released.
//
// Equivalent to: ip link show ens1f1 | grep 'vf 13 '
func Save(p Programmer, pf string, vf int) (VFState, error) {
	vfs, err := p.VFs(pf)
	if err != nil {
		return VFState{}, fmt.Errorf("read vfs of %s: %w", pf, err)
	}
	for _, v := range vfs {
		if v.Index == vf {
			s := v.VFState
			s.MAC = append(net.HardwareAddr(nil), s.MAC...)
			return s, nil
		}
	}
	return VFState{}, fmt.Errorf("%s reports no vf %d (it has %d)", pf, vf, len(vfs))
}

func compareState(pf string, vf int, want, got VFState) error {
	mismatch := func(field, w, g string) error {
		return &MismatchError{PF: pf, VF: vf, Field: field, Want: w, Got: g}
	}
	switch {
	case want.MAC != nil && !bytes.Equal(want.MAC, got.MAC):
		return mismatch("mac", want.MAC.String(), got.MAC.String())
	case want.VLAN != got.VLAN:
		return mismatch("vlan", fmt.Sprint(want.VLAN), fmt.Sprint(got.VLAN))
	case want.SpoofCheck != got.SpoofCheck:
		return mismatch("spoofchk", onOff(want.SpoofCheck), onOff(got.SpoofCheck))
	case want.Trust != got.Trust:
		return mismatch("trust", onOff(want.Trust), onOff(got.Trust))
	case want.LinkState != got.LinkState:
		return mismatch("state", want.LinkState, got.LinkState)
	}
	return nil
}

func checkLinkState(s string) error {
	switch s {
	case LinkStateAuto, LinkStateEnable, LinkStateDisable:
		return nil
	}
	return fmt.Errorf("link state %q is not one of auto, enable, disable", s)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

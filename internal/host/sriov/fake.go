package sriov

import (
	"fmt"
	"net"
	"sort"
	"sync"
	"syscall"
)

// Fake is an in-memory Programmer that enforces the kernel's rules, for tests of this package and
// of the agent: the VF index must be below the PF's VF count, the VLAN within 0-4095, the MAC a
// non-zero unicast address, the link state auto, enable or disable; an unknown PF fails like a
// missing link. It records every call, can lag on read-back (the first reads after a change
// report the previous state, as VF drivers do), can drop writes of a field silently and can be
// made to fail. It is safe for concurrent use.
//
// A new VF starts as an 82599 VF does after `echo 16 > sriov_numvfs`, except for its MAC: vlan 0,
// spoof checking on, trust off, link-state auto, and a locally administered MAC derived from the
// PF name and VF index (so that restoring a saved state never needs the all-zero MAC, which the
// Fake refuses).
type Fake struct {
	mu       sync.Mutex
	pfs      map[string][]fakeVF
	calls    []string
	lag      int
	failures map[string]error // op → error
	drops    map[string]bool  // op → writes accepted but not applied
}

type fakeVF struct {
	cur, prev VFState
	lag       int // reads left that report prev
}

// Fake operation names, for FailOn and DropWrites; they are the words of `ip link set ... vf N`.
const (
	OpVFs        = "vfs"
	OpMAC        = "mac"
	OpVLAN       = "vlan"
	OpSpoofCheck = "spoofchk"
	OpTrust      = "trust"
	OpLinkState  = "state"
)

// NewFake returns a Fake with the given PFs and their VF counts (sriov_numvfs).
func NewFake(pfs map[string]int) *Fake {
	f := &Fake{pfs: map[string][]fakeVF{}, failures: map[string]error{}, drops: map[string]bool{}}
	for name, n := range pfs {
		vfs := make([]fakeVF, n)
		for i := range vfs {
			s := VFState{MAC: fakeMAC(name, i), SpoofCheck: true, LinkState: LinkStateAuto}
			vfs[i] = fakeVF{cur: s, prev: s}
		}
		f.pfs[name] = vfs
	}
	return f
}

// fakeMAC is 02:<3 bytes of FNV-1a of the PF name>:<vf index as 2 bytes>.
func fakeMAC(pf string, vf int) net.HardwareAddr {
	h := uint32(2166136261)
	for i := 0; i < len(pf); i++ {
		h = (h ^ uint32(pf[i])) * 16777619
	}
	return net.HardwareAddr{0x02, byte(h >> 16), byte(h >> 8), byte(h), byte(vf >> 8), byte(vf)}
}

// SetReadLag makes the first n reads of a VF after each change report its state before the change.
func (f *Fake) SetReadLag(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lag = n
}

// FailOn makes every call of op (OpVFs, OpMAC, ...) fail with err, until FailOn(op, nil).
func (f *Fake) FailOn(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failures, op)
		return
	}
	f.failures[op] = err
}

// DropWrites makes writes of op succeed without taking effect (a VF driver ignoring a setting),
// until DropWrites(op, false).
func (f *Fake) DropWrites(op string, drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drops[op] = drop
}

// Calls returns the calls made so far, in the words of `ip link` after its verb:
// "ens1f1 vf 13 mac 02:5a:0d:c4:39:77", "ens1f1 vf 13 vlan 15", "ens1f1 vf 13 spoofchk on",
// "ens1f1 vf 13 trust off", "ens1f1 vf 13 state auto", and "ens1f1 show" for a read.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// VFs implements Programmer.
func (f *Fake) VFs(pf string) ([]VFInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, pf+" show")
	if err := f.failures[OpVFs]; err != nil {
		return nil, err
	}
	vfs, ok := f.pfs[pf]
	if !ok {
		return nil, fmt.Errorf("%s: %w", pf, ErrLinkNotFound)
	}
	out := make([]VFInfo, len(vfs))
	for i := range vfs {
		v := &vfs[i]
		s := v.cur
		if v.lag > 0 {
			s = v.prev
			v.lag--
		}
		s.MAC = append(net.HardwareAddr(nil), s.MAC...)
		out[i] = VFInfo{Index: i, VFState: s}
	}
	return out, nil
}

// set applies one write under the kernel's rules. check validates the value; apply changes the
// state.
func (f *Fake) set(pf string, vf int, op, value string, check func() error, apply func(*VFState)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s vf %d %s %s", pf, vf, op, value))
	if err := f.failures[op]; err != nil {
		return err
	}
	vfs, ok := f.pfs[pf]
	if !ok {
		return fmt.Errorf("%s: %w", pf, ErrLinkNotFound)
	}
	if vf < 0 || vf >= len(vfs) {
		return fmt.Errorf("vf %d is out of range 0-%d on %s: %w", vf, len(vfs)-1, pf, syscall.EINVAL)
	}
	if err := check(); err != nil {
		return fmt.Errorf("%w: %w", err, syscall.EINVAL)
	}
	if f.drops[op] {
		return nil
	}
	v := &vfs[vf]
	visible := v.cur
	if v.lag > 0 {
		visible = v.prev
	}
	next := v.cur
	next.MAC = append(net.HardwareAddr(nil), next.MAC...)
	apply(&next)
	v.prev, v.cur, v.lag = visible, next, f.lag
	return nil
}

// SetMAC implements Programmer.
func (f *Fake) SetMAC(pf string, vf int, mac net.HardwareAddr) error {
	return f.set(pf, vf, OpMAC, mac.String(), func() error {
		switch {
		case len(mac) != 6:
			return fmt.Errorf("mac %q is not a 6-byte Ethernet address", mac.String())
		case mac[0]&1 != 0:
			return fmt.Errorf("mac %s is a multicast address; a VF needs a unicast one", mac)
		case isZeroMAC(mac):
			return fmt.Errorf("mac %s is the zero address", mac)
		}
		return nil
	}, func(s *VFState) { s.MAC = append(net.HardwareAddr(nil), mac...) })
}

// SetVLAN implements Programmer.
func (f *Fake) SetVLAN(pf string, vf int, vlan int) error {
	return f.set(pf, vf, OpVLAN, fmt.Sprint(vlan), func() error {
		if vlan < 0 || vlan > 4095 {
			return fmt.Errorf("vlan %d is out of range 0-4095", vlan)
		}
		return nil
	}, func(s *VFState) { s.VLAN = vlan })
}

// SetSpoofCheck implements Programmer.
func (f *Fake) SetSpoofCheck(pf string, vf int, on bool) error {
	return f.set(pf, vf, OpSpoofCheck, onOff(on), func() error { return nil },
		func(s *VFState) { s.SpoofCheck = on })
}

// SetTrust implements Programmer.
func (f *Fake) SetTrust(pf string, vf int, on bool) error {
	return f.set(pf, vf, OpTrust, onOff(on), func() error { return nil },
		func(s *VFState) { s.Trust = on })
}

// SetLinkState implements Programmer.
func (f *Fake) SetLinkState(pf string, vf int, state string) error {
	return f.set(pf, vf, OpLinkState, state, func() error { return checkLinkState(state) },
		func(s *VFState) { s.LinkState = state })
}

// PFs lists the Fake's PF names, sorted.
func (f *Fake) PFs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.pfs))
	for n := range f.pfs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func isZeroMAC(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return true
}

var _ Programmer = (*Fake)(nil)

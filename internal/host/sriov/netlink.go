package sriov

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Netlink programs VFs through rtnetlink (github.com/vishvananda/netlink), in the network
// namespace of its handle. Its methods are safe for concurrent use.
type Netlink struct {
	h *netlink.Handle
}

// NewNetlink returns a programmer working through h; nil means the network namespace of the
// calling process, which is where PFs live.
func NewNetlink(h *netlink.Handle) *Netlink {
	if h == nil {
		h = &netlink.Handle{} // the same as the package-level functions of netlink
	}
	return &Netlink{h: h}
}

func (n *Netlink) link(pf string) (netlink.Link, error) {
	l, err := n.h.LinkByName(pf)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%s: %w", pf, ErrLinkNotFound)
		}
		return nil, fmt.Errorf("look up %s: %w", pf, err)
	}
	return l, nil
}

// VFs lists the PF's VFs from IFLA_VFINFO_LIST. A link without SR-IOV has none.
//
// Equivalent to: ip link show ens1f1
func (n *Netlink) VFs(pf string) ([]VFInfo, error) {
	l, err := n.link(pf)
	if err != nil {
		return nil, err
	}
	vfs := make([]VFInfo, 0, len(l.Attrs().Vfs))
	for _, v := range l.Attrs().Vfs {
		vfs = append(vfs, VFInfo{Index: v.ID, VFState: VFState{
			MAC:        append(net.HardwareAddr(nil), v.Mac...),
			VLAN:       v.Vlan,
			SpoofCheck: v.Spoofchk,
			Trust:      v.Trust != 0,
			LinkState:  linkStateName(v.LinkState),
		}})
	}
	return vfs, nil
}

// SetMAC sets the VF's MAC address.
//
// Equivalent to: ip link set ens1f1 vf 13 mac 02:5a:0d:c4:39:77
func (n *Netlink) SetMAC(pf string, vf int, mac net.HardwareAddr) error {
	l, err := n.link(pf)
	if err != nil {
		return fmt.Errorf("set mac %s on vf %d: %w", mac, vf, err)
	}
	if err := n.h.LinkSetVfHardwareAddr(l, vf, mac); err != nil {
		return fmt.Errorf("ip link set %s vf %d mac %s: %w", pf, vf, mac, err)
	}
	return nil
}

// SetVLAN sets the VF's port VLAN (802.1Q, QoS 0); 0 removes it.
//
// Equivalent to: ip link set ens1f1 vf 13 vlan 15
func (n *Netlink) SetVLAN(pf string, vf int, vlan int) error {
	l, err := n.link(pf)
	if err != nil {
		return fmt.Errorf("set vlan %d on vf %d: %w", vlan, vf, err)
	}
	if err := n.h.LinkSetVfVlan(l, vf, vlan); err != nil {
		return fmt.Errorf("ip link set %s vf %d vlan %d: %w", pf, vf, vlan, err)
	}
	return nil
}

// SetSpoofCheck turns the VF's source MAC (and VLAN) anti-spoofing on or off.
//
// Equivalent to: ip link set ens1f1 vf 13 spoofchk on
func (n *Netlink) SetSpoofCheck(pf string, vf int, on bool) error {
	l, err := n.link(pf)
	if err != nil {
		return fmt.Errorf("set spoofchk %s on vf %d: %w", onOff(on), vf, err)
	}
	if err := n.h.LinkSetVfSpoofchk(l, vf, on); err != nil {
		return fmt.Errorf("ip link set %s vf %d spoofchk %s: %w", pf, vf, onOff(on), err)
	}
	return nil
}

// SetTrust lets the VF change its own MAC and enter promiscuous/all-multicast mode, or not.
//
// Equivalent to: ip link set ens1f1 vf 13 trust on
func (n *Netlink) SetTrust(pf string, vf int, on bool) error {
	l, err := n.link(pf)
	if err != nil {
		return fmt.Errorf("set trust %s on vf %d: %w", onOff(on), vf, err)
	}
	if err := n.h.LinkSetVfTrust(l, vf, on); err != nil {
		return fmt.Errorf("ip link set %s vf %d trust %s: %w", pf, vf, onOff(on), err)
	}
	return nil
}

// SetLinkState sets the VF's administrative link state.
//
// Equivalent to: ip link set ens1f1 vf 13 state auto
func (n *Netlink) SetLinkState(pf string, vf int, state string) error {
	code, err := linkStateCode(state)
	if err != nil {
		return fmt.Errorf("set state on vf %d of %s: %w", vf, pf, err)
	}
	l, err := n.link(pf)
	if err != nil {
		return fmt.Errorf("set state %s on vf %d: %w", state, vf, err)
	}
	if err := n.h.LinkSetVfState(l, vf, code); err != nil {
		return fmt.Errorf("ip link set %s vf %d state %s: %w", pf, vf, state, err)
	}
	return nil
}

func linkStateCode(s string) (uint32, error) {
	switch s {
	case LinkStateAuto:
		return nl.IFLA_VF_LINK_STATE_AUTO, nil
	case LinkStateEnable:
		return nl.IFLA_VF_LINK_STATE_ENABLE, nil
	case LinkStateDisable:
		return nl.IFLA_VF_LINK_STATE_DISABLE, nil
	}
	return 0, checkLinkState(s)
}

func linkStateName(c uint32) string {
	switch c {
	case nl.IFLA_VF_LINK_STATE_AUTO:
		return LinkStateAuto
	case nl.IFLA_VF_LINK_STATE_ENABLE:
		return LinkStateEnable
	case nl.IFLA_VF_LINK_STATE_DISABLE:
		return LinkStateDisable
	}
	return fmt.Sprintf("unknown(%d)", c)
}

var _ Programmer = (*Netlink)(nil)

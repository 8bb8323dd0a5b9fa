package labnic

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

type handle = netlink.Handle

// inNS runs fn with a netlink handle whose sockets live in the named network namespace (the
// calling thread never changes namespace). A missing namespace is an error matching
// errNoNamespace.
//
// Equivalent to: ip -n <ns> ...
func inNS(ns string, fn func(h *handle) error) error {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", ns, errNoNamespace)
		}
		return fmt.Errorf("open network namespace %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", ns, err)
	}
	defer h.Close()
	return fn(h)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// linkExists reports whether ifname is in ns (a missing namespace holds nothing).
//
// Equivalent to: ip -n <ns> link show <ifname>
func linkExists(ns, ifname string) (bool, error) {
	found := false
	err := inNS(ns, func(h *handle) error {
		_, err := h.LinkByName(ifname)
		if isNotFound(err) {
			return nil
		}
		found = err == nil
		return err
	})
	if errors.Is(err, errNoNamespace) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ip -n %s link show %s: %w", ns, ifname, err)
	}
	return found, nil
}

// linkMAC reads ifname's address in ns.
//
// Equivalent to: ip -n <ns> link show <ifname>
func linkMAC(ns, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := inNS(ns, func(h *handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		mac = append(net.HardwareAddr(nil), l.Attrs().HardwareAddr...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ip -n %s link show %s: %w", ns, ifname, err)
	}
	return mac, nil
}

// nsLinks caches the MACs of every link of a namespace, for reading many VFs at once.
type nsLinks map[string]map[string]net.HardwareAddr

// mac returns ifname's MAC in ns and whether it is there.
//
// Equivalent to: ip -n <ns> link show
func (c nsLinks) mac(ns, ifname string) (net.HardwareAddr, bool, error) {
	links, ok := c[ns]
	if !ok {
		links = map[string]net.HardwareAddr{}
		err := inNS(ns, func(h *handle) error {
			ls, err := h.LinkList()
			if err != nil {
				return err
			}
			for _, l := range ls {
				links[l.Attrs().Name] = append(net.HardwareAddr(nil), l.Attrs().HardwareAddr...)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errNoNamespace) {
			return nil, false, fmt.Errorf("ip -n %s link show: %w", ns, err)
		}
		c[ns] = links
	}
	m, ok := links[ifname]
	return m, ok, nil
}

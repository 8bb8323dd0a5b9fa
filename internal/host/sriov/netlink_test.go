package sriov

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newTestNetns creates a network namespace of its own and returns a netlink handle in it. The
// calling thread is switched into the new namespace only long enough to create it and is put
// back; the root namespace is never changed.
func newTestNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace (CI runs as root)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("cannot create a network namespace here (container without CAP_SYS_ADMIN?): %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the new namespace; do not let the runtime reuse it.
		runtime.LockOSThread()
		t.Fatalf("return to the original netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in the test netns: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestNetlinkOnLinksWithoutSRIOV(t *testing.T) {
	h := newTestNetns(t)
	// The namespace's own loopback always exists; dummy and veth links are added when the kernel
	// has those drivers (some CI kernels and sandboxes lack them).
	links := []string{"lo"}
	if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "vfl0"}}); err == nil {
		links = append(links, "vfl0")
	} else {
		t.Logf("no dummy link (%v); testing the others", err)
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vfl1"}, PeerName: "vfl2"}); err == nil {
		links = append(links, "vfl1")
	} else {
		t.Logf("no veth link (%v); testing the others", err)
	}
	p := NewNetlink(h)
	for _, link := range links {
		t.Run(link, func(t *testing.T) {
			vfs, err := p.VFs(link)
			if err != nil {
				t.Fatalf("VFs(%s): %v", link, err)
			}
			if len(vfs) != 0 {
				t.Errorf("VFs of %s: got %v, want none", link, vfs)
			}
			if err := p.SetVLAN(link, 0, 15); err == nil {
				t.Errorf("SetVLAN on %s: got no error, want one (no SR-IOV)", link)
			} else {
				t.Logf("SetVLAN on %s: %v", link, err)
			}
			if err := p.SetLinkState(link, 0, "sideways"); err == nil {
				t.Errorf("SetLinkState(%s) with an invalid state: got no error", link)
			}
			if err := Apply(p, link, 0, seedState); err == nil {
				t.Errorf("Apply on %s: got no error", link)
			}
		})
	}
	if _, err := p.VFs("nosuch0"); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("VFs of a missing link: got %v, want ErrLinkNotFound", err)
	}
}

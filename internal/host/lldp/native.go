package lldp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// maxPerInterface bounds the neighbors kept per interface, so a flood of
// forged LLDPDUs cannot grow memory without end.
const maxPerInterface = 64

// packetOutgoing is the kernel's PACKET_OUTGOING packet type.
const packetOutgoing = 4

// Native is a Source that listens for LLDP itself: one AF_PACKET socket per
// interface, bound to ethertype 0x88cc, member of 01:80:c2:00:00:0e
// (equivalent to `tcpdump -i PF ether proto 0x88cc`). It keeps the latest
// LLDPDU per (interface, chassis ID, port ID), drops it when its TTL runs out
// or when a shutdown LLDPDU (TTL 0) arrives, and ignores frames the host
// sends itself (a local lldpd, say).
type Native struct {
	// Now is the clock; default time.Now. Set it before Run.
	Now func() time.Time

	log   *slog.Logger
	conns []*ifaceConn

	mu   sync.Mutex
	seen map[neighborKey]Neighbor
}

type ifaceConn struct {
	name string
	mac  net.HardwareAddr
	conn *packet.Conn
}

type neighborKey struct {
	iface, chassisSubtype, chassis, portSubtype, port string
}

// NewNative opens an LLDP listener on each of ifaces in the calling thread's
// network namespace. Run reads the frames; Close (or the end of Run) closes
// the sockets.
func NewNative(ifaces []string, log *slog.Logger) (*Native, error) {
	n := newNative(log)
	filter, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 18},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("assemble lldp socket filter: %w", err)
	}
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("lldp listener on %s: %w", name, err)
		}
		c, err := packet.Listen(ifi, packet.Raw, EtherType, &packet.Config{Filter: filter})
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("lldp listener on %s: %w", name, err)
		}
		// Equivalent to: ip maddress add 01:80:c2:00:00:0e dev PF. Most
		// drivers pass this group anyway; some need the membership.
		if err := c.JoinGroup(MulticastAddr); err != nil {
			n.log.Warn("join lldp multicast group; frames may be filtered by the nic", "interface", name, "err", err)
		}
		n.conns = append(n.conns, &ifaceConn{name: name, mac: ifi.HardwareAddr, conn: c})
	}
	return n, nil
}

func newNative(log *slog.Logger) *Native {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Native{log: log.With("component", "lldp"), seen: make(map[neighborKey]Neighbor)}
}

func (n *Native) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// Close closes the sockets. Run closes them too when it returns.
func (n *Native) Close() error {
	var errs []error
	for _, c := range n.conns {
		if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run reads LLDP frames on every interface until ctx is done (then it returns
// nil) or a socket fails (then it returns the error). It closes the sockets.
func (n *Native) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(n.conns))
	var wg sync.WaitGroup
	for _, c := range n.conns {
		wg.Go(func() {
			buf := make([]byte, 9216)
			for {
				sz, _, err := c.conn.ReadFrom(buf)
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("read lldp on %s: %w", c.name, err)
						cancel()
					}
					return
				}
				n.observe(c.name, c.mac, buf[:sz])
			}
		})
	}
	<-ctx.Done()
	n.Close()
	wg.Wait()
	close(errc)
	return <-errc // nil when no reader failed
}

// observe records one received frame.
func (n *Native) observe(iface string, own net.HardwareAddr, frame []byte) {
	if len(frame) >= 12 && len(own) == 6 && bytes.Equal(frame[6:12], own) {
		return // our own LLDPDU, looped back by a packet tap
	}
	nb, err := DecodeFrame(frame)
	if err != nil {
		n.log.Debug("drop undecodable lldp frame", "interface", iface, "len", len(frame), "err", err)
		return
	}
	now := n.now()
	nb.Interface = iface
	nb.LastSeen = now
	k := neighborKey{iface, nb.ChassisIDSubtype, nb.ChassisID, nb.PortIDSubtype, nb.PortID}

	n.mu.Lock()
	defer n.mu.Unlock()
	n.expireLocked(now)
	if nb.TTL == 0 { // shutdown LLDPDU: forget the neighbor now
		delete(n.seen, k)
		return
	}
	old, ok := n.seen[k]
	if ok && sameLink(old, nb) {
		nb.Changed = old.Changed
	} else {
		nb.Changed = now
	}
	if !ok && n.countLocked(iface) >= maxPerInterface {
		n.log.Warn("too many lldp neighbors; ignoring a new one", "interface", iface, "max", maxPerInterface, "chassis", nb.ChassisID)
		return
	}
	n.seen[k] = nb
}

func (n *Native) countLocked(iface string) int {
	c := 0
	for k := range n.seen {
		if k.iface == iface {
			c++
		}
	}
	return c
}

func (n *Native) expireLocked(now time.Time) {
	for k, nb := range n.seen {
		if !now.Before(nb.LastSeen.Add(nb.TTL)) {
			delete(n.seen, k)
		}
	}
}

// Neighbors returns the unexpired neighbors, by interface, most recently
// changed first.
func (n *Native) Neighbors(ctx context.Context) ([]Neighbor, error) {
	now := n.now()
	n.mu.Lock()
	n.expireLocked(now)
	out := make([]Neighbor, 0, len(n.seen))
	for _, nb := range n.seen {
		out = append(out, nb)
	}
	n.mu.Unlock()
	sortNeighbors(out)
	return out, nil
}

func sortNeighbors(ns []Neighbor) {
	slices.SortFunc(ns, func(a, b Neighbor) int {
		if c := strings.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		if c := b.Changed.Compare(a.Changed); c != 0 {
			return c
		}
		if c := strings.Compare(a.ChassisID, b.ChassisID); c != 0 {
			return c
		}
		return strings.Compare(a.PortID, b.PortID)
	})
}

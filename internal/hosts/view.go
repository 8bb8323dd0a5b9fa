package hosts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// The change view: what changed for each host, kept in memory from store watches, so a long
// poll is answered without reading the store and only with what changed.
//
// Every change the view applies gets the next number of a sequence of its own; per host it keeps
// the latest state of each port and VF allocation that changed (a deletion as a tombstone) with
// the number of its change. A cursor is "<epoch>.<number>": the changes after it are the entries
// with a greater number. The epoch names one view (one server process, one start), so a cursor
// from another server or from before a restart is recognised and answered with the whole state.
// Tombstones are forgotten in bulk once there are many (the host's horizon moves); a cursor from
// before the horizon is answered with the whole state too.
//
// The view never needs an etcd revision to be complete: its watches may deliver the parts of one
// transaction, or the changes of ports and of VFs, at different moments, and each is simply a
// later change (it carries its store revision, so an agent never lets older news undo newer).
// The whole state (HostWork) is read from the store at one revision, after taking the cursor, so
// no change can fall between the two. A view watches from the revision of the reads it starts
// from; when a watch breaks (the revision was compacted, the store is unreachable or closing) the
// view stops, and the next request starts a new view (a new epoch): every agent then reads its
// whole state again, as after a compaction it must.

// viewReadsHook, when set (tests), runs between a view's reads and its watches of vfs/ and
// servers/: a compaction there breaks the new view.
var viewReadsHook func()

// errViewStopped: the view stopped while a long poll waited on it.
var errViewStopped = errors.New("the host change view stopped")

// maxTombstones bounds the deletions a host's view remembers.
const maxTombstones = 4096

type entry[T any] struct {
	seq  uint64
	rev  int64
	gone bool
	v    T
}

// change is one record of a host's change log: which entry changed, at which number.
type change struct {
	seq   uint64
	alloc bool // an allocation (key: PCI address), else a port (key: ID)
	key   string
}

type hostView struct {
	wakeSeq uint64 // number of the host's latest change that wakes long polls
	horizon uint64 // cursors before it get the whole state
	tombs   int
	ports   map[string]*entry[api.HostPort]
	allocs  map[string]*entry[api.VFAllocation] // by PCI address
	log     []change                            // in number order; a key's latest record matches its entry
	wake    chan struct{}                       // closed on the host's next change that wakes
}

type view struct {
	svc   *Service
	epoch string
	feed  *neutron.HostPortFeed
	done  chan struct{} // closed when the view stopped (a watch broke)

	mu      sync.Mutex
	seq     uint64
	servers uint64 // number of the latest change under servers/ (any host)
	hosts   map[string]*hostView
	err     error
}

func newEpoch() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startView reads what the view starts from (with ctx, the request's) and starts following the
// store's watches. Its goroutines only read watch events, never the store itself, so a view
// cannot outlive its store; when a watch breaks (compaction, an outage, the store closing) the
// view stops, and the next request starts a new one: its agents' cursors are then another
// view's, and they get the whole state.
func (s *Service) startView(ctx context.Context) (*view, error) {
	vctx, cancel := context.WithCancel(context.Background())
	v := &view{svc: s, epoch: newEpoch(), done: make(chan struct{}), hosts: map[string]*hostView{}}
	feed, _, portsStopped, err := s.net.WatchHostPorts(ctx, vctx, v.applyPorts)
	if err != nil {
		cancel()
		return nil, err
	}
	v.feed = feed
	_, rev, err := s.st.Keys(ctx, "vfs/")
	if err != nil {
		cancel()
		return nil, err
	}
	if viewReadsHook != nil {
		viewReadsHook()
	}
	allocs := s.st.Watch(vctx, "vfs/", rev+1)
	servers := s.st.Watch(vctx, "servers/", rev+1)
	allocsStopped := make(chan error, 1)
	go func() { allocsStopped <- v.followAllocations(allocs, servers) }()
	go func() {
		var err error
		select {
		case err = <-portsStopped:
		case err = <-allocsStopped:
		}
		cancel()
		v.mu.Lock()
		v.err = err
		v.mu.Unlock()
		s.log.Warn("host change view stopped; the next request starts another (agents read their whole state again)", "err", err)
		close(v.done)
	}()
	return v, nil
}

// currentView returns the running view, starting one when there is none (or it stopped).
func (s *Service) currentView(ctx context.Context) (*view, error) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if s.view != nil && !isClosed(s.view.done) {
		return s.view, nil
	}
	v, err := s.startView(ctx)
	if err != nil {
		return nil, err
	}
	s.view = v
	return v, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// host returns host's view, creating it; v.mu held.
func (v *view) host(name string) *hostView {
	h := v.hosts[name]
	if h == nil {
		h = &hostView{ports: map[string]*entry[api.HostPort]{}, allocs: map[string]*entry[api.VFAllocation]{}, wake: make(chan struct{})}
		v.hosts[name] = h
	}
	return h
}

// touched numbers a change of host h's entry key and, when wake, wakes its long polls; v.mu
// held.
func (v *view) touched(h *hostView, alloc bool, key string, wake bool) uint64 {
	v.seq++
	h.log = append(h.log, change{seq: v.seq, alloc: alloc, key: key})
	if wake {
		h.wakeSeq = v.seq
		close(h.wake)
		h.wake = make(chan struct{})
	}
	if len(h.log) > 2*(len(h.ports)+len(h.allocs))+1024 {
		h.compactLog()
	}
	return v.seq
}

// compactLog keeps only each entry's latest record.
func (h *hostView) compactLog() {
	log := make([]change, 0, len(h.ports)+len(h.allocs))
	for k, e := range h.ports {
		log = append(log, change{seq: e.seq, key: k})
	}
	for k, e := range h.allocs {
		log = append(log, change{seq: e.seq, alloc: true, key: k})
	}
	sort.Slice(log, func(i, j int) bool { return log[i].seq < log[j].seq })
	h.log = log
}

func (h *hostView) forgetTombstones() {
	if h.tombs <= maxTombstones {
		return
	}
	for k, e := range h.ports {
		if e.gone {
			h.horizon = max(h.horizon, e.seq)
			delete(h.ports, k)
		}
	}
	for k, e := range h.allocs {
		if e.gone {
			h.horizon = max(h.horizon, e.seq)
			delete(h.allocs, k)
		}
	}
	h.tombs = 0
	h.compactLog()
}

// applyPorts records port changes (from neutron.WatchHostPorts).
func (v *view) applyPorts(changes []neutron.HostPortChange) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range changes {
		if c.PrevHost != "" && c.PrevHost != c.Host {
			h := v.host(c.PrevHost)
			e := h.ports[c.PortID]
			if e == nil {
				e = &entry[api.HostPort]{}
				h.ports[c.PortID] = e
			}
			if !e.gone {
				h.tombs++
			}
			e.gone, e.rev, e.v = true, c.Revision, api.HostPort{}
			e.seq = v.touched(h, false, c.PortID, true)
			h.forgetTombstones()
		}
		if c.Host != "" {
			h := v.host(c.Host)
			e := h.ports[c.PortID]
			if e == nil {
				e = &entry[api.HostPort]{}
				h.ports[c.PortID] = e
			} else if e.gone {
				h.tombs--
			}
			e.gone, e.rev, e.v = false, c.Revision, c.Port
			// a change of status alone is what the host's agent reported: it rides along with
			// the next change instead of waking the agent for news it has
			e.seq = v.touched(h, false, c.PortID, !c.StatusOnly)
		}
	}
}

// applyAllocation records that the allocation under key (vfs/<host>/<pci>) is a (nil: gone).
func (v *view) applyAllocation(key string, a *api.VFAllocation, rev int64) {
	host, pci, ok := strings.Cut(strings.TrimPrefix(key, "vfs/"), "/")
	if !ok {
		return
	}
	h := v.host(host)
	e := h.allocs[pci]
	if e == nil {
		e = &entry[api.VFAllocation]{}
		h.allocs[pci] = e
	}
	if a == nil {
		if !e.gone {
			h.tombs++
		}
		e.gone, e.rev, e.v = true, rev, api.VFAllocation{}
	} else {
		if e.gone {
			h.tombs--
		}
		e.gone, e.rev, e.v = false, rev, *a
	}
	// a host's VFs are claimed and released by its own agent, which knows: the change rides along
	// with the next one
	e.seq = v.touched(h, true, pci, false)
	h.forgetTombstones()
}

func (v *view) serversChanged() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	v.servers = v.seq
	for _, h := range v.hosts {
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// followAllocations applies the events of vfs/ and servers/ (a change under servers/ makes
// every host read its servers again) until a watch ends.
func (v *view) followAllocations(allocs, servers <-chan store.Event) error {
	for {
		select {
		case e, ok := <-servers:
			if !ok {
				return errors.New("servers watch closed")
			}
			if e.Err != nil {
				return e.Err
			}
			v.serversChanged()
		case e, ok := <-allocs:
			if !ok {
				return errors.New("vfs watch closed")
			}
			if e.Err != nil {
				return e.Err
			}
			var a *api.VFAllocation
			if e.Type == store.Put {
				a = new(api.VFAllocation)
				if err := json.Unmarshal(e.Value, a); err != nil {
					v.svc.log.Warn("vf allocation feed: undecodable allocation", "key", e.Key, "err", err)
					continue
				}
				a.Revision = e.ModRevision
			}
			v.mu.Lock()
			v.applyAllocation(e.Key, a, e.ModRevision)
			v.mu.Unlock()
		}
	}
}

func (v *view) cursor(seq uint64) string { return v.epoch + "." + strconv.FormatUint(seq, 10) }

// parseCursor returns the change number of a cursor of this view; ok is false for another
// view's cursor or a malformed one.
func (v *view) parseCursor(c string) (uint64, bool) {
	epoch, num, found := strings.Cut(c, ".")
	if !found || epoch != v.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// now returns the cursor before anything not yet applied.
func (v *view) now() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cursor(v.seq)
}

// changes returns what changed for host after change number since, waiting up to wait for
// something to change; ok is false when since is before the host's horizon or after the view's
// last change (the caller answers with the whole state).
func (v *view) changes(ctx context.Context, host string, since uint64, wait time.Duration) (out api.HostWorkChanges, ok bool, err error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		v.mu.Lock()
		h := v.host(host)
		if since < h.horizon || since > v.seq {
			v.mu.Unlock()
			return out, false, nil
		}
		if h.wakeSeq > since || v.servers > since {
			out = v.collect(host, h, since)
			v.mu.Unlock()
			if out.ServersChanged {
				if out.Servers, err = v.svc.cmp.HostServers(ctx, host); err != nil {
					return out, true, err
				}
			}
			return out, true, nil
		}
		wake := h.wake
		v.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return api.HostWorkChanges{Host: host, Cursor: v.cursor(since)}, true, nil
		case <-v.done:
			return out, false, errViewStopped
		case <-ctx.Done():
			return out, false, ctx.Err()
		}
	}
}

// collect gathers host's changes after since (the latest state of each entry that changed);
// v.mu held.
func (v *view) collect(host string, h *hostView, since uint64) api.HostWorkChanges {
	out := api.HostWorkChanges{Host: host, Cursor: v.cursor(v.seq), ServersChanged: v.servers > since}
	first := sort.Search(len(h.log), func(i int) bool { return h.log[i].seq > since })
	for _, c := range h.log[first:] {
		if c.alloc {
			e := h.allocs[c.key]
			switch {
			case e == nil || e.seq != c.seq: // a later record of it follows
			case e.gone:
				out.GoneAllocations = append(out.GoneAllocations, api.Gone{Key: c.key, Revision: e.rev})
			default:
				out.Allocations = append(out.Allocations, e.v)
			}
			continue
		}
		e := h.ports[c.key]
		switch {
		case e == nil || e.seq != c.seq:
		case e.gone:
			out.GonePorts = append(out.GonePorts, api.Gone{Key: c.key, Revision: e.rev})
		default:
			out.Ports = append(out.Ports, e.v)
		}
	}
	return out
}

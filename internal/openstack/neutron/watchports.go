package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// The whole-port feed: every change of every port, for the parts of vflink that follow ports
// without reading neutron's keys themselves (the Nova notifier).

// PortEvent is one change of a port, as WatchPorts passes it on.
type PortEvent struct {
	// PortID names the port.
	PortID string
	// Port is the port after the change (as stored, not normalised); nil when it was deleted.
	Port *api.Port
	// Revision is the store revision of the change. Changes written in one transaction share it.
	Revision int64
	// Err is set on the last event of a watch that cannot continue (store.ErrCompacted, an
	// outage, a value that does not decode): the caller reads the ports again with WatchPorts
	// and takes them as a new baseline.
	Err error
}

// WatchPorts reads every port as of revision rev (0: the latest) and returns them with the
// revision they were read at (rev itself when it is set); then, until ctx ends, it streams every
// change of a port after that revision, in store order, on events. events is closed when ctx
// ends; a watch that breaks sends one event with Err set and is closed. Reading at a revision
// that was compacted away fails (the caller may start again from the latest, 0).
func (s *Service) WatchPorts(ctx context.Context, rev int64) (ports []api.Port, atRev int64, events <-chan PortEvent, err error) {
	objs, hdr, err := store.List[api.Port](ctx, s.st, "ports/", store.ListOptions{Rev: rev})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read ports at revision %d: %w", rev, err)
	}
	atRev = rev
	if rev <= 0 {
		atRev = hdr // a read at a given revision reports the store's current one instead
	}
	ports = make([]api.Port, len(objs))
	for i := range objs {
		ports[i] = objs[i].Value
	}
	in := s.st.Watch(ctx, "ports/", atRev+1)
	out := make(chan PortEvent, 64)
	go func() {
		defer close(out)
		for e := range in {
			pe, ok := portEvent(e)
			select {
			case out <- pe:
			case <-ctx.Done():
				return
			}
			if !ok {
				return
			}
		}
	}()
	return ports, atRev, out, nil
}

// portEvent decodes one store event under ports/; ok is false when the watch ends with it.
func portEvent(e store.Event) (pe PortEvent, ok bool) {
	if e.Err != nil {
		return PortEvent{Err: e.Err}, false
	}
	pe = PortEvent{PortID: strings.TrimPrefix(e.Key, "ports/"), Revision: e.ModRevision}
	if e.Type == store.Deleted {
		return pe, true
	}
	pe.Port = new(api.Port)
	if err := json.Unmarshal(e.Value, pe.Port); err != nil {
		return PortEvent{Err: fmt.Errorf("decode %s at revision %d: %w", e.Key, e.ModRevision, err)}, false
	}
	return pe, true
}

package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/store"
)

// The host-facing side of ports: what host agents see of them (HostPorts, WatchHostPorts) and
// what they report about them (ReportStatus, ReportStatuses).

// hostPortOf describes p as the agent of its host sees it: the host is "" when no agent serves
// the port (unbound, or a VNIC type without a VF). n may be nil (network gone).
func hostPortOf(p *api.Port, n *api.Network, rev int64) (string, api.HostPort) {
	if p.HostID == "" || !vfVNIC(p.VNICType) {
		return "", api.HostPort{}
	}
	hp := api.HostPort{PortID: p.ID, MAC: p.MACAddress, VNICType: p.VNICType, DeviceID: p.DeviceID, Status: p.Status,
		PCISlot: p.PCIRequest, Revision: rev}
	if n != nil {
		hp.PhysicalNetwork = deref(n.PhysicalNetwork)
		if n.SegmentationID != nil {
			hp.VLAN = *n.SegmentationID
		}
	}
	if p.TrunkDetails != nil {
		hp.VLAN = 0 // a trunk's parent: its VF passes the VM's tags (the switch port does the VLANs)
	}
	return p.HostID, hp
}

// sameHostPort compares two descriptions but for their revisions.
func sameHostPort(a, b api.HostPort) bool {
	a.Revision, b.Revision = 0, 0
	return a == b
}

// getPorts reads ports by ID, a few at a time, each as of rev (0: latest).
func getPorts(ctx context.Context, st *store.Store, ids []string, rev int64) ([]store.Object[api.Port], []error) {
	objs := make([]store.Object[api.Port], len(ids))
	errs := make([]error, len(ids))
	const readers = 8
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(readers, len(ids)) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(ids) {
					return
				}
				objs[i], errs[i] = store.GetAt[api.Port](ctx, st, portKey(ids[i]), store.ListOptions{Rev: rev})
			}
		})
	}
	wg.Wait()
	return objs, errs
}

// HostPortChange is one change of a port as host agents see it.
type HostPortChange struct {
	PortID string
	// Host is the host whose agent serves the port after the change: its binding:host_id when
	// the port is bound with a VF-backed VNIC type, "" otherwise (unbound, deleted, other type).
	Host string
	// PrevHost is the host whose agent served the port before the change ("" none).
	PrevHost string
	// Port is the port as Host's agent sees it (when Host is set).
	Port api.HostPort
	// Revision is the store revision of the change.
	Revision int64
	// StatusOnly: the port stays on the same host and only its status changed (what its agent
	// reports; the agent knows it already).
	StatusOnly bool
}

// HostPortFeed is what WatchHostPorts keeps of the ports host agents serve, as of the latest
// event it read: ReportStatuses starts from it instead of reading each port (a copy that is
// stale fails the transaction's compare and is read again).
type HostPortFeed struct {
	mu    sync.Mutex
	ports map[string]store.Object[api.Port]
}

func (f *HostPortFeed) get(id string) (store.Object[api.Port], bool) {
	if f == nil {
		return store.Object[api.Port]{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.ports[id]
	return o, ok
}

func (f *HostPortFeed) set(id string, o *store.Object[api.Port]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o == nil {
		delete(f.ports, id)
	} else {
		f.ports[id] = *o
	}
}

type servedPort struct {
	host string
	port api.HostPort
}

// WatchHostPorts follows which host serves which port. It reads every port and network (with
// ctx) and returns the revision of that read; then, until watchCtx ends or the watch breaks, it
// watches ports/ and networks/ after that revision and calls fn, from one goroutine and in store
// order, with the changes that matter to host agents: a port bound to a host, unbound, moved,
// deleted, or changed in what its agent sees (a change of its name or of a condition is not
// passed on). stopped then gets the error that ended the watch (ErrCompacted among others): the
// caller starts again with a new read. Once it has returned, it never reads the store again,
// only the watch's events, so it cannot outlive the store.
func (s *Service) WatchHostPorts(ctx, watchCtx context.Context, fn func([]HostPortChange)) (feed *HostPortFeed, rev int64, stopped <-chan error, err error) {
	ports, rev, err := store.List[api.Port](ctx, s.st, "ports/")
	if err != nil {
		return nil, 0, nil, err
	}
	nets, _, err := store.List[api.Network](ctx, s.st, "networks/", store.ListOptions{Rev: rev})
	if err != nil {
		return nil, 0, nil, err
	}
	feed = &HostPortFeed{ports: map[string]store.Object[api.Port]{}}
	byID := make(map[string]*api.Network, len(nets))
	for i := range nets {
		byID[nets[i].Value.ID] = &nets[i].Value
	}
	served := map[string]servedPort{}
	for i, o := range ports {
		if host, hp := hostPortOf(&o.Value, byID[o.Value.NetworkID], o.ModRevision); host != "" {
			served[o.Value.ID] = servedPort{host: host, port: hp}
			feed.ports[o.Value.ID] = ports[i]
		}
	}
	portEvents := s.st.Watch(watchCtx, "ports/", rev+1)
	netEvents := s.st.Watch(watchCtx, "networks/", rev+1)
	done := make(chan error, 1)
	go func() { done <- followHostPorts(portEvents, netEvents, byID, served, feed, fn) }()
	return feed, rev, done, nil
}

// followHostPorts turns port and network events into HostPortChanges until a watch ends.
func followHostPorts(portEvents, netEvents <-chan store.Event, nets map[string]*api.Network, served map[string]servedPort, feed *HostPortFeed, fn func([]HostPortChange)) error {
	netEvent := func(e store.Event, ok bool) error {
		switch {
		case !ok:
			return errors.New("networks watch closed")
		case e.Err != nil:
			return e.Err
		}
		id := e.Key[len("networks/"):]
		if e.Type == store.Deleted {
			delete(nets, id)
			return nil
		}
		var n api.Network
		if err := json.Unmarshal(e.Value, &n); err != nil {
			return fmt.Errorf("decode %s: %w", e.Key, err)
		}
		nets[id] = &n
		return nil
	}
	// network waits for a network whose creation has not come through its own watch yet (it
	// came before the port's, so it is on its way); a port of a missing network gets none.
	network := func(id string) (*api.Network, error) {
		timeout := time.NewTimer(time.Second)
		defer timeout.Stop()
		for {
			if n, ok := nets[id]; ok {
				return n, nil
			}
			select {
			case e, ok := <-netEvents:
				if err := netEvent(e, ok); err != nil {
					return nil, err
				}
			case <-timeout.C:
				return nil, nil
			}
		}
	}
	var changes []HostPortChange
	portEvent := func(e store.Event, ok bool) error {
		switch {
		case !ok:
			return errors.New("ports watch closed")
		case e.Err != nil:
			return e.Err
		}
		id := e.Key[len("ports/"):]
		old := served[id]
		c := HostPortChange{PortID: id, PrevHost: old.host, Revision: e.ModRevision}
		var o *store.Object[api.Port]
		if e.Type == store.Put {
			o = &store.Object[api.Port]{Key: e.Key, ModRevision: e.ModRevision}
			if err := json.Unmarshal(e.Value, &o.Value); err != nil {
				return fmt.Errorf("decode %s: %w", e.Key, err)
			}
			p := &o.Value
			var n *api.Network
			if p.HostID != "" && vfVNIC(p.VNICType) {
				var err error
				if n, err = network(p.NetworkID); err != nil {
					return err
				}
			}
			c.Host, c.Port = hostPortOf(p, n, e.ModRevision)
		}
		if c.Host == "" {
			o = nil
		}
		feed.set(id, o)
		switch {
		case c.Host == "" && old.host == "":
			return nil // served by no agent before or after
		case c.Host == old.host && sameHostPort(c.Port, old.port):
			served[id] = servedPort{host: c.Host, port: c.Port}
			return nil // nothing an agent sees changed
		case c.Host == "":
			delete(served, id)
		default:
			if c.Host == old.host {
				was, now := old.port, c.Port
				was.Status, now.Status = "", ""
				c.StatusOnly = sameHostPort(was, now)
			}
			served[id] = servedPort{host: c.Host, port: c.Port}
		}
		changes = append(changes, c)
		return nil
	}
	for {
		select {
		case e, ok := <-netEvents:
			if err := netEvent(e, ok); err != nil {
				return err
			}
		case e, ok := <-portEvents:
			changes = nil
			err := portEvent(e, ok)
			// pass on what has already arrived in one call
			for err == nil && len(changes) < 512 && len(portEvents) > 0 {
				e, ok := <-portEvents
				err = portEvent(e, ok)
			}
			if len(changes) > 0 {
				fn(changes)
			}
			if err != nil {
				return err
			}
		}
	}
}

// ValidReportStatus checks the status an agent reports.
func ValidReportStatus(status string) error {
	switch status {
	case api.StatusActive, api.StatusBuild, api.StatusDown, api.StatusError:
		return nil
	}
	return invalidInput("status %q is not one of ACTIVE, BUILD, DOWN, ERROR.", status)
}

// applyReport records st on p: status, additions to binding:profile and conditions (by type).
func applyReport(p *api.Port, st api.PortStatus, now string) {
	p.Status = st.Status
	switch {
	case st.BindingFailed:
		p.VIFType = api.VIFBindingFailed
	case p.VIFType == api.VIFBindingFailed && st.Status == api.StatusActive:
		// served after all (the VF it asked for was freed): bound as its VNIC type binds
		p.VIFType = api.VIFHwVeb
		if p.VNICType == api.VNICDirectPhysical {
			p.VIFType = api.VIFHostdevPhys
		}
	}
	if len(st.Profile) > 0 {
		prof := make(map[string]any, len(p.Profile)+len(st.Profile))
		for k, v := range p.Profile {
			prof[k] = v
		}
		for k, v := range st.Profile {
			prof[k] = v
		}
		p.Profile = prof
	}
	for _, c := range st.Conditions {
		p.Conditions = setCondition(p.Conditions, c, now)
	}
	p.RevisionNumber++
	p.UpdatedAt = now
}

// maxReportsPerTxn keeps a transaction of reports (a compare, a put and a read-back each) well
// under etcd's default limit of 128 operations per list.
const maxReportsPerTxn = 64

// ReportStatuses records what host's agent says about many ports, in one transaction per up to
// 64 of them. Each report is checked as ReportStatus does. For each report, in order, errs holds
// nil or why it was not recorded (400 bad status or the same port twice, 404 port gone, 409 bound
// to another host, or the store's error), and revs the store revision that recorded it.
//
// feed, when set (the caller follows WatchHostPorts), spares reading the ports it knows.
func (s *Service) ReportStatuses(ctx context.Context, host string, reports []api.PortReport, feed *HostPortFeed) (revs []int64, errs []error) {
	revs, errs = make([]int64, len(reports)), make([]error, len(reports))
	seen := make(map[string]bool, len(reports))
	var todo []int
	for i, r := range reports {
		if err := ValidReportStatus(r.Status); err != nil {
			errs[i] = err
			continue
		}
		if seen[r.PortID] {
			errs[i] = invalidInput("port %s is reported twice in one batch.", r.PortID)
			continue
		}
		seen[r.PortID] = true
		todo = append(todo, i)
	}
	for len(todo) > 0 {
		chunk := todo[:min(len(todo), maxReportsPerTxn)]
		todo = todo[len(chunk):]
		rev, err := s.reportChunk(ctx, host, reports, chunk, errs, feed)
		for _, i := range chunk {
			switch {
			case err != nil:
				errs[i] = err
			case errs[i] == nil:
				revs[i] = rev
			}
		}
	}
	return revs, errs
}

func (s *Service) reportChunk(ctx context.Context, host string, reports []api.PortReport, chunk []int, errs []error, feed *HostPortFeed) (int64, error) {
	part := make([]api.PortReport, len(chunk))
	for j, i := range chunk {
		part[j] = reports[i]
	}
	var rev int64
	err := retry(ctx, func(attempt int) error {
		t := s.st.Txn()
		perr, err := s.ReportTxn(ctx, t, host, part, feed, attempt)
		if err != nil {
			return err
		}
		writes := 0
		for j, i := range chunk {
			if errs[i] = perr[j]; perr[j] == nil {
				writes++
			}
		}
		if writes == 0 {
			return nil
		}
		r, err := t.Commit(ctx)
		rev = r
		return err
	})
	return rev, err
}

// ReportTxn adds to t, for each of host's reports (distinct ports, valid statuses), the update
// of its port (status, binding:profile, conditions) at the revision it was read, so the reports
// commit with whatever else t holds. errs says, report by report, why one was left out: 404 the
// port is gone, 409 it is bound to another host. attempt is the caller's try (store.Retry):
// the first reads the ports from feed when it knows them (it may be nil) and serializably
// otherwise, a later one reads them linearizably. A refusal must rest on a linearizable read, so
// the first attempt returns store.ErrConflict instead of refusing: the caller tries again.
func (s *Service) ReportTxn(ctx context.Context, t *store.Txn, host string, reports []api.PortReport, feed *HostPortFeed, attempt int) (errs []error, err error) {
	objs, rerrs := make([]store.Object[api.Port], len(reports)), make([]error, len(reports))
	var unknown []int
	for j, r := range reports {
		var ok bool
		if objs[j], ok = feed.get(r.PortID); !ok || attempt > 0 {
			unknown = append(unknown, j)
		}
	}
	if len(unknown) > 0 {
		read := make([]string, len(unknown))
		for k, j := range unknown {
			read[k] = reports[j].PortID
		}
		ro, re := getPorts(ctx, s.view(attempt), read, 0)
		for k, j := range unknown {
			objs[j], rerrs[j] = ro[k], re[k]
		}
	}
	errs = make([]error, len(reports))
	now := s.now()
	refused := 0
	for j, r := range reports {
		switch {
		case errors.Is(rerrs[j], store.ErrNotFound):
			errs[j] = notFound("port", r.PortID)
			refused++
			continue
		case rerrs[j] != nil:
			return nil, rerrs[j]
		}
		p := objs[j].Value
		if p.HostID != host {
			errs[j] = errf(http.StatusConflict, "PortNotBoundHere", "Port %s is bound to host %q, not %q.", r.PortID, p.HostID, host)
			refused++
			continue
		}
		applyReport(&p, r.PortStatus, now)
		t.Update(portKey(r.PortID), p, objs[j].ModRevision)
	}
	if refused > 0 && attempt == 0 {
		return nil, store.ErrConflict // a refusal must rest on a linearizable read: read again
	}
	return errs, nil
}

// HostPorts lists the VF-backed ports bound to host with their network's physical network and
// VLAN (each with the revision of its last write), and the store revision they were read at.
func (s *Service) HostPorts(ctx context.Context, host string) ([]api.HostPort, int64, error) {
	// the bound-port index (value: host) narrows the read to ports bound somewhere
	bound, rev, err := store.List[string](ctx, s.st, "idx/net-bound/")
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	for _, b := range bound {
		if b.Value == host {
			_, portID, _ := strings.Cut(strings.TrimPrefix(b.Key, "idx/net-bound/"), "/")
			ids = append(ids, portID)
		}
	}
	objs, errs := getPorts(ctx, s.st, ids, rev)
	out := []api.HostPort{}
	nets := map[string]*api.Network{}
	at := store.ListOptions{Rev: rev}
	for i, po := range objs {
		if errors.Is(errs[i], store.ErrNotFound) {
			continue
		} else if errs[i] != nil {
			return nil, 0, errs[i]
		}
		p := po.Value
		if !vfVNIC(p.VNICType) {
			continue
		}
		n, ok := nets[p.NetworkID]
		if !ok {
			no, err := store.GetAt[api.Network](ctx, s.st, netKey(p.NetworkID), at)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, 0, err
			}
			n = &no.Value
			nets[p.NetworkID] = n
		}
		_, hp := hostPortOf(&p, n, po.ModRevision)
		out = append(out, hp)
	}
	return out, rev, nil
}

// ReportStatus records what the host agent serving a port says about it: status, additions to
// binding:profile (pci_slot, pci_vendor_info, physical_network) and conditions (by type).
func (s *Service) ReportStatus(ctx context.Context, id, host string, st api.PortStatus) (api.Port, error) {
	if err := ValidReportStatus(st.Status); err != nil {
		return api.Port{}, err
	}
	var out api.Port
	err := retry(ctx, func(int) error {
		o, err := store.Get[api.Port](ctx, s.st, portKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return notFound("port", id)
		} else if err != nil {
			return err
		}
		p := o.Value
		if p.HostID != host {
			return errf(http.StatusConflict, "PortNotBoundHere", "Port %s is bound to host %q, not %q.", id, p.HostID, host)
		}
		applyReport(&p, st, s.now())
		if _, err := store.Update(ctx, s.st, portKey(id), p, o.ModRevision); err != nil {
			return err
		}
		out = p
		return nil
	})
	return normPort(out), err
}

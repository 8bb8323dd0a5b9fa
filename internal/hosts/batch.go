package hosts

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
	"github.com/vflink/vflink/internal/vflinkapi"
)

const (
	// maxBatchItems bounds one HostBatch.
	maxBatchItems = 4096
	// maxClaimsPerTxn keeps a claim transaction (two creates each: compares, puts and read-backs)
	// under etcd's default limit of 128 operations per list; so does maxReleasesPerTxn.
	maxClaimsPerTxn   = 60
	maxReleasesPerTxn = 60
	// a serve is three: the two creates of a claim and the port's update
	maxServesPerTxn = 40
	// txnAttempts bounds the transactions one chunk may take while conflicts are sorted out
	// (each conflict settles at least one item, so a chunk never needs more than its size + 1).
	txnAttempts = maxClaimsPerTxn + 2
)

// batch serves POST /hosts/{host}/batch: releases, then claims and serves, while the reports
// commit in parallel; every item gets its own outcome.
func (s *Service) batch(w http.ResponseWriter, r *http.Request) error {
	host := r.PathValue("host")
	var b api.HostBatch
	if err := decode(r, &b); err != nil {
		return err
	}
	if n := len(b.Releases) + len(b.Claims) + len(b.Serves) + len(b.Reports); n > maxBatchItems {
		return vflinkapi.Errorf(http.StatusBadRequest, "a batch holds at most %d items, not %d", maxBatchItems, n)
	}
	ctx := r.Context()
	res := api.HostBatchResult{Releases: make([]api.BatchItem, len(b.Releases)), Claims: make([]api.BatchItem, len(b.Claims)),
		Serves: make([]api.BatchItem, len(b.Serves)), Reports: make([]api.BatchItem, len(b.Reports))}
	var wg sync.WaitGroup
	if len(b.Reports) > 0 {
		wg.Go(func() { s.reportAll(ctx, host, b.Reports, res.Reports) })
	}
	s.releaseAll(ctx, host, b.Releases, res.Releases)
	if len(b.Claims) > 0 {
		claims := make([]api.PortServe, len(b.Claims))
		for i, a := range b.Claims {
			claims[i].Claim = a
		}
		wg.Go(func() { s.claimAll(ctx, host, claims, false, res.Claims) })
	}
	s.claimAll(ctx, host, b.Serves, true, res.Serves)
	wg.Wait()
	vflinkapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

// runningFeed returns the port feed of the running change view, if any.
func (s *Service) runningFeed() *neutron.HostPortFeed {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if s.view != nil && !isClosed(s.view.done) {
		return s.view.feed
	}
	return nil
}

// itemError turns an error into an item outcome (as vflinkapi.WriteError would answer it).
func itemError(err error) api.BatchItem {
	var st interface {
		error
		HTTPStatus() int
	}
	switch {
	case errors.As(err, &st):
		return api.BatchItem{Status: st.HTTPStatus(), Message: st.Error()}
	case errors.Is(err, store.ErrContention):
		return api.BatchItem{Status: http.StatusConflict, Message: "changed concurrently too many times; retry"}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return api.BatchItem{Status: http.StatusServiceUnavailable, Message: "the store is unavailable; retry later"}
	}
	return api.BatchItem{Status: http.StatusInternalServerError, Message: "internal error"}
}

func (s *Service) reportAll(ctx context.Context, host string, reports []api.PortReport, out []api.BatchItem) {
	revs, errs := s.net.ReportStatuses(ctx, host, reports, s.runningFeed())
	for i := range reports {
		if errs[i] != nil {
			out[i] = itemError(errs[i])
		} else {
			out[i] = api.BatchItem{Status: http.StatusOK, Revision: revs[i]}
		}
	}
}

// claimAll gives VFs to ports (claims: serves without reports) or gives them and reports the
// ports (serves: each claim commits with its port's report, in one transaction, or not at all),
// in create-only transactions of up to maxClaimsPerTxn claims or maxServesPerTxn serves.
func (s *Service) claimAll(ctx context.Context, host string, items []api.PortServe, reported bool, out []api.BatchItem) {
	what, size := "claimed", maxClaimsPerTxn
	if reported {
		what, size = "served", maxServesPerTxn
	}
	var todo []int
	pcis, ports := map[string]bool{}, map[string]bool{}
	for i, it := range items {
		a := it.Claim
		switch {
		case !pciAddr.MatchString(a.PCIAddress):
			out[i] = api.BatchItem{Status: http.StatusBadRequest, Message: "PCI address " + strconv.Quote(a.PCIAddress) + " is not like 0000:83:10.1"}
		case a.PortID == "" || a.PF == "" || a.VFIndex < 0:
			out[i] = api.BatchItem{Status: http.StatusBadRequest, Message: "an allocation needs port_id, pf and vf_index >= 0"}
		case pcis[a.PCIAddress] || ports[a.PortID]:
			out[i] = api.BatchItem{Status: http.StatusConflict, Message: "VF " + a.PCIAddress + " or port " + a.PortID + " is " + what + " twice in one batch"}
		default:
			if reported {
				if err := neutron.ValidReportStatus(it.Report.Status); err != nil {
					out[i] = itemError(err)
					continue
				}
			}
			pcis[a.PCIAddress], ports[a.PortID] = true, true
			items[i].Claim.Host, items[i].Claim.Revision = host, 0
			todo = append(todo, i)
		}
	}
	var feed *neutron.HostPortFeed
	if reported {
		feed = s.runningFeed()
	}
	for len(todo) > 0 {
		chunk := todo[:min(len(todo), size)]
		todo = todo[len(chunk):]
		s.claimChunk(ctx, host, items, reported, chunk, out, feed)
	}
}

// claimChunk commits one transaction of claims (or serves, when reported). A serve whose port
// is gone or bound elsewhere is left out (404, 409). A conflict names one key; that item is
// settled: the same claim again (a retry after a lost answer) is done, and a serve then keeps
// only its report; any other holder of the VF or the port ends the item (409, with the holder's
// allocation). The transaction then runs again without what was settled.
func (s *Service) claimChunk(ctx context.Context, host string, items []api.PortServe, reported bool, chunk []int, out []api.BatchItem, feed *neutron.HostPortFeed) {
	pending := append([]int(nil), chunk...)
	held := map[int]*api.BatchItem{} // a serve whose claim is there already: only its report is left
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == txnAttempts {
			for _, i := range pending {
				out[i] = api.BatchItem{Status: http.StatusConflict, Message: "the VFs or ports changed concurrently too many times; retry"}
			}
			return
		}
		t := s.st.Txn()
		if reported {
			reports := make([]api.PortReport, len(pending))
			for j, i := range pending {
				reports[j] = api.PortReport{PortID: items[i].Claim.PortID, PortStatus: items[i].Report}
			}
			errs, err := s.net.ReportTxn(ctx, t, host, reports, feed, attempt)
			if errors.Is(err, store.ErrConflict) {
				continue // a refusal to confirm with a linearizable read
			}
			if err != nil {
				for _, i := range pending {
					out[i] = itemError(err)
				}
				return
			}
			kept := pending[:0:0]
			for j, i := range pending {
				if errs[j] != nil {
					out[i] = itemError(errs[j])
				} else {
					kept = append(kept, i)
				}
			}
			if pending = kept; len(pending) == 0 {
				return
			}
		}
		for _, i := range pending {
			if held[i] == nil {
				a := items[i].Claim
				t.Create(allocKey(host, a.PCIAddress), a)
				t.Create(portVFKey(a.PortID), host+"/"+a.PCIAddress)
			}
		}
		rev, err := t.Commit(ctx)
		if err == nil {
			for _, i := range pending {
				if h := held[i]; h != nil {
					out[i] = *h
					out[i].Revision = rev
					continue
				}
				a := items[i].Claim
				a.Revision = rev
				out[i] = api.BatchItem{Status: http.StatusCreated, Revision: rev, Allocation: &a}
			}
			return
		}
		var ce *store.ConflictError
		if !errors.As(err, &ce) {
			for _, i := range pending {
				out[i] = itemError(err)
			}
			return
		}
		if ce.Reason != store.Exists {
			continue // a port or a key moved between the reads and the commit: read again
		}
		for j, i := range pending {
			a := items[i].Claim
			if ce.Key != allocKey(host, a.PCIAddress) && ce.Key != portVFKey(a.PortID) {
				continue
			}
			item := s.claimConflict(ctx, host, a, ce.Key)
			if item.Status == http.StatusOK && reported {
				held[i] = &item // the same claim: its report still has to commit
				break
			}
			out[i] = item
			pending = append(pending[:j], pending[j+1:]...)
			break
		}
	}
}

// claimConflict settles a claim whose key (the VF's or the port's) exists: the same claim again
// is done (200); otherwise 409 with the holder's allocation when it can be read.
func (s *Service) claimConflict(ctx context.Context, host string, a api.VFAllocation, key string) api.BatchItem {
	cur, err := store.Get[api.VFAllocation](ctx, s.st, allocKey(host, a.PCIAddress))
	if err == nil && cur.Value.PortID == a.PortID {
		v := cur.Value
		v.Revision = cur.ModRevision
		return api.BatchItem{Status: http.StatusOK, Revision: cur.ModRevision, Allocation: &v}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return itemError(err)
	}
	if key == portVFKey(a.PortID) {
		held, err := store.Get[string](ctx, s.st, portVFKey(a.PortID))
		if err != nil {
			if errors.Is(err, store.ErrNotFound) { // released meanwhile: the agent claims again
				return api.BatchItem{Status: http.StatusConflict, Message: "port " + a.PortID + " held a VF that was just released; retry"}
			}
			return itemError(err)
		}
		item := api.BatchItem{Status: http.StatusConflict, Message: "port " + a.PortID + " already holds VF " + held.Value}
		if h, pci, _ := strings.Cut(held.Value, "/"); h == host {
			if o, err := store.Get[api.VFAllocation](ctx, s.st, allocKey(host, pci)); err == nil {
				v := o.Value
				v.Revision = o.ModRevision
				item.Allocation, item.Revision = &v, o.ModRevision
			}
		}
		return item
	}
	if errors.Is(err, store.ErrNotFound) {
		return api.BatchItem{Status: http.StatusConflict, Message: "VF " + a.PCIAddress + " was just released; retry"}
	}
	v := cur.Value
	v.Revision = cur.ModRevision
	return api.BatchItem{Status: http.StatusConflict, Revision: cur.ModRevision, Allocation: &v,
		Message: "VF " + a.PCIAddress + " on host " + host + " is already given to port " + cur.Value.PortID}
}

// releaseAll frees VFs in transactions of up to maxReleasesPerTxn: each allocation is deleted
// only if it is still the one read (and still the named port's), with its vf-ports key.
func (s *Service) releaseAll(ctx context.Context, host string, rels []api.VFRelease, out []api.BatchItem) {
	var todo []int
	seen := map[string]bool{}
	for i, rel := range rels {
		switch {
		case !pciAddr.MatchString(rel.PCIAddress):
			out[i] = api.BatchItem{Status: http.StatusBadRequest, Message: "PCI address " + strconv.Quote(rel.PCIAddress) + " is not like 0000:83:10.1"}
		case seen[rel.PCIAddress]:
			out[i] = api.BatchItem{Status: http.StatusConflict, Message: "VF " + rel.PCIAddress + " is released twice in one batch"}
		default:
			seen[rel.PCIAddress] = true
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		chunk := todo[:min(len(todo), maxReleasesPerTxn)]
		todo = todo[len(chunk):]
		s.releaseChunk(ctx, host, rels, chunk, out)
	}
}

func (s *Service) releaseChunk(ctx context.Context, host string, rels []api.VFRelease, chunk []int, out []api.BatchItem) {
	var deleting []int
	err := store.Retry(ctx, 16, func(int) error {
		objs, rev, err := store.List[api.VFAllocation](ctx, s.st, "vfs/"+host+"/")
		if err != nil {
			return err
		}
		cur := make(map[string]store.Object[api.VFAllocation], len(objs))
		for _, o := range objs {
			cur[o.Key] = o
		}
		t := s.st.Txn()
		deleting = deleting[:0]
		for _, i := range chunk {
			rel := rels[i]
			o, ok := cur[allocKey(host, rel.PCIAddress)]
			switch {
			case !ok:
				out[i] = api.BatchItem{Status: http.StatusOK, Revision: rev} // free already
			case rel.PortID != "" && o.Value.PortID != rel.PortID:
				out[i] = api.BatchItem{Status: http.StatusConflict,
					Message: "VF " + rel.PCIAddress + " on host " + host + " belongs to port " + o.Value.PortID + ", not " + rel.PortID}
			default:
				t.Delete(o.Key, o.ModRevision)
				t.Remove(portVFKey(o.Value.PortID))
				deleting = append(deleting, i)
			}
		}
		if len(deleting) == 0 {
			return nil
		}
		rev, err = t.Commit(ctx)
		if err != nil {
			return err
		}
		for _, i := range deleting {
			out[i] = api.BatchItem{Status: http.StatusOK, Revision: rev}
		}
		return nil
	})
	if err != nil {
		for _, i := range chunk {
			if out[i].Status == 0 || slices.Contains(deleting, i) {
				out[i] = itemError(err)
			}
		}
	}
}

// parseTimeout reads ?timeout= (seconds) of a long poll: at most maxWait, default maxWait.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return maxWait, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, vflinkapi.Errorf(http.StatusBadRequest, "timeout %q is not a positive number of seconds", s)
	}
	return min(time.Duration(f*float64(time.Second)), maxWait), nil
}

package neutron

// Port creation: one port or a native bulk, decoded into drafts and staged into one transaction.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

func canUseNetwork(c *auth.Context, n *api.Network) bool {
	return c.IsAdmin() || n.ProjectID == c.ProjectID || n.Shared
}

func (s *Service) createPort(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	items, bulk, err := parseBulk(b, "port", "ports")
	if err != nil {
		return err
	}
	ps, err := s.createPorts(r.Context(), caller(r), items)
	if err != nil {
		return err
	}
	if bulk {
		writeJSON(w, http.StatusCreated, map[string]any{"ports": ps})
		return nil
	}
	writeJSON(w, http.StatusCreated, map[string]any{"port": ps[0]})
	return nil
}

// CreatePort creates a port from a Neutron create body ({"port": {...}}) on behalf of c.
func (s *Service) CreatePort(ctx context.Context, c *auth.Context, body []byte) (api.Port, error) {
	a, err := parseBody(body, "port")
	if err != nil {
		return api.Port{}, err
	}
	ps, err := s.createPorts(ctx, c, []*attrs{a})
	if err != nil {
		return api.Port{}, err
	}
	return ps[0], nil
}

// portDraft is one port of a create request, decoded and validated, before the transaction.
type portDraft struct {
	req  portRequest
	p    api.Port
	mac  string
	plan []plannedIP
}

func (s *Service) decodeNewPort(c *auth.Context, a *attrs) (*portDraft, error) {
	req, err := decodePort(a, true)
	if err != nil {
		return nil, err
	}
	proj, err := owner(c, a)
	if err != nil {
		return nil, err
	}
	if err := a.rest(); err != nil {
		return nil, err
	}
	now := s.now()
	d := &portDraft{req: req, mac: req.mac, p: api.Port{
		ID: uuid.NewString(), NetworkID: req.networkID, TenantID: proj, ProjectID: proj, AdminStateUp: true,
		Status: api.StatusDown, PortSecurityEnabled: true, VNICType: api.VNICNormal, Profile: map[string]any{},
		CreatedAt: now, UpdatedAt: now, RevisionNumber: 1,
	}}
	req.applyTo(&d.p)
	return d, nil
}

// portBatch is what the ports of one transaction share: their networks and subnets (read once),
// the addresses and MACs already staged, and how many ports each project gets.
type portBatch struct {
	nets  map[string]store.Object[api.Network]
	subs  map[string][]store.Object[api.Subnet]
	revs  map[string]int64
	taken map[string]map[netip.Addr]bool // network → staged addresses
	macs  map[string]bool                // staged mac/<net>/<mac> keys
	quota map[string]int                 // project → counted ports
}

func newPortBatch() *portBatch {
	return &portBatch{nets: map[string]store.Object[api.Network]{}, subs: map[string][]store.Object[api.Subnet]{},
		revs: map[string]int64{}, taken: map[string]map[netip.Addr]bool{}, macs: map[string]bool{}, quota: map[string]int{}}
}

// createPorts creates the ports of one request in one transaction: all of them or none.
func (s *Service) createPorts(ctx context.Context, c *auth.Context, as []*attrs) ([]api.Port, error) {
	drafts := make([]*portDraft, len(as))
	for i, a := range as {
		d, err := s.decodeNewPort(c, a)
		if err != nil {
			return nil, bulkErr(err, i, len(as))
		}
		drafts[i] = d
	}
	al := newAllocation()
	err := retry(ctx, func(attempt int) error {
		st := s.view(attempt)
		b := newPortBatch()
		t := s.st.Txn()
		for i, d := range drafts {
			if err := s.stagePort(ctx, st, t, c, d, al, b); err != nil {
				return bulkErr(err, i, len(drafts))
			}
		}
		for _, proj := range sortedKeys(b.quota) {
			if err := s.checkQuotaN(ctx, st, t, proj, "port", b.quota[proj]); err != nil {
				return err
			}
		}
		_, err := t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			for i, d := range drafts {
				if e := portConflict(ce, d.plan, al, d.req.networkID, d.mac, d.req.macOK); e != nil {
					return bulkErr(e, i, len(drafts))
				}
			}
		}
		return txnSizeErr(err, len(drafts), "ports")
	})
	if err != nil {
		return nil, err
	}
	out := make([]api.Port, len(drafts))
	for i, d := range drafts {
		s.log.Debug("port created", "port", d.p.ID, "network", d.p.NetworkID, "mac", d.p.MACAddress)
		out[i] = normPort(d.p)
	}
	return out, nil
}

// stagePort adds one new port to t: its addresses and MAC reserved, its indexes, the compares on
// its network and subnets.
func (s *Service) stagePort(ctx context.Context, st *store.Store, t *store.Txn, c *auth.Context, d *portDraft, al *allocation, b *portBatch) error {
	req, p := d.req, &d.p
	no, ok := b.nets[req.networkID]
	if !ok {
		var err error
		if no, err = s.visibleNetworkIn(ctx, st, c, req.networkID); err != nil {
			return err
		}
		if !canUseNetwork(c, &no.Value) {
			return notFound("network", req.networkID)
		}
		subs, rev, err := s.netSubnets(ctx, st, req.networkID)
		if err != nil {
			return err
		}
		b.nets[req.networkID], b.subs[req.networkID], b.revs[req.networkID] = no, subs, rev
		b.taken[req.networkID] = map[netip.Addr]bool{}
	}
	if !req.portSecOK {
		p.PortSecurityEnabled = no.Value.PortSecurityEnabled
	}
	if !req.macOK {
		d.mac = s.cfg.BaseMAC.generate()
		for b.macs[macKey(req.networkID, d.mac)] {
			d.mac = s.cfg.BaseMAC.generate()
		}
	} else if b.macs[macKey(req.networkID, d.mac)] {
		return errf(http.StatusConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", req.networkID, d.mac)
	}
	plan, err := s.planIPs(ctx, al, &no.Value, b.subs[req.networkID], req, nil, b.taken[req.networkID], d.mac)
	if err != nil {
		return err
	}
	d.plan = plan
	b.macs[macKey(req.networkID, d.mac)] = true
	p.MACAddress = d.mac
	p.FixedIPs = make([]api.FixedIP, len(plan))
	if p.DeviceOwner != api.DeviceOwnerDevicePort { // the binder's own ports are not the project's to count
		b.quota[p.ProjectID]++
		t.Create(projectPortKey(p.ProjectID, p.ID), "")
	}
	t.Unchanged(netKey(req.networkID), no.ModRevision)
	t.PrefixUnchangedSince("idx/net-subnets/"+req.networkID+"/", b.revs[req.networkID])
	for i, pl := range plan {
		p.FixedIPs[i] = api.FixedIP{SubnetID: pl.subnet.Value.ID, IPAddress: pl.ip.String()}
		t.Unchanged(subnetKey(pl.subnet.Value.ID), pl.subnet.ModRevision)
		t.Create(ipKey(pl.subnet.Value.ID, pl.ip), p.ID)
	}
	bind(p, &no.Value)
	if err := s.stagePortExt(ctx, c, t, p, nil, req.ext); err != nil {
		return err
	}
	t.Create(portKey(p.ID), *p)
	t.Create("idx/net-ports/"+req.networkID+"/"+p.ID, "")
	t.Create(macKey(req.networkID, d.mac), p.ID)
	if p.HostID != "" {
		t.Create("idx/net-bound/"+req.networkID+"/"+p.ID, p.HostID)
	}
	return nil
}

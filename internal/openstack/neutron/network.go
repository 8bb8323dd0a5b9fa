package neutron

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

const maxVLAN = 4094

func netKey(id string) string { return "networks/" + id }

// provider is a network's resolved provider attributes.
type provider struct {
	typ, physnet string
	seg          *int
	autoSeg      bool // choose the VLAN: VN ID by convention, else from the physnet's range
}

func (p provider) reservation() string {
	switch {
	case p.typ == api.NetworkTypeFlat:
		return "vlan/" + p.physnet + "/flat"
	case p.typ == api.NetworkTypeVLAN && p.seg != nil && *p.seg > 0:
		return "vlan/" + p.physnet + "/" + strconv.Itoa(*p.seg)
	}
	return ""
}

func providerOf(n *api.Network) provider {
	var p provider
	if n.NetworkType != nil {
		p.typ = *n.NetworkType
	}
	if n.PhysicalNetwork != nil {
		p.physnet = *n.PhysicalNetwork
	}
	if n.SegmentationID != nil {
		v := *n.SegmentationID
		p.seg = &v
	}
	return p
}

func (p provider) apply(n *api.Network) {
	n.NetworkType, n.PhysicalNetwork, n.SegmentationID = nil, nil, nil
	if p.typ != "" {
		t, ph := p.typ, p.physnet
		n.NetworkType, n.PhysicalNetwork = &t, &ph
	}
	if p.seg != nil {
		v := *p.seg
		n.SegmentationID = &v
	}
}

func (p provider) equal(q provider) bool {
	if p.typ != q.typ || p.physnet != q.physnet || (p.seg == nil) != (q.seg == nil) {
		return false
	}
	return p.seg == nil || *p.seg == *q.seg
}

// providerRequest is what a body said about provider attributes.
type providerRequest struct {
	typ, physnet                  string
	typGiven, physGiven, segGiven bool
	seg                           *int
}

func (r providerRequest) any() bool { return r.typGiven || r.physGiven || r.segGiven }

func decodeProvider(a *attrs) (providerRequest, error) {
	var r providerRequest
	var err error
	if a.isNull("provider:network_type") {
		a.has("provider:network_type")
		r.typGiven = true
	} else if r.typ, r.typGiven, err = a.str("provider:network_type", maxStr); err != nil {
		return r, err
	}
	if a.isNull("provider:physical_network") {
		a.has("provider:physical_network")
		r.physGiven = true
	} else if r.physnet, r.physGiven, err = a.str("provider:physical_network", 64); err != nil {
		return r, err
	}
	if a.isNull("provider:segmentation_id") {
		a.has("provider:segmentation_id")
		r.segGiven = true
	} else {
		v, ok, err := a.integer("provider:segmentation_id")
		if err != nil {
			return r, err
		}
		if ok {
			r.segGiven, r.seg = true, &v
		}
	}
	return r, nil
}

// resolve applies a request to the current provider attributes (zero for a new network) and
// validates the result against the configured physical networks.
func (s *Service) resolve(cur provider, r providerRequest) (provider, error) {
	p := cur
	if r.typGiven {
		p.typ = r.typ
	}
	if r.physGiven {
		p.physnet = r.physnet
	}
	if r.segGiven {
		p.seg = r.seg
	} else if r.typGiven || r.physGiven {
		// keep a VLAN only while the network stays a VLAN network
		if p.typ != "" && p.typ != api.NetworkTypeVLAN && p.physnet != "" {
			p.seg = nil
		}
	}
	if p.typ == "" && p.physnet != "" {
		p.typ = api.NetworkTypeVLAN
	}
	if p.typ == "" {
		if p.seg != nil {
			return p, invalidInput("provider:segmentation_id %d needs provider:physical_network (and provider:network_type vlan).", *p.seg)
		}
		return provider{}, nil
	}
	switch p.typ {
	case api.NetworkTypeVLAN, api.NetworkTypeFlat:
	default:
		return p, invalidInput("provider:network_type %q is not supported; allowed: vlan, flat.", p.typ)
	}
	if p.physnet == "" {
		names := s.cfg.VLANRanges.names()
		if len(names) != 1 {
			return p, invalidInput("provider:physical_network is required for network_type %s; configured physical networks: %s.", p.typ, strings.Join(names, ", "))
		}
		p.physnet = names[0]
	}
	if _, ok := s.cfg.VLANRanges[p.physnet]; !ok {
		return p, invalidInput("provider:physical_network %q is unknown; configured physical networks: %s.", p.physnet, strings.Join(s.cfg.VLANRanges.names(), ", "))
	}
	if p.typ == api.NetworkTypeFlat {
		if p.seg != nil {
			return p, invalidInput("provider:segmentation_id %d is not allowed for network_type flat.", *p.seg)
		}
		return p, nil
	}
	if p.seg == nil {
		p.autoSeg = true
		return p, nil
	}
	if *p.seg < 0 || *p.seg > maxVLAN {
		return p, invalidInput("provider:segmentation_id %d is out of range 1-%d for network_type vlan (0 makes a trunk network).", *p.seg, maxVLAN)
	}
	return p, nil
}

// pickVLAN chooses a VLAN for p on a network with the given VN ID: the VN ID by convention when it
// is a valid VLAN and not in skip, else the lowest free VLAN of the physnet's ranges. staged holds
// the reservations other networks of the same transaction make (nil for one network).
func (s *Service) pickVLAN(ctx context.Context, p provider, vnid int, skipVNID bool, staged map[string]bool) (int, error) {
	if vnid <= maxVLAN && !skipVNID && !staged["vlan/"+p.physnet+"/"+strconv.Itoa(vnid)] {
		return vnid, nil
	}
	keys, _, err := s.st.Keys(ctx, "vlan/"+p.physnet+"/")
	if err != nil {
		return 0, err
	}
	used := map[int]bool{}
	for _, k := range keys {
		if n, err := strconv.Atoi(k); err == nil {
			used[n] = true
		}
	}
	for _, r := range s.cfg.VLANRanges[p.physnet] {
		for v := r.Min; v <= r.Max; v++ {
			if !used[v] && !staged["vlan/"+p.physnet+"/"+strconv.Itoa(v)] {
				return v, nil
			}
		}
	}
	return 0, errf(http.StatusConflict, "NoNetworkAvailable",
		"Unable to create the network. No VLAN is free on physical network %s (ranges %s).", p.physnet, s.cfg.VLANRanges.String())
}

func vlanInUse(p provider) *Error {
	if p.typ == api.NetworkTypeFlat {
		return errf(http.StatusConflict, "FlatNetworkInUse",
			"Unable to create the flat network. Physical network %s is in use.", p.physnet)
	}
	return errf(http.StatusConflict, "VlanIdInUse",
		"Unable to create the network. The VLAN %d on physical network %s is in use.", *p.seg, p.physnet)
}

// checkExternalPolicy is Neutron's policy on router:external: only an admin sets it.
func checkExternalPolicy(c *auth.Context, r networkRequest) error {
	if r.externalGiven && !c.IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized",
			"(rule:create_network:router:external) is disallowed by policy: only an admin may set router:external.")
	}
	return nil
}

// networkVisible is Neutron's get_network policy: admin, owner, shared, or external.
func networkVisible(c *auth.Context, n *api.Network) bool {
	return c.IsAdmin() || n.ProjectID == c.ProjectID || n.Shared || n.RouterExternal
}

func checkProviderPolicy(c *auth.Context, r providerRequest) error {
	if r.any() && !c.IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized",
			"(rule:network:provider attributes) is disallowed by policy: only an admin may set provider:network_type, provider:physical_network or provider:segmentation_id.")
	}
	return nil
}

// owner decides the project of a new resource.
func owner(c *auth.Context, a *attrs) (string, error) {
	p, ok, err := a.project()
	if err != nil {
		return "", err
	}
	if !ok {
		p = c.ProjectID
	}
	if p == "" {
		return "", badRequest("'tenant_id' (or 'project_id') is required: the request is not scoped to a project.")
	}
	if ok && p != c.ProjectID && !c.IsAdmin() {
		return "", errf(http.StatusForbidden, "PolicyNotAuthorized",
			"Specifying 'project_id' or 'tenant_id' other than the authenticated project (%s) requires admin privileges.", c.ProjectID)
	}
	return p, nil
}

type networkRequest struct {
	name, description        string
	adminUp, shared, portSec bool
	adminGiven, sharedGiven  bool
	external, externalGiven  bool
	tags                     []string // create only (PUT /networks/<id>/tags changes them)
	tagsOK                   bool
	portSecGiven, nameGiven  bool
	descGiven, mtuGiven      bool
	mtu                      int
	prov                     providerRequest
}

func decodeNetwork(a *attrs, create bool) (networkRequest, error) {
	var r networkRequest
	var err error
	op := "PUT"
	if create {
		op = "POST"
	}
	if err = a.readOnly(op, "id", "status", "subnets", "created_at", "updated_at", "revision_number", "vflink:vn_id"); err != nil {
		return r, err
	}
	if r.name, r.nameGiven, err = a.str("name", maxStr); err != nil {
		return r, err
	}
	if r.description, r.descGiven, err = a.str("description", maxStr); err != nil {
		return r, err
	}
	if r.adminUp, r.adminGiven, err = a.boolean("admin_state_up"); err != nil {
		return r, err
	}
	if r.shared, r.sharedGiven, err = a.boolean("shared"); err != nil {
		return r, err
	}
	if r.portSec, r.portSecGiven, err = a.boolean("port_security_enabled"); err != nil {
		return r, err
	}
	if r.mtu, r.mtuGiven, err = a.integer("mtu"); err != nil {
		return r, err
	}
	if r.mtuGiven && (r.mtu < 68 || r.mtu > 9216) {
		return r, invalidInput("mtu %d is out of range 68-9216.", r.mtu)
	}
	if r.prov, err = decodeProvider(a); err != nil {
		return r, err
	}
	if !create {
		if err := a.readOnly(op, "tenant_id", "project_id"); err != nil {
			return r, err
		}
	} else {
		a.has("tenant_id")
		a.has("project_id")
	}
	// accepted and ignored, as the CLI may send them
	a.has("availability_zone_hints")
	if r.external, r.externalGiven, err = a.boolean("router:external"); err != nil {
		return r, err
	}
	if !create && a.has("tags") {
		return r, badRequest("Cannot update read-only attribute tags")
	}
	if r.tags, r.tagsOK, err = decodeTagList(a); err != nil {
		return r, err
	}
	a.has("is_default")
	return r, nil
}

func (r networkRequest) applyTo(n *api.Network) {
	if r.nameGiven {
		n.Name = r.name
	}
	if r.descGiven {
		n.Description = r.description
	}
	if r.adminGiven {
		n.AdminStateUp = r.adminUp
	}
	if r.sharedGiven {
		n.Shared = r.shared
	}
	if r.externalGiven {
		n.RouterExternal = r.external
	}
	if r.tagsOK {
		n.Tags = r.tags
	}
	if r.portSecGiven {
		n.PortSecurityEnabled = r.portSec
	}
	if r.mtuGiven {
		n.MTU = r.mtu
	}
}

func (s *Service) createNetwork(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	items, bulk, err := parseBulk(b, "network", "networks")
	if err != nil {
		return err
	}
	ns, err := s.createNetworks(r.Context(), caller(r), items)
	if err != nil {
		return err
	}
	if bulk {
		writeJSON(w, http.StatusCreated, map[string]any{"networks": ns})
		return nil
	}
	writeJSON(w, http.StatusCreated, map[string]any{"network": ns[0]})
	return nil
}

// networkDraft is one network of a create request before the transaction.
type networkDraft struct {
	n         api.Network
	prov      provider
	res       string // the provider reservation staged (vlan/<physnet>/<vlan|flat>)
	vnidTaken bool   // its VN ID's VLAN is taken: pick from the physnet's ranges
}

func (s *Service) decodeNewNetwork(c *auth.Context, a *attrs) (*networkDraft, error) {
	req, err := decodeNetwork(a, true)
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
	if err := checkProviderPolicy(c, req.prov); err != nil {
		return nil, err
	}
	if err := checkExternalPolicy(c, req); err != nil {
		return nil, err
	}
	prov, err := s.resolve(provider{}, req.prov)
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := &networkDraft{prov: prov, n: api.Network{
		ID: uuid.NewString(), TenantID: proj, ProjectID: proj, AdminStateUp: true, MTU: s.cfg.DefaultMTU,
		Status: api.StatusActive, PortSecurityEnabled: true, CreatedAt: now, UpdatedAt: now, RevisionNumber: 1,
	}}
	req.applyTo(&d.n)
	return d, nil
}

// createNetworks creates the networks of one request in one transaction: all of them or none.
// They take consecutive VN IDs.
func (s *Service) createNetworks(ctx context.Context, c *auth.Context, as []*attrs) ([]api.Network, error) {
	drafts := make([]*networkDraft, len(as))
	for i, a := range as {
		d, err := s.decodeNewNetwork(c, a)
		if err != nil {
			return nil, bulkErr(err, i, len(as))
		}
		drafts[i] = d
	}
	for _, d := range drafts { // as Neutron before a network create: the project's default security group
		if _, err := s.ensureDefaultSG(ctx, c, d.n.ProjectID); err != nil {
			return nil, err
		}
	}
	err := retry(ctx, func(int) error {
		ctr, err := store.Get[int](ctx, s.st, "counters/vnid")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		staged := map[string]bool{} // reservations of this transaction
		quota := map[string]int{}
		for i, d := range drafts {
			n := &d.n
			n.VNID = ctr.Value + 1 + i
			p := d.prov
			if p.autoSeg {
				v, err := s.pickVLAN(ctx, p, n.VNID, d.vnidTaken, staged)
				if err != nil {
					return bulkErr(err, i, len(drafts))
				}
				p.seg = &v
			}
			p.apply(n)
			d.res = p.reservation()
			if d.res != "" {
				if staged[d.res] {
					return bulkErr(vlanInUse(p), i, len(drafts))
				}
				staged[d.res] = true
				t.Create(d.res, n.ID)
			}
			quota[n.ProjectID]++
			t.Create("vnid/"+strconv.Itoa(n.VNID), n.ID)
			t.Create(netKey(n.ID), *n)
		}
		for _, proj := range sortedKeys(quota) {
			if err := s.checkQuotaN(ctx, s.st, t, proj, "network", quota[proj]); err != nil {
				return err
			}
		}
		t.Update("counters/vnid", ctr.Value+len(drafts), ctr.ModRevision)
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.Exists && strings.HasPrefix(ce.Key, "vlan/") {
			for i, d := range drafts {
				if d.res != ce.Key {
					continue
				}
				p := providerOf(&d.n)
				if !d.prov.autoSeg {
					return bulkErr(vlanInUse(p), i, len(drafts))
				}
				if d.n.VNID <= maxVLAN && *p.seg == d.n.VNID {
					d.vnidTaken = true
				}
			}
		}
		return txnSizeErr(err, len(drafts), "networks")
	})
	if err != nil {
		return nil, err
	}
	out := make([]api.Network, len(drafts))
	for i, d := range drafts {
		s.log.Info("network created", "network", d.n.ID, "vn_id", d.n.VNID, "project", d.n.ProjectID)
		out[i] = normNetwork(d.n)
	}
	return out, nil
}

func normNetwork(n api.Network) api.Network {
	if n.Subnets == nil {
		n.Subnets = []string{}
	}
	if n.AvailabilityZoneHints == nil {
		n.AvailabilityZoneHints = []string{}
	}
	if n.AvailabilityZones == nil {
		n.AvailabilityZones = []string{}
	}
	if n.Tags == nil {
		n.Tags = []string{}
	}
	return n
}

// visibleNetwork reads a network the caller may see, or 404.
func (s *Service) visibleNetwork(ctx context.Context, c *auth.Context, id string) (store.Object[api.Network], error) {
	return s.visibleNetworkIn(ctx, s.st, c, id)
}

// visibleNetworkIn reads through view st; a serializable view that misses the network asks again
// linearizably, so a network created a moment ago on another server is found.
func (s *Service) visibleNetworkIn(ctx context.Context, st *store.Store, c *auth.Context, id string) (store.Object[api.Network], error) {
	o, err := store.Get[api.Network](ctx, st, netKey(id))
	if errors.Is(err, store.ErrNotFound) && st != s.st {
		o, err = store.Get[api.Network](ctx, s.st, netKey(id))
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && !networkVisible(c, &o.Value)) {
		return o, notFound("network", id)
	}
	return o, err
}

func (s *Service) subnetIDs(ctx context.Context, netID string) ([]string, error) {
	return s.subnetIDsIn(ctx, s.st, netID)
}

func (s *Service) subnetIDsIn(ctx context.Context, st *store.Store, netID string) ([]string, error) {
	keys, _, err := st.Keys(ctx, "idx/net-subnets/"+netID+"/")
	return keys, err
}

func (s *Service) showNetwork(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	o, err := s.visibleNetwork(r.Context(), caller(r), id)
	if err != nil {
		return err
	}
	if o.Value.Subnets, err = s.subnetIDs(r.Context(), id); err != nil {
		return err
	}
	return writeOne(w, r, "network", normNetwork(o.Value))
}

func (s *Service) listNetworks(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	objs, rev, err := store.List[api.Network](r.Context(), s.st, "networks/")
	if err != nil {
		return err
	}
	keys, _, err := s.st.Keys(r.Context(), "idx/net-subnets/", store.ListOptions{Rev: rev})
	if err != nil {
		return err
	}
	subs := map[string][]string{}
	for _, k := range keys {
		net, sub, _ := strings.Cut(k, "/")
		subs[net] = append(subs[net], sub)
	}
	items := make([]api.Network, 0, len(objs))
	for _, o := range objs {
		n := o.Value
		if !networkVisible(c, &n) {
			continue
		}
		n.Subnets = subs[n.ID]
		items = append(items, normNetwork(n))
	}
	return writeList(w, r, "networks", items, networkField)
}

func (s *Service) updateNetwork(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	want, wantOK, err := ifMatch(r)
	if err != nil {
		return err
	}
	a, err := decodeBody(r.Body, "network")
	if err != nil {
		return err
	}
	req, err := decodeNetwork(a, false)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	if err := checkProviderPolicy(c, req.prov); err != nil {
		return err
	}
	if err := checkExternalPolicy(c, req); err != nil {
		return err
	}
	var out api.Network
	vnidTaken := false
	err = retry(r.Context(), func(int) error {
		o, err := s.visibleNetwork(r.Context(), c, id)
		if err != nil {
			return err
		}
		n := o.Value
		if !c.IsAdmin() && n.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of network %s may change it.", id)
		}
		if err := checkRevision(want, wantOK, n.RevisionNumber); err != nil {
			return err
		}
		t := s.st.Txn()
		cur := providerOf(&n)
		if req.prov.any() {
			p, err := s.resolve(cur, req.prov)
			if err != nil {
				return err
			}
			if p.autoSeg {
				v, err := s.pickVLAN(r.Context(), p, n.VNID, vnidTaken, nil)
				if err != nil {
					return err
				}
				p.seg = &v
			}
			if !p.equal(cur) {
				t.PrefixEmpty("idx/net-bound/" + id + "/")
				if old := cur.reservation(); old != "" {
					t.Remove(old)
				}
				if res := p.reservation(); res != "" {
					t.Create(res, id)
				}
				p.apply(&n)
			}
			err = s.commitNetwork(r.Context(), t, o, &n, req, p, cur)
			var ce *store.ConflictError
			if errors.As(err, &ce) && ce.Reason == store.Exists && strings.HasPrefix(ce.Key, "vlan/") {
				if !p.autoSeg {
					return vlanInUse(p)
				}
				if *p.seg == n.VNID {
					vnidTaken = true
				}
			}
			if errors.As(err, &ce) && ce.Reason == store.NotEmpty {
				return errf(http.StatusConflict, "NetworkInUse",
					"Unable to change the provider attributes of network %s: ports on it are bound to hosts. Unbind them first.", id)
			}
			if err == nil {
				out = n
			}
			return err
		}
		err = s.commitNetwork(r.Context(), t, o, &n, req, cur, cur)
		if err == nil {
			out = n
		}
		return err
	})
	if err != nil {
		return err
	}
	if out.Subnets, err = s.subnetIDs(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"network": normNetwork(out)})
	return nil
}

func (s *Service) commitNetwork(ctx context.Context, t *store.Txn, o store.Object[api.Network], n *api.Network, req networkRequest, p, cur provider) error {
	req.applyTo(n)
	n.RevisionNumber++
	n.UpdatedAt = s.now()
	n.Subnets = nil
	t.Update(netKey(n.ID), *n, o.ModRevision)
	_, err := t.Commit(ctx)
	if err == nil && !p.equal(cur) {
		s.log.Info("network provider changed", "network", n.ID, "physnet", p.physnet, "vlan", fmtSeg(p.seg))
	}
	return err
}

func fmtSeg(p *int) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(*p)
}

func (s *Service) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	err := retry(r.Context(), func(int) error {
		o, err := s.visibleNetwork(r.Context(), c, id)
		if err != nil {
			return err
		}
		n := o.Value
		if !c.IsAdmin() && n.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of network %s may delete it.", id)
		}
		subs, rev, err := s.st.Keys(r.Context(), "idx/net-subnets/"+id+"/")
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(netKey(id), o.ModRevision)
		t.PrefixEmpty("idx/net-ports/" + id + "/")
		t.PrefixUnchangedSince("idx/net-subnets/"+id+"/", rev)
		for _, sub := range subs {
			t.Remove(subnetKey(sub))
			t.DeletePrefix("ipam/" + sub + "/")
			// a subnet from a pool gives its prefix back
			if so, err := store.Get[api.Subnet](r.Context(), s.st, subnetKey(sub)); err == nil && so.Value.SubnetPoolID != nil {
				t.Remove("idx/pool-subnets/" + *so.Value.SubnetPoolID + "/" + sub)
			}
		}
		t.DeletePrefix("idx/net-subnets/" + id + "/")
		t.Remove("vnid/" + strconv.Itoa(n.VNID))
		if res := providerOf(&n).reservation(); res != "" {
			t.Remove(res)
		}
		_, err = t.Commit(r.Context())
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.NotEmpty {
			cnt, _ := s.st.Count(r.Context(), "idx/net-ports/"+id+"/")
			return errf(http.StatusConflict, "NetworkInUse",
				"Unable to complete operation on network %s. There are one or more ports still in use on the network (%d).", id, cnt)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("network deleted", "network", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func networkField(n *api.Network, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{n.ID}, true
	case "name":
		return []string{n.Name}, true
	case "tenant_id", "project_id":
		return []string{n.ProjectID}, true
	case "status":
		return []string{n.Status}, true
	case "admin_state_up":
		return []string{strconv.FormatBool(n.AdminStateUp)}, true
	case "shared":
		return []string{strconv.FormatBool(n.Shared)}, true
	case "mtu":
		return []string{strconv.Itoa(n.MTU)}, true
	case "description":
		return []string{n.Description}, true
	case "router:external":
		return []string{strconv.FormatBool(n.RouterExternal)}, true
	case "port_security_enabled":
		return []string{strconv.FormatBool(n.PortSecurityEnabled)}, true
	case "provider:network_type":
		return []string{deref(n.NetworkType)}, true
	case "provider:physical_network":
		return []string{deref(n.PhysicalNetwork)}, true
	case "provider:segmentation_id":
		return []string{fmtSegEmpty(n.SegmentationID)}, true
	case "subnets":
		return n.Subnets, true
	case "revision_number":
		return []string{strconv.FormatInt(n.RevisionNumber, 10)}, true
	case "vflink:vn_id":
		return []string{strconv.Itoa(n.VNID)}, true
	}
	return nil, false
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fmtSegEmpty(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

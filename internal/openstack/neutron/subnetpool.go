package neutron

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/ipam"
	"github.com/vflink/vflink/internal/store"
)

// The subnet_allocation extension: subnet pools, as Neutron 21's (neutron/ipam/subnet_alloc.py).
// A subnet created with subnetpool_id (and a prefixlen, or a cidr inside the pool) takes the
// lowest free prefix; idx/pool-subnets/<pool>/<subnet> (value: its CIDR) makes concurrent
// allocations from one pool collide in their transactions, so no prefix is given twice.

func poolKey(id string) string { return "subnetpools/" + id }

type poolRequest struct {
	name, desc             string
	nameOK, descOK         bool
	prefixes               []netip.Prefix
	prefixesOK             bool
	minLen, maxLen, defLen int
	minOK, maxOK, defOK    bool
	shared, isDefault      bool
	tags                   []string
	sharedOK, isDefaultOK  bool
}

func decodePool(a *attrs, create bool) (poolRequest, error) {
	var r poolRequest
	var err error
	op := "PUT"
	if create {
		op = "POST"
	}
	if err := a.readOnly(op, "id", "ip_version", "created_at", "updated_at", "revision_number"); err != nil {
		return r, err
	}
	if !create {
		if err := a.readOnly(op, "tenant_id", "project_id", "shared"); err != nil {
			return r, err
		}
	}
	if r.name, r.nameOK, err = a.str("name", maxStr); err != nil {
		return r, err
	}
	if r.desc, r.descOK, err = a.str("description", maxStr); err != nil {
		return r, err
	}
	var raw []string
	if r.prefixesOK, err = a.decode("prefixes", &raw, "a list of CIDRs"); err != nil {
		return r, err
	}
	if create && !r.prefixesOK {
		return r, badRequest("Failed to parse request. Required attribute 'prefixes' not specified")
	}
	for _, c := range raw {
		p, err := netip.ParsePrefix(c)
		if err != nil || p.Addr().Zone() != "" {
			return r, invalidInput("'%s' is not a valid IP subnet.", clip(c))
		}
		r.prefixes = append(r.prefixes, p.Masked())
	}
	if r.prefixesOK && len(r.prefixes) == 0 {
		return r, badRequest("Empty subnet pool prefix list.")
	}
	for i := 1; i < len(r.prefixes); i++ {
		if r.prefixes[i].Addr().Is4() != r.prefixes[0].Addr().Is4() {
			return r, badRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
		}
	}
	for _, f := range []struct {
		k  string
		v  *int
		ok *bool
	}{{"min_prefixlen", &r.minLen, &r.minOK}, {"max_prefixlen", &r.maxLen, &r.maxOK}, {"default_prefixlen", &r.defLen, &r.defOK}} {
		if *f.v, *f.ok, err = a.integer(f.k); err != nil {
			return r, err
		}
	}
	if create {
		if r.shared, r.sharedOK, err = a.boolean("shared"); err != nil {
			return r, err
		}
		a.has("tenant_id")
		a.has("project_id")
	}
	if r.isDefault, r.isDefaultOK, err = a.boolean("is_default"); err != nil {
		return r, err
	}
	if a.has("address_scope_id") && !a.isNull("address_scope_id") {
		return r, badRequest("address_scope_id: address scopes are not supported; leave it out.")
	}
	if a.has("default_quota") && !a.isNull("default_quota") {
		return r, badRequest("default_quota: subnet pool quotas are not supported; leave it out.")
	}
	if !create && a.has("tags") {
		return r, badRequest("Cannot update read-only attribute tags")
	}
	if r.tags, _, err = decodeTagList(a); err != nil {
		return r, err
	}
	return r, nil
}

// applyPool applies r to p (a new pool when p.ID is empty) and validates the bounds as Neutron's
// SubnetPoolHelper does.
func applyPool(p *api.SubnetPool, r poolRequest) error {
	if r.nameOK {
		p.Name = r.name
	}
	if r.descOK {
		p.Description = r.desc
	}
	if r.prefixesOK {
		ps := r.prefixes
		if len(p.Prefixes) > 0 {
			if (p.IPVersion == 4) != ps[0].Addr().Is4() {
				return badRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
			}
			// a pool may grow, never shrink: every old prefix must stay covered
			for _, old := range p.Prefixes {
				op := netip.MustParsePrefix(old)
				if !ipam.Within(ipam.CompactPrefixes(ps), op) {
					return badRequest("Illegal update to prefixes: Existing prefix %s is not a subset of the new prefixes.", old)
				}
			}
		}
		p.Prefixes = nil
		for _, q := range ipam.CompactPrefixes(ps) {
			p.Prefixes = append(p.Prefixes, q.String())
		}
		p.IPVersion = 4
		if ps[0].Addr().Is6() {
			p.IPVersion = 6
		}
	}
	bits, defMin := 32, 8
	if p.IPVersion == 6 {
		bits, defMin = 128, 64
	}
	if p.ID == "" {
		p.MinPrefixLen, p.MaxPrefixLen = defMin, bits
		if r.minOK {
			p.MinPrefixLen = r.minLen
		}
		p.DefaultPrefixLen = p.MinPrefixLen
	} else if r.minOK {
		p.MinPrefixLen = r.minLen
	}
	if r.maxOK {
		p.MaxPrefixLen = r.maxLen
	}
	if r.defOK {
		p.DefaultPrefixLen = r.defLen
	}
	if r.isDefaultOK {
		p.IsDefault = r.isDefault
	}
	if p.MinPrefixLen < 0 {
		return badRequest("Prefix '%d' not supported in IPv%d pool.", p.MinPrefixLen, p.IPVersion)
	}
	bound := func(t string, l int, bt string, bl int) error {
		return badRequest("Illegal prefix bounds: %s=%d, %s=%d.", t, l, bt, bl)
	}
	switch {
	case p.MinPrefixLen > p.MaxPrefixLen:
		return bound("min_prefixlen", p.MinPrefixLen, "max_prefixlen", p.MaxPrefixLen)
	case p.MaxPrefixLen > bits:
		return bound("max_prefixlen", p.MaxPrefixLen, "ip_version_max", bits)
	case p.DefaultPrefixLen < p.MinPrefixLen:
		return bound("default_prefixlen", p.DefaultPrefixLen, "min_prefixlen", p.MinPrefixLen)
	case p.DefaultPrefixLen > p.MaxPrefixLen:
		return bound("default_prefixlen", p.DefaultPrefixLen, "max_prefixlen", p.MaxPrefixLen)
	}
	return nil
}

func normPool(p api.SubnetPool) api.SubnetPool {
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.Prefixes == nil {
		p.Prefixes = []string{}
	}
	return p
}

func poolVisible(c *auth.Context, p *api.SubnetPool) bool {
	return c.IsAdmin() || p.ProjectID == c.ProjectID || p.Shared
}

func (s *Service) visiblePool(ctx context.Context, c *auth.Context, id string) (store.Object[api.SubnetPool], error) {
	o, err := store.Get[api.SubnetPool](ctx, s.st, poolKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !poolVisible(c, &o.Value)) {
		return o, errf(http.StatusNotFound, "SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	}
	return o, err
}

func (s *Service) createPool(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	a, err := decodeBody(r.Body, "subnetpool")
	if err != nil {
		return err
	}
	req, err := decodePool(a, true)
	if err != nil {
		return err
	}
	proj, err := owner(c, a)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	if (req.sharedOK && req.shared || req.isDefaultOK && req.isDefault) && !c.IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized", "(rule:create_subnetpool:shared, rule:create_subnetpool:is_default) is disallowed by policy: only an admin may make a subnet pool shared or the default.")
	}
	now := s.now()
	p := api.SubnetPool{TenantID: proj, ProjectID: proj, Shared: req.shared, Tags: req.tags, CreatedAt: now, UpdatedAt: now, RevisionNumber: 1}
	if err := applyPool(&p, req); err != nil {
		return err
	}
	p.ID = uuid.NewString()
	if _, err := store.Create(r.Context(), s.st, poolKey(p.ID), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"subnetpool": normPool(p)})
	return nil
}

func (s *Service) showPool(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visiblePool(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "subnetpool", normPool(o.Value))
}

func (s *Service) listPools(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	objs, _, err := store.List[api.SubnetPool](r.Context(), s.st, "subnetpools/")
	if err != nil {
		return err
	}
	items := make([]api.SubnetPool, 0, len(objs))
	for _, o := range objs {
		if poolVisible(c, &o.Value) {
			items = append(items, normPool(o.Value))
		}
	}
	return writeList(w, r, "subnetpools", items, poolField)
}

func (s *Service) updatePool(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	a, err := decodeBody(r.Body, "subnetpool")
	if err != nil {
		return err
	}
	req, err := decodePool(a, false)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	if req.isDefaultOK && !c.IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized", "(rule:update_subnetpool:is_default) is disallowed by policy: only an admin may change is_default.")
	}
	var out api.SubnetPool
	err = retry(r.Context(), func(int) error {
		o, err := s.visiblePool(r.Context(), c, id)
		if err != nil {
			return err
		}
		if !c.IsAdmin() && o.Value.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of subnet pool %s may change it.", id)
		}
		p := o.Value
		if err := applyPool(&p, req); err != nil {
			return err
		}
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		if _, err := store.Update(r.Context(), s.st, poolKey(id), p, o.ModRevision); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"subnetpool": normPool(out)})
	return nil
}

func (s *Service) deletePool(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	err := retry(r.Context(), func(int) error {
		o, err := s.visiblePool(r.Context(), c, id)
		if err != nil {
			return err
		}
		if !c.IsAdmin() && o.Value.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of subnet pool %s may delete it.", id)
		}
		t := s.st.Txn()
		t.Delete(poolKey(id), o.ModRevision)
		t.PrefixEmpty("idx/pool-subnets/" + id + "/")
		_, err = t.Commit(r.Context())
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.NotEmpty {
			return errf(http.StatusConflict, "SubnetPoolInUse", "Unable to complete operation on subnet pool %s. Subnets from the pool still exist.", id)
		}
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// poolPlan is a subnet's request of a pool: its ID (or the default pool of an IP version) and a
// prefix length, when no CIDR is given.
type poolPlan struct {
	poolID     string
	useDefault bool
	prefixLen  int
	lenOK      bool
}

// carve gives d a CIDR from its pool (or checks the one it asked for), stages the pool's index
// key and the compare that keeps two allocations from one pool apart. staged holds the prefixes
// earlier subnets of the same request took, per pool.
func (s *Service) carve(ctx context.Context, c *auth.Context, t *store.Txn, d *subnetDraft, staged map[string][]netip.Prefix) error {
	pp := d.pool
	var po store.Object[api.SubnetPool]
	var err error
	if pp.useDefault {
		objs, _, err := store.List[api.SubnetPool](ctx, s.st, "subnetpools/")
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.Value.IsDefault && o.Value.IPVersion == d.spec.IPVersion && poolVisible(c, &o.Value) {
				po = o
			}
		}
		if po.Value.ID == "" {
			return badRequest("No default subnetpool found for IPv%d", d.spec.IPVersion)
		}
	} else if po, err = s.visiblePool(ctx, c, pp.poolID); err != nil {
		return err
	}
	pool := po.Value
	if d.spec.IPVersion != 0 && d.spec.IPVersion != pool.IPVersion {
		return badRequest("Cannot allocate IPv%d subnet from IPv%d subnet pool", d.spec.IPVersion, pool.IPVersion)
	}
	var prefixes []netip.Prefix
	for _, p := range pool.Prefixes {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	used, rev, err := store.List[string](ctx, s.st, "idx/pool-subnets/"+pool.ID+"/")
	if err != nil {
		return err
	}
	var taken []netip.Prefix
	for _, u := range used {
		if p, err := netip.ParsePrefix(u.Value); err == nil {
			taken = append(taken, p)
		}
	}
	taken = append(taken, staged[pool.ID]...)
	var cidr netip.Prefix
	if d.spec.CIDR != "" {
		if cidr, err = netip.ParsePrefix(d.spec.CIDR); err != nil {
			return invalidInput("'%s' is not a valid IP subnet.", clip(d.spec.CIDR))
		}
		cidr = cidr.Masked()
		if !ipam.Within(prefixes, cidr) {
			return errf(http.StatusBadRequest, "SubnetAllocationError", "Failed to allocate subnet: Cidr and prefixlen must be within the subnet pool %s (%s).", pool.ID, strings.Join(pool.Prefixes, ", "))
		}
		for _, u := range taken {
			if ipam.Overlaps(u, cidr) {
				return errf(http.StatusBadRequest, "SubnetAllocationError", "Failed to allocate subnet: %s overlaps %s, already allocated from subnet pool %s.", cidr, u, pool.ID)
			}
		}
	} else {
		bits := pool.DefaultPrefixLen
		if pp.lenOK {
			bits = pp.prefixLen
		}
		if bits < pool.MinPrefixLen || bits > pool.MaxPrefixLen {
			return errf(http.StatusBadRequest, "SubnetAllocationError", "Failed to allocate subnet: Unsupported prefix length %d: subnet pool %s allows %d to %d.", bits, pool.ID, pool.MinPrefixLen, pool.MaxPrefixLen)
		}
		if cidr, err = ipam.AllocatePrefix(prefixes, taken, bits); err != nil {
			return errf(http.StatusConflict, "SubnetAllocationError", "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /%d from subnet pool %s.", bits, pool.ID)
		}
	}
	if cidr.Bits() < pool.MinPrefixLen || cidr.Bits() > pool.MaxPrefixLen {
		return errf(http.StatusBadRequest, "SubnetAllocationError", "Failed to allocate subnet: Unsupported prefix length %d: subnet pool %s allows %d to %d.", cidr.Bits(), pool.ID, pool.MinPrefixLen, pool.MaxPrefixLen)
	}
	staged[pool.ID] = append(staged[pool.ID], cidr)
	d.spec.CIDR = cidr.String()
	id := pool.ID
	d.sn.SubnetPoolID = &id
	t.Unchanged(poolKey(pool.ID), po.ModRevision)
	t.PrefixUnchangedSince("idx/pool-subnets/"+pool.ID+"/", rev)
	t.Create("idx/pool-subnets/"+pool.ID+"/"+d.sn.ID, cidr.String())
	return nil
}

func poolField(p *api.SubnetPool, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{p.ID}, true
	case "name":
		return []string{p.Name}, true
	case "tenant_id", "project_id":
		return []string{p.ProjectID}, true
	case "ip_version":
		return []string{strconv.Itoa(p.IPVersion)}, true
	case "shared":
		return []string{strconv.FormatBool(p.Shared)}, true
	case "is_default":
		return []string{strconv.FormatBool(p.IsDefault)}, true
	case "default_prefixlen":
		return []string{strconv.Itoa(p.DefaultPrefixLen)}, true
	case "min_prefixlen":
		return []string{strconv.Itoa(p.MinPrefixLen)}, true
	case "max_prefixlen":
		return []string{strconv.Itoa(p.MaxPrefixLen)}, true
	case "description":
		return []string{p.Description}, true
	case "revision_number":
		return []string{strconv.FormatInt(p.RevisionNumber, 10)}, true
	}
	return nil, false
}

func (s *Service) registerSubnetPools(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /subnetpools", s.createPool)
	h("GET /subnetpools", s.listPools)
	h("GET /subnetpools/{id}", s.showPool)
	h("PUT /subnetpools/{id}", s.updatePool)
	h("DELETE /subnetpools/{id}", s.deletePool)
}

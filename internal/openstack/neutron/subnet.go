package neutron

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/ipam"
	"github.com/vflink/vflink/internal/store"
)

func subnetKey(id string) string { return "subnets/" + id }

func ipamErr(err error) error {
	var ie *ipam.InputError
	if errors.As(err, &ie) {
		if ie.Type == "GatewayConflictWithAllocationPools" {
			return errf(http.StatusConflict, ie.Type, "%s", ie.Message)
		}
		return invalidInput("%s", ie.Message)
	}
	return err
}

// toIPAM rebuilds the validated IPAM view of a stored subnet.
func toIPAM(sn *api.Subnet) (ipam.Subnet, error) {
	spec := ipam.SubnetSpec{CIDR: sn.CIDR, IPVersion: sn.IPVersion, GatewayNone: sn.GatewayIP == nil, Gateway: sn.GatewayIP}
	for _, p := range sn.AllocationPools {
		pool, err := ipam.ParsePool(p.Start, p.End)
		if err != nil {
			return ipam.Subnet{}, err
		}
		spec.Pools = append(spec.Pools, pool)
	}
	return ipam.NewSubnet(spec)
}

var ipv6Modes = []string{"slaac", "dhcpv6-stateful", "dhcpv6-stateless"}

// autoAddress reports a subnet whose ports get their address from their MAC (SLAAC: mode slaac
// or dhcpv6-stateless, as address or RA mode), never from the pools (Neutron's
// is_auto_address_subnet).
func autoAddress(sn *api.Subnet) bool {
	auto := func(p *string) bool { return deref(p) == "slaac" || deref(p) == "dhcpv6-stateless" }
	return sn.IPVersion == 6 && (auto(sn.IPv6AddressMode) || auto(sn.IPv6RAMode))
}

// checkIPv6Modes is Neutron's validation of ipv6_ra_mode and ipv6_address_mode.
func checkIPv6Modes(sn *api.Subnet, prefix netip.Prefix) error {
	ra, am := sn.IPv6RAMode, sn.IPv6AddressMode
	if sn.IPVersion == 4 {
		if ra != nil {
			return invalidInput("ipv6_ra_mode is not valid when ip_version is 4")
		}
		if am != nil {
			return invalidInput("ipv6_address_mode is not valid when ip_version is 4")
		}
		return nil
	}
	if ra != nil && am != nil && *ra != *am {
		return invalidInput("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. If both attributes are set, they must be the same value", *ra, *am)
	}
	if autoAddress(sn) && prefix.Bits() != 64 {
		return invalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", prefix)
	}
	return nil
}

func (s *Service) createSubnet(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	items, bulk, err := parseBulk(b, "subnet", "subnets")
	if err != nil {
		return err
	}
	subs, err := s.createSubnets(r.Context(), caller(r), items)
	if err != nil {
		return err
	}
	if bulk {
		writeJSON(w, http.StatusCreated, map[string]any{"subnets": subs})
		return nil
	}
	writeJSON(w, http.StatusCreated, map[string]any{"subnet": subs[0]})
	return nil
}

// subnetDraft is one subnet of a create request before the transaction.
type subnetDraft struct {
	sn   api.Subnet
	sub  ipam.Subnet
	spec ipam.SubnetSpec
	// pool, when set, is the subnet pool the CIDR comes from (carve, in the transaction);
	// cidrGiven says the request named the CIDR itself.
	pool      *poolPlan
	cidrGiven bool
}

func (s *Service) decodeNewSubnet(c *auth.Context, a *attrs) (*subnetDraft, error) {
	var err error
	if err := a.readOnly("POST", "id", "created_at", "updated_at", "revision_number"); err != nil {
		return nil, err
	}
	now := s.now()
	sn := api.Subnet{ID: uuid.NewString(), EnableDHCP: true, CreatedAt: now, UpdatedAt: now,
		HostRoutes: []api.HostRoute{}, DNSNameservers: []string{}, ServiceTypes: []string{}, Tags: []string{}}
	if sn.Name, _, err = a.str("name", maxStr); err != nil {
		return nil, err
	}
	if sn.Description, _, err = a.str("description", maxStr); err != nil {
		return nil, err
	}
	netID, ok, err := a.str("network_id", 64)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, badRequest("Failed to parse request. Required attribute 'network_id' not specified")
	}
	sn.NetworkID = netID
	d := &subnetDraft{}
	cidr, cidrOK, err := a.str("cidr", 64)
	if err != nil {
		return nil, err
	}
	d.cidrGiven = cidrOK
	spec := ipam.SubnetSpec{CIDR: cidr}
	if spec.IPVersion, _, err = a.integer("ip_version"); err != nil {
		return nil, err
	}
	if a.isNull("gateway_ip") {
		a.has("gateway_ip")
		spec.GatewayNone = true
	} else if gw, ok, err := a.str("gateway_ip", 64); err != nil {
		return nil, err
	} else if ok {
		spec.Gateway = &gw
	}
	var pools []api.AllocationPool
	if _, err := a.decode("allocation_pools", &pools, "a list of {\"start\": IP, \"end\": IP}"); err != nil {
		return nil, err
	}
	for _, p := range pools {
		pool, err := ipam.ParsePool(p.Start, p.End)
		if err != nil {
			return nil, ipamErr(err)
		}
		spec.Pools = append(spec.Pools, pool)
	}
	if b, ok, err := a.boolean("enable_dhcp"); err != nil {
		return nil, err
	} else if ok {
		sn.EnableDHCP = b
	}
	if _, err := a.decode("dns_nameservers", &sn.DNSNameservers, "a list of IP addresses"); err != nil {
		return nil, err
	}
	for _, d := range sn.DNSNameservers {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, invalidInput("dns_nameservers: %q is not an IP address.", d)
		}
	}
	if _, err := a.decode("host_routes", &sn.HostRoutes, "a list of {\"destination\": CIDR, \"nexthop\": IP}"); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		k string
		p **string
	}{{"ipv6_ra_mode", &sn.IPv6RAMode}, {"ipv6_address_mode", &sn.IPv6AddressMode}} {
		if a.isNull(m.k) {
			a.has(m.k)
			continue
		}
		if v, ok, err := a.oneOf(m.k, ipv6Modes); err != nil {
			return nil, err
		} else if ok {
			*m.p = &v
		}
	}
	pp := &poolPlan{}
	if a.isNull("subnetpool_id") {
		a.has("subnetpool_id")
	} else if pp.poolID, _, err = a.str("subnetpool_id", 64); err != nil {
		return nil, err
	}
	if pp.useDefault, _, err = a.boolean("use_default_subnetpool"); err != nil {
		return nil, err
	}
	if pp.prefixLen, pp.lenOK, err = a.integer("prefixlen"); err != nil {
		return nil, err
	}
	switch {
	case pp.poolID != "" && pp.useDefault:
		return nil, badRequest("subnetpool_id and use_default_subnetpool cannot both be specified")
	case pp.poolID != "" || pp.useDefault:
		d.pool = pp
		if cidrOK && pp.lenOK {
			return nil, badRequest("cidr and prefixlen must not be supplied together")
		}
	case !cidrOK:
		return nil, badRequest("A cidr must be specified in the absence of a subnet pool")
	case pp.lenOK:
		return nil, badRequest("prefixlen: a prefix length is only for a subnet from a subnet pool (subnetpool_id); give a cidr.")
	}
	if sn.Tags, _, err = decodeTagList(a); err != nil {
		return nil, err
	}
	if sn.Tags == nil {
		sn.Tags = []string{}
	}
	a.has("service_types")
	a.has("segment_id")
	proj, err := owner(c, a)
	if err != nil {
		return nil, err
	}
	if err := a.rest(); err != nil {
		return nil, err
	}
	sn.TenantID, sn.ProjectID = proj, proj
	d.sn, d.spec = sn, spec
	if d.pool != nil {
		return d, nil // finished once carve has its CIDR
	}
	return d, d.finish()
}

// finish validates the subnet's spec and derives its CIDR, gateway and allocation pools.
func (d *subnetDraft) finish() error {
	sn := d.sn
	sub, err := ipam.NewSubnet(d.spec)
	if err != nil {
		return ipamErr(err)
	}
	sn.CIDR = sub.Prefix.String()
	sn.IPVersion = 4
	if sub.Prefix.Addr().Is6() {
		sn.IPVersion = 6
	}
	if sub.Gateway.IsValid() {
		g := sub.Gateway.String()
		sn.GatewayIP = &g
	}
	sn.AllocationPools = make([]api.AllocationPool, len(sub.Pools))
	for i, p := range sub.Pools {
		sn.AllocationPools[i] = api.AllocationPool{Start: p.Start.String(), End: p.End.String()}
	}
	if err := checkIPv6Modes(&sn, sub.Prefix); err != nil {
		return err
	}
	d.sn, d.sub = sn, sub
	return nil
}

// createSubnets creates the subnets of one request in one transaction: all of them or none.
func (s *Service) createSubnets(ctx context.Context, c *auth.Context, as []*attrs) ([]api.Subnet, error) {
	drafts := make([]*subnetDraft, len(as))
	for i, a := range as {
		d, err := s.decodeNewSubnet(c, a)
		if err != nil {
			return nil, bulkErr(err, i, len(as))
		}
		drafts[i] = d
	}
	err := retry(ctx, func(int) error {
		all, rev, err := store.List[api.Subnet](ctx, s.st, "subnets/")
		if err != nil {
			return err
		}
		t := s.st.Txn()
		nets := map[string]bool{}
		quota := map[string]int{}
		carved := map[string][]netip.Prefix{}
		for i, d := range drafts {
			if d.pool != nil {
				if !d.cidrGiven {
					d.spec.CIDR = "" // a retry carves again
				}
				if err := s.carve(ctx, c, t, d, carved); err != nil {
					return bulkErr(err, i, len(drafts))
				}
				if err := d.finish(); err != nil {
					return bulkErr(err, i, len(drafts))
				}
			}
			sn, netID := &d.sn, d.sn.NetworkID
			if !nets[netID] {
				no, err := s.visibleNetwork(ctx, c, netID)
				if err != nil {
					return bulkErr(err, i, len(drafts))
				}
				if !c.IsAdmin() && no.Value.ProjectID != c.ProjectID {
					return bulkErr(errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of network %s may add subnets to it.", netID), i, len(drafts))
				}
				nets[netID] = true
				t.Unchanged(netKey(netID), no.ModRevision)
				t.PrefixUnchangedSince("idx/net-subnets/"+netID+"/", rev)
			}
			for _, o := range all {
				if o.Value.NetworkID != netID {
					continue
				}
				other, err := netip.ParsePrefix(o.Value.CIDR)
				if err == nil && ipam.Overlaps(other, d.sub.Prefix) {
					return bulkErr(invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet (%s, cidr %s).", sn.CIDR, netID, o.Value.ID, o.Value.CIDR), i, len(drafts))
				}
			}
			all = append(all, store.Object[api.Subnet]{Value: *sn})
			quota[sn.ProjectID]++
			t.Create(subnetKey(sn.ID), *sn)
			t.Create("idx/net-subnets/"+netID+"/"+sn.ID, "")
		}
		for _, proj := range sortedKeys(quota) {
			if err := s.checkQuotaN(ctx, s.st, t, proj, "subnet", quota[proj]); err != nil {
				return err
			}
		}
		_, err = t.Commit(ctx)
		return txnSizeErr(err, len(drafts), "subnets")
	})
	if err != nil {
		return nil, err
	}
	out := make([]api.Subnet, len(drafts))
	for i, d := range drafts {
		s.log.Info("subnet created", "subnet", d.sn.ID, "network", d.sn.NetworkID, "cidr", d.sn.CIDR)
		out[i] = d.sn
	}
	return out, nil
}

// visibleSubnet reads a subnet the caller may see (its network is visible), or 404.
func (s *Service) visibleSubnet(ctx context.Context, r *http.Request, id string) (store.Object[api.Subnet], error) {
	c := caller(r)
	o, err := store.Get[api.Subnet](ctx, s.st, subnetKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return o, notFound("subnet", id)
	}
	if err != nil || c.IsAdmin() || o.Value.ProjectID == c.ProjectID {
		return o, err
	}
	if _, err := s.visibleNetwork(ctx, c, o.Value.NetworkID); err != nil {
		return o, notFound("subnet", id)
	}
	return o, nil
}

func (s *Service) showSubnet(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleSubnet(r.Context(), r, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "subnet", o.Value)
}

func (s *Service) listSubnets(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	objs, _, err := store.List[api.Subnet](r.Context(), s.st, "subnets/")
	if err != nil {
		return err
	}
	items := make([]api.Subnet, 0, len(objs))
	var shared map[string]bool
	for _, o := range objs {
		if !c.IsAdmin() && o.Value.ProjectID != c.ProjectID {
			if shared == nil {
				if shared, err = s.sharedNetworks(r.Context()); err != nil {
					return err
				}
			}
			if !shared[o.Value.NetworkID] {
				continue
			}
		}
		items = append(items, o.Value)
	}
	return writeList(w, r, "subnets", items, subnetField)
}

func (s *Service) sharedNetworks(ctx context.Context) (map[string]bool, error) {
	nets, _, err := store.List[api.Network](ctx, s.st, "networks/")
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, n := range nets {
		if n.Value.Shared {
			m[n.Value.ID] = true
		}
	}
	return m, nil
}

func (s *Service) updateSubnet(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	want, wantOK, err := ifMatch(r)
	if err != nil {
		return err
	}
	a, err := decodeBody(r.Body, "subnet")
	if err != nil {
		return err
	}
	if err := a.readOnly("PUT", "id", "network_id", "cidr", "ip_version", "tenant_id", "project_id", "created_at",
		"updated_at", "revision_number", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"); err != nil {
		return err
	}
	if a.has("allocation_pools") {
		return badRequest("allocation_pools cannot be changed on an existing subnet in vflink; create a new subnet instead.")
	}
	name, nameOK, err := a.str("name", maxStr)
	if err != nil {
		return err
	}
	desc, descOK, err := a.str("description", maxStr)
	if err != nil {
		return err
	}
	dhcp, dhcpOK, err := a.boolean("enable_dhcp")
	if err != nil {
		return err
	}
	var dns []string
	dnsOK, err := a.decode("dns_nameservers", &dns, "a list of IP addresses")
	if err != nil {
		return err
	}
	var routes []api.HostRoute
	routesOK, err := a.decode("host_routes", &routes, "a list of {\"destination\": CIDR, \"nexthop\": IP}")
	if err != nil {
		return err
	}
	gwNull := a.isNull("gateway_ip")
	var gw string
	gwOK := gwNull
	if gwNull {
		a.has("gateway_ip")
	} else if gw, gwOK, err = a.str("gateway_ip", 64); err != nil {
		return err
	}
	if a.has("tags") {
		return badRequest("Cannot update read-only attribute tags")
	}
	a.has("service_types")
	if err := a.rest(); err != nil {
		return err
	}
	var out api.Subnet
	err = retry(r.Context(), func(int) error {
		o, err := s.visibleSubnet(r.Context(), r, id)
		if err != nil {
			return err
		}
		sn := o.Value
		if !c.IsAdmin() && sn.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of subnet %s may change it.", id)
		}
		if err := checkRevision(want, wantOK, sn.RevisionNumber); err != nil {
			return err
		}
		if nameOK {
			sn.Name = name
		}
		if descOK {
			sn.Description = desc
		}
		if dhcpOK {
			sn.EnableDHCP = dhcp
		}
		if dnsOK {
			sn.DNSNameservers = append([]string{}, dns...)
		}
		if routesOK {
			sn.HostRoutes = append([]api.HostRoute{}, routes...)
		}
		if gwOK {
			if gwNull {
				sn.GatewayIP = nil
			} else {
				g := gw
				sn.GatewayIP = &g
			}
			if _, err := toIPAM(&sn); err != nil {
				return ipamErr(err)
			}
		}
		sn.RevisionNumber++
		sn.UpdatedAt = s.now()
		if _, err := store.Update(r.Context(), s.st, subnetKey(id), sn, o.ModRevision); err != nil {
			return err
		}
		out = sn
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"subnet": out})
	return nil
}

func (s *Service) deleteSubnet(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	id := r.PathValue("id")
	err := retry(r.Context(), func(int) error {
		o, err := s.visibleSubnet(r.Context(), r, id)
		if err != nil {
			return err
		}
		if !c.IsAdmin() && o.Value.ProjectID != c.ProjectID {
			return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only the owner of subnet %s may delete it.", id)
		}
		t := s.st.Txn()
		t.Delete(subnetKey(id), o.ModRevision)
		if autoAddress(&o.Value) {
			// SLAAC addresses go with their subnet, as in Neutron: the ports lose them
			if err := s.dropSLAAC(r.Context(), t, id); err != nil {
				return err
			}
		} else {
			t.PrefixEmpty("ipam/" + id + "/")
		}
		t.Remove("idx/net-subnets/" + o.Value.NetworkID + "/" + id)
		if o.Value.SubnetPoolID != nil {
			t.Remove("idx/pool-subnets/" + *o.Value.SubnetPoolID + "/" + id)
		}
		_, err = t.Commit(r.Context())
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Reason == store.NotEmpty {
			n, _ := s.st.Count(r.Context(), "ipam/"+id+"/")
			return errf(http.StatusConflict, "SubnetInUse",
				"Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet (%d).", id, n)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.cursors, id)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropSLAAC stages the removal of an auto-address subnet's addresses from the ports holding them.
func (s *Service) dropSLAAC(ctx context.Context, t *store.Txn, subnetID string) error {
	ips, rev, err := store.List[string](ctx, s.st, "ipam/"+subnetID+"/")
	if err != nil {
		return err
	}
	t.PrefixUnchangedSince("ipam/"+subnetID+"/", rev)
	t.DeletePrefix("ipam/" + subnetID + "/")
	seen := map[string]bool{}
	for _, ip := range ips {
		if seen[ip.Value] {
			continue
		}
		seen[ip.Value] = true
		po, err := store.Get[api.Port](ctx, s.st, portKey(ip.Value))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		p := po.Value
		p.FixedIPs = slices.DeleteFunc(slices.Clone(p.FixedIPs), func(f api.FixedIP) bool { return f.SubnetID == subnetID })
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		t.Update(portKey(p.ID), p, po.ModRevision)
	}
	return nil
}

func subnetField(sn *api.Subnet, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{sn.ID}, true
	case "name":
		return []string{sn.Name}, true
	case "tenant_id", "project_id":
		return []string{sn.ProjectID}, true
	case "network_id":
		return []string{sn.NetworkID}, true
	case "ip_version":
		return []string{strconv.Itoa(sn.IPVersion)}, true
	case "cidr":
		return []string{sn.CIDR}, true
	case "gateway_ip":
		return []string{deref(sn.GatewayIP)}, true
	case "enable_dhcp":
		return []string{strconv.FormatBool(sn.EnableDHCP)}, true
	case "description":
		return []string{sn.Description}, true
	case "ipv6_ra_mode":
		return []string{deref(sn.IPv6RAMode)}, true
	case "ipv6_address_mode":
		return []string{deref(sn.IPv6AddressMode)}, true
	case "subnetpool_id":
		return []string{deref(sn.SubnetPoolID)}, true
	case "revision_number":
		return []string{strconv.FormatInt(sn.RevisionNumber, 10)}, true
	}
	return nil, false
}

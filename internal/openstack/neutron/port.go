package neutron

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/ipam"
	"github.com/vflink/vflink/internal/store"
)

func portKey(id string) string               { return "ports/" + id }
func macKey(net, mac string) string          { return "mac/" + net + "/" + mac }
func ipKey(sub string, ip netip.Addr) string { return "ipam/" + sub + "/" + ip.String() }

type ipRequest struct {
	subnetID string
	ip       netip.Addr
}

type portRequest struct {
	networkID                                           string
	name, desc, deviceID, deviceOwner, vnic, host       string
	nameOK, descOK, devIDOK, devOwnerOK, vnicOK, hostOK bool
	adminUp, adminOK, portSec, portSecOK                bool
	mac                                                 string
	macOK                                               bool
	profile                                             map[string]any
	profileOK                                           bool
	fixed                                               []ipRequest
	fixedOK                                             bool
	// edit, when set, changes the port after the attributes above (binding-extended's
	// operations): it sees the port's network and may refuse.
	edit func(p *api.Port, n *api.Network) error
	ext  portExt // security groups, allowed address pairs, extra DHCP options, tags (portext.go)
}

func decodePort(a *attrs, create bool) (portRequest, error) {
	var r portRequest
	var err error
	op := "PUT"
	if create {
		op = "POST"
	}
	if err = a.readOnly(op, "id", "status", "created_at", "updated_at", "revision_number",
		"binding:vif_type", "binding:vif_details", "vflink:conditions"); err != nil {
		return r, err
	}
	if create {
		id, ok, err := a.str("network_id", 64)
		if err != nil {
			return r, err
		}
		if !ok || id == "" {
			return r, badRequest("Failed to parse request. Required attribute 'network_id' not specified")
		}
		r.networkID = id
		a.has("tenant_id")
		a.has("project_id")
	} else if err = a.readOnly(op, "network_id", "tenant_id", "project_id"); err != nil {
		return r, err
	}
	if r.name, r.nameOK, err = a.str("name", maxStr); err != nil {
		return r, err
	}
	if r.desc, r.descOK, err = a.str("description", maxStr); err != nil {
		return r, err
	}
	if r.deviceID, r.devIDOK, err = a.str("device_id", maxStr); err != nil {
		return r, err
	}
	if r.deviceOwner, r.devOwnerOK, err = a.str("device_owner", maxStr); err != nil {
		return r, err
	}
	if r.host, r.hostOK, err = a.str("binding:host_id", maxStr); err != nil {
		return r, err
	}
	if r.adminUp, r.adminOK, err = a.boolean("admin_state_up"); err != nil {
		return r, err
	}
	if r.portSec, r.portSecOK, err = a.boolean("port_security_enabled"); err != nil {
		return r, err
	}
	if r.vnic, r.vnicOK, err = a.str("binding:vnic_type", maxStr); err != nil {
		return r, err
	}
	if r.vnicOK && !slices.Contains(api.VNICTypes, r.vnic) {
		return r, invalidInput("Invalid input for binding:vnic_type. Reason: '%s' is not in %v.", clip(r.vnic), api.VNICTypes)
	}
	if r.profile, r.profileOK, err = a.object("binding:profile"); err != nil {
		return r, err
	}
	if r.mac, r.macOK, err = a.str("mac_address", 64); err != nil {
		return r, err
	}
	if r.macOK {
		hw, err := net.ParseMAC(r.mac)
		if err != nil || len(hw) != 6 {
			return r, invalidInput("Invalid input for mac_address. Reason: '%s' is not a valid MAC address.", clip(r.mac))
		}
		if hw[0]&1 == 1 || hw.String() == "00:00:00:00:00:00" {
			return r, invalidInput("Invalid input for mac_address. Reason: '%s' is not a valid unicast MAC address.", r.mac)
		}
		r.mac = hw.String()
	}
	if a.has("fixed_ips") {
		var raw []map[string]any
		if _, err := a.decode("fixed_ips", &raw, "a list of {\"subnet_id\": ID, \"ip_address\": IP}"); err != nil {
			return r, err
		}
		r.fixedOK = true
		r.fixed = []ipRequest{}
		for i, e := range raw {
			var ir ipRequest
			for k, v := range e {
				sv, ok := v.(string)
				if !ok {
					return r, invalidInput("fixed_ips[%d].%s must be a string.", i, k)
				}
				switch k {
				case "subnet_id":
					ir.subnetID = sv
				case "ip_address":
					ip, err := netip.ParseAddr(sv)
					if err != nil || ip.Zone() != "" {
						return r, invalidInput("fixed_ips[%d].ip_address '%s' is not a valid IP address.", i, clip(sv))
					}
					ir.ip = ip.Unmap()
				default:
					return r, invalidInput("fixed_ips[%d]: unknown key %q; allowed: subnet_id, ip_address.", i, k)
				}
			}
			if ir.subnetID == "" && !ir.ip.IsValid() {
				return r, invalidInput("fixed_ips[%d] names neither subnet_id nor ip_address.", i)
			}
			r.fixed = append(r.fixed, ir)
		}
	}
	if r.ext, err = decodePortExt(a, create); err != nil {
		return r, err
	}
	a.has("dns_name")
	return r, nil
}

func (r portRequest) applyTo(p *api.Port) {
	if r.nameOK {
		p.Name = r.name
	}
	if r.descOK {
		p.Description = r.desc
	}
	if r.devIDOK {
		p.DeviceID = r.deviceID
	}
	if r.devOwnerOK {
		p.DeviceOwner = r.deviceOwner
	}
	if r.hostOK {
		p.HostID = r.host
	}
	if r.adminOK {
		p.AdminStateUp = r.adminUp
	}
	if r.portSecOK {
		p.PortSecurityEnabled = r.portSec
	}
	if r.vnicOK {
		p.VNICType = r.vnic
	}
	if r.profileOK {
		p.Profile = r.profile
		p.PCIRequest, _ = r.profile["pci_slot"].(string)
	}
}

// bind derives binding:vif_type and binding:vif_details from the port's host and VNIC type and its
// network's provider attributes.
func bind(p *api.Port, n *api.Network) {
	p.VIFDetails = map[string]any{}
	if p.HostID == "" {
		p.VIFType = api.VIFUnbound
		return
	}
	vlan := "0"
	if n.SegmentationID != nil {
		vlan = strconv.Itoa(*n.SegmentationID)
	}
	physical := n.PhysicalNetwork != nil
	switch p.VNICType {
	case api.VNICDirect, api.VNICMacvtap:
		if !physical {
			p.VIFType = api.VIFBindingFailed
			return
		}
		p.VIFType = api.VIFHwVeb
		p.VIFDetails = map[string]any{"vlan": vlan, "port_filter": false}
	case api.VNICDirectPhysical:
		if !physical {
			p.VIFType = api.VIFBindingFailed
			return
		}
		p.VIFType = api.VIFHostdevPhys
		p.VIFDetails = map[string]any{"vlan": vlan, "port_filter": false}
	case api.VNICBaremetal:
		p.VIFType = api.VIFOther
	default:
		p.VIFType = api.VIFBindingFailed
	}
}

// allocation tracks one request's view of IP candidates across optimistic retries.
type allocation struct {
	fails     map[string]int
	exhausted map[string]bool
	next      map[string]netip.Addr // candidate found by a rescan
	lastTried map[string]netip.Addr
}

func newAllocation() *allocation {
	return &allocation{fails: map[string]int{}, exhausted: map[string]bool{}, next: map[string]netip.Addr{}, lastTried: map[string]netip.Addr{}}
}

// cursor returns the candidate hint of a subnet, seeded by a scan of its allocations.
func (s *Service) cursor(ctx context.Context, so store.Object[api.Subnet], sub ipam.Subnet) (*ipam.Cursor, error) {
	s.mu.Lock()
	sc := s.cursors[so.Value.ID]
	s.mu.Unlock()
	if sc != nil && sc.modRev == so.ModRevision {
		return sc.cur, nil
	}
	used, err := s.usedIPs(ctx, so.Value.ID)
	if err != nil {
		return nil, err
	}
	start, _ := sub.NextFree(used, netip.Addr{})
	c := ipam.NewCursor(sub, netip.Addr{})
	if start.IsValid() {
		c.Seek(prev(start))
	}
	s.mu.Lock()
	s.cursors[so.Value.ID] = &subnetCursor{modRev: so.ModRevision, cur: c}
	s.mu.Unlock()
	return c, nil
}

func prev(a netip.Addr) netip.Addr {
	if p := a.Prev(); p.IsValid() {
		return p
	}
	return a
}

func (s *Service) usedIPs(ctx context.Context, subnetID string) ([]netip.Addr, error) {
	keys, _, err := s.st.Keys(ctx, "ipam/"+subnetID+"/")
	if err != nil {
		return nil, err
	}
	used := make([]netip.Addr, 0, len(keys))
	for _, k := range keys {
		if a, err := netip.ParseAddr(k); err == nil {
			used = append(used, a)
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Less(used[j]) })
	return used, nil
}

// candidate picks an address of sub for this attempt: the cursor's next one, or after repeated
// collisions the first free address of a fresh scan. ok=false means the subnet is full.
func (s *Service) candidate(ctx context.Context, al *allocation, so store.Object[api.Subnet], sub ipam.Subnet, skip map[netip.Addr]bool) (netip.Addr, bool, error) {
	id := so.Value.ID
	if al.exhausted[id] {
		return netip.Addr{}, false, nil
	}
	if a, ok := al.next[id]; ok && !skip[a] {
		delete(al.next, id)
		al.lastTried[id] = a
		return a, true, nil
	}
	if al.fails[id] < 3 {
		c, err := s.cursor(ctx, so, sub)
		if err != nil {
			return netip.Addr{}, false, err
		}
		for i := 0; i < 8; i++ {
			a := c.Next()
			if !skip[a] {
				al.lastTried[id] = a
				return a, true, nil
			}
		}
	}
	used, err := s.usedIPs(ctx, id)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for a := range skip {
		used = append(used, a)
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Less(used[j]) })
	a, ok := sub.NextFree(used, al.lastTried[id])
	if !ok {
		al.exhausted[id] = true
		return netip.Addr{}, false, nil
	}
	if c, err := s.cursor(ctx, so, sub); err == nil {
		c.Seek(a)
	}
	al.lastTried[id] = a
	return a, true, nil
}

// view returns the store view for an optimistic attempt: the first reads serializably (cheap,
// maybe stale: the Txn's compares catch that), retries read linearizably.
func (s *Service) view(attempt int) *store.Store {
	if attempt == 0 {
		return s.st.Serializable()
	}
	return s.st
}

// netSubnets reads the subnets of a network and the revision of that read. A writer that relies
// on the list being complete adds PrefixUnchangedSince("idx/net-subnets/<net>/", rev), so a
// stale (serializable) read that missed a new subnet fails its compare instead of silently
// allocating no address. An indexed subnet that cannot be read is store.ErrConflict (the caller
// reads again): the index and the subnet are written together, so the two reads disagreed, e.g.
// serializable reads answered by two members of a cluster, one of them behind.
func (s *Service) netSubnets(ctx context.Context, st *store.Store, netID string) ([]store.Object[api.Subnet], int64, error) {
	ids, rev, err := st.Keys(ctx, "idx/net-subnets/"+netID+"/")
	if err != nil {
		return nil, 0, err
	}
	out := make([]store.Object[api.Subnet], 0, len(ids))
	for _, id := range ids {
		o, err := store.Get[api.Subnet](ctx, st, subnetKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return nil, 0, fmt.Errorf("subnet %s of network %s is indexed but not found: %w", id, netID, store.ErrConflict)
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, o)
	}
	return out, rev, nil
}

// plannedIP is one address the transaction will reserve.
type plannedIP struct {
	subnet   store.Object[api.Subnet]
	ip       netip.Addr
	explicit bool
}

// planIPs turns the request's fixed_ips (or the default: one address per IP version) into
// addresses to reserve. keep holds addresses the port already has (update) and reuses.
//
// taken holds the addresses other ports of the same transaction have staged on this network (nil
// for a single port); planIPs adds its own. On an auto-address (SLAAC) subnet the address is the
// EUI-64 of mac, and every such subnet of the network gives the port one, as in Neutron.
func (s *Service) planIPs(ctx context.Context, al *allocation, n *api.Network, subs []store.Object[api.Subnet], req portRequest, keep map[netip.Addr]string, taken map[netip.Addr]bool, mac string) ([]plannedIP, error) {
	parsed := make(map[string]ipam.Subnet, len(subs))
	for _, so := range subs {
		sub, err := toIPAM(&so.Value)
		if err != nil {
			return nil, err
		}
		parsed[so.Value.ID] = sub
	}
	skip := taken
	if skip == nil {
		skip = map[netip.Addr]bool{}
	}
	mine := map[netip.Addr]bool{}
	var out []plannedIP
	auto := func(so store.Object[api.Subnet]) (bool, error) {
		a, ok, err := s.candidate(ctx, al, so, parsed[so.Value.ID], skip)
		if err != nil || !ok {
			return false, err
		}
		skip[a], mine[a] = true, true
		out = append(out, plannedIP{subnet: so, ip: a})
		return true, nil
	}
	slaac := map[string]bool{} // auto-address subnets given an address
	eui := func(so store.Object[api.Subnet]) error {
		if slaac[so.Value.ID] {
			return nil
		}
		a, err := ipam.EUI64(parsed[so.Value.ID].Prefix, mac)
		if err != nil {
			return invalidInput("no SLAAC address on subnet %s: %v", so.Value.ID, err)
		}
		slaac[so.Value.ID], skip[a], mine[a] = true, true, true
		out = append(out, plannedIP{subnet: so, ip: a, explicit: true})
		return nil
	}
	allSLAAC := func() ([]plannedIP, error) {
		for _, so := range subs {
			if autoAddress(&so.Value) {
				if err := eui(so); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	if !req.fixedOK {
		for _, v := range []int{4, 6} {
			have, got := false, false
			for _, so := range subs {
				if so.Value.IPVersion != v || autoAddress(&so.Value) {
					continue
				}
				have = true
				ok, err := auto(so)
				if err != nil {
					return nil, err
				}
				if ok {
					got = true
					break
				}
			}
			if have && !got {
				return nil, errf(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
			}
		}
		return allSLAAC()
	}
	for i, fr := range req.fixed {
		var so *store.Object[api.Subnet]
		for j := range subs {
			if fr.subnetID != "" && subs[j].Value.ID == fr.subnetID {
				so = &subs[j]
				break
			}
			if fr.subnetID == "" && parsed[subs[j].Value.ID].Prefix.Contains(fr.ip) {
				so = &subs[j]
				break
			}
		}
		if so == nil {
			if fr.subnetID != "" {
				return nil, invalidInput("fixed_ips[%d]: subnet %s is not a subnet of network %s.", i, fr.subnetID, n.ID)
			}
			return nil, invalidInput("fixed_ips[%d]: IP address %s is in no subnet of network %s.", i, fr.ip, n.ID)
		}
		sub := parsed[so.Value.ID]
		if autoAddress(&so.Value) {
			if _, had := keep[fr.ip]; fr.ip.IsValid() && !had { // the port's own SLAAC address is planned again
				if a, err := ipam.EUI64(sub.Prefix, mac); err != nil || a != fr.ip {
					return nil, invalidInput("IPv6 address %s can not be directly assigned to a port on subnet %s since the subnet is configured for automatic addresses", fr.ip, so.Value.ID)
				}
			}
			if err := eui(*so); err != nil {
				return nil, err
			}
			continue
		}
		if !fr.ip.IsValid() {
			ok, err := auto(*so)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errf(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on subnet %s.", so.Value.ID)
			}
			continue
		}
		if !sub.Prefix.Contains(fr.ip) {
			return nil, invalidInput("fixed_ips[%d]: IP address %s is not in subnet %s (%s).", i, fr.ip, so.Value.ID, so.Value.CIDR)
		}
		if _, had := keep[fr.ip]; !had {
			if err := sub.CheckFixed(fr.ip); err != nil {
				return nil, ipamErr(err)
			}
		}
		if mine[fr.ip] {
			return nil, invalidInput("fixed_ips[%d]: IP address %s is given twice.", i, fr.ip)
		}
		if skip[fr.ip] {
			return nil, errf(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", fr.ip, so.Value.ID)
		}
		skip[fr.ip], mine[fr.ip] = true, true
		out = append(out, plannedIP{subnet: *so, ip: fr.ip, explicit: true})
	}
	return allSLAAC()
}

// portConflict turns a failed reservation into the API error, or nil when a retry with a fresh
// candidate should follow.
func portConflict(ce *store.ConflictError, plan []plannedIP, al *allocation, netID, mac string, macExplicit bool) error {
	if ce.Reason != store.Exists {
		return nil
	}
	if strings.HasPrefix(ce.Key, "mac/") {
		if macExplicit {
			return errf(http.StatusConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", netID, mac)
		}
		return nil
	}
	for _, p := range plan {
		if ce.Key == ipKey(p.subnet.Value.ID, p.ip) {
			if p.explicit {
				return errf(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", p.ip, p.subnet.Value.ID)
			}
			al.fails[p.subnet.Value.ID]++
		}
	}
	return nil
}

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

func normPort(p api.Port) api.Port {
	if p.FixedIPs == nil {
		p.FixedIPs = []api.FixedIP{}
	}
	if p.SecurityGroups == nil {
		p.SecurityGroups = []string{}
	}
	if p.AllowedAddressPairs == nil {
		p.AllowedAddressPairs = []api.AddressPair{}
	}
	if p.ExtraDHCPOpts == nil {
		p.ExtraDHCPOpts = []api.ExtraDHCPOpt{}
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if p.Profile == nil {
		p.Profile = map[string]any{}
	}
	if p.VIFDetails == nil {
		p.VIFDetails = map[string]any{}
	}
	if p.Conditions == nil {
		p.Conditions = []api.Condition{}
	}
	p.PCIRequest = ""
	p.Inactive = nil
	return p
}

func (s *Service) visiblePort(ctx context.Context, c *auth.Context, id string) (store.Object[api.Port], error) {
	o, err := store.Get[api.Port](ctx, s.st, portKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.IsAdmin() && o.Value.ProjectID != c.ProjectID) {
		return o, notFound("port", id)
	}
	return o, err
}

func (s *Service) showPort(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visiblePort(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "port", normPort(o.Value))
}

func (s *Service) listPorts(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	objs, _, err := store.List[api.Port](r.Context(), s.st, "ports/")
	if err != nil {
		return err
	}
	items := make([]api.Port, 0, len(objs))
	for _, o := range objs {
		if c.IsAdmin() || o.Value.ProjectID == c.ProjectID {
			items = append(items, normPort(o.Value))
		}
	}
	return writeList(w, r, "ports", items, portField)
}

func (s *Service) updatePort(w http.ResponseWriter, r *http.Request) error {
	want, wantOK, err := ifMatch(r)
	if err != nil {
		return err
	}
	a, err := decodeBody(r.Body, "port")
	if err != nil {
		return err
	}
	req, err := decodePort(a, false)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	check := func(old *api.Port) error { return checkRevision(want, wantOK, old.RevisionNumber) }
	out, err := s.changePort(r.Context(), caller(r), r.PathValue("id"), req, check)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"port": normPort(out)})
	return nil
}

// Binding is what the compute service sets on a port when it places a server.
type Binding struct {
	Host, DeviceID, DeviceOwner string
}

// Network returns a network the caller may see, with its subnets.
func (s *Service) Network(ctx context.Context, c *auth.Context, id string) (api.Network, error) {
	o, err := s.visibleNetwork(ctx, c, id)
	if err != nil {
		return api.Network{}, err
	}
	n := o.Value
	n.Subnets, err = s.subnetIDs(ctx, id)
	return normNetwork(n), err
}

// Port returns a port the caller may see.
func (s *Service) Port(ctx context.Context, c *auth.Context, id string) (api.Port, error) {
	o, err := s.visiblePort(ctx, c, id)
	return normPort(o.Value), err
}

// Bind sets the port's host and device. It fails with 409 PortInUse when the port already belongs
// to another device, so two servers can never claim one port.
func (s *Service) Bind(ctx context.Context, c *auth.Context, id string, b Binding) (api.Port, error) {
	req := portRequest{host: b.Host, hostOK: true, deviceID: b.DeviceID, devIDOK: true, deviceOwner: b.DeviceOwner, devOwnerOK: true}
	return s.changePort(ctx, c, id, req, func(old *api.Port) error {
		if old.DeviceID != "" && old.DeviceID != b.DeviceID {
			return errf(http.StatusConflict, "PortInUse", "Unable to complete operation on port %s: it is in use by device %s.", id, old.DeviceID)
		}
		return nil
	})
}

// Unbind clears the host and device of a port that still belongs to deviceID (a no-op otherwise).
func (s *Service) Unbind(ctx context.Context, c *auth.Context, id, deviceID string) error {
	req := portRequest{host: "", hostOK: true, deviceID: "", devIDOK: true, deviceOwner: "", devOwnerOK: true,
		profile: map[string]any{}, profileOK: true}
	_, err := s.changePort(ctx, c, id, req, func(old *api.Port) error {
		if old.DeviceID != deviceID {
			return errSkip
		}
		return nil
	})
	if errors.Is(err, errSkip) {
		return nil
	}
	return err
}

var errSkip = errors.New("nothing to do")

// changePort applies req to a port in one transaction, keeping the MAC, IP and bound-port keys
// in step. check runs on every attempt against the freshly read port.
func (s *Service) changePort(ctx context.Context, c *auth.Context, id string, req portRequest, check func(old *api.Port) error) (api.Port, error) {
	al := newAllocation()
	var out api.Port
	err := retry(ctx, func(int) error {
		o, err := s.visiblePort(ctx, c, id)
		if err != nil {
			return err
		}
		old := o.Value
		if err := check(&old); err != nil {
			return err
		}
		no, err := store.Get[api.Network](ctx, s.st, netKey(old.NetworkID))
		if err != nil {
			return err
		}
		p := old
		p.FixedIPs = append([]api.FixedIP(nil), old.FixedIPs...)
		req.applyTo(&p)
		if req.edit != nil {
			p.Inactive = slices.Clone(old.Inactive)
			if err := req.edit(&p, &no.Value); err != nil {
				return err
			}
		}
		bound := old.HostID != ""
		if bound && req.vnicOK && req.vnic != old.VNICType && p.HostID != "" {
			return errf(http.StatusConflict, "PortBound", "Unable to complete operation on port %s, port is already bound to host %s, port type: %s, old_vnic_type: %s, new_vnic_type: %s. Unbind it first.", id, old.HostID, old.VIFType, old.VNICType, req.vnic)
		}
		if bound && req.macOK && req.mac != old.MACAddress && p.HostID != "" {
			return errf(http.StatusConflict, "PortBound", "Unable to change the MAC address of port %s: it is bound to host %s. Unbind it first.", id, old.HostID)
		}
		t := s.st.Txn()
		t.Unchanged(netKey(old.NetworkID), no.ModRevision)
		var plan []plannedIP
		if req.macOK && req.mac != old.MACAddress && !req.fixedOK {
			// SLAAC addresses follow the MAC: plan the port's addresses again
			req.fixedOK, req.fixed = true, make([]ipRequest, 0, len(old.FixedIPs))
			for _, f := range old.FixedIPs {
				ip, _ := netip.ParseAddr(f.IPAddress)
				req.fixed = append(req.fixed, ipRequest{subnetID: f.SubnetID, ip: ip})
			}
		}
		if req.fixedOK {
			keep := map[netip.Addr]string{}
			for _, f := range old.FixedIPs {
				if ip, err := netip.ParseAddr(f.IPAddress); err == nil {
					keep[ip] = f.SubnetID
				}
			}
			subs, subsRev, err := s.netSubnets(ctx, s.st, old.NetworkID)
			if err != nil {
				return err
			}
			t.PrefixUnchangedSince("idx/net-subnets/"+old.NetworkID+"/", subsRev)
			// addresses the port keeps are requested explicitly and not reserved again
			mac := old.MACAddress
			if req.macOK {
				mac = req.mac
			}
			if plan, err = s.planIPs(ctx, al, &no.Value, subs, req, keep, nil, mac); err != nil {
				return err
			}
			p.FixedIPs = make([]api.FixedIP, len(plan))
			wanted := map[netip.Addr]bool{}
			for i, pl := range plan {
				p.FixedIPs[i] = api.FixedIP{SubnetID: pl.subnet.Value.ID, IPAddress: pl.ip.String()}
				wanted[pl.ip] = true
				if sub, had := keep[pl.ip]; had && sub == pl.subnet.Value.ID {
					continue
				}
				t.Unchanged(subnetKey(pl.subnet.Value.ID), pl.subnet.ModRevision)
				t.Create(ipKey(pl.subnet.Value.ID, pl.ip), id)
			}
			for ip, sub := range keep {
				if !wanted[ip] {
					t.Remove(ipKey(sub, ip))
				}
			}
		}
		if req.macOK && req.mac != old.MACAddress {
			t.Remove(macKey(old.NetworkID, old.MACAddress))
			t.Create(macKey(old.NetworkID, req.mac), id)
			p.MACAddress = req.mac
		}
		if bk := "idx/net-bound/" + old.NetworkID + "/" + id; old.HostID != p.HostID {
			switch {
			case p.HostID == "":
				t.Remove(bk)
			case old.HostID == "":
				t.Create(bk, p.HostID)
			default: // moved to another host: one key may appear only once in a Txn
				t.Put(bk, p.HostID)
			}
		}
		bind(&p, &no.Value)
		if p.HostID != old.HostID || p.PCIRequest != old.PCIRequest {
			unserved(&p) // its VF is given back (or another one programmed): nothing is served yet
		} else if old.VIFType == api.VIFBindingFailed && p.VIFType != api.VIFUnbound {
			p.VIFType = old.VIFType // the host's agent could not bind it as asked; still so
		}
		if err := s.stagePortExt(ctx, c, t, &p, &old, req.ext); err != nil {
			return err
		}
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		t.Update(portKey(id), p, o.ModRevision)
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			if e := portConflict(ce, plan, al, old.NetworkID, req.mac, true); e != nil {
				return e
			}
		}
		if err == nil {
			out = p
		}
		return err
	})
	return out, err
}

func (s *Service) deletePort(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeletePort(r.Context(), caller(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DeletePort deletes a port the caller may see, with its MAC, IP and index keys.
func (s *Service) DeletePort(ctx context.Context, c *auth.Context, id string) error {
	return retry(ctx, func(int) error {
		o, err := s.visiblePort(ctx, c, id)
		if err != nil {
			return err
		}
		p := o.Value
		if tid, err := s.trunkOf(ctx, id); err != nil {
			return err
		} else if tid != "" {
			role := "a subport"
			if p.TrunkDetails != nil {
				role = "the parent port"
			}
			return errf(http.StatusConflict, "PortInUse", "Port %s is %s of trunk %s; remove it from the trunk (or delete the trunk) first.", id, role, tid)
		}
		t := s.st.Txn()
		t.Delete(portKey(id), o.ModRevision)
		t.PrefixEmpty(trunkPortKey(id)) // a trunk taking the port meanwhile: retry, and refuse above
		t.Remove("idx/net-ports/" + p.NetworkID + "/" + id)
		t.Remove(projectPortKey(p.ProjectID, id))
		t.Remove("idx/net-bound/" + p.NetworkID + "/" + id)
		t.Remove(macKey(p.NetworkID, p.MACAddress))
		unstagePortExt(t, &p)
		for _, f := range p.FixedIPs {
			if ip, err := netip.ParseAddr(f.IPAddress); err == nil {
				t.Remove(ipKey(f.SubnetID, ip))
			}
		}
		_, err = t.Commit(ctx)
		return err
	})
}

// SetCondition records one condition on a port (by type) without touching its status; an
// unchanged condition writes nothing.
func (s *Service) SetCondition(ctx context.Context, id string, c api.Condition) error {
	return retry(ctx, func(int) error {
		o, err := store.Get[api.Port](ctx, s.st, portKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		p := o.Value
		for _, old := range p.Conditions {
			if old.Type == c.Type && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
				return nil
			}
		}
		p.Conditions = setCondition(p.Conditions, c, s.now())
		p.RevisionNumber++
		p.UpdatedAt = s.now()
		_, err = store.Update(ctx, s.st, portKey(id), p, o.ModRevision)
		return err
	})
}

func portField(p *api.Port, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{p.ID}, true
	case "name":
		return []string{p.Name}, true
	case "network_id":
		return []string{p.NetworkID}, true
	case "tenant_id", "project_id":
		return []string{p.ProjectID}, true
	case "mac_address":
		return []string{p.MACAddress}, true
	case "admin_state_up":
		return []string{strconv.FormatBool(p.AdminStateUp)}, true
	case "status":
		return []string{p.Status}, true
	case "device_id":
		return []string{p.DeviceID}, true
	case "device_owner":
		return []string{p.DeviceOwner}, true
	case "description":
		return []string{p.Description}, true
	case "binding:vnic_type":
		return []string{p.VNICType}, true
	case "binding:host_id":
		return []string{p.HostID}, true
	case "binding:vif_type":
		return []string{p.VIFType}, true
	case "port_security_enabled":
		return []string{strconv.FormatBool(p.PortSecurityEnabled)}, true
	case "revision_number":
		return []string{strconv.FormatInt(p.RevisionNumber, 10)}, true
	case "security_groups":
		return p.SecurityGroups, true
	case "fixed_ips":
		// Neutron's form: fixed_ips=ip_address=10.0.0.5 or fixed_ips=subnet_id=ID
		var out []string
		for _, ip := range p.FixedIPs {
			out = append(out, "ip_address="+ip.IPAddress, "subnet_id="+ip.SubnetID)
		}
		return out, true
	}
	return nil, false
}

// unserved resets what a host agent said about a port whose binding moved, went away or asks
// for another VF: the port is DOWN and its VF condition gone until an agent serves it again
// (Nova must not see a stale ACTIVE before the new VF is programmed).
func unserved(p *api.Port) {
	if vfVNIC(p.VNICType) || p.Status == api.StatusActive {
		p.Status = api.StatusDown
	}
	cs := p.Conditions[:0:0]
	for _, c := range p.Conditions {
		if c.Type != api.ConditionVFProgrammed {
			cs = append(cs, c)
		}
	}
	p.Conditions = cs
}

// vfVNIC reports whether a VNIC type is served by an SR-IOV VF on the host.
func vfVNIC(t string) bool {
	return t == api.VNICDirect || t == api.VNICMacvtap || t == api.VNICDirectPhysical
}

// setCondition replaces the condition of c's type, keeping its transition time when the status
// did not change.
func setCondition(cs []api.Condition, c api.Condition, now string) []api.Condition {
	out := make([]api.Condition, 0, len(cs)+1)
	found := false
	for _, old := range cs {
		if old.Type != c.Type {
			out = append(out, old)
			continue
		}
		found = true
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status || c.LastTransitionTime == "" {
			c.LastTransitionTime = now
		}
		out = append(out, c)
	}
	if !found {
		c.LastTransitionTime = now
		out = append(out, c)
	}
	return out
}

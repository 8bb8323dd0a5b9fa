package neutron

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

func portKey(id string) string { return "ports/" + id }

func macKey(net, mac string) string { return "mac/" + net + "/" + mac }

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

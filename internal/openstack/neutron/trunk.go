package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Trunks (Neutron's trunk extension) for VLAN-aware VMs on a trunk VF. The parent port is a VF
// port; its VF gets VLAN 0 and passes the VM's tags. Each subport is a port on a tenant network whose
// VLAN the VM uses tagged: its segmentation_id must be that network's VLAN, since the VF does not
// translate tags and a switch's bridge domain has one VLAN. The parent's own network is the VM's
// untagged traffic: a trunk network (VLAN 0) means none, any other network is carried untagged
// (native) on the switch port.
//
// Keys: trunks/<id> (api.Trunk) and idx/trunk-port/<port> (the trunk id) for the parent and every
// subport, created with the trunk in one Txn, so a port is in at most one trunk; the parent port
// carries trunk_details, updated in the same Txn.

func trunkKey(id string) string       { return "trunks/" + id }
func trunkPortKey(port string) string { return "idx/trunk-port/" + port }

func (s *Service) registerTrunks(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /trunks", s.createTrunk)
	h("GET /trunks", s.listTrunks)
	h("GET /trunks/{id}", s.showTrunk)
	h("PUT /trunks/{id}", s.updateTrunk)
	h("DELETE /trunks/{id}", s.deleteTrunk)
	h("PUT /trunks/{id}/add_subports", s.addSubports)
	h("PUT /trunks/{id}/remove_subports", s.removeSubports)
	h("GET /trunks/{id}/get_subports", s.getSubports)
}

// decodeSubports reads a sub_ports list; with ids, only port_id is needed (remove_subports).
func decodeSubports(a *attrs, idsOnly bool) ([]api.SubPort, error) {
	var raw []map[string]any
	if _, err := a.decode("sub_ports", &raw, "a list of {port_id, segmentation_type, segmentation_id}"); err != nil {
		return nil, err
	}
	out := make([]api.SubPort, 0, len(raw))
	for i, m := range raw {
		id, _ := m["port_id"].(string)
		if id == "" {
			return nil, invalidInput("sub_ports[%d] has no port_id.", i)
		}
		sp := api.SubPort{PortID: id}
		if !idsOnly {
			typ, _ := m["segmentation_type"].(string)
			switch typ {
			case "vlan":
				f, ok := m["segmentation_id"].(float64)
				if !ok {
					if str, isStr := m["segmentation_id"].(string); isStr {
						n, err := strconv.Atoi(str)
						f, ok = float64(n), err == nil
					}
				}
				if !ok || f != float64(int(f)) || f < 1 || f > maxVLAN {
					return nil, invalidInput("sub_ports[%d] (port %s): segmentation_id %v is not a VLAN ID 1-%d.", i, id, m["segmentation_id"], maxVLAN)
				}
				sp.SegmentationType, sp.SegmentationID = "vlan", int(f)
			case "inherit":
				sp.SegmentationType = "inherit" // resolved to the network's VLAN below
			default:
				return nil, invalidInput("sub_ports[%d] (port %s): segmentation_type %q is not supported; allowed: vlan, inherit.", i, id, typ)
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

// checkSubports validates subports against the trunk's parent and resolves "inherit"; it returns
// the subports' ports by ID.
func (s *Service) checkSubports(ctx context.Context, c *auth.Context, parent api.Port, parentNet api.Network, existing, add []api.SubPort) (map[string]store.Object[api.Port], error) {
	ports := map[string]store.Object[api.Port]{}
	vlans := map[int]string{}
	nets := map[string]string{parent.NetworkID: parent.ID}
	for _, sp := range existing {
		vlans[sp.SegmentationID] = sp.PortID
		if o, err := store.Get[api.Port](ctx, s.st, portKey(sp.PortID)); err == nil {
			nets[o.Value.NetworkID] = sp.PortID
		}
	}
	for i := range add {
		sp := &add[i]
		if sp.PortID == parent.ID {
			return nil, errf(http.StatusConflict, "PortInUse", "Port %s is the trunk's parent port; it cannot also be a subport.", sp.PortID)
		}
		o, err := s.visiblePort(ctx, c, sp.PortID)
		if err != nil {
			return nil, err
		}
		p := o.Value
		if p.HostID != "" {
			return nil, errf(http.StatusConflict, "PortInUse", "Port %s is bound to host %s; a subport is not bound by itself (its traffic rides on the parent's VF).", p.ID, p.HostID)
		}
		n, err := s.visibleNetwork(ctx, c, p.NetworkID)
		if err != nil {
			return nil, err
		}
		if n.Value.SegmentationID == nil || *n.Value.SegmentationID == 0 || deref(n.Value.PhysicalNetwork) == "" {
			return nil, invalidInput("Subport %s is on network %s, which has no provider VLAN; a subport's network needs a physical network and a VLAN 1-%d.", p.ID, n.Value.ID, maxVLAN)
		}
		if pp := deref(parentNet.PhysicalNetwork); pp != "" && deref(n.Value.PhysicalNetwork) != pp {
			return nil, invalidInput("Subport %s is on network %s of physical network %s; the parent port's VF is on physical network %s.", p.ID, n.Value.ID, deref(n.Value.PhysicalNetwork), pp)
		}
		vlan := *n.Value.SegmentationID
		if sp.SegmentationType == "inherit" {
			sp.SegmentationType, sp.SegmentationID = "vlan", vlan
		}
		if sp.SegmentationID != vlan {
			return nil, invalidInput("Subport %s: segmentation_id %d does not match VLAN %d of its network %s; a trunk VF passes the VM's tags unchanged to the switch, where that network is VLAN %d (use segmentation-id %d, or segmentation-type inherit).", p.ID, sp.SegmentationID, vlan, n.Value.ID, vlan, vlan)
		}
		if other, ok := vlans[sp.SegmentationID]; ok {
			return nil, errf(http.StatusConflict, "DuplicateSubPort", "segmentation_id %d is already used by subport %s of this trunk.", sp.SegmentationID, other)
		}
		if other, ok := nets[p.NetworkID]; ok {
			return nil, errf(http.StatusConflict, "DuplicateSubPort", "Port %s is on network %s, which port %s of this trunk already carries.", p.ID, p.NetworkID, other)
		}
		vlans[sp.SegmentationID], nets[p.NetworkID] = p.ID, p.ID
		ports[p.ID] = o
	}
	return ports, nil
}

func details(t api.Trunk, ports map[string]string) *api.TrunkDetails {
	d := &api.TrunkDetails{TrunkID: t.ID, SubPorts: []api.SubPortMAC{}}
	for _, sp := range t.SubPorts {
		d.SubPorts = append(d.SubPorts, api.SubPortMAC{SubPort: sp, MACAddress: ports[sp.PortID]})
	}
	return d
}

// macs returns the MAC of each subport.
func (s *Service) macs(ctx context.Context, t api.Trunk) map[string]string {
	out := map[string]string{}
	for _, sp := range t.SubPorts {
		if o, err := store.Get[api.Port](ctx, s.st, portKey(sp.PortID)); err == nil {
			out[sp.PortID] = o.Value.MACAddress
		}
	}
	return out
}

// inUse maps a lost create-only compare on idx/trunk-port/<port> to Neutron's error.
func (s *Service) inUse(ctx context.Context, err error) error {
	var ce *store.ConflictError
	if !errors.As(err, &ce) || ce.Reason != store.Exists {
		return err
	}
	port := ce.Key[len(trunkPortKey("")):]
	if len(ce.Key) <= len(trunkPortKey("")) || ce.Key[:len(trunkPortKey(""))] != trunkPortKey("") {
		return err
	}
	tid := ""
	if o, gerr := store.Get[string](ctx, s.st, ce.Key); gerr == nil {
		tid = o.Value
	}
	return errf(http.StatusConflict, "PortInUse", "Port %s is already in use by trunk %s.", port, tid)
}

// trunkFields are a trunk's writable attributes; the OK flags say which were given.
type trunkFields struct {
	name, desc               string
	up, nameOK, descOK, upOK bool
}

func decodeTrunkFields(a *attrs) (f trunkFields, err error) {
	if f.name, f.nameOK, err = a.str("name", maxStr); err != nil {
		return f, err
	}
	if f.desc, f.descOK, err = a.str("description", maxStr); err != nil {
		return f, err
	}
	f.up, f.upOK, err = a.boolean("admin_state_up")
	return f, err
}

func (s *Service) createTrunk(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	a, err := decodeBody(r.Body, "trunk")
	if err != nil {
		return err
	}
	if err := a.readOnly("create", "id", "status", "created_at", "updated_at", "revision_number"); err != nil {
		return err
	}
	proj, err := owner(c, a)
	if err != nil {
		return err
	}
	f, err := decodeTrunkFields(a)
	if err != nil {
		return err
	}
	parentID, ok, err := a.str("port_id", maxStr)
	if err != nil {
		return err
	}
	if !ok || parentID == "" {
		return badRequest("'port_id' is required: the trunk's parent port (a VF port: binding:vnic_type direct).")
	}
	subs, err := decodeSubports(a, false)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	now := s.now()
	t := api.Trunk{ID: uuid.NewString(), Name: f.name, Description: f.desc, PortID: parentID, TenantID: proj, ProjectID: proj,
		AdminStateUp: !f.upOK || f.up, Status: "DOWN", Tags: []string{}, CreatedAt: now, UpdatedAt: now, RevisionNumber: 1}
	err = retry(ctx, func(int) error {
		po, err := s.visiblePort(ctx, c, parentID)
		if err != nil {
			return err
		}
		parent := po.Value
		if !vfVNIC(parent.VNICType) {
			return invalidInput("Port %s has binding:vnic_type %s; a vflink trunk's parent port is a VF port (direct, direct-physical or macvtap) whose VF passes the VM's VLAN tags.", parent.ID, parent.VNICType)
		}
		if parent.HostID != "" {
			return errf(http.StatusConflict, "ParentPortInUse", "Port %s is currently in use and is not eligible for use as a parent port: it is bound to host %s. Create the trunk before the server.", parent.ID, parent.HostID)
		}
		pn, err := s.visibleNetwork(ctx, c, parent.NetworkID)
		if err != nil {
			return err
		}
		if pn.Value.SegmentationID == nil || deref(pn.Value.PhysicalNetwork) == "" {
			return invalidInput("Port %s is on network %s, which has no physical network and VLAN; a trunk's parent is on a trunk network (VLAN 0) or a VLAN network whose traffic the VM sends untagged.", parent.ID, pn.Value.ID)
		}
		sps := append([]api.SubPort(nil), subs...)
		ports, err := s.checkSubports(ctx, c, parent, pn.Value, nil, sps)
		if err != nil {
			return err
		}
		tr := t
		tr.SubPorts = sps
		macs := map[string]string{}
		for id, o := range ports {
			macs[id] = o.Value.MACAddress
		}
		parent.TrunkDetails = details(tr, macs)
		parent.RevisionNumber++
		parent.UpdatedAt = now
		txn := s.st.Txn()
		txn.Create(trunkKey(tr.ID), tr)
		txn.Create(trunkPortKey(parent.ID), tr.ID)
		txn.Update(portKey(parent.ID), parent, po.ModRevision)
		for id, o := range ports {
			txn.Create(trunkPortKey(id), tr.ID)
			txn.Unchanged(portKey(id), o.ModRevision)
		}
		if _, err := txn.Commit(ctx); err != nil {
			return s.inUse(ctx, err)
		}
		t = tr
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("trunk created", "trunk", t.ID, "port", t.PortID, "subports", len(t.SubPorts), "project", t.ProjectID)
	writeJSON(w, http.StatusCreated, map[string]any{"trunk": s.normTrunk(ctx, t, nil)})
	return nil
}

// normTrunk fills what a trunk shows: its status follows the parent port (ACTIVE when the parent
// is ACTIVE, else DOWN).
func (s *Service) normTrunk(ctx context.Context, t api.Trunk, ports map[string]api.Port) api.Trunk {
	if t.SubPorts == nil {
		t.SubPorts = []api.SubPort{}
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	var p api.Port
	if ports != nil {
		p = ports[t.PortID]
	} else if o, err := store.Get[api.Port](ctx, s.st, portKey(t.PortID)); err == nil {
		p = o.Value
	}
	t.Status = "DOWN"
	if p.Status == "ACTIVE" {
		t.Status = "ACTIVE"
	}
	return t
}

func (s *Service) visibleTrunk(ctx context.Context, c *auth.Context, id string) (store.Object[api.Trunk], error) {
	o, err := store.Get[api.Trunk](ctx, s.st, trunkKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.IsAdmin() && o.Value.ProjectID != c.ProjectID) {
		return o, notFound("trunk", id)
	}
	return o, err
}

func (s *Service) showTrunk(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleTrunk(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "trunk", s.normTrunk(r.Context(), o.Value, nil))
}

func (s *Service) listTrunks(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	objs, rev, err := store.List[api.Trunk](r.Context(), s.st, "trunks/")
	if err != nil {
		return err
	}
	ports := map[string]api.Port{}
	if len(objs) > 0 {
		pobjs, _, err := store.List[api.Port](r.Context(), s.st, "ports/", store.ListOptions{Rev: rev})
		if err != nil {
			return err
		}
		for _, o := range pobjs {
			ports[o.Value.ID] = o.Value
		}
	}
	items := make([]api.Trunk, 0, len(objs))
	for _, o := range objs {
		if c.IsAdmin() || o.Value.ProjectID == c.ProjectID {
			items = append(items, s.normTrunk(r.Context(), o.Value, ports))
		}
	}
	return writeList(w, r, "trunks", items, trunkField)
}

func trunkField(t *api.Trunk, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{t.ID}, true
	case "name":
		return []string{t.Name}, true
	case "port_id":
		return []string{t.PortID}, true
	case "tenant_id", "project_id":
		return []string{t.ProjectID}, true
	case "status":
		return []string{t.Status}, true
	case "admin_state_up":
		return []string{strconv.FormatBool(t.AdminStateUp)}, true
	case "description":
		return []string{t.Description}, true
	case "revision_number":
		return []string{strconv.FormatInt(t.RevisionNumber, 10)}, true
	}
	return nil, false
}

func (s *Service) updateTrunk(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	a, err := decodeBody(r.Body, "trunk")
	if err != nil {
		return err
	}
	if err := a.readOnly("update", "id", "port_id", "sub_ports", "tenant_id", "project_id", "status", "created_at", "updated_at", "revision_number"); err != nil {
		return err
	}
	f, err := decodeTrunkFields(a)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	var out api.Trunk
	err = retry(ctx, func(int) error {
		o, err := s.visibleTrunk(ctx, c, r.PathValue("id"))
		if err != nil {
			return err
		}
		t := o.Value
		if f.nameOK {
			t.Name = f.name
		}
		if f.descOK {
			t.Description = f.desc
		}
		if f.upOK {
			t.AdminStateUp = f.up
		}
		t.RevisionNumber++
		t.UpdatedAt = s.now()
		if _, err := store.Update(ctx, s.st, trunkKey(t.ID), t, o.ModRevision); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"trunk": s.normTrunk(ctx, out, nil)})
	return nil
}

func (s *Service) deleteTrunk(w http.ResponseWriter, r *http.Request) error {
	ctx, c := r.Context(), caller(r)
	err := retry(ctx, func(int) error {
		o, err := s.visibleTrunk(ctx, c, r.PathValue("id"))
		if err != nil {
			return err
		}
		t := o.Value
		txn := s.st.Txn()
		txn.Delete(trunkKey(t.ID), o.ModRevision)
		txn.Remove(trunkPortKey(t.PortID))
		for _, sp := range t.SubPorts {
			txn.Remove(trunkPortKey(sp.PortID))
		}
		if po, err := store.Get[api.Port](ctx, s.st, portKey(t.PortID)); err == nil {
			if po.Value.HostID != "" {
				return errf(http.StatusConflict, "TrunkInUse", "Trunk %s is in use: its parent port %s is bound to host %s. Delete the server first.", t.ID, t.PortID, po.Value.HostID)
			}
			p := po.Value
			p.TrunkDetails = nil
			p.RevisionNumber++
			p.UpdatedAt = s.now()
			txn.Update(portKey(p.ID), p, po.ModRevision)
		}
		_, err = txn.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// changeSubports adds or removes subports in one Txn with the trunk and the parent's trunk_details.
func (s *Service) changeSubports(w http.ResponseWriter, r *http.Request, add bool) error {
	ctx, c := r.Context(), caller(r)
	a, err := decodeTop(r.Body)
	if err != nil {
		return err
	}
	subs, err := decodeSubports(a, !add)
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	var out api.Trunk
	err = retry(ctx, func(int) error {
		o, err := s.visibleTrunk(ctx, c, r.PathValue("id"))
		if err != nil {
			return err
		}
		t := o.Value
		po, err := store.Get[api.Port](ctx, s.st, portKey(t.PortID))
		if err != nil {
			return fmt.Errorf("parent port %s of trunk %s: %w", t.PortID, t.ID, err)
		}
		txn := s.st.Txn()
		if add {
			pn, err := s.visibleNetwork(ctx, c, po.Value.NetworkID)
			if err != nil {
				return err
			}
			sps := append([]api.SubPort(nil), subs...)
			ports, err := s.checkSubports(ctx, c, po.Value, pn.Value, t.SubPorts, sps)
			if err != nil {
				return err
			}
			for id, p := range ports {
				txn.Create(trunkPortKey(id), t.ID)
				txn.Unchanged(portKey(id), p.ModRevision)
			}
			t.SubPorts = append(t.SubPorts, sps...)
		} else {
			keep := t.SubPorts[:0:0]
			gone := map[string]bool{}
			for _, sp := range subs {
				gone[sp.PortID] = true
			}
			for _, sp := range t.SubPorts {
				if gone[sp.PortID] {
					txn.Remove(trunkPortKey(sp.PortID))
					delete(gone, sp.PortID)
					continue
				}
				keep = append(keep, sp)
			}
			for id := range gone {
				return errf(http.StatusNotFound, "SubPortNotFound", "Port %s is not a subport of trunk %s.", id, t.ID)
			}
			t.SubPorts = keep
		}
		t.RevisionNumber++
		t.UpdatedAt = s.now()
		txn.Update(trunkKey(t.ID), t, o.ModRevision)
		p := po.Value
		p.TrunkDetails = details(t, s.macs(ctx, t))
		p.RevisionNumber++
		p.UpdatedAt = t.UpdatedAt
		txn.Update(portKey(p.ID), p, po.ModRevision)
		if _, err := txn.Commit(ctx); err != nil {
			return s.inUse(ctx, err)
		}
		out = t
		return nil
	})
	if err != nil {
		return err
	}
	// Neutron answers add_subports and remove_subports with the trunk itself, not wrapped
	writeJSON(w, http.StatusOK, s.normTrunk(ctx, out, nil))
	return nil
}

func (s *Service) addSubports(w http.ResponseWriter, r *http.Request) error {
	return s.changeSubports(w, r, true)
}

func (s *Service) removeSubports(w http.ResponseWriter, r *http.Request) error {
	return s.changeSubports(w, r, false)
}

func (s *Service) getSubports(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleTrunk(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	t := s.normTrunk(r.Context(), o.Value, nil)
	writeJSON(w, http.StatusOK, map[string]any{"sub_ports": t.SubPorts})
	return nil
}

// trunkOf names the trunk a port belongs to (as parent or subport), "" when none.
func (s *Service) trunkOf(ctx context.Context, port string) (string, error) {
	o, err := store.Get[string](ctx, s.st, trunkPortKey(port))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return o.Value, err
}

// decodeTop reads a body whose attributes are at the top level ({"sub_ports": [...]}).
func decodeTop(r io.Reader) (*attrs, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	a := &attrs{resource: "body", seen: map[string]bool{}}
	if err := json.Unmarshal(b, &a.m); err != nil || a.m == nil {
		return nil, badRequest("Malformed request body: want {\"sub_ports\": [...]}, got %s.", clip(string(b)))
	}
	if !a.has("sub_ports") {
		return nil, badRequest("The body needs \"sub_ports\": a list of subports.")
	}
	return a, nil
}

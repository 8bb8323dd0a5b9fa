package neutron

// Neutron's binding-extended: a port bound to several hosts at once, one binding ACTIVE (the
// port's binding:* attributes, served by that host's agent) and the others INACTIVE (stored on
// the port; nothing is programmed for them). Nova's live migration binds the port on the
// destination (POST .../bindings), activates it when the guest has moved (PUT
// .../bindings/<dest>/activate: in one write the destination's binding becomes the port's and
// the source's becomes inactive, so the destination's agent programs its VF and the source's
// agent gives its VF back) and deletes the source's (DELETE .../bindings/<source>). Behaviour,
// bodies and errors follow Neutron 21's ML2 plugin (create_port_binding, activate,
// delete_port_binding).

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
)

// computePort is Neutron's _validate_compute_port.
func computePort(p *api.Port) error {
	if !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return badRequest("Invalid port %s. Operation only valid on compute ports (device_owner compute:*; this port's is %q).", p.ID, p.DeviceOwner)
	}
	return nil
}

// bindingsAdmin: bindings are the compute service's (Neutron's policy: admin only).
func bindingsAdmin(c *auth.Context, method, id string) error {
	if c.IsAdmin() {
		return nil
	}
	return errf(http.StatusForbidden, "PolicyNotAuthorized", "%s of the bindings of port %s is disallowed by policy: port bindings are the compute service's (admin role).", method, id)
}

// activeBinding is the port's own binding as binding-extended shows it; ok is false when the
// port is not bound.
func activeBinding(p *api.Port) (api.PortBinding, bool) {
	if p.HostID == "" {
		return api.PortBinding{}, false
	}
	return api.PortBinding{Host: p.HostID, VNICType: p.VNICType, Profile: p.Profile, VIFType: p.VIFType,
		VIFDetails: p.VIFDetails, Status: api.BindingActive}, true
}

// allBindings lists the active binding first, then the inactive ones.
func allBindings(p *api.Port) []api.PortBinding {
	var out []api.PortBinding
	if b, ok := activeBinding(p); ok {
		out = append(out, b)
	}
	return append(out, p.Inactive...)
}

func normBinding(b api.PortBinding) api.PortBinding {
	if b.Profile == nil {
		b.Profile = map[string]any{}
	}
	if b.VIFDetails == nil {
		b.VIFDetails = map[string]any{}
	}
	return b
}

// bindingOn derives b's VIF type and details on network n, as bind does for the active binding;
// a binding vflink cannot serve is Neutron's PortBindingError.
func bindingOn(p *api.Port, n *api.Network, b *api.PortBinding) error {
	q := *p
	q.HostID, q.VNICType = b.Host, b.VNICType
	bind(&q, n)
	b.VIFType, b.VIFDetails = q.VIFType, q.VIFDetails
	if b.VIFType == api.VIFBindingFailed {
		return errf(http.StatusInternalServerError, "PortBindingError", "Binding for port %s on host %s could not be created or updated: %s", p.ID, b.Host, whyFailed(b.VNICType, n))
	}
	return nil
}

// inactiveOn is the index of host's inactive binding, -1 if it has none.
func inactiveOn(p *api.Port, host string) int {
	return slices.IndexFunc(p.Inactive, func(b api.PortBinding) bool { return b.Host == host })
}

func bindingNotFound(id, host string) error {
	return errf(http.StatusNotFound, "PortBindingNotFound", "Binding for port %s for host %s could not be found.", id, host)
}

// whyFailed says why vflink cannot bind vnic on n.
func whyFailed(vnic string, n *api.Network) string {
	if !vfVNIC(vnic) && vnic != api.VNICBaremetal {
		return "vflink binds only VNIC types direct, macvtap, direct-physical and baremetal; this binding asks for " + vnic + "."
	}
	return "network " + n.ID + " has no physical network; a VF binding needs a provider VLAN or flat network."
}

func (s *Service) bindingsPort(ctx context.Context, r *http.Request) (api.Port, error) {
	c, id := caller(r), r.PathValue("id")
	o, err := s.visiblePort(ctx, c, id)
	if err != nil {
		return api.Port{}, err
	}
	if err := bindingsAdmin(c, r.Method, id); err != nil {
		return api.Port{}, err
	}
	return o.Value, computePort(&o.Value)
}

func (s *Service) listBindings(w http.ResponseWriter, r *http.Request) error {
	p, err := s.bindingsPort(r.Context(), r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"host", "vif_type", "vnic_type", "status", "fields"}, k) {
			return badRequest("%s is an invalid filter for bindings; allowed: host, vif_type, vnic_type, status.", clip(k))
		}
	}
	out := []api.PortBinding{}
	for _, b := range allBindings(&p) {
		if match(q, "host", b.Host) && match(q, "vif_type", b.VIFType) && match(q, "vnic_type", b.VNICType) && match(q, "status", b.Status) {
			out = append(out, normBinding(b))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bindings": out})
	return nil
}

// match: a filter given several times matches any of its values.
func match(q map[string][]string, k, v string) bool {
	vs, ok := q[k]
	return !ok || slices.Contains(vs, v)
}

func (s *Service) showBinding(w http.ResponseWriter, r *http.Request) error {
	p, err := s.bindingsPort(r.Context(), r)
	if err != nil {
		return err
	}
	host := r.PathValue("host")
	for _, b := range allBindings(&p) {
		if b.Host == host {
			writeJSON(w, http.StatusOK, map[string]any{"binding": normBinding(b)})
			return nil
		}
	}
	return bindingNotFound(p.ID, host)
}

// bindingRequest is a POST or PUT body's binding.
type bindingRequest struct {
	host      string
	vnic      string
	vnicOK    bool
	profile   map[string]any
	profileOK bool
}

func decodeBinding(r *http.Request, create bool) (bindingRequest, error) {
	var br bindingRequest
	a, err := decodeBody(r.Body, "binding")
	if err != nil {
		return br, err
	}
	if err := a.readOnly(r.Method, "vif_type", "vif_details", "status"); err != nil {
		return br, err
	}
	host, ok, err := a.str("host", maxStr)
	if err != nil {
		return br, err
	}
	switch {
	case create && (!ok || host == ""):
		return br, badRequest("Failed to parse request. Required attribute 'host' not specified")
	case !create && ok:
		return br, badRequest("Attribute 'host' not allowed in PUT: the host is the binding's name in the URL.")
	}
	br.host = host
	if br.vnic, br.vnicOK, err = a.str("vnic_type", maxStr); err != nil {
		return br, err
	}
	if br.vnicOK && !slices.Contains(api.VNICTypes, br.vnic) {
		return br, invalidInput("Invalid input for vnic_type. Reason: '%s' is not in %v.", clip(br.vnic), api.VNICTypes)
	}
	if br.profile, br.profileOK, err = a.object("profile"); err != nil {
		return br, err
	}
	a.has("project_id")
	a.has("tenant_id")
	return br, a.rest()
}

func (s *Service) createBinding(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.bindingsPort(r.Context(), r); err != nil {
		return err
	}
	br, err := decodeBinding(r, true)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !br.vnicOK {
		br.vnic = api.VNICNormal
	}
	if !br.profileOK {
		br.profile = map[string]any{}
	}
	var out api.PortBinding
	req := portRequest{edit: func(p *api.Port, n *api.Network) error {
		if err := computePort(p); err != nil {
			return err
		}
		for _, b := range allBindings(p) {
			if b.Host == br.host {
				return errf(http.StatusConflict, "PortBindingAlreadyExists", "Binding for port %s on host %s already exists.", id, br.host)
			}
		}
		b := api.PortBinding{Host: br.host, VNICType: br.vnic, Profile: br.profile, Status: api.BindingInactive}
		if err := bindingOn(p, n, &b); err != nil {
			return err
		}
		if p.HostID == "" { // no active binding: this one is
			p.HostID, p.VNICType, p.Profile = b.Host, b.VNICType, b.Profile
			p.PCIRequest, _ = b.Profile["pci_slot"].(string)
			b.Status = api.BindingActive
		} else {
			p.Inactive = append(p.Inactive, b)
		}
		out = b
		return nil
	}}
	if _, err := s.changePort(r.Context(), caller(r), id, req, func(*api.Port) error { return nil }); err != nil {
		return err
	}
	s.log.Info("port binding created", "port", id, "host", br.host, "status", out.Status)
	writeJSON(w, http.StatusCreated, map[string]any{"binding": normBinding(out)})
	return nil
}

func (s *Service) updateBinding(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.bindingsPort(r.Context(), r); err != nil {
		return err
	}
	br, err := decodeBinding(r, false)
	if err != nil {
		return err
	}
	id, host := r.PathValue("id"), r.PathValue("host")
	var out api.PortBinding
	req := portRequest{edit: func(p *api.Port, n *api.Network) error {
		if p.HostID == host { // the active binding: as a port update of binding:*
			b, _ := activeBinding(p)
			if br.vnicOK && br.vnic != p.VNICType {
				return errf(http.StatusConflict, "PortBound", "Unable to change the VNIC type of port %s's active binding on host %s (%s to %s); bind it on another host or unbind it first.", id, host, p.VNICType, br.vnic)
			}
			if br.profileOK {
				b.Profile = br.profile
			}
			if err := bindingOn(p, n, &b); err != nil {
				return err
			}
			p.Profile = b.Profile
			p.PCIRequest, _ = b.Profile["pci_slot"].(string)
			out = b
			return nil
		}
		i := inactiveOn(p, host)
		if i < 0 {
			return bindingNotFound(id, host)
		}
		b := p.Inactive[i]
		if br.vnicOK {
			b.VNICType = br.vnic
		}
		if br.profileOK {
			b.Profile = br.profile
		}
		if err := bindingOn(p, n, &b); err != nil {
			return err
		}
		p.Inactive[i], out = b, b
		return nil
	}}
	if _, err := s.changePort(r.Context(), caller(r), id, req, func(*api.Port) error { return nil }); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"binding": normBinding(out)})
	return nil
}

// activateBinding makes host's inactive binding the port's, and the port's binding (if any)
// inactive, in one write: the port goes DOWN until the new host's agent has programmed the VF.
// Neutron answers the binding itself, not wrapped in {"binding": ...} (a member action).
func (s *Service) activateBinding(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.bindingsPort(r.Context(), r); err != nil {
		return err
	}
	id, host := r.PathValue("id"), r.PathValue("host")
	var out api.PortBinding
	req := portRequest{edit: func(p *api.Port, n *api.Network) error {
		if p.HostID == host {
			return errf(http.StatusConflict, "PortBindingAlreadyActive", "Binding for port %s on host %s is already active.", id, host)
		}
		i := inactiveOn(p, host)
		if i < 0 {
			return bindingNotFound(id, host)
		}
		b := p.Inactive[i]
		p.Inactive = slices.Delete(p.Inactive, i, i+1)
		if old, ok := activeBinding(p); ok {
			old.Status = api.BindingInactive
			p.Inactive = append(p.Inactive, old)
		}
		p.HostID, p.VNICType, p.Profile = b.Host, b.VNICType, b.Profile
		p.PCIRequest, _ = b.Profile["pci_slot"].(string)
		b.Status = api.BindingActive
		out = b
		return nil
	}}
	np, err := s.changePort(r.Context(), caller(r), id, req, func(*api.Port) error { return nil })
	if err != nil {
		return err
	}
	out.VIFType, out.VIFDetails = np.VIFType, np.VIFDetails
	s.log.Info("port binding activated", "port", id, "host", host)
	writeJSON(w, http.StatusOK, normBinding(out))
	return nil
}

// deleteBinding removes host's binding. An inactive one just goes; the active one unbinds the port
// (its VF is given back). Like Neutron, a host without a binding is not an error.
func (s *Service) deleteBinding(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.bindingsPort(r.Context(), r); err != nil {
		return err
	}
	id, host := r.PathValue("id"), r.PathValue("host")
	req := portRequest{edit: func(p *api.Port, n *api.Network) error {
		if p.HostID == host {
			p.HostID, p.Profile, p.PCIRequest = "", map[string]any{}, ""
			return nil
		}
		i := inactiveOn(p, host)
		if i < 0 {
			return errSkip
		}
		p.Inactive = slices.Delete(p.Inactive, i, i+1)
		return nil
	}}
	_, err := s.changePort(r.Context(), caller(r), id, req, func(*api.Port) error { return nil })
	if err != nil && !errors.Is(err, errSkip) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

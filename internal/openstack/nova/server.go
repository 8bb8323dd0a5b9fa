package nova

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/openstack/glance"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/store"
)

// Server statuses.
const (
	StatusBuild  = "BUILD"
	StatusActive = "ACTIVE"
	StatusError  = "ERROR"
)

// DeviceOwner is the device_owner of the ports a server is bound to.
const DeviceOwner = "compute:nova"

// Server is a server as vflink stores it. Status is BUILD or ERROR; ACTIVE is derived at read time
// from the ports (see doc.go).
type Server struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	ProjectID string   `json:"project_id"`
	UserID    string   `json:"user_id"`
	ImageID   string   `json:"image_id"`
	FlavorID  string   `json:"flavor_id"`
	Ports     []string `json:"ports"`
	Host      string   `json:"host"`
	Status    string   `json:"status"`
	Fault     *Fault   `json:"fault,omitempty"`
	CreatedAt string   `json:"created"`
	UpdatedAt string   `json:"updated"`
}

// Fault says why a server is in ERROR.
type Fault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Created string `json:"created"`
}

func serverKey(id string) string { return "servers/" + id }

// portsOnly is the answer to any networks request other than a list of existing ports.
const portsOnly = `vflink servers take existing ports: networks: [{"port": ID}]`

// elevated is the context the compute service acts with towards the network service (reading a
// port's network, binding), as Nova uses its service credentials for port bindings.
func elevated(c *auth.Context) *auth.Context {
	return &auth.Context{UserID: "nova", ProjectID: c.ProjectID, Roles: []string{"admin", "service"}}
}

// serverRequest is a decoded POST /servers body.
type serverRequest struct {
	name, imageRef, flavorRef string
	ports                     []string
	host                      string // forced by availability_zone "nova:HOST" (admin only)
}

func decodeServer(f fields) (serverRequest, error) {
	var req serverRequest
	name, ok, err := f.str("name")
	if err != nil {
		return req, err
	}
	if !ok || strings.TrimSpace(name) == "" || len(name) > 255 {
		return req, badRequest("Invalid input for field/attribute name. Value: %q. A server name of 1 to 255 characters is required.", name)
	}
	req.name = name
	if req.imageRef, ok, err = f.str("imageRef"); err != nil {
		return req, err
	} else if !ok || req.imageRef == "" {
		return req, badRequest("Invalid input for field/attribute imageRef: vflink boots servers from an image; imageRef is required.")
	}
	if req.flavorRef, ok, err = f.strOrInt("flavorRef"); err != nil {
		return req, err
	} else if !ok || req.flavorRef == "" {
		return req, badRequest("Invalid input for field/attribute flavorRef: flavorRef is required.")
	}
	for _, k := range []string{"min_count", "max_count"} {
		n, err := f.integer(k, 1, 1)
		if err != nil {
			return req, err
		}
		if n != 1 {
			return req, badRequest("Invalid input for field/attribute %s. Value: %d. vflink creates one server per request; %s must be 1.", k, n, k)
		}
	}
	if az, ok, err := f.str("availability_zone"); err != nil {
		return req, err
	} else if ok && az != "" {
		zone, host, _ := strings.Cut(az, ":")
		host, _, _ = strings.Cut(host, ":") // "zone:host:node"
		if zone != "nova" && zone != "" {
			return req, badRequest("Invalid input for field/attribute availability_zone. Value: %q. vflink has one availability zone, nova; force a host with nova:HOST.", az)
		}
		req.host = host
	}
	if f.null("networks") {
		return req, badRequest("%s", portsOnly)
	}
	var nets []map[string]json.RawMessage
	if err := json.Unmarshal(f["networks"], &nets); err != nil || len(nets) == 0 {
		return req, badRequest("%s", portsOnly)
	}
	for _, n := range nets {
		var id string
		if len(n) != 1 || json.Unmarshal(n["port"], &id) != nil || id == "" {
			return req, badRequest("%s", portsOnly)
		}
		if slices.Contains(req.ports, id) {
			return req, badRequest("Port %s is given more than once in networks.", id)
		}
		req.ports = append(req.ports, id)
	}
	return req, nil
}

func neutronStatus(err error) int {
	var ne *neutron.Error
	if errors.As(err, &ne) {
		return ne.Status
	}
	return 0
}

func (s *Service) createServer(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	f, err := decodeBody(r.Body, "server")
	if err != nil {
		return err
	}
	req, err := decodeServer(f)
	if err != nil {
		return err
	}
	ctx := r.Context()
	img, err := s.img.Image(ctx, c, req.imageRef)
	if errors.Is(err, glance.ErrNotFound) {
		return badRequest("Image %s could not be found.", req.imageRef)
	}
	if err != nil {
		return err
	}
	if img.Status != glance.StatusActive {
		return badRequest("Image %s is not active.", req.imageRef)
	}
	if _, err := s.flavor(ctx, c, req.flavorRef); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return badRequest("Flavor %s could not be found.", req.flavorRef)
		}
		return err
	}
	if req.host != "" && !c.IsAdmin() {
		return errf(http.StatusForbidden, "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed: forcing host %s needs the admin role.", req.host)
	}
	svc := elevated(c)
	need := map[string]int{}
	for _, id := range req.ports {
		p, err := s.net.Port(ctx, c, id)
		if neutronStatus(err) == http.StatusNotFound || (err == nil && !c.IsAdmin() && p.ProjectID != c.ProjectID) {
			return badRequest("Port id %s not found.", id)
		}
		if err != nil {
			return err
		}
		if p.DeviceID != "" {
			return errf(http.StatusConflict, "Port %s is still in use.", id)
		}
		if !needsVF(p.VNICType) {
			continue
		}
		n, err := s.net.Network(ctx, svc, p.NetworkID)
		if err != nil {
			return fmt.Errorf("network %s of port %s: %w", p.NetworkID, id, err)
		}
		if n.PhysicalNetwork != nil && *n.PhysicalNetwork != "" {
			need[*n.PhysicalNetwork]++
		}
	}

	now := s.now()
	srv := Server{
		ID: uuid.NewString(), Name: req.name, ProjectID: c.ProjectID, UserID: c.UserID,
		ImageID: img.ID, FlavorID: req.flavorRef, Ports: req.ports, Status: StatusBuild,
		CreatedAt: now, UpdatedAt: now,
	}
	if _, err := store.Create(ctx, s.st, serverKey(srv.ID), srv); err != nil {
		return err
	}
	// From here on the server exists: finish placing it even if the client goes away.
	s.place(context.WithoutCancel(ctx), svc, srv, need, req.host)

	w.Header().Set("Location", s.links(r, "servers", srv.ID)[0].Href)
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": srv.ID, "links": s.links(r, "servers", srv.ID), "adminPass": password(12),
		"OS-DCF:diskConfig": "MANUAL", "security_groups": []map[string]string{{"name": "default"}},
	}})
	return nil
}

// place schedules a stored BUILD server and binds its ports to the chosen host, or puts it in ERROR
// with a fault and its ports unbound.
func (s *Service) place(ctx context.Context, svc *auth.Context, srv Server, need map[string]int, forced string) {
	log := s.log.With("server", srv.ID)
	fail := func(code int, msg string) {
		log.Info("server failed", "err", msg)
		_, err := s.updateServer(ctx, srv.ID, func(v *Server) {
			v.Status, v.Host = StatusError, ""
			v.Fault = &Fault{Code: code, Message: msg, Created: s.now()}
		})
		if err != nil && !errors.Is(err, errGone) {
			log.Error("record server fault", "err", err)
		}
	}
	var only []string
	if forced != "" {
		only = []string{forced}
	}
	host, err := s.sched.Pick(ctx, need, only...)
	if errors.Is(err, ErrNoValidHost) {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	if err != nil {
		fail(http.StatusInternalServerError, "Scheduling failed: "+err.Error())
		return
	}
	log = log.With("host", host)
	var bound []string
	unbind := func() {
		for _, p := range bound {
			if err := s.net.Unbind(ctx, svc, p, srv.ID); err != nil && neutronStatus(err) != http.StatusNotFound {
				log.Error("unbind port", "port", p, "err", err)
			}
		}
	}
	for _, p := range srv.Ports {
		_, err := s.net.Bind(ctx, svc, p, neutron.Binding{Host: host, DeviceID: srv.ID, DeviceOwner: DeviceOwner})
		if err != nil {
			unbind()
			fail(http.StatusInternalServerError, fmt.Sprintf("Binding port %s to host %s failed: %s", p, host, errMessage(err)))
			return
		}
		bound = append(bound, p)
	}
	_, err = s.updateServer(ctx, srv.ID, func(v *Server) { v.Host = host })
	if errors.Is(err, errGone) { // deleted while we were binding: release what we took
		unbind()
		return
	}
	if err != nil {
		log.Error("record server host", "err", err)
		unbind()
		fail(http.StatusInternalServerError, "Recording the host failed: "+err.Error())
		return
	}
	log.Info("server scheduled")
}

func errMessage(err error) string {
	var ne *neutron.Error
	if errors.As(err, &ne) {
		return ne.Message
	}
	return err.Error()
}

var errGone = errors.New("server is gone")

// updateServer applies change to the stored server under compare-and-swap, retrying lost races.
func (s *Service) updateServer(ctx context.Context, id string, change func(*Server)) (Server, error) {
	var out Server
	err := retry(ctx, func() error {
		o, err := store.Get[Server](ctx, s.st, serverKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return errGone
		}
		if err != nil {
			return err
		}
		v := o.Value
		v.Ports = slices.Clone(o.Value.Ports)
		change(&v)
		v.UpdatedAt = s.now()
		if _, err := store.Update(ctx, s.st, serverKey(id), v, o.ModRevision); err != nil {
			return err
		}
		out = v
		return nil
	})
	return out, err
}

const passwordChars = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// password returns a random password as Nova generates adminPass (never stored).
func password(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(passwordChars))))
		b[i] = passwordChars[k.Int64()]
	}
	return string(b)
}

// visibleServer returns a server the caller may see: its project's, or any for an admin.
func (s *Service) visibleServer(ctx context.Context, c *auth.Context, id string) (store.Object[Server], error) {
	notFound := errf(http.StatusNotFound, "Instance %s could not be found.", id)
	if id == "" || strings.Contains(id, "/") {
		return store.Object[Server]{}, notFound
	}
	o, err := store.Get[Server](ctx, s.st, serverKey(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.IsAdmin() && o.Value.ProjectID != c.ProjectID) {
		return store.Object[Server]{}, notFound
	}
	return o, err
}

// observed is a server with what its ports say now.
type observed struct {
	Server
	status    string
	addresses map[string][]map[string]any
}

// observe reads the server's ports and networks and derives its status: a BUILD server with a host
// whose every port is bound to it and ACTIVE is ACTIVE.
func (s *Service) observe(ctx context.Context, c *auth.Context, srv Server) (observed, error) {
	o := observed{Server: srv, status: srv.Status, addresses: map[string][]map[string]any{}}
	svc := elevated(c)
	netNames := map[string]string{}
	active := srv.Host != ""
	for _, id := range srv.Ports {
		p, err := s.net.Port(ctx, svc, id)
		if neutronStatus(err) == http.StatusNotFound {
			active = false
			continue
		}
		if err != nil {
			return o, err
		}
		if p.DeviceID != srv.ID || p.Status != api.StatusActive {
			active = false
		}
		if srv.Status == StatusError || p.DeviceID != srv.ID {
			continue // addresses are those of ports the server holds
		}
		name, ok := netNames[p.NetworkID]
		if !ok {
			n, err := s.net.Network(ctx, svc, p.NetworkID)
			switch {
			case err == nil:
				name = n.Name
			case neutronStatus(err) == http.StatusNotFound:
			default:
				return o, err
			}
			if name == "" {
				name = p.NetworkID
			}
			netNames[p.NetworkID] = name
		}
		addrs := o.addresses[name]
		if addrs == nil {
			addrs = []map[string]any{}
		}
		for _, ip := range p.FixedIPs {
			version := 4
			if a, err := netip.ParseAddr(ip.IPAddress); err == nil && a.Is6() && !a.Is4In6() {
				version = 6
			}
			addrs = append(addrs, map[string]any{
				"version": version, "addr": ip.IPAddress, "OS-EXT-IPS:type": "fixed",
				"OS-EXT-IPS-MAC:mac_addr": p.MACAddress,
			})
		}
		o.addresses[name] = addrs
	}
	if srv.Status == StatusBuild && active {
		o.status = StatusActive
	}
	return o, nil
}

func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	h := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(h[:])
}

func (s *Service) serverBody(r *http.Request, c *auth.Context, o observed) map[string]any {
	vmState, power := "building", 0
	switch o.status {
	case StatusActive:
		vmState, power = "active", 1
	case StatusError:
		vmState = "error"
	}
	b := map[string]any{
		"id": o.ID, "name": o.Name, "status": o.status, "tenant_id": o.ProjectID, "user_id": o.UserID,
		"metadata": map[string]string{}, "hostId": hostID(o.ProjectID, o.Host),
		"image":   map[string]any{"id": o.ImageID, "links": s.bookmark(r, "images", o.ImageID)},
		"flavor":  map[string]any{"id": o.FlavorID, "links": s.bookmark(r, "flavors", o.FlavorID)},
		"created": o.CreatedAt, "updated": o.UpdatedAt, "addresses": o.addresses,
		"accessIPv4": "", "accessIPv6": "", "links": s.links(r, "servers", o.ID),
		"OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova",
		"config_drive": "", "key_name": nil, "OS-EXT-STS:task_state": nil,
		"OS-EXT-STS:vm_state": vmState, "OS-EXT-STS:power_state": power,
		"OS-SRV-USG:launched_at": nil, "OS-SRV-USG:terminated_at": nil,
		"os-extended-volumes:volumes_attached": []any{},
		"security_groups":                      []map[string]string{{"name": "default"}},
	}
	if c.IsAdmin() {
		var host any
		if o.Host != "" {
			host = o.Host
		}
		b["OS-EXT-SRV-ATTR:host"] = host
		b["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host
		b["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + strings.ReplaceAll(o.ID, "-", "")[:8]
	}
	if o.status == StatusError && o.Fault != nil {
		b["fault"] = map[string]any{"code": o.Fault.Code, "message": o.Fault.Message, "created": o.Fault.Created}
	}
	return b
}

func (s *Service) showServer(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	o, err := s.visibleServer(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	ob, err := s.observe(r.Context(), c, o.Value)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": s.serverBody(r, c, ob)})
	return nil
}

func (s *Service) listServers(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	return s.writeServers(w, r, c, false)
}

func (s *Service) listServersDetail(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	return s.writeServers(w, r, c, true)
}

// writeServers lists servers as Nova does: the caller's project (an admin may ask for all_tenants
// or one project_id/tenant_id), newest first, filtered by name (a regular expression), status and,
// for an admin, host; marker and limit page. Other query parameters are ignored.
func (s *Service) writeServers(w http.ResponseWriter, r *http.Request, c *auth.Context, detail bool) error {
	q := r.URL.Query()
	project := c.ProjectID
	if c.IsAdmin() {
		if q.Has("all_tenants") {
			v := q.Get("all_tenants")
			all, ok := parseBool(v)
			if v == "" {
				all, ok = true, true
			}
			if !ok {
				return badRequest("Invalid all_tenants value %q: want true or false.", v)
			}
			if all {
				project = ""
			}
		}
		for _, k := range []string{"project_id", "tenant_id"} {
			if v := q.Get(k); v != "" {
				project = v
			}
		}
	}
	var nameRE *regexp.Regexp
	if v := q.Get("name"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return badRequest("Invalid regular expression %q for the name filter: %v", v, err)
		}
		nameRE = re
	}
	status := strings.ToUpper(q.Get("status"))
	host := ""
	if c.IsAdmin() {
		host = q.Get("host")
	}
	objs, _, err := store.List[Server](r.Context(), s.st, "servers/")
	if err != nil {
		return err
	}
	var out []observed
	for _, o := range objs {
		srv := o.Value
		if (project != "" && srv.ProjectID != project) || (nameRE != nil && !nameRE.MatchString(srv.Name)) ||
			(host != "" && srv.Host != host) {
			continue
		}
		if !detail && status == "" {
			out = append(out, observed{Server: srv})
			continue
		}
		ob, err := s.observe(r.Context(), c, srv)
		if err != nil {
			return err
		}
		if status != "" && ob.status != status {
			continue
		}
		out = append(out, ob)
	}
	slices.SortFunc(out, func(a, b observed) int {
		if a.CreatedAt != b.CreatedAt {
			return strings.Compare(b.CreatedAt, a.CreatedAt)
		}
		return strings.Compare(b.ID, a.ID)
	})
	out, err = page(q, out, func(o observed) string { return o.ID })
	if err != nil {
		return err
	}
	items := make([]map[string]any, len(out))
	for i, o := range out {
		if detail {
			items[i] = s.serverBody(r, c, o)
		} else {
			items[i] = map[string]any{"id": o.ID, "name": o.Name, "links": s.links(r, "servers", o.ID)}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": items})
	return nil
}

func (s *Service) deleteServer(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	id := r.PathValue("id")
	ctx := r.Context()
	svc := elevated(c)
	err := retry(ctx, func() error {
		o, err := s.visibleServer(ctx, c, id)
		if err != nil {
			return err
		}
		for _, p := range o.Value.Ports {
			if err := s.net.Unbind(ctx, svc, p, id); err != nil && neutronStatus(err) != http.StatusNotFound {
				return fmt.Errorf("unbind port %s: %w", p, err)
			}
		}
		// a create still placing the server changes it (its host) and so makes this compare fail:
		// the next attempt unbinds again
		_, err = s.st.Delete(ctx, serverKey(id), o.ModRevision)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// HostServers lists the servers placed on host that are not in ERROR, with the flavor and image
// facts its hypervisor needs.
func (s *Service) HostServers(ctx context.Context, host string) ([]api.HostServer, error) {
	all, _, err := store.List[Server](ctx, s.st, "servers/")
	if err != nil {
		return nil, err
	}
	out := []api.HostServer{}
	for _, o := range all {
		srv := o.Value
		if srv.Host != host || srv.Status == StatusError {
			continue
		}
		hs := api.HostServer{ID: srv.ID, Name: srv.Name, PortIDs: append([]string{}, srv.Ports...)}
		if f, err := store.Get[Flavor](ctx, s.st, flavorKey(srv.FlavorID)); err == nil {
			hs.VCPUs, hs.MemoryMiB = f.Value.VCPUs, f.Value.RAM
		}
		if img, err := s.img.Image(ctx, &auth.Context{Roles: []string{"admin"}}, srv.ImageID); err == nil {
			hs.ImageLocation = img.Properties["location"]
		}
		out = append(out, hs)
	}
	return out, nil
}

// Package hosts is vflink's API for host agents (/v1): an agent registers its host and SR-IOV
// inventory (kept alive by an etcd lease that each heartbeat renews), reads the whole desired
// state of its host once (HostWork: the VF ports bound to it, its VF allocations, its servers, and
// a cursor), then long-polls only what changed after its cursor (HostWorkChanges, served from an
// in-memory view of the store's watches: see view.go), claims VFs with create-only transactions so
// a VF is never given to two ports nor a port two VFs, and reports port status; a batch
// (POST .../batch) carries many releases, claims, serves (a claim committed with its port's
// report, in one transaction) and reports in one round trip. Agents never hold
// store credentials: they talk to this API with a token, as kubelets do.
//
// Keys below the store prefix:
//
//	hosts/<name>              api.Host (leased: gone when the agent stops heartbeating; while it
//	                          lives, a registration with another agent_id is refused)
//	vfs/<host>/<pci address>  api.VFAllocation
//	vf-ports/<port>           "<host>/<pci address>": a port holds at most one VF
package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/openstack/neutron"
	"github.com/vflink/vflink/internal/openstack/nova"
	"github.com/vflink/vflink/internal/store"
	"github.com/vflink/vflink/internal/vflinkapi"
)

// TTL is how long a host stays registered after its last heartbeat.
const TTL = 15 * time.Second

// Service serves the agent API.
type Service struct {
	st  *store.Store
	net *neutron.Service
	cmp *nova.Service
	log *slog.Logger

	mu     sync.Mutex
	leases map[string]store.LeaseID
	// recorded: hosts whose agents/<host> record this server has written or seen since the
	// host's registration began (a heartbeat then reads nothing more)
	recorded map[string]bool

	viewMu sync.Mutex
	view   *view // the change view, started by the first request that needs it
}

// New returns the agent API over the store and the faces whose state it exposes.
func New(st *store.Store, net *neutron.Service, cmp *nova.Service, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{st: st, net: net, cmp: cmp, log: log.With("component", "hosts"), leases: map[string]store.LeaseID{}, recorded: map[string]bool{}}
}

func hostKey(name string) string       { return "hosts/" + name }
func agentKey(name string) string      { return "agents/" + name }
func allocKey(host, pci string) string { return "vfs/" + host + "/" + pci }
func portVFKey(port string) string     { return "vf-ports/" + port }

var (
	hostName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	pciAddr  = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
)

// Register mounts the agent API under prefix (e.g. "/v1"). Agents authenticate as a service
// user with the admin role.
func (s *Service) Register(mux *http.ServeMux, prefix string) {
	h := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		vflinkapi.HandleAdmin(mux, s.log, prefix, pattern, func(w http.ResponseWriter, r *http.Request) error {
			if name := r.PathValue("host"); name != "" && !hostName.MatchString(name) {
				return vflinkapi.Errorf(http.StatusBadRequest, "host name %q is not valid: want letters, digits, '.', '_', '-' (at most 63)", name)
			}
			return f(w, r)
		})
	}
	h("GET /hosts", s.listHosts)
	h("GET /hosts/{host}", s.showHost)
	h("PUT /hosts/{host}", s.putHost)
	h("GET /hosts/{host}/work", s.work)
	h("GET /hosts/{host}/changes", s.changes)
	h("POST /hosts/{host}/batch", s.batch)
	h("PUT /hosts/{host}/vfs/{pci}", s.claimVF)
	h("DELETE /hosts/{host}/vfs/{pci}", s.releaseVF)
	h("PUT /hosts/{host}/ports/{id}/status", s.reportStatus)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return vflinkapi.Errorf(http.StatusBadRequest, "malformed request body: %v", err)
	}
	return nil
}

func (s *Service) listHosts(w http.ResponseWriter, r *http.Request) error {
	objs, _, err := store.List[api.Host](r.Context(), s.st, "hosts/")
	if err != nil {
		return err
	}
	out := make([]api.Host, len(objs))
	for i, o := range objs {
		out[i] = o.Value
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"hosts": out})
	return nil
}

func (s *Service) showHost(w http.ResponseWriter, r *http.Request) error {
	o, err := store.Get[api.Host](r.Context(), s.st, hostKey(r.PathValue("host")))
	if errors.Is(err, store.ErrNotFound) {
		return vflinkapi.Errorf(http.StatusNotFound, "host %s is not registered (its agent is not running or its lease expired)", r.PathValue("host"))
	} else if err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"host": o.Value})
	return nil
}

// putHost registers or refreshes a host; the record lives as long as heartbeats keep its lease.
func (s *Service) putHost(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("host")
	var body struct {
		Host api.Host `json:"host"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	h := body.Host
	if h.Name != "" && h.Name != name {
		return vflinkapi.Errorf(http.StatusBadRequest, "host.name %q differs from the URL's host %q", h.Name, name)
	}
	h.Name = name
	for i, pf := range h.PFs {
		if pf.Name == "" || pf.PhysicalNetwork == "" || pf.NumVFs < 0 || pf.NumVFs > pf.TotalVFs {
			return vflinkapi.Errorf(http.StatusBadRequest, "host.pfs[%d] (%q): want a name, a physical_network and 0 <= num_vfs <= total_vfs", i, pf.Name)
		}
	}
	if h.AgentID != "" && !api.ValidAgentID(h.AgentID) {
		return vflinkapi.Errorf(http.StatusBadRequest, "host.agent_id %q is not an agent ID (%s)", h.AgentID, api.AgentIDRule)
	}
	h.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
	ctx := r.Context()
	err := store.Retry(ctx, txnAttempts, func(int) error {
		var modRev int64
		cur, err := store.Get[api.Host](ctx, s.st, hostKey(name))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			modRev = cur.ModRevision
			if h.AgentID == "" {
				h.AgentID = cur.Value.AgentID // a registration naming no agent keeps the one there
			}
			if c := cur.Value.AgentID; c != "" && c != h.AgentID {
				return vflinkapi.Errorf(http.StatusConflict, "host %s is registered by another agent (agent_id %s, last heartbeat %s, this one is %s): a host has one agent; stop the other one, or wait until its registration expires, %d s after its last heartbeat",
					name, c, cur.Value.UpdatedAt, h.AgentID, int(TTL/time.Second))
			}
		}
		// only now is the lease renewed: a refused agent must not keep the other one's
		// registration alive
		lease, err := s.lease(ctx, name)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(hostKey(name), modRev) // 0: still absent
		t.PutLeased(hostKey(name), h, lease)
		// the agent's record outlives its registration (Neutron's agent list shows dead agents);
		// a fresh registration writes it, and a heartbeat only checks it once per server (while a
		// registration lives, its agent ID cannot change and the record cannot be deleted)
		s.mu.Lock()
		seen := s.recorded[name]
		s.mu.Unlock()
		if modRev == 0 || !seen {
			rec, err := store.Get[api.AgentRecord](ctx, s.st, agentKey(name))
			switch {
			case errors.Is(err, store.ErrNotFound):
				t.Create(agentKey(name), api.AgentRecord{Host: name, AgentID: h.AgentID, CreatedAt: h.UpdatedAt, StartedAt: h.UpdatedAt, AdminStateUp: true})
			case err != nil:
				return err
			case modRev == 0 || rec.Value.AgentID != h.AgentID:
				rec.Value.StartedAt, rec.Value.AgentID = h.UpdatedAt, h.AgentID
				t.Update(agentKey(name), rec.Value, rec.ModRevision)
			}
		}
		if _, err = t.Commit(ctx); err == nil {
			s.mu.Lock()
			s.recorded[name] = true
			s.mu.Unlock()
		}
		return err
	})
	if err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"host": h, "ttl_seconds": int(TTL / time.Second)})
	return nil
}

// lease renews this server's lease for host, or grants a new one when it has none or it expired.
func (s *Service) lease(ctx context.Context, host string) (store.LeaseID, error) {
	s.mu.Lock()
	id, ok := s.leases[host]
	s.mu.Unlock()
	if ok {
		if err := s.st.KeepAlive(ctx, id); err == nil {
			return id, nil
		}
	}
	id, err := s.st.Grant(ctx, TTL)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.leases[host] = id
	s.mu.Unlock()
	return id, nil
}

// maxWait bounds a long poll.
const maxWait = 30 * time.Second

// work answers the host's desired state with the cursor of the change view taken just before it
// was read; with ?wait=REV it first blocks until something the host cares about changed after REV
// (or maxWait passed).
func (s *Service) work(w http.ResponseWriter, r *http.Request) error {
	host := r.PathValue("host")
	if ws := r.URL.Query().Get("wait"); ws != "" {
		rev, err := strconv.ParseInt(ws, 10, 64)
		if err != nil || rev < 0 {
			return vflinkapi.Errorf(http.StatusBadRequest, "wait %q is not a store revision (a non-negative integer)", ws)
		}
		s.waitChange(r.Context(), host, rev)
	}
	v, err := s.currentView(r.Context())
	if err != nil {
		return err
	}
	cursor := v.now()
	hw, err := s.Work(r.Context(), host)
	if err != nil {
		return err
	}
	hw.Cursor = cursor
	vflinkapi.WriteJSON(w, http.StatusOK, hw)
	return nil
}

// changes answers what changed for the host after ?cursor=, waiting up to ?timeout= seconds
// (at most and by default maxWait) for a change; an empty answer with the same cursor when
// nothing changed, the whole state (Full) when the cursor cannot be served.
func (s *Service) changes(w http.ResponseWriter, r *http.Request) error {
	host := r.PathValue("host")
	wait, err := parseTimeout(r.URL.Query().Get("timeout"))
	if err != nil {
		return err
	}
	v, err := s.currentView(r.Context())
	if err != nil {
		return err
	}
	var out api.HostWorkChanges
	since, ok := v.parseCursor(r.URL.Query().Get("cursor"))
	if ok {
		out, ok, err = v.changes(r.Context(), host, since, wait)
		if errors.Is(err, errViewStopped) {
			// a watch broke (compaction, an outage): a new view, and the whole state
			if v, err = s.currentView(r.Context()); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	if !ok {
		cursor := v.now()
		hw, err := s.Work(r.Context(), host)
		if err != nil {
			return err
		}
		hw.Cursor = cursor
		out = api.HostWorkChanges{Host: host, Cursor: cursor, Full: &hw}
	}
	vflinkapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) waitChange(ctx context.Context, host string, rev int64) {
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	changed := make(chan struct{}, 1)
	// bindings (idx/net-bound), servers and this host's VF claims; not ports/ itself, so the
	// agent's own status reports do not wake it
	for _, prefix := range []string{"idx/net-bound/", "servers/", "vfs/" + host + "/"} {
		go func(prefix string) {
			for e := range s.st.Watch(ctx, prefix, rev+1) {
				_ = e
				select {
				case changed <- struct{}{}:
				default:
				}
				return
			}
		}(prefix)
	}
	select {
	case <-changed:
	case <-ctx.Done():
	}
}

// Work reads the whole desired state of host.
func (s *Service) Work(ctx context.Context, host string) (api.HostWork, error) {
	ports, rev, err := s.net.HostPorts(ctx, host)
	if err != nil {
		return api.HostWork{}, err
	}
	allocs, _, err := store.List[api.VFAllocation](ctx, s.st, "vfs/"+host+"/", store.ListOptions{Rev: rev})
	if err != nil {
		return api.HostWork{}, err
	}
	servers, err := s.cmp.HostServers(ctx, host)
	if err != nil {
		return api.HostWork{}, err
	}
	hw := api.HostWork{Host: host, Revision: rev, Ports: ports, Allocations: make([]api.VFAllocation, len(allocs)), Servers: servers}
	for i, a := range allocs {
		hw.Allocations[i] = a.Value
		hw.Allocations[i].Revision = a.ModRevision
	}
	return hw, nil
}

// claimVF gives a VF to a port; 409 when another port holds it. Claiming again for the same port
// is a no-op, so an agent that restarted mid-way can repeat itself.
func (s *Service) claimVF(w http.ResponseWriter, r *http.Request) error {
	host, pci := r.PathValue("host"), r.PathValue("pci")
	if !pciAddr.MatchString(pci) {
		return vflinkapi.Errorf(http.StatusBadRequest, "PCI address %q is not like 0000:83:10.1", pci)
	}
	var a api.VFAllocation
	if err := decode(r, &a); err != nil {
		return err
	}
	if a.PortID == "" || a.PF == "" || a.VFIndex < 0 {
		return vflinkapi.Errorf(http.StatusBadRequest, "an allocation needs port_id, pf and vf_index >= 0")
	}
	a.Host, a.PCIAddress, a.Revision = host, pci, 0
	t := s.st.Txn()
	t.Create(allocKey(host, pci), a)
	t.Create(portVFKey(a.PortID), host+"/"+pci)
	_, err := t.Commit(r.Context())
	var ce *store.ConflictError
	if errors.As(err, &ce) && ce.Reason == store.Exists {
		cur, gerr := store.Get[api.VFAllocation](r.Context(), s.st, allocKey(host, pci))
		if gerr == nil && cur.Value.PortID == a.PortID {
			vflinkapi.WriteJSON(w, http.StatusOK, cur.Value) // the same claim again: an agent repeating itself
			return nil
		}
		if ce.Key == portVFKey(a.PortID) {
			held, _ := store.Get[string](r.Context(), s.st, portVFKey(a.PortID))
			return vflinkapi.Errorf(http.StatusConflict, "port %s already holds VF %s", a.PortID, held.Value)
		}
		return vflinkapi.Errorf(http.StatusConflict, "VF %s on host %s is already given to port %s", pci, host, cur.Value.PortID)
	}
	if err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Service) releaseVF(w http.ResponseWriter, r *http.Request) error {
	host, pci := r.PathValue("host"), r.PathValue("pci")
	port := r.URL.Query().Get("port_id")
	o, err := store.Get[api.VFAllocation](r.Context(), s.st, allocKey(host, pci))
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	} else if err != nil {
		return err
	}
	if port != "" && o.Value.PortID != port {
		return vflinkapi.Errorf(http.StatusConflict, "VF %s on host %s belongs to port %s, not %s", pci, host, o.Value.PortID, port)
	}
	t := s.st.Txn()
	t.Delete(allocKey(host, pci), o.ModRevision)
	t.Remove(portVFKey(o.Value.PortID))
	if _, err := t.Commit(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) reportStatus(w http.ResponseWriter, r *http.Request) error {
	var st api.PortStatus
	if err := decode(r, &st); err != nil {
		return err
	}
	p, err := s.net.ReportStatus(r.Context(), r.PathValue("id"), r.PathValue("host"), st)
	if err != nil {
		return err
	}
	vflinkapi.WriteJSON(w, http.StatusOK, map[string]any{"port": p})
	return nil
}

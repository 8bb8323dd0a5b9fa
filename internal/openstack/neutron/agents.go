package neutron

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// The agent extension: each host's vflink agent listed as a Neutron agent (Neutron's SR-IOV "NIC
// Switch agent"). An agent is alive while its leased host registration (hosts/<host>) lives; its
// record (agents/<host>, written by internal/hosts at registration) stays when it dies, until an
// admin deletes it. Admin only, as in Neutron: anyone else lists none.

var agentNS = uuid.MustParse("6f1c1f9e-0d5c-4a51-9d1e-7d3f3c1b2a10")

// agentID is the agent's stable ID, derived from its host name.
func agentID(host string) string { return uuid.NewSHA1(agentNS, []byte("vflink-agent/"+host)).String() }

// agentBody is Neutron's agent resource.
type agentBody struct {
	ID                 string         `json:"id"`
	AgentType          string         `json:"agent_type"`
	Binary             string         `json:"binary"`
	Topic              string         `json:"topic"`
	Host               string         `json:"host"`
	AdminStateUp       bool           `json:"admin_state_up"`
	Alive              bool           `json:"alive"`
	AvailabilityZone   *string        `json:"availability_zone"`
	Description        string         `json:"description"`
	CreatedAt          string         `json:"created_at"`
	StartedAt          string         `json:"started_at"`
	HeartbeatTimestamp string         `json:"heartbeat_timestamp"`
	Configurations     map[string]any `json:"configurations"`
	ResourceVersions   map[string]any `json:"resource_versions"`
	ResourcesSynced    *bool          `json:"resources_synced"`
}

// neutronTime is the format of Neutron's agent timestamps ("2026-12-07 16:10:32").
func neutronTime(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func agentOf(rec api.AgentRecord, h *api.Host) agentBody {
	a := agentBody{
		ID: agentID(rec.Host), AgentType: "NIC Switch agent", Binary: "vflink-agent", Topic: "N/A",
		Host: rec.Host, AdminStateUp: rec.AdminStateUp, Description: rec.Description,
		CreatedAt: neutronTime(rec.CreatedAt), StartedAt: neutronTime(rec.StartedAt), HeartbeatTimestamp: neutronTime(rec.StartedAt),
		ResourceVersions: map[string]any{},
	}
	mappings := map[string][]string{}
	vfs := 0
	if h != nil {
		a.Alive = true
		a.HeartbeatTimestamp = neutronTime(h.UpdatedAt)
		for _, pf := range h.PFs {
			mappings[pf.PhysicalNetwork] = append(mappings[pf.PhysicalNetwork], pf.Name)
			vfs += pf.NumVFs
		}
	}
	a.Configurations = map[string]any{"device_mappings": mappings, "vfs": vfs, "extensions": []string{}}
	return a
}

// agents reads every agent record with its live registration, in host order.
func (s *Service) agents(ctx context.Context) ([]store.Object[api.AgentRecord], map[string]*api.Host, error) {
	recs, rev, err := store.List[api.AgentRecord](ctx, s.st, "agents/")
	if err != nil {
		return nil, nil, err
	}
	hosts, _, err := store.List[api.Host](ctx, s.st, "hosts/", store.ListOptions{Rev: rev})
	if err != nil {
		return nil, nil, err
	}
	live := make(map[string]*api.Host, len(hosts))
	for i := range hosts {
		live[hosts[i].Value.Name] = &hosts[i].Value
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Value.Host < recs[j].Value.Host })
	return recs, live, nil
}

func (s *Service) listAgents(w http.ResponseWriter, r *http.Request) error {
	items := []agentBody{}
	if caller(r).IsAdmin() {
		recs, live, err := s.agents(r.Context())
		if err != nil {
			return err
		}
		for _, o := range recs {
			items = append(items, agentOf(o.Value, live[o.Value.Host]))
		}
		sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	}
	return writeList(w, r, "agents", items, agentField)
}

// agent finds the record behind an agent ID; anyone but an admin gets 404, as in Neutron.
func (s *Service) agent(ctx context.Context, c *auth.Context, id string) (store.Object[api.AgentRecord], *api.Host, error) {
	notFound := errf(http.StatusNotFound, "AgentNotFound", "Agent %s could not be found.", id)
	if !c.IsAdmin() {
		return store.Object[api.AgentRecord]{}, nil, notFound
	}
	recs, live, err := s.agents(ctx)
	if err != nil {
		return store.Object[api.AgentRecord]{}, nil, err
	}
	for _, o := range recs {
		if agentID(o.Value.Host) == id {
			return o, live[o.Value.Host], nil
		}
	}
	return store.Object[api.AgentRecord]{}, nil, notFound
}

func (s *Service) showAgent(w http.ResponseWriter, r *http.Request) error {
	o, h, err := s.agent(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeOne(w, r, "agent", agentOf(o.Value, h))
}

func adminOnly(c *auth.Context, what string) error {
	if c.IsAdmin() {
		return nil
	}
	return errf(http.StatusForbidden, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy: only an admin may do this.", what)
}

func (s *Service) updateAgent(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	if err := adminOnly(c, "update_agent"); err != nil {
		return err
	}
	a, err := decodeBody(r.Body, "agent")
	if err != nil {
		return err
	}
	desc, descOK, err := a.str("description", maxStr)
	if err != nil {
		return err
	}
	up, upOK, err := a.boolean("admin_state_up")
	if err != nil {
		return err
	}
	if err := a.rest(); err != nil {
		return err
	}
	var out agentBody
	err = retry(r.Context(), func(int) error {
		o, h, err := s.agent(r.Context(), c, r.PathValue("id"))
		if err != nil {
			return err
		}
		rec := o.Value
		if descOK {
			rec.Description = desc
		}
		if upOK {
			rec.AdminStateUp = up
		}
		t := s.st.Txn()
		t.Update("agents/"+rec.Host, rec, o.ModRevision)
		if _, err := t.Commit(r.Context()); err != nil {
			return err
		}
		out = agentOf(rec, h)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": out})
	return nil
}

func (s *Service) deleteAgent(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	if err := adminOnly(c, "delete_agent"); err != nil {
		return err
	}
	o, h, err := s.agent(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if h != nil {
		return errf(http.StatusConflict, "AgentAlive", "Agent %s of host %s is alive (last heartbeat %s); stop it first, or wait until its registration expires.", agentID(o.Value.Host), o.Value.Host, h.UpdatedAt)
	}
	if _, err := s.st.Delete(r.Context(), "agents/"+o.Value.Host, o.ModRevision); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func agentField(a *agentBody, f string) ([]string, bool) {
	switch f {
	case "id":
		return []string{a.ID}, true
	case "agent_type":
		return []string{a.AgentType}, true
	case "binary":
		return []string{a.Binary}, true
	case "topic":
		return []string{a.Topic}, true
	case "host":
		return []string{a.Host}, true
	case "admin_state_up":
		return []string{strconv.FormatBool(a.AdminStateUp)}, true
	case "alive":
		return []string{strconv.FormatBool(a.Alive)}, true
	case "description":
		return []string{a.Description}, true
	}
	return nil, false
}

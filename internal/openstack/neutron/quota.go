package neutron

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Neutron's quotas extension (with quota_details): per-project limits on networks, subnets and
// ports, read by Nova before a boot (GET /v2.0/quotas/<project>, then it counts the project's
// ports) and enforced on create with 409 OverQuota.
//
// A project's explicit limits live in quotas/<project>; a resource without one has the
// server's default (Config.DefaultQuotas; -1, unlimited, unless configured). Usage is counted
// only when a finite limit applies: ports through idx/project-ports/<project>/<port> (written
// with every port but the binder's device ports, which are vflink's, not the project's), networks and subnets by reading them. The create's transaction then
// compares that nothing was created under the counted prefix since the count, so concurrent
// creates can never exceed a limit together; with no finite limit a create costs nothing extra.

// QuotaResources are the resources vflink counts, in Neutron's names.
var QuotaResources = []string{"network", "subnet", "port", "security_group", "security_group_rule"}

// Unlimited is Neutron's "no limit" quota value.
const Unlimited = -1

// Quotas maps resources to limits (-1: unlimited).
type Quotas map[string]int

// ParseQuotas parses "network=100,subnet=100,port=500" (Neutron's [quotas] quota_<resource>
// defaults, in one flag); unnamed resources stay unlimited.
func ParseQuotas(s string) (Quotas, error) {
	q := Quotas{}
	for _, r := range QuotaResources {
		q[r] = Unlimited
	}
	if strings.TrimSpace(s) == "" {
		return q, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !knownQuota(k) {
			return nil, fmt.Errorf("quota %q: want RESOURCE=LIMIT with RESOURCE one of %s", part, strings.Join(QuotaResources, ", "))
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < Unlimited {
			return nil, fmt.Errorf("quota %q: the limit must be an integer >= -1 (-1: unlimited)", part)
		}
		q[k] = n
	}
	return q, nil
}

func knownQuota(r string) bool { return slices.Contains(QuotaResources, r) }

func quotaKey(project string) string { return "quotas/" + project }

func projectPortKey(project, port string) string { return "idx/project-ports/" + project + "/" + port }

// quotaOf is the project's limits, its explicit ones over the defaults, and the ModRevision of
// its quota record (0: it has none).
func (s *Service) quotaOf(ctx context.Context, project string) (Quotas, int64, error) {
	return s.quotaIn(ctx, s.st, project)
}

func (s *Service) quotaIn(ctx context.Context, st *store.Store, project string) (Quotas, int64, error) {
	o, err := store.Get[Quotas](ctx, st, quotaKey(project))
	if errors.Is(err, store.ErrNotFound) {
		return s.defaultQuotas(), 0, nil
	} else if err != nil {
		return nil, 0, err
	}
	return s.withDefaults(o.Value), o.ModRevision, nil
}

// withDefaults is a project's own limits over the defaults.
func (s *Service) withDefaults(own Quotas) Quotas {
	q := s.defaultQuotas()
	for k, v := range own {
		if knownQuota(k) {
			q[k] = v
		}
	}
	return q
}

func (s *Service) defaultQuotas() Quotas {
	q := Quotas{}
	for _, r := range QuotaResources {
		q[r] = Unlimited
		if v, ok := s.cfg.DefaultQuotas[r]; ok {
			q[r] = v
		}
	}
	return q
}

func overQuota(resource string) error {
	return errf(http.StatusConflict, "OverQuota", "Quota exceeded for resources: ['%s'].", resource)
}

// usage counts a project's resource as of the returned revision, and names the prefix a create
// must find unchanged since then.
func (s *Service) usage(ctx context.Context, project, resource string) (n int, prefix string, rev int64, err error) {
	switch resource {
	case "port":
		prefix = "idx/project-ports/" + project + "/"
		keys, rev, err := s.st.Keys(ctx, prefix)
		return len(keys), prefix, rev, err
	case "network":
		all, rev, err := store.List[api.Network](ctx, s.st, "networks/")
		for _, o := range all {
			if o.Value.ProjectID == project {
				n++
			}
		}
		return n, "networks/", rev, err
	case "subnet":
		all, rev, err := store.List[api.Subnet](ctx, s.st, "subnets/")
		for _, o := range all {
			if o.Value.ProjectID == project {
				n++
			}
		}
		return n, "subnets/", rev, err
	case "security_group", "security_group_rule":
		return s.sgUsage(ctx, project, resource) // secgroup.go
	}
	return 0, "", 0, fmt.Errorf("no usage count for %q", resource)
}

// checkQuota refuses a create of one more resource over the project's limit. It adds to t the
// compare that the limits it read are still the project's (so st may be a serializable view: a
// stale read only costs a retry), and with a finite limit the one that makes the count exact
// under concurrency.
func (s *Service) checkQuota(ctx context.Context, st *store.Store, t *store.Txn, project, resource string) error {
	return s.checkQuotaN(ctx, st, t, project, resource, 1)
}

// checkQuotaN is checkQuota for k new resources at once (a bulk create).
func (s *Service) checkQuotaN(ctx context.Context, st *store.Store, t *store.Txn, project, resource string, k int) error {
	q, qrev, err := s.quotaIn(ctx, st, project)
	if err != nil {
		return err
	}
	t.Unchanged(quotaKey(project), qrev)
	if q[resource] == Unlimited {
		return nil
	}
	n, prefix, rev, err := s.usage(ctx, project, resource)
	if err != nil {
		return err
	}
	if n+k > q[resource] {
		return overQuota(resource)
	}
	t.PrefixUnchangedSince(prefix, rev)
	return nil
}

// quotaProject is the project of a quota request the caller may see: its own, or any for admin.
func quotaProject(c *auth.Context, project string) error {
	if c.IsAdmin() || c.ProjectID == project {
		return nil
	}
	return errf(http.StatusForbidden, "PolicyNotAuthorized", "Non-admin is not authorized to access quotas for another project (%s).", project)
}

func (q Quotas) body(project string) map[string]any {
	out := map[string]any{}
	for k, v := range q {
		out[k] = v
	}
	if project != "" {
		out["project_id"], out["tenant_id"] = project, project
	}
	return out
}

func (s *Service) registerQuotas(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("GET /quotas", s.listQuotas)
	h("GET /quotas/{project}", s.showQuota)
	h("GET /quotas/{project}/default", s.showDefaultQuota)
	h("GET /quotas/{project}/details", s.showQuotaDetails)
	h("PUT /quotas/{project}", s.updateQuota)
	h("DELETE /quotas/{project}", s.deleteQuota)
}

func (s *Service) listQuotas(w http.ResponseWriter, r *http.Request) error {
	c := caller(r)
	all, _, err := store.List[Quotas](r.Context(), s.st, "quotas/")
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, o := range all {
		p := strings.TrimPrefix(o.Key, "quotas/")
		if !c.IsAdmin() && p != c.ProjectID {
			continue
		}
		out = append(out, s.withDefaults(o.Value).body(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["project_id"].(string) < out[j]["project_id"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"quotas": out})
	return nil
}

func (s *Service) showQuota(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("project")
	if err := quotaProject(caller(r), p); err != nil {
		return err
	}
	q, _, err := s.quotaOf(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": q.body("")})
	return nil
}

func (s *Service) showDefaultQuota(w http.ResponseWriter, r *http.Request) error {
	if err := quotaProject(caller(r), r.PathValue("project")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": s.defaultQuotas().body("")})
	return nil
}

func (s *Service) showQuotaDetails(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("project")
	if err := quotaProject(caller(r), p); err != nil {
		return err
	}
	q, _, err := s.quotaOf(r.Context(), p)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, k := range QuotaResources {
		n, _, _, err := s.usage(r.Context(), p, k)
		if err != nil {
			return err
		}
		out[k] = map[string]int{"limit": q[k], "used": n, "reserved": 0}
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": out})
	return nil
}

func (s *Service) updateQuota(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("project")
	if !caller(r).IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only an admin may change quotas (project %s).", p)
	}
	if p == "" || len(p) > maxStr {
		return invalidInput("project ID %q is not valid.", clip(p))
	}
	a, err := decodeBody(r.Body, "quota")
	if err != nil {
		return err
	}
	set := Quotas{}
	for _, k := range QuotaResources {
		n, ok, err := a.integer(k)
		if err != nil {
			return err
		}
		if ok && n < Unlimited {
			return invalidInput("Invalid input for %s. Reason: '%d' should be greater than or equal to -1 (-1: unlimited).", k, n)
		}
		if ok {
			set[k] = n
		}
	}
	if err := a.rest(); err != nil {
		return err
	}
	err = retry(r.Context(), func(int) error {
		o, err := store.Get[Quotas](r.Context(), s.st, quotaKey(p))
		t := s.st.Txn()
		switch {
		case errors.Is(err, store.ErrNotFound):
			t.Create(quotaKey(p), set)
		case err != nil:
			return err
		default:
			merged := Quotas{}
			for k, v := range o.Value {
				merged[k] = v
			}
			for k, v := range set {
				merged[k] = v
			}
			t.Update(quotaKey(p), merged, o.ModRevision)
		}
		_, err = t.Commit(r.Context())
		return err
	})
	if err != nil {
		return err
	}
	q, _, err := s.quotaOf(r.Context(), p)
	if err != nil {
		return err
	}
	s.log.Info("quota set", "project", p, "quota", q)
	writeJSON(w, http.StatusOK, map[string]any{"quota": q.body("")})
	return nil
}

func (s *Service) deleteQuota(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("project")
	if !caller(r).IsAdmin() {
		return errf(http.StatusForbidden, "PolicyNotAuthorized", "Only an admin may change quotas (project %s).", p)
	}
	t := s.st.Txn()
	t.Remove(quotaKey(p))
	if _, err := t.Commit(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package keystone

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/vflink/vflink/internal/store"
)

// Roles, global or specific to a domain, and role inference rules (implied roles):
//
//	keystone/roles/<id>                              role
//	keystone/names/roles/<name>                      ID of a global role
//	keystone/names/domain-roles/<domain>/<name>      ID of a domain-specific role
//	keystone/implied/<prior>/<implied>               ""   prior implies implied

func roleNameKeyIn(domainID, name string) string {
	if domainID == "" {
		return roleNameKey(name)
	}
	return "keystone/names/domain-roles/" + domainID + "/" + url.PathEscape(name)
}

func impliedKey(prior, implied string) string { return "keystone/implied/" + prior + "/" + implied }

// prohibitedImplied are the role names that cannot be implied (Keystone's
// [assignment] prohibited_implied_role default).
var prohibitedImplied = map[string]bool{"admin": true}

type roleInput struct {
	r                                 role
	nameGiven, domainGiven, descGiven bool
	extra                             map[string]any
}

func parseRole(b []byte) (roleInput, error) {
	var in roleInput
	a, err := parseEnvelope(b, "role")
	if err != nil {
		return in, err
	}
	if in.r.Name, in.nameGiven, err = a.name("name", 255); err != nil {
		return in, err
	}
	if in.r.DomainID, in.domainGiven, err = a.str("domain_id", 64, true); err != nil {
		return in, err
	}
	if in.r.Description, in.descGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	if err := a.ignoreObject("options"); err != nil {
		return in, err
	}
	a.raw("id")
	in.extra, err = a.extras()
	return in, err
}

// createRole is POST /v3/roles.
func (s *Service) createRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_role"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseRole(b)
	if err != nil {
		return err
	}
	if !in.nameGiven {
		return invalid("role", "'name' is a required property.")
	}
	ro := in.r
	ro.Extra = in.extra
	ctx := r.Context()
	t := s.st.Txn()
	if ro.DomainID != "" {
		d, err := s.requireDomain(ctx, "role.domain_id", ro.DomainID)
		if err != nil {
			return err
		}
		t.Unchanged(d.Key, d.ModRevision)
	}
	ro.ID = newID()
	t.Create(roleNameKeyIn(ro.DomainID, ro.Name), ro.ID)
	t.Create(roleKey(ro.ID), ro)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == roleNameKeyIn(ro.DomainID, ro.Name) {
			return duplicate("role", ro.Name, ro.DomainID)
		}
		return err
	}
	s.log.Info("role created", "role", ro.ID, "role_name", ro.Name, "domain", ro.DomainID)
	writeJSON(w, http.StatusCreated, map[string]any{"role": s.roleView(ro)})
	return nil
}

// listRoles is GET /v3/roles (?name=, ?domain_id=): global roles, or those of one domain; admin
// only, as Keystone's default policy.
func (s *Service) listRoles(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_roles"); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[role](r.Context(), s.st, "keystone/roles/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		if (q.Has("name") && o.Value.Name != q.Get("name")) || o.Value.DomainID != q.Get("domain_id") {
			continue
		}
		out = append(out, s.roleView(o.Value))
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": s.listLinks(r, "roles")})
	return nil
}

func (s *Service) getRole(ctx context.Context, id string) (store.Object[role], error) {
	if !validID(id) {
		return store.Object[role]{}, notFound("role", id)
	}
	return getOr404[role](ctx, s.st, roleKey(id), "role", id)
}

// showRole is GET /v3/roles/{id}.
func (s *Service) showRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "get_role"); err != nil {
		return err
	}
	o, err := s.getRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": s.roleView(o.Value)})
	return nil
}

// updateRole is PATCH /v3/roles/{id}. Tokens carry role names, so a rename revokes the tokens
// holding the role.
func (s *Service) updateRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_role"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseRole(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	var ro role
	renamed := false
	err = retry(ctx, func() error {
		o, err := s.getRole(ctx, id)
		if err != nil {
			return err
		}
		ro = o.Value
		if in.domainGiven && in.r.DomainID != ro.DomainID {
			return invalid("role.domain_id", "%q: a role cannot move to another domain (it is in %q).", in.r.DomainID, ro.DomainID)
		}
		t := s.st.Txn()
		renamed = in.nameGiven && in.r.Name != ro.Name
		if renamed {
			t.Remove(roleNameKeyIn(ro.DomainID, ro.Name))
			t.Create(roleNameKeyIn(ro.DomainID, in.r.Name), ro.ID)
			ro.Name = in.r.Name
		}
		if in.descGiven {
			ro.Description = in.r.Description
		}
		ro.Extra = mergeExtra(ro.Extra, in.extra)
		t.Update(roleKey(id), ro, o.ModRevision)
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == roleNameKeyIn(ro.DomainID, in.r.Name) && ce.Reason == store.Exists {
			return duplicate("role", in.r.Name, ro.DomainID)
		}
		return err
	})
	if err != nil {
		return err
	}
	if renamed {
		if err := s.revokeTokensWithRole(ctx, id); err != nil {
			return err
		}
	}
	s.log.Info("role updated", "role", id)
	writeJSON(w, http.StatusOK, map[string]any{"role": s.roleView(ro)})
	return nil
}

// deleteRole is DELETE /v3/roles/{id}: its grants and inference rules go with it, and every
// token holding the role is revoked.
func (s *Service) deleteRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_role"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getRole(ctx, id)
		if err != nil {
			return err
		}
		grants, err := s.allGrants(ctx)
		if err != nil {
			return err
		}
		_, rules, err := s.impliedRules(ctx)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(roleKey(id), o.ModRevision)
		t.Remove(roleNameKeyIn(o.Value.DomainID, o.Value.Name))
		removeGrants(t, grants, func(g grant) bool { return g.roleID == id })
		for _, x := range rules {
			prior, implied, _ := strings.Cut(strings.TrimPrefix(x.Key, "keystone/implied/"), "/")
			if prior == id || implied == id {
				t.Remove(x.Key)
			}
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.revokeTokensWithRole(ctx, id); err != nil {
		return err
	}
	s.log.Info("role deleted", "role", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeTokensWithRole revokes every live token that holds role id (after a role, or a rule
// implying it, went away).
func (s *Service) revokeTokensWithRole(ctx context.Context, id string) error {
	l, _, err := store.List[token](ctx, s.st, "keystone/tokens/")
	if err != nil {
		return err
	}
	for _, o := range l {
		for _, ro := range o.Value.Roles {
			if ro.ID != id {
				continue
			}
			t := s.st.Txn()
			t.Remove(o.Key)
			t.Remove(userTokenKey(o.Value.UserID, path.Base(o.Key)))
			if _, err := t.Commit(ctx); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// Implied roles.

func (s *Service) roleRef(ro role) map[string]any {
	return map[string]any{"id": ro.ID, "name": ro.Name, "links": map[string]any{"self": s.link("roles", ro.ID)}}
}

func impliedNotFound(prior, implied string) *Error {
	return errf(http.StatusNotFound, "%s does not imply %s.", prior, implied)
}

// putImplied is PUT /v3/roles/{prior}/implies/{implied}.
func (s *Service) putImplied(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_implied_role"); err != nil {
		return err
	}
	ctx := r.Context()
	pid, iid := r.PathValue("prior"), r.PathValue("implied")
	var prior, implied store.Object[role]
	err := retry(ctx, func() error {
		var err error
		if prior, err = s.getRole(ctx, pid); err != nil {
			return err
		}
		if implied, err = s.getRole(ctx, iid); err != nil {
			return err
		}
		if prohibitedImplied[implied.Value.Name] || pid == iid {
			return errf(http.StatusForbidden, "%s cannot be an implied role (of %s): a role cannot imply itself or %q.", iid, pid, implied.Value.Name)
		}
		if prior.Value.DomainID == "" && implied.Value.DomainID != "" {
			return errf(http.StatusForbidden, "%s cannot be an implied role: a global role cannot imply a domain-specific role.", iid)
		}
		if _, err := store.Get[string](ctx, s.st, impliedKey(pid, iid)); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(prior.Key, prior.ModRevision)
		t.Unchanged(implied.Key, implied.ModRevision)
		t.Create(impliedKey(pid, iid), "")
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("implied role created", "role", pid, "implied_role", iid)
	writeJSON(w, http.StatusCreated, map[string]any{"role_inference": map[string]any{
		"prior_role": s.roleRef(prior.Value), "implies": s.roleRef(implied.Value)},
		"links": map[string]any{"self": s.link("roles", pid, "implies", iid)}})
	return nil
}

// getImplied is GET and HEAD /v3/roles/{prior}/implies/{implied}.
func (s *Service) getImplied(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "get_implied_role"); err != nil {
		return err
	}
	ctx := r.Context()
	pid, iid := r.PathValue("prior"), r.PathValue("implied")
	prior, err := s.getRole(ctx, pid)
	if err != nil {
		return err
	}
	implied, err := s.getRole(ctx, iid)
	if err != nil {
		return err
	}
	if _, err := store.Get[string](ctx, s.st, impliedKey(pid, iid)); errors.Is(err, store.ErrNotFound) {
		return impliedNotFound(pid, iid)
	} else if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inference": map[string]any{
		"prior_role": s.roleRef(prior.Value), "implies": s.roleRef(implied.Value)},
		"links": map[string]any{"self": s.link("roles", pid, "implies", iid)}})
	return nil
}

// deleteImplied is DELETE /v3/roles/{prior}/implies/{implied}; tokens holding the implied role
// are revoked, as they may hold it through this rule.
func (s *Service) deleteImplied(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_implied_role"); err != nil {
		return err
	}
	ctx := r.Context()
	pid, iid := r.PathValue("prior"), r.PathValue("implied")
	if !validID(pid) || !validID(iid) {
		return impliedNotFound(pid, iid)
	}
	err := retry(ctx, func() error {
		o, err := store.Get[string](ctx, s.st, impliedKey(pid, iid))
		if errors.Is(err, store.ErrNotFound) {
			return impliedNotFound(pid, iid)
		} else if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(o.Key, o.ModRevision)
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.revokeTokensWithRole(ctx, iid); err != nil {
		return err
	}
	s.log.Info("implied role deleted", "role", pid, "implied_role", iid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// inferences builds the role_inference objects of the given prior roles (all when nil).
func (s *Service) inferences(ctx context.Context, only string) ([]map[string]any, error) {
	rules, _, err := s.impliedRules(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return nil, err
	}
	priors := make([]string, 0, len(rules))
	for p := range rules {
		if only == "" || p == only {
			priors = append(priors, p)
		}
	}
	sort.Strings(priors)
	out := make([]map[string]any, 0, len(priors))
	for _, p := range priors {
		pr, ok := all[p]
		if !ok {
			continue
		}
		imp := []map[string]any{}
		for _, i := range rules[p] {
			if ro, ok := all[i]; ok {
				imp = append(imp, s.roleRef(ro))
			}
		}
		out = append(out, map[string]any{"prior_role": s.roleRef(pr), "implies": imp})
	}
	return out, nil
}

// listImplied is GET /v3/roles/{prior}/implies.
func (s *Service) listImplied(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_implied_roles"); err != nil {
		return err
	}
	ctx := r.Context()
	pid := r.PathValue("prior")
	prior, err := s.getRole(ctx, pid)
	if err != nil {
		return err
	}
	l, err := s.inferences(ctx, pid)
	if err != nil {
		return err
	}
	inf := map[string]any{"prior_role": s.roleRef(prior.Value), "implies": []map[string]any{}}
	if len(l) == 1 {
		inf = l[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inference": inf, "links": map[string]any{"self": s.link("roles", pid, "implies")}})
	return nil
}

// listInferences is GET /v3/role_inferences.
func (s *Service) listInferences(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_role_inference_rules"); err != nil {
		return err
	}
	l, err := s.inferences(r.Context(), "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inferences": l, "links": map[string]any{"self": s.link("role_inferences")}})
	return nil
}

func (s *Service) registerRoles(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v3/roles", s.createRole)
	h("GET /v3/roles", s.listRoles)
	h("GET /v3/roles/{id}", s.showRole)
	h("PATCH /v3/roles/{id}", s.updateRole)
	h("DELETE /v3/roles/{id}", s.deleteRole)
	h("GET /v3/roles/{prior}/implies", s.listImplied)
	h("PUT /v3/roles/{prior}/implies/{implied}", s.putImplied)
	h("GET /v3/roles/{prior}/implies/{implied}", s.getImplied)
	h("HEAD /v3/roles/{prior}/implies/{implied}", s.getImplied)
	h("DELETE /v3/roles/{prior}/implies/{implied}", s.deleteImplied)
	h("GET /v3/role_inferences", s.listInferences)
}

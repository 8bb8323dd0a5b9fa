package keystone

import (
	"context"
	"errors"
	"net/http"
	"path"

	"github.com/vflink/vflink/internal/store"
)

type projectInput struct {
	p                                                          project
	nameGiven, domainGiven, enabledGiven, descGiven, tagsGiven bool
	parentID                                                   string
	parentGiven                                                bool
}

func parseProject(b []byte) (projectInput, error) {
	var in projectInput
	a, err := parseEnvelope(b, "project")
	if err != nil {
		return in, err
	}
	if in.p.Name, in.nameGiven, err = a.name("name", 64); err != nil {
		return in, err
	}
	if in.p.DomainID, in.domainGiven, err = a.str("domain_id", 64, false); err != nil {
		return in, err
	}
	if in.p.Description, in.descGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	if in.p.Enabled, in.enabledGiven, err = a.boolean("enabled"); err != nil {
		return in, err
	}
	if in.p.Tags, in.tagsGiven, err = a.strList("tags", 255); err != nil {
		return in, err
	}
	if len(in.p.Tags) > 80 {
		return in, invalid("project.tags", "%d tags; the limit is 80.", len(in.p.Tags))
	}
	if in.parentID, in.parentGiven, err = a.str("parent_id", 64, true); err != nil {
		return in, err
	}
	if isDomain, ok, err := a.boolean("is_domain"); err != nil {
		return in, err
	} else if ok && isDomain {
		return in, invalid("project.is_domain", "true is not supported; projects acting as domains are not available.")
	}
	if err := a.ignoreObject("options"); err != nil {
		return in, err
	}
	return in, a.done()
}

// createProject is POST /v3/projects.
func (s *Service) createProject(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_project"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseProject(b)
	if err != nil {
		return err
	}
	if !in.nameGiven {
		return invalid("project", "'name' is a required property.")
	}
	p := in.p
	if !in.domainGiven {
		p.DomainID = DefaultDomainID
		if in.parentID != "" {
			p.DomainID = in.parentID
		}
	}
	if !in.enabledGiven {
		p.Enabled = true
	}
	if in.parentID != "" && in.parentID != p.DomainID {
		return invalid("project.parent_id", "%q: only top-level projects are supported, so the parent must be the domain %q.", in.parentID, p.DomainID)
	}
	ctx := r.Context()
	d, err := s.requireDomain(ctx, "project.domain_id", p.DomainID)
	if err != nil {
		return err
	}
	p.ID = newID()
	t := s.st.Txn()
	t.Create(projectNameKey(p.DomainID, p.Name), p.ID)
	t.Create(projectKey(p.ID), p)
	t.Unchanged(domainKey(d.Value.ID), d.ModRevision)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == projectNameKey(p.DomainID, p.Name) {
			return duplicate("project", p.Name, p.DomainID)
		}
		return err
	}
	s.log.Info("project created", "project", p.ID, "project_name", p.Name, "domain", p.DomainID)
	writeJSON(w, http.StatusCreated, map[string]any{"project": s.projectView(p)})
	return nil
}

// listProjects is GET /v3/projects (?name=, ?domain_id=, ?enabled=).
func (s *Service) listProjects(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_projects"); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[project](r.Context(), s.st, "keystone/projects/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		p := o.Value
		if (q.Has("name") && p.Name != q.Get("name")) || (q.Has("domain_id") && p.DomainID != q.Get("domain_id")) ||
			(q.Has("enabled") && boolParam(q.Get("enabled")) != p.Enabled) {
			continue
		}
		out = append(out, s.projectView(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": s.listLinks(r, "projects")})
	return nil
}

func (s *Service) getProject(ctx context.Context, id string) (store.Object[project], error) {
	if !validID(id) {
		return store.Object[project]{}, notFound("project", id)
	}
	return getOr404[project](ctx, s.st, projectKey(id), "project", id)
}

// showProject is GET /v3/projects/{id}: an admin, or a user with a role on the project.
func (s *Service) showProject(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !c.IsAdmin() {
		if !validID(id) {
			return forbidden("get_project")
		}
		ok, err := s.hasProject(r.Context(), c.UserID, id)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden("get_project")
		}
	}
	o, err := s.getProject(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": s.projectView(o.Value)})
	return nil
}

// updateProject is PATCH /v3/projects/{id}. Disabling a project revokes the tokens scoped to it.
func (s *Service) updateProject(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_project"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseProject(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	var p project
	err = retry(ctx, func() error {
		o, err := s.getProject(ctx, id)
		if err != nil {
			return err
		}
		p = o.Value
		if in.domainGiven && in.p.DomainID != p.DomainID {
			return invalid("project.domain_id", "%q: a project cannot move to another domain (it is in %q).", in.p.DomainID, p.DomainID)
		}
		if in.parentGiven && in.parentID != p.DomainID {
			return invalid("project.parent_id", "%q: only top-level projects are supported, so the parent must be the domain %q.", in.parentID, p.DomainID)
		}
		t := s.st.Txn()
		if in.nameGiven && in.p.Name != p.Name {
			t.Remove(projectNameKey(p.DomainID, p.Name))
			t.Create(projectNameKey(p.DomainID, in.p.Name), p.ID)
			p.Name = in.p.Name
		}
		if in.descGiven {
			p.Description = in.p.Description
		}
		if in.tagsGiven {
			p.Tags = in.p.Tags
		}
		disable := in.enabledGiven && p.Enabled && !in.p.Enabled
		if in.enabledGiven {
			p.Enabled = in.p.Enabled
		}
		t.Update(projectKey(p.ID), p, o.ModRevision)
		if disable {
			if err := s.revokeProjectTokens(ctx, t, p.ID); err != nil {
				return err
			}
		}
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == projectNameKey(p.DomainID, in.p.Name) && ce.Reason == store.Exists {
			return duplicate("project", in.p.Name, p.DomainID)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("project updated", "project", p.ID)
	writeJSON(w, http.StatusOK, map[string]any{"project": s.projectView(p)})
	return nil
}

// revokeProjectTokens adds to t the removal of every token scoped to project p (their users are
// the ones with a role on p), guarded by compares on the users' token indexes and on p's roles.
func (s *Service) revokeProjectTokens(ctx context.Context, t *store.Txn, p string) error {
	keys, rev, err := s.st.Keys(ctx, projectAssignments(p))
	if err != nil {
		return err
	}
	t.PrefixUnchangedSince(projectAssignments(p), rev)
	seen := map[string]bool{}
	for _, k := range keys { // <user>/<role>
		u := path.Dir(k)
		if seen[u] {
			continue
		}
		seen[u] = true
		if err := s.revokeTokens(ctx, t, u, func(tp string) bool { return tp == p }); err != nil {
			return err
		}
	}
	return nil
}

// deleteProject is DELETE /v3/projects/{id}: the project, its name, its role assignments and the
// tokens scoped to it go together.
func (s *Service) deleteProject(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_project"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getProject(ctx, id)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(projectKey(id), o.ModRevision)
		t.Remove(projectNameKey(o.Value.DomainID, o.Value.Name))
		if err := s.revokeProjectTokens(ctx, t, id); err != nil {
			return err
		}
		keys, _, err := s.st.Keys(ctx, projectAssignments(id))
		if err != nil {
			return err
		}
		for _, k := range keys {
			u, ro := path.Split(k)
			t.Remove(userAssignmentKey(path.Clean(u), id, ro))
		}
		t.DeletePrefix(projectAssignments(id))
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("project deleted", "project", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listDomains is GET /v3/domains (?name=).
func (s *Service) listDomains(w http.ResponseWriter, r *http.Request) error {
	if _, err := caller(r); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[domain](r.Context(), s.st, "keystone/domains/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		if (q.Has("name") && o.Value.Name != q.Get("name")) || (q.Has("enabled") && boolParam(q.Get("enabled")) != o.Value.Enabled) {
			continue
		}
		out = append(out, s.domainView(o.Value))
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out, "links": s.listLinks(r, "domains")})
	return nil
}

// showDomain is GET /v3/domains/{id}.
func (s *Service) showDomain(w http.ResponseWriter, r *http.Request) error {
	if _, err := caller(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if !validID(id) {
		return notFound("domain", id)
	}
	o, err := getOr404[domain](r.Context(), s.st, domainKey(id), "domain", id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": s.domainView(o.Value)})
	return nil
}

// listRoles is GET /v3/roles (?name=).
func (s *Service) listRoles(w http.ResponseWriter, r *http.Request) error {
	if _, err := caller(r); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[role](r.Context(), s.st, "keystone/roles/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		if q.Has("name") && o.Value.Name != q.Get("name") {
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
	if _, err := caller(r); err != nil {
		return err
	}
	o, err := s.getRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": s.roleView(o.Value)})
	return nil
}

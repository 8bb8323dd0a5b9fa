package keystone

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"path"
	"strings"

	"github.com/vflink/vflink/internal/store"
)

type projectInput struct {
	p                                                          project
	nameGiven, domainGiven, enabledGiven, descGiven, tagsGiven bool
	parentID                                                   string
	parentGiven, isDomain                                      bool
	extra                                                      map[string]any
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
	if in.p.DomainID, in.domainGiven, err = a.str("domain_id", 64, true); err != nil {
		return in, err
	}
	if in.p.Description, in.descGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	if in.p.Enabled, in.enabledGiven, err = a.boolean("enabled"); err != nil {
		return in, err
	}
	if in.p.Tags, in.tagsGiven, err = parseTags(a, "tags"); err != nil {
		return in, err
	}
	if in.parentID, in.parentGiven, err = a.str("parent_id", 64, true); err != nil {
		return in, err
	}
	if in.isDomain, _, err = a.boolean("is_domain"); err != nil {
		return in, err
	}
	if err := a.ignoreObject("options"); err != nil {
		return in, err
	}
	a.raw("id") // read-only: ignored, as Keystone does
	in.extra, err = a.extras()
	return in, err
}

// parseTags reads Keystone's tag list: at most 80 unique tags of 1..255 characters without ',' or '/'.
func parseTags(a *obj, k string) ([]string, bool, error) {
	tags, ok, err := a.strList(k, 255)
	if err != nil || !ok {
		return nil, ok, err
	}
	if len(tags) > 80 {
		return nil, false, invalid(a.field(k), "%d tags; the limit is 80.", len(tags))
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if strings.ContainsAny(t, ",/") {
			return nil, false, invalid(a.field(k), "%q: a tag cannot contain ',' or '/'.", t)
		}
		if seen[t] {
			return nil, false, invalid(a.field(k), "%q is given twice; tags are unique.", t)
		}
		seen[t] = true
	}
	return tags, true, nil
}

// createProject is POST /v3/projects. With is_domain true it creates a domain (Keystone's
// projects acting as domains).
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
	ctx := r.Context()
	if in.isDomain {
		if in.parentID != "" {
			return invalid("project.parent_id", "%q: only root projects are allowed to act as domains.", in.parentID)
		}
		if in.p.DomainID != "" {
			return invalid("project.domain_id", "%q: a project acting as a domain has no domain.", in.p.DomainID)
		}
		d := domain{ID: newID(), Name: in.p.Name, Description: in.p.Description, Enabled: !in.enabledGiven || in.p.Enabled,
			Tags: in.p.Tags, Extra: in.extra}
		if err := s.storeNewDomain(ctx, d); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]any{"project": s.domainProjectView(d)})
		return nil
	}
	p := in.p
	p.Extra = in.extra
	if !in.enabledGiven {
		p.Enabled = true
	}
	var parent *store.Object[project]
	if in.parentID != "" {
		po, isProject, err := s.parentOf(ctx, in.parentID)
		if err != nil {
			return err
		}
		if isProject {
			parent = &po
			if p.DomainID == "" {
				p.DomainID = po.Value.DomainID
			}
			if p.DomainID != po.Value.DomainID {
				return invalid("project.parent_id", "the parent %q is in domain %q, not in the project's domain %q.", in.parentID, po.Value.DomainID, p.DomainID)
			}
			if !po.Value.Enabled {
				return invalid("project.parent_id", "the parent %q is disabled; a project cannot be created under a disabled project.", in.parentID)
			}
			p.ParentID = po.Value.ID
		} else {
			if p.DomainID == "" {
				p.DomainID = in.parentID
			}
			if p.DomainID != in.parentID {
				return invalid("project.parent_id", "the parent %q is a domain, but the project's domain is %q.", in.parentID, p.DomainID)
			}
		}
	}
	if p.DomainID == "" {
		p.DomainID = DefaultDomainID
	}
	d, err := s.requireDomain(ctx, "project.domain_id", p.DomainID)
	if err != nil {
		return err
	}
	p.ID = newID()
	t := s.st.Txn()
	t.Create(projectNameKey(p.DomainID, p.Name), p.ID)
	t.Create(projectKey(p.ID), p)
	t.Unchanged(domainKey(d.Value.ID), d.ModRevision)
	if parent != nil {
		t.Unchanged(parent.Key, parent.ModRevision)
	}
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == projectNameKey(p.DomainID, p.Name) {
			return duplicate("project", p.Name, p.DomainID)
		}
		if errors.As(err, &ce) && parent != nil && ce.Key == parent.Key {
			return errf(http.StatusConflict, "The parent project %s changed while the project was created; retry.", parent.Value.ID)
		}
		return err
	}
	s.log.Info("project created", "project", p.ID, "project_name", p.Name, "domain", p.DomainID)
	writeJSON(w, http.StatusCreated, map[string]any{"project": s.projectView(p)})
	return nil
}

// parentOf reads the parent a parent_id names: a project (isProject), or else a domain; 404 when
// it is neither.
func (s *Service) parentOf(ctx context.Context, id string) (store.Object[project], bool, error) {
	if !validID(id) {
		return store.Object[project]{}, false, notFound("project", id)
	}
	o, err := store.Get[project](ctx, s.st, projectKey(id))
	if err == nil {
		return o, true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return o, false, err
	}
	if _, err := store.Get[domain](ctx, s.st, domainKey(id)); errors.Is(err, store.ErrNotFound) {
		return o, false, notFound("project", id)
	} else if err != nil {
		return o, false, err
	}
	return o, false, nil
}

// listProjects is GET /v3/projects (?name=, ?domain_id=, ?enabled=, ?parent_id=, ?is_domain=).
// With is_domain=true it lists the domains, as projects acting as domains.
func (s *Service) listProjects(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_projects"); err != nil {
		return err
	}
	q := r.URL.Query()
	ctx := r.Context()
	out := []map[string]any{}
	if q.Has("is_domain") && boolParam(q.Get("is_domain")) {
		l, _, err := store.List[domain](ctx, s.st, "keystone/domains/")
		if err != nil {
			return err
		}
		for _, o := range l {
			d := o.Value
			if (q.Has("name") && d.Name != q.Get("name")) || (q.Has("enabled") && boolParam(q.Get("enabled")) != d.Enabled) ||
				(q.Has("domain_id") && q.Get("domain_id") != "") || (q.Has("parent_id") && q.Get("parent_id") != "") {
				continue
			}
			out = append(out, s.domainProjectView(d))
		}
		writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": s.listLinks(r, "projects")})
		return nil
	}
	l, _, err := store.List[project](ctx, s.st, "keystone/projects/")
	if err != nil {
		return err
	}
	for _, o := range l {
		p := o.Value
		parent := p.ParentID
		if parent == "" {
			parent = p.DomainID
		}
		if (q.Has("name") && p.Name != q.Get("name")) || (q.Has("domain_id") && p.DomainID != q.Get("domain_id")) ||
			(q.Has("enabled") && boolParam(q.Get("enabled")) != p.Enabled) || (q.Has("parent_id") && parent != q.Get("parent_id")) ||
			!tagsMatch(q, p.Tags) {
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
	if isNotFound(err) && c.IsAdmin() {
		if d, derr := store.Get[domain](r.Context(), s.st, domainKey(id)); derr == nil {
			writeJSON(w, http.StatusOK, map[string]any{"project": s.domainProjectView(d.Value)})
			return nil
		}
	}
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
	if isDom, err := s.isDomainID(ctx, id); err != nil {
		return err
	} else if isDom {
		d, err := s.applyDomainUpdate(ctx, id, domainInput{d: domain{Name: in.p.Name, Description: in.p.Description,
			Enabled: in.p.Enabled, Tags: in.p.Tags}, nameGiven: in.nameGiven, descGiven: in.descGiven,
			enabledGiven: in.enabledGiven, tagsGiven: in.tagsGiven, extra: in.extra})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"project": s.domainProjectView(d)})
		return nil
	}
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
		if cur := cmp.Or(p.ParentID, p.DomainID); in.parentGiven && in.parentID != cur {
			return invalid("project.parent_id", "%q: a project cannot move to another parent (its parent is %q).", in.parentID, cur)
		}
		if in.isDomain {
			return invalid("project.is_domain", "true: a project cannot become a domain.")
		}
		p.Extra = mergeExtra(p.Extra, in.extra)
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

// projectDeleteOps adds to t the removal of project o: its name, role assignments (of users and
// groups) and the tokens scoped to it.
func (s *Service) projectDeleteOps(ctx context.Context, t *store.Txn, o store.Object[project], grants []grant) error {
	id := o.Value.ID
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
	if err := s.trustDeleteOps(ctx, t, func(tr trust) bool { return tr.ProjectID == id }); err != nil {
		return err
	}
	gs := removeGrants(t, grants, func(g grant) bool {
		return g.targetKind == "project" && g.targetID == id && (g.actorKind == "group" || g.inherited)
	})
	return s.revokeForGrants(ctx, t, gs)
}

// deleteProject is DELETE /v3/projects/{id}: the project, its name, its role assignments and the
// tokens scoped to it go together. A project with child projects cannot be deleted (403), as in
// Keystone without cascade. A domain's ID deletes the domain (projects acting as domains).
func (s *Service) deleteProject(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_project"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if isDom, err := s.isDomainID(ctx, id); err != nil {
		return err
	} else if isDom {
		return s.deleteDomain(w, r)
	}
	err := retry(ctx, func() error {
		o, err := s.getProject(ctx, id)
		if err != nil {
			return err
		}
		l, _, err := store.List[project](ctx, s.st, "keystone/projects/")
		if err != nil {
			return err
		}
		for _, c := range l {
			if c.Value.ParentID == id {
				return errf(http.StatusForbidden, "Cannot delete project %s: it has the child project %s; delete the children first.", id, c.Value.ID)
			}
		}
		grants, err := s.allGrants(ctx)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		if err := s.projectDeleteOps(ctx, t, o, grants); err != nil {
			return err
		}
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

package keystone

import (
	"context"
	"errors"
	"net/http"

	"github.com/vflink/vflink/internal/store"
)

// Domains. A domain must be disabled before it is deleted; deleting it deletes what it holds
// (projects, users, groups, domain-specific roles, role assignments on it, its configuration).
// Disabling it revokes the tokens of its users and of its projects.

type domainInput struct {
	d                                             domain
	nameGiven, descGiven, enabledGiven, tagsGiven bool
	extra                                         map[string]any
}

func parseDomain(b []byte) (domainInput, error) {
	var in domainInput
	a, err := parseEnvelope(b, "domain")
	if err != nil {
		return in, err
	}
	if in.d.Name, in.nameGiven, err = a.name("name", 64); err != nil {
		return in, err
	}
	if in.d.Description, in.descGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	if in.d.Enabled, in.enabledGiven, err = a.boolean("enabled"); err != nil {
		return in, err
	}
	if in.d.Tags, in.tagsGiven, err = parseTags(a, "tags"); err != nil {
		return in, err
	}
	if err := a.ignoreObject("options"); err != nil {
		return in, err
	}
	a.raw("id")
	in.extra, err = a.extras()
	return in, err
}

func (s *Service) getDomain(ctx context.Context, id string) (store.Object[domain], error) {
	if !validID(id) {
		return store.Object[domain]{}, notFound("domain", id)
	}
	return getOr404[domain](ctx, s.st, domainKey(id), "domain", id)
}

// isDomainID reports whether id names a domain.
func (s *Service) isDomainID(ctx context.Context, id string) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	_, err := store.Get[domain](ctx, s.st, domainKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// storeNewDomain writes a new domain with its unique name.
func (s *Service) storeNewDomain(ctx context.Context, d domain) error {
	t := s.st.Txn()
	t.Create(domainNameKey(d.Name), d.ID)
	t.Create(domainKey(d.ID), d)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == domainNameKey(d.Name) {
			return duplicate("domain", d.Name, "")
		}
		return err
	}
	s.log.Info("domain created", "domain", d.ID, "domain_name", d.Name)
	return nil
}

// createDomain is POST /v3/domains.
func (s *Service) createDomain(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_domain"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseDomain(b)
	if err != nil {
		return err
	}
	if !in.nameGiven {
		return invalid("domain", "'name' is a required property.")
	}
	d := in.d
	d.ID, d.Extra = newID(), in.extra
	if !in.enabledGiven {
		d.Enabled = true
	}
	if err := s.storeNewDomain(r.Context(), d); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"domain": s.domainView(d)})
	return nil
}

// listDomains is GET /v3/domains (?name=, ?enabled=); admin only, as Keystone's default policy.
func (s *Service) listDomains(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_domains"); err != nil {
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

// showDomain is GET /v3/domains/{id}: an admin, or a token scoped to the domain or to one of its
// projects (Keystone's admin_or_target_domain).
func (s *Service) showDomain(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !c.IsAdmin() {
		dom := ""
		if c.ProjectID != "" {
			if p, err := store.Get[project](r.Context(), s.st, projectKey(c.ProjectID)); err == nil {
				dom = p.Value.DomainID
			}
		} else if t, err := s.lookupToken(r.Context(), r.Header.Get("X-Auth-Token")); err == nil {
			dom = t.Value.DomainID
		}
		if dom == "" || dom != id {
			return forbidden("get_domain")
		}
	}
	o, err := s.getDomain(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": s.domainView(o.Value)})
	return nil
}

// updateDomain is PATCH /v3/domains/{id}.
func (s *Service) updateDomain(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_domain"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseDomain(b)
	if err != nil {
		return err
	}
	d, err := s.applyDomainUpdate(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": s.domainView(d)})
	return nil
}

func (s *Service) applyDomainUpdate(ctx context.Context, id string, in domainInput) (domain, error) {
	var d domain
	err := retry(ctx, func() error {
		o, err := s.getDomain(ctx, id)
		if err != nil {
			return err
		}
		d = o.Value
		t := s.st.Txn()
		if in.nameGiven && in.d.Name != d.Name {
			t.Remove(domainNameKey(d.Name))
			t.Create(domainNameKey(in.d.Name), d.ID)
			d.Name = in.d.Name
		}
		if in.descGiven {
			d.Description = in.d.Description
		}
		if in.tagsGiven {
			d.Tags = in.d.Tags
		}
		disable := in.enabledGiven && d.Enabled && !in.d.Enabled
		if in.enabledGiven {
			d.Enabled = in.d.Enabled
		}
		d.Extra = mergeExtra(d.Extra, in.extra)
		t.Update(domainKey(id), d, o.ModRevision)
		if disable {
			if err := s.revokeDomainTokens(ctx, t, id); err != nil {
				return err
			}
		}
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == domainNameKey(in.d.Name) && ce.Reason == store.Exists {
			return duplicate("domain", in.d.Name, "")
		}
		return err
	})
	if err == nil {
		s.log.Info("domain updated", "domain", id)
	}
	return d, err
}

// revokeDomainTokens adds to t the revocation of the tokens of the domain's users and of the
// tokens scoped to its projects.
func (s *Service) revokeDomainTokens(ctx context.Context, t *store.Txn, id string) error {
	users, _, err := store.List[user](ctx, s.st, "keystone/users/")
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Value.DomainID == id {
			if err := s.revokeTokens(ctx, t, u.Value.ID, nil); err != nil {
				return err
			}
		}
	}
	projects, _, err := store.List[project](ctx, s.st, "keystone/projects/")
	if err != nil {
		return err
	}
	for _, p := range projects {
		if p.Value.DomainID == id {
			if err := s.revokeProjectTokens(ctx, t, p.Value.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteDomain is DELETE /v3/domains/{id} (and /v3/projects/{id} of a domain).
func (s *Service) deleteDomain(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_domain"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getDomain(ctx, id)
		if err != nil {
			return err
		}
		if o.Value.Enabled {
			return errf(http.StatusForbidden, "Cannot delete the domain %s (%s): it is enabled; disable it first.", id, o.Value.Name)
		}
		grants, err := s.allGrants(ctx)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(domainKey(id), o.ModRevision)
		t.Remove(domainNameKey(o.Value.Name))
		t.Remove(domainConfigKey(id))
		if err := inDomain(ctx, s, "keystone/projects/", id, func(p *project) string { return p.DomainID },
			func(o store.Object[project]) error { return s.projectDeleteOps(ctx, t, o, grants) }); err != nil {
			return err
		}
		if err := inDomain(ctx, s, "keystone/users/", id, func(u *user) string { return u.DomainID },
			func(o store.Object[user]) error { return s.userDeleteOps(ctx, t, o, grants) }); err != nil {
			return err
		}
		if err := inDomain(ctx, s, "keystone/groups/", id, func(g *group) string { return g.DomainID },
			func(o store.Object[group]) error { return s.groupDeleteOps(ctx, t, o, grants) }); err != nil {
			return err
		}
		roles, _, err := store.List[role](ctx, s.st, "keystone/roles/")
		if err != nil {
			return err
		}
		for _, ro := range roles {
			if ro.Value.DomainID == id {
				t.Remove(ro.Key)
				t.Remove(roleNameKeyIn(id, ro.Value.Name))
				removeGrants(t, grants, func(g grant) bool { return g.roleID == ro.Value.ID })
			}
		}
		gs := removeGrants(t, grants, func(g grant) bool { return g.targetKind == "domain" && g.targetID == id })
		if err := s.revokeForGrants(ctx, t, gs); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("domain deleted", "domain", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) registerDomains(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v3/domains", s.createDomain)
	h("GET /v3/domains", s.listDomains)
	h("GET /v3/domains/{id}", s.showDomain)
	h("PATCH /v3/domains/{id}", s.updateDomain)
	h("DELETE /v3/domains/{id}", s.deleteDomain)
	s.registerDomainConfig(h)
}

// inDomain runs f on every object under prefix that belongs to domain.
func inDomain[T any](ctx context.Context, s *Service, prefix, domain string, domainOf func(*T) string, f func(store.Object[T]) error) error {
	objs, _, err := store.List[T](ctx, s.st, prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if domainOf(&o.Value) == domain {
			if err := f(o); err != nil {
				return err
			}
		}
	}
	return nil
}

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

// Groups and their members:
//
//	keystone/groups/<id>                       group
//	keystone/names/groups/<domain>/<name>      group ID
//	keystone/members/<group>/<user>            ""   membership
//	keystone/idx/user-groups/<user>/<group>    ""   the same, by user

func groupKey(id string) string { return "keystone/groups/" + id }
func groupNameKey(domainID, n string) string {
	return "keystone/names/groups/" + domainID + "/" + url.PathEscape(n)
}
func groupMemberKey(g, u string) string { return "keystone/members/" + g + "/" + u }
func userGroupKey(u, g string) string   { return "keystone/idx/user-groups/" + u + "/" + g }

type groupInput struct {
	g                                 group
	nameGiven, domainGiven, descGiven bool
	extra                             map[string]any
}

func parseGroup(b []byte) (groupInput, error) {
	var in groupInput
	a, err := parseEnvelope(b, "group")
	if err != nil {
		return in, err
	}
	if in.g.Name, in.nameGiven, err = a.name("name", 255); err != nil {
		return in, err
	}
	if in.g.DomainID, in.domainGiven, err = a.str("domain_id", 64, false); err != nil {
		return in, err
	}
	if in.g.Description, in.descGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	a.raw("id")
	in.extra, err = a.extras()
	return in, err
}

func (s *Service) getGroup(ctx context.Context, id string) (store.Object[group], error) {
	if !validID(id) {
		return store.Object[group]{}, notFound("group", id)
	}
	return getOr404[group](ctx, s.st, groupKey(id), "group", id)
}

// createGroup is POST /v3/groups.
func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_group"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseGroup(b)
	if err != nil {
		return err
	}
	if !in.nameGiven {
		return invalid("group", "'name' is a required property.")
	}
	g := in.g
	g.Extra = in.extra
	if !in.domainGiven {
		g.DomainID = DefaultDomainID
	}
	ctx := r.Context()
	d, err := s.requireDomain(ctx, "group.domain_id", g.DomainID)
	if err != nil {
		return err
	}
	g.ID = newID()
	t := s.st.Txn()
	t.Create(groupNameKey(g.DomainID, g.Name), g.ID)
	t.Create(groupKey(g.ID), g)
	t.Unchanged(domainKey(d.Value.ID), d.ModRevision)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == groupNameKey(g.DomainID, g.Name) {
			return duplicate("group", g.Name, g.DomainID)
		}
		return err
	}
	s.log.Info("group created", "group", g.ID, "domain", g.DomainID)
	writeJSON(w, http.StatusCreated, map[string]any{"group": s.groupView(g)})
	return nil
}

// listGroups is GET /v3/groups (?name=, ?domain_id=).
func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_groups"); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[group](r.Context(), s.st, "keystone/groups/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		g := o.Value
		if (q.Has("name") && g.Name != q.Get("name")) || (q.Has("domain_id") && g.DomainID != q.Get("domain_id")) {
			continue
		}
		out = append(out, s.groupView(g))
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out, "links": s.listLinks(r, "groups")})
	return nil
}

// showGroup is GET /v3/groups/{id}.
func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "get_group"); err != nil {
		return err
	}
	o, err := s.getGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": s.groupView(o.Value)})
	return nil
}

// updateGroup is PATCH /v3/groups/{id}.
func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_group"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseGroup(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	var g group
	err = retry(ctx, func() error {
		o, err := s.getGroup(ctx, id)
		if err != nil {
			return err
		}
		g = o.Value
		if in.domainGiven && in.g.DomainID != g.DomainID {
			return invalid("group.domain_id", "%q: a group cannot move to another domain (it is in %q).", in.g.DomainID, g.DomainID)
		}
		t := s.st.Txn()
		if in.nameGiven && in.g.Name != g.Name {
			t.Remove(groupNameKey(g.DomainID, g.Name))
			t.Create(groupNameKey(g.DomainID, in.g.Name), g.ID)
			g.Name = in.g.Name
		}
		if in.descGiven {
			g.Description = in.g.Description
		}
		g.Extra = mergeExtra(g.Extra, in.extra)
		t.Update(groupKey(g.ID), g, o.ModRevision)
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == groupNameKey(g.DomainID, in.g.Name) && ce.Reason == store.Exists {
			return duplicate("group", in.g.Name, g.DomainID)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("group updated", "group", g.ID)
	writeJSON(w, http.StatusOK, map[string]any{"group": s.groupView(g)})
	return nil
}

// groupDeleteOps adds to t the removal of group o: its name, memberships and grants, and the
// revocation of the tokens its grants went into.
func (s *Service) groupDeleteOps(ctx context.Context, t *store.Txn, o store.Object[group], grants []grant) error {
	id := o.Value.ID
	t.Delete(groupKey(id), o.ModRevision)
	t.Remove(groupNameKey(o.Value.DomainID, o.Value.Name))
	var mine []grant
	for _, g := range grants {
		if g.actorKind == "group" && g.actorID == id {
			mine = append(mine, g)
		}
	}
	if err := s.revokeForGrants(ctx, t, mine); err != nil {
		return err
	}
	removeGrants(t, mine, func(grant) bool { return true })
	members, _, err := s.st.Keys(ctx, groupMemberKey(id, ""))
	if err != nil {
		return err
	}
	for _, u := range members {
		t.Remove(userGroupKey(u, id))
	}
	t.DeletePrefix(groupMemberKey(id, ""))
	return nil
}

// deleteGroup is DELETE /v3/groups/{id}.
func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_group"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getGroup(ctx, id)
		if err != nil {
			return err
		}
		grants, err := s.allGrants(ctx)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		if err := s.groupDeleteOps(ctx, t, o, grants); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("group deleted", "group", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addMember is PUT /v3/groups/{g}/users/{u}.
func (s *Service) addMember(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "add_user_to_group"); err != nil {
		return err
	}
	ctx := r.Context()
	gid, uid := r.PathValue("g"), r.PathValue("u")
	err := retry(ctx, func() error {
		g, err := s.getGroup(ctx, gid)
		if err != nil {
			return err
		}
		u, err := s.getUser(ctx, uid)
		if err != nil {
			return err
		}
		if _, err := store.Get[string](ctx, s.st, groupMemberKey(gid, uid)); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(groupKey(gid), g.ModRevision)
		t.Unchanged(userKey(uid), u.ModRevision)
		t.Create(groupMemberKey(gid, uid), "")
		t.Create(userGroupKey(uid, gid), "")
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("group member added", "group", gid, "user", uid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func memberNotFound(g, u string) *Error {
	return errf(http.StatusNotFound, "Could not find user %s in group %s.", u, g)
}

// checkMember is HEAD and GET /v3/groups/{g}/users/{u}.
func (s *Service) checkMember(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "check_user_in_group"); err != nil {
		return err
	}
	gid, uid := r.PathValue("g"), r.PathValue("u")
	ctx := r.Context()
	if _, err := s.getGroup(ctx, gid); err != nil {
		return err
	}
	if _, err := s.getUser(ctx, uid); err != nil {
		return err
	}
	if _, err := store.Get[string](ctx, s.st, groupMemberKey(gid, uid)); errors.Is(err, store.ErrNotFound) {
		return memberNotFound(gid, uid)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeMember is DELETE /v3/groups/{g}/users/{u}; the user's tokens that the group's grants
// went into are revoked with it.
func (s *Service) removeMember(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "remove_user_from_group"); err != nil {
		return err
	}
	ctx := r.Context()
	gid, uid := r.PathValue("g"), r.PathValue("u")
	if !validID(gid) || !validID(uid) {
		return memberNotFound(gid, uid)
	}
	err := retry(ctx, func() error {
		o, err := store.Get[string](ctx, s.st, groupMemberKey(gid, uid))
		if errors.Is(err, store.ErrNotFound) {
			return memberNotFound(gid, uid)
		} else if err != nil {
			return err
		}
		l, err := s.actorGrants(ctx, "group:"+gid)
		if err != nil {
			return err
		}
		var gs []grant
		for _, x := range l {
			rest := x.Key[len("keystone/idx/actor-grants/group:"+gid+"/"):]
			tgt, _ := path.Split(rest)
			tk, tid, _ := splitKind(path.Clean(tgt))
			inh := strings.HasPrefix(tk, inheritedPrefix)
			gs = append(gs, grant{targetKind: strings.TrimPrefix(tk, inheritedPrefix), targetID: tid, actorKind: "user",
				actorID: uid, inherited: inh})
		}
		t := s.st.Txn()
		t.Delete(o.Key, o.ModRevision)
		t.Remove(userGroupKey(uid, gid))
		if err := s.revokeForGrants(ctx, t, gs); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("group member removed", "group", gid, "user", uid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listMembers is GET /v3/groups/{g}/users.
func (s *Service) listMembers(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_users_in_group"); err != nil {
		return err
	}
	ctx := r.Context()
	gid := r.PathValue("g")
	if _, err := s.getGroup(ctx, gid); err != nil {
		return err
	}
	keys, _, err := s.st.Keys(ctx, groupMemberKey(gid, ""))
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(keys))
	for _, u := range keys {
		o, err := store.Get[user](ctx, s.st, userKey(u))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		out = append(out, s.userView(o.Value))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "links": s.listLinks(r, "groups/"+gid+"/users")})
	return nil
}

// userGroups is GET /v3/users/{id}/groups: an admin, or the user itself.
func (s *Service) userGroups(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := selfOrAdmin(r, id, "list_groups_for_user"); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.getUser(ctx, id); err != nil {
		return err
	}
	keys, _, err := s.st.Keys(ctx, userGroupKey(id, ""))
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(keys))
	for _, g := range keys {
		o, err := store.Get[group](ctx, s.st, groupKey(g))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		v := s.groupView(o.Value)
		v["membership_expires_at"] = nil
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"groups": out, "links": s.listLinks(r, "users/"+id+"/groups")})
	return nil
}

func (s *Service) registerGroups(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v3/groups", s.createGroup)
	h("GET /v3/groups", s.listGroups)
	h("GET /v3/groups/{id}", s.showGroup)
	h("PATCH /v3/groups/{id}", s.updateGroup)
	h("DELETE /v3/groups/{id}", s.deleteGroup)
	h("GET /v3/groups/{g}/users", s.listMembers)
	h("PUT /v3/groups/{g}/users/{u}", s.addMember)
	h("HEAD /v3/groups/{g}/users/{u}", s.checkMember)
	h("GET /v3/groups/{g}/users/{u}", s.checkMember)
	h("DELETE /v3/groups/{g}/users/{u}", s.removeMember)
	h("GET /v3/users/{id}/groups", s.userGroups)
}

package keystone

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/vflink/vflink/internal/store"
)

// Role assignments (grants): a role given to an actor (a user or a group) on a target (a project,
// a domain, or the system). A user's role on a project keeps the original keys
// (keystone/assignments/<project>/<user>/<role> and its index by user); every other pair is kept
// under
//
//	keystone/grants/<target>/<actor>/<role>            ""   e.g. domain:<id>/group:<id>/<role>
//	keystone/idx/actor-grants/<actor>/<target>/<role>  ""   the same, by actor
//
// where a target is project:<id>, domain:<id> or system:all and an actor user:<id> or group:<id>.

// grant is one role assignment.
type grant struct {
	targetKind, targetID string // "project", "domain", "system" ("all")
	actorKind, actorID   string // "user", "group"
	roleID               string
	// inherited (OS-INHERIT): the role applies to the projects below the target (a domain's
	// projects, a project's subtree), not to the target itself
	inherited bool
}

const inheritedPrefix = "inherited-"

func (g grant) target() string {
	if g.inherited {
		return inheritedPrefix + g.targetKind + ":" + g.targetID
	}
	return g.targetKind + ":" + g.targetID
}
func (g grant) actor() string { return g.actorKind + ":" + g.actorID }

// keys returns the grant's key and its index key.
func (g grant) keys() (string, string) {
	if g.targetKind == "project" && g.actorKind == "user" && !g.inherited {
		return assignmentKey(g.targetID, g.actorID, g.roleID), userAssignmentKey(g.actorID, g.targetID, g.roleID)
	}
	return "keystone/grants/" + g.target() + "/" + g.actor() + "/" + g.roleID,
		"keystone/idx/actor-grants/" + g.actor() + "/" + g.target() + "/" + g.roleID
}

func splitKind(s string) (string, string, bool) {
	return strings.Cut(s, ":")
}

// allGrants reads every role assignment (there are few).
func (s *Service) allGrants(ctx context.Context) ([]grant, error) {
	var out []grant
	keys, _, err := s.st.Keys(ctx, "keystone/assignments/")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if p := strings.Split(k, "/"); len(p) == 3 {
			out = append(out, grant{targetKind: "project", targetID: p[0], actorKind: "user", actorID: p[1], roleID: p[2]})
		}
	}
	keys, _, err = s.st.Keys(ctx, "keystone/grants/")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		p := strings.Split(k, "/")
		if len(p) != 3 {
			continue
		}
		tk, tid, ok1 := splitKind(p[0])
		ak, aid, ok2 := splitKind(p[1])
		if ok1 && ok2 {
			inh := strings.HasPrefix(tk, inheritedPrefix)
			out = append(out, grant{targetKind: strings.TrimPrefix(tk, inheritedPrefix), targetID: tid,
				actorKind: ak, actorID: aid, roleID: p[2], inherited: inh})
		}
	}
	return out, nil
}

// actorGrants reads the grants of one actor (other than user roles on projects).
func (s *Service) actorGrants(ctx context.Context, actor string) ([]store.Object[string], error) {
	l, _, err := store.List[string](ctx, s.st, "keystone/idx/actor-grants/"+actor+"/")
	return l, err
}

// groupsOf returns the IDs of the groups user u is a member of.
func (s *Service) groupsOf(ctx context.Context, u string) ([]store.Object[string], error) {
	l, _, err := store.List[string](ctx, s.st, userGroupKey(u, ""))
	return l, err
}

// impliedRules reads every role inference rule: prior role → implied roles.
func (s *Service) impliedRules(ctx context.Context) (map[string][]string, []store.Object[string], error) {
	l, _, err := store.List[string](ctx, s.st, "keystone/implied/")
	if err != nil {
		return nil, nil, err
	}
	m := map[string][]string{}
	for _, o := range l {
		if prior, implied, ok := strings.Cut(strings.TrimPrefix(o.Key, "keystone/implied/"), "/"); ok {
			m[prior] = append(m[prior], implied)
		}
	}
	return m, l, nil
}

// expandRoles adds to ids the roles they imply, transitively, and drops domain-specific roles
// (which never appear in tokens or effective assignments, though the roles they imply do).
func expandRoles(ids []string, rules map[string][]string, all map[string]role) []role {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		for _, x := range rules[id] {
			walk(x)
		}
	}
	for _, id := range ids {
		walk(id)
	}
	var out []role
	for id := range seen {
		if ro, ok := all[id]; ok && ro.DomainID == "" {
			out = append(out, ro)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// effectiveRoles computes the roles user u has on a target (project or domain): its own grants,
// its groups' grants, and the roles these imply. It also returns every key read, for the compares
// of a token's transaction.
func (s *Service) effectiveRoles(ctx context.Context, u, targetKind, targetID string) ([]role, []store.Object[string], error) {
	var read []store.Object[string]
	var ids []string
	if targetKind == "project" {
		l, _, err := store.List[string](ctx, s.st, assignmentKey(targetID, u, ""))
		if err != nil {
			return nil, nil, err
		}
		for _, o := range l {
			ids = append(ids, o.Key[strings.LastIndexByte(o.Key, '/')+1:])
		}
		read = append(read, l...)
	} else {
		l, err := s.actorGrants(ctx, "user:"+u)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range l {
			if rest, ok := strings.CutPrefix(o.Key, "keystone/idx/actor-grants/user:"+u+"/"+targetKind+":"+targetID+"/"); ok {
				ids = append(ids, rest)
				read = append(read, o)
			}
		}
	}
	targets := []string{targetKind + ":" + targetID}
	if targetKind == "project" {
		// inherited grants on the project's domain and on its ancestors apply too
		inh, pread, err := s.inheritedTargets(ctx, targetID)
		if err != nil {
			return nil, nil, err
		}
		read = append(read, pread...)
		l, err := s.actorGrants(ctx, "user:"+u)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range l {
			for _, tgt := range inh {
				if rest, ok := strings.CutPrefix(o.Key, "keystone/idx/actor-grants/user:"+u+"/"+tgt+"/"); ok {
					ids = append(ids, rest)
					read = append(read, o)
				}
			}
		}
		targets = append(targets, inh...)
	}
	groups, err := s.groupsOf(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	read = append(read, groups...)
	for _, gm := range groups {
		g := gm.Key[strings.LastIndexByte(gm.Key, '/')+1:]
		for _, tgt := range targets {
			l, _, err := store.List[string](ctx, s.st, "keystone/grants/"+tgt+"/group:"+g+"/")
			if err != nil {
				return nil, nil, err
			}
			for _, o := range l {
				ids = append(ids, o.Key[strings.LastIndexByte(o.Key, '/')+1:])
			}
			read = append(read, l...)
		}
	}
	if len(ids) == 0 {
		return nil, read, nil
	}
	rules, rl, err := s.impliedRules(ctx)
	if err != nil {
		return nil, nil, err
	}
	read = append(read, rl...)
	all, err := s.rolesByID(ctx)
	if err != nil {
		return nil, nil, err
	}
	return expandRoles(ids, rules, all), read, nil
}

// inheritedTargets returns the targets whose inherited grants reach project id: its domain and
// its ancestors, and the projects read to find them.
func (s *Service) inheritedTargets(ctx context.Context, id string) ([]string, []store.Object[string], error) {
	var out []string
	var read []store.Object[string]
	for p, hops := id, 0; p != "" && hops < 64; hops++ {
		o, err := store.Get[project](ctx, s.st, projectKey(p))
		if errors.Is(err, store.ErrNotFound) {
			break
		} else if err != nil {
			return nil, nil, err
		}
		read = append(read, store.Object[string]{Key: o.Key, ModRevision: o.ModRevision})
		if p == id {
			out = append(out, inheritedPrefix+"domain:"+o.Value.DomainID)
		} else {
			out = append(out, inheritedPrefix+"project:"+p)
		}
		p = o.Value.ParentID
	}
	return out, read, nil
}

// removeGrantsOps adds to t the removal of every grant matching keep == false, with their indexes.
func removeGrants(t *store.Txn, l []grant, match func(grant) bool) []grant {
	var removed []grant
	for _, g := range l {
		if match(g) {
			k, idx := g.keys()
			t.Remove(k)
			t.Remove(idx)
			removed = append(removed, g)
		}
	}
	return removed
}

// targetOf reads the target named by a URL: project p, domain d, or the system.
func (s *Service) checkTarget(ctx context.Context, kind, id string) (store.Object[string], error) {
	switch kind {
	case "project":
		o, err := s.getProject(ctx, id)
		return store.Object[string]{Key: o.Key, ModRevision: o.ModRevision}, err
	case "domain":
		if !validID(id) {
			return store.Object[string]{}, notFound("domain", id)
		}
		o, err := getOr404[domain](ctx, s.st, domainKey(id), "domain", id)
		return store.Object[string]{Key: o.Key, ModRevision: o.ModRevision}, err
	}
	return store.Object[string]{}, nil
}

func (s *Service) checkActor(ctx context.Context, kind, id string) (store.Object[string], error) {
	if kind == "user" {
		o, err := s.getUser(ctx, id)
		return store.Object[string]{Key: o.Key, ModRevision: o.ModRevision}, err
	}
	o, err := s.getGroup(ctx, id)
	return store.Object[string]{Key: o.Key, ModRevision: o.ModRevision}, err
}

// grantFromPath reads a grant from a URL such as /v3/domains/{t}/groups/{a}/roles/{r}.
func grantFromPath(r *http.Request, targetKind, actorKind string, inherited bool) grant {
	g := grant{targetKind: targetKind, targetID: r.PathValue("t"), actorKind: actorKind, actorID: r.PathValue("a"),
		roleID: r.PathValue("r"), inherited: inherited}
	if targetKind == "system" {
		g.targetID = "all"
	}
	return g
}

func (g grant) valid() bool {
	return validID(g.targetID) && validID(g.actorID) && (g.roleID == "" || validID(g.roleID))
}

func grantNotFound(g grant) *Error {
	return errf(http.StatusNotFound, "Could not find role assignment with role: %s, %s: %s, %s: %s.", g.roleID, g.actorKind, g.actorID, g.targetKind, g.targetID)
}

// putGrant is PUT .../{target}/{actor}/roles/{r}: target, actor and role must exist, and still
// exist when the grant is written. A domain-specific role can only be given on its domain's projects
// and on its domain.
func (s *Service) putGrant(w http.ResponseWriter, r *http.Request, targetKind, actorKind string, inh bool) error {
	if _, err := requireAdmin(r, "create_grant"); err != nil {
		return err
	}
	ctx := r.Context()
	g := grantFromPath(r, targetKind, actorKind, inh)
	err := retry(ctx, func() error {
		tgt, err := s.checkTarget(ctx, targetKind, g.targetID)
		if err != nil {
			return err
		}
		act, err := s.checkActor(ctx, actorKind, g.actorID)
		if err != nil {
			return err
		}
		ro, err := s.getRole(ctx, g.roleID)
		if err != nil {
			return err
		}
		if ro.Value.DomainID != "" {
			dom := g.targetID
			if targetKind == "project" {
				p, _ := s.getProject(ctx, g.targetID)
				dom = p.Value.DomainID
			}
			if targetKind == "system" || dom != ro.Value.DomainID {
				return errf(http.StatusForbidden, "Role %s is specific to domain %s; it can only be granted on that domain or its projects.", ro.Value.ID, ro.Value.DomainID)
			}
		}
		k, idx := g.keys()
		if _, err := store.Get[string](ctx, s.st, k); err == nil {
			return nil // already granted
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		if tgt.Key != "" {
			t.Unchanged(tgt.Key, tgt.ModRevision)
		}
		t.Unchanged(act.Key, act.ModRevision)
		t.Unchanged(ro.Key, ro.ModRevision)
		t.Create(k, "")
		t.Create(idx, "")
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("role granted", "target", g.target(), "actor", g.actor(), "role", g.roleID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkGrant is GET and HEAD .../{target}/{actor}/roles/{r}: 204 when granted.
func (s *Service) checkGrant(w http.ResponseWriter, r *http.Request, targetKind, actorKind string, inh bool) error {
	g := grantFromPath(r, targetKind, actorKind, inh)
	c, err := caller(r)
	if err != nil {
		return err
	}
	if !c.IsAdmin() && !(actorKind == "user" && g.actorID == c.UserID) {
		return forbidden("check_grant")
	}
	if !g.valid() {
		return grantNotFound(g)
	}
	k, _ := g.keys()
	if _, err := store.Get[string](r.Context(), s.st, k); errors.Is(err, store.ErrNotFound) {
		return grantNotFound(g)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteGrant is DELETE .../{target}/{actor}/roles/{r}. The tokens the grant may have gone into
// are revoked with it: the user's (or every member's) tokens scoped to the project, or all their
// tokens for a domain or system grant.
func (s *Service) deleteGrant(w http.ResponseWriter, r *http.Request, targetKind, actorKind string, inh bool) error {
	if _, err := requireAdmin(r, "revoke_grant"); err != nil {
		return err
	}
	ctx := r.Context()
	g := grantFromPath(r, targetKind, actorKind, inh)
	if !g.valid() {
		return grantNotFound(g)
	}
	err := retry(ctx, func() error {
		k, idx := g.keys()
		o, err := store.Get[string](ctx, s.st, k)
		if errors.Is(err, store.ErrNotFound) {
			return grantNotFound(g)
		} else if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(o.Key, o.ModRevision)
		t.Remove(idx)
		if err := s.revokeForGrants(ctx, t, []grant{g}); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("role revoked", "target", g.target(), "actor", g.actor(), "role", g.roleID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeForGrants adds to t the revocation of the tokens that removed grants may have gone into.
func (s *Service) revokeForGrants(ctx context.Context, t *store.Txn, gs []grant) error {
	type ut struct{ u, project string } // project "" means every token of the user
	todo := map[ut]bool{}
	for _, g := range gs {
		users := []string{g.actorID}
		if g.actorKind == "group" {
			keys, rev, err := s.st.Keys(ctx, groupMemberKey(g.actorID, ""))
			if err != nil {
				return err
			}
			t.PrefixUnchangedSince(groupMemberKey(g.actorID, ""), rev)
			users = keys
		}
		for _, u := range users {
			p := ""
			if g.targetKind == "project" && !g.inherited {
				p = g.targetID
			}
			todo[ut{u, p}] = true
		}
	}
	byUser := map[string][]string{}
	all := map[string]bool{}
	for k := range todo {
		if k.project == "" {
			all[k.u] = true
		}
		byUser[k.u] = append(byUser[k.u], k.project)
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		ps := byUser[u]
		var match func(string) bool
		if !all[u] {
			match = func(p string) bool {
				for _, x := range ps {
					if p == x {
						return true
					}
				}
				return false
			}
		}
		if err := s.revokeTokens(ctx, t, u, match); err != nil {
			return err
		}
	}
	return nil
}

// listGrantRoles is GET .../{target}/{actor}/roles: the roles granted directly.
func (s *Service) listGrantRoles(w http.ResponseWriter, r *http.Request, targetKind, actorKind string, inh bool) error {
	g := grantFromPath(r, targetKind, actorKind, inh)
	c, err := caller(r)
	if err != nil {
		return err
	}
	if !c.IsAdmin() && !(actorKind == "user" && g.actorID == c.UserID) {
		return forbidden("list_grants")
	}
	ctx := r.Context()
	if _, err := s.checkTarget(ctx, targetKind, g.targetID); err != nil {
		return err
	}
	if _, err := s.checkActor(ctx, actorKind, g.actorID); err != nil {
		return err
	}
	k, _ := g.keys() // with roleID "": the prefix of the pair's roles
	keys, _, err := s.st.Keys(ctx, k)
	if err != nil {
		return err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(keys))
	for _, rid := range keys {
		if ro, ok := all[rid]; ok {
			out = append(out, s.roleView(ro))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": s.listLinks(r, strings.TrimPrefix(r.URL.Path, "/v3/"))})
	return nil
}

// registerGrants mounts the grant routes of every target and actor, and OS-INHERIT's inherited
// grants on domains and projects.
func (s *Service) registerGrants(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	actors := []struct{ kind, path string }{{"user", "users"}, {"group", "groups"}}
	for _, tk := range []struct{ kind, path string }{{"project", "/v3/projects/{t}"}, {"domain", "/v3/domains/{t}"}, {"system", "/v3/system"}} {
		for _, ak := range actors {
			tk, ak := tk, ak
			base := tk.path + "/" + ak.path + "/{a}/roles"
			h("GET "+base, func(w http.ResponseWriter, r *http.Request) error {
				return s.listGrantRoles(w, r, tk.kind, ak.kind, false)
			})
			h("PUT "+base+"/{r}", func(w http.ResponseWriter, r *http.Request) error { return s.putGrant(w, r, tk.kind, ak.kind, false) })
			h("GET "+base+"/{r}", func(w http.ResponseWriter, r *http.Request) error { return s.checkGrant(w, r, tk.kind, ak.kind, false) })
			h("DELETE "+base+"/{r}", func(w http.ResponseWriter, r *http.Request) error {
				return s.deleteGrant(w, r, tk.kind, ak.kind, false)
			})
		}
	}
	for _, tk := range []struct{ kind, path string }{{"project", "/v3/OS-INHERIT/projects/{t}"}, {"domain", "/v3/OS-INHERIT/domains/{t}"}} {
		for _, ak := range actors {
			tk, ak := tk, ak
			base := tk.path + "/" + ak.path + "/{a}/roles"
			h("GET "+base+"/inherited_to_projects", func(w http.ResponseWriter, r *http.Request) error {
				return s.listGrantRoles(w, r, tk.kind, ak.kind, true)
			})
			one := base + "/{r}/inherited_to_projects"
			h("PUT "+one, func(w http.ResponseWriter, r *http.Request) error { return s.putGrant(w, r, tk.kind, ak.kind, true) })
			h("GET "+one, func(w http.ResponseWriter, r *http.Request) error { return s.checkGrant(w, r, tk.kind, ak.kind, true) })
			h("DELETE "+one, func(w http.ResponseWriter, r *http.Request) error { return s.deleteGrant(w, r, tk.kind, ak.kind, true) })
		}
	}
}

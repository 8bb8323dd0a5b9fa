package keystone

import (
	"context"
	"net/http"
	"sort"

	"github.com/vflink/vflink/internal/store"
)

// selfOrAdmin checks the caller is user u or an admin.
func selfOrAdmin(r *http.Request, u, action string) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	if c.UserID != u && !c.IsAdmin() {
		return forbidden(action)
	}
	return nil
}

// assignmentEntry is one row of GET /v3/role_assignments.
type assignmentEntry struct {
	grant
	viaGroup string // effective: the group the user has it through
	prior    string // effective: the role that implied this one
	from     *grant // effective: the inherited grant this one comes from
}

func (s *Service) assignmentLink(g grant) string {
	if g.inherited {
		return s.link("OS-INHERIT", g.targetKind+"s", g.targetID, g.actorKind+"s", g.actorID, "roles", g.roleID, "inherited_to_projects")
	}
	if g.targetKind == "system" {
		return s.link("system", g.actorKind+"s", g.actorID, "roles", g.roleID)
	}
	return s.link(g.targetKind+"s", g.targetID, g.actorKind+"s", g.actorID, "roles", g.roleID)
}

// listRoleAssignments is GET /v3/role_assignments with Keystone's filters: user.id, group.id,
// role.id, scope.project.id, scope.domain.id, scope.system, effective and include_names. An admin
// sees all; any user may list its own (user.id = itself).
func (s *Service) listRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	fu, fg, fr := q.Get("user.id"), q.Get("group.id"), q.Get("role.id")
	fp, fd, fs := q.Get("scope.project.id"), q.Get("scope.domain.id"), q.Has("scope.system")
	if !c.IsAdmin() && fu != c.UserID {
		return forbidden("list_role_assignments")
	}
	effective := q.Has("effective") && boolParam(q.Get("effective"))
	if effective && fg != "" {
		return errf(http.StatusBadRequest, "Combining effective and group filter will always result in an empty list.")
	}
	if fp != "" && fd != "" || (fs && (fp != "" || fd != "")) {
		return errf(http.StatusBadRequest, "Specify one scope filter at most: scope.project.id, scope.domain.id or scope.system.")
	}
	fi := q.Get("scope.OS-INHERIT:inherited_to")
	if q.Has("scope.OS-INHERIT:inherited_to") && fi != "projects" {
		return errf(http.StatusBadRequest, "scope.OS-INHERIT:inherited_to=%q: the only value is \"projects\".", fi)
	}
	ctx := r.Context()
	grants, err := s.allGrants(ctx)
	if err != nil {
		return err
	}
	var rows []assignmentEntry
	if effective {
		if rows, err = s.effectiveRows(ctx, grants); err != nil {
			return err
		}
	} else {
		for _, g := range grants {
			rows = append(rows, assignmentEntry{grant: g})
		}
	}
	names := q.Has("include_names") && boolParam(q.Get("include_names"))
	nm := &namer{s: s, ctx: ctx, cache: map[string]map[string]any{}}
	out := make([]map[string]any, 0, len(rows))
	for _, a := range rows {
		if (fu != "" && (a.actorKind != "user" || a.actorID != fu)) || (fg != "" && (a.actorKind != "group" || a.actorID != fg)) ||
			(fr != "" && a.roleID != fr) || (fp != "" && (a.targetKind != "project" || a.targetID != fp)) ||
			(fd != "" && (a.targetKind != "domain" || a.targetID != fd)) || (fs && a.targetKind != "system") ||
			(fi != "" && !a.inherited) {
			continue
		}
		ro := map[string]any{"id": a.roleID}
		actor := map[string]any{"id": a.actorID}
		var scope map[string]any
		if a.targetKind == "system" {
			scope = map[string]any{"system": map[string]any{"all": true}}
		} else {
			scope = map[string]any{a.targetKind: map[string]any{"id": a.targetID}}
			if a.inherited {
				scope["OS-INHERIT:inherited_to"] = "projects"
			}
		}
		if names {
			if err := nm.fill(ro, actor, scope, a.grant); err != nil {
				return err
			}
		}
		links := map[string]any{}
		src := a.grant
		if a.from != nil {
			src = *a.from
		}
		if a.viaGroup != "" {
			src.actorKind, src.actorID = "group", a.viaGroup
			links["membership"] = s.link("groups", a.viaGroup, "users", a.actorID)
		}
		if a.prior != "" {
			src.roleID = a.prior
			links["prior_role"] = s.link("roles", a.prior)
		}
		links["assignment"] = s.assignmentLink(src)
		out = append(out, map[string]any{"role": ro, a.actorKind: actor, "scope": scope, "links": links})
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": s.listLinks(r, "role_assignments")})
	return nil
}

// effectiveRows expands group grants into their members' and adds implied roles; domain-specific
// roles are dropped (they never take effect themselves).
func (s *Service) effectiveRows(ctx context.Context, grants []grant) ([]assignmentEntry, error) {
	rules, _, err := s.impliedRules(ctx)
	if err != nil {
		return nil, err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return nil, err
	}
	// inherited grants become grants on the projects below their target
	projects, _, err := store.List[project](ctx, s.st, "keystone/projects/")
	if err != nil {
		return nil, err
	}
	var expanded []assignmentEntry
	for _, g := range grants {
		if !g.inherited {
			expanded = append(expanded, assignmentEntry{grant: g})
			continue
		}
		from := g
		for _, p := range projects {
			if (g.targetKind == "domain" && p.Value.DomainID == g.targetID) || (g.targetKind == "project" && below(projects, p.Value, g.targetID)) {
				x := g
				x.targetKind, x.targetID, x.inherited = "project", p.Value.ID, false
				expanded = append(expanded, assignmentEntry{grant: x, from: &from})
			}
		}
	}
	var direct []assignmentEntry
	for _, e := range expanded {
		g := e.grant
		if g.actorKind == "user" {
			direct = append(direct, e)
			continue
		}
		members, _, err := s.st.Keys(ctx, groupMemberKey(g.actorID, ""))
		if err != nil {
			return nil, err
		}
		for _, u := range members {
			x := e
			x.viaGroup = g.actorID
			x.actorKind, x.actorID = "user", u
			direct = append(direct, x)
		}
	}
	var out []assignmentEntry
	seen := map[string]bool{}
	add := func(e assignmentEntry) {
		k := e.target() + "|" + e.actor() + "|" + e.roleID
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, e)
	}
	for _, e := range direct {
		if ro, ok := all[e.roleID]; ok && ro.DomainID == "" {
			add(e)
		}
		// the roles implied, transitively
		stack := append([]string(nil), rules[e.roleID]...)
		visited := map[string]bool{e.roleID: true}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[id] {
				continue
			}
			visited[id] = true
			if ro, ok := all[id]; ok && ro.DomainID == "" {
				x := e
				x.roleID, x.prior = id, e.roleID
				add(x)
			}
			stack = append(stack, rules[id]...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].prior == "" && out[j].prior != "" })
	return out, nil
}

// namer adds names (and domains) to role assignment rows for include_names.
type namer struct {
	s     *Service
	ctx   context.Context
	cache map[string]map[string]any
}

func (n *namer) domainRef(id string) (map[string]any, error) {
	if d, ok := n.cache["d:"+id]; ok {
		return d, nil
	}
	d, err := n.s.domainRefView(n.ctx, id)
	if err != nil {
		return nil, err
	}
	m := map[string]any{"id": d["id"], "name": d["name"]}
	n.cache["d:"+id] = m
	return m, nil
}

func (n *namer) fill(ro, actor, scope map[string]any, g grant) error {
	if o, err := store.Get[role](n.ctx, n.s.st, roleKey(g.roleID)); err == nil {
		ro["name"] = o.Value.Name
		if o.Value.DomainID != "" {
			if ro["domain"], err = n.domainRef(o.Value.DomainID); err != nil {
				return err
			}
		}
	}
	var err error
	switch g.actorKind {
	case "user":
		if o, e := store.Get[user](n.ctx, n.s.st, userKey(g.actorID)); e == nil {
			actor["name"] = o.Value.Name
			actor["domain"], err = n.domainRef(o.Value.DomainID)
		}
	case "group":
		if o, e := store.Get[group](n.ctx, n.s.st, groupKey(g.actorID)); e == nil {
			actor["name"] = o.Value.Name
			actor["domain"], err = n.domainRef(o.Value.DomainID)
		}
	}
	if err != nil {
		return err
	}
	switch g.targetKind {
	case "project":
		if o, e := store.Get[project](n.ctx, n.s.st, projectKey(g.targetID)); e == nil {
			p := scope["project"].(map[string]any)
			p["name"] = o.Value.Name
			p["domain"], err = n.domainRef(o.Value.DomainID)
		}
	case "domain":
		if o, e := store.Get[domain](n.ctx, n.s.st, domainKey(g.targetID)); e == nil {
			scope["domain"].(map[string]any)["name"] = o.Value.Name
		}
	case "system":
		scope["system"].(map[string]any)["name"] = "all"
	}
	return err
}

// below reports whether project p is in the subtree under project ancestor (not ancestor itself).
func below(projects []store.Object[project], p project, ancestor string) bool {
	byID := make(map[string]project, len(projects))
	for _, o := range projects {
		byID[o.Value.ID] = o.Value
	}
	for cur, hops := p.ParentID, 0; cur != "" && hops < 64; hops++ {
		if cur == ancestor {
			return true
		}
		cur = byID[cur].ParentID
	}
	return false
}

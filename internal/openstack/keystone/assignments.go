package keystone

import (
	"errors"
	"net/http"
	"path"
	"strings"

	"github.com/vflink/vflink/internal/store"
)

// assignRole is PUT /v3/projects/{p}/users/{u}/roles/{r}: the project, user and role must exist,
// and still exist when the assignment is written.
func (s *Service) assignRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_grant"); err != nil {
		return err
	}
	ctx := r.Context()
	pid, uid, rid := r.PathValue("p"), r.PathValue("u"), r.PathValue("r")
	err := retry(ctx, func() error {
		p, err := s.getProject(ctx, pid)
		if err != nil {
			return err
		}
		u, err := s.getUser(ctx, uid)
		if err != nil {
			return err
		}
		ro, err := s.getRole(ctx, rid)
		if err != nil {
			return err
		}
		if _, err := store.Get[string](ctx, s.st, assignmentKey(pid, uid, rid)); err == nil {
			return nil // already assigned
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(projectKey(pid), p.ModRevision)
		t.Unchanged(userKey(uid), u.ModRevision)
		t.Unchanged(roleKey(rid), ro.ModRevision)
		t.Create(assignmentKey(pid, uid, rid), "")
		t.Create(userAssignmentKey(uid, pid, rid), "")
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("role assigned", "project", pid, "user", uid, "role", rid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

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

func assignmentNotFound(p, u, r string) *Error {
	return errf(http.StatusNotFound, "Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.", r, u, p)
}

// checkAssignment is GET and HEAD /v3/projects/{p}/users/{u}/roles/{r}: 204 when assigned.
func (s *Service) checkAssignment(w http.ResponseWriter, r *http.Request) error {
	pid, uid, rid := r.PathValue("p"), r.PathValue("u"), r.PathValue("r")
	if err := selfOrAdmin(r, uid, "check_grant"); err != nil {
		return err
	}
	if !validID(pid) || !validID(uid) || !validID(rid) {
		return assignmentNotFound(pid, uid, rid)
	}
	if _, err := store.Get[string](r.Context(), s.st, assignmentKey(pid, uid, rid)); errors.Is(err, store.ErrNotFound) {
		return assignmentNotFound(pid, uid, rid)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unassignRole is DELETE /v3/projects/{p}/users/{u}/roles/{r}; the user's tokens scoped to the
// project are revoked with it, as their roles changed.
func (s *Service) unassignRole(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "revoke_grant"); err != nil {
		return err
	}
	ctx := r.Context()
	pid, uid, rid := r.PathValue("p"), r.PathValue("u"), r.PathValue("r")
	if !validID(pid) || !validID(uid) || !validID(rid) {
		return assignmentNotFound(pid, uid, rid)
	}
	err := retry(ctx, func() error {
		o, err := store.Get[string](ctx, s.st, assignmentKey(pid, uid, rid))
		if errors.Is(err, store.ErrNotFound) {
			return assignmentNotFound(pid, uid, rid)
		} else if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(o.Key, o.ModRevision)
		t.Remove(userAssignmentKey(uid, pid, rid))
		if err := s.revokeTokens(ctx, t, uid, func(p string) bool { return p == pid }); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("role unassigned", "project", pid, "user", uid, "role", rid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listProjectUserRoles is GET /v3/projects/{p}/users/{u}/roles.
func (s *Service) listProjectUserRoles(w http.ResponseWriter, r *http.Request) error {
	pid, uid := r.PathValue("p"), r.PathValue("u")
	if err := selfOrAdmin(r, uid, "list_grants"); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.getProject(ctx, pid); err != nil {
		return err
	}
	if _, err := s.getUser(ctx, uid); err != nil {
		return err
	}
	keys, _, err := s.st.Keys(ctx, assignmentKey(pid, uid, ""))
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
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": s.listLinks(r, "projects/"+pid+"/users/"+uid+"/roles")})
	return nil
}

// listRoleAssignments is GET /v3/role_assignments (?user.id=, ?scope.project.id=, ?role.id=,
// ?include_names). An admin sees all; any user may list its own (user.id = itself).
func (s *Service) listRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	fu, fp, fr := q.Get("user.id"), q.Get("scope.project.id"), q.Get("role.id")
	if !c.IsAdmin() && fu != c.UserID {
		return forbidden("list_role_assignments")
	}
	if (fu != "" && !validID(fu)) || (fp != "" && !validID(fp)) {
		writeJSON(w, http.StatusOK, map[string]any{"role_assignments": []any{}, "links": s.listLinks(r, "role_assignments")})
		return nil
	}
	for k := range q {
		if strings.HasPrefix(k, "group.") || strings.HasPrefix(k, "scope.domain.") || strings.HasPrefix(k, "scope.system") {
			writeJSON(w, http.StatusOK, map[string]any{"role_assignments": []any{}, "links": s.listLinks(r, "role_assignments")})
			return nil // only user roles on projects exist here
		}
	}
	ctx := r.Context()
	type asg struct{ p, u, r string }
	var l []asg
	switch {
	case fu != "":
		keys, _, err := s.st.Keys(ctx, userAssignments(fu))
		if err != nil {
			return err
		}
		for _, k := range keys {
			p, ro := path.Split(k)
			l = append(l, asg{path.Clean(p), fu, ro})
		}
	default:
		prefix := "keystone/assignments/"
		if fp != "" {
			prefix = projectAssignments(fp)
		}
		keys, _, err := s.st.Keys(ctx, prefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			parts := strings.Split(strings.TrimPrefix(prefix+k, "keystone/assignments/"), "/")
			if len(parts) == 3 {
				l = append(l, asg{parts[0], parts[1], parts[2]})
			}
		}
	}
	names := q.Has("include_names") && boolParam(q.Get("include_names"))
	var roles map[string]role
	if names {
		if roles, err = s.rolesByID(ctx); err != nil {
			return err
		}
	}
	domains := map[string]map[string]string{}
	domainOf := func(id string) (map[string]string, error) {
		if d, ok := domains[id]; ok {
			return d, nil
		}
		d, err := s.domainRefView(ctx, id)
		domains[id] = d
		return d, err
	}
	out := make([]map[string]any, 0, len(l))
	for _, a := range l {
		if (fp != "" && a.p != fp) || (fr != "" && a.r != fr) {
			continue
		}
		ro := map[string]any{"id": a.r}
		us := map[string]any{"id": a.u}
		pr := map[string]any{"id": a.p}
		if names {
			ro["name"] = roles[a.r].Name
			if u, err := store.Get[user](ctx, s.st, userKey(a.u)); err == nil {
				if us["domain"], err = domainOf(u.Value.DomainID); err != nil {
					return err
				}
				us["name"] = u.Value.Name
			}
			if p, err := store.Get[project](ctx, s.st, projectKey(a.p)); err == nil {
				if pr["domain"], err = domainOf(p.Value.DomainID); err != nil {
					return err
				}
				pr["name"] = p.Value.Name
			}
		}
		out = append(out, map[string]any{
			"role": ro, "user": us, "scope": map[string]any{"project": pr},
			"links": map[string]any{"assignment": s.link("projects", a.p, "users", a.u, "roles", a.r)},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": s.listLinks(r, "role_assignments")})
	return nil
}

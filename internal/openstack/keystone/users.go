package keystone

import (
	"context"
	"errors"
	"net/http"
	"path"
	"sort"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/store"
)

// userInput is a decoded user body; the *Given flags say which fields were present.
type userInput struct {
	u                                                   user
	password                                            string
	nameGiven, domainGiven, passwordGiven, enabledGiven bool
	defaultProjectGiven, descriptionGiven, emailGiven   bool
	extra                                               map[string]any
}

func parseUser(b []byte) (userInput, error) {
	var in userInput
	a, err := parseEnvelope(b, "user")
	if err != nil {
		return in, err
	}
	if in.u.Name, in.nameGiven, err = a.name("name", 255); err != nil {
		return in, err
	}
	if in.u.DomainID, in.domainGiven, err = a.str("domain_id", 64, false); err != nil {
		return in, err
	}
	if in.password, in.passwordGiven, err = a.secret("password", true); err != nil {
		return in, err
	}
	if in.u.Enabled, in.enabledGiven, err = a.boolean("enabled"); err != nil {
		return in, err
	}
	if in.u.DefaultProjectID, in.defaultProjectGiven, err = a.str("default_project_id", 64, true); err != nil {
		return in, err
	}
	if in.u.Description, in.descriptionGiven, err = a.str("description", 255, true); err != nil {
		return in, err
	}
	if in.u.Email, in.emailGiven, err = a.str("email", 255, true); err != nil {
		return in, err
	}
	if err := a.ignoreObject("options"); err != nil {
		return in, err
	}
	a.raw("id") // read-only: ignored, as Keystone does
	in.extra, err = a.extras()
	return in, err
}

// mergeExtra sets the attributes of in over old (nil when both are empty).
func mergeExtra(old, in map[string]any) map[string]any {
	if len(in) == 0 {
		return old
	}
	out := make(map[string]any, len(old)+len(in))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (s *Service) hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", nil // no password: the user cannot log in
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.PasswordCost)
	return string(h), err
}

// checkDefaultProject checks that a default_project_id names a project.
func (s *Service) checkDefaultProject(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if !validID(id) {
		return invalid("user.default_project_id", "project %q does not exist.", id)
	}
	if _, err := store.Get[project](ctx, s.st, projectKey(id)); errors.Is(err, store.ErrNotFound) {
		return invalid("user.default_project_id", "project %q does not exist.", id)
	} else if err != nil {
		return err
	}
	return nil
}

// createUser is POST /v3/users.
func (s *Service) createUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_user"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseUser(b)
	if err != nil {
		return err
	}
	if !in.nameGiven {
		return invalid("user", "'name' is a required property.")
	}
	u := in.u
	u.Extra = in.extra
	if !in.domainGiven {
		u.DomainID = DefaultDomainID
	}
	if !in.enabledGiven {
		u.Enabled = true
	}
	ctx := r.Context()
	d, err := s.requireDomain(ctx, "user.domain_id", u.DomainID)
	if err != nil {
		return err
	}
	if err := s.checkDefaultProject(ctx, u.DefaultProjectID); err != nil {
		return err
	}
	if u.PasswordHash, err = s.hashPassword(in.password); err != nil {
		return err
	}
	u.ID = newID()
	t := s.st.Txn()
	t.Create(userNameKey(u.DomainID, u.Name), u.ID)
	t.Create(userKey(u.ID), u)
	t.Unchanged(domainKey(d.Value.ID), d.ModRevision)
	if _, err := t.Commit(ctx); err != nil {
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == userNameKey(u.DomainID, u.Name) {
			return duplicate("user", u.Name, u.DomainID)
		}
		return err
	}
	s.log.Info("user created", "user", u.ID, "user_name", u.Name, "domain", u.DomainID)
	writeJSON(w, http.StatusCreated, map[string]any{"user": s.userView(u)})
	return nil
}

// listUsers is GET /v3/users (?name=, ?domain_id=, ?enabled=).
func (s *Service) listUsers(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "list_users"); err != nil {
		return err
	}
	q := r.URL.Query()
	l, _, err := store.List[user](r.Context(), s.st, "keystone/users/")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(l))
	for _, o := range l {
		u := o.Value
		if (q.Has("name") && u.Name != q.Get("name")) || (q.Has("domain_id") && u.DomainID != q.Get("domain_id")) ||
			(q.Has("enabled") && boolParam(q.Get("enabled")) != u.Enabled) {
			continue
		}
		out = append(out, s.userView(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "links": s.listLinks(r, "users")})
	return nil
}

func boolParam(v string) bool {
	switch v {
	case "0", "false", "False", "FALSE", "no", "off":
		return false
	}
	return true
}

// getUser reads user id, or 404.
func (s *Service) getUser(ctx context.Context, id string) (store.Object[user], error) {
	if !validID(id) {
		return store.Object[user]{}, notFound("user", id)
	}
	return getOr404[user](ctx, s.st, userKey(id), "user", id)
}

// showUser is GET /v3/users/{id}: an admin, or the user itself.
func (s *Service) showUser(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if id != c.UserID && !c.IsAdmin() {
		return forbidden("get_user")
	}
	o, err := s.getUser(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": s.userView(o.Value)})
	return nil
}

// updateUser is PATCH /v3/users/{id}. A new password or disabling the user revokes its tokens.
func (s *Service) updateUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "update_user"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	in, err := parseUser(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if in.defaultProjectGiven {
		if err := s.checkDefaultProject(ctx, in.u.DefaultProjectID); err != nil {
			return err
		}
	}
	var hash string
	if in.passwordGiven {
		if hash, err = s.hashPassword(in.password); err != nil {
			return err
		}
	}
	var u user
	err = retry(ctx, func() error {
		o, err := s.getUser(ctx, id)
		if err != nil {
			return err
		}
		u = o.Value
		if in.domainGiven && in.u.DomainID != u.DomainID {
			return invalid("user.domain_id", "%q: a user cannot move to another domain (it is in %q).", in.u.DomainID, u.DomainID)
		}
		t := s.st.Txn()
		if in.nameGiven && in.u.Name != u.Name {
			t.Remove(userNameKey(u.DomainID, u.Name))
			t.Create(userNameKey(u.DomainID, in.u.Name), u.ID)
			u.Name = in.u.Name
		}
		revoke := false
		if in.passwordGiven {
			u.PasswordHash, revoke = hash, true
		}
		if in.enabledGiven {
			revoke = revoke || (u.Enabled && !in.u.Enabled)
			u.Enabled = in.u.Enabled
		}
		if in.defaultProjectGiven {
			u.DefaultProjectID = in.u.DefaultProjectID
		}
		if in.descriptionGiven {
			u.Description = in.u.Description
		}
		if in.emailGiven {
			u.Email = in.u.Email
		}
		u.Extra = mergeExtra(u.Extra, in.extra)
		t.Update(userKey(u.ID), u, o.ModRevision)
		if revoke {
			if err := s.revokeTokens(ctx, t, u.ID, nil); err != nil {
				return err
			}
		}
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == userNameKey(u.DomainID, in.u.Name) && ce.Reason == store.Exists {
			return duplicate("user", in.u.Name, u.DomainID)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("user updated", "user", u.ID, "password_changed", in.passwordGiven)
	writeJSON(w, http.StatusOK, map[string]any{"user": s.userView(u)})
	return nil
}

// revokeTokens adds to t the removal of user u's tokens whose project matches (all when match is
// nil), and a compare that fails if the user got a new token since they were listed.
func (s *Service) revokeTokens(ctx context.Context, t *store.Txn, u string, match func(project string) bool) error {
	l, rev, err := store.List[string](ctx, s.st, userTokens(u))
	if err != nil {
		return err
	}
	t.PrefixUnchangedSince(userTokens(u), rev)
	for _, o := range l {
		if match == nil || match(o.Value) {
			t.Remove(tokenKey(path.Base(o.Key)))
			t.Remove(o.Key)
		}
	}
	return nil
}

// userDeleteOps adds to t the removal of user o: its name, role assignments, group memberships
// and tokens.
func (s *Service) userDeleteOps(ctx context.Context, t *store.Txn, o store.Object[user], grants []grant) error {
	id := o.Value.ID
	t.Delete(userKey(id), o.ModRevision)
	t.Remove(userNameKey(o.Value.DomainID, o.Value.Name))
	keys, rev, err := s.st.Keys(ctx, userAssignments(id))
	if err != nil {
		return err
	}
	t.PrefixUnchangedSince(userAssignments(id), rev)
	for _, k := range keys { // <project>/<role>
		p, ro := path.Split(k)
		t.Remove(assignmentKey(path.Clean(p), id, ro))
	}
	t.DeletePrefix(userAssignments(id))
	removeGrants(t, grants, func(g grant) bool {
		return g.actorKind == "user" && g.actorID == id && (g.targetKind != "project" || g.inherited)
	})
	groups, _, err := s.st.Keys(ctx, userGroupKey(id, ""))
	if err != nil {
		return err
	}
	for _, g := range groups {
		t.Remove(groupMemberKey(g, id))
	}
	t.DeletePrefix(userGroupKey(id, ""))
	if err := s.trustDeleteOps(ctx, t, func(tr trust) bool { return tr.TrustorID == id || tr.TrusteeID == id }); err != nil {
		return err
	}
	acs, err := s.userAppCreds(ctx, id)
	if err != nil {
		return err
	}
	for _, a := range acs {
		t.Remove(appCredKey(a.ID))
		t.Remove(appCredNameKey(id, a.Name))
	}
	return s.revokeTokens(ctx, t, id, nil)
}

// deleteUser is DELETE /v3/users/{id}: the user, its name, role assignments, memberships and
// tokens go together.
func (s *Service) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "delete_user"); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	err := retry(ctx, func() error {
		o, err := s.getUser(ctx, id)
		if err != nil {
			return err
		}
		grants, err := s.allGrants(ctx)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		if err := s.userDeleteOps(ctx, t, o, grants); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("user deleted", "user", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// projectsOf returns the projects user u has a role on, directly or through a group, by name.
func (s *Service) projectsOf(ctx context.Context, u string) ([]project, error) {
	ids, err := s.targetsOf(ctx, u, "project")
	if err != nil {
		return nil, err
	}
	var out []project
	for _, p := range ids {
		o, err := store.Get[project](ctx, s.st, projectKey(p))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, o.Value)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// userProjects is GET /v3/users/{id}/projects: an admin, or the user itself.
func (s *Service) userProjects(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if id != c.UserID && !c.IsAdmin() {
		return forbidden("list_user_projects")
	}
	if _, err := s.getUser(r.Context(), id); err != nil {
		return err
	}
	ps, err := s.projectsOf(r.Context(), id)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.projectView(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": s.listLinks(r, "users/"+id+"/projects")})
	return nil
}

// changePassword is POST /v3/users/{id}/password: a user's password changes, given the original
// one. Wrong originals count as failed logins. All the user's tokens are revoked.
func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) error {
	// as in Keystone, the original password is the authorisation (no policy check): whoever
	// knows it may change it, and wrong guesses count as failed logins of the user
	if _, err := caller(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	a, err := parseEnvelope(b, "user")
	if err != nil {
		return err
	}
	pw, ok, err := a.secret("password", false)
	if err != nil {
		return err
	}
	if !ok || pw == "" {
		return invalid("user", "'password' is a required property.")
	}
	orig, ok, err := a.secret("original_password", false)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("user", "'original_password' is a required property.")
	}
	if err := a.done(); err != nil {
		return err
	}
	ctx := r.Context()
	o, err := s.getUser(ctx, id)
	if err != nil {
		return err
	}
	key := "user\x00" + id
	if wait, ok := s.limiter.attempt(key, s.cfg.Now()); !ok {
		return tooManyFailures(wait)
	}
	if !s.checkPassword(o.Value.PasswordHash, orig) {
		s.log.Info("password change refused: wrong original password", "user", id, "remote", r.RemoteAddr)
		return errUnauthorized
	}
	s.limiter.succeeded(key)
	hash, err := s.hashPassword(pw)
	if err != nil {
		return err
	}
	err = retry(ctx, func() error {
		cur, err := s.getUser(ctx, id)
		if err != nil {
			return err
		}
		if cur.Value.PasswordHash != o.Value.PasswordHash {
			return errUnauthorized // changed meanwhile: the original is no longer proven
		}
		u := cur.Value
		u.PasswordHash = hash
		t := s.st.Txn()
		t.Update(userKey(id), u, cur.ModRevision)
		if err := s.revokeTokens(ctx, t, id, nil); err != nil {
			return err
		}
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("password changed", "user", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package keystone

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/vflink/vflink/internal/store"
)

// Trusts (OS-TRUST): a trustor delegates some of its roles on a project to a trustee, who logs in
// with scope {"OS-TRUST:trust": {"id": ...}} to a token on that project with those roles, as the
// trustor (impersonation) or as itself. A trust login checks again that the trustor holds every
// role; remaining_uses counts logins down. Redelegation is not supported.
//
//	keystone/trusts/<id>    trust

type trust struct {
	ID            string     `json:"id"`
	TrustorID     string     `json:"trustor_user_id"`
	TrusteeID     string     `json:"trustee_user_id"`
	ProjectID     string     `json:"project_id,omitempty"`
	Impersonation bool       `json:"impersonation"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	RemainingUses *int       `json:"remaining_uses,omitempty"`
	Roles         []string   `json:"roles"`
}

func trustKey(id string) string { return "keystone/trusts/" + id }

func (s *Service) trustView(t trust, all map[string]role, withRoles bool) map[string]any {
	v := map[string]any{
		"id": t.ID, "trustor_user_id": t.TrustorID, "trustee_user_id": t.TrusteeID, "project_id": nil,
		"impersonation": t.Impersonation, "expires_at": nil, "remaining_uses": nil,
		"allow_redelegation": false, "redelegation_count": 0,
		"links": map[string]any{"self": s.link("OS-TRUST", "trusts", t.ID)},
	}
	if t.ProjectID != "" {
		v["project_id"] = t.ProjectID
	}
	if t.ExpiresAt != nil {
		v["expires_at"] = timestamp(*t.ExpiresAt)
	}
	if t.RemainingUses != nil {
		v["remaining_uses"] = *t.RemainingUses
	}
	if withRoles {
		roles := []map[string]any{}
		for _, id := range t.Roles {
			if ro, ok := all[id]; ok {
				roles = append(roles, s.roleView(ro))
			}
		}
		v["roles"] = roles
		v["roles_links"] = map[string]any{"self": s.link("OS-TRUST", "trusts", t.ID, "roles"), "next": nil, "previous": nil}
	}
	return v
}

// createTrust is POST /v3/OS-TRUST/trusts: the caller must be the trustor and hold the roles.
func (s *Service) createTrust(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	tok, err := s.callerToken(r)
	if err != nil {
		return err
	}
	if tok.TrustID != "" {
		return errf(http.StatusForbidden, "Redelegation is not supported: a trust-scoped token cannot create trusts.")
	}
	if err := s.restrictedAppCred(ctx, tok); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	a, err := parseEnvelope(b, "trust")
	if err != nil {
		return err
	}
	var t trust
	var ok bool
	if t.TrustorID, ok, err = a.str("trustor_user_id", 64, false); err != nil {
		return err
	} else if !ok {
		return invalid("trust", "'trustor_user_id' is a required property.")
	}
	if t.TrusteeID, ok, err = a.str("trustee_user_id", 64, false); err != nil {
		return err
	} else if !ok {
		return invalid("trust", "'trustee_user_id' is a required property.")
	}
	if t.Impersonation, ok, err = a.boolean("impersonation"); err != nil {
		return err
	} else if !ok {
		return invalid("trust", "'impersonation' is a required property (true or false).")
	}
	if t.ProjectID, _, err = a.str("project_id", 64, true); err != nil {
		return err
	}
	exp, _, err := a.str("expires_at", 64, true)
	if err != nil {
		return err
	}
	if exp != "" {
		e, ok := parseExpiry(exp)
		if !ok {
			return invalid("trust.expires_at", "%q is not a time like 2026-12-31T23:59:59.000000Z.", exp)
		}
		if !e.After(s.cfg.Now()) {
			return invalid("trust.expires_at", "%q is in the past.", exp)
		}
		t.ExpiresAt = &e
	}
	if raw, ok := a.raw("remaining_uses"); ok && !isNull(raw) {
		var n int
		if json.Unmarshal(raw, &n) != nil || n < 1 {
			return invalid("trust.remaining_uses", "%s is not an integer of at least 1 (or null).", clip(raw))
		}
		t.RemainingUses = &n
	}
	if redeleg, _, err := a.boolean("allow_redelegation"); err != nil {
		return err
	} else if redeleg {
		return errf(http.StatusForbidden, "Redelegation is not supported: allow_redelegation must be false.")
	}
	a.raw("redelegation_count")
	var refs []map[string]string
	if raw, ok := a.raw("roles"); ok && !isNull(raw) {
		if json.Unmarshal(raw, &refs) != nil {
			return invalid("trust.roles", "%s is not a list of {\"id\": ...} or {\"name\": ...}.", clip(raw))
		}
	}
	if err := a.done(); err != nil {
		return err
	}
	if t.ProjectID != "" && len(refs) == 0 {
		return errf(http.StatusForbidden, "At least one role should be specified for a trust on a project.")
	}
	if t.TrustorID != c.UserID {
		return errf(http.StatusForbidden, "The authenticated user should match the trustor (%s).", t.TrustorID)
	}
	if _, err := s.getUser(ctx, t.TrusteeID); err != nil {
		return err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return err
	}
	var held []role
	if t.ProjectID != "" {
		if _, err := s.getProject(ctx, t.ProjectID); err != nil {
			return err
		}
		if held, _, err = s.effectiveRoles(ctx, t.TrustorID, "project", t.ProjectID); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		id := ref["id"]
		if id == "" {
			for _, ro := range all {
				if ro.Name == ref["name"] && ro.DomainID == "" {
					id = ro.ID
				}
			}
		}
		if !slices.ContainsFunc(held, func(ro role) bool { return ro.ID == id }) {
			return errf(http.StatusNotFound, "Could not find role: %s (the trustor does not hold it on project %s).", cmpOr(ref["id"], ref["name"]), t.ProjectID)
		}
		t.Roles = append(t.Roles, id)
	}
	t.ID = newID()
	tx := s.st.Txn()
	tx.Create(trustKey(t.ID), t)
	if _, err := tx.Commit(ctx); err != nil {
		return err
	}
	s.log.Info("trust created", "trust", t.ID, "trustor", t.TrustorID, "trustee", t.TrusteeID, "project", t.ProjectID)
	writeJSON(w, http.StatusCreated, map[string]any{"trust": s.trustView(t, all, true)})
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// visibleTrust reads a trust its trustor, its trustee or an admin may see.
func (s *Service) visibleTrust(r *http.Request, action string) (store.Object[trust], error) {
	c, err := caller(r)
	if err != nil {
		return store.Object[trust]{}, err
	}
	id := r.PathValue("id")
	if !validID(id) {
		return store.Object[trust]{}, notFound("trust", id)
	}
	o, err := getOr404[trust](r.Context(), s.st, trustKey(id), "trust", id)
	if err != nil {
		return o, err
	}
	if !c.IsAdmin() && c.UserID != o.Value.TrustorID && c.UserID != o.Value.TrusteeID {
		return o, errf(http.StatusForbidden, "You are not authorized to perform the requested action: identity:%s (the user has no relation to this trust).", action)
	}
	if o.Value.ExpiresAt != nil && !s.cfg.Now().Before(*o.Value.ExpiresAt) {
		return o, notFound("trust", id)
	}
	return o, nil
}

// listTrusts is GET /v3/OS-TRUST/trusts (?trustor_user_id=, ?trustee_user_id=): an admin lists
// any; a user only with a filter naming itself.
func (s *Service) listTrusts(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tr, te := q.Get("trustor_user_id"), q.Get("trustee_user_id")
	if !c.IsAdmin() && !((tr == c.UserID && tr != "") || (te == c.UserID && te != "")) {
		return forbidden("list_trusts")
	}
	ctx := r.Context()
	l, _, err := store.List[trust](ctx, s.st, "keystone/trusts/")
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, o := range l {
		t := o.Value
		if (tr != "" && t.TrustorID != tr) || (te != "" && t.TrusteeID != te) ||
			(t.ExpiresAt != nil && !s.cfg.Now().Before(*t.ExpiresAt)) {
			continue
		}
		out = append(out, s.trustView(t, nil, false))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"trusts": out, "links": s.listLinks(r, "OS-TRUST/trusts")})
	return nil
}

func (s *Service) showTrust(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleTrust(r, "get_trust")
	if err != nil {
		return err
	}
	all, err := s.rolesByID(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"trust": s.trustView(o.Value, all, true)})
	return nil
}

// deleteTrust is DELETE /v3/OS-TRUST/trusts/{id}: the trustor or an admin; the trust's tokens are
// revoked with it.
func (s *Service) deleteTrust(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleTrust(r, "delete_trust")
	if err != nil && !isNotFound(err) {
		return err
	}
	c, _ := caller(r)
	if err == nil && !c.IsAdmin() && c.UserID != o.Value.TrustorID {
		return forbidden("delete_trust")
	}
	if err != nil {
		return err
	}
	ctx := r.Context()
	t := s.st.Txn()
	t.Delete(o.Key, o.ModRevision)
	if _, err := t.Commit(ctx); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return notFound("trust", o.Value.ID)
		}
		return err
	}
	if err := s.revokeTrustTokens(ctx, o.Value.ID); err != nil {
		return err
	}
	s.log.Info("trust deleted", "trust", o.Value.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) revokeTrustTokens(ctx context.Context, id string) error {
	l, _, err := store.List[token](ctx, s.st, "keystone/tokens/")
	if err != nil {
		return err
	}
	for _, o := range l {
		if o.Value.TrustID == id {
			t := s.st.Txn()
			t.Remove(o.Key)
			t.Remove(userTokenKey(o.Value.UserID, o.Key[len(tokenKey("")):]))
			if _, err := t.Commit(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// trustRoles is GET /v3/OS-TRUST/trusts/{id}/roles and GET/HEAD .../roles/{role}.
func (s *Service) trustRoles(w http.ResponseWriter, r *http.Request) error {
	o, err := s.visibleTrust(r, "list_roles_for_trust")
	if err != nil {
		return err
	}
	all, err := s.rolesByID(r.Context())
	if err != nil {
		return err
	}
	if rid := r.PathValue("role"); rid != "" {
		ro, ok := all[rid]
		if !ok || !slices.Contains(o.Value.Roles, rid) {
			return errf(http.StatusNotFound, "Could not find role: %s (in trust %s).", rid, o.Value.ID)
		}
		writeJSON(w, http.StatusOK, map[string]any{"role": s.roleView(ro)})
		return nil
	}
	out := []map[string]any{}
	for _, id := range o.Value.Roles {
		if ro, ok := all[id]; ok {
			out = append(out, s.roleView(ro))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": s.listLinks(r, "OS-TRUST/trusts/"+o.Value.ID+"/roles")})
	return nil
}

// trustScope issues the token of a trust-scoped login by the trustee: on the trust's project with
// its roles, which the trustor must still hold; as the trustor when the trust impersonates.
func (s *Service) trustScope(ctx context.Context, trustID string, in *issueInput) error {
	if !validID(trustID) {
		return errUnauthorized
	}
	o, err := store.Get[trust](ctx, s.st, trustKey(trustID))
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized
	} else if err != nil {
		return err
	}
	t := o.Value
	if in.u.Value.ID != t.TrusteeID || (t.ExpiresAt != nil && !s.cfg.Now().Before(*t.ExpiresAt)) ||
		(t.RemainingUses != nil && *t.RemainingUses < 1) {
		return errUnauthorized
	}
	trustor, err := store.Get[user](ctx, s.st, userKey(t.TrustorID))
	if err != nil || !trustor.Value.Enabled {
		return errUnauthorized
	}
	in.read = append(in.read, store.Object[string]{Key: trustor.Key, ModRevision: trustor.ModRevision})
	in.trust = &o
	if t.ProjectID == "" {
		return nil
	}
	po, err := store.Get[project](ctx, s.st, projectKey(t.ProjectID))
	if err != nil {
		return errUnauthorized
	}
	sub := issueInput{u: trustor}
	if err := s.scopeProject(ctx, &sub, po); err != nil {
		return errUnauthorized
	}
	in.read = append(in.read, sub.read...)
	in.project = sub.project
	in.roles = nil
	for _, id := range t.Roles {
		i := slices.IndexFunc(sub.roles, func(ro role) bool { return ro.ID == id })
		if i < 0 {
			return errUnauthorized // the trustor lost the role
		}
		in.roles = append(in.roles, sub.roles[i])
	}
	if t.Impersonation {
		in.read = append(in.read, store.Object[string]{Key: in.u.Key, ModRevision: in.u.ModRevision}) // the trustee
		in.u = trustor
	}
	return nil
}

func (s *Service) registerTrusts(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v3/OS-TRUST/trusts", s.createTrust)
	h("GET /v3/OS-TRUST/trusts", s.listTrusts)
	h("GET /v3/OS-TRUST/trusts/{$}", s.listTrusts) // what tempest sends
	h("GET /v3/OS-TRUST/trusts/{id}", s.showTrust)
	h("DELETE /v3/OS-TRUST/trusts/{id}", s.deleteTrust)
	h("GET /v3/OS-TRUST/trusts/{id}/roles", s.trustRoles)
	h("GET /v3/OS-TRUST/trusts/{id}/roles/{role}", s.trustRoles)
}

// trustDeleteOps adds to t the removal of the trusts match selects.
func (s *Service) trustDeleteOps(ctx context.Context, t *store.Txn, match func(trust) bool) error {
	l, _, err := store.List[trust](ctx, s.st, "keystone/trusts/")
	if err != nil {
		return err
	}
	for _, o := range l {
		if match(o.Value) {
			t.Remove(o.Key)
		}
	}
	return nil
}

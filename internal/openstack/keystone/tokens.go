package keystone

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

// lookupToken reads the token plain stands for; store.ErrNotFound when it is unknown or expired.
func (s *Service) lookupToken(ctx context.Context, plain string) (store.Object[token], error) {
	if plain == "" || len(plain) > 1024 {
		return store.Object[token]{}, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	o, err := store.Get[token](ctx, s.st, tokenKey(hashToken(plain)))
	if err != nil {
		return o, err
	}
	if !s.cfg.Now().Before(o.Value.ExpiresAt) {
		return o, fmt.Errorf("token expired at %s: %w", timestamp(o.Value.ExpiresAt), store.ErrNotFound)
	}
	return o, nil
}

// Authenticate implements auth.Authenticator with the request's X-Auth-Token. An unscoped token
// gives a Context without a project. Missing, unknown, expired and revoked tokens give errors
// wrapping auth.ErrUnauthenticated; a store outage gives an error wrapping store.ErrUnavailable.
func (s *Service) Authenticate(r *http.Request) (*auth.Context, error) {
	plain := r.Header.Get("X-Auth-Token")
	if plain == "" {
		return nil, fmt.Errorf("no X-Auth-Token header: %w", auth.ErrUnauthenticated)
	}
	o, err := s.lookupToken(r.Context(), plain)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("the X-Auth-Token is invalid, expired or revoked: %w", auth.ErrUnauthenticated)
	} else if err != nil {
		return nil, err
	}
	c := &auth.Context{UserID: o.Value.UserID, ProjectID: o.Value.ProjectID, Roles: make([]string, 0, len(o.Value.Roles))}
	for _, ro := range o.Value.Roles {
		c.Roles = append(c.Roles, ro.Name)
	}
	return c, nil
}

// tokenBody renders a token as Keystone does.
func (s *Service) tokenBody(ctx context.Context, tok token, noCatalog bool) (map[string]any, error) {
	u, err := store.Get[user](ctx, s.st, userKey(tok.UserID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf(http.StatusNotFound, "Failed to validate token.")
	} else if err != nil {
		return nil, err
	}
	ud, err := s.domainRefView(ctx, u.Value.DomainID)
	if err != nil {
		return nil, err
	}
	audit := []string{tok.AuditID}
	if tok.ParentAuditID != "" {
		audit = append(audit, tok.ParentAuditID)
	}
	t := map[string]any{
		"methods":    tok.Methods,
		"user":       map[string]any{"id": u.Value.ID, "name": u.Value.Name, "domain": ud, "password_expires_at": nil},
		"audit_ids":  audit,
		"expires_at": timestamp(tok.ExpiresAt),
		"issued_at":  timestamp(tok.IssuedAt),
	}
	if tok.AppCredID != "" {
		ac := map[string]any{"id": tok.AppCredID, "restricted": true}
		if o, err := store.Get[appCred](ctx, s.st, appCredKey(tok.AppCredID)); err == nil {
			ac["name"], ac["restricted"] = o.Value.Name, !o.Value.Unrestricted
		}
		t["application_credential"] = ac
	}
	if tok.TrustID != "" {
		tr := map[string]any{"id": tok.TrustID, "links": map[string]any{"self": s.link("OS-TRUST", "trusts", tok.TrustID)}}
		if o, err := store.Get[trust](ctx, s.st, trustKey(tok.TrustID)); err == nil {
			tr["impersonation"] = o.Value.Impersonation
			tr["trustee_user"] = map[string]any{"id": o.Value.TrusteeID}
			tr["trustor_user"] = map[string]any{"id": o.Value.TrustorID}
		}
		t["OS-TRUST:trust"] = tr
	}
	roles := make([]map[string]string, 0, len(tok.Roles))
	for _, ro := range tok.Roles {
		roles = append(roles, map[string]string{"id": ro.ID, "name": ro.Name})
	}
	switch {
	case tok.ProjectID != "":
		p, err := store.Get[project](ctx, s.st, projectKey(tok.ProjectID))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(http.StatusNotFound, "Failed to validate token.")
		} else if err != nil {
			return nil, err
		}
		pd, err := s.domainRefView(ctx, p.Value.DomainID)
		if err != nil {
			return nil, err
		}
		t["project"] = map[string]any{"id": p.Value.ID, "name": p.Value.Name, "domain": pd}
		t["is_domain"] = false
	case tok.DomainID != "":
		d, err := s.domainRefView(ctx, tok.DomainID)
		if err != nil {
			return nil, err
		}
		t["domain"] = d
	default:
		return map[string]any{"token": t}, nil
	}
	t["roles"] = roles
	if !noCatalog {
		cat, err := s.catalog(ctx)
		if err != nil {
			return nil, err
		}
		t["catalog"] = cat
	}
	return map[string]any{"token": t}, nil
}

func (s *Service) domainRefView(ctx context.Context, id string) (map[string]string, error) {
	d, err := store.Get[domain](ctx, s.st, domainKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return map[string]string{"id": id, "name": ""}, nil
	} else if err != nil {
		return nil, err
	}
	return map[string]string{"id": d.Value.ID, "name": d.Value.Name}, nil
}

// catalog lists this server's services (IDs are stable digests of their types), then the
// services stored through the catalog API with their enabled endpoints.
func (s *Service) catalog(ctx context.Context) ([]map[string]any, error) {
	services := []struct{ typ, name, path string }{
		{"identity", "keystone", "/identity/v3"},
		{"network", "neutron", "/network"},
		{"compute", "nova", "/compute/v2.1"},
		{"image", "glance", "/image"},
	}
	out := make([]map[string]any, 0, len(services))
	for _, sv := range services {
		eps := make([]map[string]any, 0, 3)
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{
				"id": stableID("endpoint/" + sv.typ + "/" + iface), "interface": iface,
				"region": s.cfg.Region, "region_id": s.cfg.Region, "url": s.cfg.PublicURL + sv.path,
			})
		}
		out = append(out, map[string]any{"id": stableID("service/" + sv.typ), "type": sv.typ, "name": sv.name, "endpoints": eps})
	}
	stored, err := s.storedCatalog(ctx)
	if err != nil {
		return nil, err
	}
	return append(out, stored...), nil
}

func stableID(s string) string {
	sum := sha256.Sum256([]byte("vflink/" + s))
	return hex.EncodeToString(sum[:16])
}

// subjectToken reads X-Subject-Token and checks the caller may see it.
func (s *Service) subjectToken(r *http.Request, action string) (store.Object[token], string, error) {
	c, err := caller(r)
	if err != nil {
		return store.Object[token]{}, "", err
	}
	plain := r.Header.Get("X-Subject-Token")
	if plain == "" {
		return store.Object[token]{}, "", errf(http.StatusBadRequest, "The X-Subject-Token header is required.")
	}
	o, err := s.lookupToken(r.Context(), plain)
	if errors.Is(err, store.ErrNotFound) {
		return o, "", errf(http.StatusNotFound, "Failed to validate token.")
	} else if err != nil {
		return o, "", err
	}
	if o.Value.UserID != c.UserID && !c.IsAdmin() {
		return o, "", forbidden(action)
	}
	return o, plain, nil
}

// validateToken is GET /v3/auth/tokens.
func (s *Service) validateToken(w http.ResponseWriter, r *http.Request) error {
	o, plain, err := s.subjectToken(r, "validate_token")
	if err != nil {
		return err
	}
	body, err := s.tokenBody(r.Context(), o.Value, r.URL.Query().Has("nocatalog"))
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", plain)
	writeJSON(w, http.StatusOK, body)
	return nil
}

// checkToken is HEAD /v3/auth/tokens.
func (s *Service) checkToken(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.subjectToken(r, "check_token"); err != nil {
		return err // net/http sends no body on HEAD
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// revokeToken is DELETE /v3/auth/tokens.
func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) error {
	o, _, err := s.subjectToken(r, "revoke_token")
	if err != nil {
		return err
	}
	hash := strings.TrimPrefix(o.Key, tokenKey(""))
	t := s.st.Txn()
	t.Delete(o.Key, o.ModRevision)
	t.Remove(userTokenKey(o.Value.UserID, hash))
	if _, err := t.Commit(r.Context()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusNotFound, "Failed to validate token.") // revoked or expired meanwhile
		}
		return err
	}
	s.log.Info("token revoked", "user", o.Value.UserID, "audit_id", o.Value.AuditID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authProjects is GET /v3/auth/projects: the enabled projects the caller has a role on.
func (s *Service) authProjects(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	ps, err := s.projectsOf(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		if p.Enabled {
			out = append(out, s.projectView(p))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": s.listLinks(r, "auth/projects")})
	return nil
}

// authCatalog is GET /v3/auth/catalog.
func (s *Service) authCatalog(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	if c.ProjectID == "" {
		o, err := s.lookupToken(r.Context(), r.Header.Get("X-Auth-Token"))
		if err != nil || o.Value.DomainID == "" {
			return errf(http.StatusForbidden, "The service catalog is only given to project- or domain-scoped tokens.")
		}
	}
	cat, err := s.catalog(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"catalog": cat, "links": map[string]any{"self": s.link("auth", "catalog")}})
	return nil
}

// authDomains is GET /v3/auth/domains: the enabled domains the caller has a role on, directly or
// through a group.
func (s *Service) authDomains(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ids, err := s.targetsOf(ctx, c.UserID, "domain")
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		d, err := store.Get[domain](ctx, s.st, domainKey(id))
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if d.Value.Enabled {
			out = append(out, s.domainView(d.Value))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out, "links": s.listLinks(r, "auth/domains")})
	return nil
}

// authSystem is GET /v3/auth/system: the system scope when the caller has a role on it.
func (s *Service) authSystem(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	ids, err := s.targetsOf(r.Context(), c.UserID, "system")
	if err != nil {
		return err
	}
	out := []map[string]any{}
	if len(ids) > 0 {
		out = append(out, map[string]any{"all": true})
	}
	writeJSON(w, http.StatusOK, map[string]any{"system": out, "links": s.listLinks(r, "auth/system")})
	return nil
}

// targetsOf returns the IDs of the targets of a kind ("project", "domain", "system") user u has a
// role on, directly or through its groups, sorted.
func (s *Service) targetsOf(ctx context.Context, u, kind string) ([]string, error) {
	seen := map[string]bool{}
	if kind == "project" {
		keys, _, err := s.st.Keys(ctx, userAssignments(u))
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			seen[path.Dir(k)] = true
		}
	}
	actors := []string{"user:" + u}
	groups, err := s.groupsOf(ctx, u)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		actors = append(actors, "group:"+path.Base(g.Key))
	}
	for _, a := range actors {
		l, err := s.actorGrants(ctx, a)
		if err != nil {
			return nil, err
		}
		for _, o := range l {
			rest := strings.TrimPrefix(o.Key, "keystone/idx/actor-grants/"+a+"/")
			tk, tid, _ := splitKind(path.Dir(rest))
			if tk == kind {
				seen[tid] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

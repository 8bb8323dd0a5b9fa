package keystone

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// loginRequest is a decoded POST /v3/auth/tokens body.
type loginRequest struct {
	userID, userName         string
	userDomainID, userDomain string
	password                 string
	scoped                   bool
	projectID, projectName   string
	projDomainID, projDomain string
}

// parseLogin decodes a password authentication request strictly.
func parseLogin(b []byte) (loginRequest, error) {
	var req loginRequest
	a, err := parseEnvelope(b, "auth")
	if err != nil {
		return req, err
	}
	id, ok, err := a.object("identity")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, invalid("auth", "'identity' is a required property.")
	}
	methods, ok, err := id.strList("methods", 64)
	if err != nil {
		return req, err
	}
	if !ok || len(methods) == 0 {
		return req, invalid("auth.identity", "'methods' is a required property; want [\"password\"].")
	}
	if !slices.Contains(methods, "password") {
		return req, &Error{Status: http.StatusUnauthorized, Message: fmt.Sprintf(
			"Attempted to authenticate with an unsupported method %q; this server supports only password.", strings.Join(methods, ","))}
	}
	pw, ok, err := id.object("password")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, invalid("auth.identity", "'password' is a required property for method password.")
	}
	for _, m := range methods {
		if m != "password" {
			id.raw(m) // other methods are not checked; password alone decides
		}
	}
	if err := id.done(); err != nil {
		return req, err
	}
	u, ok, err := pw.object("user")
	if err != nil {
		return req, err
	}
	if !ok {
		return req, invalid("auth.identity.password", "'user' is a required property.")
	}
	if err := pw.done(); err != nil {
		return req, err
	}
	if req.userID, _, err = u.str("id", 64, false); err != nil {
		return req, err
	}
	if req.userName, _, err = u.str("name", 255, false); err != nil {
		return req, err
	}
	if req.userDomainID, req.userDomain, err = domainRef(u); err != nil {
		return req, err
	}
	if req.password, ok, err = u.secret("password", false); err != nil {
		return req, err
	}
	if !ok {
		return req, invalid(u.path, "'password' is a required property.")
	}
	if err := u.done(); err != nil {
		return req, err
	}
	if req.userID == "" && req.userName == "" {
		return req, invalid(u.path, "give the user's 'id', or its 'name' and 'domain'.")
	}
	if req.userID == "" && req.userDomainID == "" && req.userDomain == "" {
		return req, invalid(u.path, "user name %q needs a 'domain' ({\"id\": ...} or {\"name\": ...}).", req.userName)
	}
	if raw, ok := a.raw("scope"); ok {
		if err := parseScope(raw, &req); err != nil {
			return req, err
		}
	}
	return req, a.done()
}

func parseScope(raw json.RawMessage, req *loginRequest) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "unscoped" {
			return invalid("auth.scope", "%q is not a scope; want \"unscoped\" or {\"project\": {...}}.", s)
		}
		return nil
	}
	if isNull(raw) {
		return nil
	}
	sc, err := parseObject(raw, "auth.scope")
	if err != nil {
		return err
	}
	for _, k := range []string{"domain", "system", "OS-TRUST:trust"} {
		if _, ok := sc.m[k]; ok {
			return invalid("auth.scope", "%s scope is not supported; scope to a project.", k)
		}
	}
	p, ok, err := sc.object("project")
	if err != nil {
		return err
	}
	if err := sc.done(); err != nil {
		return err
	}
	if !ok {
		return invalid("auth.scope", "want {\"project\": {\"id\": ...}} or {\"project\": {\"name\": ..., \"domain\": {...}}}.")
	}
	req.scoped = true
	if req.projectID, _, err = p.str("id", 64, false); err != nil {
		return err
	}
	if req.projectName, _, err = p.str("name", 255, false); err != nil {
		return err
	}
	if req.projDomainID, req.projDomain, err = domainRef(p); err != nil {
		return err
	}
	if err := p.done(); err != nil {
		return err
	}
	if req.projectID == "" && req.projectName == "" {
		return invalid(p.path, "give the project's 'id', or its 'name' and 'domain'.")
	}
	if req.projectID == "" && req.projDomainID == "" && req.projDomain == "" {
		return invalid(p.path, "project name %q needs a 'domain' ({\"id\": ...} or {\"name\": ...}).", req.projectName)
	}
	return nil
}

// domainRef reads an optional "domain": {"id"} or {"name"}.
func domainRef(o *obj) (id, name string, err error) {
	d, ok, err := o.object("domain")
	if err != nil || !ok {
		return "", "", err
	}
	if id, _, err = d.str("id", 64, false); err != nil {
		return "", "", err
	}
	if name, _, err = d.str("name", 255, false); err != nil {
		return "", "", err
	}
	if err := d.done(); err != nil {
		return "", "", err
	}
	if id == "" && name == "" {
		return "", "", invalid(d.path, "give the domain's 'id' or 'name'.")
	}
	return id, name, nil
}

// resolveUser finds the user a login names; found is false when there is none.
func (s *Service) resolveUser(ctx context.Context, req loginRequest) (store.Object[user], bool, error) {
	var none store.Object[user]
	id := req.userID
	if id == "" {
		d, ok, err := s.domainByIDOrName(ctx, req.userDomainID, req.userDomain)
		if err != nil || !ok {
			return none, false, err
		}
		if id, err = s.lookupName(ctx, userNameKey(d.ID, req.userName)); err != nil || id == "" {
			return none, false, err
		}
	}
	if !validID(id) {
		return none, false, nil
	}
	o, err := store.Get[user](ctx, s.st, userKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return none, false, nil
	}
	return o, err == nil, err
}

// resolveProject finds the project a scope names; found is false when there is none.
func (s *Service) resolveProject(ctx context.Context, req loginRequest) (store.Object[project], bool, error) {
	var none store.Object[project]
	id := req.projectID
	if id == "" {
		d, ok, err := s.domainByIDOrName(ctx, req.projDomainID, req.projDomain)
		if err != nil || !ok {
			return none, false, err
		}
		if id, err = s.lookupName(ctx, projectNameKey(d.ID, req.projectName)); err != nil || id == "" {
			return none, false, err
		}
	}
	if !validID(id) {
		return none, false, nil
	}
	o, err := store.Get[project](ctx, s.st, projectKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return none, false, nil
	}
	return o, err == nil, err
}

// checkPassword compares in constant cost whether or not there is a hash to compare with.
func (s *Service) checkPassword(hash, password string) bool {
	if hash == "" {
		s.dummyOnce.Do(func() {
			s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte(newID()), s.cfg.PasswordCost)
		})
		bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// login is POST /v3/auth/tokens.
func (s *Service) login(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := parseLogin(b)
	if err != nil {
		return err
	}
	ctx := r.Context()
	uo, found, err := s.resolveUser(ctx, req)
	if err != nil {
		return err
	}
	key := "id\x00" + req.userID
	if found {
		key = "user\x00" + uo.Value.ID
	} else if req.userID == "" {
		key = "name\x00" + req.userName + "\x00" + req.userDomainID + "\x00" + strings.ToLower(req.userDomain)
	}
	logAttrs := []any{"user_name", req.userName, "user_id", req.userID, "remote", r.RemoteAddr}
	wait, ok := s.limiter.attempt(key, s.cfg.Now())
	if !ok {
		s.log.Warn("login refused: too many failures", logAttrs...)
		return tooManyFailures(wait)
	}
	if !s.checkPassword(uo.Value.PasswordHash, req.password) || !uo.Value.Enabled {
		s.log.Info("login failed", logAttrs...)
		return errUnauthorized
	}
	s.limiter.succeeded(key)

	var plain string
	var tok token
	err = retry(ctx, func() error {
		u, err := store.Get[user](ctx, s.st, userKey(uo.Value.ID))
		if errors.Is(err, store.ErrNotFound) {
			return errUnauthorized
		} else if err != nil {
			return err
		}
		if !u.Value.Enabled || u.Value.PasswordHash != uo.Value.PasswordHash {
			return errUnauthorized // changed while we were checking
		}
		var p *store.Object[project]
		var assigns []store.Object[string]
		var roles []role
		if req.scoped {
			po, found, err := s.resolveProject(ctx, req)
			if err != nil {
				return err
			}
			if !found || !po.Value.Enabled {
				s.log.Info("login failed: no such project", append(logAttrs, "project_name", req.projectName, "project_id", req.projectID)...)
				return errUnauthorized
			}
			p = &po
			if assigns, _, err = store.List[string](ctx, s.st, assignmentKey(po.Value.ID, u.Value.ID, "")); err != nil {
				return err
			}
			if len(assigns) == 0 {
				s.log.Info("login failed: no role on project", append(logAttrs, "project", po.Value.ID)...)
				return errUnauthorized
			}
			all, err := s.rolesByID(ctx)
			if err != nil {
				return err
			}
			for _, a := range assigns {
				rid := a.Key[strings.LastIndexByte(a.Key, '/')+1:]
				if ro, ok := all[rid]; ok {
					roles = append(roles, ro)
				}
			}
		}
		plain, tok, err = s.issue(ctx, u, p, assigns, roles)
		return err
	})
	if err != nil {
		return err
	}
	body, err := s.tokenBody(ctx, tok, r.URL.Query().Has("nocatalog"))
	if err != nil {
		return err
	}
	s.log.Info("token issued", "user", tok.UserID, "project", tok.ProjectID, "audit_id", tok.AuditID)
	w.Header().Set("X-Subject-Token", plain)
	writeJSON(w, http.StatusCreated, body)
	return nil
}

func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// issue writes a new token for u (scoped to p when not nil) with a lease of the token's lifetime,
// provided that u, p and every assignment are unchanged since they were read.
func (s *Service) issue(ctx context.Context, u store.Object[user], p *store.Object[project], assigns []store.Object[string], roles []role) (string, token, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	plain := base64.RawURLEncoding.EncodeToString(raw)
	hash := hashToken(plain)
	audit := make([]byte, 16)
	rand.Read(audit)
	now := s.cfg.Now().UTC()
	tok := token{
		UserID: u.Value.ID, Roles: roles, Methods: []string{"password"},
		AuditID:  base64.RawURLEncoding.EncodeToString(audit),
		IssuedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL),
	}
	if p != nil {
		tok.ProjectID = p.Value.ID
	}
	lease, err := s.st.Grant(ctx, s.cfg.TokenTTL)
	if err != nil {
		return "", tok, err
	}
	t := s.st.Txn()
	t.Unchanged(userKey(u.Value.ID), u.ModRevision)
	if p != nil {
		t.Unchanged(projectKey(p.Value.ID), p.ModRevision)
	}
	for _, a := range assigns {
		t.Unchanged(a.Key, a.ModRevision)
	}
	t.PutLeased(tokenKey(hash), tok, lease)
	t.PutLeased(userTokenKey(u.Value.ID, hash), tok.ProjectID, lease)
	if _, err := t.Commit(ctx); err != nil {
		s.st.Revoke(context.WithoutCancel(ctx), lease)
		return "", tok, err
	}
	return plain, tok, nil
}

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
	t := map[string]any{
		"methods":    tok.Methods,
		"user":       map[string]any{"id": u.Value.ID, "name": u.Value.Name, "domain": ud, "password_expires_at": nil},
		"audit_ids":  []string{tok.AuditID},
		"expires_at": timestamp(tok.ExpiresAt),
		"issued_at":  timestamp(tok.IssuedAt),
	}
	if tok.ProjectID != "" {
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
		roles := make([]map[string]string, 0, len(tok.Roles))
		for _, ro := range tok.Roles {
			roles = append(roles, map[string]string{"id": ro.ID, "name": ro.Name})
		}
		t["project"] = map[string]any{"id": p.Value.ID, "name": p.Value.Name, "domain": pd}
		t["is_domain"] = false
		t["roles"] = roles
		if !noCatalog {
			t["catalog"] = s.catalog()
		}
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

// catalog lists this server's services; IDs are stable digests of their types.
func (s *Service) catalog() []map[string]any {
	services := []struct{ typ, name, path string }{
		{"identity", "keystone", "/v3"},
		{"network", "neutron", "/network"},
		{"compute", "nova", "/compute/v2.1"},
		{"image", "glance", "/image"},
	}
	out := make([]map[string]any, 0, len(services))
	for _, sv := range services {
		eps := make([]map[string]string, 0, 3)
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]string{
				"id": stableID("endpoint/" + sv.typ + "/" + iface), "interface": iface,
				"region": s.cfg.Region, "region_id": s.cfg.Region, "url": s.cfg.PublicURL + sv.path,
			})
		}
		out = append(out, map[string]any{"id": stableID("service/" + sv.typ), "type": sv.typ, "name": sv.name, "endpoints": eps})
	}
	return out
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
		return errf(http.StatusForbidden, "The service catalog is only given to project-scoped tokens.")
	}
	writeJSON(w, http.StatusOK, map[string]any{"catalog": s.catalog(), "links": map[string]any{"self": s.link("auth", "catalog")}})
	return nil
}

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
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/store"
)

// loginRequest is a decoded POST /v3/auth/tokens body: the password method, or the token method
// (a new token for the user of an existing one, e.g. to rescope an unscoped token), and a scope.
type loginRequest struct {
	methods                  []string
	tokenID                  string // method token
	userID, userName         string
	userDomainID, userDomain string
	password                 string
	scope                    string // "", "project" or "domain"
	projectID, projectName   string
	projDomainID, projDomain string
	domainID, domainName     string // scope domain
	appCredID, appCredName   string // method application_credential (secret in password)
	trustID                  string // scope "trust"
}

// parseLogin decodes an authentication request strictly.
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
		return req, invalid("auth.identity", "'methods' is a required property; want [\"password\"] or [\"token\"].")
	}
	req.methods = methods
	for _, m := range methods {
		if m != "password" && m != "token" && m != "application_credential" {
			return req, &Error{Status: http.StatusUnauthorized, Message: fmt.Sprintf(
				"Attempted to authenticate with an unsupported method %q; this server supports password, token and application_credential.", m)}
		}
	}
	if slices.Contains(methods, "application_credential") {
		if len(methods) != 1 {
			return req, invalid("auth.identity.methods", "application_credential authenticates alone; got %q.", methods)
		}
		if err := parseAppCredLogin(id, &req); err != nil {
			return req, err
		}
	} else if slices.Contains(methods, "password") {
		if err := parsePassword(id, &req); err != nil {
			return req, err
		}
	} else {
		tk, ok, err := id.object("token")
		if err != nil {
			return req, err
		}
		if !ok {
			return req, invalid("auth.identity", "'token' is a required property for method token.")
		}
		if req.tokenID, ok, err = tk.secret("id", false); err != nil {
			return req, err
		}
		if !ok || req.tokenID == "" {
			return req, invalid("auth.identity.token", "'id' is a required property.")
		}
		if err := tk.done(); err != nil {
			return req, err
		}
	}
	id.raw("token") // given with password too: password decides
	if err := id.done(); err != nil {
		return req, err
	}
	if raw, ok := a.raw("scope"); ok {
		if err := parseScope(raw, &req); err != nil {
			return req, err
		}
	}
	return req, a.done()
}

func parseAppCredLogin(id *obj, req *loginRequest) error {
	ac, ok, err := id.object("application_credential")
	if err != nil {
		return err
	}
	if !ok {
		return invalid("auth.identity", "'application_credential' is a required property for method application_credential.")
	}
	if req.appCredID, _, err = ac.str("id", 64, false); err != nil {
		return err
	}
	if req.appCredName, _, err = ac.str("name", 255, false); err != nil {
		return err
	}
	if req.password, ok, err = ac.secretN("secret", 1024, false); err != nil {
		return err
	}
	if !ok {
		return invalid(ac.path, "'secret' is a required property.")
	}
	if u, ok, err := ac.object("user"); err != nil {
		return err
	} else if ok {
		if req.userID, _, err = u.str("id", 64, false); err != nil {
			return err
		}
		if req.userName, _, err = u.str("name", 255, false); err != nil {
			return err
		}
		if req.userDomainID, req.userDomain, err = domainRef(u); err != nil {
			return err
		}
		if err := u.done(); err != nil {
			return err
		}
	}
	if err := ac.done(); err != nil {
		return err
	}
	if req.appCredID == "" && (req.appCredName == "" || (req.userID == "" && req.userName == "")) {
		return invalid(ac.path, "give the application credential's 'id', or its 'name' and 'user'.")
	}
	return nil
}

func parsePassword(id *obj, req *loginRequest) error {
	pw, ok, err := id.object("password")
	if err != nil {
		return err
	}
	if !ok {
		return invalid("auth.identity", "'password' is a required property for method password.")
	}
	u, ok, err := pw.object("user")
	if err != nil {
		return err
	}
	if !ok {
		return invalid("auth.identity.password", "'user' is a required property.")
	}
	if err := pw.done(); err != nil {
		return err
	}
	if req.userID, _, err = u.str("id", 64, false); err != nil {
		return err
	}
	if req.userName, _, err = u.str("name", 255, false); err != nil {
		return err
	}
	if req.userDomainID, req.userDomain, err = domainRef(u); err != nil {
		return err
	}
	if req.password, ok, err = u.secret("password", false); err != nil {
		return err
	}
	if !ok {
		return invalid(u.path, "'password' is a required property.")
	}
	if err := u.done(); err != nil {
		return err
	}
	if req.userID == "" && req.userName == "" {
		return invalid(u.path, "give the user's 'id', or its 'name' and 'domain'.")
	}
	if req.userID == "" && req.userDomainID == "" && req.userDomain == "" {
		return invalid(u.path, "user name %q needs a 'domain' ({\"id\": ...} or {\"name\": ...}).", req.userName)
	}
	return nil
}

func parseScope(raw json.RawMessage, req *loginRequest) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != "unscoped" {
			return invalid("auth.scope", "%q is not a scope; want \"unscoped\", {\"project\": {...}} or {\"domain\": {...}}.", s)
		}
		req.scope = "unscoped"
		return nil
	}
	if isNull(raw) {
		return nil
	}
	sc, err := parseObject(raw, "auth.scope")
	if err != nil {
		return err
	}
	if _, ok := sc.m["system"]; ok {
		return invalid("auth.scope", "system scope is not supported; scope to a project, a domain or a trust.")
	}
	if tr, ok, err := sc.object("OS-TRUST:trust"); err != nil {
		return err
	} else if ok {
		if req.trustID, _, err = tr.str("id", 64, false); err != nil {
			return err
		}
		if err := tr.done(); err != nil {
			return err
		}
		if err := sc.done(); err != nil {
			return err
		}
		if req.trustID == "" {
			return invalid(tr.path, "'id' is a required property.")
		}
		req.scope = "trust"
		return nil
	}
	p, pok, err := sc.object("project")
	if err != nil {
		return err
	}
	d, dok, err := sc.object("domain")
	if err != nil {
		return err
	}
	if err := sc.done(); err != nil {
		return err
	}
	switch {
	case pok && dok:
		return invalid("auth.scope", "give a project or a domain, not both.")
	case dok:
		req.scope = "domain"
		if req.domainID, _, err = d.str("id", 64, false); err != nil {
			return err
		}
		if req.domainName, _, err = d.str("name", 255, false); err != nil {
			return err
		}
		if err := d.done(); err != nil {
			return err
		}
		if req.domainID == "" && req.domainName == "" {
			return invalid(d.path, "give the domain's 'id' or 'name'.")
		}
		return nil
	case !pok:
		return invalid("auth.scope", "want {\"project\": {\"id\": ...}}, {\"project\": {\"name\": ..., \"domain\": {...}}} or {\"domain\": {...}}.")
	}
	req.scope = "project"
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
	return resolveNamed[user](ctx, s, req.userID, req.userDomainID, req.userDomain, req.userName, userNameKey, userKey)
}

// resolveProject finds the project a scope names; found is false when there is none.
func (s *Service) resolveProject(ctx context.Context, req loginRequest) (store.Object[project], bool, error) {
	return resolveNamed[project](ctx, s, req.projectID, req.projDomainID, req.projDomain, req.projectName, projectNameKey, projectKey)
}

// resolveNamed finds an object by its ID, or else by its name in a domain given by ID or name;
// found is false when there is none.
func resolveNamed[T any](ctx context.Context, s *Service, id, domainID, domainName, name string,
	nameKey func(domain, name string) string, key func(id string) string) (store.Object[T], bool, error) {
	var none store.Object[T]
	if id == "" {
		d, ok, err := s.domainByIDOrName(ctx, domainID, domainName)
		if err != nil || !ok {
			return none, false, err
		}
		if id, err = s.lookupName(ctx, nameKey(d.ID, name)); err != nil || id == "" {
			return none, false, err
		}
	}
	if !validID(id) {
		return none, false, nil
	}
	o, err := store.Get[T](ctx, s.st, key(id))
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

// authenticateUser checks the identity part of a login: the password (rate limited per user),
// or an existing token, whose lifetime and audit ID the new token inherits, or an application
// credential (then the returned token holds only its AppCredID).
func (s *Service) authenticateUser(r *http.Request, req loginRequest) (store.Object[user], *token, error) {
	ctx := r.Context()
	if req.appCredID != "" || req.appCredName != "" {
		ac, err := s.appCredLogin(r, req)
		if err != nil {
			return store.Object[user]{}, nil, err
		}
		u, err := store.Get[user](ctx, s.st, userKey(ac.Value.UserID))
		if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Value.Enabled) {
			return u, nil, errUnauthorized
		} else if err != nil {
			return u, nil, err
		}
		return u, &token{AppCredID: ac.Value.ID}, nil
	}
	if req.tokenID != "" {
		o, err := s.lookupToken(ctx, req.tokenID)
		if errors.Is(err, store.ErrNotFound) {
			s.log.Info("login failed: the token of method token is invalid", "remote", r.RemoteAddr)
			return store.Object[user]{}, nil, errUnauthorized
		} else if err != nil {
			return store.Object[user]{}, nil, err
		}
		if o.Value.AppCredID != "" || o.Value.TrustID != "" {
			// the token of an application credential or a trust keeps its project and roles
			s.log.Info("login failed: a token of an application credential or trust cannot be rescoped", "remote", r.RemoteAddr)
			return store.Object[user]{}, nil, errUnauthorized
		}
		u, err := store.Get[user](ctx, s.st, userKey(o.Value.UserID))
		if errors.Is(err, store.ErrNotFound) {
			return u, nil, errUnauthorized
		} else if err != nil {
			return u, nil, err
		}
		if !u.Value.Enabled {
			return u, nil, errUnauthorized
		}
		return u, &o.Value, nil
	}
	uo, found, err := s.resolveUser(ctx, req)
	if err != nil {
		return uo, nil, err
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
		return uo, nil, tooManyFailures(wait)
	}
	if !s.checkPassword(uo.Value.PasswordHash, req.password) || !uo.Value.Enabled {
		s.log.Info("login failed", logAttrs...)
		return uo, nil, errUnauthorized
	}
	s.limiter.succeeded(key)
	return uo, nil, nil
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
	uo, from, err := s.authenticateUser(r, req)
	if err != nil {
		return err
	}
	logAttrs := []any{"user", uo.Value.ID, "remote", r.RemoteAddr}
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
		ud, err := store.Get[domain](ctx, s.st, domainKey(u.Value.DomainID))
		if err != nil || !ud.Value.Enabled {
			s.log.Info("login failed: the user's domain is disabled or gone", logAttrs...)
			return errUnauthorized
		}
		in := issueInput{u: u, read: []store.Object[string]{{Key: ud.Key, ModRevision: ud.ModRevision}}, from: from}
		if from != nil && from.AppCredID != "" {
			return s.appCredScope(ctx, req, &in, &plain, &tok)
		}
		switch {
		case req.scope == "project":
			po, found, err := s.resolveProject(ctx, req)
			if err != nil {
				return err
			}
			if !found {
				s.log.Info("login failed: no such project", append(logAttrs, "project_name", req.projectName, "project_id", req.projectID)...)
				return errUnauthorized
			}
			if err := s.scopeProject(ctx, &in, po); err != nil {
				var refused scopeRefused
				if !errors.As(err, &refused) {
					return err
				}
				s.log.Info("login failed: "+err.Error(), append(logAttrs, "project", po.Value.ID)...)
				return errUnauthorized
			}
		case req.scope == "trust":
			if err := s.trustScope(ctx, req.trustID, &in); err != nil {
				s.log.Info("login failed: trust scope", append(logAttrs, "trust", req.trustID)...)
				return err
			}
		case req.scope == "domain":
			d, found, err := s.domainByIDOrName(ctx, req.domainID, req.domainName)
			if err != nil {
				return err
			}
			if !found || !d.Enabled {
				s.log.Info("login failed: no such enabled domain", append(logAttrs, "domain", req.domainID, "domain_name", req.domainName)...)
				return errUnauthorized
			}
			roles, read, err := s.effectiveRoles(ctx, u.Value.ID, "domain", d.ID)
			if err != nil {
				return err
			}
			if len(roles) == 0 {
				s.log.Info("login failed: no role on domain", append(logAttrs, "domain", d.ID)...)
				return errUnauthorized
			}
			in.domainID, in.roles, in.read = d.ID, roles, append(in.read, read...)
		case req.scope == "" && from == nil && u.Value.DefaultProjectID != "":
			// Keystone scopes a login without a scope to the user's default project, when the user
			// has a role there; otherwise the token is unscoped
			if po, err := store.Get[project](ctx, s.st, projectKey(u.Value.DefaultProjectID)); err == nil {
				var refused scopeRefused
				if err := s.scopeProject(ctx, &in, po); errors.As(err, &refused) {
					in.project, in.roles, in.read = nil, nil, in.read[:1]
				} else if err != nil {
					return err
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		plain, tok, err = s.issue(ctx, in)
		return err
	})
	if err != nil {
		return err
	}
	body, err := s.tokenBody(ctx, tok, r.URL.Query().Has("nocatalog"))
	if err != nil {
		return err
	}
	s.log.Info("token issued", "user", tok.UserID, "project", tok.ProjectID, "domain", tok.DomainID, "audit_id", tok.AuditID)
	w.Header().Set("X-Subject-Token", plain)
	writeJSON(w, http.StatusCreated, body)
	return nil
}

// issueInput is what a new token is made of, and what was read to decide it.
type issueInput struct {
	u        store.Object[user]
	project  *store.Object[project]
	domainID string
	roles    []role
	read     []store.Object[string] // keys that must be unchanged when the token is written
	from     *token                 // method token: the token it derives from
	// method application_credential: from holds only AppCredID; the token ends by its expiry
	appCredExpiry *time.Time
	trust         *store.Object[trust] // a trust-scoped login (its uses are counted down)
}

// appCredScope issues the token of an application credential login: scoped to the credential's
// project with its roles, all of which the user must still hold there.
func (s *Service) appCredScope(ctx context.Context, req loginRequest, in *issueInput, plain *string, tok *token) error {
	o, err := store.Get[appCred](ctx, s.st, appCredKey(in.from.AppCredID))
	if err != nil {
		return errUnauthorized // deleted meanwhile
	}
	ac := o.Value
	in.read = append(in.read, store.Object[string]{Key: o.Key, ModRevision: o.ModRevision})
	if req.scope != "" && (req.scope != "project" || (req.projectID != "" && req.projectID != ac.ProjectID)) {
		return errUnauthorized
	}
	po, err := store.Get[project](ctx, s.st, projectKey(ac.ProjectID))
	if err != nil {
		return errUnauthorized
	}
	if err := s.scopeProject(ctx, in, po); err != nil {
		s.log.Info("login failed: application credential: "+err.Error(), "application_credential", ac.ID)
		return errUnauthorized
	}
	held := map[string]role{}
	for _, ro := range in.roles {
		held[ro.ID] = ro
	}
	in.roles = nil
	for _, id := range ac.Roles {
		ro, ok := held[id]
		if !ok {
			s.log.Info("login failed: the user lost a role of its application credential", "application_credential", ac.ID, "role", id)
			return errUnauthorized
		}
		in.roles = append(in.roles, ro)
	}
	in.appCredExpiry = ac.ExpiresAt
	*plain, *tok, err = s.issue(ctx, *in)
	return err
}

// scopeRefused is why a scope is refused (the login gets 401); other errors are the store's.
type scopeRefused string

func (e scopeRefused) Error() string { return string(e) }

// scopeProject sets in's project scope: the project and its domain must be enabled and the user
// must have an effective role on it.
func (s *Service) scopeProject(ctx context.Context, in *issueInput, po store.Object[project]) error {
	if !po.Value.Enabled {
		return scopeRefused("the project is disabled")
	}
	pd, err := store.Get[domain](ctx, s.st, domainKey(po.Value.DomainID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !pd.Value.Enabled) {
		return scopeRefused("the project's domain is disabled or gone")
	} else if err != nil {
		return err
	}
	roles, read, err := s.effectiveRoles(ctx, in.u.Value.ID, "project", po.Value.ID)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return scopeRefused("no role on the project")
	}
	in.project, in.roles = &po, roles
	in.read = append(in.read, store.Object[string]{Key: pd.Key, ModRevision: pd.ModRevision})
	in.read = append(in.read, read...)
	return nil
}

func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// issue writes a new token with a lease of its lifetime, provided that the user, the project and
// every key the roles were read from are unchanged since they were read. A token from method
// token keeps the expiry of the token it comes from and adds "token" to its methods.
func (s *Service) issue(ctx context.Context, in issueInput) (string, token, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	plain := base64.RawURLEncoding.EncodeToString(raw)
	hash := hashToken(plain)
	audit := make([]byte, 16)
	rand.Read(audit)
	now := s.cfg.Now().UTC()
	tok := token{
		UserID: in.u.Value.ID, Roles: in.roles, Methods: []string{"password"}, DomainID: in.domainID,
		AuditID:  base64.RawURLEncoding.EncodeToString(audit),
		IssuedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL),
	}
	if in.from != nil && in.from.AppCredID != "" {
		tok.Methods, tok.AppCredID = []string{"application_credential"}, in.from.AppCredID
		if in.appCredExpiry != nil && in.appCredExpiry.Before(tok.ExpiresAt) {
			tok.ExpiresAt = *in.appCredExpiry
		}
	} else if in.from != nil {
		tok.ExpiresAt = in.from.ExpiresAt
		tok.Methods = append([]string{"token"}, in.from.Methods...)
		tok.Methods = slices.Compact(tok.Methods)
		tok.ParentAuditID = in.from.AuditID
	}
	if in.project != nil {
		tok.ProjectID = in.project.Value.ID
	}
	if in.trust != nil {
		tok.TrustID = in.trust.Value.ID
		if e := in.trust.Value.ExpiresAt; e != nil && e.Before(tok.ExpiresAt) {
			tok.ExpiresAt = *e
		}
	}
	ttl := tok.ExpiresAt.Sub(now)
	if ttl < 1 {
		return "", tok, errUnauthorized
	}
	lease, err := s.st.Grant(ctx, ttl)
	if err != nil {
		return "", tok, err
	}
	t := s.st.Txn()
	t.Unchanged(userKey(in.u.Value.ID), in.u.ModRevision)
	if in.project != nil {
		t.Unchanged(projectKey(in.project.Value.ID), in.project.ModRevision)
	}
	for _, a := range in.read {
		t.Unchanged(a.Key, a.ModRevision)
	}
	if in.trust != nil {
		tr := in.trust.Value
		if tr.RemainingUses != nil {
			n := *tr.RemainingUses - 1
			tr.RemainingUses = &n
			t.Update(in.trust.Key, tr, in.trust.ModRevision)
		} else {
			t.Unchanged(in.trust.Key, in.trust.ModRevision)
		}
	}
	t.PutLeased(tokenKey(hash), tok, lease)
	t.PutLeased(userTokenKey(in.u.Value.ID, hash), tok.ProjectID, lease)
	if _, err := t.Commit(ctx); err != nil {
		s.st.Revoke(context.WithoutCancel(ctx), lease)
		return "", tok, err
	}
	return plain, tok, nil
}

package keystone

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/store"
)

// Application credentials (/v3/users/{id}/application_credentials): a user delegates some of its
// roles on the project of its token to a secret, which logs in with method application_credential
// to a token scoped to that project with those roles. The secret is shown once, in the create
// answer; only a bcrypt hash of its SHA-256 is kept. A login checks again that the user still has
// every role on the project. Tokens of a restricted credential cannot manage credentials.
//
//	keystone/app-creds/<id>                     application credential
//	keystone/names/app-creds/<user>/<name>      its ID

type appCred struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Description  string     `json:"description,omitempty"`
	UserID       string     `json:"user_id"`
	ProjectID    string     `json:"project_id"`
	SecretHash   string     `json:"secret_hash"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Roles        []string   `json:"roles"`
	Unrestricted bool       `json:"unrestricted,omitempty"`
}

func appCredKey(id string) string { return "keystone/app-creds/" + id }
func appCredNameKey(u, name string) string {
	return "keystone/names/app-creds/" + u + "/" + url.PathEscape(name)
}

func appCredSecretDigest(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return []byte(hex.EncodeToString(sum[:]))
}

// appCredTime is Keystone's rendering of an application credential's expiry (naive ISO 8601).
func appCredTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func parseExpiry(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func (s *Service) appCredView(a appCred, all map[string]role) map[string]any {
	roles := make([]map[string]any, 0, len(a.Roles))
	for _, id := range a.Roles {
		ro := all[id]
		roles = append(roles, map[string]any{"id": id, "name": ro.Name, "domain_id": nil})
	}
	v := map[string]any{
		"id": a.ID, "name": a.Name, "description": nil, "project_id": a.ProjectID, "roles": roles,
		"expires_at": nil, "unrestricted": a.Unrestricted, "access_rules": []any{},
		"links": map[string]any{"self": s.link("users", a.UserID, "application_credentials", a.ID)},
	}
	if a.Description != "" {
		v["description"] = a.Description
	}
	if a.ExpiresAt != nil {
		v["expires_at"] = appCredTime(*a.ExpiresAt)
	}
	return v
}

// callerToken reads the caller's own token (for what the auth Context does not carry).
func (s *Service) callerToken(r *http.Request) (token, error) {
	o, err := s.lookupToken(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		return token{}, errUnauthorized
	}
	return o.Value, nil
}

// restrictedAppCred refuses tokens from a restricted application credential.
func (s *Service) restrictedAppCred(ctx context.Context, t token) error {
	if t.AppCredID == "" {
		return nil
	}
	o, err := store.Get[appCred](ctx, s.st, appCredKey(t.AppCredID))
	if err == nil && o.Value.Unrestricted {
		return nil
	}
	return errf(http.StatusForbidden, "Using method 'application_credential' is not allowed for managing additional application credentials.")
}

// createAppCred is POST /v3/users/{id}/application_credentials: the caller for itself, on the
// project of its token, with some of the roles it holds there (all by default).
func (s *Service) createAppCred(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	uid := r.PathValue("id")
	if uid != c.UserID {
		return forbidden("create_application_credential")
	}
	tok, err := s.callerToken(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.restrictedAppCred(ctx, tok); err != nil {
		return err
	}
	if tok.TrustID != "" {
		return errf(http.StatusForbidden, "A trust-scoped token cannot create application credentials.")
	}
	if tok.ProjectID == "" {
		return errf(http.StatusForbidden, "An application credential is created with a project-scoped token.")
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	a, err := parseEnvelope(b, "application_credential")
	if err != nil {
		return err
	}
	ac := appCred{UserID: uid, ProjectID: tok.ProjectID}
	var ok bool
	if ac.Name, ok, err = a.name("name", 255); err != nil {
		return err
	} else if !ok {
		return invalid("application_credential", "'name' is a required property.")
	}
	if ac.Description, _, err = a.str("description", 255, true); err != nil {
		return err
	}
	secret, _, err := a.secretN("secret", 1024, true)
	if err != nil {
		return err
	}
	exp, _, err := a.str("expires_at", 64, true)
	if err != nil {
		return err
	}
	if exp != "" {
		t, ok := parseExpiry(exp)
		if !ok {
			return invalid("application_credential.expires_at", "%q is not a time like 2026-12-31T23:59:59.000000.", exp)
		}
		if !t.After(s.cfg.Now()) {
			return invalid("application_credential.expires_at", "%q is in the past.", exp)
		}
		ac.ExpiresAt = &t
	}
	if ac.Unrestricted, _, err = a.boolean("unrestricted"); err != nil {
		return err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return err
	}
	// the roles the user holds on the project now (Keystone computes a token's roles when it
	// validates it, so a role granted after the token was issued counts)
	current, _, err := s.effectiveRoles(ctx, uid, "project", tok.ProjectID)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for _, ro := range current {
		held[ro.ID] = true
	}
	if raw, ok := a.raw("roles"); ok && !isNull(raw) {
		var refs []map[string]string
		if json.Unmarshal(raw, &refs) != nil {
			return invalid("application_credential.roles", "%s is not a list of {\"id\": ...} or {\"name\": ...}.", clip(raw))
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
			if !held[id] {
				return invalid("application_credential.roles", "%v: cannot create an application credential with a role the token does not hold.", ref)
			}
			ac.Roles = append(ac.Roles, id)
		}
	}
	if len(ac.Roles) == 0 {
		for _, ro := range current {
			ac.Roles = append(ac.Roles, ro.ID)
		}
	}
	if len(ac.Roles) == 0 {
		return errf(http.StatusForbidden, "The user has no role on project %s to delegate.", tok.ProjectID)
	}
	if raw, ok := a.raw("access_rules"); ok && !isNull(raw) && string(raw) != "[]" {
		return invalid("application_credential.access_rules", "access rules are not supported.")
	}
	if err := a.done(); err != nil {
		return err
	}
	if secret == "" {
		raw := make([]byte, 64)
		rand.Read(raw)
		secret = base64.RawURLEncoding.EncodeToString(raw)
	}
	h, err := bcrypt.GenerateFromPassword(appCredSecretDigest(secret), s.cfg.PasswordCost)
	if err != nil {
		return err
	}
	ac.ID, ac.SecretHash = newID(), string(h)
	err = retry(ctx, func() error {
		u, err := s.getUser(ctx, uid)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Unchanged(u.Key, u.ModRevision)
		t.Create(appCredNameKey(uid, ac.Name), ac.ID)
		t.Create(appCredKey(ac.ID), ac)
		_, err = t.Commit(ctx)
		var ce *store.ConflictError
		if errors.As(err, &ce) && ce.Key == appCredNameKey(uid, ac.Name) {
			return errf(http.StatusConflict, "Conflict occurred attempting to store application_credential - Duplicate entry found with name %s.", ac.Name)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("application credential created", "user", uid, "project", ac.ProjectID, "application_credential", ac.ID)
	v := s.appCredView(ac, all)
	v["secret"] = secret
	writeJSON(w, http.StatusCreated, map[string]any{"application_credential": v})
	return nil
}

func (s *Service) userAppCreds(ctx context.Context, uid string) ([]appCred, error) {
	l, _, err := store.List[appCred](ctx, s.st, "keystone/app-creds/")
	if err != nil {
		return nil, err
	}
	var out []appCred
	for _, o := range l {
		if o.Value.UserID == uid {
			out = append(out, o.Value)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listAppCreds is GET /v3/users/{id}/application_credentials (?name=): the user or an admin.
func (s *Service) listAppCreds(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("id")
	if err := selfOrAdmin(r, uid, "list_application_credentials"); err != nil {
		return err
	}
	ctx := r.Context()
	l, err := s.userAppCreds(ctx, uid)
	if err != nil {
		return err
	}
	all, err := s.rolesByID(ctx)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := make([]map[string]any, 0, len(l))
	for _, a := range l {
		if !q.Has("name") || a.Name == q.Get("name") {
			out = append(out, s.appCredView(a, all))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"application_credentials": out, "links": s.listLinks(r, "users/"+uid+"/application_credentials")})
	return nil
}

func (s *Service) getAppCred(ctx context.Context, uid, id string) (store.Object[appCred], error) {
	if !validID(id) {
		return store.Object[appCred]{}, notFound("application credential", id)
	}
	o, err := getOr404[appCred](ctx, s.st, appCredKey(id), "application credential", id)
	if err == nil && o.Value.UserID != uid {
		return o, notFound("application credential", id)
	}
	return o, err
}

// showAppCred is GET /v3/users/{id}/application_credentials/{cred}: never the secret.
func (s *Service) showAppCred(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("id")
	if err := selfOrAdmin(r, uid, "get_application_credential"); err != nil {
		return err
	}
	o, err := s.getAppCred(r.Context(), uid, r.PathValue("cred"))
	if err != nil {
		return err
	}
	all, err := s.rolesByID(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"application_credential": s.appCredView(o.Value, all)})
	return nil
}

// deleteAppCred is DELETE /v3/users/{id}/application_credentials/{cred}; the tokens it issued are
// revoked with it.
func (s *Service) deleteAppCred(w http.ResponseWriter, r *http.Request) error {
	uid := r.PathValue("id")
	if err := selfOrAdmin(r, uid, "delete_application_credential"); err != nil {
		return err
	}
	ctx := r.Context()
	if tok, err := s.callerToken(r); err != nil {
		return err
	} else if err := s.restrictedAppCred(ctx, tok); err != nil {
		return err
	}
	id := r.PathValue("cred")
	err := retry(ctx, func() error {
		o, err := s.getAppCred(ctx, uid, id)
		if err != nil {
			return err
		}
		t := s.st.Txn()
		t.Delete(o.Key, o.ModRevision)
		t.Remove(appCredNameKey(uid, o.Value.Name))
		_, err = t.Commit(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.revokeAppCredTokens(ctx, id); err != nil {
		return err
	}
	s.log.Info("application credential deleted", "user", uid, "application_credential", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeAppCredTokens revokes the live tokens an application credential issued.
func (s *Service) revokeAppCredTokens(ctx context.Context, id string) error {
	l, _, err := store.List[token](ctx, s.st, "keystone/tokens/")
	if err != nil {
		return err
	}
	for _, o := range l {
		if o.Value.AppCredID == id {
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

// appCredLogin checks an application credential login: the credential (by ID, or by name and
// user), its secret (rate limited like passwords) and its expiry.
func (s *Service) appCredLogin(r *http.Request, req loginRequest) (store.Object[appCred], error) {
	ctx := r.Context()
	id := req.appCredID
	var none store.Object[appCred]
	if id == "" {
		uo, found, err := s.resolveUser(ctx, req)
		if err != nil {
			return none, err
		}
		if found {
			if id, err = s.lookupName(ctx, appCredNameKey(uo.Value.ID, req.appCredName)); err != nil {
				return none, err
			}
		}
	}
	var o store.Object[appCred]
	var err error
	if validID(id) {
		o, err = store.Get[appCred](ctx, s.st, appCredKey(id))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return none, err
		}
	}
	key := "appcred\x00" + id
	if wait, ok := s.limiter.attempt(key, s.cfg.Now()); !ok {
		return none, tooManyFailures(wait)
	}
	hash := o.Value.SecretHash
	if hash == "" || bcrypt.CompareHashAndPassword([]byte(hash), appCredSecretDigest(req.password)) != nil {
		s.checkPassword("", req.password) // the same cost either way
		s.log.Info("login failed: application credential", "application_credential", id, "remote", r.RemoteAddr)
		return none, errUnauthorized
	}
	if o.Value.ExpiresAt != nil && !s.cfg.Now().Before(*o.Value.ExpiresAt) {
		s.log.Info("login failed: application credential expired", "application_credential", id)
		return none, errUnauthorized
	}
	s.limiter.succeeded(key)
	return o, nil
}

func (s *Service) registerAppCreds(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /v3/users/{id}/application_credentials", s.createAppCred)
	h("GET /v3/users/{id}/application_credentials", s.listAppCreds)
	h("GET /v3/users/{id}/application_credentials/{cred}", s.showAppCred)
	h("DELETE /v3/users/{id}/application_credentials/{cred}", s.deleteAppCred)
}

package keystone

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/vflink/vflink/internal/store"
)

// Stored objects. The JSON here is the store's, not the API's: see the view methods.

type domain struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Enabled     bool           `json:"enabled"`
	Tags        []string       `json:"tags,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
}

type project struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	DomainID    string   `json:"domain_id"`
	Description string   `json:"description,omitempty"`
	Enabled     bool     `json:"enabled"`
	Tags        []string `json:"tags,omitempty"`
	// ParentID is the parent project; "" means the domain (a top-level project).
	ParentID string         `json:"parent_id,omitempty"`
	Extra    map[string]any `json:"extra,omitempty"`
}

type user struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	DomainID         string         `json:"domain_id"`
	PasswordHash     string         `json:"password_hash,omitempty"` // bcrypt; never leaves the package
	Enabled          bool           `json:"enabled"`
	DefaultProjectID string         `json:"default_project_id,omitempty"`
	Description      string         `json:"description,omitempty"`
	Email            string         `json:"email,omitempty"`
	Extra            map[string]any `json:"extra,omitempty"`
}

type role struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id,omitempty"` // "" for a global role
	Description string         `json:"description,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
}

type group struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	DomainID    string         `json:"domain_id"`
	Description string         `json:"description,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
}

// token is what a token grants; it is stored under the SHA-256 of the token.
type token struct {
	UserID    string   `json:"user_id"`
	ProjectID string   `json:"project_id,omitempty"`
	DomainID  string   `json:"domain_id,omitempty"` // a domain-scoped token
	Roles     []role   `json:"roles,omitempty"`
	Methods   []string `json:"methods"`
	AuditID   string   `json:"audit_id"`
	// TrustID is the trust of a trust-scoped token.
	TrustID string `json:"trust_id,omitempty"`
	// AppCredID is the application credential the token was issued for.
	AppCredID string `json:"app_cred_id,omitempty"`
	// ParentAuditID is the audit ID of the token this one was made from (method token).
	ParentAuditID string    `json:"parent_audit_id,omitempty"`
	IssuedAt      time.Time `json:"issued_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// API views.

// withExtra returns the extra attributes with v over them.
func withExtra(extra map[string]any, v map[string]any) map[string]any {
	if len(extra) == 0 {
		return v
	}
	out := make(map[string]any, len(extra)+len(v))
	for k, x := range extra {
		out[k] = x
	}
	for k, x := range v {
		out[k] = x
	}
	return out
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (s *Service) domainView(d domain) map[string]any {
	return withExtra(d.Extra, map[string]any{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": orEmpty(d.Tags), "options": map[string]any{}, "links": map[string]any{"self": s.link("domains", d.ID)},
	})
}

// domainProjectView is a domain seen through the projects API (is_domain true).
func (s *Service) domainProjectView(d domain) map[string]any {
	return withExtra(d.Extra, map[string]any{
		"id": d.ID, "name": d.Name, "domain_id": nil, "description": d.Description, "enabled": d.Enabled,
		"parent_id": nil, "is_domain": true, "tags": orEmpty(d.Tags), "options": map[string]any{},
		"links": map[string]any{"self": s.link("projects", d.ID)},
	})
}

func (s *Service) projectView(p project) map[string]any {
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID
	}
	return withExtra(p.Extra, map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "description": p.Description, "enabled": p.Enabled,
		"parent_id": parent, "is_domain": false, "tags": orEmpty(p.Tags), "options": map[string]any{},
		"links": map[string]any{"self": s.link("projects", p.ID)},
	})
}

func (s *Service) userView(u user) map[string]any {
	v := withExtra(u.Extra, map[string]any{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": map[string]any{},
		"links": map[string]any{"self": s.link("users", u.ID)},
	})
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	return v
}

func (s *Service) roleView(r role) map[string]any {
	v := withExtra(r.Extra, map[string]any{
		"id": r.ID, "name": r.Name, "domain_id": nil, "description": nil, "options": map[string]any{},
		"links": map[string]any{"self": s.link("roles", r.ID)},
	})
	if r.DomainID != "" {
		v["domain_id"] = r.DomainID
	}
	if r.Description != "" {
		v["description"] = r.Description
	}
	return v
}

func (s *Service) groupView(g group) map[string]any {
	return withExtra(g.Extra, map[string]any{
		"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description,
		"links": map[string]any{"self": s.link("groups", g.ID)},
	})
}

// Reads.

// getOr404 reads an object, turning a missing key into a 404 naming kind and id.
func getOr404[T any](ctx context.Context, st *store.Store, key, kind, id string) (store.Object[T], error) {
	o, err := store.Get[T](ctx, st, key)
	if errors.Is(err, store.ErrNotFound) {
		return o, notFound(kind, id)
	}
	return o, err
}

// lookupName returns the ID a name key points to, or "" when there is none.
func (s *Service) lookupName(ctx context.Context, key string) (string, error) {
	o, err := store.Get[string](ctx, s.st, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return o.Value, err
}

// domainByIDOrName resolves {"id"} or {"name"} of a domain; found is false when neither matches.
func (s *Service) domainByIDOrName(ctx context.Context, id, name string) (domain, bool, error) {
	if id == "" {
		var err error
		if id, err = s.lookupName(ctx, domainNameKey(name)); err != nil || id == "" {
			return domain{}, false, err
		}
	}
	if !validID(id) {
		return domain{}, false, nil
	}
	o, err := store.Get[domain](ctx, s.st, domainKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return domain{}, false, nil
	}
	return o.Value, err == nil, err
}

// requireDomain reads the domain a body's field names: 404 when there is none, as Keystone
// answers (DomainNotFound).
func (s *Service) requireDomain(ctx context.Context, field, id string) (store.Object[domain], error) {
	if !validID(id) {
		return store.Object[domain]{}, errf(http.StatusNotFound, "Could not find domain: %s (given as %s).", id, field)
	}
	o, err := store.Get[domain](ctx, s.st, domainKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return o, errf(http.StatusNotFound, "Could not find domain: %s (given as %s).", id, field)
	}
	return o, err
}

// rolesByID reads every role (there are few).
func (s *Service) rolesByID(ctx context.Context) (map[string]role, error) {
	l, _, err := store.List[role](ctx, s.st, "keystone/roles/")
	if err != nil {
		return nil, err
	}
	m := make(map[string]role, len(l))
	for _, o := range l {
		m[o.Value.ID] = o.Value
	}
	return m, nil
}

// hasProject reports whether user u holds an effective role on project p (its own, its groups',
// inherited or implied).
func (s *Service) hasProject(ctx context.Context, u, p string) (bool, error) {
	roles, _, err := s.effectiveRoles(ctx, u, "project", p)
	return len(roles) > 0, err
}

package keystone

import (
	"context"
	"errors"
	"time"

	"github.com/vflink/vflink/internal/store"
)

// Stored objects. The JSON here is the store's, not the API's: see the view methods.

type domain struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Enabled     bool   `json:"enabled"`
}

type project struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	DomainID    string   `json:"domain_id"`
	Description string   `json:"description,omitempty"`
	Enabled     bool     `json:"enabled"`
	Tags        []string `json:"tags,omitempty"`
}

type user struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	DomainID         string `json:"domain_id"`
	PasswordHash     string `json:"password_hash,omitempty"` // bcrypt; never leaves the package
	Enabled          bool   `json:"enabled"`
	DefaultProjectID string `json:"default_project_id,omitempty"`
	Description      string `json:"description,omitempty"`
	Email            string `json:"email,omitempty"`
}

type role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// token is what a token grants; it is stored under the SHA-256 of the token.
type token struct {
	UserID    string    `json:"user_id"`
	ProjectID string    `json:"project_id,omitempty"`
	Roles     []role    `json:"roles,omitempty"`
	Methods   []string  `json:"methods"`
	AuditID   string    `json:"audit_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// API views.

func (s *Service) domainView(d domain) map[string]any {
	return map[string]any{
		"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled,
		"tags": []string{}, "options": map[string]any{}, "links": map[string]any{"self": s.link("domains", d.ID)},
	}
}

func (s *Service) projectView(p project) map[string]any {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "description": p.Description, "enabled": p.Enabled,
		"parent_id": p.DomainID, "is_domain": false, "tags": tags, "options": map[string]any{},
		"links": map[string]any{"self": s.link("projects", p.ID)},
	}
}

func (s *Service) userView(u user) map[string]any {
	v := map[string]any{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": map[string]any{},
		"links": map[string]any{"self": s.link("users", u.ID)},
	}
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
	return map[string]any{
		"id": r.ID, "name": r.Name, "domain_id": nil, "description": nil, "options": map[string]any{},
		"links": map[string]any{"self": s.link("roles", r.ID)},
	}
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

// requireDomain checks that field names an existing domain (400 otherwise).
func (s *Service) requireDomain(ctx context.Context, field, id string) (store.Object[domain], error) {
	if !validID(id) {
		return store.Object[domain]{}, invalid(field, "domain %q does not exist.", id)
	}
	o, err := store.Get[domain](ctx, s.st, domainKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return o, invalid(field, "domain %q does not exist.", id)
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

// hasProject reports whether user u holds any role on project p.
func (s *Service) hasProject(ctx context.Context, u, p string) (bool, error) {
	keys, _, err := s.st.Keys(ctx, assignmentKey(p, u, ""))
	return len(keys) > 0, err
}

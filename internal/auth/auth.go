// Package auth is the seam between the HTTP API and whoever vouches for a caller. An Authenticator
// turns a request into a Context (user, project, roles); handlers only ever look at the Context.
// NoAuth is Neutron's noauth mode for loopback development; the Keystone v3 subset plugs in here
// later without touching the handlers.
package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// ErrUnauthenticated is returned by an Authenticator that cannot vouch for the request.
var ErrUnauthenticated = errors.New("authentication required")

// Context is who is calling.
type Context struct {
	UserID    string
	ProjectID string
	Roles     []string
}

// IsAdmin reports whether the caller holds the admin role.
func (c *Context) IsAdmin() bool { return slices.Contains(c.Roles, "admin") }

// Authenticator vouches for a request or returns an error wrapping ErrUnauthenticated.
type Authenticator interface {
	Authenticate(r *http.Request) (*Context, error)
}

// NoAuth treats every request as an admin's. The project is the X-Project-Id header when present,
// else DefaultProject; a create body's tenant_id/project_id still picks the owner, as in Neutron.
type NoAuth struct {
	DefaultProject string
}

// Authenticate implements Authenticator.
func (n NoAuth) Authenticate(r *http.Request) (*Context, error) {
	p := r.Header.Get("X-Project-Id")
	if p == "" {
		p = n.DefaultProject
	}
	return &Context{UserID: "noauth", ProjectID: p, Roles: []string{"admin"}}, nil
}

type ctxKey struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// From returns the caller of ctx, or nil.
func From(ctx context.Context) *Context {
	c, _ := ctx.Value(ctxKey{}).(*Context)
	return c
}

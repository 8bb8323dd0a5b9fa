package keystone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vflink/vflink/internal/auth"
	"github.com/vflink/vflink/internal/store"
)

// Config configures the identity service.
type Config struct {
	// PublicURL is where clients reach this server, e.g. http://127.0.0.1:9696; the catalog and
	// every link are built from it.
	PublicURL string
	// Region of every catalog endpoint (default "RegionOne").
	Region string
	// TokenTTL is the lifetime of a token (default 1h).
	TokenTTL time.Duration
	// MaxLoginFailures per user within LoginWindow before logins get 429 (default 5).
	MaxLoginFailures int
	// LoginWindow (default 1m).
	LoginWindow time.Duration
	// PasswordCost is the bcrypt cost of new password hashes (default bcrypt.DefaultCost; tests
	// may use bcrypt.MinCost).
	PasswordCost int
	Logger       *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service implements the Keystone v3 subset over a store, and auth.Authenticator.
type Service struct {
	st      *store.Store
	cfg     Config
	log     *slog.Logger
	limiter *limiter

	dummyOnce sync.Once
	dummyHash []byte // compared against when the user is unknown, so both cost the same

}

var _ auth.Authenticator = (*Service)(nil)

// maxPasswordBytes is bcrypt's limit.
const maxPasswordBytes = 72

// New returns the identity service.
func New(st *store.Store, cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.MaxLoginFailures <= 0 {
		cfg.MaxLoginFailures = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = time.Minute
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Service{
		st: st, cfg: cfg, log: cfg.Logger.With("component", "keystone"),
		limiter: newLimiter(cfg.MaxLoginFailures, cfg.LoginWindow),
	}
}

// retry runs one optimistic write (store.Retry) with Keystone's answer when it keeps losing.
func retry(ctx context.Context, fn func() error) error {
	err := store.Retry(ctx, 32, func(int) error { return fn() })
	if errors.Is(err, store.ErrContention) {
		return errContention
	}
	return err
}

// newID returns a Keystone-style ID: 32 hex digits.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validID reports whether an ID from a URL can name a key.
func validID(id string) bool {
	return id != "" && len(id) <= 64 && !strings.ContainsAny(id, "/\x00")
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// caller returns the authenticated caller of a request, or a 401.
func caller(r *http.Request) (*auth.Context, error) {
	if c := auth.From(r.Context()); c != nil && c.UserID != "" {
		return c, nil
	}
	return nil, errUnauthorized
}

// requireAdmin returns the caller when it holds the admin role, else a 403 naming action.
func requireAdmin(r *http.Request, action string) (*auth.Context, error) {
	c, err := caller(r)
	if err != nil {
		return nil, err
	}
	if !c.IsAdmin() {
		return nil, forbidden(action)
	}
	return c, nil
}

// Register mounts the identity API under /v3 on mux.
func (s *Service) Register(mux *http.ServeMux) {
	// every route is served under /v3 and, as the catalog's identity endpoint, /identity/v3
	// (whose /identity/ is the version list clients discover)
	h := func(pattern string, f func(http.ResponseWriter, *http.Request) error) {
		hf := func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				s.writeError(w, err)
			}
		}
		mux.HandleFunc(pattern, hf)
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" /identity"+path, hf)
	}
	mux.HandleFunc("GET /identity/{$}", s.versions)
	h("GET /v3", s.version)
	h("GET /v3/{$}", s.version)

	h("POST /v3/auth/tokens", s.login)
	h("GET /v3/auth/tokens", s.validateToken)
	h("HEAD /v3/auth/tokens", s.checkToken)
	h("DELETE /v3/auth/tokens", s.revokeToken)
	h("GET /v3/auth/projects", s.authProjects)
	h("GET /v3/auth/catalog", s.authCatalog)

	h("POST /v3/users", s.createUser)
	h("GET /v3/users", s.listUsers)
	h("GET /v3/users/{id}", s.showUser)
	h("PATCH /v3/users/{id}", s.updateUser)
	h("DELETE /v3/users/{id}", s.deleteUser)
	h("GET /v3/users/{id}/projects", s.userProjects)
	h("POST /v3/users/{id}/password", s.changePassword)

	h("POST /v3/projects", s.createProject)
	h("GET /v3/projects", s.listProjects)
	h("GET /v3/projects/{id}", s.showProject)
	h("PATCH /v3/projects/{id}", s.updateProject)
	h("DELETE /v3/projects/{id}", s.deleteProject)

	s.registerDomains(h)
	s.registerRoles(h)
	s.registerGroups(h)
	s.registerGrants(h)
	s.registerCatalog(h)
	s.registerCredentials(h)
	s.registerProjectTags(h)
	s.registerAppCreds(h)
	s.registerTrusts(h)
	h("GET /v3/auth/domains", s.authDomains)
	h("GET /v3/auth/system", s.authSystem)
	h("GET /v3/role_assignments", s.listRoleAssignments)
}

func (s *Service) versionDoc(base string) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]string{{"rel": "self", "href": s.cfg.PublicURL + base + "/v3/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) error {
	base := ""
	if strings.HasPrefix(r.URL.Path, "/identity/") {
		base = "/identity"
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(base)})
	return nil
}

// versions is GET /identity/: Keystone's version list, answered with 300 Multiple Choices.
func (s *Service) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{
		"values": []map[string]any{s.versionDoc("/identity")}}})
}

func (s *Service) link(parts ...string) string {
	return s.cfg.PublicURL + "/v3/" + strings.Join(parts, "/")
}

// listLinks is the "links" member of a collection.
func (s *Service) listLinks(r *http.Request, collection string) map[string]any {
	self := s.cfg.PublicURL + "/v3/" + collection
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	return map[string]any{"self": self, "previous": nil, "next": nil}
}

// keys

func domainKey(id string) string    { return "keystone/domains/" + id }
func projectKey(id string) string   { return "keystone/projects/" + id }
func userKey(id string) string      { return "keystone/users/" + id }
func roleKey(id string) string      { return "keystone/roles/" + id }
func tokenKey(hash string) string   { return "keystone/tokens/" + hash }
func domainNameKey(n string) string { return "keystone/names/domains/" + url.PathEscape(n) }
func roleNameKey(n string) string   { return "keystone/names/roles/" + url.PathEscape(n) }
func projectNameKey(domainID, n string) string {
	return "keystone/names/projects/" + domainID + "/" + url.PathEscape(n)
}
func userNameKey(domainID, n string) string {
	return "keystone/names/users/" + domainID + "/" + url.PathEscape(n)
}
func assignmentKey(p, u, r string) string { return "keystone/assignments/" + p + "/" + u + "/" + r }
func projectAssignments(p string) string  { return "keystone/assignments/" + p + "/" }
func userAssignmentKey(u, p, r string) string {
	return "keystone/idx/user-assignments/" + u + "/" + p + "/" + r
}
func userAssignments(u string) string    { return "keystone/idx/user-assignments/" + u + "/" }
func userTokenKey(u, hash string) string { return "keystone/idx/user-tokens/" + u + "/" + hash }
func userTokens(u string) string         { return "keystone/idx/user-tokens/" + u + "/" }

package keystoneclient

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vflink/vflink/internal/auth"
)

const (
	// DefaultCacheTTL is the validation cache lifetime for vflink's server unless told otherwise,
	// and so the longest a revoked token is still accepted.
	DefaultCacheTTL = 60 * time.Second
	// DefaultMaxEntries bounds the validation cache when ValidatorConfig.MaxEntries is not set.
	DefaultMaxEntries = 10000
	// maxNegativeTTL: a refused token is remembered for min(CacheTTL, 5 s).
	maxNegativeTTL = 5 * time.Second
	// maxTokenLen: longer X-Auth-Token values are refused without asking Keystone (Fernet
	// tokens are about 200 bytes, JWS tokens under 1 KiB).
	maxTokenLen = 8192
)

// ValidatorConfig tunes a Validator. Its zero value is valid and caches nothing; vflink's server
// should set CacheTTL to DefaultCacheTTL unless configured otherwise.
type ValidatorConfig struct {
	// CacheTTL is how long a valid token's validation is reused without asking Keystone (never
	// beyond the token's expires_at); a refused token is remembered for min(CacheTTL, 5 s).
	// It is also the bound on revocation: a token revoked at Keystone is still accepted for at
	// most CacheTTL. Zero (or negative) disables the cache: every request asks Keystone.
	CacheTTL time.Duration
	// MaxEntries bounds the number of cached results (zero or negative: DefaultMaxEntries).
	// A tenth of them is kept for refused tokens, apart, so a flood of bad tokens cannot push
	// valid ones out. When full, expired entries go first, then the oldest.
	MaxEntries int
	// AdminRoles are role names that also make a caller "admin" (auth.Context.IsAdmin), added
	// to the names Keystone returns. "admin" itself always is; nil: only "admin".
	AdminRoles []string
	// Logger gets refusals (debug) and Keystone failures (warn); nil: the Session's logger.
	Logger *slog.Logger
}

// Validator checks the tokens that callers present against Keystone, as keystonemiddleware's
// auth_token does for an OpenStack service: GET /v3/auth/tokens with the service's own token in
// X-Auth-Token and the caller's in X-Subject-Token. It implements auth.Authenticator and is safe
// for concurrent use.
type Validator struct {
	s          *Session
	ttl        time.Duration
	negTTL     time.Duration
	adminRoles []string
	log        *slog.Logger
	now        func() time.Time

	valid, refused *resultCache // nil when disabled
	lookups        flight[tokenKey, lookupResult]

	hits, negativeHits, requests, shared atomic.Int64
}

var _ auth.Authenticator = (*Validator)(nil)

// lookupResult is what one validation request to Keystone found.
type lookupResult struct {
	who *auth.Context // nil when refused
	err error         // wraps auth.ErrUnauthenticated (refused) or ErrUnavailable
}

// NewValidator returns a validator that asks s's Keystone with s's service token. The service
// user needs a role that may validate other users' tokens (Keystone's identity:validate_token
// policy: admin or service).
func NewValidator(s *Session, cfg ValidatorConfig) (*Validator, error) {
	if s == nil {
		return nil, errors.New("keystone validator: the session is nil")
	}
	v := &Validator{s: s, log: cfg.Logger, now: time.Now}
	if v.log == nil {
		v.log = s.log
	} else {
		v.log = v.log.With("component", "keystoneclient", "auth_url", s.authURL)
	}
	v.adminRoles = []string{"admin"}
	for _, r := range cfg.AdminRoles {
		if r == "" {
			return nil, errors.New("keystone validator: an admin role name is empty")
		}
		if !slices.Contains(v.adminRoles, r) {
			v.adminRoles = append(v.adminRoles, r)
		}
	}
	if cfg.CacheTTL > 0 {
		max := cfg.MaxEntries
		if max <= 0 {
			max = DefaultMaxEntries
		}
		v.ttl = cfg.CacheTTL
		v.negTTL = min(cfg.CacheTTL, maxNegativeTTL)
		neg := max / 10
		v.valid = newResultCache(max - neg)
		if neg > 0 {
			v.refused = newResultCache(neg)
		}
	}
	return v, nil
}

// Authenticate implements auth.Authenticator: it validates the request's X-Auth-Token. A
// missing, malformed, unknown, expired or revoked token gives an error wrapping
// auth.ErrUnauthenticated; when Keystone cannot answer, the error wraps ErrUnavailable instead.
func (v *Validator) Authenticate(r *http.Request) (*auth.Context, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return nil, fmt.Errorf("the request has no X-Auth-Token header: %w", auth.ErrUnauthenticated)
	}
	return v.Validate(r.Context(), tok)
}

// Validate returns who token belongs to: the user, the project it is scoped to ("" for an
// unscoped, domain- or system-scoped token) and the names of its roles, as Keystone returns
// them (implied roles included: admin ⇒ member ⇒ reader), plus "admin" when one of them is an
// AdminRoles name. Results are cached as ValidatorConfig says; concurrent validations of one
// uncached token share one request to Keystone. The returned Context is the caller's to keep.
func (v *Validator) Validate(ctx context.Context, token string) (*auth.Context, error) {
	if len(token) > maxTokenLen || !printableASCII(token) {
		return nil, fmt.Errorf("the X-Auth-Token (%d bytes) is not a token: want at most %d printable ASCII characters: %w",
			len(token), maxTokenLen, auth.ErrUnauthenticated)
	}
	if token == "" {
		return nil, fmt.Errorf("the X-Auth-Token is empty: %w", auth.ErrUnauthenticated)
	}
	key := tokenKey(sha256.Sum256([]byte(token)))
	if v.valid != nil {
		now := v.now()
		if e, ok := v.valid.get(key, now); ok {
			v.hits.Add(1)
			return clone(e.who), nil
		}
		if v.refused != nil {
			if e, ok := v.refused.get(key, now); ok {
				v.negativeHits.Add(1)
				return nil, e.err
			}
		}
	}
	res, shared, err := v.lookups.do(ctx, key, func() (lookupResult, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*requestTimeout)
		defer cancel()
		return v.lookup(lctx, key, token), nil
	})
	if shared {
		v.shared.Add(1)
	}
	if err != nil { // this caller's context ended while waiting
		return nil, fmt.Errorf("validate token: %w: %w", ErrUnavailable, err)
	}
	if res.err != nil {
		return nil, res.err
	}
	return clone(res.who), nil
}

// lookup asks Keystone about token and caches the answer.
func (v *Validator) lookup(ctx context.Context, key tokenKey, token string) lookupResult {
	svc, err := v.s.Token(ctx)
	if err != nil {
		return v.unavailable(fmt.Errorf("validate token: service login: %w", err))
	}
	resp, data, err := v.get(ctx, svc, token)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		// Our own token was refused (expired or revoked early): log in again, retry once.
		v.log.Info("keystone refused the service token while validating; logging in again",
			"user", v.s.cfg.Username, "request_id", resp.Header.Get("X-Openstack-Request-Id"))
		v.s.Invalidate(svc)
		if svc, err = v.s.Token(ctx); err != nil {
			return v.unavailable(fmt.Errorf("validate token: service login after a 401: %w", err))
		}
		resp, data, err = v.get(ctx, svc, token)
	}
	if err != nil {
		return v.unavailable(fmt.Errorf("validate token at keystone %s: %w: %w", v.s.authURL, ErrUnavailable, err))
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		who, exp, err := v.parse(data)
		if err != nil {
			return v.unavailable(fmt.Errorf("validate token at keystone %s: %w: %v", v.s.authURL, ErrUnavailable, err))
		}
		if v.valid != nil {
			now := v.now()
			until := now.Add(v.ttl)
			if exp.Before(until) {
				until = exp
			}
			if now.Before(until) {
				if v.refused != nil {
					v.refused.drop(key)
				}
				v.valid.put(&cacheEntry{key: key, until: until, who: who}, now)
			}
		}
		return lookupResult{who: who}
	case code == http.StatusNotFound || code == http.StatusUnauthorized:
		// 404: Keystone does not know the token (bad, expired or revoked); 401 with a fresh
		// service token: it refuses the subject token.
		err := fmt.Errorf("keystone refused the token: %s: %w", describeAnswer(resp, data), auth.ErrUnauthenticated)
		v.log.Debug("token refused", "status", code, "request_id", resp.Header.Get("X-Openstack-Request-Id"))
		if v.refused != nil {
			now := v.now()
			v.valid.drop(key)
			v.refused.put(&cacheEntry{key: key, until: now.Add(v.negTTL), err: err}, now)
		}
		return lookupResult{err: err}
	case code == http.StatusForbidden:
		return v.unavailable(fmt.Errorf("validate token at keystone %s: %w: service user %q may not validate tokens: %s; give it the admin or service role in project %q",
			v.s.authURL, ErrUnavailable, v.s.cfg.Username, describeAnswer(resp, data), v.s.cfg.ProjectName))
	default:
		return v.unavailable(fmt.Errorf("validate token at keystone %s: %w: %s, want 200 OK or 404 Not Found",
			v.s.authURL, ErrUnavailable, describeAnswer(resp, data)))
	}
}

func (v *Validator) unavailable(err error) lookupResult {
	v.log.Warn("cannot validate tokens", "err", err)
	return lookupResult{err: err}
}

// get sends GET /v3/auth/tokens?nocatalog for token with the service token svc.
func (v *Validator) get(ctx context.Context, svc, token string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.s.authURL+"/auth/tokens?nocatalog", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-Auth-Token", svc)
	req.Header.Set("X-Subject-Token", token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	v.requests.Add(1)
	resp, err := v.s.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxValidateAnswer))
	if err != nil && resp.StatusCode == http.StatusOK {
		return nil, nil, fmt.Errorf("read the answer: %w", err)
	}
	return resp, data, nil
}

// parse reads a validation answer into the caller and the token's expiry.
func (v *Validator) parse(data []byte) (*auth.Context, time.Time, error) {
	var a tokenAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, time.Time{}, fmt.Errorf("the answer is not a token: %v", err)
	}
	if a.Token.User.ID == "" {
		return nil, time.Time{}, errors.New("the answer has no token.user.id")
	}
	exp, err := parseTime(a.Token.ExpiresAt)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("token.expires_at: %v", err)
	}
	who := &auth.Context{UserID: a.Token.User.ID, Roles: make([]string, 0, len(a.Token.Roles)+1)}
	if a.Token.Project != nil {
		who.ProjectID = a.Token.Project.ID
	}
	admin := false
	for _, r := range a.Token.Roles {
		if r.Name == "" || slices.Contains(who.Roles, r.Name) {
			continue
		}
		who.Roles = append(who.Roles, r.Name)
		admin = admin || slices.Contains(v.adminRoles, r.Name)
	}
	if admin && !slices.Contains(who.Roles, "admin") {
		who.Roles = append(who.Roles, "admin")
	}
	return who, exp, nil
}

// Stats counts what the validator did since it was made.
type Stats struct {
	Hits         int64 // validations answered from the cache with a caller
	NegativeHits int64 // validations refused from the cache
	Requests     int64 // validation requests sent to Keystone (a retry after a service-token 401 is a second)
	Shared       int64 // validations that waited for another's request for the same token
	Entries      int   // valid tokens cached now
	Refused      int   // refused tokens cached now
}

// Stats returns the validator's counters.
func (v *Validator) Stats() Stats {
	st := Stats{Hits: v.hits.Load(), NegativeHits: v.negativeHits.Load(), Requests: v.requests.Load(), Shared: v.shared.Load()}
	if v.valid != nil {
		st.Entries = v.valid.len()
	}
	if v.refused != nil {
		st.Refused = v.refused.len()
	}
	return st
}

func clone(c *auth.Context) *auth.Context {
	d := *c
	d.Roles = slices.Clone(c.Roles)
	return &d
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

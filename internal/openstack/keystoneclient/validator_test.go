package keystoneclient

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vflink/vflink/internal/auth"
)

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2.0/networks", nil)
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	return r
}

func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, auth.ErrUnauthenticated) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("%s: %v, want auth.ErrUnauthenticated and not ErrUnavailable", what, err)
	}
}

func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("%s: %v, want ErrUnavailable and not auth.ErrUnauthenticated", what, err)
	}
}

func TestAuthenticateCallers(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute, AdminRoles: []string{"cloud_admin"}})
	f.addUser(&fakeUser{name: "ops", password: "x", project: "demo", roles: []string{"cloud_admin", "reader"}})
	tests := []struct {
		name          string
		user, project string
		domain        string
		want          auth.Context
		admin, writer bool
	}{
		{"member", "demo", "demo", "", auth.Context{UserID: "uid-demo", ProjectID: "pid-demo", Roles: []string{"member", "reader"}}, false, true},
		{"admin with implied roles", "boss", "demo", "", auth.Context{UserID: "uid-boss", ProjectID: "pid-demo", Roles: []string{"admin", "member", "reader"}}, true, true},
		{"reader", "rdr", "demo", "", auth.Context{UserID: "uid-rdr", ProjectID: "pid-demo", Roles: []string{"reader"}}, false, false},
		{"extra admin role", "ops", "demo", "", auth.Context{UserID: "uid-ops", ProjectID: "pid-demo", Roles: []string{"cloud_admin", "reader", "admin"}}, true, true},
		{"unscoped", "demo", "", "", auth.Context{UserID: "uid-demo", Roles: []string{}}, false, false},
		{"domain-scoped", "boss", "", "default", auth.Context{UserID: "uid-boss", Roles: []string{"admin", "member", "reader"}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.issue(tt.user, tt.project, tt.domain, time.Hour)
			got, err := v.Authenticate(request(tok))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, got); d != "" {
				t.Errorf("context (-want +got):\n%s", d)
			}
			// as vflink's policy reads it (neutron canWrite: admin or member)
			writer := got.IsAdmin() || contains(got.Roles, "member")
			if got.IsAdmin() != tt.admin || writer != tt.writer {
				t.Errorf("IsAdmin %v, may write %v; want %v, %v", got.IsAdmin(), writer, tt.admin, tt.writer)
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestAuthenticateWithoutTokenAsksNobody(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute})
	for _, tc := range []struct{ name, tok, want string }{
		{"no header", "", "the request has no X-Auth-Token header"},
		{"control character", "gAAAA\x01bc", "is not a token"},
		{"space", "gAAAA bc", "is not a token"},
		{"too long", strings.Repeat("a", 8193), "(8193 bytes) is not a token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request("")
			if tc.tok != "" {
				r.Header["X-Auth-Token"] = []string{tc.tok}
			}
			_, err := v.Authenticate(r)
			wantRefused(t, tc.name, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	if n := f.logins.Load() + f.validations.Load(); n != 0 {
		t.Errorf("%d requests to Keystone, want none", n)
	}
}

func TestValidationCacheAndRevocation(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute})
	tok := f.issue("demo", "demo", "", time.Hour)
	for range 5 {
		if _, err := v.Authenticate(request(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if st := v.Stats(); st.Requests != 1 || st.Hits != 4 || st.Entries != 1 {
		t.Fatalf("after 5 validations: %+v, want 1 request, 4 hits, 1 entry", st)
	}
	if n := f.validations.Load(); n != 1 {
		t.Fatalf("Keystone saw %d validations, want 1", n)
	}
	f.revoke(tok)
	c.advance(59 * time.Second)
	if _, err := v.Authenticate(request(tok)); err != nil {
		t.Fatalf("revoked 59 s ago, cache TTL 60 s: %v; want still accepted from the cache", err)
	}
	c.advance(time.Second)
	_, err := v.Authenticate(request(tok))
	wantRefused(t, "revoked, cache TTL passed", err)
	if !strings.Contains(err.Error(), "keystone refused the token: 404 Not Found: Could not recognize Fernet token (request req-") {
		t.Errorf("refusal %q does not carry Keystone's answer", err)
	}
	assertNoSecret(t, "error", err.Error(), tok)
	if st := v.Stats(); st.Requests != 2 {
		t.Errorf("requests %d, want 2", st.Requests)
	}
}

func TestValidationCachedNoLongerThanTheToken(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute})
	tok := f.issue("demo", "demo", "", 10*time.Second)
	if _, err := v.Authenticate(request(tok)); err != nil {
		t.Fatal(err)
	}
	c.advance(9 * time.Second)
	if _, err := v.Authenticate(request(tok)); err != nil || v.Stats().Hits != 1 {
		t.Fatalf("9 s of 10: err %v, stats %+v; want a cache hit", err, v.Stats())
	}
	c.advance(time.Second)
	_, err := v.Authenticate(request(tok))
	wantRefused(t, "token expired within the cache TTL", err)
	if v.Stats().Requests != 2 {
		t.Errorf("requests %d, want 2: the entry must end with the token", v.Stats().Requests)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	v := f.validator(t, f.session(t, nil), ValidatorConfig{}) // CacheTTL 0
	tok := f.issue("demo", "demo", "", time.Hour)
	for range 3 {
		if _, err := v.Authenticate(request(tok)); err != nil {
			t.Fatal(err)
		}
	}
	f.revoke(tok)
	wantRefused(t, "revoked, no cache", func() error { _, err := v.Authenticate(request(tok)); return err }())
	wantRefused(t, "revoked, no cache, again", func() error { _, err := v.Authenticate(request(tok)); return err }())
	if st := v.Stats(); st.Requests != 5 || st.Hits != 0 || st.NegativeHits != 0 || st.Entries != 0 {
		t.Errorf("stats %+v, want 5 requests and nothing cached", st)
	}
}

func TestNegativeCache(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute})
	bad := newID()
	for range 10 {
		_, err := v.Authenticate(request(bad))
		wantRefused(t, "unknown token", err)
		assertNoSecret(t, "error", err.Error(), bad)
	}
	if st := v.Stats(); st.Requests != 1 || st.NegativeHits != 9 || st.Refused != 1 {
		t.Fatalf("10 validations of one bad token: %+v; want 1 request, 9 negative hits", st)
	}
	c.advance(5 * time.Second) // refusals are remembered min(60 s, 5 s)
	v.Authenticate(request(bad))
	if st := v.Stats(); st.Requests != 2 {
		t.Fatalf("after 5 s: %d requests, want 2", st.Requests)
	}
	// with a CacheTTL under 5 s, refusals are remembered for CacheTTL
	v2 := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: 2 * time.Second})
	v2.Authenticate(request(bad))
	c.advance(1999 * time.Millisecond)
	v2.Authenticate(request(bad))
	c.advance(time.Millisecond)
	v2.Authenticate(request(bad))
	if st := v2.Stats(); st.Requests != 2 || st.NegativeHits != 1 {
		t.Fatalf("CacheTTL 2 s: %+v, want 2 requests, 1 negative hit", st)
	}
}

func TestServiceTokenRefusedLogsInAgain(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	first, _ := s.Token(context.Background())
	f.revoke(first) // e.g. the service user's password was changed
	tok := f.issue("demo", "demo", "", time.Hour)
	who, err := v.Authenticate(request(tok))
	if err != nil || who.UserID != "uid-demo" {
		t.Fatalf("validation after the service token was revoked: %v, %v; want demo after a new login", who, err)
	}
	if l, st := f.logins.Load(), v.Stats(); l != 2 || st.Requests != 2 {
		t.Errorf("logins %d, validation requests %d; want 2 and 2 (one 401, one retry)", l, st.Requests)
	}
	if now, _ := s.Token(context.Background()); now == first {
		t.Error("the session still has the refused token")
	}
}

func TestSubjectToken401IsRefusedAfterOneRetry(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute})
	tok := f.issue("demo", "demo", "", time.Hour)
	f.mu.Lock()
	f.tokens[tok].refuse401 = true
	f.mu.Unlock()
	_, err := v.Authenticate(request(tok))
	wantRefused(t, "401 with a fresh service token", err)
	if l, st := f.logins.Load(), v.Stats(); l != 2 || st.Requests != 2 {
		t.Errorf("logins %d, requests %d; want 2 and 2 (one retry, not more)", l, st.Requests)
	}
	v.Authenticate(request(tok))
	if st := v.Stats(); st.NegativeHits != 1 {
		t.Errorf("the refusal was not cached: %+v", st)
	}
}

func TestKeystoneUnavailable(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	s := f.session(t, nil)
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	tok := f.issue("demo", "demo", "", time.Hour)
	for _, code := range []int32{500, 502, 503, 400} {
		f.validateStatus.Store(code)
		_, err := v.Authenticate(request(tok))
		wantUnavailable(t, fmt.Sprintf("validation answered %d", code), err)
		if !strings.Contains(err.Error(), fmt.Sprintf("%d %s: fake validation failure", code, http.StatusText(int(code)))) {
			t.Errorf("error %q does not name Keystone's answer", err)
		}
	}
	f.validateStatus.Store(0)
	if _, err := v.Authenticate(request(tok)); err != nil {
		t.Fatalf("after the outage: %v; failures must not be cached", err)
	}
	// login fails: unavailable, not refused
	tok2 := f.issue("demo", "demo", "", time.Hour)
	svc, _ := s.Token(context.Background())
	s.Invalidate(svc)
	f.status.Store(503)
	_, err := v.Authenticate(request(tok2))
	wantUnavailable(t, "service login answered 503", err)
	if !strings.Contains(err.Error(), "validate token: service login") {
		t.Errorf("error %q does not say the service login failed", err)
	}
	// Keystone gone
	f.srv.Close()
	c.advance(time.Second)
	_, err = v.Authenticate(request(tok2))
	wantUnavailable(t, "Keystone closed", err)
	// the cached token still works
	if _, err := v.Authenticate(request(tok)); err != nil {
		t.Fatalf("cached token during the outage: %v", err)
	}
}

func TestServiceUserMayNotValidate(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, func(c *SessionConfig) { c.Username, c.Password, c.ProjectName = "demo", "demo-Pa55word", "demo" })
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	_, err := v.Authenticate(request(f.issue("rdr", "demo", "", time.Hour)))
	wantUnavailable(t, "403", err)
	if want := `service user "demo" may not validate tokens: 403 Forbidden: You are not authorized to perform the requested action: identity:validate_token.`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}

func TestConcurrentValidationsShareOneRequest(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	s.Token(context.Background()) // logged in: the hold below is for validations
	tok := f.issue("demo", "demo", "", time.Hour)
	release := f.hold(false)
	const n = 20
	who := make([]*auth.Context, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { who[i], errs[i] = v.Authenticate(request(tok)) })
	}
	key := tokenKey(sha256.Sum256([]byte(tok)))
	waitFor(t, "19 validations waiting for the first one's", func() bool { return v.lookups.waiting(key) == n-1 })
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || who[i].UserID != "uid-demo" {
			t.Fatalf("caller %d: %v, %v", i, who[i], errs[i])
		}
	}
	if st := v.Stats(); st.Requests != 1 || st.Shared != n-1 || f.validations.Load() != 1 {
		t.Errorf("stats %+v, Keystone saw %d; want 1 request shared by %d", st, f.validations.Load(), n-1)
	}
	// each caller has its own copy
	who[0].Roles[0] = "admin"
	if again, _ := v.Authenticate(request(tok)); again.IsAdmin() || who[1].IsAdmin() {
		t.Error("a caller's change to its Context reached the cache or another caller")
	}
}

func TestValidationCallerContextEnds(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	s := f.session(t, nil)
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	s.Token(context.Background())
	tok := f.issue("demo", "demo", "", time.Hour)
	release := f.hold(false)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := v.Validate(ctx, tok); done <- err }()
	waitFor(t, "the validation request", func() bool { return f.validations.Load() == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("cancelled caller: %v, want context.Canceled and ErrUnavailable", err)
	}
	release()
	waitFor(t, "the abandoned validation to be cached", func() bool { return v.Stats().Entries == 1 })
	if _, err := v.Validate(context.Background(), tok); err != nil || f.validations.Load() != 1 {
		t.Fatalf("after the abandoned validation: %v, %d requests; want its cached result", err, f.validations.Load())
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := newFakeKeystone(t, newClock())
	v := f.validator(t, f.session(t, nil), ValidatorConfig{CacheTTL: time.Minute, MaxEntries: 10})
	var toks []string
	for range 20 {
		tok := f.issue("demo", "demo", "", time.Hour)
		toks = append(toks, tok)
		if _, err := v.Authenticate(request(tok)); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		v.Authenticate(request(newID())) // refused ones have their own tenth
	}
	if st := v.Stats(); st.Entries != 9 || st.Refused != 1 {
		t.Fatalf("MaxEntries 10: %d valid and %d refused cached, want 9 and 1", st.Entries, st.Refused)
	}
	before := v.Stats().Requests
	v.Authenticate(request(toks[19])) // among the newest: cached
	v.Authenticate(request(toks[0]))  // the oldest: evicted
	if got := v.Stats().Requests - before; got != 1 {
		t.Errorf("%d requests for the newest and the oldest token, want 1 (the oldest)", got)
	}
}

func TestResultCacheEvictsExpiredFirst(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newResultCache(3)
	k := func(i byte) tokenKey { return tokenKey{i} }
	who := &auth.Context{UserID: "u"}
	c.put(&cacheEntry{key: k(1), until: now.Add(time.Second), who: who}, now)
	c.put(&cacheEntry{key: k(2), until: now.Add(time.Minute), who: who}, now)
	c.put(&cacheEntry{key: k(3), until: now.Add(time.Minute), who: who}, now)
	later := now.Add(2 * time.Second)
	c.put(&cacheEntry{key: k(4), until: later.Add(time.Minute), who: who}, later) // 1 expired: it goes
	for i, want := range []bool{false, true, true, true} {
		if _, ok := c.get(k(byte(i+1)), later); ok != want {
			t.Errorf("entry %d cached %v, want %v", i+1, ok, want)
		}
	}
	c.put(&cacheEntry{key: k(5), until: later.Add(time.Minute), who: who}, later) // full: the oldest (2) goes
	if _, ok := c.get(k(2), later); ok || c.len() != 3 {
		t.Errorf("after a put into a full cache: entry 2 cached %v, %d entries; want it evicted, 3", ok, c.len())
	}
	c.put(&cacheEntry{key: k(3), until: later.Add(time.Hour), who: who}, later) // replace, not add
	if c.len() != 3 {
		t.Errorf("replacing an entry: %d entries, want 3", c.len())
	}
	if _, ok := c.get(k(5), later.Add(time.Minute)); ok || c.len() != 2 {
		t.Errorf("expired entry found or kept: %d entries", c.len())
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	c := newClock()
	f := newFakeKeystone(t, c)
	var lb logBuffer
	s := f.session(t, func(cfg *SessionConfig) { cfg.Logger = lb.logger() })
	v := f.validator(t, s, ValidatorConfig{CacheTTL: time.Minute})
	var secrets []string
	var errs []string
	record := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	tok := f.issue("demo", "demo", "", time.Hour)
	secrets = append(secrets, tok, "s3rvice-Pa55word")
	_, err := v.Authenticate(request(tok))
	record(err)
	svc, _ := s.Token(context.Background())
	secrets = append(secrets, svc)
	f.revoke(svc) // 401, relogin
	_, err = v.Authenticate(request(f.issue("rdr", "demo", "", time.Hour)))
	record(err)
	svc2, _ := s.Token(context.Background())
	secrets = append(secrets, svc2)
	bad := newID()
	secrets = append(secrets, bad)
	_, err = v.Authenticate(request(bad))
	record(err)
	f.validateStatus.Store(503)
	_, err = v.Authenticate(request(f.issue("demo", "demo", "", time.Hour)))
	record(err)
	s.Invalidate(svc2)
	f.status.Store(401)
	_, err = v.Authenticate(request(f.issue("demo", "demo", "", time.Hour)))
	record(err)
	// a session with a wrong password logs its failure
	s2 := f.session(t, func(cfg *SessionConfig) { cfg.Password = secretPW; cfg.Logger = lb.logger() })
	f.status.Store(0)
	_, err = s2.Token(context.Background())
	record(err)
	secrets = append(secrets, secretPW)
	out := lb.String()
	for _, want := range []string{"service user logged in", "service token invalidated", "keystone refused the service token",
		"token refused", "cannot validate tokens", "service login failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	assertNoSecret(t, "log", out, secrets...)
	assertNoSecret(t, "errors", strings.Join(errs, "\n"), secrets...)
	if len(errs) < 4 {
		t.Errorf("only %d errors recorded, want at least 4", len(errs))
	}
}

func TestNewValidatorChecks(t *testing.T) {
	if _, err := NewValidator(nil, ValidatorConfig{}); err == nil {
		t.Error("NewValidator(nil) succeeded")
	}
	f := newFakeKeystone(t, newClock())
	if _, err := NewValidator(f.session(t, nil), ValidatorConfig{AdminRoles: []string{""}}); err == nil || !strings.Contains(err.Error(), "admin role name is empty") {
		t.Errorf("empty admin role: %v", err)
	}
}

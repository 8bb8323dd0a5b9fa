// Package keystoneclient is vflink's client of a real OpenStack Identity service (Keystone v3),
// for when vflink serves as Neutron behind it instead of behind its own identity subset
// (internal/openstack/keystone):
//
//   - Session is a service user's session: a password login scoped to a project
//     (POST /v3/auth/tokens), its token kept until a caller reports it refused (Invalidate)
//     and renewed in the background shortly before it expires (callers keep getting the valid
//     one meanwhile), and the service endpoints of the login's catalog (Endpoint). Concurrent
//     callers that need a login share one.
//   - Validator checks the tokens callers present, as keystonemiddleware's auth_token does for
//     an OpenStack service: GET /v3/auth/tokens with the service token in X-Auth-Token and the
//     caller's in X-Subject-Token. It implements auth.Authenticator; the caller's roles are the
//     names Keystone returns (implied ones included: admin ⇒ member ⇒ reader), which is what
//     Neutron's default policy and vflink's checks (auth.Context.IsAdmin, neutron's canWrite)
//     look at.
//
// It is written by hand because no Go Keystone client fits: gophercloud, the maintained Go
// OpenStack SDK, is not a dependency of vflink (none is added for this), vflink would use it
// for two requests only, and it has none of the parts that matter here — one shared login, a
// bounded validation cache keyed by token hashes, and the line between "refuse the caller" and
// "Keystone is unavailable" — which are vflink's to state and test either way.
//
// # Failures
//
// A token Keystone does not know (404: malformed, expired, revoked), or one it refuses with 401
// even after the service user has logged in again, is refused with an error wrapping
// auth.ErrUnauthenticated. When Keystone cannot be reached, answers 5xx or something that is not
// a token, refuses the service user's login (ErrLoginRefused) or forbids it to validate tokens
// (403: it needs the admin or service role), the error wraps ErrUnavailable instead and not
// auth.ErrUnauthenticated, so the API answers 503 rather than telling a caller whose token may
// be fine that it is bad. A 401 for the service token itself makes the Validator log in again
// and retry once.
//
// # Cache and revocation
//
// Validation results are cached in memory, keyed by the SHA-256 of the token (a token is never
// kept, logged or put in an error): a valid token for min(CacheTTL, until its expires_at), a
// refused one for min(CacheTTL, 5s). At most MaxEntries results are held (default 10000; a
// tenth of them apart for refused tokens, so a flood of bad tokens cannot push valid ones out);
// when full, expired entries go first, then the oldest. Keystone is not asked again while a
// result is cached, so a token revoked at Keystone is still accepted for at most CacheTTL
// (DefaultCacheTTL, 60s, is the value for vflink's server) after its revocation; CacheTTL 0 disables the
// cache and makes revocation immediate (but for a validation already in flight, which
// concurrent requests share), at the price of one Keystone request per API request.
// Concurrent validations of one uncached token share a single request to Keystone. Expiry is
// compared with the local clock, so a clock ahead of Keystone's shortens a token's cached life
// and one behind it lengthens it by the difference (at most CacheTTL either way).
//
// The service user's password is sent only in the login request's body; it never appears in a
// log line or an error, and SessionConfig prints and logs without it.
package keystoneclient

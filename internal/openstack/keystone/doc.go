// Package keystone is vflink's Keystone v3 identity face: password and token (rescope) logins
// with project-scoped, domain-scoped and unscoped tokens, token validation and revocation; users,
// groups and memberships, projects (hierarchy, tags, projects acting as domains), domains (with
// their domain-specific configuration), roles (global and domain-specific, implied roles), role
// assignments of users and groups on projects, domains and the system, inherited to projects
// (OS-INHERIT), effective assignments; the catalog API (regions, services, endpoints, endpoint
// groups) whose services join vflink's own in tokens; credentials, policies and OAuth1 consumers;
// all stored in etcd through internal/store. *Service implements auth.Authenticator, so the rest
// of the API trusts the same tokens on every server. Every route is served under /v3 and
// /identity/v3 (the catalog's identity endpoint; GET /identity/ lists the version).
//
// Tokens are 32 random bytes in base64url. Only the SHA-256 of a token is stored, under a key
// attached to an etcd lease of the token's lifetime, so expired tokens disappear by themselves;
// Authenticate also checks expires_at against the clock. Revocation deletes the key, which every
// server sees on its next read. A token is written in one etcd transaction whose compares require
// the user, the project and every role assignment it grants to be unchanged since they were read,
// so a token is never issued for a user, project or role that was removed concurrently.
// Disabling or deleting a user, changing its password, removing a role from it, and disabling or
// deleting a project revoke the affected tokens in the same transaction.
//
// Names are unique per domain through name keys created in the same transaction as the object.
// Passwords are bcrypt hashes; they are never returned, logged or echoed in an error. Failed
// logins are counted per user (in memory, per server): after Config.MaxLoginFailures within
// Config.LoginWindow further attempts get 429 until the window has passed. Every error leaves
// through writeError in Keystone's {"error": {"code", "title", "message"}} shape.
//
// Key layout below the store prefix:
//
//	keystone/domains/<id>                             domain
//	keystone/names/domains/<name>                     domain ID
//	keystone/projects/<id>                            project
//	keystone/names/projects/<domain>/<name>           project ID
//	keystone/users/<id>                               user (with the bcrypt hash)
//	keystone/names/users/<domain>/<name>              user ID
//	keystone/roles/<id>                               role
//	keystone/names/roles/<name>                       role ID
//	keystone/assignments/<project>/<user>/<role>      ""   role assignment
//	keystone/idx/user-assignments/<user>/<project>/<role>  ""   the same, by user
//	keystone/groups/<id>, keystone/names/groups/<domain>/<name>   group, its ID
//	keystone/members/<group>/<user>, keystone/idx/user-groups/<user>/<group>   membership
//	keystone/names/domain-roles/<domain>/<name>       ID of a domain-specific role
//	keystone/implied/<prior>/<implied>                ""   role inference rule
//	keystone/grants/<target>/<actor>/<role>           ""   any other assignment (grants.go)
//	keystone/idx/actor-grants/<actor>/<target>/<role> ""   the same, by actor
//	keystone/{regions,services,endpoints,endpoint-groups,credentials,policies,consumers}/<id>
//	keystone/domain-configs/<domain>                  domain-specific configuration
//	keystone/tokens/<hex sha256 of token>             token (leased)
//	keystone/idx/user-tokens/<user>/<hex sha256>      project ID of the token (leased)
//
// Names in keys are path-escaped (url.PathEscape), so a "/" in a name cannot forge another key.
//
// Tokens are written with Txn.PutLeased under a lease of the token's lifetime, so expired tokens
// disappear from the store by themselves; revocation deletes the key, which every server sees.
package keystone

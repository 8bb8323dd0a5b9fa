// Package keystone is vflink's Keystone v3 identity face: password login with project-scoped and
// unscoped tokens, token validation and revocation, users, projects, the bootstrap domain, roles
// and project role assignments, all stored in etcd through internal/store. *Service implements
// auth.Authenticator, so the rest of the API trusts the same tokens on every server.
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
//	keystone/tokens/<hex sha256 of token>             token (leased)
//	keystone/idx/user-tokens/<user>/<hex sha256>      project ID of the token (leased)
//
// Names in keys are path-escaped (url.PathEscape), so a "/" in a name cannot forge another key.
//
// Tokens are written with Txn.PutLeased under a lease of the token's lifetime, so expired tokens
// disappear from the store by themselves; revocation deletes the key, which every server sees.
package keystone

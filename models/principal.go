package models

import "slices"

// Role is a user's role. Nobody can set it through the public API; the first
// admin comes from the CLI.
type Role string

// The roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// Scope is a permission an API key can carry.
type Scope string

// The API-key scopes.
const (
	ScopeProjectsRead  Scope = "projects:read"
	ScopeProjectsWrite Scope = "projects:write"
)

// AllScopes lists every scope an API key can carry.
var AllScopes = []Scope{ScopeProjectsRead, ScopeProjectsWrite}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(AllScopes, s) }

// PrincipalKind tells how a caller authenticated.
type PrincipalKind int

// The kinds of principal.
const (
	PrincipalNone    PrincipalKind = iota // anonymous
	PrincipalSession                      // a user with a session token
	PrincipalAPIKey                       // a user's API key, limited to its scopes
	PrincipalService                      // a service with a verified client certificate
)

// Principal is the authenticated caller of one request. It is made only by
// the authentication code from a verified credential, never from input.
type Principal struct {
	Kind      PrincipalKind
	UserID    string  // the acting user (sessions and API keys)
	Role      Role    // the user's role at authentication time
	SessionID string  // set for PrincipalSession
	APIKeyID  string  // set for PrincipalAPIKey
	Scopes    []Scope // set for PrincipalAPIKey
	RateLimit int     // the API key's own requests per minute (PrincipalAPIKey)
	Service   string  // set for PrincipalService
}

// Authenticated reports whether the principal is anything but anonymous.
func (p Principal) Authenticated() bool { return p.Kind != PrincipalNone }

// IsAdmin reports whether the principal acts with the admin role. An API key
// never does: administration needs a session.
func (p Principal) IsAdmin() bool { return p.Kind == PrincipalSession && p.Role == RoleAdmin }

// HasScope reports whether the principal may use a function that needs
// scope. A session has every scope of its user; an API key only its own.
func (p Principal) HasScope(s Scope) bool {
	switch p.Kind {
	case PrincipalSession:
		return true
	case PrincipalAPIKey:
		return slices.Contains(p.Scopes, s)
	}
	return false
}

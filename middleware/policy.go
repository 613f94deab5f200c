package middleware

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// policyKind is unexported so that the only policies are the ones built by
// the constructors below; the zero Policy is invalid.
type policyKind int

const (
	policyInvalid policyKind = iota
	policyPublic
	policyAuthenticated
	policyOwner
	policyAdmin
	policyService
)

// Policy says who may call a route. Every route is registered with one;
// the router refuses to start with a route whose policy is the zero value.
type Policy struct {
	kind  policyKind
	scope models.Scope
}

// Public lets anyone call the route; credentials are not even read.
func Public() Policy { return Policy{kind: policyPublic} }

// Authenticated admits a signed-in user with a session. API keys are refused
// (403): they act on resources, never on the account that owns them.
func Authenticated() Policy { return Policy{kind: policyAuthenticated} }

// Owner admits a user acting on their own resources: through a session, or
// an API key that carries scope. Which rows are "their own" is decided by the
// owner-scoped repositories, so a foreign object is 404, not 403.
func Owner(scope models.Scope) Policy { return Policy{kind: policyOwner, scope: scope} }

// Admin admits a user with the admin role, through a session only.
func Admin() Policy { return Policy{kind: policyAdmin} }

// Service admits another service that presented a client certificate
// verified against the pinned client CA of the mTLS listener. Bearer tokens
// are not read: a user token cannot reach a service route, and service
// routes are registered on the mTLS listener only.
func Service() Policy { return Policy{kind: policyService} }

// Valid reports whether p was made by one of the constructors.
func (p Policy) Valid() bool {
	switch p.kind {
	case policyPublic, policyAuthenticated, policyAdmin, policyService:
		return true
	case policyOwner:
		return p.scope != ""
	}
	return false
}

// IsPublic reports whether the route needs no credentials.
func (p Policy) IsPublic() bool { return p.kind == policyPublic }

// IsAdmin reports whether p is the admin policy.
func (p Policy) IsAdmin() bool { return p.kind == policyAdmin }

// IsService reports whether the route is for services on the mTLS listener.
func (p Policy) IsService() bool { return p.kind == policyService }

// Scope is the API-key scope an Owner route needs ("" for other policies).
func (p Policy) Scope() models.Scope { return p.scope }

// String names the policy, for the route table, logs and the API document.
func (p Policy) String() string {
	switch p.kind {
	case policyPublic:
		return "public"
	case policyAuthenticated:
		return "authenticated"
	case policyOwner:
		return "owner(" + string(p.scope) + ")"
	case policyAdmin:
		return "admin"
	case policyService:
		return "service"
	}
	return "invalid"
}

// Authenticator resolves a bearer credential to a principal. It returns a
// KindUnauthenticated error for anything it does not accept.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (models.Principal, error)
}

const principalKey = "rampart.principal"

// PrincipalOf returns the authenticated caller of the request (the zero,
// anonymous principal on public routes).
func PrincipalOf(c echo.Context) models.Principal {
	p, _ := c.Get(principalKey).(models.Principal)
	return p
}

// WWWAuthenticate is the challenge sent with 401 answers (RFC 6750).
const WWWAuthenticate = `Bearer realm="rampart"`

// Enforce authenticates the caller and applies p before the handler runs:
// 401 without valid credentials (with a WWW-Authenticate challenge), 403 when
// the principal's role or scope does not allow the function. Authenticated
// answers are marked Cache-Control: no-store.
func Enforce(p Policy, auth Authenticator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p.kind == policyPublic {
				return next(c)
			}
			h := c.Response().Header()
			h.Set(echo.HeaderCacheControl, "no-store")
			if p.kind == policyService {
				principal, err := ServicePrincipal(c.Request())
				if err != nil {
					return err
				}
				c.Set(principalKey, principal)
				return next(c)
			}
			token, err := bearerToken(c.Request())
			if err != nil {
				if err != errNoCredentials {
					h.Set(echo.HeaderWWWAuthenticate, WWWAuthenticate+`, error="invalid_request"`)
				}
				return err
			}
			principal, err := auth.Authenticate(c.Request().Context(), token)
			if err != nil {
				if models.KindOf(err) == models.KindUnauthenticated {
					h.Set(echo.HeaderWWWAuthenticate, WWWAuthenticate+`, error="invalid_token"`)
				}
				return err
			}
			// Kept before the decision, so that a refusal is recorded with
			// who was refused; the handler only runs when it is allowed.
			c.Set(principalKey, principal)
			if err := p.allows(principal); err != nil {
				return err
			}
			return next(c)
		}
	}
}

func (p Policy) allows(pr models.Principal) error {
	switch p.kind {
	case policyAuthenticated:
		if pr.Kind == models.PrincipalSession {
			return nil
		}
		return models.E(models.KindForbidden, "This endpoint needs a user session; API keys cannot use it.")
	case policyOwner:
		if pr.HasScope(p.scope) {
			return nil
		}
		return models.E(models.KindForbidden, "The credential lacks the scope "+string(p.scope)+".")
	case policyAdmin:
		if pr.IsAdmin() {
			return nil
		}
		return models.E(models.KindForbidden, "This endpoint is for administrators.")
	}
	return models.E(models.KindForbidden, "No policy admits this request.")
}

var errNoCredentials = &models.Error{Kind: models.KindUnauthenticated, Detail: "This endpoint needs a bearer token in the Authorization header."}

const maxTokenLength = 512

// bearerToken extracts the token of a single "Authorization: Bearer <token>"
// header (RFC 6750 §2.1). Credentials are never taken from the query string
// or a body, where they end up in logs and browser history.
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values(echo.HeaderAuthorization)
	if len(values) == 0 {
		return "", errNoCredentials
	}
	malformed := &models.Error{Kind: models.KindUnauthenticated, Detail: "The Authorization header must be a single \"Bearer <token>\"."}
	if len(values) > 1 {
		return "", malformed
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxTokenLength {
		return "", malformed
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/=", c) >= 0) {
			return "", malformed
		}
	}
	return token, nil
}

var errNoServiceCert = &models.Error{Kind: models.KindUnauthenticated,
	Detail: "This endpoint needs a client certificate verified on the service listener."}

// ServicePrincipal returns the service principal of a request that came
// over the mTLS listener: the Common Name of the client certificate that the
// TLS handshake verified against the pinned client CA (chain and client-auth
// key usage included). Without a verified chain there is no principal; the
// public listener never asks for client certificates, so a service route
// reached there, were it registered, would answer 401.
func ServicePrincipal(r *http.Request) (models.Principal, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return models.Principal{}, errNoServiceCert
	}
	name := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if !SafeName(name) {
		return models.Principal{}, &models.Error{Kind: models.KindUnauthenticated,
			Detail: "The client certificate does not name a service (Common Name of [A-Za-z0-9._-], at most 64 characters)."}
	}
	return models.Principal{Kind: models.PrincipalService, Service: name}, nil
}

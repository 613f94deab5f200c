package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
)

// route is one entry of the route table: everything the router, the policy
// check and the API document need to know about an endpoint.
type route struct {
	method   string
	path     string // echo syntax: /v1/projects/:id
	policy   middleware.Policy
	handler  echo.HandlerFunc
	query    []string // the query parameters it takes; any other is 400
	produces string   // the media type of its success answer; "" = application/json
	limit    rateClass
	body     int64 // the largest body it takes; 0 = the configured default
	doc      routeDoc
}

// rateClass selects the extra per-IP limit of a route beyond the general
// ones (per IP, per user, per API key), and other resource guards.
type rateClass int

const (
	classGeneral  rateClass = iota
	classLogin              // login attempts per IP; fail closed
	classRegister           // registrations per IP; fail closed
	classReport             // expensive: a per-user concurrency cap
	classOutbound           // makes an outbound call: one at a time per user
)

// routeEnv is what register needs besides the routes.
type routeEnv struct {
	auth              middleware.Authenticator
	rl                *middleware.RateLimiter
	limits            middleware.Limits
	bodyLimit         int64
	reportConcurrency int
}

// routeDoc describes a route for the OpenAPI document.
type routeDoc struct {
	id       string // operationId
	summary  string
	tag      string
	request  any   // zero value of the request body type; nil = no body
	response any   // zero value of the success body type; nil = no body
	status   int   // success status
	errors   []int // error statuses beyond the ones every route can answer
	// limits adds JSON Schema keywords to request properties, for rules
	// that live in the handler rather than in validate tags (a limit taken
	// from the configuration, a format checked by hand).
	limits map[string]map[string]any
}

// mediaType is the route's success media type.
func (r route) mediaType() string {
	if r.produces == "" {
		return echo.MIMEApplicationJSON
	}
	return r.produces
}

// register adds every route to e behind its own middleware: its class's
// per-IP limit (429), the body cap (413), the policy (401/403), the per-user
// and per-key limits (429), the query allowlist (400) and content
// negotiation (406). It fails, and so does start-up, if a route has no
// valid policy or if two routes claim the same method and path. Default
// deny: there is no way to register a route around this.
func register(e *echo.Echo, routes []route, env routeEnv) error {
	seen := map[string]bool{}
	for _, r := range routes {
		key := r.method + " " + r.path
		if !r.policy.Valid() {
			return fmt.Errorf("route %s has no valid policy", key)
		}
		if r.handler == nil {
			return fmt.Errorf("route %s has no handler", key)
		}
		if seen[key] {
			return fmt.Errorf("route %s is registered twice", key)
		}
		seen[key] = true
		var mws []echo.MiddlewareFunc
		switch r.limit {
		case classLogin:
			mws = append(mws, middleware.LimitIP(env.rl, env.limits.LoginIP, middleware.FailClosed))
		case classRegister:
			mws = append(mws, middleware.LimitIP(env.rl, env.limits.RegisterIP, middleware.FailClosed))
		}
		body := env.bodyLimit
		if r.body > 0 {
			body = min(r.body, body)
		}
		mws = append(mws,
			middleware.BodyLimit(body),
			middleware.Enforce(r.policy, env.auth),
			middleware.LimitPrincipal(env.rl, env.limits.User, env.limits.APIKeyMax),
		)
		switch r.limit {
		case classReport:
			mws = append(mws, middleware.ConcurrencyLimit("report-concurrency", env.reportConcurrency))
		case classOutbound:
			// A user cannot turn the server into a request cannon: one
			// outbound call of theirs at a time.
			mws = append(mws, middleware.ConcurrencyLimit("outbound-concurrency", 1))
		}
		mws = append(mws, middleware.StrictQuery(r.query...), middleware.Produces(r.mediaType()))
		e.Add(r.method, r.path, r.handler, mws...)
	}
	return nil
}

// paged lists the query parameters of list endpoints.
var paged = []string{"limit", "cursor"}

// routes is the route table of the API. Every endpoint is here, with its
// policy; the API document is generated from this same table. The routes
// of generated resources come last, from the generated registry
// (routes_gen.go), so that generating a resource edits no hand-written file.
func (s *server) routes() []route {
	pub := middleware.Public()
	authn := middleware.Authenticated()
	read := middleware.Owner("projects:read")
	write := middleware.Owner("projects:write")
	admin := middleware.Admin()
	service := middleware.Service()
	a, k, rep, adm, m, svc := s.accounts, s.apiKeys, s.reports, s.admin, s.meta, s.service
	wh := s.webhooks
	table := []route{
		{method: http.MethodGet, path: "/", policy: pub, handler: m.index, doc: m.indexDoc()},
		{method: http.MethodGet, path: "/healthz", policy: pub, handler: m.healthz, doc: m.healthzDoc()},
		{method: http.MethodGet, path: "/readyz", policy: pub, handler: m.readyz, doc: m.readyzDoc()},
		{method: http.MethodGet, path: "/openapi.json", policy: pub, handler: m.openapi, doc: m.openapiDoc()},

		{method: http.MethodPost, path: "/v1/auth/register", policy: pub, handler: a.register, limit: classRegister, body: 4 << 10, doc: a.registerDoc()},
		{method: http.MethodPost, path: "/v1/auth/login", policy: pub, handler: a.login, limit: classLogin, body: 4 << 10, doc: a.loginDoc()},
		{method: http.MethodPost, path: "/v1/auth/logout", policy: authn, handler: a.logout, doc: a.logoutDoc()},
		{method: http.MethodGet, path: "/v1/me", policy: authn, handler: a.me, doc: a.meDoc()},
		{method: http.MethodPost, path: "/v1/me/password", policy: authn, handler: a.changePassword, body: 4 << 10, doc: a.changePasswordDoc()},

		// API keys are managed with a session only: a key never manages keys.
		{method: http.MethodPost, path: "/v1/api-keys", policy: authn, handler: k.create, body: 4 << 10, doc: k.createDoc()},
		{method: http.MethodGet, path: "/v1/api-keys", policy: authn, handler: k.list, query: paged, doc: k.listDoc()},
		{method: http.MethodDelete, path: "/v1/api-keys/:id", policy: authn, handler: k.delete, doc: k.deleteDoc()},

		// The CRUD routes of projects and tasks are generated (generate.json,
		// routes_gen.go); what the generator does not make is written here.
		{method: http.MethodGet, path: "/v1/projects/:id/report", policy: read, handler: rep.report, produces: mimeHTML, limit: classReport, doc: rep.reportDoc()},

		// Outbound calls: the URL is checked against SSRF here and again
		// when each delivery connects.
		{method: http.MethodPut, path: "/v1/projects/:id/webhook", policy: write, handler: wh.put, body: 4 << 10, doc: wh.putDoc()},
		{method: http.MethodDelete, path: "/v1/projects/:id/webhook", policy: write, handler: wh.delete, doc: wh.deleteDoc()},
		{method: http.MethodPost, path: "/v1/projects/:id/webhook/test", policy: write, handler: wh.test, limit: classOutbound, doc: wh.testDoc()},
		{method: http.MethodGet, path: "/v1/projects/:id/webhook/deliveries", policy: read, handler: wh.attempts, query: paged, doc: wh.attemptsDoc()},

		{method: http.MethodGet, path: "/v1/admin/users", policy: admin, handler: adm.listUsers, query: paged, doc: adm.listUsersDoc()},
		{method: http.MethodPost, path: "/v1/admin/users/:id/lock", policy: admin, handler: adm.lock, doc: adm.lockDoc()},
		{method: http.MethodPost, path: "/v1/admin/users/:id/unlock", policy: admin, handler: adm.unlock, doc: adm.unlockDoc()},
		{method: http.MethodGet, path: "/v1/admin/audit", policy: admin, handler: adm.listAudit, query: auditFilterQuery, doc: adm.listAuditDoc()},

		// The mTLS listener only.
		{method: http.MethodGet, path: "/internal/v1/stats", policy: service, handler: svc.stats, doc: svc.statsDoc()},
	}
	return append(table, generatedRoutes(s.kit, s.db)...)
}

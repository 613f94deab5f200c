package middleware

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// Auditor takes audit events; models.AuditWriter is the one the server
// uses. Record may block (backpressure) but never drops an event.
type Auditor interface {
	Record(models.AuditEvent) error
}

const auditorKey = "rampart.auditor"

// Audit records e for the request c, filling in what the request knows:
// the actor, the client IP (through the trusted proxies), the user agent,
// the request ID and the route. Fields already set in e are kept. Without
// an auditor (auditing off) it does nothing.
func Audit(c echo.Context, e models.AuditEvent) {
	a, _ := c.Get(auditorKey).(auditSink)
	if a.auditor == nil {
		return
	}
	p := PrincipalOf(c)
	if e.ActorType == "" {
		e.ActorType, e.ActorID = actorOf(p)
	}
	if e.UserID == "" {
		e.UserID = p.UserID
	}
	req := c.Request()
	if e.ClientIP == "" {
		e.ClientIP = c.RealIP()
	}
	if e.UserAgent == "" {
		e.UserAgent = req.UserAgent()
	}
	if e.RequestID == "" {
		e.RequestID = RequestIDOf(c)
	}
	if e.Route == "" {
		e.Route = req.Method + " " + c.Path()
	}
	if err := a.auditor.Record(e); err != nil {
		a.log.ErrorContext(req.Context(), "audit event not recorded", "action", e.Action, "error", err.Error())
	}
}

type auditSink struct {
	auditor Auditor
	log     *slog.Logger
}

// actorOf names the principal for the audit trail.
func actorOf(p models.Principal) (kind, id string) {
	switch p.Kind {
	case models.PrincipalSession:
		return models.ActorUser, p.UserID
	case models.PrincipalAPIKey:
		return models.ActorAPIKey, p.APIKeyID
	case models.PrincipalService:
		return models.ActorService, p.Service
	}
	return models.ActorAnonymous, ""
}

// AccountKey is the opaque name of a login account in the audit trail:
// the SHA-256 of its normalised e-mail address, so that failed logins can
// be correlated (credential stuffing) without storing the address.
func AccountKey(email string) string {
	sum := sha256.Sum256([]byte(models.EmailKey(email)))
	return hex.EncodeToString(sum[:])
}

// AuditRequests records the authorization decision of every request:
// one event per request on a route with a non-public policy (allow, or the
// reason for a refusal), and on every route the refusals for abuse (rate
// limits, quotas). It answers an error itself (through echo's error
// handler) so that the final status is known. Handlers add their own
// events (logins, key and account changes) with Audit.
//
//   - 401 → authn_token_invalid
//   - 403 → authz_fail (reason "forbidden")
//   - 404 on a route with an object id → authz_fail (reason "not_found"):
//     the object is absent or someone else's; a burst of these is BOLA probing
//   - 429 → excess_rate_limit_exceeded (or authn_login_fail_max for the
//     per-account login limit), excess_quota_exceeded
//   - 400, 413, 415, 422 → input_validation_fail
//   - anything else → authz_allow (authz_admin on admin routes), with
//     outcome error for 5xx
//
// route tells, for a method and route template, whether the route exists,
// its name for the trail ("GET /v1/projects/:id", the same string every
// time, so that an event need not build it) and whether its policy is
// public or admin; requests that match no route record only their
// rate-limit refusals.
func AuditRequests(a Auditor, log *slog.Logger, route func(method, path string) (name string, known, public, admin bool)) echo.MiddlewareFunc {
	sink := auditSink{auditor: a, log: log}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set(auditorKey, sink)
			err := next(c)
			if a == nil {
				return err
			}
			if err != nil {
				c.Error(err) // answers once; the status is now final
			}
			name, known, public, admin := route(c.Request().Method, c.Path())
			if e, ok := decisionEvent(c, err, !known || public, admin); ok {
				e.Route = name // "" for no route: Audit names it
				Audit(c, e)
			}
			return err
		}
	}
}

// decisionEvent classifies a finished request.
func decisionEvent(c echo.Context, err error, public, admin bool) (models.AuditEvent, bool) {
	status := c.Response().Status
	var me *models.Error
	errors.As(err, &me)
	rtype, rid := resourceOf(c)
	e := models.AuditEvent{ResourceType: rtype, ResourceID: rid, Outcome: models.OutcomeDeny}
	switch {
	case status == http.StatusTooManyRequests:
		e.Action = models.ActionRateLimited
		if me != nil {
			if me.Kind == models.KindQuotaExceeded {
				e.Action = models.ActionQuotaExceeded
			}
			e.Reason = strings.Join(me.Policies, ",")
			if slices.Contains(me.Policies, "login-account") {
				e.Action = models.ActionLoginFailMax
			}
		}
		return e, true
	case public:
		// Public routes (and unknown paths) make no authorization
		// decision; their handlers record what matters (logins,
		// registrations).
		return e, false
	case status == http.StatusUnauthorized:
		e.Action, e.Reason = models.ActionTokenInvalid, "missing, malformed, expired or revoked credentials"
	case status == http.StatusForbidden:
		e.Action, e.Reason = models.ActionAuthzFail, "forbidden"
		if me != nil && me.Detail != "" {
			e.Reason = "forbidden: " + me.Detail
		}
	case status == http.StatusNotFound && rid != "":
		e.Action, e.Reason = models.ActionAuthzFail, "not_found"
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType, status == http.StatusUnprocessableEntity:
		e.Action, e.Reason = models.ActionInputInvalid, http.StatusText(status)
	default:
		e.Action, e.Outcome = models.ActionAuthzAllow, models.OutcomeAllow
		if admin {
			e.Action = models.ActionAuthzAdmin
		}
		if status >= 500 {
			e.Outcome, e.Reason = models.OutcomeError, http.StatusText(status)
		}
	}
	return e, true
}

// resourceNames maps a collection segment of a path to its resource type.
var resourceNames = map[string]string{
	"projects": "project",
	"tasks":    "task",
	"api-keys": "apikey",
	"users":    "user",
}

// resourceOf names the object a request addresses: the last path
// parameter and the collection before it, e.g. /v1/projects/:id/tasks/:task
// → ("task", its id). A list names its collection's type and no id.
func resourceOf(c echo.Context) (string, string) {
	typ, id := "", ""
	// The segments one by one (strings.Split would allocate a slice
	// for every request).
	rest := strings.Trim(c.Path(), "/")
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if name, ok := resourceNames[seg]; ok {
			typ, id = name, ""
			next, _, _ := strings.Cut(rest, "/")
			if param, ok := strings.CutPrefix(next, ":"); ok {
				id = c.Param(param)
			}
		}
	}
	return typ, id
}

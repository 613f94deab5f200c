package handlers

import (
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// auditEventResponse is one audit event as the admin API shows it. The
// hash fields let an auditor check the chain from outside.
type auditEventResponse struct {
	ID           string `json:"id"`
	Seq          int64  `json:"seq"`
	At           string `json:"at"`
	ActorType    string `json:"actor_type"`
	ActorID      string `json:"actor_id"`
	UserID       string `json:"user_id"`
	ClientIP     string `json:"client_ip"`
	UserAgent    string `json:"user_agent"`
	RequestID    string `json:"request_id"`
	Route        string `json:"route"`
	Action       string `json:"action"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
}

func auditEventFromModel(e models.AuditEvent) auditEventResponse {
	return auditEventResponse{ID: e.ID, Seq: e.Seq, At: timestamp(e.At), ActorType: e.ActorType, ActorID: e.ActorID,
		UserID: e.UserID, ClientIP: e.ClientIP, UserAgent: e.UserAgent, RequestID: e.RequestID, Route: e.Route,
		Action: e.Action, ResourceType: e.ResourceType, ResourceID: e.ResourceID, Outcome: e.Outcome,
		Reason: e.Reason, PrevHash: e.PrevHash, Hash: e.Hash}
}

// auditFilterQuery lists the filters of GET /v1/admin/audit.
var auditFilterQuery = []string{"actor", "action", "outcome", "since", "limit", "cursor"}

var auditActionPattern = regexp.MustCompile(`^[a-z][a-z_]{0,63}$`)

// auditFilter reads and validates the filters: each is an allowlist or a
// bounded shape, so nothing else reaches the query.
func auditFilter(c echo.Context) (models.AuditFilter, error) {
	f := models.AuditFilter{Actor: c.QueryParam("actor"), Action: c.QueryParam("action"), Outcome: c.QueryParam("outcome")}
	var problems []models.FieldError
	if utf8.RuneCountInString(f.Actor) > 128 || !utf8.ValidString(f.Actor) {
		problems = append(problems, models.FieldError{Field: "actor", Message: "must be an ID of at most 128 characters"})
	}
	if f.Action != "" && !auditActionPattern.MatchString(f.Action) {
		problems = append(problems, models.FieldError{Field: "action", Message: "must be an action name such as authn_login_fail"})
	}
	switch f.Outcome {
	case "", models.OutcomeAllow, models.OutcomeDeny, models.OutcomeError:
	default:
		problems = append(problems, models.FieldError{Field: "outcome", Message: "must be allow, deny or error"})
	}
	if s := c.QueryParam("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			problems = append(problems, models.FieldError{Field: "since", Message: "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"})
		}
		f.Since = t
	}
	if len(problems) > 0 {
		return f, models.Invalid("The query string has invalid values.", problems...)
	}
	return f, nil
}

// auditScope binds a cursor to the admin audit list and its filters, so a
// cursor cannot be replayed against another filter.
func auditScope(f models.AuditFilter) string {
	since := ""
	if !f.Since.IsZero() {
		since = f.Since.UTC().Format(time.RFC3339Nano)
	}
	return "admin:audit\x00" + f.Actor + "\x00" + f.Action + "\x00" + f.Outcome + "\x00" + since
}

func (h *adminHandlers) listAudit(c echo.Context) error {
	view, err := models.NewAdminAudit(h.db, middleware.PrincipalOf(c))
	if err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	scope := auditScope(f)
	page, err := h.pageRequest(c, scope)
	if err != nil {
		return err
	}
	events, err := view.List(c.Request().Context(), f, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, scope, events, auditEventFromModel))
}

func (h *adminHandlers) listAuditDoc() routeDoc {
	return routeDoc{id: "adminListAudit", summary: "Read the audit trail, oldest first (filters: actor, action, outcome, since); read-only", tag: "admin",
		response: pageResponse[auditEventResponse]{}, status: http.StatusOK}
}

package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// problem is an RFC 9457 problem details body.
type problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []problemField `json:"errors,omitempty"`
	// ViolatedPolicies names the rate-limit policies a 429 broke
	// (draft-ietf-httpapi-ratelimit-headers, problem type quota-exceeded).
	ViolatedPolicies []string `json:"violated-policies,omitempty"`

	retryAfter time.Duration
}

type problemField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

const errorHandledKey = "rampart.error_handled"

// ProblemTypeQuota is the problem type of a 429 for a full resource quota
// (100 projects, ...): unlike a rate limit, waiting does not help, so it
// carries no Retry-After.
const ProblemTypeQuota = "tag:rampart.dev,2026:problem:resource-quota-exceeded"

// MIMEProblemJSON is the media type of every error body.
const MIMEProblemJSON = "application/problem+json"

var kindStatus = map[models.Kind]int{
	models.KindInternal:         http.StatusInternalServerError,
	models.KindMalformed:        http.StatusBadRequest,
	models.KindInvalid:          http.StatusUnprocessableEntity,
	models.KindUnauthenticated:  http.StatusUnauthorized,
	models.KindForbidden:        http.StatusForbidden,
	models.KindNotFound:         http.StatusNotFound,
	models.KindConflict:         http.StatusConflict,
	models.KindTooLarge:         http.StatusRequestEntityTooLarge,
	models.KindUnsupportedMedia: http.StatusUnsupportedMediaType,
	models.KindNotAcceptable:    http.StatusNotAcceptable,
	models.KindRateLimited:      http.StatusTooManyRequests,
	models.KindQuotaExceeded:    http.StatusTooManyRequests,
	models.KindUnavailable:      http.StatusServiceUnavailable,
	models.KindUpstream:         http.StatusBadGateway,
}

// defaultDetail is the client text for a status when the error carries none.
var defaultDetail = map[int]string{
	http.StatusBadRequest:            "The request is malformed.",
	http.StatusUnauthorized:          "Valid credentials are required.",
	http.StatusForbidden:             "You are not allowed to use this function.",
	http.StatusNotFound:              "The resource does not exist.",
	http.StatusMethodNotAllowed:      "The method is not allowed on this resource; see the Allow header.",
	http.StatusNotAcceptable:         "The endpoint cannot answer in a type the Accept header admits.",
	http.StatusConflict:              "The request conflicts with the current state of the resource.",
	http.StatusRequestEntityTooLarge: "The request body is too large.",
	http.StatusUnsupportedMediaType:  "The request body must be application/json.",
	http.StatusUnprocessableEntity:   "The request has invalid fields.",
	http.StatusTooManyRequests:       "Too many requests; retry later.",
	http.StatusGatewayTimeout:        "The request took too long.",
	http.StatusInternalServerError:   "An internal error occurred. Quote the request ID when reporting it.",
	http.StatusServiceUnavailable:    "The service is temporarily unavailable; retry later.",
	http.StatusBadGateway:            "A service this request depends on failed.",
}

// ErrorHandler returns the one echo error handler: it writes every error as
// problem+json. It classifies errors with errors.As (echo's default handler
// does not, and turns wrapped errors into 500s), sends only client-safe text
// (never err.Error(), SQL, paths or library messages), and logs server
// faults with the request ID.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		// The request logger hands errors to this handler and passes them
		// on; echo then offers the same error again. Answer (and log) once.
		if handled, _ := c.Get(errorHandledKey).(bool); handled {
			return
		}
		c.Set(errorHandledKey, true)
		p := problemFor(err)
		p.RequestID = middleware.RequestIDOf(c)
		req := c.Request()
		if p.Status >= 500 {
			// Load shedding and a dependency that is briefly down are
			// expected under stress: WARN. Anything else is a fault: ERROR.
			level := slog.LevelError
			if models.KindOf(err) == models.KindUnavailable {
				level = slog.LevelWarn
			}
			log.Log(req.Context(), level, "request failed",
				"request_id", p.RequestID, "method", req.Method, "route", c.Path(), "status", p.Status, "error", err.Error())
		}
		if c.Response().Committed {
			return
		}
		h := c.Response().Header()
		if p.Status == http.StatusUnauthorized && h.Get(echo.HeaderWWWAuthenticate) == "" {
			h.Set(echo.HeaderWWWAuthenticate, middleware.WWWAuthenticate)
		}
		// A problem body is never cached, and replaces any validators or
		// content headers a handler may have set before failing.
		h.Set(echo.HeaderCacheControl, "no-store")
		h.Del(echo.HeaderContentDisposition)
		if p.retryAfter > 0 {
			h.Set(echo.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(p.retryAfter.Seconds()))))
		}
		body, mErr := json.Marshal(p)
		if mErr != nil {
			body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
			p.Status = http.StatusInternalServerError
		}
		h.Set(echo.HeaderContentType, MIMEProblemJSON)
		if req.Method == http.MethodHead {
			_ = c.NoContent(p.Status)
			return
		}
		_ = c.Blob(p.Status, MIMEProblemJSON, body)
	}
}

func problemFor(err error) problem {
	status := http.StatusInternalServerError
	typ := "about:blank"
	var (
		policies []string
		retry    time.Duration
		detail   string
		fields   []models.FieldError
		me       *models.Error
		he       *echo.HTTPError
		mbe      *http.MaxBytesError
	)
	switch {
	case errors.As(err, &me):
		status, detail, fields = kindStatus[me.Kind], me.Detail, me.Fields
		if status == 0 || me.Kind == models.KindInternal {
			status, detail, fields = http.StatusInternalServerError, "", nil
			break
		}
		switch me.Kind {
		case models.KindRateLimited:
			typ, policies = middleware.ProblemTypeRateLimited, me.Policies
		case models.KindQuotaExceeded:
			typ = ProblemTypeQuota
		}
		retry = me.RetryAfter
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &he):
		// echo's own errors (router 404/405, and anything from its
		// middleware): keep the status, never the message.
		status = he.Code
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
	}
	if detail == "" {
		detail = defaultDetail[status]
	}
	p := problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail, ViolatedPolicies: policies, retryAfter: retry}
	for _, f := range fields {
		p.Errors = append(p.Errors, problemField(f))
	}
	return p
}

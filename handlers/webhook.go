package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// webhookHandlers serve a project's webhook: its URL (checked against
// server-side request forgery when it is set, and again when each delivery
// connects), a test ping, and the delivery log. The receiver's answers are
// untrusted: only their status codes and failure classes are kept, and
// nothing of their bodies reaches the client or the log.
type webhookHandlers struct {
	kit
	db         *models.DB
	sealer     *models.Sealer
	client     *outbound.Client
	dispatcher *models.WebhookDispatcher
}

func (h *webhookHandlers) repo(c echo.Context) *models.WebhookRepo {
	return models.NewWebhookRepo(h.db, h.sealer, middleware.PrincipalOf(c).UserID)
}

// webhookScope binds delivery-log cursors to one project of the owner.
func webhookScope(c echo.Context) string {
	return "webhook-attempts:" + middleware.PrincipalOf(c).UserID + ":" + c.Param("id")
}

// putWebhookRequest is the only field a client sets: the receiver's URL.
type putWebhookRequest struct {
	URL string `json:"url" validate:"required,max=2048"`
}

type webhookResponse struct {
	URL        string `json:"url"`
	SecretHint string `json:"secret_hint"`
	// Secret is the signing secret, in the answer that created the webhook
	// only; it is never shown again.
	Secret    string `json:"secret,omitempty"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// refused turns a refused URL into a 422 on the url field, with the
// client-safe reason (which rule it broke, never what it resolved to).
func refused(err error) error {
	var r *outbound.RefusedError
	if errors.As(err, &r) {
		return models.Invalid("The webhook URL is not allowed.", models.FieldError{Field: "url", Message: r.Error()})
	}
	return err
}

func (h *webhookHandlers) put(c echo.Context) error {
	var req putWebhookRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// Ownership first: another owner's project is 404 before its URL is
	// looked at (and before any DNS lookup is made on the caller's behalf).
	if _, err := models.NewProjectRepo(h.db, middleware.PrincipalOf(c).UserID).Get(ctx, c.Param("id")); err != nil {
		return err
	}
	u, err := h.client.ValidateURL(req.URL)
	if err != nil {
		return refused(err)
	}
	if err := h.client.CheckResolves(ctx, u); err != nil {
		var r *outbound.RefusedError
		if !errors.As(err, &r) {
			// The resolver failed (time-out, server error): not the URL's
			// fault, and not something to store unchecked.
			return &models.Error{Kind: models.KindUnavailable, RetryAfter: 5 * time.Second, Cause: err,
				Detail: "The webhook host could not be resolved right now; retry later."}
		}
		return refused(err)
	}
	w, secret, err := h.repo(c).Put(ctx, c.Param("id"), u.String())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, webhookResponse{URL: w.URL, SecretHint: w.SecretHint, Secret: secret,
		CreatedAt: timestamp(w.CreatedAt), UpdatedAt: timestamp(w.UpdatedAt)})
}

func (h *webhookHandlers) putDoc() routeDoc {
	return routeDoc{id: "putWebhook", summary: "Set the project's webhook URL (https, public addresses only); the first call returns the signing secret once",
		tag: "webhooks", request: putWebhookRequest{}, response: webhookResponse{}, status: http.StatusOK, errors: []int{http.StatusServiceUnavailable},
		limits: map[string]map[string]any{"url": {"format": "uri",
			"description": "https only, no user-info, port 443 unless configured; its host must resolve to public addresses only."}}}
}

func (h *webhookHandlers) delete(c echo.Context) error {
	if err := h.repo(c).Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *webhookHandlers) deleteDoc() routeDoc {
	return routeDoc{id: "deleteWebhook", summary: "Remove the project's webhook; undelivered events are dropped",
		tag: "webhooks", status: http.StatusNoContent}
}

// pingResponse is the outcome of a test delivery: the receiver's status
// code and how long it took, nothing of its body.
type pingResponse struct {
	DeliveryID string `json:"delivery_id"`
	Delivered  bool   `json:"delivered"`
	StatusCode int    `json:"status_code"`
	LatencyMS  int64  `json:"latency_ms"`
}

// test sends a signed ping at once. A receiver that accepts it is 200 with
// the result; one that fails is 502 with the class of failure (and the
// receiver's status code in the detail, when it answered).
func (h *webhookHandlers) test(c echo.Context) error {
	res, err := h.dispatcher.Ping(c.Request().Context(), middleware.PrincipalOf(c).UserID, c.Param("id"))
	if err != nil {
		return err
	}
	if res.Class != "" {
		// Summary is written for clients: the class of failure and the
		// receiver's status, never its body or the address it resolved to.
		return &models.Error{Kind: models.KindUpstream, Reason: "webhook_" + res.Class, Cause: res.Err,
			Detail: "The webhook receiver did not accept the test delivery: " + res.Summary() + "."}
	}
	return c.JSON(http.StatusOK, pingResponse{DeliveryID: res.DeliveryID, Delivered: true,
		StatusCode: res.StatusCode, LatencyMS: res.Latency.Milliseconds()})
}

func (h *webhookHandlers) testDoc() routeDoc {
	return routeDoc{id: "testWebhook", summary: "Send a signed ping to the project's webhook now; 502 when the receiver fails",
		tag: "webhooks", response: pingResponse{}, status: http.StatusOK, errors: []int{http.StatusBadGateway}}
	// 429 (one test delivery at a time per user) is documented for every
	// route already.
}

type webhookAttemptResponse struct {
	DeliveryID string  `json:"delivery_id"`
	Event      string  `json:"event"`
	Attempt    int     `json:"attempt"`
	At         string  `json:"at"`
	StatusCode *int    `json:"status_code"`
	LatencyMS  int64   `json:"latency_ms"`
	ErrorClass *string `json:"error_class"`
}

func webhookAttemptFromModel(a models.WebhookAttempt) webhookAttemptResponse {
	r := webhookAttemptResponse{DeliveryID: a.DeliveryID, Event: a.Event, Attempt: a.Attempt,
		At: timestamp(a.At), LatencyMS: a.LatencyMS}
	if a.StatusCode.Valid {
		s := int(a.StatusCode.Int64)
		r.StatusCode = &s
	}
	if a.ErrorClass != "" {
		class := a.ErrorClass
		r.ErrorClass = &class
	}
	return r
}

func (h *webhookHandlers) attempts(c echo.Context) error {
	scope := webhookScope(c)
	page, err := h.pageRequest(c, scope)
	if err != nil {
		return err
	}
	rows, err := h.repo(c).Attempts(c.Request().Context(), c.Param("id"), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, scope, rows, webhookAttemptFromModel))
}

func (h *webhookHandlers) attemptsDoc() routeDoc {
	return routeDoc{id: "listWebhookDeliveries", summary: "The project's delivery log: each attempt's time, status code, latency and failure class",
		tag: "webhooks", response: pageResponse[webhookAttemptResponse]{}, status: http.StatusOK}
}

package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// apiKeyHandlers manage the caller's API keys. Their routes admit sessions
// only, so a key can never create, list or revoke keys.
type apiKeyHandlers struct {
	kit
	db     *models.DB
	limits middleware.Limits
}

func (h *apiKeyHandlers) repo(c echo.Context) *models.APIKeyRepo {
	return models.NewAPIKeyRepo(h.db, middleware.PrincipalOf(c).UserID)
}

func apiKeyScope(c echo.Context) string { return "api-keys:" + middleware.PrincipalOf(c).UserID }

type apiKeyResponse struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Prefix     string   `json:"prefix"`
	RateLimit  int      `json:"rate_limit"`
	ExpiresAt  *string  `json:"expires_at"`
	LastUsedAt *string  `json:"last_used_at"`
	CreatedAt  string   `json:"created_at"`
}

// createdAPIKeyResponse is the only answer that carries the key itself.
type createdAPIKeyResponse struct {
	apiKeyResponse
	Key string `json:"key"`
}

func optionalTimestamp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}

func apiKeyFromModel(k models.APIKey) apiKeyResponse {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	return apiKeyResponse{ID: k.ID, Name: k.Name, Scopes: scopes, Prefix: k.Prefix, RateLimit: k.RateLimit,
		ExpiresAt: optionalTimestamp(k.ExpiresAt), LastUsedAt: optionalTimestamp(k.LastUsedAt), CreatedAt: timestamp(k.CreatedAt)}
}

// createAPIKeyRequest: scopes from the known set, unique; an optional
// RFC 3339 expiry at most a year ahead; an optional rate limit per minute,
// capped by configuration.
type createAPIKeyRequest struct {
	Name      string           `json:"name" validate:"required,min=1,max=64,nocontrol"`
	Scopes    []string         `json:"scopes" validate:"required,min=1,max=2,unique,dive,oneof=projects:read projects:write"`
	ExpiresAt nullable[string] `json:"expires_at"`
	RateLimit *int             `json:"rate_limit" validate:"omitnil,min=1"`
}

const maxAPIKeyLifetime = 366 * 24 * time.Hour

func (r createAPIKeyRequest) toModel(limits middleware.Limits) (models.NewAPIKey, error) {
	in := models.NewAPIKey{Name: r.Name, RateLimit: limits.APIKeyDefault}
	for _, s := range r.Scopes {
		in.Scopes = append(in.Scopes, models.Scope(s))
	}
	if r.RateLimit != nil {
		if *r.RateLimit > limits.APIKeyMax {
			return in, models.Invalid("The request has invalid fields.",
				models.FieldError{Field: "rate_limit", Message: "must be at most " + strconv.Itoa(limits.APIKeyMax) + " requests a minute"})
		}
		in.RateLimit = *r.RateLimit
	}
	if r.ExpiresAt.Set && !r.ExpiresAt.Null {
		t, err := time.Parse(time.RFC3339, r.ExpiresAt.V)
		if err != nil {
			return in, models.Invalid("The request has invalid fields.",
				models.FieldError{Field: "expires_at", Message: "must be an RFC 3339 time such as 2027-01-31T00:00:00Z"})
		}
		if d := time.Until(t); d <= 0 || d > maxAPIKeyLifetime {
			return in, models.Invalid("The request has invalid fields.",
				models.FieldError{Field: "expires_at", Message: "must be in the future, at most a year ahead"})
		}
		in.ExpiresAt = &t
	}
	return in, nil
}

func (h *apiKeyHandlers) create(c echo.Context) error {
	var req createAPIKeyRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	in, err := req.toModel(h.limits)
	if err != nil {
		return err
	}
	k, err := h.repo(c).Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionAPIKeyCreated, Outcome: models.OutcomeAllow,
		ResourceType: "apikey", ResourceID: k.ID, Reason: "scopes " + k.Scopes.String()})
	c.Response().Header().Set(echo.HeaderLocation, "/v1/api-keys/"+k.ID)
	return c.JSON(http.StatusCreated, createdAPIKeyResponse{apiKeyResponse: apiKeyFromModel(k.APIKey), Key: k.Key})
}

func (h *apiKeyHandlers) createDoc() routeDoc {
	return routeDoc{id: "createAPIKey", summary: "Create an API key; the key is shown in this answer only", tag: "api-keys",
		request: createAPIKeyRequest{}, response: createdAPIKeyResponse{}, status: http.StatusCreated, errors: []int{http.StatusTooManyRequests},
		limits: map[string]map[string]any{
			"rate_limit": {"maximum": h.limits.APIKeyMax, "description": "Requests a minute; the default is " + strconv.Itoa(h.limits.APIKeyDefault) + "."},
			"expires_at": {"format": "date-time", "description": "In the future, at most a year ahead; null or absent: no expiry."},
		}}
}

func (h *apiKeyHandlers) list(c echo.Context) error {
	scope := apiKeyScope(c)
	page, err := h.pageRequest(c, scope)
	if err != nil {
		return err
	}
	keys, err := h.repo(c).List(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, scope, keys, apiKeyFromModel))
}

func (h *apiKeyHandlers) listDoc() routeDoc {
	return routeDoc{id: "listAPIKeys", summary: "List the caller's API keys (without secrets)", tag: "api-keys",
		response: pageResponse[apiKeyResponse]{}, status: http.StatusOK}
}

func (h *apiKeyHandlers) delete(c echo.Context) error {
	if err := h.repo(c).Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionAPIKeyRevoked, Outcome: models.OutcomeAllow,
		ResourceType: "apikey", ResourceID: c.Param("id")})
	return c.NoContent(http.StatusNoContent)
}

func (h *apiKeyHandlers) deleteDoc() routeDoc {
	return routeDoc{id: "deleteAPIKey", summary: "Revoke an API key at once", tag: "api-keys", status: http.StatusNoContent}
}

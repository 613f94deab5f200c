package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// accountHandlers serve registration, login, logout and the caller's own
// account.
type accountHandlers struct {
	kit
	accounts *models.Accounts
	guard    middleware.LoginGuard
}

type userResponse struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	CreatedAt   string `json:"created_at"`
}

func userFromModel(u models.User) userResponse {
	return userResponse{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role), CreatedAt: timestamp(u.CreatedAt)}
}

// registerRequest has no role: nobody chooses their own role.
type registerRequest struct {
	Email       string `json:"email" validate:"required,max=254,email"`
	Password    string `json:"password" validate:"required,min=12,max=128"`
	DisplayName string `json:"display_name" validate:"required,min=1,max=64,nocontrol"`
}

func (h *accountHandlers) register(c echo.Context) error {
	var req registerRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	u, err := h.accounts.Register(c.Request().Context(), models.NewUser{
		Email: req.Email, Password: req.Password, DisplayName: req.DisplayName,
	})
	if err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionUserCreated, ActorType: models.ActorUser, ActorID: u.ID,
		UserID: u.ID, ResourceType: "user", ResourceID: u.ID, Outcome: models.OutcomeAllow})
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, userFromModel(u))
}

func (h *accountHandlers) registerDoc() routeDoc {
	return routeDoc{id: "register", summary: "Create an account (role user)", tag: "accounts",
		request: registerRequest{}, response: userResponse{}, status: http.StatusCreated, errors: []int{http.StatusConflict}}
}

type loginRequest struct {
	Email    string `json:"email" validate:"required,max=254"`
	Password string `json:"password" validate:"required,max=128"`
}

type loginResponse struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
}

// login answers an unknown e-mail, a wrong password and a locked account
// with the same 401 in about the same time (see Accounts.Login). Every
// attempt is counted for its account before the password is checked; an
// account past its failures gets 429 without a check. Unknown e-mail
// addresses are counted too.
func (h *accountHandlers) login(c echo.Context) error {
	var req loginRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	account := models.EmailKey(req.Email)
	if err := h.guard.Begin(c, account); err != nil {
		return err
	}
	res, err := h.accounts.Login(ctx, req.Email, req.Password)
	// The audit trail names the account by an opaque key, never the
	// address, and keeps the internal reason the client does not see.
	ev := models.AuditEvent{UserID: res.UserID, ResourceType: "account", ResourceID: middleware.AccountKey(req.Email)}
	if err != nil {
		// A wrong password stays counted; an attempt that never reached
		// the password check (hashing busy, an internal error) is taken
		// back. Its own error is the answer either way.
		ev.Action, ev.Outcome, ev.Reason = models.ActionLoginFail, models.OutcomeDeny, models.ReasonOf(err)
		if models.KindOf(err) != models.KindUnauthenticated {
			_ = h.guard.Abandoned(ctx, account)
			ev.Outcome, ev.Reason = models.OutcomeError, models.KindOf(err).String()
		}
		middleware.Audit(c, ev)
		return err
	}
	ev.Action, ev.Outcome, ev.ActorType, ev.ActorID = models.ActionLoginSuccess, models.OutcomeAllow, models.ActorUser, res.UserID
	middleware.Audit(c, ev)
	if err := h.guard.Succeeded(ctx, account); err != nil {
		return err
	}
	// The token is a credential: no cache may keep this answer.
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, loginResponse{Token: res.Token, TokenType: "Bearer", ExpiresAt: timestamp(res.ExpiresAt)})
}

func (h *accountHandlers) loginDoc() routeDoc {
	return routeDoc{id: "login", summary: "Open a session; the token expires after 15 idle minutes or at expires_at", tag: "accounts",
		request: loginRequest{}, response: loginResponse{}, status: http.StatusOK, errors: []int{http.StatusUnauthorized}}
}

// logout ends the current session and asks browsers to drop anything they
// kept for this origin.
func (h *accountHandlers) logout(c echo.Context) error {
	if err := h.accounts.Logout(c.Request().Context(), middleware.PrincipalOf(c)); err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionTokenRevoked, Outcome: models.OutcomeAllow,
		ResourceType: "session", ResourceID: middleware.PrincipalOf(c).SessionID, Reason: "logout"})
	c.Response().Header().Set("Clear-Site-Data", `"cache","cookies","storage"`)
	return c.NoContent(http.StatusNoContent)
}

func (h *accountHandlers) logoutDoc() routeDoc {
	return routeDoc{id: "logout", summary: "End the current session", tag: "accounts", status: http.StatusNoContent}
}

func (h *accountHandlers) me(c echo.Context) error {
	u, err := h.accounts.Me(c.Request().Context(), middleware.PrincipalOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, userFromModel(u))
}

func (h *accountHandlers) meDoc() routeDoc {
	return routeDoc{id: "me", summary: "The caller's account", tag: "accounts", response: userResponse{}, status: http.StatusOK}
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password" validate:"required,max=128"`
	NewPassword     string `json:"new_password" validate:"required,min=12,max=128"`
}

// changePassword replaces the password and ends every other session.
func (h *accountHandlers) changePassword(c echo.Context) error {
	var req changePasswordRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	err := h.accounts.ChangePassword(c.Request().Context(), middleware.PrincipalOf(c), req.CurrentPassword, req.NewPassword)
	if err != nil {
		if k := models.KindOf(err); k == models.KindUnauthenticated || k == models.KindInvalid {
			middleware.Audit(c, models.AuditEvent{Action: models.ActionPasswordChangeBad, Outcome: models.OutcomeDeny,
				ResourceType: "user", ResourceID: middleware.PrincipalOf(c).UserID, Reason: k.String()})
		}
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionPasswordChange, Outcome: models.OutcomeAllow,
		ResourceType: "user", ResourceID: middleware.PrincipalOf(c).UserID, Reason: "other sessions ended"})
	return c.NoContent(http.StatusNoContent)
}

func (h *accountHandlers) changePasswordDoc() routeDoc {
	return routeDoc{id: "changePassword", summary: "Change the password; every other session ends", tag: "accounts",
		request: changePasswordRequest{}, status: http.StatusNoContent}
}

package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// adminHandlers serve the admin area. The route policy admits admins only
// (403 for everyone else), and the admin view of the data can only be
// constructed for an admin principal as a second, independent check.
type adminHandlers struct {
	kit
	db *models.DB
	rl *middleware.RateLimiter
}

func (h *adminHandlers) repo(c echo.Context) (*models.AdminUsers, error) {
	return models.NewAdminUsers(h.db, middleware.PrincipalOf(c))
}

// adminUserResponse is the admin's view of an account: the user object plus
// whether it is locked.
type adminUserResponse struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	Locked      bool   `json:"locked"`
	CreatedAt   string `json:"created_at"`
}

func adminUserFromModel(u models.User) adminUserResponse {
	return adminUserResponse{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role),
		Locked: u.Locked(), CreatedAt: timestamp(u.CreatedAt)}
}

const adminUsersScope = "admin:users"

func (h *adminHandlers) listUsers(c echo.Context) error {
	repo, err := h.repo(c)
	if err != nil {
		return err
	}
	page, err := h.pageRequest(c, adminUsersScope)
	if err != nil {
		return err
	}
	users, err := repo.List(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, adminUsersScope, users, adminUserFromModel))
}

func (h *adminHandlers) listUsersDoc() routeDoc {
	return routeDoc{id: "adminListUsers", summary: "List all users", tag: "admin",
		response: pageResponse[adminUserResponse]{}, status: http.StatusOK}
}

// lock locks a user; their sessions end at once.
func (h *adminHandlers) lock(c echo.Context) error {
	repo, err := h.repo(c)
	if err != nil {
		return err
	}
	if err := repo.Lock(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionLoginLock, Outcome: models.OutcomeAllow,
		ResourceType: "user", ResourceID: c.Param("id"), Reason: "locked by an administrator; sessions and API keys ended"})
	return c.NoContent(http.StatusNoContent)
}

func (h *adminHandlers) lockDoc() routeDoc {
	return routeDoc{id: "adminLockUser", summary: "Lock a user; their sessions stop working at once", tag: "admin",
		status: http.StatusNoContent, errors: []int{http.StatusConflict}}
}

func (h *adminHandlers) unlock(c echo.Context) error {
	repo, err := h.repo(c)
	if err != nil {
		return err
	}
	u, err := repo.Unlock(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	// Unlocking also clears the account's failed-login count: this is how
	// an admin ends a lock-out an attacker caused by failing on purpose.
	if err := h.rl.ResetFailures(c.Request().Context(), models.EmailKey(u.Email)); err != nil {
		return err
	}
	middleware.Audit(c, models.AuditEvent{Action: models.ActionLoginUnlock, Outcome: models.OutcomeAllow,
		ResourceType: "user", ResourceID: u.ID, Reason: "unlocked by an administrator; failed-login count cleared"})
	return c.NoContent(http.StatusNoContent)
}

func (h *adminHandlers) unlockDoc() routeDoc {
	return routeDoc{id: "adminUnlockUser", summary: "Unlock a user and clear their failed-login count", tag: "admin", status: http.StatusNoContent}
}

package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// serviceHandlers serve the internal endpoints of the mTLS listener. Their
// routes carry the Service policy, are registered on that listener only, and
// read the caller from the verified client certificate.
type serviceHandlers struct {
	db *models.DB
}

type statsResponse struct {
	Service  string `json:"service"`
	Users    int64  `json:"users"`
	Projects int64  `json:"projects"`
	Tasks    int64  `json:"tasks"`
}

func (h *serviceHandlers) stats(c echo.Context) error {
	p := middleware.PrincipalOf(c)
	view, err := models.NewServiceView(h.db, p)
	if err != nil {
		return err
	}
	s, err := view.Stats(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statsResponse{Service: p.Service, Users: s.Users, Projects: s.Projects, Tasks: s.Tasks})
}

func (h *serviceHandlers) statsDoc() routeDoc {
	return routeDoc{id: "serviceStats", summary: "Aggregate counts, for services with a client certificate (mTLS listener only)", tag: "internal",
		response: statsResponse{}, status: http.StatusOK}
}

package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// metaHandlers serve the public, unversioned endpoints: the index, health
// checks and the API document.
type metaHandlers struct {
	db  *models.DB
	doc []byte // the OpenAPI document, rendered once from the route table
}

type indexResponse struct {
	Name    string `json:"name"`
	API     string `json:"api"`
	OpenAPI string `json:"openapi"`
	Health  string `json:"health"`
}

// index answers GET / with pointers to the API: never a 404, so scanners
// and people who open the host name see where to go.
func (h *metaHandlers) index(c echo.Context) error {
	return c.JSON(http.StatusOK, indexResponse{Name: "rampart", API: "/v1", OpenAPI: "/openapi.json", Health: "/healthz"})
}

func (h *metaHandlers) indexDoc() routeDoc {
	return routeDoc{id: "index", summary: "Where the API and its document are", tag: "meta", response: indexResponse{}, status: http.StatusOK}
}

type statusResponse struct {
	Status string `json:"status"`
}

// healthz is liveness: the process answers. It touches no dependency.
func (h *metaHandlers) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusResponse{Status: "ok"})
}

func (h *metaHandlers) healthzDoc() routeDoc {
	return routeDoc{id: "healthz", summary: "Liveness: the process answers", tag: "meta", response: statusResponse{}, status: http.StatusOK}
}

// readyz is readiness: the database answers within two seconds, else 503.
func (h *metaHandlers) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		return &models.Error{Kind: models.KindUnavailable, Detail: "The database does not answer.", Cause: err}
	}
	return c.JSON(http.StatusOK, statusResponse{Status: "ready"})
}

func (h *metaHandlers) readyzDoc() routeDoc {
	return routeDoc{id: "readyz", summary: "Readiness: the database answers", tag: "meta", response: statusResponse{}, status: http.StatusOK,
		errors: []int{http.StatusServiceUnavailable}}
}

// openapi serves the API document generated from the route table.
func (h *metaHandlers) openapi(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, h.doc)
}

func (h *metaHandlers) openapiDoc() routeDoc {
	return routeDoc{id: "openapi", summary: "This API document (OpenAPI 3.1)", tag: "meta", status: http.StatusOK}
}

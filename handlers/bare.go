//go:build rampart_bench

package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// BarePrefix is where the bare handler answers in a benchmark build.
const BarePrefix = "/bench/bare/"

// NewBare returns the bare handler of the benchmark harness (scripts/bench):
// GET /bench/bare/projects/:id?owner=USER_ID runs the query of GET
// /v1/projects/:id (the owner-scoped ProjectRepo.Get) and answers the same
// JSON, with no middleware at all: no authentication (the owner is taken
// from the query string), no limits, headers, logging, metrics or audit.
// It exists only in binaries built with -tags rampart_bench, so that
// scripts/bench can measure what the defenses cost; a normal build has no
// such route (app/bench_test.go TestNoBareRouteInNormalBuild).
func NewBare(db *models.DB) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.GET(BarePrefix+"projects/:id", func(c echo.Context) error {
		p, err := models.NewProjectRepo(db, c.QueryParam("owner")).Get(c.Request().Context(), c.Param("id"))
		if err != nil {
			return c.NoContent(http.StatusNotFound)
		}
		return c.JSON(http.StatusOK, projectFromModel(p))
	})
	return e
}

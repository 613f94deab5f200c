package handlers

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// The self-test of the conformance suite: routes broken on purpose, each
// missing one defense, are registered in a test API – never in the route
// table – and the suite must report each of them, by the check that
// guards that defense. TestRouteTable shows the suite passes on the real
// table; this shows it is not passing by accident.

// summaryResponse is what the broken routes answer.
type summaryResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type noteRequest struct {
	Text string `json:"text" validate:"required,min=1,max=500"`
}

// Unscoped reads of a project by its ID alone: the mistake the
// owner-scoped repositories make impossible in the real code.
const (
	unscopedProjectSQLite   = `SELECT id, name FROM projects WHERE id = ?`
	unscopedProjectPostgres = `SELECT id, name FROM projects WHERE id::text = $1`
)

// readProjectWithoutOwner reads a project by ID without its owner (BOLA).
func readProjectWithoutOwner(db *models.DB) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := unscopedProjectSQLite
		if db.Dialect() == models.Postgres {
			q = unscopedProjectPostgres
		}
		var s summaryResponse
		if err := db.SQLDB().QueryRowContext(c.Request().Context(), q, c.Param("id")).Scan(&s.ID, &s.Name); err != nil {
			return models.E(models.KindNotFound, "No such project.")
		}
		return c.JSON(http.StatusOK, s)
	}
}

// readOwnProject reads a project the right way, through the owner's repository.
func readOwnProject(db *models.DB, c echo.Context) (summaryResponse, error) {
	p, err := models.NewProjectRepo(db, middleware.PrincipalOf(c).UserID).Get(c.Request().Context(), c.Param("id"))
	return summaryResponse{ID: p.ID, Name: p.Name}, err
}

// brokenRoute is a route missing one defense and the suite's checks that
// must report it.
type brokenRoute struct {
	name string
	// route is registered through register, with the table's middleware,
	// and added to the API's table, as a route added to routes() would be.
	route route
	body  *bodyCase // for a route that reads a body
	// bypass registers route.handler directly on the router instead,
	// as code that goes around the table would.
	bypass bool
	// undocumented leaves the route out of the API document.
	undocumented bool
	want         []string // checks that must fail
}

func brokenRoutes(db *models.DB) []brokenRoute {
	read, write := middleware.Owner("projects:read"), middleware.Owner("projects:write")
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	own := func(c echo.Context) error {
		s, err := readOwnProject(db, c)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, s)
	}
	summary := routeDoc{id: "brokenSummary", summary: "broken on purpose", tag: "broken", response: summaryResponse{}, status: http.StatusOK}
	noContent := routeDoc{id: "brokenNoContent", summary: "broken on purpose", tag: "broken", status: http.StatusNoContent}
	return []brokenRoute{
		{
			name:  "reads a project by id without its owner",
			route: route{method: http.MethodGet, path: "/v1/projects/:id/summary", policy: read, handler: readProjectWithoutOwner(db), doc: summary},
			want:  []string{"404 ids"},
		},
		{
			name:  "no policy check: a project action made public",
			route: route{method: http.MethodPost, path: "/v1/projects/:id/archive", policy: middleware.Public(), handler: ok, doc: noContent},
			want:  []string{"public routes"},
		},
		{
			name:  "a write route that a read-only key may call",
			route: route{method: http.MethodDelete, path: "/v1/projects/:id/tasks", policy: read, handler: ok, doc: noContent},
			want:  []string{"scopes"},
		},
		{
			name:  "an admin route without the admin policy",
			route: route{method: http.MethodGet, path: "/v1/admin/export", policy: middleware.Authenticated(), handler: ok, doc: noContent},
			want:  []string{"403 role"},
		},
		{
			name: "a body decoded with encoding/json instead of the strict decoder",
			route: route{method: http.MethodPost, path: "/v1/projects/:id/notes", policy: write, doc: routeDoc{
				id: "brokenNote", summary: "broken on purpose", tag: "broken", request: noteRequest{}, response: summaryResponse{}, status: http.StatusCreated},
				handler: func(c echo.Context) error {
					var req noteRequest
					if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
						return models.E(models.KindMalformed, "The request body is not valid JSON.")
					}
					s, err := readOwnProject(db, c)
					if err != nil {
						return err
					}
					return c.JSON(http.StatusCreated, s)
				}},
			body: &bodyCase{valid: func(*fixture) string { return `{"text":"a note"}` }, invalid: `{"text":""}`},
			want: []string{"415", "400 body", "422", "schema limits"},
		},
		{
			name: "an error written by hand, with internals",
			route: route{method: http.MethodGet, path: "/v1/projects/:id/debug", policy: read, doc: summary, handler: func(c echo.Context) error {
				return c.JSON(http.StatusInternalServerError, map[string]string{"error": "sql: Scan error on column index 1 at models/project.go:81"})
			}},
			want: []string{"2xx"},
		},
		{
			name: "an authenticated answer marked cacheable",
			route: route{method: http.MethodGet, path: "/v1/projects/:id/cached", policy: read, doc: summary, handler: func(c echo.Context) error {
				c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
				return own(c)
			}},
			want: []string{"2xx"},
		},
		{
			name:   "a route registered around the table",
			route:  route{method: http.MethodGet, path: "/v1/projects/:id/raw", policy: read, handler: own, doc: summary},
			bypass: true,
			want:   []string{"registered"},
		},
		{
			name:         "a route missing from the API document",
			route:        route{method: http.MethodGet, path: "/v1/projects/:id/extra", policy: read, handler: own, doc: summary},
			undocumented: true,
			want:         []string{"document"},
		},
	}
}

// withBrokenRoute registers b on api as its case says, regenerates the API
// document from the table with it (unless it is to be undocumented), and
// returns the fixture the suite runs with.
func withBrokenRoute(t *testing.T, api *testAPI, b brokenRoute) *fixture {
	t.Helper()
	if b.bypass {
		api.e.Add(b.route.method, b.route.path, b.route.handler)
	} else {
		rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		env := routeEnv{auth: api.accounts, rl: rl, limits: generousLimits(), bodyLimit: DefaultBodyLimit, reportConcurrency: 2}
		if err := register(api.e, []route{b.route}, env); err != nil {
			t.Fatalf("register: %v", err)
		}
		api.routes = append(api.routes, b.route)
	}
	if !b.undocumented {
		b, err := openAPIDocument(allRoutes(api), "test")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := parseDocument(b)
		if err != nil {
			t.Fatal(err)
		}
		api.docOnce.Do(func() { api.doc = doc })
	}
	fx := newFixture(t, api)
	if b.body != nil {
		fx.bodies = maps.Clone(fx.bodies)
		fx.bodies[routeKey(b.route)] = *b.body
	} else if b.route.method == http.MethodPost && !b.bypass {
		fx.withoutBody = maps.Clone(fx.withoutBody)
		fx.withoutBody[routeKey(b.route)] = true
	}
	return fx
}

func TestConformanceCatchesBrokenRoutes(t *testing.T) {
	t.Parallel()
	for i, b := range brokenRoutes(nil) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, db *models.DB) {
				t.Parallel()
				b := brokenRoutes(db)[i]
				fx := withBrokenRoute(t, newTestAPI(t, db), b)
				failed := conformanceFailures(t, fx, func(r route) bool { return routeKey(r) == routeKey(b.route) })
				for _, check := range b.want {
					if _, ok := failed[check]; !ok {
						t.Errorf("the check %q does not report the broken route %s", check, routeKey(b.route))
					}
				}
				names := slices.Sorted(maps.Keys(failed))
				t.Logf("%s is reported by: %s", routeKey(b.route), strings.Join(names, ", "))
				for _, name := range names {
					t.Logf("  %s: %s", name, truncate(failed[name][0]))
				}
			})
		})
	}
}

package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
)

// Default deny: start-up fails for a route registered without a policy, and
// for a route registered twice.
func TestRegisterRefusesRoutesWithoutPolicy(t *testing.T) {
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	for name, routes := range map[string][]route{
		"zero policy":         {{method: http.MethodGet, path: "/x", handler: ok}},
		"owner without scope": {{method: http.MethodGet, path: "/x", handler: ok, policy: middleware.Owner("")}},
		"no handler":          {{method: http.MethodGet, path: "/x", policy: middleware.Public()}},
		"twice": {
			{method: http.MethodGet, path: "/x", handler: ok, policy: middleware.Public()},
			{method: http.MethodGet, path: "/x", handler: ok, policy: middleware.Admin()},
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := register(echo.New(), routes, routeEnv{})
			if err == nil || !strings.Contains(err.Error(), "/x") {
				t.Fatalf("register = %v, want an error naming the route", err)
			}
		})
	}
	if err := register(echo.New(), []route{{method: http.MethodGet, path: "/x", handler: ok, policy: middleware.Public()}}, routeEnv{}); err != nil {
		t.Fatalf("a route with a policy is refused: %v", err)
	}
}

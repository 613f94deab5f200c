//go:build !rampart_bench

package app

import (
	"log/slog"
	"net/http"

	"github.com/rampart-go/rampart/models"
)

// benchPublic is the API itself: the bare handler of the benchmark
// harness is not compiled into a normal build.
func benchPublic(api http.Handler, _ *models.DB, _ *slog.Logger) http.Handler { return api }

// benchAuditOff is false: a normal build always keeps its audit trail.
func benchAuditOff(func(string) string) bool { return false }

// benchProfiles adds nothing: a normal build serves no profiles.
func benchProfiles(*http.ServeMux) {}

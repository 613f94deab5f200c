//go:build rampart_bench

package app

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/rampart-go/rampart/handlers"
	"github.com/rampart-go/rampart/models"
)

// benchPublic serves the bare handler (handlers.NewBare) beside the API on
// the public listener, outside every middleware of the API.
func benchPublic(api http.Handler, db *models.DB, log *slog.Logger) http.Handler {
	log.Warn("BENCHMARK BUILD: " + handlers.BarePrefix + " answers without authentication; never deploy this binary")
	bare := handlers.NewBare(db)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, handlers.BarePrefix) {
			bare.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// benchAuditOff reports whether the harness asked for a server without
// its audit trail (RAMPART_BENCH_AUDIT=off), to measure what it costs.
func benchAuditOff(getenv func(string) string) bool {
	return getenv("RAMPART_BENCH_AUDIT") == "off"
}

// benchProfiles serves Go's profiles (net/http/pprof) on the metrics
// listener, which is on the loopback (or behind client certificates):
// scripts/bench --profile takes a CPU profile of the full chain there.
func benchProfiles(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
}

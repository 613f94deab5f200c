package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// BenchmarkMiddlewareChain measures the defense chain itself, around a
// handler that does no work (it answers a small JSON object): a bare echo
// instance with no middleware, then the API's whole chain (security
// headers, request ID, request log, audit, per-IP limit, deadline, panic
// handler, CORS; then body cap, policy with session authentication from
// the session cache, per-user limit, strict query, Accept) on a public
// route and on an owner route with a session. The request log is
// formatted as in the server and then discarded. The route is not in the
// API's table, so it records no audit event: BenchmarkAuthenticatedRead
// measures the audit trail. cpu-ns/op is this process's CPU time per
// request (a shared host makes ns/op noisy).
//
//	go test -run '^$' -bench MiddlewareChain ./handlers/
func BenchmarkMiddlewareChain(b *testing.B) {
	noop := func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id")})
	}
	const target = "/bench/noop/0b5e8f6a-3c1d-4e2f-9a7b-1c2d3e4f5a6b"
	run := func(b *testing.B, h http.Handler, token string, flush func()) {
		b.ReportAllocs()
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := withToken(newRequest(http.MethodGet, target, ""), token)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("status %d", rec.Code)
					return
				}
			}
		})
		flush()
		b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}

	b.Run("bare", func(b *testing.B) {
		e := echo.New()
		e.GET("/bench/noop/:id", noop)
		run(b, e, "", func() {})
	})
	for _, c := range []struct {
		name   string
		policy middleware.Policy
	}{
		{"public", middleware.Public()},
		{"session", middleware.Owner(models.ScopeProjectsRead)},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := dbtest.Open(b, models.SQLite)
			cache, err := models.NewSessionCache(models.SessionCacheConfig{})
			if err != nil {
				b.Fatal(err)
			}
			db.SetSessionCache(cache)
			writer := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{})
			b.Cleanup(func() { _ = writer.Close(context.Background()) })
			api := newTestAPIWith(b, db, func(d *Deps) {
				d.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
				d.Auditor = writer
			})
			rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{})
			if err != nil {
				b.Fatal(err)
			}
			env := routeEnv{auth: api.accounts, rl: rl, limits: generousLimits(), bodyLimit: DefaultBodyLimit, reportConcurrency: 2}
			if err := register(api.e, []route{{method: http.MethodGet, path: "/bench/noop/:id", policy: c.policy, handler: noop}}, env); err != nil {
				b.Fatal(err)
			}
			token := ""
			if !c.policy.IsPublic() {
				token = api.signUp(b).Token
			}
			b.ResetTimer()
			run(b, api.e, token, func() {
				if err := writer.Flush(context.Background()); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

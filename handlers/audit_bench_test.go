package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// BenchmarkAuthenticatedRead measures what the audit trail costs: the same
// authenticated read (GET /v1/projects/:id with a session, through the
// whole router) with auditing off and on, on each dialect. Budget: with
// auditing on, throughput at most 10% lower (compare ns/op of the two
// sub-benchmarks; scripts/bench-audit.sh prints the ratio). The time to
// write the queued events is included: each run ends with a Flush.
func BenchmarkAuthenticatedRead(b *testing.B) {
	for _, d := range dbtest.Dialects {
		for _, audit := range []bool{false, true} {
			name := string(d) + "/audit=off"
			if audit {
				name = string(d) + "/audit=on"
			}
			b.Run(name, func(b *testing.B) {
				db := dbtest.Open(b, d)
				// The server's pool (dbtest keeps one idle connection).
				db.SQLDB().SetMaxIdleConns(10)
				var writer *models.AuditWriter
				api := newTestAPIWith(b, db, func(deps *Deps) {
					deps.Auditor = nil
					if audit {
						// The server's writer settings (the tests' own
						// flush every few milliseconds).
						writer = models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{})
						b.Cleanup(func() { _ = writer.Close(context.Background()) })
						deps.Auditor = writer
					}
				})
				u := api.signUp(b)
				p := api.createProject(b, u.Token, "Benchmarked")
				target := "/v1/projects/" + p.ID
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req := withToken(newRequest(http.MethodGet, target, ""), u.Token)
						rec := httptest.NewRecorder()
						api.e.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Errorf("status %d", rec.Code)
							return
						}
					}
				})
				if writer != nil {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := writer.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

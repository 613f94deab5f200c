package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
// write the queued events is included: each run ends with a Flush. As in
// the server, verified sessions come from the session cache. cpu-ns/op is
// the CPU time of this process per read, and db-cpu-ns/op that of a local
// PostgreSQL server's processes (0 on SQLite, which runs in this process,
// and for a server on another machine): on a shared machine their sum says
// more than ns/op, and its inverse is what a CPU-bound host can serve.
func BenchmarkAuthenticatedRead(b *testing.B) {
	for _, d := range dbtest.Dialects {
		for _, audit := range []bool{false, true} {
			name := string(d) + "/audit=off"
			if audit {
				name = string(d) + "/audit=on"
			}
			b.Run(name, func(b *testing.B) {
				db := dbtest.Open(b, d)
				// The server's pool, which keeps as many idle connections
				// as it opens (dbtest keeps one).
				db.SQLDB().SetMaxIdleConns(db.SQLDB().Stats().MaxOpenConnections)
				cache, err := models.NewSessionCache(models.SessionCacheConfig{})
				if err != nil {
					b.Fatal(err)
				}
				db.SetSessionCache(cache)
				var writer *models.AuditWriter
				api := newTestAPIWith(b, db, func(deps *Deps) {
					// As in the server, a JSON line a request written to a
					// file (the server's stdout; here the null device).
					// The tests' buffer would keep every line and grow for
					// the whole run, a cost the server does not have.
					deps.Logger = slog.New(slog.NewJSONHandler(devNull(b), nil))
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
				cpu, dbCPU := processCPU(), postgresCPU(d)
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
				b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64((postgresCPU(d)-dbCPU).Nanoseconds())/float64(b.N), "db-cpu-ns/op")
			})
		}
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// devNull opens the null device for writing until the benchmark ends.
func devNull(tb testing.TB) *os.File {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = f.Close() })
	return f
}

// postgresCPU is the CPU time the processes of a PostgreSQL server on this
// machine have used (the backends that exited counted through the
// postmaster), from /proc in clock ticks of 1/100 s; 0 on SQLite, where
// TEST_DATABASE_URL names another host, or without /proc.
func postgresCPU(d models.Dialect) time.Duration {
	u, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
	if d != models.Postgres || err != nil || !slices.Contains([]string{"", "127.0.0.1", "localhost", "::1"}, u.Hostname()) {
		return 0
	}
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, dir := range dirs {
		if _, err := strconv.Atoi(dir.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", dir.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", dir.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields count from after the name in parentheses (the last ')':
		// a name may hold one): utime, stime, cutime and cstime are the
		// 12th to 15th of those.
		after := stat[bytes.LastIndexByte(stat, ')')+1:]
		if f := strings.Fields(string(after)); len(f) >= 15 {
			for _, v := range f[11:15] {
				n, _ := strconv.ParseInt(v, 10, 64)
				ticks += n
			}
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

package models_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// BenchmarkAuditAppend measures writing the audit trail: one batch of 1,024
// typical request events (an authz_allow of an authenticated read) per
// iteration, chained and inserted in one transaction, on each dialect.
// ns/event is what one recorded request costs the database side.
//
//	go test -run '^$' -bench AuditAppend ./models/
func BenchmarkAuditAppend(b *testing.B) {
	const batch = 1024 // the writer's default
	for _, d := range dbtest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := dbtest.Open(b, d)
			l := models.NewAuditLog(db)
			events := make([]models.AuditEvent, batch)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				for i := range events {
					events[i] = models.AuditEvent{ActorType: models.ActorUser, ActorID: "0b5e8f6a-3c1d-4e2f-9a7b-1c2d3e4f5a6b",
						UserID: "0b5e8f6a-3c1d-4e2f-9a7b-1c2d3e4f5a6b", ClientIP: "127.0.0.1", UserAgent: "wrk",
						RequestID: "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", Route: "GET /v1/projects/:id", Action: models.ActionAuthzAllow,
						ResourceType: "project", ResourceID: "7d3c1b2a-5e4f-4a6b-8c7d-9e0f1a2b3c4d", Outcome: models.OutcomeAllow}
				}
				if err := l.Append(context.Background(), events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
			// On a shared machine, wall time says little: the CPU time this
			// process used (this process includes SQLite, not PostgreSQL).
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*batch), "cpu-ns/event")
		})
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

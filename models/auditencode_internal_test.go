package models

import (
	"testing"
	"time"
)

// BenchmarkAuditEncode measures the trail's CPU work outside the database
// for one typical request event (an authz_allow of an authenticated read):
// normalize, which runs on the request's path in Record, and the chained
// encoding of its batch, which the writer does. ns/op is per event.
//
//	go test -run '^$' -bench AuditEncode ./models/
func BenchmarkAuditEncode(b *testing.B) {
	const batch = 1024 // the writer's default
	events := make([]AuditEvent, batch)
	var enc auditEncoder
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			events[i] = AuditEvent{ActorType: ActorUser, ActorID: "0b5e8f6a-3c1d-4e2f-9a7b-1c2d3e4f5a6b",
				UserID: "0b5e8f6a-3c1d-4e2f-9a7b-1c2d3e4f5a6b", ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1",
				RequestID: "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", Route: "GET /v1/projects/:id", Action: ActionAuthzAllow,
				ResourceType: "project", ResourceID: "7d3c1b2a-5e4f-4a6b-8c7d-9e0f1a2b3c4d", Outcome: OutcomeAllow}
			if err := events[i].normalize(now); err != nil {
				b.Fatal(err)
			}
		}
		enc.encode(events, 0, "")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
}

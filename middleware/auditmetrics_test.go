package middleware_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// TestAuditMetrics: each security event is counted where an operator
// looks for it, and the writer's queue and progress are exported.
func TestAuditMetrics(t *testing.T) {
	db := dbtest.Open(t, models.SQLite)
	w := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{})
	reg := prometheus.NewRegistry()
	m, err := middleware.NewAuditMetrics(reg, w)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []models.AuditEvent{
		{Action: models.ActionLoginFail, Outcome: models.OutcomeDeny, Reason: "wrong_password"},
		{Action: models.ActionLoginFail, Outcome: models.OutcomeDeny, Reason: "unknown_email"},
		{Action: models.ActionTokenInvalid, Outcome: models.OutcomeDeny},
		{Action: models.ActionAuthzFail, Outcome: models.OutcomeDeny, Reason: "not_found"},
		{Action: models.ActionAuthzFail, Outcome: models.OutcomeDeny, Reason: "forbidden: This endpoint is for administrators."},
		{Action: models.ActionRateLimited, Outcome: models.OutcomeDeny, Reason: "ip,user"},
		{Action: models.ActionLoginFailMax, Outcome: models.OutcomeDeny, Reason: "login-account"},
		{Action: models.ActionQuotaExceeded, Outcome: models.OutcomeDeny},
		{Action: models.ActionAuthzAllow, Outcome: models.OutcomeAllow},
	} {
		m.Observe(e)
		if err := w.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"rampart_authn_failures_total", []string{"kind", "login", "reason", "wrong_password"}, 1},
		{"rampart_authn_failures_total", []string{"kind", "login", "reason", "unknown_email"}, 1},
		{"rampart_authn_failures_total", []string{"kind", "token", "reason", "invalid"}, 1},
		{"rampart_authz_denials_total", []string{"reason", "not_found"}, 1},
		{"rampart_authz_denials_total", []string{"reason", "forbidden"}, 1},
		{"rampart_rate_limited_total", []string{"policy", "ip"}, 1},
		{"rampart_rate_limited_total", []string{"policy", "user"}, 1},
		{"rampart_rate_limited_total", []string{"policy", "login-account"}, 1},
		{"rampart_quota_exceeded_total", nil, 1},
		{"rampart_audit_events_total", []string{"action", models.ActionAuthzAllow, "outcome", models.OutcomeAllow}, 1},
		{"rampart_audit_events_written_total", nil, 9},
	} {
		if got := counter(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAuditMetricsManyPairs: past the pairs it keeps, events are still
// counted (through the vector, uncached).
func TestAuditMetricsManyPairs(t *testing.T) {
	db := dbtest.Open(t, models.SQLite)
	w := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{})
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	reg := prometheus.NewRegistry()
	m, err := middleware.NewAuditMetrics(reg, w)
	if err != nil {
		t.Fatal(err)
	}
	const pairs = 300
	for range 2 {
		for i := range pairs {
			m.Observe(models.AuditEvent{Action: fmt.Sprintf("action_%d", i), Outcome: models.OutcomeAllow})
		}
	}
	for _, i := range []int{0, 255, 256, pairs - 1} {
		if got := counter(t, reg, "rampart_audit_events_total", "action", fmt.Sprintf("action_%d", i), "outcome", models.OutcomeAllow); got != 2 {
			t.Errorf("action_%d counted %v times, want 2", i, got)
		}
	}
}

// BenchmarkAuditMetricsObserve: what counting one request's event costs
// (an allowed read: rampart_audit_events_total only), from all cores at
// once as under load.
func BenchmarkAuditMetricsObserve(b *testing.B) {
	db := dbtest.Open(b, models.SQLite)
	w := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{})
	b.Cleanup(func() { _ = w.Close(context.Background()) })
	m, err := middleware.NewAuditMetrics(prometheus.NewRegistry(), w)
	if err != nil {
		b.Fatal(err)
	}
	e := models.AuditEvent{Action: models.ActionAuthzAllow, Outcome: models.OutcomeAllow}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(e)
		}
	})
}

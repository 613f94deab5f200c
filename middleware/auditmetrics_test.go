package middleware_test

import (
	"context"
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

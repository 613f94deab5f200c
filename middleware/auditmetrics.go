package middleware

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/models"
)

// AuditMetrics counts security events as they are recorded: authentication
// failures, authorization denials, rate-limited and quota-exceeded
// answers, and every audit event by action and outcome. Observe is the
// hook; it is cheap (counters only).
type AuditMetrics struct {
	events    *prometheus.CounterVec
	eventsMu  sync.Mutex                                       // held to add to byEvent
	byEvent   atomic.Pointer[map[[2]string]prometheus.Counter] // events' counters by action and outcome
	authn     *prometheus.CounterVec
	authz     *prometheus.CounterVec
	limited   *prometheus.CounterVec
	quota     prometheus.Counter
	queue     prometheus.GaugeFunc
	written   prometheus.CounterFunc
	writeErrs prometheus.CounterFunc
}

// NewAuditMetrics registers the audit metrics on reg; w supplies the
// writer's queue depth and counts.
func NewAuditMetrics(reg prometheus.Registerer, w *models.AuditWriter) (*AuditMetrics, error) {
	m := &AuditMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_audit_events_total",
			Help: "Audit events recorded, by action and outcome."}, []string{"action", "outcome"}),
		authn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_authn_failures_total",
			Help: "Failed authentications: logins (by internal reason) and invalid credentials."}, []string{"kind", "reason"}),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_authz_denials_total",
			Help: "Authorization denials: forbidden functions and objects not found for their caller."}, []string{"reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_rate_limited_total",
			Help: "Requests refused with 429 by a rate limit, by policy."}, []string{"policy"}),
		quota: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_quota_exceeded_total",
			Help: "Requests refused with 429 because a resource quota is full."}),
		queue: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_audit_queue_depth",
			Help: "Audit events waiting to be written."}, func() float64 { return float64(w.QueueDepth()) }),
		written: prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_audit_events_written_total",
			Help: "Audit events written to the database."}, func() float64 { return float64(w.Written()) }),
		writeErrs: prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_audit_write_failures_total",
			Help: "Failed attempts to write a batch of audit events (each is retried until written)."},
			func() float64 { return float64(w.WriteFailures()) }),
	}
	m.byEvent.Store(&map[[2]string]prometheus.Counter{})
	for _, c := range []prometheus.Collector{m.events, m.authn, m.authz, m.limited, m.quota, m.queue, m.written, m.writeErrs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe counts e. Label values come from fixed sets (actions, outcomes,
// reasons and policy names the server itself writes), never from input.
func (m *AuditMetrics) Observe(e models.AuditEvent) {
	m.eventCounter(e.Action, e.Outcome).Inc()
	switch e.Action {
	case models.ActionLoginFail:
		m.authn.WithLabelValues("login", e.Reason).Inc()
	case models.ActionTokenInvalid:
		m.authn.WithLabelValues("token", "invalid").Inc()
	case models.ActionAuthzFail:
		reason, _, _ := strings.Cut(e.Reason, ":")
		m.authz.WithLabelValues(reason).Inc()
	case models.ActionRateLimited, models.ActionLoginFailMax:
		for p := range strings.SplitSeq(e.Reason, ",") {
			m.limited.WithLabelValues(p).Inc()
		}
	case models.ActionQuotaExceeded:
		m.quota.Inc()
	}
}

// auditCounterPairs bounds the action and outcome pairs eventCounter keeps.
const auditCounterPairs = 256

// eventCounter returns the counter of rampart_audit_events_total for
// action and outcome. Observe runs for every request, and WithLabelValues
// validates, hashes and looks up its labels under a lock each time; the
// pairs are few, so their counters are kept in a map read without a lock
// and copied (under eventsMu) only when a pair is new.
func (m *AuditMetrics) eventCounter(action, outcome string) prometheus.Counter {
	key := [2]string{action, outcome}
	if c, ok := (*m.byEvent.Load())[key]; ok {
		return c
	}
	m.eventsMu.Lock()
	defer m.eventsMu.Unlock()
	old := *m.byEvent.Load()
	if c, ok := old[key]; ok {
		return c
	}
	c := m.events.WithLabelValues(action, outcome)
	if len(old) < auditCounterPairs {
		next := maps.Clone(old)
		next[key] = c
		m.byEvent.Store(&next)
	}
	return c
}

package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// alertWebhookKeyName is the secret that signs alert webhooks.
const alertWebhookKeyName = "alert_webhook_key"

// alertWebhookKeyMinLength is its least length in bytes.
const alertWebhookKeyMinLength = 32

// newAnomalyDetector starts the anomaly detector of cfg.Anomaly. Its
// counters are shared through redis when it is not nil; record writes its
// alerts to the audit trail; the secret alert_webhook_key (required when
// APP_ALERT_WEBHOOK_URL is set; made in development) signs the webhook,
// each alert with its current version: it rotates with the secret.
//
// Wiring: the audit writer's Observe is the detector's Observe, and record
// is the writer's Record (the detector never analyses its own alerts, so
// the two may call each other). At shutdown, close the detector after the
// servers have stopped and before the audit writer.
func newAnomalyDetector(ctx context.Context, cfg Config, db *models.DB, redisClient *redis.Client, secrets *SecretStore,
	record func(models.AuditEvent) error, log *slog.Logger, reg prometheus.Registerer) (*middleware.AnomalyDetector, error) {
	deps := middleware.AnomalyDeps{DB: db, Record: record, Logger: log, Registerer: reg}
	if redisClient != nil {
		// Not assigned when nil: a nil *redis.Client in the interface
		// would look like a configured Redis.
		deps.Redis = redisClient
	}
	if cfg.Anomaly.AlertWebhookURL != "" {
		keys, err := secrets.keyRing(ctx, alertWebhookKeyName, alertWebhookKeyMinLength)
		if err != nil {
			return nil, fmt.Errorf("APP_ALERT_WEBHOOK_URL needs the secret %s: %w", alertWebhookKeyName, err)
		}
		deps.WebhookKeys = keys
		// The alert webhook's own outbound client: it admits the
		// operator's APP_ALERT_WEBHOOK_ALLOW ranges, which user-registered
		// webhooks must never reach.
		deps.Outbound, err = outbound.New(middleware.AlertWebhookOptions(cfg.Anomaly.AlertWebhookURL, cfg.AlertWebhookAllow))
		if err != nil {
			return nil, fmt.Errorf("APP_ALERT_WEBHOOK_ALLOW: %w", err)
		}
	}
	d, err := middleware.NewAnomalyDetector(cfg.Anomaly, deps)
	if err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "anomaly detection on", "rules", d.Enabled(), "shared_through_redis", d.Shared(),
		"alert_webhook", redactWebhookURL(cfg.Anomaly.AlertWebhookURL))
	return d, nil
}

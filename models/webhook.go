package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"time"
)

// Webhook is a project's webhook as its owner sees it: never the secret
// itself, only a hint to tell secrets apart.
type Webhook struct {
	ProjectID  string    `db:"project_id"`
	URL        string    `db:"url"`
	SecretHint string    `db:"secret_hint"`
	CreatedAt  time.Time `db:"created_at"`
	UpdatedAt  time.Time `db:"updated_at"`
}

// WebhookAttempt is one line of a project's delivery log: when a delivery
// was tried, what the receiver answered (its status code, never its body),
// how long it took and, when it failed, the class of failure.
type WebhookAttempt struct {
	Seq        int64         `db:"seq"` // internal ordering key; never exposed
	DeliveryID string        `db:"delivery_id"`
	Event      string        `db:"event"`
	Attempt    int           `db:"attempt"`
	At         time.Time     `db:"at"`
	StatusCode sql.NullInt64 `db:"status_code"`
	LatencyMS  int64         `db:"latency_ms"`
	ErrorClass string        `db:"error_class"`
}

// webhookSecretPrefix starts every webhook signing secret, so that one
// found in a log or a repository is recognisable (and scanners can match
// it).
const webhookSecretPrefix = "whsec_"

// newWebhookSecret returns a new signing secret (256 random bits) and the
// hint that is shown in its place afterwards.
func newWebhookSecret() (secret, hint string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", Internal(err)
	}
	secret = webhookSecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, webhookSecretPrefix + "…" + secret[len(secret)-4:], nil
}

// WebhookRepo reads and writes the webhooks of one owner's projects. The
// owner is fixed at construction and bound into every statement: another
// owner's project, like a missing one, is KindNotFound.
type WebhookRepo struct {
	db     *DB
	sealer *Sealer
	owner  string
}

// NewWebhookRepo returns the webhooks of owner (a user ID taken from the
// authenticated principal, never from input). Secrets are sealed with
// sealer before they are stored.
func NewWebhookRepo(db *DB, sealer *Sealer, owner string) *WebhookRepo {
	return &WebhookRepo{db: db, sealer: sealer, owner: owner}
}

// ownsProject answers ErrNotFound unless the owner has the project.
func (r *WebhookRepo) ownsProject(ctx context.Context, projectID string) error {
	if !ValidID(projectID) {
		return ErrNotFound
	}
	var one int
	return r.db.q().get(ctx, &one, `SELECT 1 FROM projects WHERE id = ? AND owner_id = ?`, projectID, r.owner)
}

// Put sets the URL of a project's webhook (the caller has validated it).
// The first Put creates the webhook with a new signing secret, which it
// returns, the only time it is ever shown; later Puts change the URL and
// keep the secret (secret is then ""). Owner-scoped.
func (r *WebhookRepo) Put(ctx context.Context, projectID, url string) (w Webhook, secret string, err error) {
	if !ValidID(projectID) {
		return Webhook{}, "", ErrNotFound
	}
	err = r.db.tx(ctx, func(q q) error {
		// Lock the project row: two concurrent first Puts cannot both
		// believe they created the webhook.
		if err := q.execOne(ctx, `UPDATE projects SET updated_at = updated_at WHERE id = ? AND owner_id = ?`,
			projectID, r.owner); err != nil {
			return err
		}
		t := now()
		err := q.get(ctx, &w, `
			UPDATE webhooks SET url = ?, updated_at = ?
			WHERE project_id = ? AND owner_id = ?
			RETURNING project_id, url, secret_hint, created_at, updated_at`,
			url, t, projectID, r.owner)
		if KindOf(err) != KindNotFound {
			return err
		}
		s, hint, err := newWebhookSecret()
		if err != nil {
			return err
		}
		sealed, err := r.sealer.Seal(s, projectID)
		if err != nil {
			return err
		}
		secret = s
		return q.get(ctx, &w, `
			INSERT INTO webhooks (project_id, owner_id, url, secret, secret_hint, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			RETURNING project_id, url, secret_hint, created_at, updated_at`,
			projectID, r.owner, url, sealed, hint, t, t)
	})
	if err != nil {
		return Webhook{}, "", err
	}
	return w, secret, nil
}

// Get returns a project's webhook. Owner-scoped: KindNotFound when the
// project is another owner's or has no webhook.
func (r *WebhookRepo) Get(ctx context.Context, projectID string) (Webhook, error) {
	if !ValidID(projectID) {
		return Webhook{}, ErrNotFound
	}
	var w Webhook
	err := r.db.q().get(ctx, &w, `
		SELECT project_id, url, secret_hint, created_at, updated_at
		FROM webhooks WHERE project_id = ? AND owner_id = ?`, projectID, r.owner)
	return w, err
}

// Delete removes a project's webhook; deliveries not yet sent are dropped
// with it (nobody is there to receive them). Owner-scoped.
func (r *WebhookRepo) Delete(ctx context.Context, projectID string) error {
	if !ValidID(projectID) {
		return ErrNotFound
	}
	return r.db.tx(ctx, func(q q) error {
		if err := q.execOne(ctx, `DELETE FROM webhooks WHERE project_id = ? AND owner_id = ?`, projectID, r.owner); err != nil {
			return err
		}
		_, err := q.exec(ctx, `
			UPDATE webhook_deliveries SET state = 'failed', lease_until = NULL, updated_at = ?
			WHERE project_id = ? AND state = 'pending'`, now(), projectID)
		return err
	})
}

// Attempts returns one page of a project's delivery log, oldest first.
// Owner-scoped: KindNotFound for another owner's project.
func (r *WebhookRepo) Attempts(ctx context.Context, projectID string, page PageRequest) (Page[WebhookAttempt], error) {
	if err := r.ownsProject(ctx, projectID); err != nil {
		return Page[WebhookAttempt]{}, err
	}
	var rows []WebhookAttempt
	err := r.db.q().sel(ctx, &rows, `
		SELECT a.seq, a.delivery_id, d.event, a.attempt, a.at, a.status_code, a.latency_ms, a.error_class
		FROM webhook_attempts a
		JOIN webhook_deliveries d ON d.id = a.delivery_id
		JOIN projects p ON p.id = a.project_id
		WHERE a.project_id = ? AND p.owner_id = ? AND a.seq > ?
		ORDER BY a.seq LIMIT ?`,
		projectID, r.owner, page.After, page.Limit+1)
	if err != nil {
		return Page[WebhookAttempt]{}, err
	}
	return pageOf(rows, page.Limit, func(a WebhookAttempt) int64 { return a.Seq }), nil
}

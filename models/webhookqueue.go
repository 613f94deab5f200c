package models

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rampart-go/rampart/models/outbound"
)

// Webhook delivery headers. The signature header carries the time of
// signing and the HMAC-SHA256, in hex, of "<t>.<body>" under the project's
// secret: "t=1700000000,v1=5257a869…". Receivers recompute it, compare in
// constant time, and refuse a t more than a few minutes old (replays).
const (
	WebhookSignatureHeader = "Rampart-Signature"
	WebhookEventHeader     = "Rampart-Event"
	WebhookDeliveryHeader  = "Rampart-Delivery"
)

// Webhook events.
const (
	EventTaskCreated   = "task.created"
	EventTaskUpdated   = "task.updated"
	EventTaskCompleted = "task.completed"
	EventTaskDeleted   = "task.deleted"
	EventPing          = "ping"
)

// SignWebhook returns the value of a signature header for body signed with
// key at t: "t=<unix seconds>,v1=<hex>", where v1 is the HMAC-SHA256 of
// "<t>.<body>". Project webhooks (Rampart-Signature) and anomaly alerts
// (X-Rampart-Signature) are signed with it. A receiver recomputes it over
// the raw body, compares in constant time, and refuses an old t (replays).
func SignWebhook(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookPoster sends one request to a receiver and reports only what may
// be trusted of its answer (outbound.Client).
type WebhookPoster interface {
	Post(ctx context.Context, rawURL string, header http.Header, body []byte) outbound.Result
}

// WebhookConfig tunes deliveries; zero fields take the defaults.
type WebhookConfig struct {
	MaxAttempts int                             // attempts per delivery before it fails (6)
	Backoff     func(attempt int) time.Duration // wait after the n-th failed attempt (30 s × 4^(n-1), capped at 1 h, ±20 % jitter)
	Poll        time.Duration                   // how often due deliveries are looked for (1 s)
	Lease       time.Duration                   // how long a claimed delivery is reserved (2 min; longer than one attempt)
	Workers     int                             // deliveries sent at once (4)
	CircuitWait time.Duration                   // how long a delivery waits when its destination's circuit is open (1 min)
	Retention   time.Duration                   // how long finished deliveries and their log are kept (7 days)
	Logger      *slog.Logger
	Now         func() time.Time
}

func (c *WebhookConfig) defaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.Backoff == nil {
		c.Backoff = DefaultWebhookBackoff
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.CircuitWait <= 0 {
		c.CircuitWait = time.Minute
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = now
	}
}

// DefaultWebhookBackoff waits 30 s after the first failed attempt and four
// times longer after each next one, up to an hour, with ±20 % jitter so
// that many deliveries to one receiver do not retry in step.
func DefaultWebhookBackoff(attempt int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 4
	}
	d = min(d, time.Hour)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5 // #nosec G404 -- jitter, not a secret
	return d + jitter
}

// WebhookDispatcher turns committed task changes into signed deliveries to
// the project's webhook. A change becomes a row of webhook_deliveries
// first (a durable queue: a crash or restart loses nothing); Run sends due
// rows through the outbound client, logs each attempt, retries failures
// with backoff up to MaxAttempts, and leaves a destination alone while its
// circuit is open. Several instances may run it on one PostgreSQL
// database: a delivery is claimed with a lease (FOR UPDATE SKIP LOCKED).
type WebhookDispatcher struct {
	db     *DB
	sealer *Sealer
	client WebhookPoster
	cfg    WebhookConfig
	wake   chan struct{}
	wg     sync.WaitGroup
}

// NewWebhookDispatcher returns a dispatcher; call Run to send deliveries.
func NewWebhookDispatcher(db *DB, sealer *Sealer, client WebhookPoster, cfg WebhookConfig) *WebhookDispatcher {
	cfg.defaults()
	return &WebhookDispatcher{db: db, sealer: sealer, client: client, cfg: cfg, wake: make(chan struct{}, 1)}
}

// webhookPayload is the JSON body of a delivery.
type webhookPayload struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	ProjectID string          `json:"project_id"`
	Data      json.RawMessage `json:"data"`
}

// taskEvent names the event of a task change: an update that sets done to
// true is task.completed.
func taskEvent(ch Change, data json.RawMessage) string {
	switch ch.Action {
	case ChangeCreated:
		return EventTaskCreated
	case ChangeDeleted:
		return EventTaskDeleted
	}
	if slices.Contains(ch.Fields, "done") {
		var t struct {
			Done bool `json:"done"`
		}
		if json.Unmarshal(data, &t) == nil && t.Done {
			return EventTaskCompleted
		}
	}
	return EventTaskUpdated
}

// Changed queues a delivery for a task change when the task's project has
// a webhook (models.ChangeSink). The write has happened already, so a
// failure here is logged, not returned.
func (d *WebhookDispatcher) Changed(ctx context.Context, ch Change) {
	if ch.Resource != "task" || ch.ParentID == "" {
		return
	}
	data, err := json.Marshal(ch.Object)
	if ch.Object == nil {
		data, err = json.Marshal(map[string]string{"id": ch.ID, "project_id": ch.ParentID})
	}
	if err != nil {
		d.cfg.Logger.ErrorContext(ctx, "webhook: event not queued", "project_id", ch.ParentID, "error", err.Error())
		return
	}
	if err := d.enqueue(ctx, ch.OwnerID, ch.ParentID, taskEvent(ch, data), data); err != nil {
		d.cfg.Logger.ErrorContext(ctx, "webhook: event not queued", "project_id", ch.ParentID, "error", err.Error())
	}
}

// enqueue adds a pending delivery if the owner's project has a webhook.
func (d *WebhookDispatcher) enqueue(ctx context.Context, owner, projectID, event string, data json.RawMessage) error {
	id, err := NewID()
	if err != nil {
		return err
	}
	t := d.now()
	body, err := json.Marshal(webhookPayload{ID: id, Type: event, CreatedAt: t.Format(time.RFC3339Nano), ProjectID: projectID, Data: data})
	if err != nil {
		return Internal(err)
	}
	n, err := d.db.q().exec(ctx, `
		INSERT INTO webhook_deliveries (id, project_id, event, payload, state, attempts, next_attempt_at, created_at, updated_at)
		SELECT ?, w.project_id, ?, ?, 'pending', 0, ?, ?, ?
		FROM webhooks w WHERE w.project_id = ? AND w.owner_id = ?`,
		id, event, string(body), t, t, t, projectID, owner)
	if err == nil && n > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return err
}

// PingResult is the outcome of a test delivery: only what may be trusted
// of the receiver's answer.
type PingResult struct {
	DeliveryID string
	outbound.Result
}

// Ping sends a signed ping to the webhook of the owner's project at once
// (no retries) and logs it like any delivery. KindNotFound when the
// project is another owner's or has no webhook.
func (d *WebhookDispatcher) Ping(ctx context.Context, owner, projectID string) (PingResult, error) {
	if !ValidID(projectID) {
		return PingResult{}, ErrNotFound
	}
	id, err := NewID()
	if err != nil {
		return PingResult{}, err
	}
	t := d.now()
	data, _ := json.Marshal(map[string]string{"message": "Rampart webhook test"})
	body, err := json.Marshal(webhookPayload{ID: id, Type: EventPing, CreatedAt: t.Format(time.RFC3339Nano), ProjectID: projectID, Data: data})
	if err != nil {
		return PingResult{}, Internal(err)
	}
	// Queued as pending and leased at once: if this instance dies before
	// logging the attempt, the ping is not retried (attempts = MaxAttempts).
	n, err := d.db.q().exec(ctx, `
		INSERT INTO webhook_deliveries (id, project_id, event, payload, state, attempts, next_attempt_at, lease_until, created_at, updated_at)
		SELECT ?, w.project_id, ?, ?, 'pending', ?, ?, ?, ?, ?
		FROM webhooks w WHERE w.project_id = ? AND w.owner_id = ?`,
		id, EventPing, string(body), d.cfg.MaxAttempts-1, t, t.Add(d.cfg.Lease), t, t, projectID, owner)
	if err != nil {
		return PingResult{}, err
	}
	if n == 0 {
		return PingResult{}, ErrNotFound
	}
	res, err := d.send(ctx, claimedDelivery{ID: id, ProjectID: projectID, Event: EventPing, Payload: string(body), Attempts: d.cfg.MaxAttempts - 1})
	return PingResult{DeliveryID: id, Result: res}, err
}

// now is the dispatcher's clock as stored: UTC, to the microsecond (SQLite
// compares stored times as text).
func (d *WebhookDispatcher) now() time.Time {
	return d.cfg.Now().UTC().Truncate(time.Microsecond)
}

// claimedDelivery is a delivery this instance holds the lease of.
type claimedDelivery struct {
	ID        string `db:"id"`
	ProjectID string `db:"project_id"`
	Event     string `db:"event"`
	Payload   string `db:"payload"`
	Attempts  int    `db:"attempts"`
}

// claim leases up to n due deliveries.
func (d *WebhookDispatcher) claim(ctx context.Context, n int) ([]claimedDelivery, error) {
	t := d.now()
	var rows []claimedDelivery
	var err error
	if d.db.Dialect() == Postgres {
		err = d.db.q().sel(ctx, &rows, `
			UPDATE webhook_deliveries SET lease_until = ?
			WHERE id IN (
				SELECT id FROM webhook_deliveries
				WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
				ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING id, project_id, event, payload, attempts`,
			t.Add(d.cfg.Lease), t, t, n)
	} else {
		// SQLite has one writer at a time: the UPDATE is the lock.
		err = d.db.q().sel(ctx, &rows, `
			UPDATE webhook_deliveries SET lease_until = ?
			WHERE id IN (
				SELECT id FROM webhook_deliveries
				WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)
				ORDER BY next_attempt_at LIMIT ?)
			RETURNING id, project_id, event, payload, attempts`,
			t.Add(d.cfg.Lease), t, t, n)
	}
	return rows, err
}

// webhookTarget is what a delivery needs of its project's webhook.
type webhookTarget struct {
	URL    string `db:"url"`
	Secret string `db:"secret"`
}

// errNoWebhook marks a delivery whose webhook was removed meanwhile.
var errNoWebhook = errors.New("the project has no webhook any more")

// send makes one attempt at a claimed delivery and records its outcome.
func (d *WebhookDispatcher) send(ctx context.Context, c claimedDelivery) (outbound.Result, error) {
	var w webhookTarget
	err := d.db.q().get(ctx, &w, `SELECT url, secret FROM webhooks WHERE project_id = ?`, c.ProjectID)
	if KindOf(err) == KindNotFound {
		_, err = d.db.q().exec(ctx, `
			UPDATE webhook_deliveries SET state = 'failed', lease_until = NULL, updated_at = ? WHERE id = ?`,
			d.now(), c.ID)
		if err != nil {
			return outbound.Result{}, err
		}
		return outbound.Result{}, &Error{Kind: KindNotFound, Cause: errNoWebhook}
	}
	if err != nil {
		return outbound.Result{}, err
	}
	secret, stale, err := d.sealer.Open(w.Secret, c.ProjectID)
	if err != nil {
		return outbound.Result{}, err
	}
	if stale {
		d.reseal(ctx, c.ProjectID, secret)
	}
	body := []byte(c.Payload)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(WebhookEventHeader, c.Event)
	h.Set(WebhookDeliveryHeader, c.ID)
	h.Set(WebhookSignatureHeader, SignWebhook([]byte(secret), d.cfg.Now(), body))
	res := d.client.Post(ctx, w.URL, h, body)
	return res, d.record(ctx, c, res)
}

// reseal seals a secret again under the current key after a rotation, so
// that it still opens after the next one.
func (d *WebhookDispatcher) reseal(ctx context.Context, projectID, secret string) {
	sealed, err := d.sealer.Seal(secret, projectID)
	if err == nil {
		_, err = d.db.q().exec(ctx, `UPDATE webhooks SET secret = ? WHERE project_id = ?`, sealed, projectID)
	}
	if err != nil {
		d.cfg.Logger.WarnContext(ctx, "webhook: secret not sealed again under the current key",
			"project_id", projectID, "error", err.Error())
	}
}

// Reseal seals every webhook secret still sealed with the previous key
// again under the current one. The server calls it after webhook_key
// rotates, so that a second rotation does not make secrets unreadable.
func (d *WebhookDispatcher) Reseal(ctx context.Context) (int, error) {
	var rows []struct {
		ProjectID string `db:"project_id"`
		Secret    string `db:"secret"`
	}
	if err := d.db.q().sel(ctx, &rows, `SELECT project_id, secret FROM webhooks`); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		secret, stale, err := d.sealer.Open(r.Secret, r.ProjectID)
		if err != nil {
			d.cfg.Logger.ErrorContext(ctx, "webhook: a secret opens with no key of the ring; its webhook cannot sign",
				"project_id", r.ProjectID)
			continue
		}
		if !stale {
			continue
		}
		sealed, err := d.sealer.Seal(secret, r.ProjectID)
		if err != nil {
			return n, err
		}
		// Only if nobody changed it meanwhile.
		if _, err := d.db.q().exec(ctx, `UPDATE webhooks SET secret = ? WHERE project_id = ? AND secret = ?`,
			sealed, r.ProjectID, r.Secret); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// record logs an attempt and moves the delivery on: delivered, retried
// later, or failed for good. An open circuit is not an attempt: the
// delivery waits for the destination to recover (a ping is not retried:
// it fails).
func (d *WebhookDispatcher) record(ctx context.Context, c claimedDelivery, res outbound.Result) error {
	t := d.now()
	// The attempt is logged even if the request that caused it has ended.
	ctx = context.WithoutCancel(ctx)
	if res.Class == outbound.ClassCircuitOpen && c.Event != EventPing {
		_, err := d.db.q().exec(ctx, `
			UPDATE webhook_deliveries SET next_attempt_at = ?, lease_until = NULL, updated_at = ? WHERE id = ?`,
			t.Add(d.cfg.CircuitWait), t, c.ID)
		return err
	}
	attempt := c.Attempts + 1
	state, next := "pending", t
	switch {
	case res.Class == "":
		state = "delivered"
	case attempt >= d.cfg.MaxAttempts:
		state = "failed"
	default:
		next = t.Add(d.cfg.Backoff(attempt))
	}
	var status *int
	if res.StatusCode > 0 {
		status = &res.StatusCode
	}
	if res.Class != "" {
		d.cfg.Logger.WarnContext(ctx, "webhook delivery failed", "project_id", c.ProjectID, "delivery_id", c.ID,
			"event", c.Event, "attempt", attempt, "status_code", res.StatusCode, "error_class", res.Class,
			"final", state == "failed", "error", errString(res.Err))
	}
	return d.db.tx(ctx, func(q q) error {
		if _, err := q.exec(ctx, `
			INSERT INTO webhook_attempts (delivery_id, project_id, attempt, at, status_code, latency_ms, error_class)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, attempt, t, status, res.Latency.Milliseconds(), res.Class); err != nil {
			return err
		}
		_, err := q.exec(ctx, `
			UPDATE webhook_deliveries
			SET state = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL, updated_at = ?
			WHERE id = ?`,
			state, attempt, next, t, c.ID)
		return err
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Run sends due deliveries until ctx ends, then waits for the attempts in
// flight. Finished deliveries older than the retention are purged.
func (d *WebhookDispatcher) Run(ctx context.Context) {
	tick := time.NewTicker(d.cfg.Poll)
	defer tick.Stop()
	sem := make(chan struct{}, d.cfg.Workers)
	lastPurge := time.Time{}
	for {
		if d.cfg.Now().Sub(lastPurge) > time.Hour {
			lastPurge = d.cfg.Now()
			if err := d.purge(ctx); err != nil && ctx.Err() == nil {
				d.cfg.Logger.WarnContext(ctx, "webhook: old deliveries not purged", "error", err.Error())
			}
		}
		d.RunOnce(ctx, sem)
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case <-tick.C:
		case <-d.wake:
		}
	}
}

// RunOnce claims the deliveries that are due and starts sending them, at
// most Workers at a time (sem: nil makes its own). It returns once all are
// started; Wait waits for them.
func (d *WebhookDispatcher) RunOnce(ctx context.Context, sem chan struct{}) {
	if sem == nil {
		sem = make(chan struct{}, d.cfg.Workers)
	}
	rows, err := d.claim(ctx, 2*d.cfg.Workers)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.WarnContext(ctx, "webhook: due deliveries not claimed", "error", err.Error())
		}
		return
	}
	for _, c := range rows {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Not sent: the lease runs out and it is claimed again.
			return
		}
		d.wg.Go(func() {
			defer func() { <-sem }()
			// An attempt started before shutdown finishes (the client's
			// timeout bounds it) and is recorded.
			if _, err := d.send(context.WithoutCancel(ctx), c); err != nil && KindOf(err) != KindNotFound {
				d.cfg.Logger.ErrorContext(ctx, "webhook: delivery attempt not recorded", "delivery_id", c.ID, "error", err.Error())
			}
		})
	}
}

// Wait waits for the attempts RunOnce started.
func (d *WebhookDispatcher) Wait() { d.wg.Wait() }

// purge deletes finished deliveries (and, by cascade, their log) older
// than the retention.
func (d *WebhookDispatcher) purge(ctx context.Context) error {
	_, err := d.db.q().exec(ctx, `
		DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed') AND updated_at < ?`,
		d.now().Add(-d.cfg.Retention))
	return err
}

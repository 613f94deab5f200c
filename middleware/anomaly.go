package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// The anomaly rules, as they appear in an alert's Reason, its webhook body
// and the rule label of rampart_anomalies_total.
//
// #nosec G101 -- rule names such as credential_stuffing, not credentials
const (
	RuleScraping           = "scraping"            // one principal reads many distinct objects
	RuleKeySpike           = "key_spike"           // an API key's traffic jumps above its baseline
	RuleBOLAProbing        = "bola_probing"        // one principal is refused many object ids
	RuleNewCountry         = "new_country"         // a login from a country the account never used
	RuleCredentialStuffing = "credential_stuffing" // failed logins for many accounts from one address
)

// anomalyRules lists every rule, for the metric's labels.
var anomalyRules = []string{RuleScraping, RuleKeySpike, RuleBOLAProbing, RuleNewCountry, RuleCredentialStuffing}

// AnomalyConfig sets the rules of an AnomalyDetector. A rule whose
// threshold is zero is off; DefaultAnomalyConfig turns every rule on
// except new country, which needs a GeoIP database file.
//
// The windows of scraping, BOLA probing and credential stuffing are fixed
// windows that start at a subject's first event (as the login lock-out's
// does): "more than N within Window of the first". The API-key rule
// compares fixed buckets aligned on the clock.
type AnomalyConfig struct {
	// Scraping: a principal reading more than ScrapeObjects distinct
	// objects (GET of a route with an object id) within ScrapeWindow.
	ScrapeObjects int
	ScrapeWindow  time.Duration

	// API-key spike: a key's requests (its audit events: one per request)
	// in the current bucket of KeySpikeBucket are at least KeySpikeMin and
	// more than KeySpikeFactor times the mean of its previous
	// KeySpikeBaseline buckets. The minimum keeps a quiet key from alerting
	// on a handful of requests; a key without history alerts from the
	// minimum on.
	KeySpikeFactor   float64
	KeySpikeBucket   time.Duration
	KeySpikeBaseline int
	KeySpikeMin      int

	// BOLA probing: a principal refused (404 or 403) on BOLADenials
	// distinct object ids within BOLAWindow.
	BOLADenials int
	BOLAWindow  time.Duration

	// Credential stuffing: failed logins for StuffingAccounts distinct
	// accounts from one client address (an IPv6 /64 counts as one) within
	// StuffingWindow.
	StuffingAccounts int
	StuffingWindow   time.Duration

	// GeoIPDB is a MaxMind-format database file (GeoLite2-Country,
	// GeoIP2-City, ...). When set, the new-country rule is on. The file is
	// read again when it changes on disk (geoipupdate), checked every
	// GeoIPCheckEvery (0: a minute).
	GeoIPDB         string
	GeoIPCheckEvery time.Duration

	// AlertWebhookURL, when set, receives each alert as a signed POST
	// (https only), sent through AnomalyDeps.Outbound, which must accept
	// it. The key is AnomalyDeps.WebhookKey.
	AlertWebhookURL string

	// QueueSize bounds the events waiting to be analysed (default 4096);
	// Observe blocks beyond it.
	QueueSize int
	// MaxSubjects bounds the subjects (principals, addresses, keys) each
	// rule keeps in memory when it has no Redis, or while Redis is down
	// (default 10,000 a rule, least recently seen evicted).
	MaxSubjects int
}

// DefaultAnomalyConfig returns the default rules: scraping above 100
// distinct objects a minute; an API key above 5× the mean of its previous
// ten one-minute buckets, and at least 60 requests; 20 refused object ids
// in 5 minutes; failed logins for 10 accounts from one address in 10
// minutes. New country is off until a GeoIP file is set.
func DefaultAnomalyConfig() AnomalyConfig {
	return AnomalyConfig{
		ScrapeObjects: 100, ScrapeWindow: time.Minute,
		KeySpikeFactor: 5, KeySpikeBucket: time.Minute, KeySpikeBaseline: 10, KeySpikeMin: 60,
		BOLADenials: 20, BOLAWindow: 5 * time.Minute,
		StuffingAccounts: 10, StuffingWindow: 10 * time.Minute,
	}
}

// AnomalyDeps are what an AnomalyDetector works with.
type AnomalyDeps struct {
	// DB records the countries of each account (new-country rule). It is
	// required when a GeoIP database is configured.
	DB *models.DB
	// Redis, when set, holds the rules' counters, so that instances
	// sharing it see one another's events. Nil: this process's memory.
	Redis redis.UniversalClient
	// KeyPrefix namespaces every key in Redis ("rampart:" by default).
	KeyPrefix string
	// RetryRedisAfter is how long Redis is left alone after it failed
	// (counters are kept in memory meanwhile). 0: 2 s.
	RetryRedisAfter time.Duration
	// Record writes an alert to the audit trail (AuditWriter.Record).
	// Required.
	Record func(models.AuditEvent) error
	Logger *slog.Logger
	// Registerer, when set, receives the detector's metrics.
	Registerer prometheus.Registerer
	// WebhookKey is the HMAC-SHA256 key that signs alert webhooks; it or
	// WebhookKeys is required when AnomalyConfig.AlertWebhookURL is set (at
	// least 16 bytes).
	WebhookKey []byte
	// WebhookKeys, when set, is used instead of WebhookKey: a key that
	// rotates while the detector runs. Each alert is signed with its
	// current key at the time it is sent.
	WebhookKeys *models.KeyRing
	// Outbound sends the alert webhooks: the guarded client of every
	// server-side request (no redirects, TLS verified, the dialled address
	// checked, bounded time and size, a circuit breaker). A delivery
	// takes 5 s at most whatever its options say. Nil: a client made with
	// AlertWebhookOptions(AlertWebhookURL, nil), which admits public
	// addresses only.
	Outbound *outbound.Client
}

// AlertWebhookOptions are the outbound.Options of the alert webhook's
// client: the system roots, 443 and the port rawURL names (the operator
// chose it), the non-public ranges in allow (an internal receiver the
// operator lists in APP_ALERT_WEBHOOK_ALLOW), and a 5 s timeout. This
// client is the alert webhook's own: what it allows never applies to
// URLs that users register.
func AlertWebhookOptions(rawURL string, allow []netip.Prefix) outbound.Options {
	o := outbound.Options{AllowPrefixes: allow, Timeout: webhookTimeout, UserAgent: "rampart-anomaly-alert/1"}
	if u, err := url.Parse(rawURL); err == nil {
		if p, err := strconv.Atoi(u.Port()); err == nil && p > 0 && p <= 65535 {
			o.Ports = []int{p}
		}
	}
	return o
}

// webhookTimeout bounds one delivery of an alert webhook.
const webhookTimeout = 5 * time.Second

// AnomalyDetector watches the audit event stream for the patterns of
// AnomalyConfig. Observe hands it events (AuditWriterConfig.Observe); a
// goroutine of its own analyses them, so the caller pays for a channel
// send. Each alert is raised at most once per subject and window, and is
// an audit event (models.ActionAnomaly), a WARN log line, a count in
// rampart_anomalies_total{rule} and, when configured, a signed webhook.
type AnomalyDetector struct {
	cfg     AnomalyConfig
	redis   redis.UniversalClient
	prefix  string
	retry   time.Duration
	record  func(models.AuditEvent) error
	log     *slog.Logger
	db      *models.DB
	geo     *geoIP
	webhook *alertWebhook

	queue  chan anomalyItem
	mu     sync.RWMutex // held for reading by Observe and Flush, for writing by Close
	closed bool
	done   chan struct{}

	// State of the detector's goroutine (nothing else touches it).
	distinct  *lru.Cache[string, *distinctWindow]
	spikes    *lru.Cache[string, *spikeCounts]
	quiet     *lru.Cache[string, time.Time] // rule and subject -> no alert before
	downUntil time.Time
	down      bool

	anomalies     *prometheus.CounterVec
	storeErrs     prometheus.Counter
	alertFailures *prometheus.CounterVec
	unanalysed    prometheus.Counter
	queueDepth    prometheus.GaugeFunc
}

// anomalyItem is an event, or a flush marker (flushed != nil).
type anomalyItem struct {
	event   models.AuditEvent
	flushed chan struct{}
}

// anomalyBatch is how many queued events are analysed together (one
// Redis round trip), and anomalyGather how long the detector waits for a
// batch to fill after its first event: under load, analysing each event
// as it came made a Redis round trip of a few events each, and woke the
// detector for each.
const (
	anomalyBatch  = 256
	anomalyGather = 20 * time.Millisecond
)

// NewAnomalyDetector checks cfg and deps, opens the GeoIP database if one
// is configured, and starts the detector. Close stops it.
func NewAnomalyDetector(cfg AnomalyConfig, deps AnomalyDeps) (*AnomalyDetector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Record == nil {
		return nil, errors.New("anomaly detector: Record is required (alerts go to the audit trail)")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.MaxSubjects <= 0 {
		cfg.MaxSubjects = 10_000
	}
	if deps.KeyPrefix == "" {
		deps.KeyPrefix = "rampart:"
	}
	if deps.RetryRedisAfter <= 0 {
		deps.RetryRedisAfter = 2 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	d := &AnomalyDetector{
		cfg: cfg, redis: deps.Redis, prefix: deps.KeyPrefix, retry: deps.RetryRedisAfter,
		record: deps.Record, log: deps.Logger, db: deps.DB,
		queue: make(chan anomalyItem, cfg.QueueSize), done: make(chan struct{}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_anomalies_total",
			Help: "Anomaly alerts raised, by rule."}, []string{"rule"}),
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_anomaly_store_errors_total",
			Help: "Batches of events whose anomaly counters were kept in this instance's memory because Redis failed or was skipped after a failure."}),
		alertFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_anomaly_alert_failures_total",
			Help: "Anomaly alerts that did not reach a channel: the audit trail, or the webhook (failed or dropped)."}, []string{"channel"}),
		unanalysed: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_anomaly_events_unanalysed_total",
			Help: "Events handed to the anomaly detector after it was closed (not analysed)."}),
	}
	d.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_anomaly_queue_depth",
		Help: "Events waiting to be analysed by the anomaly detector."}, func() float64 { return float64(d.QueueDepth()) })
	for _, r := range anomalyRules {
		d.anomalies.WithLabelValues(r)
	}
	for _, ch := range []string{"audit", "webhook"} {
		d.alertFailures.WithLabelValues(ch)
	}
	var err error
	if d.distinct, err = lru.New[string, *distinctWindow](3 * cfg.MaxSubjects); err != nil {
		return nil, err
	}
	if d.spikes, err = lru.New[string, *spikeCounts](cfg.MaxSubjects); err != nil {
		return nil, err
	}
	if d.quiet, err = lru.New[string, time.Time](4 * cfg.MaxSubjects); err != nil {
		return nil, err
	}
	webhookKey := func() []byte { return deps.WebhookKey }
	if deps.WebhookKeys != nil {
		webhookKey = func() []byte { return deps.WebhookKeys.Current().RevealBytes() }
	}
	if cfg.AlertWebhookURL != "" && len(webhookKey()) < 16 {
		return nil, errors.New("anomaly detector: the alert webhook needs a key of at least 16 bytes")
	}
	client := deps.Outbound
	if cfg.AlertWebhookURL != "" {
		if client == nil {
			if client, err = outbound.New(AlertWebhookOptions(cfg.AlertWebhookURL, nil)); err != nil {
				return nil, err
			}
		}
		// The destination is checked now, by the client that will call
		// it, rather than failing at every alert.
		if _, err := client.ValidateURL(cfg.AlertWebhookURL); err != nil {
			return nil, errors.New("anomaly detector: alert webhook URL is refused: " + err.Error())
		}
	}
	if cfg.GeoIPDB != "" {
		if deps.DB == nil {
			return nil, errors.New("anomaly detector: the new-country rule needs the database")
		}
		if d.geo, err = openGeoIP(cfg.GeoIPDB, cfg.GeoIPCheckEvery, d.log); err != nil {
			return nil, err
		}
	}
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{d.anomalies, d.storeErrs, d.alertFailures, d.unanalysed, d.queueDepth} {
			if err := deps.Registerer.Register(c); err != nil {
				d.geo.close()
				return nil, err
			}
		}
	}
	if cfg.AlertWebhookURL != "" {
		if deps.WebhookKeys == nil {
			// A copy: the caller's slice may change under us.
			key := append([]byte(nil), deps.WebhookKey...)
			webhookKey = func() []byte { return key }
		}
		d.webhook = newAlertWebhook(cfg.AlertWebhookURL, webhookKey, client, d)
		go d.webhook.run()
	}
	go d.run()
	return d, nil
}

// validate checks that every rule that is on has a usable window.
func (c AnomalyConfig) validate() error {
	var problems []string
	check := func(on bool, ok bool, msg string) {
		if on && !ok {
			problems = append(problems, msg)
		}
	}
	check(c.ScrapeObjects > 0, c.ScrapeWindow > 0, "scraping needs a window")
	check(c.KeySpikeFactor > 0, c.KeySpikeFactor >= 1 && c.KeySpikeBucket > 0 && c.KeySpikeBaseline >= 1 && c.KeySpikeBaseline <= 1000 && c.KeySpikeMin >= 1,
		"the API-key spike rule needs a factor of at least 1, a bucket, 1 to 1000 baseline buckets and a minimum of at least 1")
	check(c.BOLADenials > 0, c.BOLAWindow > 0, "BOLA probing needs a window")
	check(c.StuffingAccounts > 0, c.StuffingWindow > 0, "credential stuffing needs a window")
	if c.ScrapeObjects < 0 || c.KeySpikeFactor < 0 || c.BOLADenials < 0 || c.StuffingAccounts < 0 {
		problems = append(problems, "thresholds must not be negative (0 turns a rule off)")
	}
	if c.AlertWebhookURL != "" {
		if err := CheckAlertWebhookURL(c.AlertWebhookURL); err != nil {
			problems = append(problems, "alert webhook URL "+err.Error())
		}
	}
	if len(problems) > 0 {
		return errors.New("anomaly detector: " + strings.Join(problems, "; "))
	}
	return nil
}

// CheckAlertWebhookURL accepts an absolute https:// URL with a host and
// without user information (credentials belong in the signing key). The
// error says what is wrong and never repeats the URL, whose path may hold
// a token. Where it leads (a public address, or one the operator allows)
// is checked by the client that sends the alerts (AlertWebhookOptions).
func CheckAlertWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https":
		return errors.New("must be an https:// URL: alerts are not sent in clear")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not hold user information; the HMAC key (secret alert_webhook_key) authenticates the alerts")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	}
	return nil
}

// Enabled lists the rules that are on.
func (d *AnomalyDetector) Enabled() []string {
	var on []string
	if d.cfg.ScrapeObjects > 0 {
		on = append(on, RuleScraping)
	}
	if d.cfg.KeySpikeFactor > 0 {
		on = append(on, RuleKeySpike)
	}
	if d.cfg.BOLADenials > 0 {
		on = append(on, RuleBOLAProbing)
	}
	if d.geo != nil {
		on = append(on, RuleNewCountry)
	}
	if d.cfg.StuffingAccounts > 0 {
		on = append(on, RuleCredentialStuffing)
	}
	return on
}

// Shared reports whether the counters are kept in Redis.
func (d *AnomalyDetector) Shared() bool { return d.redis != nil }

// Observe hands e to the detector. Only the events a rule looks at are
// queued; when the queue is full Observe waits (backpressure, never a
// silent drop). After Close, events are counted as unanalysed and logged.
// A nil detector ignores every event, so that a writer may be wired to one
// before it exists.
//
// Alerts (models.ActionAnomaly) are never queued: the detector records
// them through the same audit writer that calls Observe, and must not wait
// for its own queue.
func (d *AnomalyDetector) Observe(e models.AuditEvent) {
	if d == nil || !d.wants(&e) {
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.unanalysed.Inc()
		d.log.Warn("anomaly detector: an event arrived after it was closed and is not analysed",
			"action", e.Action, "event_id", e.ID)
		return
	}
	d.queue <- anomalyItem{event: e}
}

// wants reports whether any rule that is on looks at e.
func (d *AnomalyDetector) wants(e *models.AuditEvent) bool {
	if e.Action == models.ActionAnomaly {
		return false
	}
	if d.cfg.KeySpikeFactor > 0 && keyRequest(e) {
		return true
	}
	switch e.Action {
	case models.ActionAuthzAllow, models.ActionAuthzAdmin:
		return d.cfg.ScrapeObjects > 0 && e.ResourceID != "" && readRoute(e.Route)
	case models.ActionAuthzFail:
		return d.cfg.BOLADenials > 0 && e.ResourceID != ""
	case models.ActionLoginFail:
		return d.cfg.StuffingAccounts > 0 && e.ClientIP != "" && e.ResourceID != ""
	case models.ActionLoginSuccess:
		return d.geo != nil && e.UserID != "" && e.ClientIP != ""
	}
	return false
}

// keyRequest reports whether e is a request of an API key. Each request
// makes one authorization event (allowed, refused, rate-limited, ...), and
// an API key can do nothing that records a second one, so the key's
// events count its requests.
func keyRequest(e *models.AuditEvent) bool {
	return e.ActorType == models.ActorAPIKey && e.ActorID != "" && e.Action != models.ActionAnomaly
}

// QueueDepth is how many events wait to be analysed (also the gauge
// rampart_anomaly_queue_depth).
func (d *AnomalyDetector) QueueDepth() int { return len(d.queue) }

// Flush waits until every event observed before it has been analysed and
// its alerts recorded, or ctx ends. Webhooks may still be on their way.
func (d *AnomalyDetector) Flush(ctx context.Context) error {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return nil
	}
	ch := make(chan struct{})
	select {
	case d.queue <- anomalyItem{flushed: ch}:
	case <-ctx.Done():
		d.mu.RUnlock()
		return ctx.Err()
	}
	d.mu.RUnlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking events, analyses everything queued, delivers the
// pending webhooks and closes the GeoIP database. If ctx ends first it
// returns ctx's error and stops the webhook deliveries.
//
// Close the detector after the servers have stopped (no more events) and
// before the audit writer (its alerts are recorded there).
func (d *AnomalyDetector) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	select {
	case <-d.done:
	case <-ctx.Done():
		if d.webhook != nil {
			d.webhook.cancel()
		}
		return ctx.Err()
	}
	if d.webhook == nil {
		return nil
	}
	select {
	case <-d.webhook.done:
		return nil
	case <-ctx.Done():
		d.webhook.cancel()
		return ctx.Err()
	}
}

func (d *AnomalyDetector) run() {
	defer func() {
		d.geo.close()
		if d.webhook != nil {
			close(d.webhook.queue)
		}
		close(d.done)
	}()
	batch := make([]models.AuditEvent, 0, anomalyBatch)
	var waiting []chan struct{}
	gather := time.NewTimer(anomalyGather)
	gather.Stop()
	for {
		item, ok := <-d.queue
		if !ok {
			return
		}
		batch, waiting = batch[:0], waiting[:0]
		take := func(item anomalyItem) {
			if item.flushed != nil {
				waiting = append(waiting, item.flushed)
			} else {
				batch = append(batch, item.event)
			}
		}
		// drain takes what is queued, without waiting, until the batch
		// is full or a flush waits for it.
		closed := false
		drain := func() {
			for len(batch) < anomalyBatch && len(waiting) == 0 {
				select {
				case item, ok := <-d.queue:
					if !ok {
						closed = true
						return
					}
					take(item)
				default:
					return
				}
			}
		}
		take(item)
		drain()
		// Then, unless that filled a batch, it sleeps anomalyGather and
		// takes what came meanwhile (waiting on the queue instead would
		// wake the detector for each event under load).
		if len(batch) < anomalyBatch && len(waiting) == 0 && !closed {
			gather.Reset(anomalyGather)
			<-gather.C
			drain()
		}
		d.analyse(batch)
		for _, ch := range waiting {
			close(ch)
		}
		if closed {
			return
		}
	}
}

// anomalyCheck is one event's contribution to one rule's counter, and
// what the store answered.
type anomalyCheck struct {
	rule    string
	subject string // "user:ID", "apikey:ID", "service:NAME", "ip:ADDRESS"
	event   *models.AuditEvent
	member  string        // distinct rules: the hashed object, account or id
	fireAt  int64         // distinct rules: the count that raises the alert
	window  time.Duration // distinct rules: the window; key spike: the bucket
	bucket  int64         // key spike: the bucket's index since the epoch

	n     int64   // the count after this event
	fired bool    // this event raises the alert
	mean  float64 // key spike: the baseline
}

// analyse runs the rules over one batch of events. A distinct rule's
// check of a member its subject already has in this batch is dropped: it
// cannot change the count (the same object read again, the same account
// tried again), and it would cost a script run in Redis.
func (d *AnomalyDetector) analyse(batch []models.AuditEvent) {
	var checks []*anomalyCheck
	for i := range batch {
		checks = d.checksFor(&batch[i], checks)
	}
	seen := make(map[[3]string]bool, len(checks))
	kept := checks[:0]
	for _, c := range checks {
		if c.rule != RuleKeySpike {
			k := [3]string{c.rule, c.subject, c.member}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		kept = append(kept, c)
	}
	checks = kept
	if len(checks) > 0 {
		d.count(checks)
		for _, c := range checks {
			if c.fired {
				d.fire(c.rule, c.subject, d.detail(c), c.event)
			}
		}
	}
	if d.geo != nil {
		for i := range batch {
			if batch[i].Action == models.ActionLoginSuccess {
				d.checkCountry(&batch[i])
			}
		}
	}
}

// checksFor appends the counter updates e makes.
func (d *AnomalyDetector) checksFor(e *models.AuditEvent, checks []*anomalyCheck) []*anomalyCheck {
	add := func(c *anomalyCheck) {
		c.event = e
		if until, ok := d.quiet.Get(c.rule + "\x00" + c.subject); ok && e.At.Before(until) {
			return // alerted in this window already; no need to count
		}
		checks = append(checks, c)
	}
	if d.cfg.KeySpikeFactor > 0 && keyRequest(e) {
		bucket := e.At.UnixNano() / int64(d.cfg.KeySpikeBucket)
		add(&anomalyCheck{rule: RuleKeySpike, subject: "apikey:" + e.ActorID, window: d.cfg.KeySpikeBucket, bucket: bucket})
	}
	switch e.Action {
	case models.ActionAuthzAllow, models.ActionAuthzAdmin:
		if d.cfg.ScrapeObjects > 0 && e.ResourceID != "" && readRoute(e.Route) {
			if subject := principalOf(e); subject != "" {
				add(&anomalyCheck{rule: RuleScraping, subject: subject, member: memberHash(e.ResourceType, e.ResourceID),
					fireAt: int64(d.cfg.ScrapeObjects) + 1, window: d.cfg.ScrapeWindow})
			}
		}
	case models.ActionAuthzFail:
		if d.cfg.BOLADenials > 0 && e.ResourceID != "" {
			if subject := principalOf(e); subject != "" {
				add(&anomalyCheck{rule: RuleBOLAProbing, subject: subject, member: memberHash(e.ResourceType, e.ResourceID),
					fireAt: int64(d.cfg.BOLADenials), window: d.cfg.BOLAWindow})
			}
		}
	case models.ActionLoginFail:
		if d.cfg.StuffingAccounts > 0 && e.ClientIP != "" && e.ResourceID != "" {
			add(&anomalyCheck{rule: RuleCredentialStuffing, subject: "ip:" + addressSubject(e.ClientIP),
				member: memberHash("account", e.ResourceID), fireAt: int64(d.cfg.StuffingAccounts), window: d.cfg.StuffingWindow})
		}
	}
	return checks
}

// readRoute reports whether route ("GET /v1/projects/:id") reads.
func readRoute(route string) bool {
	return strings.HasPrefix(route, "GET ") || strings.HasPrefix(route, "HEAD ")
}

// principalOf names who acted: the actor, or for an anonymous caller its
// address.
func principalOf(e *models.AuditEvent) string {
	if e.ActorID != "" && e.ActorType != models.ActorAnonymous {
		return e.ActorType + ":" + e.ActorID
	}
	if e.ClientIP != "" {
		return "ip:" + addressSubject(e.ClientIP)
	}
	return ""
}

// addressSubject is the unit one client controls: an IPv4 address, or the
// /64 of an IPv6 address (one host can use every address of its /64, and
// must not escape a count by rotating them).
func addressSubject(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// memberHash is what a distinct counter stores for an object: 16 bytes of
// SHA-256, so that memory per member is fixed and Redis holds no ids.
func memberHash(kind, id string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + id))
	return string(h[:16])
}

// count updates the counters of checks, in Redis when it is configured
// and up, else (or when it fails) in memory.
func (d *AnomalyDetector) count(checks []*anomalyCheck) {
	if d.redis != nil {
		if time.Now().Before(d.downUntil) {
			d.storeErrs.Inc()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := d.countRedis(ctx, checks)
			cancel()
			if err == nil {
				if d.down {
					d.down = false
					d.log.Info("anomaly store (Redis) answers again; anomaly counters are shared across instances again")
				}
				return
			}
			d.storeErrs.Inc()
			d.downUntil = time.Now().Add(d.retry)
			if !d.down {
				d.down = true
				d.log.Error("anomaly store (Redis) failed; anomaly counters are kept in this instance's memory until it answers",
					"error", err.Error(), "retry_every", d.retry.String())
			}
		}
	}
	for _, c := range checks {
		if c.rule == RuleKeySpike {
			d.countSpikeMemory(c)
		} else {
			d.countDistinctMemory(c)
		}
	}
}

// distinctScript adds a member to a subject's set (KEYS[1]) until it holds
// ARGV[3] members, starts the window (ARGV[2] ms) at the first member, and
// when the set is full sets the alert key (KEYS[2]) for one window unless
// it is set already. It returns the count and 1 if this call raised the
// alert. The set never grows beyond the threshold: memory is bounded.
var distinctScript = redis.NewScript(`
local n = redis.call('SCARD', KEYS[1])
local full = tonumber(ARGV[3])
if n < full then
  redis.call('SADD', KEYS[1], ARGV[1])
  n = redis.call('SCARD', KEYS[1])
end
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n >= full and redis.call('SET', KEYS[2], '1', 'PX', ARGV[2], 'NX') then
  return {n, 1}
end
return {n, 0}
`)

// spikeScript counts one request in the current bucket (KEYS[1], kept for
// ARGV[1] ms); when the count reaches ARGV[2], it compares it with ARGV[3]
// times the mean of the previous buckets (KEYS[3...]) and, above it, sets
// the bucket's alert key (KEYS[2], ARGV[4] ms) unless it is set already.
// It returns the count, 1 if this call raised the alert, and the mean.
var spikeScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
if n < tonumber(ARGV[2]) then
  return {n, 0, '0'}
end
local sum = 0
for i = 3, #KEYS do
  sum = sum + (tonumber(redis.call('GET', KEYS[i])) or 0)
end
local mean = sum / (#KEYS - 2)
if n <= tonumber(ARGV[3]) * mean then
  return {n, 0, tostring(mean)}
end
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[4], 'NX') then
  return {n, 1, tostring(mean)}
end
return {n, 0, tostring(mean)}
`)

// redisKey names a key of the rule and subject. The braces make the
// subject a hash tag: every key of one script lands on one Redis Cluster
// slot.
func (d *AnomalyDetector) redisKey(rule, subject, suffix string) string {
	return d.prefix + "anomaly:{" + rule + ":" + subject + "}:" + suffix
}

// countRedis runs the checks' scripts in one pipeline.
func (d *AnomalyDetector) countRedis(ctx context.Context, checks []*anomalyCheck) error {
	pipe := d.redis.Pipeline()
	cmds := make([]*redis.Cmd, len(checks))
	for i, c := range checks {
		if c.rule == RuleKeySpike {
			m := d.cfg.KeySpikeBaseline
			keys := make([]string, 0, m+2)
			keys = append(keys, d.redisKey(c.rule, c.subject, strconv.FormatInt(c.bucket, 10)),
				d.redisKey(c.rule, c.subject, "alert:"+strconv.FormatInt(c.bucket, 10)))
			for b := c.bucket - int64(m); b < c.bucket; b++ {
				keys = append(keys, d.redisKey(c.rule, c.subject, strconv.FormatInt(b, 10)))
			}
			keep := time.Duration(m+2) * d.cfg.KeySpikeBucket
			cmds[i] = spikeScript.Eval(ctx, pipe, keys, keep.Milliseconds(), d.cfg.KeySpikeMin,
				strconv.FormatFloat(d.cfg.KeySpikeFactor, 'f', -1, 64), d.cfg.KeySpikeBucket.Milliseconds())
			continue
		}
		cmds[i] = distinctScript.Eval(ctx, pipe, []string{d.redisKey(c.rule, c.subject, "set"), d.redisKey(c.rule, c.subject, "alert")},
			c.member, max(c.window.Milliseconds(), 1), c.fireAt)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, c := range checks {
		res, err := cmds[i].Slice()
		if err != nil {
			return err
		}
		if len(res) < 2 {
			return errors.New("anomaly script: unexpected answer")
		}
		n, _ := res[0].(int64)
		fired, _ := res[1].(int64)
		c.n, c.fired = n, fired == 1
		if len(res) == 3 {
			if s, ok := res[2].(string); ok {
				c.mean, _ = strconv.ParseFloat(s, 64)
			}
		}
		if c.fired {
			d.quiet.Add(c.rule+"\x00"+c.subject, d.quietUntil(c))
		}
	}
	return nil
}

// quietUntil is when a subject that just alerted may alert again.
func (d *AnomalyDetector) quietUntil(c *anomalyCheck) time.Time {
	if c.rule == RuleKeySpike {
		return time.Unix(0, (c.bucket+1)*int64(d.cfg.KeySpikeBucket))
	}
	return c.event.At.Add(c.window)
}

// distinctWindow is a distinct counter in memory.
type distinctWindow struct {
	until      time.Time // the window ends
	members    map[string]struct{}
	alertUntil time.Time // no new alert before
}

// countDistinctMemory is distinctScript in this process's memory, on the
// events' clock.
func (d *AnomalyDetector) countDistinctMemory(c *anomalyCheck) {
	key := c.rule + "\x00" + c.subject
	t := c.event.At
	w, ok := d.distinct.Get(key)
	if !ok {
		w = &distinctWindow{}
		d.distinct.Add(key, w)
	}
	if !t.Before(w.until) {
		w.until, w.members = t.Add(c.window), map[string]struct{}{}
	}
	if int64(len(w.members)) < c.fireAt {
		w.members[c.member] = struct{}{}
	}
	c.n = int64(len(w.members))
	if c.n >= c.fireAt && !t.Before(w.alertUntil) {
		w.alertUntil = t.Add(c.window)
		c.fired = true
		d.quiet.Add(key, w.alertUntil)
	}
}

// spikeCounts are one API key's recent buckets in memory.
type spikeCounts struct {
	counts  map[int64]int64 // bucket index -> requests
	alerted int64           // the bucket that alerted last, +1 (0: none)
}

// countSpikeMemory is spikeScript in this process's memory.
func (d *AnomalyDetector) countSpikeMemory(c *anomalyCheck) {
	key := c.rule + "\x00" + c.subject
	s, ok := d.spikes.Get(key)
	if !ok {
		s = &spikeCounts{counts: map[int64]int64{}}
		d.spikes.Add(key, s)
	}
	m := int64(d.cfg.KeySpikeBaseline)
	for b := range s.counts {
		if b < c.bucket-m {
			delete(s.counts, b)
		}
	}
	s.counts[c.bucket]++
	c.n = s.counts[c.bucket]
	if c.n < int64(d.cfg.KeySpikeMin) {
		return
	}
	var sum int64
	for b := c.bucket - m; b < c.bucket; b++ {
		sum += s.counts[b]
	}
	c.mean = float64(sum) / float64(m)
	if float64(c.n) > d.cfg.KeySpikeFactor*c.mean && s.alerted != c.bucket+1 {
		s.alerted = c.bucket + 1
		c.fired = true
		d.quiet.Add(key, d.quietUntil(c))
	}
}

// detail describes what a check found, for the alert.
func (d *AnomalyDetector) detail(c *anomalyCheck) string {
	switch c.rule {
	case RuleScraping:
		return fmt.Sprintf("%d distinct objects in %s", c.n, c.window)
	case RuleKeySpike:
		return fmt.Sprintf("%d requests in a bucket of %s, more than %s× the mean of %.1f over the previous %d buckets",
			c.n, c.window, strconv.FormatFloat(d.cfg.KeySpikeFactor, 'f', -1, 64), c.mean, d.cfg.KeySpikeBaseline)
	case RuleBOLAProbing:
		return fmt.Sprintf("%d distinct object ids refused (404/403) in %s", c.n, c.window)
	case RuleCredentialStuffing:
		return fmt.Sprintf("failed logins for %d distinct accounts from %s in %s", c.n, strings.TrimPrefix(c.subject, "ip:"), c.window)
	}
	return ""
}

// checkCountry runs the new-country rule on a successful login.
func (d *AnomalyDetector) checkCountry(e *models.AuditEvent) {
	if e.UserID == "" || e.ClientIP == "" {
		return
	}
	country, err := d.geo.country(e.ClientIP)
	if err != nil {
		d.log.Error("anomaly detector: GeoIP lookup failed", "error", err.Error())
		return
	}
	if country == "" {
		return // a private, reserved or unknown address
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	isNew, hadOthers, err := d.db.SeenCountry(ctx, e.UserID, country, e.At)
	if err != nil {
		if models.KindOf(err) != models.KindNotFound { // not found: the account is gone
			d.log.Error("anomaly detector: recording a login country failed", "error", err.Error())
		}
		return
	}
	if isNew && hadOthers {
		d.fire(RuleNewCountry, "user:"+e.UserID,
			fmt.Sprintf("login from %s, a country this account has not logged in from before", country), e)
	}
}

// fire raises one alert on every channel.
func (d *AnomalyDetector) fire(rule, subject, detail string, from *models.AuditEvent) {
	id, err := models.NewID()
	if err != nil {
		d.log.Error("anomaly detector: no event id", "error", err.Error())
		return
	}
	now := time.Now().UTC()
	alert := models.AuditEvent{
		ID: id, At: now,
		ActorType: from.ActorType, ActorID: from.ActorID, UserID: from.UserID, ClientIP: from.ClientIP,
		UserAgent: from.UserAgent, RequestID: from.RequestID, Route: from.Route,
		Action: models.ActionAnomaly, Outcome: models.OutcomeDeny, Reason: rule + ": " + detail,
	}
	if rule == RuleCredentialStuffing {
		// The subject is the address, not the account the last attempt named.
		alert.ActorType, alert.ActorID, alert.UserID = models.ActorAnonymous, "", ""
	}
	d.anomalies.WithLabelValues(rule).Inc()
	d.log.Warn("anomaly detected", "rule", rule, "subject", subject, "detail", detail, "event_id", id,
		"actor_type", alert.ActorType, "actor_id", alert.ActorID, "user_id", alert.UserID,
		"client_ip", alert.ClientIP, "request_id", alert.RequestID)
	if err := d.record(alert); err != nil {
		d.alertFailures.WithLabelValues("audit").Inc()
		d.log.Error("anomaly detector: the alert could not be written to the audit trail", "rule", rule, "event_id", id, "error", err.Error())
	}
	if d.webhook != nil {
		d.webhook.send(alertMessage{Rule: rule, Subject: subject, Detail: detail, At: now, EventID: id})
	}
}

// alertMessage is the JSON body of an alert webhook.
type alertMessage struct {
	Rule    string    `json:"rule"`
	Subject string    `json:"subject"`
	Detail  string    `json:"detail"`
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
}

// alertWebhook delivers alerts from a goroutine of its own, so that a slow
// receiver never holds up the analysis (and through it, the requests).
type alertWebhook struct {
	url    string
	key    func() []byte // the signing key at the time of sending
	client *outbound.Client
	d      *AnomalyDetector
	queue  chan alertMessage
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
}

// webhookQueue bounds the alerts waiting for delivery. Beyond it an alert
// is dropped from the webhook only (it is in the audit trail, the log and
// the metric already), and that is counted and logged.
const webhookQueue = 256

func newAlertWebhook(u string, key func() []byte, client *outbound.Client, d *AnomalyDetector) *alertWebhook {
	ctx, cancel := context.WithCancel(context.Background())
	return &alertWebhook{url: u, key: key, client: client, d: d,
		queue: make(chan alertMessage, webhookQueue), done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

func (w *alertWebhook) send(m alertMessage) {
	select {
	case w.queue <- m:
	default:
		w.d.alertFailures.WithLabelValues("webhook").Inc()
		w.d.log.Error("anomaly detector: too many alerts waiting for the webhook; this one is not sent (it is in the audit trail)",
			"rule", m.Rule, "event_id", m.EventID)
	}
}

func (w *alertWebhook) run() {
	defer close(w.done)
	for m := range w.queue {
		if err := w.deliver(m); err != nil {
			w.d.alertFailures.WithLabelValues("webhook").Inc()
			w.d.log.Error("anomaly detector: the alert webhook failed", "rule", m.Rule, "event_id", m.EventID, "error", err.Error())
		}
	}
}

// deliver posts m, trying three times at most (1 s, then 2 s apart) when
// the receiver cannot be reached or answers 5xx.
func (w *alertWebhook) deliver(m alertMessage) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * time.Second):
			case <-w.ctx.Done():
				return last
			}
		}
		retry, err := w.post(body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			return err
		}
	}
	return last
}

// post sends body once, signed, through the outbound client: the
// receiver's answer is reduced to its status (the body is read through a
// limit and discarded; redirects are not followed). It reports whether a
// failure is worth another try.
func (w *alertWebhook) post(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, webhookTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Rampart-Signature", models.SignWebhook(w.key(), time.Now(), body))
	r := w.client.Post(ctx, w.url, h, body)
	switch r.Class {
	case "":
		return false, nil
	case outbound.ClassConnect, outbound.ClassTimeout, outbound.ClassDNS:
		return w.ctx.Err() == nil, fmt.Errorf("alert webhook (%s): %w", r.Class, r.Err)
	case outbound.ClassStatus:
		return r.StatusCode >= 500 && w.ctx.Err() == nil, fmt.Errorf("alert webhook: the receiver answered %d", r.StatusCode)
	}
	return false, fmt.Errorf("alert webhook (%s): %w", r.Class, r.Err)
}

// geoIP is a MaxMind-format database, opened again when its file changes.
// Only the detector's goroutine uses it.
type geoIP struct {
	path    string
	r       *maxminddb.Reader
	mod     time.Time
	size    int64
	checked time.Time
	every   time.Duration
	log     *slog.Logger
}

func openGeoIP(path string, every time.Duration, log *slog.Logger) (*geoIP, error) {
	if every <= 0 {
		every = time.Minute
	}
	g := &geoIP{path: path, every: every, log: log}
	if err := g.open(); err != nil {
		return nil, err
	}
	return g, nil
}

// open reads the file and, if it is a usable database, replaces the
// reader in use.
func (g *geoIP) open() error {
	fi, err := os.Stat(g.path)
	if err != nil {
		return fmt.Errorf("GeoIP database %s: %w", g.path, err)
	}
	r, err := maxminddb.Open(g.path)
	if err != nil {
		return fmt.Errorf("GeoIP database %s is not a MaxMind DB file: %w", g.path, err)
	}
	if g.r != nil {
		_ = g.r.Close()
	}
	g.r, g.mod, g.size, g.checked = r, fi.ModTime(), fi.Size(), time.Now()
	return nil
}

// reloadIfChanged opens the file again when it changed on disk (checked
// at most every g.every). A file that cannot be read keeps the old one.
func (g *geoIP) reloadIfChanged() {
	if time.Since(g.checked) < g.every {
		return
	}
	g.checked = time.Now()
	fi, err := os.Stat(g.path)
	if err != nil || (fi.ModTime().Equal(g.mod) && fi.Size() == g.size) {
		return
	}
	if err := g.open(); err != nil {
		g.log.Error("anomaly detector: the changed GeoIP database cannot be read; the previous one stays in use", "error", err.Error())
		return
	}
	g.log.Info("anomaly detector: GeoIP database reloaded", "path", g.path)
}

// country returns the ISO 3166-1 alpha-2 code of ip's country (or, where
// the database has none, of its registered country), "" when unknown.
func (g *geoIP) country(ip string) (string, error) {
	g.reloadIfChanged()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", nil
	}
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		RegisteredCountry struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"registered_country"`
	}
	res := g.r.Lookup(a.Unmap().WithZone(""))
	if !res.Found() {
		return "", res.Err()
	}
	if err := res.Decode(&rec); err != nil {
		return "", err
	}
	code := rec.Country.ISOCode
	if code == "" {
		code = rec.RegisteredCountry.ISOCode
	}
	if len(code) != 2 || strings.ToUpper(code) != code || !isLetters(code) {
		return "", nil
	}
	return code, nil
}

func isLetters(s string) bool {
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// close closes the database; a nil geoIP does nothing.
func (g *geoIP) close() {
	if g != nil && g.r != nil {
		_ = g.r.Close()
		g.r = nil
	}
}

package middleware_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/middleware/redistest"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
	"github.com/rampart-go/rampart/models/outbound"
	"github.com/redis/go-redis/v9"
	"sync/atomic"
)

// alertSink is the Record of a detector under test: it keeps the alerts.
type alertSink struct {
	mu     sync.Mutex
	alerts []models.AuditEvent
}

func (s *alertSink) record(e models.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, e)
	return nil
}

func (s *alertSink) all() []models.AuditEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.alerts)
}

// anomalyRig is a detector under test with what it reports to.
type anomalyRig struct {
	d    *middleware.AnomalyDetector
	sink *alertSink
	reg  *prometheus.Registry
	log  *logRecorder
}

// onlyRules returns DefaultAnomalyConfig with every rule off but the one
// under test, so that a test sees only its own rule's alerts.
func onlyRules(set func(*middleware.AnomalyConfig)) middleware.AnomalyConfig {
	cfg := middleware.AnomalyConfig{}
	set(&cfg)
	return cfg
}

// newAnomalyRig starts a detector with cfg and deps (Record, Logger and
// Registerer are filled in), closed when the test ends.
func newAnomalyRig(tb testing.TB, cfg middleware.AnomalyConfig, deps middleware.AnomalyDeps) *anomalyRig {
	tb.Helper()
	r := &anomalyRig{sink: &alertSink{}, reg: prometheus.NewRegistry(), log: &logRecorder{}}
	deps.Record = r.sink.record
	deps.Logger = slog.New(r.log)
	deps.Registerer = r.reg
	d, err := middleware.NewAnomalyDetector(cfg, deps)
	if err != nil {
		tb.Fatalf("NewAnomalyDetector: %v", err)
	}
	r.d = d
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return r
}

// feed hands events to the detector and waits until they are analysed.
func (r *anomalyRig) feed(tb testing.TB, events ...models.AuditEvent) {
	tb.Helper()
	for _, e := range events {
		r.d.Observe(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.d.Flush(ctx); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

// expectAlerts checks the alerts so far: how many, and that each is a
// well-formed anomaly event of rule.
func (r *anomalyRig) expectAlerts(tb testing.TB, rule string, n int) []models.AuditEvent {
	tb.Helper()
	alerts := r.sink.all()
	if len(alerts) != n {
		tb.Fatalf("%d alerts, want %d: %+v", len(alerts), n, alerts)
	}
	for _, a := range alerts {
		if a.Action != models.ActionAnomaly || a.Outcome != models.OutcomeDeny || !strings.HasPrefix(a.Reason, rule+": ") || a.ID == "" {
			tb.Errorf("alert %+v is not a %s anomaly event", a, rule)
		}
	}
	if got := counter(tb, r.reg, "rampart_anomalies_total", "rule", rule); got != float64(n) {
		tb.Errorf("rampart_anomalies_total{rule=%q} = %v, want %d", rule, got, n)
	}
	if got := r.log.count(slog.LevelWarn); got != n {
		tb.Errorf("%d WARN lines, want %d: %q", got, n, r.log.messages())
	}
	return alerts
}

// The events the emitters produce (see the brief of issue 5).

func readEvent(actorType, actorID, resourceType, resourceID string, at time.Time) models.AuditEvent {
	route := "GET /v1/projects/:id"
	if resourceType == "task" {
		route = "GET /v1/projects/:id/tasks/:task_id"
	}
	if resourceID == "" {
		route = "GET /v1/projects"
	}
	userID := actorID
	if actorType == models.ActorAPIKey {
		userID = "owner-of-" + actorID
	}
	return models.AuditEvent{At: at, ActorType: actorType, ActorID: actorID, UserID: userID, ClientIP: "198.51.100.7",
		RequestID: "req-" + resourceID, Route: route, Action: models.ActionAuthzAllow,
		ResourceType: resourceType, ResourceID: resourceID, Outcome: models.OutcomeAllow}
}

func denyEvent(actorID, resourceID, reason string, at time.Time) models.AuditEvent {
	return models.AuditEvent{At: at, ActorType: models.ActorUser, ActorID: actorID, UserID: actorID, ClientIP: "198.51.100.8",
		Route: "GET /v1/projects/:id", Action: models.ActionAuthzFail, ResourceType: "project", ResourceID: resourceID,
		Outcome: models.OutcomeDeny, Reason: reason}
}

func loginFailEvent(ip, account string, at time.Time) models.AuditEvent {
	return models.AuditEvent{At: at, ActorType: models.ActorAnonymous, ClientIP: ip, UserID: "user-of-" + account,
		Route: "POST /v1/auth/login", Action: models.ActionLoginFail, ResourceType: "account", ResourceID: account,
		Outcome: models.OutcomeDeny, Reason: "bad_password"}
}

func loginOKEvent(userID, ip string, at time.Time) models.AuditEvent {
	return models.AuditEvent{At: at, ActorType: models.ActorUser, ActorID: userID, UserID: userID, ClientIP: ip,
		Route: "POST /v1/auth/login", Action: models.ActionLoginSuccess, ResourceType: "account", Outcome: models.OutcomeAllow}
}

// accountKey is what the login emitter puts in ResourceID.
func anomalyAccountKey(email string) string {
	h := sha256.Sum256([]byte(email))
	return hex.EncodeToString(h[:])
}

var anomalyT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestAnomalyScraping(t *testing.T) {
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.ScrapeObjects, c.ScrapeWindow = 50, time.Minute })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{})

	t.Run("normal traffic is quiet", func(t *testing.T) {
		var events []models.AuditEvent
		// A busy user re-reading the same 50 objects, lists, and writes.
		for round := range 10 {
			at := anomalyT0.Add(time.Duration(round) * time.Second)
			for i := range 50 {
				events = append(events, readEvent(models.ActorUser, "u-busy", "project", fmt.Sprint("p", i), at))
			}
			events = append(events, readEvent(models.ActorUser, "u-busy", "project", "", at))
			w := readEvent(models.ActorUser, "u-busy", "project", fmt.Sprint("new-", round), at)
			w.Route = "PATCH /v1/projects/:id"
			events = append(events, w)
		}
		// Projects and tasks with the same id are different objects; 25
		// of each are still not more than 50.
		for i := range 25 {
			events = append(events, readEvent(models.ActorUser, "u-mixed", "project", fmt.Sprint(i), anomalyT0),
				readEvent(models.ActorUser, "u-mixed", "task", fmt.Sprint(i), anomalyT0))
		}
		// 300 distinct objects, read slowly: 20 a minute.
		for i := range 300 {
			events = append(events, readEvent(models.ActorAPIKey, "k-sync", "task", fmt.Sprint("t", i), anomalyT0.Add(time.Duration(i)*3*time.Second)))
		}
		// Many principals reading 40 objects each.
		for p := range 20 {
			for i := range 40 {
				events = append(events, readEvent(models.ActorUser, fmt.Sprint("u", p), "project", fmt.Sprint("p", i), anomalyT0))
			}
		}
		r.feed(t, events...)
		r.expectAlerts(t, middleware.RuleScraping, 0)
	})

	t.Run("51 distinct objects in a minute alert once", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 200 {
			events = append(events, readEvent(models.ActorUser, "u-scraper", "project", fmt.Sprint("p", i), anomalyT0.Add(time.Duration(i)*100*time.Millisecond)))
		}
		r.feed(t, events...)
		alerts := r.expectAlerts(t, middleware.RuleScraping, 1)
		a := alerts[0]
		if a.Reason != "scraping: 51 distinct objects in 1m0s" {
			t.Errorf("Reason = %q", a.Reason)
		}
		if a.ActorType != models.ActorUser || a.ActorID != "u-scraper" || a.UserID != "u-scraper" || a.ClientIP != "198.51.100.7" {
			t.Errorf("the alert does not name the subject: %+v", a)
		}
		// The request that crossed the line is named, for the trail.
		if a.RequestID != "req-p50" {
			t.Errorf("RequestID = %q, want the 51st read's", a.RequestID)
		}
	})

	t.Run("a new window may alert again", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 60 {
			events = append(events, readEvent(models.ActorUser, "u-scraper", "project", fmt.Sprint("q", i), anomalyT0.Add(5*time.Minute)))
		}
		r.feed(t, events...)
		r.expectAlerts(t, middleware.RuleScraping, 2)
	})
}

func TestAnomalyKeySpike(t *testing.T) {
	cfg := onlyRules(func(c *middleware.AnomalyConfig) {
		c.KeySpikeFactor, c.KeySpikeBucket, c.KeySpikeBaseline, c.KeySpikeMin = 5, time.Minute, 10, 60
	})
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{})
	start := anomalyT0 // on a minute: buckets are aligned on the clock
	key := func(id string, bucket, i int) models.AuditEvent {
		e := readEvent(models.ActorAPIKey, id, "project", "", start.Add(time.Duration(bucket)*time.Minute+time.Duration(i)*time.Millisecond))
		return e
	}
	var history []models.AuditEvent
	for b := range 10 {
		for i := range 20 {
			history = append(history, key("k-steady", b, i))
		}
	}
	r.feed(t, history...)

	t.Run("normal traffic is quiet", func(t *testing.T) {
		var events []models.AuditEvent
		// Four times its baseline (80 < 5×20): busier, not a spike.
		for i := range 80 {
			events = append(events, key("k-steady", 10, i))
		}
		// A quiet key without history: 59 requests stay under the minimum.
		for i := range 59 {
			events = append(events, key("k-quiet", 10, i))
		}
		// Sessions are not API keys, however busy.
		for i := range 1000 {
			events = append(events, readEvent(models.ActorUser, "u-busy", "project", "", start.Add(10*time.Minute+time.Duration(i))))
		}
		r.feed(t, events...)
		r.expectAlerts(t, middleware.RuleKeySpike, 0)
	})

	t.Run("above five times the baseline alerts once a bucket", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 400 {
			events = append(events, key("k-steady", 11, i))
		}
		// Rate-limited requests of the key are its traffic too.
		rl := key("k-steady", 11, 401)
		rl.Action, rl.Outcome = models.ActionRateLimited, models.OutcomeDeny
		events = append(events, rl)
		r.feed(t, events...)
		alerts := r.expectAlerts(t, middleware.RuleKeySpike, 1)
		// The mean of buckets 1..10 is (9×20 + 80)/10 = 26, and 5×26 = 130.
		if want := "key_spike: 131 requests in a bucket of 1m0s, more than 5× the mean of 26.0 over the previous 10 buckets"; alerts[0].Reason != want {
			t.Errorf("Reason = %q, want %q", alerts[0].Reason, want)
		}
		if alerts[0].ActorType != models.ActorAPIKey || alerts[0].ActorID != "k-steady" || alerts[0].UserID != "owner-of-k-steady" {
			t.Errorf("the alert does not name the key: %+v", alerts[0])
		}
	})
}

func TestAnomalyBOLAProbing(t *testing.T) {
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.BOLADenials, c.BOLAWindow = 20, 5*time.Minute })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{})

	t.Run("normal traffic is quiet", func(t *testing.T) {
		var events []models.AuditEvent
		// A client polling an object that was deleted: one id, many 404s.
		for i := range 100 {
			events = append(events, denyEvent("u-poller", "gone", "not_found", anomalyT0.Add(time.Duration(i)*time.Second)))
		}
		// A few stale links: 19 ids.
		for i := range 19 {
			events = append(events, denyEvent("u-stale", fmt.Sprint("old-", i), "not_found", anomalyT0))
		}
		// Refusals of the route's policy name no object.
		for range 50 {
			events = append(events, denyEvent("u-noscope", "", "forbidden", anomalyT0))
		}
		// 40 ids, 2 every minute.
		for i := range 40 {
			events = append(events, denyEvent("u-slow", fmt.Sprint("id-", i), "not_found", anomalyT0.Add(time.Duration(i)*30*time.Second)))
		}
		r.feed(t, events...)
		r.expectAlerts(t, middleware.RuleBOLAProbing, 0)
	})

	t.Run("20 refused ids alert once", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 100 {
			reason := "not_found"
			if i%2 == 1 {
				reason = "forbidden"
			}
			events = append(events, denyEvent("u-prober", fmt.Sprint("victim-", i), reason, anomalyT0.Add(time.Duration(i)*time.Second)))
		}
		r.feed(t, events...)
		alerts := r.expectAlerts(t, middleware.RuleBOLAProbing, 1)
		if want := "bola_probing: 20 distinct object ids refused (404/403) in 5m0s"; alerts[0].Reason != want {
			t.Errorf("Reason = %q, want %q", alerts[0].Reason, want)
		}
		if alerts[0].ActorID != "u-prober" || alerts[0].UserID != "u-prober" {
			t.Errorf("the alert does not name the prober: %+v", alerts[0])
		}
	})
}

func TestAnomalyCredentialStuffing(t *testing.T) {
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.StuffingAccounts, c.StuffingWindow = 10, 10*time.Minute })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{})

	t.Run("normal traffic is quiet", func(t *testing.T) {
		var events []models.AuditEvent
		// Guessing one account's password (the lock-out's business).
		for i := range 50 {
			events = append(events, loginFailEvent("203.0.113.1", anomalyAccountKey("alice@example.com"), anomalyT0.Add(time.Duration(i)*time.Second)))
		}
		// An office behind one address where 9 people mistype.
		for i := range 9 {
			events = append(events, loginFailEvent("203.0.113.2", anomalyAccountKey(fmt.Sprintf("user%d@example.com", i)), anomalyT0))
		}
		// Ten addresses, five accounts each.
		for a := range 10 {
			for i := range 5 {
				events = append(events, loginFailEvent(fmt.Sprintf("198.51.100.%d", a+10), anomalyAccountKey(fmt.Sprintf("x%d-%d@example.com", a, i)), anomalyT0))
			}
		}
		// 30 accounts from one address over three hours.
		for i := range 30 {
			events = append(events, loginFailEvent("203.0.113.3", anomalyAccountKey(fmt.Sprintf("slow%d@example.com", i)), anomalyT0.Add(time.Duration(i)*6*time.Minute)))
		}
		r.feed(t, events...)
		r.expectAlerts(t, middleware.RuleCredentialStuffing, 0)
	})

	t.Run("ten accounts from one address alert once", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 100 {
			events = append(events, loginFailEvent("203.0.113.66", anomalyAccountKey(fmt.Sprintf("victim%d@example.com", i)), anomalyT0.Add(time.Duration(i)*time.Second)))
		}
		r.feed(t, events...)
		alerts := r.expectAlerts(t, middleware.RuleCredentialStuffing, 1)
		a := alerts[0]
		if want := "credential_stuffing: failed logins for 10 distinct accounts from 203.0.113.66 in 10m0s"; a.Reason != want {
			t.Errorf("Reason = %q, want %q", a.Reason, want)
		}
		// The subject is the address; no account is named.
		if a.ClientIP != "203.0.113.66" || a.ActorType != models.ActorAnonymous || a.ActorID != "" || a.UserID != "" {
			t.Errorf("the alert does not name the address alone: %+v", a)
		}
	})

	t.Run("rotating through an IPv6 /64 is one address", func(t *testing.T) {
		var events []models.AuditEvent
		for i := range 10 {
			events = append(events, loginFailEvent(fmt.Sprintf("2001:db8:1:2::%x", i+1), anomalyAccountKey(fmt.Sprintf("v6-%d@example.com", i)), anomalyT0))
		}
		r.feed(t, events...)
		alerts := r.expectAlerts(t, middleware.RuleCredentialStuffing, 2)
		if !strings.Contains(alerts[1].Reason, "from 2001:db8:1:2::/64") {
			t.Errorf("Reason = %q, want the /64 named", alerts[1].Reason)
		}
	})
}

// writeGeoIP writes a MaxMind DB that maps each network to a country.
func writeGeoIP(tb testing.TB, path string, countries map[string]string) {
	tb.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24})
	if err != nil {
		tb.Fatal(err)
	}
	for cidr, code := range countries {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			tb.Fatal(err)
		}
		if err := tree.Insert(n, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(code)}}); err != nil {
			tb.Fatal(err)
		}
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as geoipupdate does
		tb.Fatal(err)
	}
}

// newTestUser creates an account (cheaply hashed) and returns its id.
func newTestUser(tb testing.TB, db *models.DB, email string) string {
	tb.Helper()
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	cheap := argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	accounts, err := models.NewAccounts(context.Background(), db, models.AccountsConfig{Hasher: models.NewPasswordHasher(cheap), Policy: policy})
	if err != nil {
		tb.Fatal(err)
	}
	u, err := accounts.Register(context.Background(), models.NewUser{Email: email, DisplayName: "Traveller", Password: "correct horse battery staple 42"})
	if err != nil {
		tb.Fatal(err)
	}
	return u.ID
}

func TestAnomalyNewCountry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		path := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
		writeGeoIP(t, path, map[string]string{"81.2.69.0/24": "GB", "89.160.20.0/24": "SE"})
		cfg := onlyRules(func(c *middleware.AnomalyConfig) {
			c.GeoIPDB, c.GeoIPCheckEvery = path, time.Nanosecond
			c.StuffingAccounts, c.StuffingWindow = 10, time.Minute // on, to show it stays quiet
		})
		r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{DB: db})
		if got := r.d.Enabled(); !slices.Equal(got, []string{middleware.RuleNewCountry, middleware.RuleCredentialStuffing}) {
			t.Errorf("Enabled = %q", got)
		}
		alice := newTestUser(t, db, "alice@example.com")
		bob := newTestUser(t, db, "bob@example.com")

		// Normal: the first country ever, the same country again, addresses
		// the database does not know, and another account's first login.
		r.feed(t,
			loginOKEvent(alice, "81.2.69.160", anomalyT0),
			loginOKEvent(alice, "81.2.69.10", anomalyT0.Add(time.Hour)),
			loginOKEvent(alice, "10.1.2.3", anomalyT0.Add(2*time.Hour)),
			loginOKEvent(alice, "2001:db8::1", anomalyT0.Add(2*time.Hour)),
			loginOKEvent(alice, "not an address", anomalyT0.Add(2*time.Hour)),
			loginOKEvent(bob, "89.160.20.112", anomalyT0),
		)
		r.expectAlerts(t, middleware.RuleNewCountry, 0)

		// Alice from Sweden: new, and she has used another country.
		r.feed(t, loginOKEvent(alice, "89.160.20.112", anomalyT0.Add(3*time.Hour)))
		alerts := r.expectAlerts(t, middleware.RuleNewCountry, 1)
		a := alerts[0]
		if want := "new_country: login from SE, a country this account has not logged in from before"; a.Reason != want {
			t.Errorf("Reason = %q, want %q", a.Reason, want)
		}
		if a.UserID != alice || a.ClientIP != "89.160.20.112" {
			t.Errorf("the alert does not name the account and address: %+v", a)
		}
		// Sweden again, also as an IPv4-mapped address: no longer new.
		r.feed(t, loginOKEvent(alice, "89.160.20.113", anomalyT0.Add(4*time.Hour)),
			loginOKEvent(alice, "::ffff:89.160.20.114", anomalyT0.Add(4*time.Hour)))
		r.expectAlerts(t, middleware.RuleNewCountry, 1)

		// Both countries are on record; a third would be new.
		isNew, hadOthers, err := db.SeenCountry(context.Background(), alice, "GB", anomalyT0)
		if err != nil || isNew || !hadOthers {
			t.Errorf("SeenCountry(alice, GB) = %v, %v, %v; want known, with others", isNew, hadOthers, err)
		}

		// The database is replaced on disk (a weekly update): GB's network
		// now lies in France, which Alice has never used.
		writeGeoIP(t, path, map[string]string{"81.2.69.0/24": "FR", "89.160.20.0/24": "SE"})
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		r.feed(t, loginOKEvent(alice, "81.2.69.160", anomalyT0.Add(5*time.Hour)))
		alerts = r.expectAlerts(t, middleware.RuleNewCountry, 2)
		if !strings.HasPrefix(alerts[1].Reason, "new_country: login from FR") {
			t.Errorf("after the update: Reason = %q", alerts[1].Reason)
		}
	})
}

func TestAnomalyNewCountryNeedsAUsableDatabase(t *testing.T) {
	db := dbtest.Open(t, models.SQLite)
	dir := t.TempDir()
	notMMDB := filepath.Join(dir, "not.mmdb")
	if err := os.WriteFile(notMMDB, []byte("this is no MaxMind database"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]middleware.AnomalyConfig{
		"missing file":   {GeoIPDB: filepath.Join(dir, "missing.mmdb")},
		"not a database": {GeoIPDB: notMMDB},
	} {
		_, err := middleware.NewAnomalyDetector(cfg, middleware.AnomalyDeps{DB: db, Record: (&alertSink{}).record})
		if err == nil || !strings.Contains(err.Error(), "GeoIP database") {
			t.Errorf("%s: error %v, want one about the GeoIP database", name, err)
		}
	}
}

// webhookReceiver is an HTTPS alert receiver that checks signatures.
type webhookReceiver struct {
	srv      *httptest.Server
	key      []byte
	mu       sync.Mutex
	received []map[string]string
	problems []string
}

func newWebhookReceiver(tb testing.TB, key []byte) *webhookReceiver {
	tb.Helper()
	w := &webhookReceiver{key: key}
	w.srv = httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		w.mu.Lock()
		defer w.mu.Unlock()
		if problem := w.check(req, body); problem != "" {
			w.problems = append(w.problems, problem)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			w.problems = append(w.problems, "body: "+err.Error())
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.received = append(w.received, m)
		rw.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(w.srv.Close)
	return w
}

// check verifies a delivery as a receiver would: method, content type, a
// fresh timestamp, and the HMAC over "<t>.<body>", compared in constant time.
func (w *webhookReceiver) check(req *http.Request, body []byte) string {
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		return "method or content type: " + req.Method + " " + req.Header.Get("Content-Type")
	}
	var ts, sig string
	for _, part := range strings.Split(req.Header.Get("X-Rampart-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return "timestamp missing or stale: " + req.Header.Get("X-Rampart-Signature")
	}
	mac := hmac.New(sha256.New, w.key)
	mac.Write([]byte(ts + "." + string(body)))
	want := mac.Sum(nil)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want) {
		return "bad signature: " + req.Header.Get("X-Rampart-Signature")
	}
	return ""
}

func (w *webhookReceiver) deliveries() ([]map[string]string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.received), slices.Clone(w.problems)
}

func TestAnomalyAlertWebhook(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	recv := newWebhookReceiver(t, key)
	cfg := onlyRules(func(c *middleware.AnomalyConfig) {
		c.StuffingAccounts, c.StuffingWindow = 3, time.Minute
		c.AlertWebhookURL = recv.srv.URL + "/hooks/rampart"
	})
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{WebhookKey: key, Outbound: alertClient(t, cfg.AlertWebhookURL, recv.srv)})
	var events []models.AuditEvent
	for i := range 5 {
		events = append(events, loginFailEvent("203.0.113.50", anomalyAccountKey(fmt.Sprint(i)), time.Now()))
	}
	r.feed(t, events...)
	alerts := r.expectAlerts(t, middleware.RuleCredentialStuffing, 1)

	eventually(t, "the webhook delivery", func() bool {
		got, problems := recv.deliveries()
		return len(got) > 0 || len(problems) > 0
	})
	got, problems := recv.deliveries()
	if len(problems) > 0 || len(got) != 1 {
		t.Fatalf("deliveries %v, problems %q", got, problems)
	}
	m := got[0]
	if m["rule"] != middleware.RuleCredentialStuffing || m["subject"] != "ip:203.0.113.50" || m["event_id"] != alerts[0].ID ||
		m["detail"] != strings.TrimPrefix(alerts[0].Reason, middleware.RuleCredentialStuffing+": ") {
		t.Errorf("webhook body %v does not match the alert %+v", m, alerts[0])
	}
	if at, err := time.Parse(time.RFC3339Nano, m["at"]); err != nil || time.Since(at) > time.Minute {
		t.Errorf("at = %q (%v)", m["at"], err)
	}
	// The signature is the documented scheme.
	if got := models.SignWebhook(key, time.Unix(1700000000, 0), []byte("{}")); got != "t=1700000000,v1="+hex.EncodeToString(hmacOf(key, "1700000000.{}")) {
		t.Errorf("signature %q differs from t=<t>,v1=HMAC-SHA256(key, t.body)", got)
	}
}

// TestAnomalyAlertWebhookKeyRotation: with a KeyRing, each alert is signed
// with the ring's current key when it is sent, so a rotation of the secret
// alert_webhook_key reaches the webhook without a restart.
func TestAnomalyAlertWebhookKeyRotation(t *testing.T) {
	oldKey := []byte("0123456789abcdef0123456789abcdef")
	newKey := []byte("fedcba9876543210fedcba9876543210")
	ring, err := models.NewKeyRing(oldKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := newWebhookReceiver(t, oldKey)
	cfg := onlyRules(func(c *middleware.AnomalyConfig) {
		c.StuffingAccounts, c.StuffingWindow = 3, time.Minute
		c.AlertWebhookURL = recv.srv.URL + "/hooks/rampart"
	})
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{WebhookKeys: ring, Outbound: alertClient(t, cfg.AlertWebhookURL, recv.srv)})
	stuff := func(ip string) {
		t.Helper()
		var events []models.AuditEvent
		for i := range 3 {
			events = append(events, loginFailEvent(ip, anomalyAccountKey(ip+fmt.Sprint(i)), time.Now()))
		}
		r.feed(t, events...)
	}
	delivered := func(n int) {
		t.Helper()
		eventually(t, "the webhook delivery", func() bool {
			got, problems := recv.deliveries()
			return len(got) >= n || len(problems) > 0
		})
		if got, problems := recv.deliveries(); len(problems) > 0 || len(got) != n {
			t.Fatalf("deliveries %v, problems %q", got, problems)
		}
	}
	stuff("203.0.113.60")
	delivered(1)

	// The receiver learns the new key, the ring rotates: the next alert
	// verifies under the new key only.
	recv.mu.Lock()
	recv.key = newKey
	recv.mu.Unlock()
	if err := ring.Set(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	stuff("203.0.113.61")
	delivered(2)
}

// loopbackOnly admits the test receivers on 127.0.0.1, as an operator
// admits an internal receiver with APP_ALERT_WEBHOOK_ALLOW.
var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// alertClient is the alert webhook's outbound client for rawURL, trusting
// srv's certificate and admitting 127.0.0.1.
func alertClient(tb testing.TB, rawURL string, srv *httptest.Server) *outbound.Client {
	tb.Helper()
	o := middleware.AlertWebhookOptions(rawURL, loopbackOnly)
	o.RootCAs = x509.NewCertPool()
	o.RootCAs.AddCert(srv.Certificate())
	c, err := outbound.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestAnomalyAlertWebhookGoesThroughOutbound: the alert webhook is sent by
// the guarded outbound client. A receiver on a non-public address is
// refused when the detector starts unless the operator admitted its
// range, and a name that resolves to a non-public address at delivery
// time is refused when it is dialled: nothing reaches the receiver.
func TestAnomalyAlertWebhookGoesThroughOutbound(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	recv := newWebhookReceiver(t, key)
	record := (&alertSink{}).record
	port := recv.srv.Listener.Addr().(*net.TCPAddr).Port
	for _, raw := range []string{recv.srv.URL + "/hook", "https://169.254.169.254/latest", "https://[::1]/", "https://0x7f000001/", "https://localhost/"} {
		_, err := middleware.NewAnomalyDetector(onlyRules(func(c *middleware.AnomalyConfig) { c.AlertWebhookURL = raw }),
			middleware.AnomalyDeps{Record: record, WebhookKey: key})
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v, want a refusal", raw, err)
		}
	}

	// A public-looking name that resolves to 127.0.0.1 when the alert is
	// sent: the dial-time check stops it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = dnsSrv.ActivateAndServe() }()
	t.Cleanup(func() { _ = dnsSrv.Shutdown() })
	target := "https://example.com:" + strconv.Itoa(port) + "/hook"
	o := middleware.AlertWebhookOptions(target, nil)
	o.RootCAs = x509.NewCertPool()
	o.RootCAs.AddCert(recv.srv.Certificate())
	o.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}}
	client, err := outbound.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cfg := onlyRules(func(c *middleware.AnomalyConfig) {
		c.StuffingAccounts, c.StuffingWindow, c.AlertWebhookURL = 2, time.Minute, target
	})
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{WebhookKey: key, Outbound: client})
	r.feed(t, loginFailEvent("203.0.113.52", "a", time.Now()), loginFailEvent("203.0.113.52", "b", time.Now()))
	r.expectAlerts(t, middleware.RuleCredentialStuffing, 1)
	eventually(t, "the refused delivery to be counted", func() bool {
		return counter(t, r.reg, "rampart_anomaly_alert_failures_total", "channel", "webhook") == 1
	})
	if got, problems := recv.deliveries(); len(got)+len(problems) != 0 {
		t.Errorf("the receiver was reached: %v %q", got, problems)
	}
}

func hmacOf(key []byte, s string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(s))
	return mac.Sum(nil)
}

// TestAnomalyAlertWebhookDoesNotFollowRedirects: a receiver that answers
// with a redirect gets nothing more; the failure is counted and logged.
func TestAnomalyAlertWebhookDoesNotFollowRedirects(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	recv := newWebhookReceiver(t, key)
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		http.Redirect(rw, req, recv.srv.URL+"/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	cfg := onlyRules(func(c *middleware.AnomalyConfig) {
		c.StuffingAccounts, c.StuffingWindow, c.AlertWebhookURL = 2, time.Minute, redirector.URL
	})
	// One client that could reach both test servers.
	o := middleware.AlertWebhookOptions(redirector.URL, loopbackOnly)
	o.Ports = append(o.Ports, recv.srv.Listener.Addr().(*net.TCPAddr).Port)
	o.RootCAs = x509.NewCertPool()
	o.RootCAs.AddCert(redirector.Certificate())
	client, err := outbound.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{WebhookKey: key, Outbound: client})
	r.feed(t, loginFailEvent("203.0.113.51", "a", time.Now()), loginFailEvent("203.0.113.51", "b", time.Now()))
	r.expectAlerts(t, middleware.RuleCredentialStuffing, 1)
	eventually(t, "the failed delivery to be counted", func() bool {
		return counter(t, r.reg, "rampart_anomaly_alert_failures_total", "channel", "webhook") == 1
	})
	if got, problems := recv.deliveries(); len(got)+len(problems) != 0 {
		t.Errorf("the redirect was followed: %v %q", got, problems)
	}
}

func TestAnomalyDetectorRefusesBadSettings(t *testing.T) {
	record := (&alertSink{}).record
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name string
		cfg  middleware.AnomalyConfig
		deps middleware.AnomalyDeps
		says string
	}{
		{"no Record", middleware.DefaultAnomalyConfig(), middleware.AnomalyDeps{}, "Record"},
		{"a rule without window", middleware.AnomalyConfig{ScrapeObjects: 10}, middleware.AnomalyDeps{Record: record}, "scraping needs a window"},
		{"a spike factor below 1", middleware.AnomalyConfig{KeySpikeFactor: 0.5, KeySpikeBucket: time.Minute, KeySpikeBaseline: 3, KeySpikeMin: 1},
			middleware.AnomalyDeps{Record: record}, "factor"},
		{"a plain-HTTP webhook", middleware.AnomalyConfig{AlertWebhookURL: "http://alerts.example.com/hook"}, middleware.AnomalyDeps{Record: record, WebhookKey: key}, "https"},
		{"a webhook URL with credentials", middleware.AnomalyConfig{AlertWebhookURL: "https://u:p@alerts.example.com/hook"}, middleware.AnomalyDeps{Record: record, WebhookKey: key}, "user information"},
		{"a webhook without key", middleware.AnomalyConfig{AlertWebhookURL: "https://alerts.example.com/hook"}, middleware.AnomalyDeps{Record: record}, "key"},
		{"a webhook on a private address", middleware.AnomalyConfig{AlertWebhookURL: "https://10.0.0.8/hook"}, middleware.AnomalyDeps{Record: record, WebhookKey: key}, "non-public address (private)"},
		{"GeoIP without database", middleware.AnomalyConfig{GeoIPDB: "/nonexistent.mmdb"}, middleware.AnomalyDeps{Record: record}, "database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := middleware.NewAnomalyDetector(tc.cfg, tc.deps)
			if err == nil {
				_ = d.Close(context.Background())
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if strings.Contains(err.Error(), "u:p@") {
				t.Errorf("error repeats the URL's credentials: %q", err)
			}
		})
	}
}

// TestAnomalyAlertRecordedOnceThroughAuditWriter wires the detector as
// serve does, to a real audit writer (which calls Observe, and which the
// detector records its alerts through), and checks that a pattern seen
// again and again in one window is in the audit trail exactly once.
func TestAnomalyAlertRecordedOnceThroughAuditWriter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		var writer *models.AuditWriter
		d, err := middleware.NewAnomalyDetector(
			onlyRules(func(c *middleware.AnomalyConfig) { c.BOLADenials, c.BOLAWindow, c.QueueSize = 5, time.Minute, 2 }),
			middleware.AnomalyDeps{Record: func(e models.AuditEvent) error { return writer.Record(e) }})
		if err != nil {
			t.Fatal(err)
		}
		auditLog := models.NewAuditLog(db)
		writer = models.NewAuditWriter(auditLog, models.AuditWriterConfig{Observe: d.Observe, QueueSize: 4})
		// Three rounds of the pattern, concurrently, within one window.
		var wg sync.WaitGroup
		for round := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 30 {
					e := denyEvent("u-prober", fmt.Sprint("victim-", (round*30+i)%12), "not_found", time.Time{})
					if err := writer.Record(e); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The order of shutdown: detector first (its alerts go to the
		// writer), then the writer.
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := writer.Close(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := auditLog.List(ctx, models.AuditFilter{Action: models.ActionAnomaly}, models.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("%d anomaly events in the trail, want exactly 1: %+v", len(page.Items), page.Items)
		}
		if a := page.Items[0]; a.ActorID != "u-prober" || !strings.HasPrefix(a.Reason, "bola_probing: 5 ") || a.Outcome != models.OutcomeDeny {
			t.Errorf("alert = %+v", a)
		}
		all, err := auditLog.List(ctx, models.AuditFilter{}, models.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Items) != 91 {
			t.Errorf("%d events in the trail, want the 90 denials and the alert", len(all.Items))
		}
	})
}

// TestAnomalyObserveNeverDrops: with a tiny queue and many concurrent
// callers, every event is analysed (Observe waits, it does not drop): the
// alert needs all 10,000 distinct objects.
func TestAnomalyObserveNeverDrops(t *testing.T) {
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.ScrapeObjects, c.ScrapeWindow, c.QueueSize = 9_999, time.Hour, 4 })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{})
	var wg sync.WaitGroup
	for g := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				r.d.Observe(readEvent(models.ActorUser, "u-1", "task", fmt.Sprint(g, "-", i), anomalyT0))
			}
		}()
	}
	wg.Wait()
	r.feed(t)
	r.expectAlerts(t, middleware.RuleScraping, 1)
	if r.d.QueueDepth() != 0 {
		t.Errorf("QueueDepth = %d after Flush", r.d.QueueDepth())
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := false
	for _, mf := range mfs {
		registered = registered || mf.GetName() == "rampart_anomaly_queue_depth"
	}
	if !registered {
		t.Error("rampart_anomaly_queue_depth is not registered")
	}

	// After Close, an event is not analysed, and that is counted.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.d.Observe(readEvent(models.ActorUser, "u-2", "task", "late", anomalyT0))
	if got := counter(t, r.reg, "rampart_anomaly_events_unanalysed_total"); got != 1 {
		t.Errorf("rampart_anomaly_events_unanalysed_total = %v, want 1", got)
	}
	// A detector that does not exist yet ignores events (wiring order).
	var none *middleware.AnomalyDetector
	none.Observe(readEvent(models.ActorUser, "u-2", "task", "early", anomalyT0))
}

// TestAnomalyCountersSharedThroughRedis: two detectors (two instances)
// sharing one Redis add up their counters, and the alert is raised once
// in all.
func TestAnomalyCountersSharedThroughRedis(t *testing.T) {
	client := redistest.NewClient(t)
	prefix := redistest.Prefix(t)
	cfg := middleware.DefaultAnomalyConfig()
	cfg.StuffingAccounts, cfg.ScrapeObjects, cfg.KeySpikeMin = 10, 50, 40
	a := newAnomalyRig(t, cfg, middleware.AnomalyDeps{Redis: client, KeyPrefix: prefix})
	b := newAnomalyRig(t, cfg, middleware.AnomalyDeps{Redis: redistest.NewClient(t), KeyPrefix: prefix})
	if !a.d.Shared() {
		t.Error("Shared() = false with Redis")
	}
	now := time.Now()
	both := func(rule string) int {
		n := 0
		for _, r := range []*anomalyRig{a, b} {
			for _, e := range r.sink.all() {
				if strings.HasPrefix(e.Reason, rule+": ") {
					n++
				}
			}
		}
		return n
	}

	// Nine accounts, split across the two instances: quiet.
	for i := range 9 {
		r := []*anomalyRig{a, b}[i%2]
		r.feed(t, loginFailEvent("203.0.113.77", anomalyAccountKey(fmt.Sprint("acct", i)), now))
	}
	if n := both(middleware.RuleCredentialStuffing); n != 0 {
		t.Fatalf("%d alerts for nine accounts", n)
	}
	// The tenth, on either, alerts; more on both do not alert again.
	b.feed(t, loginFailEvent("203.0.113.77", anomalyAccountKey("acct9"), now))
	for i := 10; i < 30; i++ {
		[]*anomalyRig{a, b}[i%2].feed(t, loginFailEvent("203.0.113.77", anomalyAccountKey(fmt.Sprint("acct", i)), now))
	}
	if n := both(middleware.RuleCredentialStuffing); n != 1 {
		t.Errorf("%d credential-stuffing alerts across both instances, want 1", n)
	}

	// 26 + 25 distinct objects read through the two instances: more than 50.
	for i := range 51 {
		[]*anomalyRig{a, b}[i%2].d.Observe(readEvent(models.ActorUser, "u-scraper", "project", fmt.Sprint("p", i), now))
	}
	a.feed(t)
	b.feed(t)
	if n := both(middleware.RuleScraping); n != 1 {
		t.Errorf("%d scraping alerts across both instances, want 1", n)
	}

	// A key with no history: 40 requests (the minimum) across both.
	for i := range 45 {
		[]*anomalyRig{a, b}[i%2].d.Observe(readEvent(models.ActorAPIKey, "k-new", "project", "", now))
	}
	a.feed(t)
	b.feed(t)
	if n := both(middleware.RuleKeySpike); n != 1 {
		t.Errorf("%d key-spike alerts across both instances, want 1", n)
	}

	// Every key expires by itself, and none holds an account key in clear.
	keys := redistest.Keys(t, client, prefix)
	if len(keys) == 0 {
		t.Fatal("nothing in Redis")
	}
	ctx := context.Background()
	for _, k := range keys {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %q has no expiry (%v)", k, ttl)
		}
		if client.Type(ctx, k).Val() == "set" {
			for _, m := range client.SMembers(ctx, k).Val() {
				if strings.Contains(m, anomalyAccountKey("acct1")) || len(m) != 16 {
					t.Errorf("set %q holds %q, not a 16-byte hash", k, m)
				}
			}
		}
	}
	if got := counter(t, a.reg, "rampart_anomaly_store_errors_total") + counter(t, b.reg, "rampart_anomaly_store_errors_total"); got != 0 {
		t.Errorf("store errors = %v with Redis up", got)
	}
}

// TestAnomalyRedisDownFallsBackToMemory: when Redis fails, the rules go
// on in this instance's memory; the outage is counted and logged once,
// and Redis is used again when it comes back.
func TestAnomalyRedisDownFallsBackToMemory(t *testing.T) {
	opts := redistest.Options(t)
	proxy := redistest.NewProxy(t, opts.Addr)
	opts.Addr = proxy.Addr()
	client := redistest.NewClientWith(t, opts)
	prefix := redistest.Prefix(t)
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.StuffingAccounts, c.StuffingWindow = 5, time.Minute })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{Redis: client, KeyPrefix: prefix, RetryRedisAfter: 50 * time.Millisecond})

	proxy.Cut()
	for i := range 5 {
		r.feed(t, loginFailEvent("203.0.113.88", anomalyAccountKey(fmt.Sprint(i)), time.Now()))
	}
	r.expectAlerts(t, middleware.RuleCredentialStuffing, 1)
	if got := counter(t, r.reg, "rampart_anomaly_store_errors_total"); got < 1 {
		t.Errorf("rampart_anomaly_store_errors_total = %v, want at least 1", got)
	}
	if got := r.log.count(slog.LevelError); got != 1 {
		t.Errorf("%d ERROR lines for one outage, want 1: %q", got, r.log.messages())
	}

	proxy.Restore()
	eventually(t, "Redis to be used again", func() bool {
		r.feed(t, loginFailEvent("203.0.113.89", anomalyAccountKey("probe"), time.Now()))
		return len(redistest.Keys(t, client, prefix)) > 0
	})
	if !slices.ContainsFunc(r.log.messages(), func(m string) bool { return strings.Contains(m, "answers again") }) {
		t.Errorf("the recovery is not logged: %q", r.log.messages())
	}
}

// scriptCounter is a go-redis hook that counts pipelines and the scripts
// they run.
type scriptCounter struct {
	pipelines, scripts atomic.Int64
}

func (h *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if strings.HasPrefix(cmd.Name(), "eval") {
			h.scripts.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		for _, c := range cmds {
			if strings.HasPrefix(c.Name(), "eval") {
				h.scripts.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestAnomalyRedisWorkIsBatched: a user re-reading the same object makes
// one script run in Redis a batch, not one a read, and the events of a
// burst share a round trip; distinct objects are still each counted.
func TestAnomalyRedisWorkIsBatched(t *testing.T) {
	client := redistest.NewClient(t)
	hook := &scriptCounter{}
	client.AddHook(hook)
	cfg := onlyRules(func(c *middleware.AnomalyConfig) { c.ScrapeObjects, c.ScrapeWindow = 50, time.Minute })
	r := newAnomalyRig(t, cfg, middleware.AnomalyDeps{Redis: client, KeyPrefix: redistest.Prefix(t)})
	now := time.Now()

	var same []models.AuditEvent
	for range 300 {
		same = append(same, readEvent(models.ActorUser, "u-reader", "project", "p-1", now))
	}
	r.feed(t, same...)
	if p, s := hook.pipelines.Load(), hook.scripts.Load(); p > 4 || s > p {
		t.Errorf("300 reads of one object: %d round trips and %d script runs, want a few of each (one a batch)", p, s)
	}

	before := hook.scripts.Load()
	var distinct []models.AuditEvent
	for i := range 51 {
		distinct = append(distinct, readEvent(models.ActorUser, "u-reader", "project", fmt.Sprint("q-", i), now))
	}
	r.feed(t, distinct...)
	if s := hook.scripts.Load() - before; s != 51 {
		t.Errorf("51 distinct objects: %d script runs, want 51", s)
	}
	r.expectAlerts(t, middleware.RuleScraping, 1) // p-1 and 50 more: over 50
}

package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
	"github.com/rampart-go/rampart/models/outbound"
)

// webhookJSON is the answer of PUT /v1/projects/{id}/webhook.
type webhookJSON struct {
	URL        string `json:"url"`
	SecretHint string `json:"secret_hint"`
	Secret     string `json:"secret"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

var webhookMembers = []string{"url", "secret_hint", "created_at", "updated_at"}

type attemptJSON struct {
	DeliveryID string  `json:"delivery_id"`
	Event      string  `json:"event"`
	Attempt    int     `json:"attempt"`
	At         string  `json:"at"`
	StatusCode *int    `json:"status_code"`
	LatencyMS  int64   `json:"latency_ms"`
	ErrorClass *string `json:"error_class"`
}

// payloadJSON is a delivery's body as a receiver reads it.
type payloadJSON struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	ProjectID string          `json:"project_id"`
	Data      json.RawMessage `json:"data"`
}

// testClock is a dispatcher clock that a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().UTC()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// putWebhook sets a project's webhook and returns the answer.
func (a *testAPI) putWebhook(tb testing.TB, token, projectID, url string) webhookJSON {
	tb.Helper()
	rec := a.call(tb, http.MethodPut, "/v1/projects/"+projectID+"/webhook", token, jsonBody(tb, map[string]string{"url": url}))
	expectStatus(tb, rec, http.StatusOK, "set webhook")
	var w webhookJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &w); err != nil {
		tb.Fatal(err)
	}
	return w
}

// deliver sends every delivery that is due now, and waits for them.
func (a *testAPI) deliver(tb testing.TB) {
	tb.Helper()
	a.webhooks.Dispatcher.RunOnce(context.Background(), nil)
	a.webhooks.Dispatcher.Wait()
}

// attempts reads a project's delivery log through the API.
func (a *testAPI) attempts(tb testing.TB, token, projectID string) []attemptJSON {
	tb.Helper()
	return walk[attemptJSON](tb, a, token, "/v1/projects/"+projectID+"/webhook/deliveries", MaxPageLimit)
}

func (a *testAPI) countRows(tb testing.TB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := a.db.SQLDB().QueryRow(a.rebind(query), args...).Scan(&n); err != nil {
		tb.Fatalf("count: %v", err)
	}
	return n
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (a *testAPI) rebind(query string) string {
	if a.db.Dialect() != models.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// withWebhooks configures a test API's webhook parts with client options o
// and dispatcher configuration cfg.
func withWebhooks(tb testing.TB, o outbound.Options, cfg models.WebhookConfig) func(*Deps) {
	return func(d *Deps) {
		d.Webhooks = webhookDeps(tb, d.DB, o, cfg)
		d.Changes = d.Webhooks.Dispatcher
	}
}

// countFor counts the deliveries the receiver got for one project.
func (rc *testReceiver) countFor(projectID string) int {
	n := 0
	for _, g := range rc.received() {
		var pl payloadJSON
		if json.Unmarshal(g.body, &pl) == nil && pl.ProjectID == projectID {
			n++
		}
	}
	return n
}

// TestWebhookRegistrationRefusesSSRF registers every kind of URL that
// could reach a non-public address, with the production policy (no test
// allowlist): each is 422 on the url field, says why without repeating
// the URL, and stores nothing.
func TestWebhookRegistrationRefusesSSRF(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	hooks.dns.set("rebind.example.test", "127.0.0.1")
	hooks.dns.set("metadata.example.test", "169.254.169.254")
	hooks.dns.set("mixed.example.test", "93.184.215.14", "10.1.2.3")
	hooks.dns.set("six.example.test", "::1")
	hooks.dns.set("mapped.example.test", "::ffff:127.0.0.1")
	hooks.dns.set("public.example.test", "93.184.215.14")
	eachAPIWith(t, withWebhooks(t, hooks.options(true), models.WebhookConfig{}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "SSRF target practice")
		refused := []struct{ name, url string }{
			{"plain http", "http://public.example.test/hook"},
			{"metadata address", "https://169.254.169.254/latest/meta-data/"},
			{"metadata host", "https://metadata.google.internal/computeMetadata/v1/"},
			{"loopback v6", "https://[::1]/"},
			{"loopback hex", "https://0x7f000001/"},
			{"loopback decimal", "https://2130706433/"},
			{"loopback octal", "https://0177.0.0.1/"},
			{"loopback short", "https://127.1/"},
			{"loopback mapped v6", "https://[::ffff:127.0.0.1]/"},
			{"localhost", "https://localhost/"},
			{"localhost subdomain", "https://api.localhost/"},
			{"unspecified", "https://0.0.0.0/"},
			{"private 10", "https://10.0.0.5/"},
			{"private 172", "https://172.16.0.1/"},
			{"private 192", "https://192.168.1.1/"},
			{"carrier-grade NAT", "https://100.64.0.1/"},
			{"unique local v6", "https://[fd00::1]/"},
			{"link-local v6", "https://[fe80::1]/"},
			{"multicast", "https://224.0.0.1/"},
			{"documentation", "https://192.0.2.1/"},
			{"user-info", "https://user:pass@public.example.test/hook"},
			{"port not allowed", "https://public.example.test:22/hook"},
			{"resolves to loopback", "https://rebind.example.test/hook"},
			{"resolves to metadata", "https://metadata.example.test/hook"},
			{"one private address among public", "https://mixed.example.test/hook"},
			{"resolves to v6 loopback", "https://six.example.test/hook"},
			{"resolves to mapped loopback", "https://mapped.example.test/hook"},
			{"does not resolve", "https://nowhere.example.test/hook"},
			{"local receiver without the test allowlist", hooks.receiver.url(hookHost, "/hook")},
			{"too long", "https://public.example.test/" + strings.Repeat("a", 2049)},
		}
		for _, c := range refused {
			rec := api.call(t, http.MethodPut, "/v1/projects/"+p.ID+"/webhook", owner.Token, jsonBody(t, map[string]string{"url": c.url}))
			if rec.Code != http.StatusUnprocessableEntity {
				t.Errorf("%s: %s → %d, want 422: %s", c.name, c.url, rec.Code, truncate(rec.Body.String()))
				continue
			}
			if pr := problemOf(t, rec); !pr.hasField("url") {
				t.Errorf("%s: the problem does not name the url field: %+v", c.name, pr)
			}
		}
		// A resolver that fails is not the URL's fault: 503, retry later,
		// and nothing stored unchecked.
		rec := api.call(t, http.MethodPut, "/v1/projects/"+p.ID+"/webhook", owner.Token, `{"url":"https://servfail.example.test/hook"}`)
		checkStatus(t, rec, http.StatusServiceUnavailable, "a URL whose host the resolver cannot resolve now")
		if n := api.countRows(t, `SELECT COUNT(*) FROM webhooks`); n != 0 {
			t.Errorf("refused URLs stored %d webhooks", n)
		}
		if got := len(hooks.receiver.received()); got != 0 {
			t.Errorf("registration contacted the receiver %d times", got)
		}
		// A public host is taken (and not contacted: registration only
		// resolves it).
		w := api.putWebhook(t, owner.Token, p.ID, "https://PUBLIC.example.test/hook")
		if w.URL != "https://public.example.test/hook" {
			t.Errorf("stored URL %q, want the normalised host", w.URL)
		}
	})
}

// TestWebhookCrossOwner: another owner's project is 404 on every webhook
// route, and its URL is not even looked up.
func TestWebhookCrossOwner(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		owner, other := api.signUp(t), api.signUp(t)
		p := api.createProject(t, owner.Token, "Owner's project")
		hook := defaultHooks(t).receiver.url(hookHost, "/owner")
		api.putWebhook(t, owner.Token, p.ID, hook)
		before := defaultHooks(t).dns.Queries()
		for _, c := range []struct{ method, path, body string }{
			{http.MethodPut, "/webhook", jsonBody(t, map[string]string{"url": "https://stranger.example.test/steal"})},
			{http.MethodDelete, "/webhook", ""},
			{http.MethodPost, "/webhook/test", ""},
			{http.MethodGet, "/webhook/deliveries", ""},
		} {
			rec := api.call(t, c.method, "/v1/projects/"+p.ID+c.path, other.Token, c.body)
			checkStatus(t, rec, http.StatusNotFound, c.method+" "+c.path+" by another user")
		}
		if q := defaultHooks(t).dns.Queries() - before; q != 0 {
			t.Errorf("another owner's PUT made %d DNS queries", q)
		}
		var url string
		if err := api.db.SQLDB().QueryRow(api.rebind(`SELECT url FROM webhooks WHERE project_id = ?`), p.ID).Scan(&url); err != nil || url != hook {
			t.Errorf("the owner's webhook is now %q (%v), want %q", url, err, hook)
		}
	})
}

// TestWebhookSignedDeliveries: task events reach the receiver signed with
// the project's secret, which is shown once and stored sealed.
func TestWebhookSignedDeliveries(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	eachAPIWith(t, withWebhooks(t, hooks.options(false), models.WebhookConfig{}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "Hooked")
		quiet := api.createProject(t, owner.Token, "No webhook here")
		url := hooks.receiver.url(hookHost, "/hooks/"+p.ID)
		w := api.putWebhook(t, owner.Token, p.ID, url)
		if !strings.HasPrefix(w.Secret, "whsec_") || len(w.Secret) < 40 {
			t.Fatalf("the first PUT shows no usable secret: %q", w.Secret)
		}
		if !strings.HasSuffix(w.Secret, strings.TrimPrefix(w.SecretHint, "whsec_…")) || strings.Contains(w.SecretHint, w.Secret[6:20]) {
			t.Errorf("secret_hint %q does not hint at the secret without showing it", w.SecretHint)
		}
		// Shown once: a second PUT keeps the secret and does not show it.
		rec := api.call(t, http.MethodPut, "/v1/projects/"+p.ID+"/webhook", owner.Token, jsonBody(t, map[string]string{"url": url}))
		expectStatus(t, rec, http.StatusOK, "set the webhook again")
		var again webhookJSON
		decodeExact(t, rec, &again, webhookMembers...)
		if again.SecretHint != w.SecretHint {
			t.Errorf("a second PUT changed the secret hint: %q → %q", w.SecretHint, again.SecretHint)
		}
		// Stored sealed, never in the clear.
		var stored string
		if err := api.db.SQLDB().QueryRow(api.rebind(`SELECT secret FROM webhooks WHERE project_id = ?`), p.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stored, w.Secret) || strings.Contains(stored, w.Secret[6:]) {
			t.Errorf("the secret is stored in the clear: %q", stored)
		}

		task := api.createTask(t, owner.Token, p.ID, "Ship it")
		api.createTask(t, owner.Token, quiet.ID, "Nobody listens")
		expectStatus(t, api.call(t, http.MethodPatch, "/v1/projects/"+p.ID+"/tasks/"+task.ID, owner.Token, `{"title":"Ship it now"}`), http.StatusOK, "rename")
		expectStatus(t, api.call(t, http.MethodPatch, "/v1/projects/"+p.ID+"/tasks/"+task.ID, owner.Token, `{"done":true}`), http.StatusOK, "complete")
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+p.ID+"/tasks/"+task.ID, owner.Token, ""), http.StatusNoContent, "delete")
		api.deliver(t)

		got := hooks.receiver.received()
		var mine []receivedHook
		for _, g := range got {
			var pl payloadJSON
			if json.Unmarshal(g.body, &pl) == nil && (pl.ProjectID == p.ID || pl.ProjectID == quiet.ID) {
				mine = append(mine, g)
			}
		}
		if len(mine) != 4 {
			t.Fatalf("receiver got %d deliveries, want 4 (created, updated, completed, deleted)", len(mine))
		}
		want := map[string]bool{models.EventTaskCreated: true, models.EventTaskUpdated: true, models.EventTaskCompleted: true, models.EventTaskDeleted: true}
		for _, g := range mine {
			var pl payloadJSON
			if err := json.Unmarshal(g.body, &pl); err != nil {
				t.Fatalf("payload: %v", err)
			}
			if pl.ProjectID != p.ID {
				t.Errorf("a task of a project without a webhook was delivered: %s", g.body)
			}
			if !want[pl.Type] {
				t.Errorf("unexpected or repeated event %q", pl.Type)
			}
			delete(want, pl.Type)
			if g.header.Get(models.WebhookEventHeader) != pl.Type || g.header.Get(models.WebhookDeliveryHeader) != pl.ID {
				t.Errorf("headers %v do not match the payload %s", g.header, g.body)
			}
			if ct := g.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			sig := g.header.Get(models.WebhookSignatureHeader)
			if !verifySignature(sig, w.Secret, g.body, time.Now(), 5*time.Minute) {
				t.Errorf("%s: signature %q does not verify", pl.Type, sig)
			}
			if verifySignature(sig, w.Secret+"x", g.body, time.Now(), 5*time.Minute) {
				t.Errorf("%s: the signature verifies with another secret", pl.Type)
			}
			if verifySignature(sig, w.Secret, append([]byte(" "), g.body...), time.Now(), 5*time.Minute) {
				t.Errorf("%s: the signature verifies for another body", pl.Type)
			}
			if verifySignature(sig, w.Secret, g.body, time.Now().Add(time.Hour), 5*time.Minute) {
				t.Errorf("%s: an hour-old signature is accepted (replay)", pl.Type)
			}
			if pl.Type != models.EventTaskDeleted && !strings.Contains(string(pl.Data), task.ID) {
				t.Errorf("%s: data does not carry the task: %s", pl.Type, pl.Data)
			}
		}
		log := api.attempts(t, owner.Token, p.ID)
		if len(log) != 4 {
			t.Fatalf("delivery log has %d attempts, want 4", len(log))
		}
		for _, a := range log {
			if a.StatusCode == nil || *a.StatusCode != http.StatusNoContent || a.ErrorClass != nil || a.Attempt != 1 {
				t.Errorf("log line %+v, want one successful attempt", a)
			}
		}
	})
}

// TestWebhookRetriesWithBackoff: a failing receiver is retried after the
// backoff, not before, up to the attempt limit; each attempt is logged.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	var mu sync.Mutex
	statuses := map[string][]int{} // project id → statuses still to answer (then 200)
	hooks.receiver.setRespond(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := strings.TrimPrefix(r.URL.Path, "/")
		if s := statuses[id]; len(s) > 0 {
			statuses[id] = s[1:]
			w.WriteHeader(s[0])
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	eachAPIWith(t, func(d *Deps) {
		clock := newTestClock()
		o := hooks.options(false)
		o.Breaker = outbound.BreakerOptions{Failures: 100, OpenFor: time.Hour}
		d.Webhooks = webhookDeps(t, d.DB, o, models.WebhookConfig{
			MaxAttempts: 3, Now: clock.now, Backoff: func(int) time.Duration { return time.Minute }})
		d.Changes = d.Webhooks.Dispatcher
		clocks.Store(d.Webhooks.Dispatcher, clock)
	}, func(t *testing.T, api *testAPI) {
		c, _ := clocks.Load(api.webhooks.Dispatcher)
		clk := c.(*testClock)
		owner := api.signUp(t)
		recovering := api.createProject(t, owner.Token, "Recovers")
		broken := api.createProject(t, owner.Token, "Never recovers")
		mu.Lock()
		statuses[recovering.ID] = []int{500, 503}
		statuses[broken.ID] = []int{500, 500, 500, 500, 500}
		mu.Unlock()
		api.putWebhook(t, owner.Token, recovering.ID, hooks.receiver.url(hookHost, "/"+recovering.ID))
		api.putWebhook(t, owner.Token, broken.ID, hooks.receiver.url(hookHost, "/"+broken.ID))
		api.createTask(t, owner.Token, recovering.ID, "One")
		api.createTask(t, owner.Token, broken.ID, "Two")

		count := hooks.receiver.countFor
		api.deliver(t)
		api.deliver(t) // not due yet: the backoff has not passed
		if a, b := count(recovering.ID), count(broken.ID); a != 1 || b != 1 {
			t.Fatalf("after the first round: %d and %d attempts, want 1 and 1", a, b)
		}
		retry := func() { clk.advance(time.Minute + time.Second); api.deliver(t) }
		retry()
		retry()
		retry()
		retry()
		if a, b := count(recovering.ID), count(broken.ID); a != 3 || b != 3 {
			t.Fatalf("after the retries: %d and %d attempts, want 3 (500, 503, 200) and 3 (the limit)", a, b)
		}
		check := func(projectID string, want []int, wantClass []string) {
			log := api.attempts(t, owner.Token, projectID)
			if len(log) != len(want) {
				t.Fatalf("log has %d attempts, want %d", len(log), len(want))
			}
			for i, a := range log {
				class := ""
				if a.ErrorClass != nil {
					class = *a.ErrorClass
				}
				if a.Attempt != i+1 || a.StatusCode == nil || *a.StatusCode != want[i] || class != wantClass[i] {
					t.Errorf("attempt %d: %+v, want status %d class %q", i+1, a, want[i], wantClass[i])
				}
			}
		}
		check(recovering.ID, []int{500, 503, 200}, []string{outbound.ClassStatus, outbound.ClassStatus, ""})
		check(broken.ID, []int{500, 500, 500}, []string{outbound.ClassStatus, outbound.ClassStatus, outbound.ClassStatus})
		if n := api.countRows(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE project_id = ? AND state = 'failed'`, broken.ID); n != 1 {
			t.Errorf("the exhausted delivery is not marked failed (%d)", n)
		}
	})
}

// clocks maps a test API's dispatcher to its clock.
var clocks sync.Map

// TestWebhookCircuitBreaker: after repeated failures the destination's
// circuit opens: pings fail fast without contacting it, and queued
// deliveries wait without spending attempts.
func TestWebhookCircuitBreaker(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	hooks.receiver.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	o := hooks.options(false)
	o.Breaker = outbound.BreakerOptions{Failures: 2, OpenFor: time.Hour}
	eachAPIWith(t, withWebhooks(t, o, models.WebhookConfig{}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "Flaky receiver")
		// Each dialect's API gets its own destination (path differs, host
		// and port are the same): count by project.
		api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, "/"+p.ID))
		hits := func() int { return hooks.receiver.countFor(p.ID) }
		for i := range 2 {
			rec := api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "")
			expectStatus(t, rec, http.StatusBadGateway, "ping a failing receiver")
			if d := problemOf(t, rec).Detail; !strings.Contains(d, "503") {
				t.Errorf("ping %d: detail %q does not give the receiver's status", i+1, d)
			}
		}
		rec := api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "")
		expectStatus(t, rec, http.StatusBadGateway, "ping with the circuit open")
		if d := problemOf(t, rec).Detail; !strings.Contains(d, "paused") {
			t.Errorf("detail %q does not say deliveries are paused", d)
		}
		if n := hits(); n != 2 {
			t.Errorf("receiver contacted %d times, want 2 (the circuit opens after 2 failures)", n)
		}
		if n := api.countRows(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE project_id = ? AND event = 'ping' AND state = 'pending'`, p.ID); n != 0 {
			t.Errorf("%d pings were left queued for a retry; a ping is never retried", n)
		}
		api.createTask(t, owner.Token, p.ID, "Waits for the circuit")
		api.deliver(t)
		if n := hits(); n != 2 {
			t.Errorf("a queued delivery reached the receiver through an open circuit (%d hits)", n)
		}
		if n := api.countRows(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE project_id = ? AND state = 'pending' AND attempts = 0`, p.ID); n != 1 {
			t.Errorf("the delivery spent an attempt on an open circuit (pending with 0 attempts: %d)", n)
		}
	})
}

// TestWebhookUntrustedResponses: a receiver's answer is untrusted. A
// redirect (to an internal address), a huge or endless body, a slow body
// and a DNS answer that changed to loopback after registration all end as
// 502 within the client's time limit; nothing of a receiver's body reaches
// the client or the log.
func TestWebhookUntrustedResponses(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	internal := newTestReceiver(t) // what a redirect points at
	const canary = "RECEIVER-BODY-CANARY-7f3a"
	hooks.receiver.setRespond(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/redirect"):
			http.Redirect(w, r, internal.srv.URL+"/latest/meta-data/", http.StatusFound)
		case strings.HasSuffix(r.URL.Path, "/huge"):
			chunk := []byte(strings.Repeat("A", 1<<20))
			for range 50 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case strings.HasSuffix(r.URL.Path, "/endless"):
			chunk := []byte(strings.Repeat("B", 64<<10))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case strings.HasSuffix(r.URL.Path, "/slow"):
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		case strings.HasSuffix(r.URL.Path, "/error-body"):
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(canary))
		default:
			_, _ = w.Write([]byte(canary))
		}
	})
	// Every path is the same destination: the breaker must not open here
	// (TestWebhookCircuitBreaker tests it).
	o := hooks.options(false)
	o.Breaker = outbound.BreakerOptions{Failures: 1000}
	// The redirect target is allowed: only the no-redirect rule keeps the
	// client away from it.
	o.Ports = append(o.Ports, internal.port())
	eachAPIWith(t, withWebhooks(t, o, models.WebhookConfig{}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		ping := func(path string) (int, string, time.Duration) {
			p := api.createProject(t, owner.Token, "Receiver "+path)
			api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, path))
			start := time.Now()
			rec := api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "")
			return rec.Code, rec.Body.String(), time.Since(start)
		}
		for _, path := range []string{"/redirect", "/huge", "/endless", "/slow", "/error-body"} {
			code, body, took := ping(path)
			if code != http.StatusBadGateway {
				t.Errorf("%s: %d, want 502: %s", path, code, truncate(body))
			}
			// The client's limit is 2 s; far less than the receiver's 30 s stall.
			if took > 15*time.Second {
				t.Errorf("%s: took %v, the time limit did not hold", path, took)
			}
			if strings.Contains(body, canary) || strings.Contains(body, "AAAA") || strings.Contains(body, "BBBB") {
				t.Errorf("%s: the receiver's body reached the client: %s", path, truncate(body))
			}
		}
		if n := len(internal.received()); n != 0 {
			t.Errorf("the redirect target was contacted %d times", n)
		}
		code, body, _ := ping("/fine")
		if code != http.StatusOK || strings.Contains(body, canary) {
			t.Errorf("a 200 ping: %d %s (the receiver's body must not be relayed)", code, body)
		}
		if strings.Contains(api.logs.String(), canary) {
			t.Error("a receiver's body reached the log")
		}

	})
}

// TestWebhookDNSRebinding: a host that resolved to a public address at
// registration and to loopback at delivery is refused when the delivery
// connects (the production policy: no test allowlist), although the
// receiver there would answer and its certificate would verify.
func TestWebhookDNSRebinding(t *testing.T) {
	t.Parallel()
	// Each dialect's API has a DNS server of its own: the test changes
	// its answers.
	var envs sync.Map
	eachAPIWith(t, func(d *Deps) {
		hooks := newHookEnv(t)
		envs.Store(d.DB, hooks)
		d.Webhooks = webhookDeps(t, d.DB, hooks.options(true), models.WebhookConfig{})
		d.Changes = d.Webhooks.Dispatcher
	}, func(t *testing.T, api *testAPI) {
		h, _ := envs.Load(api.db)
		hooks := h.(hookEnv)
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "Rebinding")
		hooks.dns.set(hookHost, "93.184.215.14")
		api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, "/"+p.ID))
		hooks.dns.set(hookHost, "127.0.0.1")
		rec := api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "")
		expectStatus(t, rec, http.StatusBadGateway, "ping after the DNS answer changed to loopback")
		api.createTask(t, owner.Token, p.ID, "Delivered to loopback?")
		api.deliver(t)
		for _, g := range hooks.receiver.received() {
			if strings.Contains(string(g.body), p.ID) {
				t.Errorf("a delivery reached the loopback receiver after rebinding: %s", g.body)
			}
		}
		log := api.attempts(t, owner.Token, p.ID)
		if len(log) != 2 || log[0].ErrorClass == nil || *log[0].ErrorClass != outbound.ClassRefused {
			t.Errorf("delivery log %+v, want two attempts refused at dial time", log)
		}
	})
}

// TestWebhookTestOneAtATime: a user's test pings run one at a time; a
// second one while the first waits on a slow receiver is 429.
func TestWebhookTestOneAtATime(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	release := make(chan struct{})
	hooks.receiver.setRespond(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})
	o := hooks.options(false)
	o.Timeout = 20 * time.Second
	api := newTestAPIWith(t, dbtest.Open(t, models.SQLite), withWebhooks(t, o, models.WebhookConfig{}))
	owner := api.signUp(t)
	p := api.createProject(t, owner.Token, "Slow receiver")
	api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, "/"+p.ID))
	first := make(chan int)
	go func() {
		first <- api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "").Code
	}()
	// Wait until the first ping is at the receiver.
	for len(hooks.receiver.received()) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	rec := api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, "")
	expectStatus(t, rec, http.StatusTooManyRequests, "a second ping while the first runs")
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first ping: %d", code)
	}
	expectStatus(t, api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, ""), http.StatusOK, "a ping after the first ended")
}

// TestWebhookQueueIsDurable: deliveries are rows before anything is sent:
// another dispatcher (a restart, or another instance) sends them, and two
// dispatchers working one queue send each delivery exactly once.
func TestWebhookQueueIsDurable(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	eachAPIWith(t, withWebhooks(t, hooks.options(false), models.WebhookConfig{Workers: 2}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "Durable")
		api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, "/"+p.ID))
		const n = 12
		for i := range n {
			api.createTask(t, owner.Token, p.ID, "Task "+strconv.Itoa(i))
		}
		// Two fresh dispatchers over the same database, as after a restart
		// with two instances; the API's own never runs.
		client, err := outbound.New(hooks.options(false))
		if err != nil {
			t.Fatal(err)
		}
		var ds []*models.WebhookDispatcher
		for range 2 {
			ds = append(ds, models.NewWebhookDispatcher(api.db, api.webhooks.Sealer, client, models.WebhookConfig{Workers: 2}))
		}
		for round := 0; round < 20 && api.countRows(t, `SELECT COUNT(*) FROM webhook_deliveries WHERE project_id = ? AND state = 'pending'`, p.ID) > 0; round++ {
			var wg sync.WaitGroup
			for _, d := range ds {
				wg.Go(func() { d.RunOnce(context.Background(), nil); d.Wait() })
			}
			wg.Wait()
		}
		seen := map[string]int{}
		for _, g := range hooks.receiver.received() {
			var pl payloadJSON
			if json.Unmarshal(g.body, &pl) == nil && pl.ProjectID == p.ID {
				seen[pl.ID]++
			}
		}
		if len(seen) != n {
			t.Errorf("%d distinct deliveries received, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("delivery %s received %d times", id, c)
			}
		}
	})
}

// TestWebhookDeleteDropsPending: removing a webhook drops what was not yet
// sent; nothing goes to the old URL afterwards.
func TestWebhookDeleteDropsPending(t *testing.T) {
	t.Parallel()
	hooks := newHookEnv(t)
	eachAPIWith(t, withWebhooks(t, hooks.options(false), models.WebhookConfig{}), func(t *testing.T, api *testAPI) {
		owner := api.signUp(t)
		p := api.createProject(t, owner.Token, "Unhooked")
		api.putWebhook(t, owner.Token, p.ID, hooks.receiver.url(hookHost, "/"+p.ID))
		api.createTask(t, owner.Token, p.ID, "Queued")
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+p.ID+"/webhook", owner.Token, ""), http.StatusNoContent, "delete webhook")
		api.createTask(t, owner.Token, p.ID, "Not queued")
		api.deliver(t)
		for _, g := range hooks.receiver.received() {
			if strings.Contains(string(g.body), p.ID) {
				t.Errorf("a delivery went out after the webhook was deleted: %s", g.body)
			}
		}
		expectStatus(t, api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/webhook/test", owner.Token, ""), http.StatusNotFound, "ping without a webhook")
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+p.ID+"/webhook", owner.Token, ""), http.StatusNotFound, "delete again")
	})
}

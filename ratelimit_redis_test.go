package main

// End-to-end tests of the rate limits shared through Redis: complete API
// instances (handlers.New, each with its own rate limiter and its own
// go-redis client, as separate processes would have) in front of one Redis
// and one database. They live here, in the command's package, because
// only a package outside handlers/middleware may import both handlers and
// the Redis test support; nothing of the command is used.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/handlers"
	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/middleware/redistest"
	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
	"github.com/rampart-go/rampart/models/outbound"
)

const e2ePassword = "correct horse battery staple"

// sharedLimits are the default policies with every rate out of reach
// except the ones a test sets.
func sharedLimits() middleware.Limits {
	l := middleware.DefaultLimits()
	for _, lim := range []*middleware.Limit{&l.IP, &l.User, &l.LoginIP, &l.RegisterIP} {
		lim.Rate = 1_000_000
	}
	l.APIKeyMax = 1_000_000
	return l
}

// recorder is a slog handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records of level have a message containing text.
func (h *recorder) count(level slog.Level, text string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && strings.Contains(r.Message, text) {
			n++
		}
	}
	return n
}

// instance is one complete API instance.
type instance struct {
	e        *echo.Echo
	rl       *middleware.RateLimiter
	reg      *prometheus.Registry
	logs     *recorder
	db       *models.DB
	accounts *models.Accounts
}

// migratedURL returns a fresh, migrated database of dialect d.
func migratedURL(tb testing.TB, d models.Dialect) models.DatabaseURL {
	tb.Helper()
	u := dbtest.URL(tb, d)
	mg, err := models.NewMigrator(u, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	defer mg.Close()
	if err := mg.Up(); err != nil {
		tb.Fatal(err)
	}
	return u
}

// newInstance builds an API instance with its own connection pool to the
// database at u, its own accounts service and hasher, and its own rate
// limiter on client (nil: memory) under prefix.
func newInstance(tb testing.TB, u models.DatabaseURL, client redis.UniversalClient, prefix string, limits middleware.Limits, retry time.Duration) *instance {
	return newInstanceWith(tb, u, client, prefix, limits, retry, nil)
}

// newInstanceWith is newInstance with a hook that sees the instance's
// database before the API is built on it.
func newInstanceWith(tb testing.TB, u models.DatabaseURL, client redis.UniversalClient, prefix string, limits middleware.Limits, retry time.Duration, setup func(*models.DB)) *instance {
	tb.Helper()
	ctx := context.Background()
	db, err := models.OpenDB(ctx, u)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if setup != nil {
		setup(db)
	}
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	accounts, err := models.NewAccounts(ctx, db, models.AccountsConfig{
		Hasher: models.NewPasswordHasher(models.DefaultArgon2Params), Policy: policy})
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cursors, err := models.NewCursorCodec(key)
	if err != nil {
		tb.Fatal(err)
	}
	logs := &recorder{}
	log := slog.New(logs)
	reg := prometheus.NewRegistry()
	cfg := middleware.RateLimiterConfig{KeyPrefix: prefix, RetryRedisAfter: retry, Logger: log, Registerer: reg}
	if client != nil {
		cfg.Redis = client
	}
	rl, err := middleware.NewRateLimiter(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := models.NewKeyRing(key, nil)
	if err != nil {
		tb.Fatal(err)
	}
	webhooks, err := handlers.NewWebhookDeps(db, ring, outbound.Options{}, models.WebhookConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := handlers.New(handlers.Deps{DB: db, Accounts: accounts, Cursors: cursors, Logger: log,
		Version: "test", RateLimiter: rl, Limits: limits, Webhooks: webhooks})
	if err != nil {
		tb.Fatal(err)
	}
	return &instance{e: e, rl: rl, reg: reg, logs: logs, db: db, accounts: accounts}
}

// do sends one request from the client address ip.
func (in *instance) do(method, target, ip, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	r.RemoteAddr = ip + ":40000"
	w := httptest.NewRecorder()
	in.e.ServeHTTP(w, r)
	return w
}

func (in *instance) healthz(ip string) int { return in.do(http.MethodGet, "/healthz", ip, "").Code }

func (in *instance) login(ip, email, password string) *httptest.ResponseRecorder {
	return in.do(http.MethodPost, "/v1/auth/login", ip, fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
}

func (in *instance) register(ip, email string) *httptest.ResponseRecorder {
	return in.do(http.MethodPost, "/v1/auth/register", ip,
		fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"E2E"}`, email, e2ePassword))
}

func (in *instance) counter(tb testing.TB, name string) float64 {
	tb.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// wantRefused checks a refusal: status, a positive Retry-After and a
// problem+json body of the given type naming policy (if not empty).
func wantRefused(tb testing.TB, w *httptest.ResponseRecorder, status int, problemType, policy, what string) {
	tb.Helper()
	if w.Code != status {
		tb.Errorf("%s: status %d, want %d; body %s", what, w.Code, status, w.Body)
		return
	}
	if s, err := strconv.Atoi(w.Header().Get(echo.HeaderRetryAfter)); err != nil || s <= 0 {
		tb.Errorf("%s: Retry-After %q, want a positive number of seconds", what, w.Header().Get(echo.HeaderRetryAfter))
	}
	if ct := w.Header().Get(echo.HeaderContentType); !strings.HasPrefix(ct, handlers.MIMEProblemJSON) {
		tb.Errorf("%s: Content-Type %q", what, ct)
	}
	var p struct {
		Type     string   `json:"type"`
		Status   int      `json:"status"`
		Policies []string `json:"violated-policies"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != status {
		tb.Errorf("%s: body %s (%v)", what, w.Body, err)
	}
	if problemType != "" && p.Type != problemType {
		tb.Errorf("%s: problem type %q, want %q", what, p.Type, problemType)
	}
	if policy != "" && (len(p.Policies) != 1 || p.Policies[0] != policy) {
		tb.Errorf("%s: violated-policies %q, want [%q]", what, p.Policies, policy)
	}
}

// TestTwoInstancesShareOneRedisBudget: two instances, each with its own
// limiter and its own Redis client, sharing one Redis (same prefix) and one
// database, enforce one combined budget per client IP and one failed-login
// count per account. Two instances on memory limiters, as a control, do
// not: that is what Redis is for.
func TestTwoInstancesShareOneRedisBudget(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			u := migratedURL(t, d)
			prefix := redistest.Prefix(t)
			limits := sharedLimits()
			limits.IP = middleware.Limit{Name: "ip", Rate: 10, Period: time.Minute}
			a := newInstance(t, u, redistest.NewClient(t), prefix, limits, 0)
			b := newInstance(t, u, redistest.NewClient(t), prefix, limits, 0)

			t.Run("per-IP budget", func(t *testing.T) {
				const ip = "203.0.113.50"
				ok := 0
				for i, in := range []*instance{a, a, a, a, a, a, b, b, b, b, b, b} {
					w := in.do(http.MethodGet, "/healthz", ip, "")
					switch w.Code {
					case http.StatusOK:
						ok++
					default:
						wantRefused(t, w, http.StatusTooManyRequests, middleware.ProblemTypeRateLimited, "ip", fmt.Sprintf("request %d", i+1))
					}
				}
				if ok != 10 {
					t.Errorf("%d of 12 requests (6 to A, then 6 to B) succeeded, want the combined budget of 10", ok)
				}
				// Another client has its own budget on both instances.
				if a.healthz("203.0.113.51") != http.StatusOK || b.healthz("203.0.113.51") != http.StatusOK {
					t.Error("another client IP was refused")
				}
			})

			t.Run("control: memory limiters do not share", func(t *testing.T) {
				ma := newInstance(t, u, nil, "", limits, 0)
				mb := newInstance(t, u, nil, "", limits, 0)
				ok := 0
				for _, in := range []*instance{ma, ma, ma, ma, ma, ma, mb, mb, mb, mb, mb, mb} {
					if in.healthz("203.0.113.52") == http.StatusOK {
						ok++
					}
				}
				if ok != 12 {
					t.Errorf("%d of 12 succeeded on two memory limiters, want 12 (10 per instance)", ok)
				}
			})

			t.Run("login lock-out", func(t *testing.T) {
				email := "shared-lockout-" + string(d) + "@example.com"
				if w := a.register("203.0.113.60", email); w.Code != http.StatusCreated {
					t.Fatalf("register: %d %s", w.Code, w.Body)
				}
				// Five failures in all, spread over both instances and two
				// addresses.
				for i, in := range []*instance{a, b, a, b, a} {
					ip := fmt.Sprintf("203.0.113.%d", 61+i%2)
					if w := in.login(ip, email, "wrong password, try "+strconv.Itoa(i)); w.Code != http.StatusUnauthorized {
						t.Fatalf("failure %d: status %d, want 401; %s", i+1, w.Code, w.Body)
					}
				}
				// Now the account is locked out on both, from any address,
				// whatever the password.
				wantRefused(t, a.login("203.0.113.61", email, e2ePassword), http.StatusTooManyRequests,
					middleware.ProblemTypeRateLimited, "login-account", "right password on A")
				wantRefused(t, b.login("203.0.113.99", email, e2ePassword), http.StatusTooManyRequests,
					middleware.ProblemTypeRateLimited, "login-account", "right password on B from a new address")
				// Clearing the count on one instance (what an admin's unlock
				// does) clears it for both.
				if err := a.rl.ResetFailures(context.Background(), models.EmailKey(email)); err != nil {
					t.Fatal(err)
				}
				if w := b.login("203.0.113.61", email, e2ePassword); w.Code != http.StatusOK {
					t.Errorf("login on B after the reset: %d %s", w.Code, w.Body)
				}
			})
		})
	}
}

// TestRedisOutageEndToEnd: instance A reaches Redis through a proxy the test
// cuts and restores; instance B reaches it directly. While A is cut off,
// its general limits fall back to its own memory (requests still succeed,
// and are still limited), its login and registration answer 503 with
// Retry-After, the outage is logged once and counted; once the proxy is
// restored, A's decisions go to Redis again by themselves, and A and B
// share one budget again.
func TestRedisOutageEndToEnd(t *testing.T) {
	u := migratedURL(t, models.SQLite)
	direct := redistest.NewClient(t)
	prefix := redistest.Prefix(t)
	proxy := redistest.NewProxy(t, direct.Options().Addr)
	opts := redistest.Options(t)
	opts.Addr = proxy.Addr()
	limits := sharedLimits()
	limits.IP = middleware.Limit{Name: "ip", Rate: 5, Period: time.Minute}
	a := newInstance(t, u, redistest.NewClientWith(t, opts), prefix, limits, 50*time.Millisecond)
	b := newInstance(t, u, direct, prefix, limits, 0)
	const email = "outage@example.com"
	if w := a.register("198.51.100.200", email); w.Code != http.StatusCreated {
		t.Fatalf("register with Redis up: %d %s", w.Code, w.Body)
	}

	proxy.Cut()
	requests := 0 // requests sent to A while Redis is cut off
	// General limits: this instance's memory decides, and still limits.
	for i := range limits.IP.Rate {
		requests++
		if code := a.healthz("198.51.100.1"); code != http.StatusOK {
			t.Fatalf("request %d with Redis down: %d, want 200 from the memory fallback", i+1, code)
		}
	}
	requests++
	wantRefused(t, a.do(http.MethodGet, "/healthz", "198.51.100.1", ""), http.StatusTooManyRequests,
		middleware.ProblemTypeRateLimited, "ip", "past the rate with Redis down")
	// Login and registration fail closed.
	requests += 2
	wantRefused(t, a.login("198.51.100.2", email, e2ePassword), http.StatusServiceUnavailable, "", "", "login with Redis down")
	wantRefused(t, a.register("198.51.100.3", "new-"+email), http.StatusServiceUnavailable, "", "", "registration with Redis down")
	// B, which reaches Redis, is not affected.
	if w := b.login("198.51.100.2", email, e2ePassword); w.Code != http.StatusOK {
		t.Errorf("login on B during A's outage: %d %s", w.Code, w.Body)
	}
	// A retries Redis (every 50 ms) several times: one log line.
	for ip := 10; proxy.Refused() < 3; ip++ {
		if ip > 20000 {
			t.Fatal("A did not retry Redis")
		}
		requests++
		a.healthz(fmt.Sprintf("198.51.%d.%d", 101+ip/250, ip%250))
		time.Sleep(2 * time.Millisecond)
	}
	if got := a.logs.count(slog.LevelError, "rate-limit store"); got != 1 {
		t.Errorf("%d error lines for one outage, want 1", got)
	}
	for name, want := range map[string]float64{
		"rampart_ratelimit_fallback_total":     float64(requests), // the global per-IP limit of every request
		"rampart_ratelimit_fail_closed_total":  2,                 // the login and the registration
		"rampart_ratelimit_store_errors_total": float64(requests + 2),
	} {
		if got := a.counter(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	proxy.Restore()
	// Poll until a request of A is decided in Redis: the fallback counter
	// then stays put.
	probe := 0
	decidedInRedis := func() bool {
		probe++
		before := a.counter(t, "rampart_ratelimit_fallback_total")
		a.healthz(fmt.Sprintf("192.0.2.%d", probe%250))
		return a.counter(t, "rampart_ratelimit_fallback_total") == before
	}
	deadline := time.Now().Add(20 * time.Second)
	for !decidedInRedis() {
		if time.Now().After(deadline) {
			t.Fatal("A's decisions did not go back to Redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := a.logs.count(slog.LevelInfo, "answers again"); got != 1 {
		t.Errorf("%d lines saying Redis answers again, want 1", got)
	}
	// One budget again: 3 requests to A and 3 to B from a new client.
	ok := 0
	for _, in := range []*instance{a, a, a, b, b, b} {
		if in.healthz("198.51.100.77") == http.StatusOK {
			ok++
		}
	}
	if ok != limits.IP.Rate {
		t.Errorf("after recovery %d of 6 requests over A and B succeeded, want the shared %d", ok, limits.IP.Rate)
	}
	// And A's login works again.
	if w := a.login("198.51.100.2", email, e2ePassword); w.Code != http.StatusOK {
		t.Errorf("login on A after recovery: %d %s", w.Code, w.Body)
	}
	if got := a.logs.count(slog.LevelError, "rate-limit store"); got != 1 {
		t.Errorf("%d error lines in all, want 1", got)
	}
}

package middleware_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/middleware/redistest"
	"github.com/rampart-go/rampart/models"
)

// limiterStore is one of the two stores a RateLimiter can keep its state
// in: this process's memory, or Redis (TEST_REDIS_URL) under a key prefix
// of the test's own.
type limiterStore struct {
	name   string
	client *redis.Client // nil: memory
	prefix string
}

// eachStore runs fn once per store. The Redis half is skipped with a
// message when TEST_REDIS_URL is unset, and fails in CI.
func eachStore(t *testing.T, fn func(t *testing.T, st limiterStore)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		fn(t, limiterStore{name: "memory"})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		fn(t, limiterStore{name: "redis", client: redistest.NewClient(t), prefix: redistest.Prefix(t)})
	})
}

// limiter builds a limiter on the store; cfg may set everything else.
func (st limiterStore) limiter(tb testing.TB, cfg middleware.RateLimiterConfig) *middleware.RateLimiter {
	tb.Helper()
	if st.client != nil {
		cfg.Redis, cfg.KeyPrefix = st.client, st.prefix
	}
	rl, err := middleware.NewRateLimiter(cfg)
	if err != nil {
		tb.Fatalf("NewRateLimiter: %v", err)
	}
	return rl
}

func allow(tb testing.TB, rl *middleware.RateLimiter, key string, l middleware.Limit) middleware.Decision {
	tb.Helper()
	d, err := rl.Allow(context.Background(), key, l, middleware.FailOpen)
	if err != nil {
		tb.Fatalf("Allow(%q, %s): %v", key, l.Name, err)
	}
	return d
}

// counter reads a counter of reg; labels select one series of a vector.
func counter(tb testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// logRecorder is a slog handler that keeps every record, for counting.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records of level were logged.
func (h *logRecorder) count(level slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level {
			n++
		}
	}
	return n
}

func (h *logRecorder) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// eventually polls cond until it holds, failing after a generous time. It
// is a wait, not a measurement: nothing asserts how long it took.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRateLimiterGCRA(t *testing.T) {
	eachStore(t, func(t *testing.T, st limiterStore) {
		reg := prometheus.NewRegistry()
		rl := st.limiter(t, middleware.RateLimiterConfig{Registerer: reg})
		if rl.Shared() != (st.client != nil) {
			t.Errorf("Shared() = %v on the %s store", rl.Shared(), st.name)
		}
		l := middleware.Limit{Name: "test", Rate: 5, Period: time.Minute}

		// The whole rate is available as a burst, counting down.
		for i := range l.Rate {
			d := allow(t, rl, "client-a", l)
			if !d.Allowed || d.Remaining != l.Rate-1-i || d.Limit != l {
				t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, l.Rate-1-i)
			}
			if d.RetryAfter != 0 || d.Reset <= 0 || d.Reset > l.Period {
				t.Errorf("request %d: RetryAfter %v, Reset %v; want 0 and within (0, %v]", i+1, d.RetryAfter, d.Reset, l.Period)
			}
		}
		// Then it is refused, with when to retry and when it is full again.
		for range 3 {
			d := allow(t, rl, "client-a", l)
			if d.Allowed || d.Remaining != 0 {
				t.Fatalf("past the rate: %+v, want refused with 0 remaining", d)
			}
			if d.RetryAfter <= 0 || d.RetryAfter > l.Period || d.Reset <= 0 || d.Reset > l.Period {
				t.Errorf("refused: RetryAfter %v, Reset %v; want both within (0, %v]", d.RetryAfter, d.Reset, l.Period)
			}
			// GCRA: the next request is one emission interval (Period/Rate)
			// away, not the whole period.
			if d.RetryAfter > l.Period/time.Duration(l.Rate) {
				t.Errorf("refused: RetryAfter %v is more than one emission interval (%v)", d.RetryAfter, l.Period/time.Duration(l.Rate))
			}
		}
		if got := counter(t, reg, "rampart_ratelimit_denied_total", "policy", "test"); got != 3 {
			t.Errorf("denied_total{policy=test} = %v, want 3", got)
		}

		// Another key, and the same key under another policy name, have
		// budgets of their own.
		if d := allow(t, rl, "client-b", l); !d.Allowed || d.Remaining != l.Rate-1 {
			t.Errorf("another key: %+v, want a full budget", d)
		}
		other := middleware.Limit{Name: "other", Rate: 5, Period: time.Minute}
		if d := allow(t, rl, "client-a", other); !d.Allowed || d.Remaining != other.Rate-1 {
			t.Errorf("another policy, same key: %+v, want a full budget", d)
		}
		// A healthy store decides fail-closed limits the same way.
		if d, err := rl.Allow(context.Background(), "client-a", l, middleware.FailClosed); err != nil || d.Allowed {
			t.Errorf("fail-closed decision on a healthy store: %+v, %v; want refused, no error", d, err)
		}
		if got := counter(t, reg, "rampart_ratelimit_store_errors_total"); got != 0 {
			t.Errorf("store_errors_total = %v on a healthy store", got)
		}
	})
}

// TestRateLimiterRefills: GCRA admits again after the emission interval.
// The test waits for it (polling), it does not time it.
func TestRateLimiterRefills(t *testing.T) {
	eachStore(t, func(t *testing.T, st limiterStore) {
		rl := st.limiter(t, middleware.RateLimiterConfig{})
		l := middleware.Limit{Name: "refill", Rate: 2, Period: 200 * time.Millisecond}
		allow(t, rl, "k", l)
		allow(t, rl, "k", l)
		if d := allow(t, rl, "k", l); d.Allowed {
			t.Fatalf("third request: %+v, want refused", d)
		}
		eventually(t, "the limit to admit again", func() bool { return allow(t, rl, "k", l).Allowed })
	})
}

func TestLoginFailures(t *testing.T) {
	eachStore(t, func(t *testing.T, st limiterStore) {
		ctx := context.Background()
		rl := st.limiter(t, middleware.RateLimiterConfig{})
		const account = "alice@example.com"
		window := 15 * time.Minute

		if n, left, err := rl.Failures(ctx, account); err != nil || n != 0 || left != 0 {
			t.Fatalf("fresh account: %d, %v, %v", n, left, err)
		}
		n, first, err := rl.AddFailure(ctx, account, window)
		if err != nil || n != 1 || first <= 0 || first > window {
			t.Fatalf("first failure: %d, %v, %v; want 1 and a window within (0, %v]", n, first, err, window)
		}
		// The window runs from the first failure: later failures do not
		// extend it. (The pause only guarantees that time has passed.)
		time.Sleep(20 * time.Millisecond)
		for i := 2; i <= 4; i++ {
			n, left, err := rl.AddFailure(ctx, account, window)
			if err != nil || n != i {
				t.Fatalf("failure %d: %d, %v", i, n, err)
			}
			if left > first-10*time.Millisecond {
				t.Errorf("failure %d: %v left, but %v were left at the first failure 20 ms earlier: the window was extended", i, left, first)
			}
		}
		n, left, err := rl.Failures(ctx, account)
		if err != nil || n != 4 || left <= 0 || left >= first {
			t.Errorf("Failures: %d, %v, %v; want 4 and less than %v left", n, left, err, first)
		}
		// Accounts are counted apart.
		if n, _, err := rl.Failures(ctx, "bob@example.com"); err != nil || n != 0 {
			t.Errorf("another account: %d, %v", n, err)
		}
		if err := rl.ResetFailures(ctx, account); err != nil {
			t.Fatal(err)
		}
		if n, left, err := rl.Failures(ctx, account); err != nil || n != 0 || left != 0 {
			t.Errorf("after ResetFailures: %d, %v, %v", n, left, err)
		}
		if n, _, err := rl.AddFailure(ctx, account, window); err != nil || n != 1 {
			t.Errorf("first failure after the reset: %d, %v; want 1", n, err)
		}
		if err := rl.ResetFailures(ctx, "never-failed@example.com"); err != nil {
			t.Errorf("ResetFailures of a clean account: %v", err)
		}
	})
}

// TestLoginFailureWindowEnds: when the window has passed the count is
// gone, and the next failure opens a new window. Redis keeps whole seconds
// (EXPIRE), so the window is one second; the test polls for its end.
func TestLoginFailureWindowEnds(t *testing.T) {
	eachStore(t, func(t *testing.T, st limiterStore) {
		ctx := context.Background()
		rl := st.limiter(t, middleware.RateLimiterConfig{})
		const account = "carol@example.com"
		for range 3 {
			if _, _, err := rl.AddFailure(ctx, account, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if n, _, err := rl.Failures(ctx, account); err != nil || n != 3 {
			t.Fatalf("Failures: %d, %v; want 3", n, err)
		}
		eventually(t, "the failure window to end", func() bool {
			n, _, err := rl.Failures(ctx, account)
			if err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
		if n, left, err := rl.AddFailure(ctx, account, time.Second); err != nil || n != 1 || left <= 0 {
			t.Errorf("first failure of a new window: %d, %v, %v", n, left, err)
		}
	})
}

// TestLoginFailureKeysHoldNoEmail: what Redis stores for an account is
// keyed by the SHA-256 of the address; the address itself is nowhere in
// Redis, neither in a key nor in a value.
func TestLoginFailureKeysHoldNoEmail(t *testing.T) {
	ctx := context.Background()
	client, prefix := redistest.NewClient(t), redistest.Prefix(t)
	rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: client, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const account = "dave.secret@example.org"
	for range 2 {
		if _, _, err := rl.AddFailure(ctx, account, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rl.Allow(ctx, "198.51.100.7", middleware.Limit{Name: "login-ip", Rate: 20, Period: time.Minute}, middleware.FailClosed); err != nil {
		t.Fatal(err)
	}
	keys := redistest.Keys(t, client, prefix)
	if len(keys) != 2 {
		t.Fatalf("keys under the prefix: %q, want one for the failures and one for the IP limit", keys)
	}
	sum := sha256.Sum256([]byte(account))
	hashed := false
	for _, k := range keys {
		for _, part := range []string{"dave", "secret", "example.org"} {
			if strings.Contains(k, part) {
				t.Errorf("Redis key %q holds part of the e-mail address", k)
			}
		}
		if strings.Contains(k, hex.EncodeToString(sum[:])) {
			hashed = true
		}
		if typ := client.Type(ctx, k).Val(); typ == "string" {
			if v := client.Get(ctx, k).Val(); strings.Contains(v, "dave") || strings.Contains(v, "example") {
				t.Errorf("value of %q holds the e-mail address: %q", k, v)
			}
		}
	}
	if !hashed {
		t.Errorf("no key is named by the SHA-256 of the account: %q", keys)
	}
	if n, _, err := rl.Failures(ctx, account); err != nil || n != 2 {
		t.Errorf("Failures: %d, %v", n, err)
	}
}

// TestRateLimiterSharesStateThroughRedis: two limiters, each with its own
// client (as two instances would have), and the same prefix enforce one
// budget and one failure count.
func TestRateLimiterSharesStateThroughRedis(t *testing.T) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	newLimiter := func() *middleware.RateLimiter {
		rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: redistest.NewClient(t), KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	a, b := newLimiter(), newLimiter()
	l := middleware.Limit{Name: "ip", Rate: 10, Period: time.Minute}
	allowed := 0
	for _, rl := range []*middleware.RateLimiter{a, a, a, a, a, a, b, b, b, b, b, b} {
		if allow(t, rl, "203.0.113.9", l).Allowed {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("%d of 12 requests through two limiters allowed, want the shared 10", allowed)
	}
	for _, rl := range []*middleware.RateLimiter{a, b, a} {
		if _, _, err := rl.AddFailure(ctx, "erin@example.com", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := b.Failures(ctx, "erin@example.com"); err != nil || n != 3 {
		t.Errorf("failures seen by b: %d, %v; want 3", n, err)
	}
	if err := a.ResetFailures(ctx, "erin@example.com"); err != nil {
		t.Fatal(err)
	}
	if n, _, err := b.Failures(ctx, "erin@example.com"); err != nil || n != 0 {
		t.Errorf("failures seen by b after a's reset: %d, %v; want 0", n, err)
	}

	// A different prefix is a different deployment: nothing is shared.
	c, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: redistest.NewClient(t), KeyPrefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if d := allow(t, c, "203.0.113.9", l); !d.Allowed || d.Remaining != l.Rate-1 {
		t.Errorf("other prefix: %+v, want a full budget", d)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestRateLimiterRedisUnreachable: with Redis configured but unreachable,
// fail-open decisions come from this instance's memory (and are still
// limited), fail-closed ones and the login-failure count answer
// KindUnavailable with a Retry-After; each is counted; the outage is logged
// once however often Redis is retried meanwhile. Needs no Redis at all.
func TestRateLimiterRedisUnreachable(t *testing.T) {
	ctx := context.Background()
	var dials atomic.Int64
	client := redis.NewClient(&redis.Options{
		// One dial per command (go-redis dials 5 times by default) and a
		// pool too large for its dial breaker to engage: each retry of
		// Redis is then exactly one counted dial.
		Addr: closedPort(t), MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, PoolSize: 1000,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{
		Redis: client, RetryRedisAfter: 20 * time.Millisecond, Logger: slog.New(logs), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	var fallbacks, refusals, decisions float64

	// General limits: allowed from memory, and still limited.
	l := middleware.Limit{Name: "ip", Rate: 3, Period: time.Minute}
	for i := range l.Rate {
		if d := allow(t, rl, "192.0.2.1", l); !d.Allowed || d.Remaining != l.Rate-1-i {
			t.Fatalf("fail-open request %d with Redis down: %+v, want allowed from memory", i+1, d)
		}
	}
	if d := allow(t, rl, "192.0.2.1", l); d.Allowed || d.RetryAfter <= 0 {
		t.Errorf("past the rate with Redis down: %+v, want refused by the memory fallback", d)
	}
	fallbacks, decisions = 4, 4

	// Login and registration limits, and the failure count: fail closed.
	wantDown := func(what string, err error) {
		t.Helper()
		var e *models.Error
		if !errors.As(err, &e) || e.Kind != models.KindUnavailable || e.RetryAfter <= 0 {
			t.Errorf("%s with Redis down: %v, want KindUnavailable with a Retry-After", what, err)
		}
	}
	_, err = rl.Allow(ctx, "192.0.2.1", middleware.Limit{Name: "login-ip", Rate: 20, Period: time.Minute}, middleware.FailClosed)
	wantDown("fail-closed Allow", err)
	_, _, err = rl.Failures(ctx, "frank@example.com")
	wantDown("Failures", err)
	_, _, err = rl.AddFailure(ctx, "frank@example.com", time.Minute)
	wantDown("AddFailure", err)
	refusals, decisions = 3, decisions+3

	// Keep deciding while Redis is retried several times: still one log
	// line for the outage.
	for n := dials.Load(); dials.Load() < n+3; {
		allow(t, rl, fmt.Sprintf("192.0.2.%d", 10+int(decisions)), l)
		fallbacks++
		decisions++
		if decisions > 20000 {
			t.Fatal("Redis was not retried")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if got := logs.count(slog.LevelError); got != 1 {
		t.Errorf("%d error lines for one outage, want 1: %q", got, logs.messages())
	}
	for name, want := range map[string]float64{
		"rampart_ratelimit_fallback_total":     fallbacks,
		"rampart_ratelimit_fail_closed_total":  refusals,
		"rampart_ratelimit_store_errors_total": decisions,
	} {
		if got := counter(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestRateLimiterRecoversWhenRedisComesBack: instance A reaches Redis
// through a proxy the test cuts and restores; instance B reaches it
// directly. While the proxy is cut, A decides from its memory (logged once,
// counted); after it is restored, A's decisions go to Redis again by
// themselves (after RetryRedisAfter), which B can see; a second outage is
// logged again.
func TestRateLimiterRecoversWhenRedisComesBack(t *testing.T) {
	ctx := context.Background()
	direct := redistest.NewClient(t)
	prefix := redistest.Prefix(t)
	proxy := redistest.NewProxy(t, direct.Options().Addr)
	opts := redistest.Options(t)
	opts.Addr = proxy.Addr()
	logs := &logRecorder{}
	reg := prometheus.NewRegistry()
	a, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: redistest.NewClientWith(t, opts), KeyPrefix: prefix,
		RetryRedisAfter: 50 * time.Millisecond, Logger: slog.New(logs), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	b, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: direct, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	one := middleware.Limit{Name: "probe", Rate: 1, Period: time.Minute}
	// shared reports whether A's decision for a fresh key is in Redis: with
	// a rate of one, B is then refused the same key.
	probes := 0
	shared := func() bool {
		probes++
		key := fmt.Sprintf("probe-%d", probes)
		if !allow(t, a, key, one).Allowed {
			t.Fatalf("A refused the first request for %s", key)
		}
		return !allow(t, b, key, one).Allowed
	}

	if !shared() {
		t.Fatal("with Redis up, A's decision is not visible to B")
	}
	if n, _, err := a.AddFailure(ctx, "grace@example.com", time.Minute); err != nil || n != 1 {
		t.Fatalf("AddFailure with Redis up: %d, %v", n, err)
	}

	proxy.Cut()
	for range 3 {
		if shared() {
			t.Fatal("with the proxy cut, A's decision reached Redis")
		}
	}
	if _, _, err := a.Failures(ctx, "grace@example.com"); models.KindOf(err) != models.KindUnavailable {
		t.Errorf("Failures with Redis cut off: %v, want unavailable", err)
	}
	// Redis is retried (a refused connection) several times; one log line.
	eventually(t, "A to retry Redis three times", func() bool {
		shared()
		return proxy.Refused() >= 3
	})
	if got := logs.count(slog.LevelError); got != 1 {
		t.Errorf("%d error lines for one outage, want 1: %q", got, logs.messages())
	}
	if counter(t, reg, "rampart_ratelimit_fallback_total") < 4 || counter(t, reg, "rampart_ratelimit_fail_closed_total") != 1 {
		t.Errorf("fallback_total %v (want ≥ 4), fail_closed_total %v (want 1)",
			counter(t, reg, "rampart_ratelimit_fallback_total"), counter(t, reg, "rampart_ratelimit_fail_closed_total"))
	}

	proxy.Restore()
	eventually(t, "A's decisions to go to Redis again", shared)
	// The state kept in Redis during the outage is still there.
	if n, _, err := a.Failures(ctx, "grace@example.com"); err != nil || n != 1 {
		t.Errorf("Failures after recovery: %d, %v; want the 1 recorded before the outage", n, err)
	}
	if got := logs.count(slog.LevelInfo); got != 1 {
		t.Errorf("%d info lines after recovery, want 1 saying Redis answers again: %q", got, logs.messages())
	}
	before := counter(t, reg, "rampart_ratelimit_fallback_total")
	for range 5 {
		if !shared() {
			t.Fatal("after recovery, a decision of A did not reach Redis")
		}
	}
	if after := counter(t, reg, "rampart_ratelimit_fallback_total"); after != before {
		t.Errorf("fallback_total grew from %v to %v after recovery", before, after)
	}

	// A second outage is a new event and is logged again.
	proxy.Cut()
	eventually(t, "A to notice the second outage", func() bool { return !shared() })
	if got := logs.count(slog.LevelError); got != 2 {
		t.Errorf("%d error lines after two outages, want 2: %q", got, logs.messages())
	}
}

// TestRateLimiterCallerGoneIsNotAnOutage: a request whose context ends
// while Redis is asked (the client hung up, or its deadline passed) is
// answered with an error, but Redis is not marked down: otherwise any
// client could switch every other client's login limits to 503 and the
// general limits to per-instance memory by hanging up. And a failed login
// is counted even when its client has hung up, so hanging up before the
// answer does not escape the per-account count.
func TestRateLimiterCallerGoneIsNotAnOutage(t *testing.T) {
	client, prefix := redistest.NewClient(t), redistest.Prefix(t)
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{
		Redis: client, KeyPrefix: prefix, RetryRedisAfter: time.Hour, Logger: slog.New(logs), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	login := middleware.Limit{Name: "login-ip", Rate: 20, Period: time.Minute}

	_, err = rl.Allow(gone, "192.0.2.1", login, middleware.FailClosed)
	var e *models.Error
	if !errors.As(err, &e) || e.Kind != models.KindUnavailable {
		t.Fatalf("Allow with an ended context: %v, want KindUnavailable", err)
	}
	if _, _, err := rl.Failures(gone, "grace@example.com"); err == nil {
		t.Fatal("Failures with an ended context: no error")
	}
	n, _, err := rl.AddFailure(gone, "grace@example.com", time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("AddFailure with an ended context: %d, %v; want the failure counted", n, err)
	}

	// Redis was never marked down: the next caller is decided by Redis.
	d, err := rl.Allow(context.Background(), "192.0.2.1", login, middleware.FailClosed)
	if err != nil || !d.Allowed {
		t.Fatalf("next login decision: %+v, %v; want allowed through Redis", d, err)
	}
	if n, _, err := rl.Failures(context.Background(), "grace@example.com"); err != nil || n != 1 {
		t.Errorf("failures after a hung-up login: %d, %v; want 1", n, err)
	}
	if got := counter(t, reg, "rampart_ratelimit_store_errors_total"); got != 0 {
		t.Errorf("store_errors_total = %v, want 0: a caller hanging up is not a Redis failure", got)
	}
	if got := logs.count(slog.LevelError); got != 0 {
		t.Errorf("%d error lines logged (%q), want none", got, logs.messages())
	}
}

// TestTakeBackFailure: an attempt counted before its password was checked
// and then abandoned is taken back; taking back more than was counted
// leaves nothing behind (in Redis, no key without an expiry).
func TestTakeBackFailure(t *testing.T) {
	eachStore(t, func(t *testing.T, st limiterStore) {
		ctx := context.Background()
		rl := st.limiter(t, middleware.RateLimiterConfig{})
		const account = "heidi@example.com"
		for range 2 {
			if _, _, err := rl.AddFailure(ctx, account, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if err := rl.TakeBackFailure(ctx, account); err != nil {
			t.Fatal(err)
		}
		if n, left, err := rl.Failures(ctx, account); err != nil || n != 1 || left <= 0 || left > time.Minute {
			t.Errorf("after two failures and one taken back: %d, %v, %v; want 1 within the window", n, left, err)
		}
		for range 2 {
			if err := rl.TakeBackFailure(ctx, account); err != nil {
				t.Fatal(err)
			}
		}
		if n, _, err := rl.Failures(ctx, account); err != nil || n != 0 {
			t.Errorf("after taking back more than was counted: %d, %v; want 0", n, err)
		}
		if st.client != nil {
			if keys := redistest.Keys(t, st.client, st.prefix); len(keys) != 0 {
				t.Errorf("keys left in Redis: %q", keys)
			}
		}
	})
}

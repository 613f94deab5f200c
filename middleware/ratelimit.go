package middleware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"

	"github.com/rampart-go/rampart/models"
)

// Limit is one rate-limit policy: Rate requests per Period, smoothed with
// GCRA (the generic cell-rate algorithm): the whole Rate is available as a
// burst, then requests are admitted at Rate/Period. Name is the policy's
// name in the RateLimit headers and in violated-policies.
type Limit struct {
	Name   string
	Rate   int
	Period time.Duration
}

// Decision is the answer of a limiter for one request.
type Decision struct {
	Limit      Limit
	Allowed    bool
	Remaining  int
	Reset      time.Duration // until the quota is full again
	RetryAfter time.Duration // until the next request is admitted (when not allowed)
}

// RateLimiterConfig configures NewRateLimiter.
type RateLimiterConfig struct {
	// Redis, when set, holds the limiter state, so that every instance
	// sharing it enforces one budget. Nil: state in this process's memory.
	Redis redis.UniversalClient
	// KeyPrefix namespaces every key in Redis ("rampart:" by default).
	KeyPrefix string
	// MaxKeys bounds the memory store (LRU): a flood of distinct keys
	// evicts old ones instead of growing without limit. 0: 100,000.
	MaxKeys int
	// RetryRedisAfter is how long Redis is left alone after it failed
	// before it is tried again (recovery is automatic). 0: 2 s.
	RetryRedisAfter time.Duration
	Logger          *slog.Logger
	// Registerer, when set, receives the limiter's metrics.
	Registerer prometheus.Registerer
}

// RateLimiter decides rate limits and counts failed logins, in Redis when
// configured, else in memory. When Redis fails, fail-open decisions (the
// general limits) fall back to this instance's memory, and fail-closed
// ones (login, registration) are refused with 503; both are logged and
// counted, and Redis is tried again after RetryRedisAfter.
type RateLimiter struct {
	redis    redis.UniversalClient
	gcraRed  *redis_rate.Limiter
	prefix   string
	retry    time.Duration
	log      *slog.Logger
	mem      throttled.GCRAStoreCtx
	memGCRA  sync.Map // Limit (rate, period) -> *throttled.GCRARateLimiterCtx
	failures *lru.Cache[string, failureEntry]
	failMu   sync.Mutex

	downUntil atomic.Int64 // unix nanos until which Redis is skipped
	down      atomic.Bool  // an outage is under way (and has been logged)
	storeErrs prometheus.Counter
	fallbacks prometheus.Counter
	refusals  prometheus.Counter
	denials   *prometheus.CounterVec
}

type failureEntry struct {
	n     int
	until time.Time
}

// FailMode says what a decision does when the shared store is down.
type FailMode int

// The fail modes.
const (
	FailOpen   FailMode = iota // fall back to per-instance memory limits
	FailClosed                 // refuse with 503
)

// NewRateLimiter returns a limiter as configured.
func NewRateLimiter(cfg RateLimiterConfig) (*RateLimiter, error) {
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "rampart:"
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.RetryRedisAfter <= 0 {
		cfg.RetryRedisAfter = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mem, err := memstore.NewCtx(cfg.MaxKeys)
	if err != nil {
		return nil, err
	}
	failures, err := lru.New[string, failureEntry](cfg.MaxKeys)
	if err != nil {
		return nil, err
	}
	r := &RateLimiter{
		redis: cfg.Redis, prefix: cfg.KeyPrefix, retry: cfg.RetryRedisAfter, log: cfg.Logger,
		mem: mem, failures: failures,
		storeErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_ratelimit_store_errors_total",
			Help: "Rate-limit decisions for which Redis failed or was skipped after a failure."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_ratelimit_fallback_total",
			Help: "Fail-open rate-limit decisions taken from per-instance memory because Redis was down."}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "rampart_ratelimit_fail_closed_total",
			Help: "Fail-closed decisions (login, registration) refused with 503 because Redis was down."}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_ratelimit_denied_total",
			Help: "Requests refused with 429, by policy."}, []string{"policy"}),
	}
	if cfg.Redis != nil {
		r.gcraRed = redis_rate.NewLimiter(cfg.Redis)
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.storeErrs, r.fallbacks, r.refusals, r.denials} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Shared reports whether the limiter keeps its state in Redis.
func (r *RateLimiter) Shared() bool { return r.redis != nil }

// errStoreDown is the answer of a fail-closed decision while Redis is down.
var errStoreDown = &models.Error{Kind: models.KindUnavailable, RetryAfter: 5 * time.Second,
	Detail: "This function is briefly unavailable; retry in a few seconds."}

// useRedis reports whether Redis should be asked now.
func (r *RateLimiter) useRedis() bool {
	return r.redis != nil && time.Now().UnixNano() >= r.downUntil.Load()
}

// errCallerGone answers a call whose own context ended while Redis was
// asked: the client left or the request's deadline passed.
func errCallerGone(ctx context.Context) error {
	return &models.Error{Kind: models.KindUnavailable, RetryAfter: time.Second, Cause: ctx.Err()}
}

// redisFailed records a Redis failure: it is skipped for r.retry. The
// outage is logged once, when it starts, not at every failed retry; it
// ends at the next call that succeeds (redisOK). A call whose own context
// ended is not a Redis failure (a client that hangs up must not switch
// the limits of every other client to their fallback): redisFailed then
// records nothing and reports false.
func (r *RateLimiter) redisFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	r.storeErrs.Inc()
	r.downUntil.Store(time.Now().Add(r.retry).UnixNano())
	if r.down.CompareAndSwap(false, true) {
		r.log.Error("rate-limit store (Redis) failed; general limits fall back to this instance, login and registration answer 503",
			"error", err.Error(), "retry_every", r.retry.String())
	}
	return true
}

// redisOK records a call that Redis answered: an outage, if any, is over.
func (r *RateLimiter) redisOK() {
	if r.down.Load() && r.down.CompareAndSwap(true, false) {
		r.log.Info("rate-limit store (Redis) answers again; limits are shared across instances again")
	}
}

// degraded handles a decision while Redis is down or just failed.
func (r *RateLimiter) degraded(mode FailMode) bool {
	if r.redis == nil {
		return false
	}
	if mode == FailClosed {
		r.refusals.Inc()
		return true
	}
	r.fallbacks.Inc()
	return false
}

// Allow decides one request for key under l. key must already identify the
// subject (an IP, a user ID, a key ID); it is namespaced by the policy name.
func (r *RateLimiter) Allow(ctx context.Context, key string, l Limit, mode FailMode) (Decision, error) {
	key = l.Name + ":" + key
	if r.useRedis() {
		d, err := r.allowRedis(ctx, key, l)
		if err == nil {
			r.redisOK()
			return r.count(d), nil
		}
		if !r.redisFailed(ctx, err) {
			return Decision{}, errCallerGone(ctx)
		}
	} else if r.redis != nil {
		r.storeErrs.Inc()
	}
	if r.degraded(mode) {
		return Decision{}, errStoreDown
	}
	d, err := r.allowMemory(ctx, key, l)
	if err != nil {
		return Decision{}, models.Internal(err)
	}
	return r.count(d), nil
}

func (r *RateLimiter) count(d Decision) Decision {
	if !d.Allowed {
		r.denials.WithLabelValues(d.Limit.Name).Inc()
	}
	return d
}

func (r *RateLimiter) allowRedis(ctx context.Context, key string, l Limit) (Decision, error) {
	res, err := r.gcraRed.Allow(ctx, r.prefix+key, redis_rate.Limit{Rate: l.Rate, Burst: l.Rate, Period: l.Period})
	if err != nil {
		return Decision{}, err
	}
	return Decision{Limit: l, Allowed: res.Allowed > 0, Remaining: res.Remaining,
		Reset: max(res.ResetAfter, 0), RetryAfter: max(res.RetryAfter, 0)}, nil
}

type limitShape struct {
	rate   int
	period time.Duration
}

func (r *RateLimiter) allowMemory(ctx context.Context, key string, l Limit) (Decision, error) {
	shape := limitShape{l.Rate, l.Period}
	g, ok := r.memGCRA.Load(shape)
	if !ok {
		lim, err := throttled.NewGCRARateLimiterCtx(r.mem, throttled.RateQuota{
			MaxRate: throttled.PerDuration(l.Rate, l.Period), MaxBurst: l.Rate - 1})
		if err != nil {
			return Decision{}, err
		}
		g, _ = r.memGCRA.LoadOrStore(shape, lim)
	}
	limited, res, err := g.(*throttled.GCRARateLimiterCtx).RateLimitCtx(ctx, fmt.Sprintf("%d/%d:%s", l.Rate, l.Period, key), 1)
	if err != nil {
		return Decision{}, err
	}
	return Decision{Limit: l, Allowed: !limited, Remaining: res.Remaining,
		Reset: max(res.ResetAfter, 0), RetryAfter: max(res.RetryAfter, 0)}, nil
}

// accountKey turns an account name (a normalised e-mail) into a key that
// stores no personal data: a SHA-256 hex digest.
func accountKey(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// Failures reports how many failures account has in its current window and
// how long the window still runs. Fail-closed: Redis down is errStoreDown.
func (r *RateLimiter) Failures(ctx context.Context, account string) (int, time.Duration, error) {
	key := "login-failures:" + accountKey(account)
	if r.redis != nil {
		if !r.useRedis() {
			r.storeErrs.Inc()
			r.refusals.Inc()
			return 0, 0, errStoreDown
		}
		pipe := r.redis.Pipeline()
		get := pipe.Get(ctx, r.prefix+key)
		ttl := pipe.PTTL(ctx, r.prefix+key)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			if !r.redisFailed(ctx, err) {
				return 0, 0, errCallerGone(ctx)
			}
			r.refusals.Inc()
			return 0, 0, errStoreDown
		}
		r.redisOK()
		n, err := get.Int()
		if errors.Is(err, redis.Nil) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, models.Internal(err)
		}
		return n, max(ttl.Val(), 0), nil
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	e, ok := r.failures.Get(key)
	if !ok || !time.Now().Before(e.until) {
		return 0, 0, nil
	}
	return e.n, time.Until(e.until), nil
}

// AddFailure counts one failure for account in a fixed window of length
// window that starts at its first failure, and returns the new count and
// the time left in the window.
//
// The failure is counted even if ctx has ended: a password was checked, and
// a client that hangs up before the answer must not escape the count. The
// Redis client's own timeouts bound the call.
func (r *RateLimiter) AddFailure(ctx context.Context, account string, window time.Duration) (int, time.Duration, error) {
	ctx = context.WithoutCancel(ctx)
	key := "login-failures:" + accountKey(account)
	if r.redis != nil {
		if !r.useRedis() {
			r.storeErrs.Inc()
			r.refusals.Inc()
			return 0, 0, errStoreDown
		}
		// INCR, then start the window only if it has none (EXPIRE NX): the
		// window runs from the first failure and later ones do not extend it.
		pipe := r.redis.TxPipeline()
		incr := pipe.Incr(ctx, r.prefix+key)
		pipe.ExpireNX(ctx, r.prefix+key, window)
		ttl := pipe.PTTL(ctx, r.prefix+key)
		if _, err := pipe.Exec(ctx); err != nil {
			r.redisFailed(ctx, err)
			r.refusals.Inc()
			return 0, 0, errStoreDown
		}
		r.redisOK()
		return int(incr.Val()), max(ttl.Val(), 0), nil
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	now := time.Now()
	e, ok := r.failures.Get(key)
	if !ok || !now.Before(e.until) {
		e = failureEntry{until: now.Add(window)}
	}
	e.n++
	r.failures.Add(key, e)
	return e.n, e.until.Sub(now), nil
}

// TakeBackFailure undoes one AddFailure for account, within its window.
// Like AddFailure, it is carried out even if ctx has ended. If the window
// ended in between, DECR would make a new key without an expiry, so a
// count that falls below one is deleted.
func (r *RateLimiter) TakeBackFailure(ctx context.Context, account string) error {
	ctx = context.WithoutCancel(ctx)
	key := "login-failures:" + accountKey(account)
	if r.redis != nil {
		n, err := r.redis.Decr(ctx, r.prefix+key).Result()
		if err == nil && n < 1 {
			err = r.redis.Del(ctx, r.prefix+key).Err()
		}
		if err != nil {
			r.redisFailed(ctx, err)
			return errStoreDown
		}
		r.redisOK()
		return nil
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if e, ok := r.failures.Get(key); ok && time.Now().Before(e.until) {
		if e.n--; e.n < 1 {
			r.failures.Remove(key)
		} else {
			r.failures.Add(key, e)
		}
	}
	return nil
}

// ResetFailures clears account's failures: after a successful login, and
// when an admin unlocks the account. Like AddFailure, it is carried out
// even if ctx has ended.
func (r *RateLimiter) ResetFailures(ctx context.Context, account string) error {
	ctx = context.WithoutCancel(ctx)
	key := "login-failures:" + accountKey(account)
	if r.redis != nil {
		if err := r.redis.Del(ctx, r.prefix+key).Err(); err != nil {
			r.redisFailed(ctx, err)
			return errStoreDown
		}
		r.redisOK()
		return nil
	}
	r.failMu.Lock()
	defer r.failMu.Unlock()
	r.failures.Remove(key)
	return nil
}

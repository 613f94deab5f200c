package middleware

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// Limits are the rate-limit policies of the API; DefaultLimits has the
// defaults of API.md.
type Limits struct {
	IP            Limit // every request, per client IP
	User          Limit // every authenticated request, per user (keys included)
	APIKeyDefault int   // requests a minute for a key created without a rate_limit
	APIKeyMax     int   // the most a key may ask for
	LoginIP       Limit // login attempts per client IP
	RegisterIP    Limit // registrations per client IP
	LoginFailures int   // failed logins per account ...
	LoginWindow   time.Duration
	// ... within this window; then 429 until it passes.
}

// DefaultLimits returns the defaults of API.md ("Defaults that tests rely on").
func DefaultLimits() Limits {
	return Limits{
		IP:            Limit{Name: "ip", Rate: 600, Period: time.Minute},
		User:          Limit{Name: "user", Rate: 1200, Period: time.Minute},
		APIKeyDefault: 600,
		APIKeyMax:     1200,
		LoginIP:       Limit{Name: "login-ip", Rate: 20, Period: time.Minute},
		RegisterIP:    Limit{Name: "register-ip", Rate: 10, Period: time.Minute},
		LoginFailures: 5,
		LoginWindow:   15 * time.Minute,
	}
}

// ProblemTypeRateLimited is the problem type of a 429 for a rate limit
// (draft-ietf-httpapi-ratelimit-headers-10, with violated-policies).
const ProblemTypeRateLimited = "https://iana.org/assignments/http-problem-types#quota-exceeded"

const decisionsKey = "rampart.ratelimit"

// record keeps d among the request's decisions and rewrites the RateLimit
// fields (draft 10 shape) to list every policy evaluated so far:
//
//	RateLimit-Policy: "ip";q=600;w=60, "user";q=1200;w=60
//	RateLimit: "ip";r=599;t=1, "user";r=1199;t=1
func record(c echo.Context, d Decision) {
	ds, _ := c.Get(decisionsKey).([]Decision)
	ds = append(ds, d)
	c.Set(decisionsKey, ds)
	policies := make([]string, len(ds))
	states := make([]string, len(ds))
	for i, d := range ds {
		policies[i] = fmt.Sprintf("%q;q=%d;w=%d", d.Limit.Name, d.Limit.Rate, int(d.Limit.Period/time.Second))
		t := d.Reset
		if !d.Allowed {
			t = d.RetryAfter
		}
		states[i] = fmt.Sprintf("%q;r=%d;t=%d", d.Limit.Name, max(d.Remaining, 0), ceilSeconds(t))
	}
	h := c.Response().Header()
	h.Set("RateLimit-Policy", strings.Join(policies, ", "))
	h.Set("RateLimit", strings.Join(states, ", "))
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// denied is the error of a refused decision: 429 with Retry-After (never
// earlier than the t of the RateLimit field: both are rounded up).
func denied(d Decision) error {
	retry := max(d.RetryAfter, time.Second)
	return &models.Error{Kind: models.KindRateLimited, RetryAfter: retry, Policies: []string{d.Limit.Name},
		Detail: fmt.Sprintf("Too many requests (policy %s: %d per %s); retry in %d s.", d.Limit.Name, d.Limit.Rate, d.Limit.Period, ceilSeconds(retry))}
}

func check(c echo.Context, rl *RateLimiter, key string, l Limit, mode FailMode) error {
	d, err := rl.Allow(c.Request().Context(), key, l, mode)
	if err != nil {
		return err
	}
	record(c, d)
	if !d.Allowed {
		return denied(d)
	}
	return nil
}

// LimitIP limits requests per client IP under l. The IP is echo's RealIP,
// which believes forwarding headers only from configured trusted proxies,
// so a spoofed X-Forwarded-For does not reset the count.
func LimitIP(rl *RateLimiter, l Limit, mode FailMode) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := check(c, rl, c.RealIP(), l, mode); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// LimitPrincipal limits authenticated requests (after Enforce): per user
// under user, and for an API key also under the key's own rate, capped at
// keyMax. Anonymous requests pass (they are limited per IP).
func LimitPrincipal(rl *RateLimiter, user Limit, keyMax int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := PrincipalOf(c)
			if p.UserID != "" {
				if err := check(c, rl, p.UserID, user, FailOpen); err != nil {
					return err
				}
			}
			if p.Kind == models.PrincipalAPIKey {
				rate := min(p.RateLimit, keyMax)
				if rate <= 0 {
					rate = keyMax
				}
				l := Limit{Name: "api-key", Rate: rate, Period: time.Minute}
				if err := check(c, rl, p.APIKeyID, l, FailOpen); err != nil {
					return err
				}
			}
			return next(c)
		}
	}
}

// LoginGuard stops password guessing against one account from any number
// of addresses: after Max failures within Window, every further attempt
// for that account is 429 until the window, counted from the first
// failure, has passed, whatever the password. Unknown e-mail addresses are
// counted the same way, so the guard tells nothing about which exist.
//
// The trade-off: anyone who knows an e-mail address can keep its owner
// from logging in by failing five times every 15 minutes. An admin's
// unlock clears the count; sessions already open are not affected.
type LoginGuard struct {
	RL     *RateLimiter
	Max    int
	Window time.Duration
}

func (g LoginGuard) limit() Limit {
	return Limit{Name: "login-account", Rate: g.Max, Period: g.Window}
}

// Begin counts an attempt for account before its password is checked, and
// refuses it (429) once the attempts in the window go past Max; it fails
// closed (503) when the shared store is down. Counting first, in one atomic
// step, is what makes the guard hold against parallel guesses: a burst of
// a hundred simultaneous attempts gets Max password checks, not a hundred
// (a check-then-count guard would let them all through before the first
// failure is counted). A success clears the count (Succeeded); an attempt
// whose password was never checked is taken back (Abandoned).
func (g LoginGuard) Begin(c echo.Context, account string) error {
	n, left, err := g.RL.AddFailure(c.Request().Context(), account, g.Window)
	if err != nil {
		return err
	}
	d := Decision{Limit: g.limit(), Allowed: n <= g.Max, Remaining: max(g.Max-n, 0), Reset: left, RetryAfter: left}
	record(c, d)
	if !d.Allowed {
		g.RL.denials.WithLabelValues(d.Limit.Name).Inc()
		return denied(d)
	}
	return nil
}

// Abandoned takes back the attempt Begin counted when the password was
// never checked (the server was too busy, or failed): a legitimate user
// refused with 503 during a flood does not lose an attempt.
func (g LoginGuard) Abandoned(ctx context.Context, account string) error {
	return g.RL.TakeBackFailure(ctx, account)
}

// Succeeded clears account's failures.
func (g LoginGuard) Succeeded(ctx context.Context, account string) error {
	return g.RL.ResetFailures(ctx, account)
}

// BodyLimit refuses (413) a request body larger than n bytes: by its
// Content-Length before anything is read, and while reading otherwise.
// Routes that take small bodies get small caps.
func BodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > n {
				return &models.Error{Kind: models.KindTooLarge, Detail: "The request body is larger than " + strconv.FormatInt(n, 10) + " bytes."}
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, n)
			return next(c)
		}
	}
}

// ConcurrencyLimit lets each user run at most perUser requests of the route
// at once (on this instance); more get 429. For expensive endpoints.
func ConcurrencyLimit(name string, perUser int) echo.MiddlewareFunc {
	var mu sync.Mutex
	running := map[string]int{}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			user := PrincipalOf(c).UserID
			mu.Lock()
			if running[user] >= perUser {
				mu.Unlock()
				return &models.Error{Kind: models.KindRateLimited, RetryAfter: time.Second, Policies: []string{name},
					Detail: fmt.Sprintf("At most %d of these requests may run at once; retry in a second.", perUser)}
			}
			running[user]++
			mu.Unlock()
			defer func() {
				mu.Lock()
				if running[user]--; running[user] <= 0 {
					delete(running, user)
				}
				mu.Unlock()
			}()
			return next(c)
		}
	}
}

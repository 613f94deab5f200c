package app

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/models"
)

// requireRedis returns TEST_REDIS_URL and a client for it. Like the
// PostgreSQL half of the tests, the Redis tests are skipped when it is not
// set, except in CI (CI set), where they fail.
func requireRedis(tb testing.TB) (string, *redis.Client) {
	tb.Helper()
	raw := os.Getenv("TEST_REDIS_URL")
	if raw == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("TEST_REDIS_URL is not set; in CI the Redis tests must run")
		}
		tb.Skip("Redis tests skipped: TEST_REDIS_URL is not set")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL is not a Redis URL")
	}
	client := redis.NewClient(opts)
	tb.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis at TEST_REDIS_URL does not answer: %v", err)
	}
	return raw, client
}

// uniqueLoopback returns a random address in 127.100.0.0-127.199.255.255:
// on Linux all of 127.0.0.0/8 is this host, so a client bound to it reaches
// a server on 127.0.0.1 and is seen with that address. Its rate-limit keys
// in a shared Redis are then this test's own (no other test or instance
// shares them, and cleaning them up touches nothing else).
func uniqueLoopback() net.IP {
	return net.IPv4(127, byte(100+rand.IntN(100)), byte(rand.IntN(256)), byte(1+rand.IntN(254)))
}

// clientFrom returns an HTTPS client that trusts roots only and connects
// from the local address src.
func clientFrom(tb testing.TB, roots *x509.CertPool, src net.IP) *http.Client {
	tb.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: hangGuard}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: hangGuard}
}

// startServeFrom is startServeWith for a client at src: it waits for
// /healthz from src, so that even the start-up probes count against src's
// limits and nobody else's, and run.client connects from src.
func startServeFrom(tb testing.TB, extra vars, src net.IP) *serveRun {
	tb.Helper()
	return startServeAt(tb, extra, nil, src)
}

// answer is one HTTP answer as these tests look at it.
type answer struct {
	status int
	header http.Header
	body   string
}

// do sends one request (token and JSON body optional) and reads the answer.
func (run *serveRun) do(tb testing.TB, method, path, token, body string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, "https://"+run.addr+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := run.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func loginBody(email, password string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
}

// login logs email in with servePassword and returns the session token.
func (run *serveRun) login(tb testing.TB, email string) string {
	tb.Helper()
	a := run.do(tb, http.MethodPost, "/v1/auth/login", "", loginBody(email, servePassword))
	var out struct{ Token string }
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &out) != nil || out.Token == "" {
		tb.Fatalf("login %s: %d %s", email, a.status, a.body)
	}
	return out.Token
}

// wantUnavailable checks a fail-closed answer: 503 problem+json with a
// Retry-After of whole seconds.
func wantUnavailable(tb testing.TB, what string, a answer) {
	tb.Helper()
	if a.status != http.StatusServiceUnavailable {
		tb.Errorf("%s: %d %s, want 503", what, a.status, a.body)
		return
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	if n, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || n < 1 {
		tb.Errorf("%s: Retry-After %q, want a number of seconds", what, a.header.Get("Retry-After"))
	}
	var p struct{ Status int }
	if err := json.Unmarshal([]byte(a.body), &p); err != nil || p.Status != http.StatusServiceUnavailable {
		tb.Errorf("%s: body %s is not a 503 problem", what, a.body)
	}
}

// TestServeUsesRedis runs two instances on one SQLite file and the Redis of
// TEST_REDIS_URL: both start without complaint, their rate-limit state lands
// in Redis under the "rampart:" prefix (redis_rate adds "rate:" in front),
// and they enforce one combined login budget and one failure count.
func TestServeUsesRedis(t *testing.T) {
	redisURL, rdb := requireRedis(t)
	src := uniqueLoopback()
	ctx := context.Background()
	email := fmt.Sprintf("redis-%d@example.com", rand.Uint64())
	failuresKey := "rampart:login-failures:" + sha256Hex(models.EmailKey(email))
	var userKey string
	t.Cleanup(func() {
		// This test's keys only: every key it made names src, its user or
		// its e-mail address's digest.
		keys := []string{failuresKey}
		if userKey != "" {
			keys = append(keys, userKey)
		}
		iter := rdb.Scan(ctx, 0, "*:"+src.String(), 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		rdb.Del(ctx, keys...)
	})

	env := vars{"APP_REDIS_URL": redisURL, "APP_RATE_LOGIN_IP": "4"}
	a := startServeFrom(t, env, src)
	b := startServeFrom(t, env.with("APP_DATA_DIR", a.dataDir), src)
	for _, run := range []*serveRun{a, b} {
		if strings.Contains(run.output.String(), "Redis does not answer") {
			t.Fatalf("serve says Redis does not answer:\n%s", run.output)
		}
	}

	if got := a.do(t, http.MethodPost, "/v1/auth/register", "", registerBody(email)); got.status != http.StatusCreated {
		t.Fatalf("register: %d %s", got.status, got.body)
	}
	token := a.login(t, email) // login-ip: 1 of 4
	var me struct{ ID string }
	got := b.do(t, http.MethodGet, "/v1/me", token, "")
	if got.status != http.StatusOK || json.Unmarshal([]byte(got.body), &me) != nil || me.ID == "" {
		t.Fatalf("me on the second instance: %d %s", got.status, got.body)
	}
	userKey = "rate:rampart:user:" + me.ID

	// Three wrong passwords, alternating instances: login-ip 4 of 4, and
	// three failures for the account.
	for i, run := range []*serveRun{b, a, b} {
		if got := run.do(t, http.MethodPost, "/v1/auth/login", "", loginBody(email, "not the password, no")); got.status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d %s, want 401", i, got.status, got.body)
		}
	}
	got = a.do(t, http.MethodPost, "/v1/auth/login", "", loginBody(email, servePassword))
	if got.status != http.StatusTooManyRequests || !strings.Contains(got.header.Get("RateLimit-Policy"), `"login-ip";q=4;w=60`) {
		t.Errorf("fifth login over both instances: %d %q %s, want 429 under login-ip",
			got.status, got.header.Get("RateLimit-Policy"), got.body)
	}

	for _, key := range []string{
		"rate:rampart:ip:" + src.String(),
		"rate:rampart:register-ip:" + src.String(),
		"rate:rampart:login-ip:" + src.String(),
		userKey,
		failuresKey,
	} {
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("Redis key %s: TTL %v, %v; want a key that expires", key, ttl, err)
		}
	}
	if n, err := rdb.Get(ctx, failuresKey).Int(); err != nil || n != 3 {
		t.Errorf("failures counted in Redis: %d, %v; want 3 (from both instances)", n, err)
	}
	// No personal data in key names: the e-mail address is hashed.
	iter := rdb.Scan(ctx, 0, "*"+email+"*", 100).Iterator()
	for iter.Next(ctx) {
		t.Errorf("Redis key %q names the e-mail address", iter.Val())
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestServeWithRedisDown starts serve with APP_REDIS_URL pointing at a
// closed port: it starts and says so, /healthz answers, login and
// registration fail closed (503 with Retry-After) and the general routes
// keep working on this instance's memory limits. The session used comes
// from an earlier run on the same data folder without Redis, since login
// itself is refused.
func TestServeWithRedisDown(t *testing.T) {
	dataDir := t.TempDir()
	first := startServeWith(t, vars{"APP_DATA_DIR": dataDir}, nil)
	if code := first.call(t, http.MethodPost, "/v1/auth/register", "", registerBody("down@example.com"), nil); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	token := first.login(t, "down@example.com")
	first.cancel()
	select {
	case <-first.exited:
	case <-time.After(hangGuard):
		t.Fatal("the first serve did not stop")
	}

	deadRedis := "redis://127.0.0.1:" + itoa(freePort(t)) + "/0"
	run := startServeWith(t, vars{"APP_DATA_DIR": dataDir, "APP_REDIS_URL": deadRedis}, nil)
	if !strings.Contains(run.output.String(), "Redis does not answer") {
		t.Errorf("serve does not log that Redis does not answer:\n%s", run.output)
	}

	wantUnavailable(t, "login", run.do(t, http.MethodPost, "/v1/auth/login", "", loginBody("down@example.com", servePassword)))
	wantUnavailable(t, "register", run.do(t, http.MethodPost, "/v1/auth/register", "", registerBody("down2@example.com")))
	// Still closed a moment later: no fall-back to memory for these.
	wantUnavailable(t, "login again", run.do(t, http.MethodPost, "/v1/auth/login", "", loginBody("down@example.com", "wrong password, no")))

	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/healthz", "", http.StatusOK},
		{http.MethodGet, "/v1/me", "", http.StatusOK},
		{http.MethodPost, "/v1/projects", `{"name":"Redis is down"}`, http.StatusCreated},
		{http.MethodGet, "/v1/projects", "", http.StatusOK},
	} {
		got := run.do(t, c.method, c.path, token, c.body)
		if got.status != c.want {
			t.Errorf("%s %s with Redis down: %d %s, want %d", c.method, c.path, got.status, got.body, c.want)
		}
		// The per-IP limit still applies, from this instance's memory.
		if !strings.Contains(got.header.Get("RateLimit-Policy"), `"ip";q=600;w=60`) {
			t.Errorf("%s %s: RateLimit-Policy %q, want the ip policy", c.method, c.path, got.header.Get("RateLimit-Policy"))
		}
	}
	if !strings.Contains(run.output.String(), "rate-limit store (Redis) failed") {
		t.Errorf("serve does not log the failed rate-limit decisions:\n%s", run.output)
	}
	if strings.Contains(run.output.String(), servePassword) {
		t.Errorf("the server log shows a password")
	}
}

// TestBuildSizesHasherFromBudget drives the handler that build makes with
// APP_ARGON2_MEMORY_BUDGET=19 (MiB): room for one 19 MiB Argon2id hash at
// a time. A burst of logins then queues on that one slot, and whatever
// waits longer than the two-second admission wait is refused with 503,
// Retry-After and the hasher's own detail. The burst is sized so that this
// holds on any machine: 400 hashes done one at a time take far longer than
// two seconds (each is 10-40 ms of memory-bound work), so most are refused.
//
// The slot count itself is not visible from outside build (the hasher is
// not exported by the servers it returns, nor as a metric), so this test
// shows the budget's effect rather than the number.
func TestBuildSizesHasherFromBudget(t *testing.T) {
	cfg, err := LoadConfig(vars{
		"APP_DATA_DIR":             t.TempDir(),
		"APP_METRICS_ADDR":         "off",
		"APP_ARGON2_MEMORY_BUDGET": "19",
		"APP_RATE_IP":              "1000000",
		"APP_RATE_LOGIN_IP":        "1000000",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Argon2Budget != 19<<20 {
		t.Fatalf("Argon2Budget = %d, want 19 MiB", cfg.Argon2Budget)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srvs, cleanup, err := build(ctx, cfg, Env{Getenv: vars{}.get, Stdout: io.Discard, Stderr: io.Discard}, discardLogger())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer cleanup()
	h := srvs.public.Handler

	const burst = 400
	var (
		mu      sync.Mutex
		counts  = map[int]int{}
		refusal *httptest.ResponseRecorder
		start   = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i := range burst {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/v1/auth/login",
				strings.NewReader(loginBody(fmt.Sprintf("burst-%d@example.com", i), "not anybody's password")))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			<-start
			h.ServeHTTP(rec, req)
			mu.Lock()
			defer mu.Unlock()
			counts[rec.Code]++
			if rec.Code == http.StatusServiceUnavailable && refusal == nil {
				refusal = rec
			}
		})
	}
	close(start)
	wg.Wait()

	t.Logf("answers to %d concurrent logins with one hashing slot: %v", burst, counts)
	if counts[http.StatusUnauthorized] == 0 || counts[http.StatusServiceUnavailable] == 0 ||
		counts[http.StatusUnauthorized]+counts[http.StatusServiceUnavailable] != burst {
		t.Fatalf("answers %v: want 401s (hashed) and 503s (no slot in time), nothing else", counts)
	}
	if refusal.Header().Get("Retry-After") != "1" || !strings.Contains(refusal.Body.String(), "busy checking passwords") {
		t.Errorf("refusal: Retry-After %q, body %s; want 1 s and the hasher's detail",
			refusal.Header().Get("Retry-After"), refusal.Body)
	}
}

// TestRedisClientDoesNotRetry checks that a failing Redis costs one
// connection attempt per command, not go-redis' defaults (MaxRetries 0
// means three retries; a failed dial is retried five times): against a
// "Redis" that accepts connections and closes them at once, a command is
// one connection.
func TestRedisClientDoesNotRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			conn.Close()
		}
	}()
	log := &syncBuffer{}
	client, err := newRedisClient(context.Background(), "redis://"+ln.Addr().String()+"/0", newLogger(log, "info"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if !strings.Contains(log.String(), "Redis does not answer") {
		t.Errorf("the failed start-up ping is not logged:\n%s", log)
	}
	if o := client.Options(); o.MaxRetries != 0 || o.DialerRetries != 1 {
		t.Errorf("MaxRetries %d (after go-redis' defaults), DialerRetries %d; want 0 and 1", o.MaxRetries, o.DialerRetries)
	}
	mu.Lock()
	first := accepted
	mu.Unlock()
	if err := client.Ping(context.Background()).Err(); err == nil {
		t.Fatal("a ping to a Redis that hangs up succeeded")
	}
	time.Sleep(50 * time.Millisecond) // let the listener count the last accept
	mu.Lock()
	defer mu.Unlock()
	if first != 1 || accepted != 2 {
		t.Errorf("connections: %d for the start-up ping, %d in all after one more; want 1 and 2", first, accepted)
	}
}

package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL returns TEST_REDIS_URL. When it is unset the test is skipped, or, in
// CI, failed: there the Redis half must run.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("redistest: TEST_REDIS_URL is not set; in CI the Redis tests must run")
		}
		tb.Skip("Redis test skipped: TEST_REDIS_URL is not set")
	}
	return u
}

// Options returns the client options of TEST_REDIS_URL with short timeouts
// and no retries of commands or dials, so that a dead Redis costs a call
// milliseconds. A test may change them
// (Addr, to go through a Proxy) before NewClientWith.
func Options(tb testing.TB) *redis.Options {
	tb.Helper()
	opts, err := redis.ParseURL(URL(tb))
	if err != nil {
		tb.Fatalf("redistest: TEST_REDIS_URL is not a valid Redis URL: %v", err)
	}
	opts.DialTimeout = time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	opts.PoolTimeout = time.Second
	opts.MaxRetries = -1   // -1, not 0: 0 means go-redis's default of 3 retries
	opts.DialerRetries = 1 // one dial attempt per call, not 5 with 100 ms pauses
	return opts
}

// NewClient returns a client of its own (its own connection pool) to the
// TEST_REDIS_URL server, closed when the test ends. It fails the test if the
// server does not answer.
func NewClient(tb testing.TB) *redis.Client {
	tb.Helper()
	c := NewClientWith(tb, Options(tb))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		tb.Fatalf("redistest: Redis at TEST_REDIS_URL does not answer: %v", err)
	}
	return c
}

// NewClientWith returns a client made from opts, closed when the test ends.
// It does not check that the server answers: the server may be a cut Proxy.
func NewClientWith(tb testing.TB, opts *redis.Options) *redis.Client {
	tb.Helper()
	c := redis.NewClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses ("rampart-test:" and 64
// random bits), and deletes every key that contains it when the test ends.
// Keys are matched anywhere, not only at the start: libraries put their own
// prefix in front (redis_rate stores "rate:" + key).
func Prefix(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "rampart-test:" + hex.EncodeToString(b) + ":"
	opts := Options(tb)
	tb.Cleanup(func() {
		c := redis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := scan(ctx, c, prefix)
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			tb.Errorf("redistest: delete the keys of prefix %s: %v", prefix, err)
		}
	})
	return prefix
}

// Keys lists the keys that contain prefix.
func Keys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := scan(ctx, c, prefix)
	if err != nil {
		tb.Fatalf("redistest: list keys: %v", err)
	}
	return keys
}

// scan lists the keys containing prefix. The prefix is made of letters,
// digits, ':' and '-' only, so it is no glob pattern itself.
func scan(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	if strings.ContainsAny(prefix, `*?[]\`) {
		return nil, errors.New("prefix holds glob characters")
	}
	var keys []string
	iter := c.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// Proxy is a TCP proxy in front of a server, for playing an outage: Cut
// drops every connection and refuses new ones (it accepts them and closes
// them at once, so that clients fail fast instead of timing out), Restore
// lets connections through again. Its address stays the same throughout.
type Proxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	down    bool
	conns   map[net.Conn]struct{}
	refused atomic.Int64
	wg      sync.WaitGroup
}

// NewProxy starts a proxy on a free loopback port forwarding to target
// (host:port). It is stopped when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// Restore lets new connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Refused counts the connections refused while the proxy was cut: each is
// one attempt of a client to reach the server.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // the listener is closed
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	if !p.isDown() {
		if server, err := net.DialTimeout("tcp", p.target, 5*time.Second); err == nil {
			if p.track(client, server) {
				p.pipe(client, server)
				return
			}
			_ = server.Close()
		}
	}
	p.refused.Add(1)
	_ = client.Close()
}

func (p *Proxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// track registers both ends, unless the proxy was cut meanwhile.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// pipe copies both ways until either side ends, then closes both.
func (p *Proxy) pipe(client, server net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(server, client)
	go cp(client, server)
	<-done
	p.untrack(client, server)
	<-done
}

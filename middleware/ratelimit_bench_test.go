package middleware_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/middleware/redistest"
)

// The cost of one rate-limit decision (Allow), in memory and through
// Redis (TEST_REDIS_URL), from one goroutine and from many. The decisions
// are spread over 1024 client keys under a rate no key reaches, so every
// one is a full GCRA update of an existing key, the common case.
//
//	go test -run '^$' -bench RateLimiter ./middleware/
//	TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench RateLimiter ./middleware/

var benchLimit = middleware.Limit{Name: "bench", Rate: 1_000_000_000, Period: time.Minute}

func benchKeys() []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("198.51.%d.%d", i/256, i%256)
	}
	return keys
}

func benchDecisions(b *testing.B, rl *middleware.RateLimiter) {
	ctx := context.Background()
	keys := benchKeys()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d, err := rl.Allow(ctx, keys[i%len(keys)], benchLimit, middleware.FailOpen)
		if err != nil || !d.Allowed {
			b.Fatalf("decision %d: %+v, %v", i, d, err)
		}
		i++
	}
}

func benchDecisionsParallel(b *testing.B, rl *middleware.RateLimiter) {
	ctx := context.Background()
	keys := benchKeys()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)) * 7919 // each goroutine starts elsewhere in the keys
		for pb.Next() {
			d, err := rl.Allow(ctx, keys[i%len(keys)], benchLimit, middleware.FailOpen)
			if err != nil || !d.Allowed {
				b.Errorf("decision: %+v, %v", d, err)
				return
			}
			i++
		}
	})
}

func newMemoryLimiter(b *testing.B) *middleware.RateLimiter {
	rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{})
	if err != nil {
		b.Fatal(err)
	}
	return rl
}

func newRedisLimiter(b *testing.B) *middleware.RateLimiter {
	rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Redis: redistest.NewClient(b), KeyPrefix: redistest.Prefix(b)})
	if err != nil {
		b.Fatal(err)
	}
	return rl
}

func BenchmarkRateLimiterMemory(b *testing.B) { benchDecisions(b, newMemoryLimiter(b)) }

func BenchmarkRateLimiterMemoryParallel(b *testing.B) { benchDecisionsParallel(b, newMemoryLimiter(b)) }

func BenchmarkRateLimiterRedis(b *testing.B) { benchDecisions(b, newRedisLimiter(b)) }

func BenchmarkRateLimiterRedisParallel(b *testing.B) { benchDecisionsParallel(b, newRedisLimiter(b)) }

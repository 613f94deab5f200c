package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/middleware/redistest"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// TestSessionCacheWiring: the server caches sessions only where every
// revocation can reach every instance: with Redis (any database), and on
// SQLite without Redis (one process); never on PostgreSQL without Redis,
// and never with APP_SESSION_CACHE_TTL=0.
func TestSessionCacheWiring(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		dialect models.Dialect
		redis   bool
		ttl     time.Duration
		want    bool
	}{
		{"sqlite", models.SQLite, false, 5 * time.Second, true},
		{"sqlite, ttl 0", models.SQLite, false, 0, false},
		{"postgres without redis", models.Postgres, false, 5 * time.Second, false},
		{"postgres with redis", models.Postgres, true, 5 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := models.OpenDB(ctx, dbtest.URL(t, c.dialect))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cfg := Config{SessionCacheTTL: c.ttl}
			var client *redis.Client
			if c.redis {
				client = redistest.NewClient(t)
			}
			cache, err := newSessionCache(cfg, db, client, discardLogger(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if (cache != nil) != c.want {
				t.Fatalf("session cache made: %v, want %v", cache != nil, c.want)
			}
		})
	}
}

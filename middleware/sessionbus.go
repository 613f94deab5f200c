package middleware

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/models"
)

// RedisSessionBus carries session revocations between instances through
// Redis pub/sub (models.SessionBus). Messages hold session or user IDs,
// never tokens.
type RedisSessionBus struct {
	client  redis.UniversalClient
	channel string
	// probe is how long the subscription may be silent before it is
	// pinged; a ping unanswered for as long means the bus is down.
	probe time.Duration
}

// NewRedisSessionBus returns the bus on client; the channel is
// prefix + "sessions:revoked" (prefix "rampart:" when empty).
func NewRedisSessionBus(client redis.UniversalClient, prefix string) *RedisSessionBus {
	if prefix == "" {
		prefix = "rampart:"
	}
	return &RedisSessionBus{client: client, channel: prefix + "sessions:revoked", probe: time.Second}
}

// Publish sends msg to every subscribed instance.
func (b *RedisSessionBus) Publish(ctx context.Context, msg string) error {
	return b.client.Publish(ctx, b.channel, msg).Err()
}

// Subscribe delivers messages until ctx ends. A broken or silent
// subscription (no answer to a ping within twice the probe interval) is
// reported with up(false) and made again, a second apart; up(true) follows
// each confirmed subscription.
func (b *RedisSessionBus) Subscribe(ctx context.Context, deliver func(string), up func(bool)) {
	for ctx.Err() == nil {
		b.subscribeOnce(ctx, deliver, up)
		up(false)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (b *RedisSessionBus) subscribeOnce(ctx context.Context, deliver func(string), up func(bool)) {
	ps := b.client.Subscribe(ctx, b.channel)
	defer func() { _ = ps.Close() }()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.probe)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() || pinged {
				return
			}
			// Silent for a while: make sure the connection is alive.
			if ps.Ping(ctx) != nil {
				return
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == b.channel {
				up(true)
			}
		case *redis.Message:
			deliver(m.Payload)
		}
	}
}

var _ models.SessionBus = (*RedisSessionBus)(nil)

package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/models"
)

// RedisSessionBus carries session revocations between instances through
// Redis pub/sub (models.SessionBus). Messages hold session or user IDs,
// never tokens.
//
// Publish returns only once every instance that received the message has
// applied it: PUBLISH answers how many subscribers it was sent to, and
// each subscriber, after applying a message, increments the message's
// acknowledgement counter (a key that expires after a minute); the
// publisher waits until the counter reaches that number. A message sent is
// therefore not merely on its way: when the revoking request answers, no
// instance serves the session from its cache any more.
type RedisSessionBus struct {
	client  redis.UniversalClient
	channel string
	acks    string // prefix of the acknowledgement counters
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
	return &RedisSessionBus{client: client, channel: prefix + "sessions:revoked", acks: prefix + "sessions:ack:", probe: time.Second}
}

// ackPoll is how often Publish reads the acknowledgement counter.
const ackPoll = time.Millisecond

// Publish sends msg to every subscribed instance and waits until each has
// applied it, or ctx ends.
func (b *RedisSessionBus) Publish(ctx context.Context, msg string) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	id := hex.EncodeToString(nonce[:])
	n, err := b.client.Publish(ctx, b.channel, id+" "+msg).Result()
	if err != nil {
		return err
	}
	key := b.acks + id
	defer b.client.Del(context.WithoutCancel(ctx), key)
	for {
		got, err := b.client.Get(ctx, key).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d instances confirmed the revocation: %w", got, n, ctx.Err())
		case <-time.After(ackPoll):
		}
	}
}

// Subscribe delivers messages until ctx ends, acknowledging each once it
// is applied. A broken or silent subscription (no answer to a ping within
// twice the probe interval) is reported with up(false) and made again, a
// second apart; up(true) follows each confirmed subscription.
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
			id, body, ok := strings.Cut(m.Payload, " ")
			if !ok {
				// Not ours: treat it as a revocation of everything.
				deliver(m.Payload)
				continue
			}
			deliver(body)
			b.ack(ctx, id)
		}
	}
}

// ack confirms that this instance applied the message id. If it cannot,
// the publisher's wait ends with an error (and a log line there).
func (b *RedisSessionBus) ack(ctx context.Context, id string) {
	key := b.acks + id
	_, _ = b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, key)
		p.Expire(ctx, key, time.Minute)
		return nil
	})
}

var _ models.SessionBus = (*RedisSessionBus)(nil)

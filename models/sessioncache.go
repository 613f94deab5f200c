package models

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Session-cache bounds. The TTL is the floor of revocation: whatever
// happens to the revocation messages, a cached session is believed no
// longer than this without asking the database again. It is kept below
// sessionTouchInterval so that a session in use still has last_seen_at
// written at least once a minute.
const (
	DefaultSessionCacheTTL  = 5 * time.Second
	MaxSessionCacheTTL      = 30 * time.Second
	DefaultSessionCacheSize = 10_000
	// sessionRevokeWait bounds how long a revocation waits for every
	// instance to confirm it.
	sessionRevokeWait = 2 * time.Second
)

// SessionBus carries session revocations between the instances of one
// deployment (Redis pub/sub in the server). Publish sends a message to
// every subscribed instance, the publishing one included, and returns
// once each of them has applied it (its deliver function has returned), or
// with an error. Subscribe delivers the messages until ctx ends; it calls
// up(false) whenever messages may have been missed (the subscription
// broke) and up(true) each time it is subscribed (again).
type SessionBus interface {
	Publish(ctx context.Context, msg string) error
	Subscribe(ctx context.Context, deliver func(msg string), up func(bool))
}

// SessionCacheConfig configures a SessionCache; zero fields take the
// defaults.
type SessionCacheConfig struct {
	TTL  time.Duration // how long a verified session is believed (default 5 s, at most 30 s)
	Size int           // sessions kept at most (default 10,000; least recently used go first)
	// Bus carries revocations to and from the other instances; nil means
	// this process is the only instance (SQLite), and revocations are
	// applied here only.
	Bus    SessionBus
	Logger *slog.Logger
}

// SessionCache keeps recently verified session tokens in memory, so that
// an authenticated request does not cost a database round trip. It is
// never more permissive than the database for longer than the TTL, and in
// practice not at all:
//
//   - every revocation (logout, password change, an admin's lock) removes
//     the sessions from this instance's cache, and is published on the
//     bus; the request that made it answers only once every subscribed
//     instance has confirmed that it applied it;
//   - a database read that raced with a revocation is not cached (an
//     epoch counter, bumped by every revocation, must be the same before
//     the read and after it);
//   - while the bus is down (messages may be missed), the cache is empty
//     and unused: every request asks the database, as without a cache;
//   - expiry, idle timeout and last_seen_at are checked as before: an
//     entry is used only while the session is valid by the times the
//     database gave, and only until last_seen_at is due to be written.
//
// Keys are the SHA-256 of the tokens (what the database stores), never the
// tokens.
type SessionCache struct {
	ttl    time.Duration
	bus    SessionBus
	log    *slog.Logger
	hits   atomic.Uint64
	misses atomic.Uint64

	mu      sync.Mutex
	entries *lru.Cache[[32]byte, sessionEntry]
	epoch   uint64
	up      bool
}

type sessionEntry struct {
	p        Principal
	expires  time.Time // absolute expiry of the session
	lastSeen time.Time // last_seen_at as stored
	until    time.Time // when this entry must be read again (TTL)
}

// NewSessionCache returns a cache; Run must be called when it has a bus.
func NewSessionCache(cfg SessionCacheConfig) (*SessionCache, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultSessionCacheTTL
	}
	cfg.TTL = min(cfg.TTL, MaxSessionCacheTTL)
	if cfg.Size <= 0 {
		cfg.Size = DefaultSessionCacheSize
	}
	entries, err := lru.New[[32]byte, sessionEntry](cfg.Size)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SessionCache{ttl: cfg.TTL, bus: cfg.Bus, log: log, entries: entries,
		up: cfg.Bus == nil}, nil
}

// Run listens to the bus until ctx ends (without a bus it returns at once).
// Until the first subscription is confirmed the cache is not used.
func (c *SessionCache) Run(ctx context.Context) {
	if c.bus == nil {
		return
	}
	c.bus.Subscribe(ctx, c.deliver, c.setUp)
	c.setUp(false)
}

// Up reports whether the cache is in use: always without a bus, and with
// one while it is subscribed.
func (c *SessionCache) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// Hits and Misses count lookups (metrics, benchmarks).
func (c *SessionCache) Hits() uint64   { return c.hits.Load() }
func (c *SessionCache) Misses() uint64 { return c.misses.Load() }

// lookup returns the cached principal for a token hash, if the entry is
// still to be believed at now.
func (c *SessionCache) lookup(key [32]byte, now time.Time, idle time.Duration) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		c.misses.Add(1)
		return Principal{}, false
	}
	e, ok := c.entries.Get(key)
	if !ok {
		c.misses.Add(1)
		return Principal{}, false
	}
	if !now.Before(e.until) || !now.Before(e.expires) || !e.lastSeen.After(now.Add(-idle)) ||
		now.Sub(e.lastSeen) >= sessionTouchInterval {
		c.entries.Remove(key)
		c.misses.Add(1)
		return Principal{}, false
	}
	c.hits.Add(1)
	return e.p, true
}

// currentEpoch is read before a database read whose result may be cached.
func (c *SessionCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// store caches a session read from the database at now, unless a
// revocation (or a bus outage) happened since epoch was read.
func (c *SessionCache) store(key [32]byte, p Principal, expires, lastSeen, now time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up || c.epoch != epoch {
		return
	}
	c.entries.Add(key, sessionEntry{p: p, expires: expires, lastSeen: lastSeen, until: now.Add(c.ttl)})
}

// Revocation messages: "s:<session id>" ends one session, "u:<user id>"
// every session of a user.
const (
	revokeSession = "s"
	revokeUser    = "u"
)

// revoke removes the sessions named by kind and id here, then tells the
// other instances and waits until each has applied it. A bus failure is
// logged: the database already refuses the sessions, and the other
// instances stop believing them within the TTL.
func (c *SessionCache) revoke(ctx context.Context, kind, id string) {
	c.mu.Lock()
	c.apply(kind, id)
	c.mu.Unlock()
	if c.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionRevokeWait)
	defer cancel()
	if err := c.bus.Publish(ctx, kind+":"+id); err != nil {
		c.log.Error("session revocation not confirmed by every instance: they stop accepting the session when their cache entry expires",
			"ttl", c.ttl.String(), "error", err.Error())
	}
}

// deliver applies a message from the bus.
func (c *SessionCache) deliver(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(kind, id)
}

// apply removes the sessions a revocation names and bumps the epoch; a
// message it does not understand empties the whole cache. c.mu is held.
func (c *SessionCache) apply(kind, id string) {
	c.epoch++
	if (kind != revokeSession && kind != revokeUser) || id == "" {
		c.entries.Purge()
		return
	}
	for _, k := range c.entries.Keys() {
		e, ok := c.entries.Peek(k)
		if ok && (kind == revokeSession && e.p.SessionID == id || kind == revokeUser && e.p.UserID == id) {
			c.entries.Remove(k)
		}
	}
}

// setUp records whether the bus is subscribed. Either way the cache
// starts empty: messages may have been missed in between.
func (c *SessionCache) setUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up != up {
		if up {
			c.log.Info("session cache: revocation bus subscribed; cache in use")
		} else {
			c.log.Warn("session cache: revocation bus lost; every request asks the database until it is back")
		}
	}
	c.up = up
	c.epoch++
	c.entries.Purge()
}

// SetSessionCache makes authentication use c (nil: none). Call it once at
// start-up, before serving.
func (db *DB) SetSessionCache(c *SessionCache) { db.sessions = c }

// revokeSessions tells the session cache, if any, that sessions were ended
// in the database.
func (db *DB) revokeSessions(ctx context.Context, kind, id string) {
	if db.sessions != nil {
		db.sessions.revoke(ctx, kind, id)
	}
}

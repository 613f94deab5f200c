package models

import (
	"context"
	"testing"
	"time"
)

// TestSessionCacheRaceWithRevocation: a session read from the database
// before a revocation arrived, and stored after it, is not cached: the
// next request reads the database again.
func TestSessionCacheRaceWithRevocation(t *testing.T) {
	c, err := NewSessionCache(SessionCacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	key := [32]byte{1}
	p := Principal{Kind: PrincipalSession, UserID: "u1", SessionID: "s1"}
	epoch := c.currentEpoch() // the request reads the epoch, then the database...
	c.revoke(context.Background(), revokeSession, "s1")
	c.store(key, p, now.Add(time.Hour), now, now, epoch) // ...and stores what it read
	if _, ok := c.lookup(key, now, time.Hour); ok {
		t.Fatal("a session read before its revocation was cached after it")
	}
	c.store(key, p, now.Add(time.Hour), now, now, c.currentEpoch())
	if _, ok := c.lookup(key, now, time.Hour); !ok {
		t.Fatal("a session read with no revocation in between was not cached")
	}
	c.deliver("u:u1")
	if _, ok := c.lookup(key, now, time.Hour); ok {
		t.Fatal("a user revocation from the bus left the user's session cached")
	}
	c.store(key, p, now.Add(time.Hour), now, now, c.currentEpoch())
	c.deliver("garbage")
	if _, ok := c.lookup(key, now, time.Hour); ok {
		t.Fatal("a message the cache does not understand did not empty it")
	}
}

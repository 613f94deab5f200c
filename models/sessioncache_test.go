package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// cachedAccounts returns accounts on db with a session cache (bus nil:
// this process only) and a clock the test moves.
func cachedAccounts(t *testing.T, db *models.DB, bus models.SessionBus) (*models.Accounts, *models.SessionCache, *clock) {
	t.Helper()
	c, err := models.NewSessionCache(models.SessionCacheConfig{TTL: 5 * time.Second, Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	db.SetSessionCache(c)
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	a, err := models.NewAccounts(context.Background(), db, models.AccountsConfig{
		Hasher: models.NewPasswordHasher(fastParams), Policy: policy, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, c, clk
}

// TestSessionCacheRevocation: sessions served from the cache are refused
// by the very next request after a logout, a password change (the other
// sessions) and an administrator's lock.
func TestSessionCacheRevocation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a, cache, _ := cachedAccounts(t, db, nil)
		const pw = testPassword
		login := func(email string) (string, models.Principal) {
			t.Helper()
			res, err := a.Login(ctx, email, pw)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second one must come from the cache.
			if _, err := a.Authenticate(ctx, res.Token); err != nil {
				t.Fatal(err)
			}
			hits := cache.Hits()
			p, err := a.Authenticate(ctx, res.Token)
			if err != nil || cache.Hits() != hits+1 {
				t.Fatalf("the session was not served from the cache (%v, hits %d → %d)", err, hits, cache.Hits())
			}
			return res.Token, p
		}
		refused := func(token, what string) {
			t.Helper()
			if _, err := a.Authenticate(ctx, token); models.KindOf(err) != models.KindUnauthenticated {
				t.Errorf("%s: Authenticate = %v, want unauthenticated", what, err)
			}
		}
		for _, e := range []string{"a@example.com", "b@example.com", "admin@example.com"} {
			role := models.RoleUser
			if e == "admin@example.com" {
				role = models.RoleAdmin
			}
			if _, err := a.CreateUser(ctx, models.NewUser{Email: e, DisplayName: "U", Password: pw, Role: role}); err != nil {
				t.Fatal(err)
			}
		}

		token, p := login("a@example.com")
		if err := a.Logout(ctx, p); err != nil {
			t.Fatal(err)
		}
		refused(token, "after logout")

		current, cp := login("a@example.com")
		other, _ := login("a@example.com")
		if err := a.ChangePassword(ctx, cp, pw, "a different passphrase 42"); err != nil {
			t.Fatal(err)
		}
		refused(other, "the other session after a password change")
		if _, err := a.Authenticate(ctx, current); err != nil {
			t.Errorf("the session that changed the password: %v", err)
		}

		victim, vp := login("b@example.com")
		_, ap := login("admin@example.com")
		admins, err := models.NewAdminUsers(db, ap)
		if err != nil {
			t.Fatal(err)
		}
		if err := admins.Lock(ctx, vp.UserID); err != nil {
			t.Fatal(err)
		}
		refused(victim, "after an admin's lock")
	})
}

// TestSessionCacheTTLIsTheFloor: a session ended behind the cache's back
// (a direct DELETE, as a revocation whose message was lost) is believed
// no longer than the TTL; expiry and idle timeout still apply to cached
// sessions.
func TestSessionCacheTTLIsTheFloor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a, _, clk := cachedAccounts(t, db, nil)
		newUser(t, db, "ttl@example.com")
		res, err := a.Login(ctx, "ttl@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, res.Token); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecForTest(ctx, `DELETE FROM sessions`); err != nil {
			t.Fatal(err)
		}
		clk.Advance(4 * time.Second)
		if _, err := a.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("within the TTL the cached session is still believed (that is the floor): %v", err)
		}
		clk.Advance(2 * time.Second)
		if _, err := a.Authenticate(ctx, res.Token); models.KindOf(err) != models.KindUnauthenticated {
			t.Errorf("past the TTL: %v, want unauthenticated", err)
		}
	})
}

// downBus never subscribes: messages could be missed.
type downBus struct{}

func (downBus) Publish(context.Context, string) error { return context.DeadlineExceeded }
func (downBus) Subscribe(ctx context.Context, _ func(string), up func(bool)) {
	up(false)
	<-ctx.Done()
}

// TestSessionCacheUnusedWhileTheBusIsDown: while revocations may be
// missed, every request reads the database, so a revocation done
// elsewhere is refused at once.
func TestSessionCacheUnusedWhileTheBusIsDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, cache, _ := cachedAccounts(t, db, downBus{})
		go cache.Run(ctx)
		newUser(t, db, "down@example.com")
		res, err := a.Login(ctx, "down@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := a.Authenticate(ctx, res.Token); err != nil {
				t.Fatal(err)
			}
		}
		if cache.Hits() != 0 || cache.Up() {
			t.Errorf("cache used while its bus is down: %d hits, up %v", cache.Hits(), cache.Up())
		}
		if _, err := db.ExecForTest(ctx, `DELETE FROM sessions`); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, res.Token); models.KindOf(err) != models.KindUnauthenticated {
			t.Errorf("after a revocation elsewhere: %v, want unauthenticated", err)
		}
	})
}

package models_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// testPassword satisfies the policy; newUser registers with it too.
const testPassword = "correct horse battery staple"

// defaultHashPrefix is how a hash made with DefaultArgon2Params starts
// (SECURITY-BASELINE §2: the OWASP minimum m=19456 KiB, t=2, p=1).
const defaultHashPrefix = "$argon2id$v=19$m=19456,t=2,p=1$"

// clock is a movable clock for AccountsConfig.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newPolicy(tb testing.TB) *models.PasswordPolicy {
	tb.Helper()
	p, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// newAccountsWith returns Accounts configured by cfg, with the default
// hasher and policy where cfg leaves them out.
func newAccountsWith(tb testing.TB, db *models.DB, cfg models.AccountsConfig) *models.Accounts {
	tb.Helper()
	if cfg.Hasher == nil {
		cfg.Hasher = models.NewPasswordHasher(models.DefaultArgon2Params)
	}
	if cfg.Policy == nil {
		cfg.Policy = newPolicy(tb)
	}
	a, err := models.NewAccounts(context.Background(), db, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func register(tb testing.TB, a *models.Accounts, email, password string) models.User {
	tb.Helper()
	u, err := a.Register(context.Background(), models.NewUser{Email: email, DisplayName: "Test User", Password: password})
	if err != nil {
		tb.Fatalf("register %s: %v", email, err)
	}
	return u
}

func login(tb testing.TB, a *models.Accounts, email, password string) models.LoginResult {
	tb.Helper()
	res, err := a.Login(context.Background(), email, password)
	if err != nil {
		tb.Fatalf("login %s: %v", email, err)
	}
	return res
}

func authenticate(tb testing.TB, a *models.Accounts, token string) models.Principal {
	tb.Helper()
	p, err := a.Authenticate(context.Background(), token)
	if err != nil {
		tb.Fatalf("authenticate: %v", err)
	}
	return p
}

// rejected fails the test unless token is refused as unauthenticated.
func rejected(tb testing.TB, a *models.Accounts, token, why string) {
	tb.Helper()
	if p, err := a.Authenticate(context.Background(), token); !errors.Is(err, models.ErrUnauthenticated) {
		tb.Errorf("%s: Authenticate = %+v, %v; want unauthenticated", why, p, err)
	}
}

// newAdmin creates an admin (as the CLI does) and returns its principal,
// obtained by logging in.
func newAdmin(tb testing.TB, a *models.Accounts, email string) models.Principal {
	tb.Helper()
	if _, err := a.CreateUser(context.Background(), models.NewUser{
		Email: email, DisplayName: "Admin", Password: testPassword, Role: models.RoleAdmin,
	}); err != nil {
		tb.Fatal(err)
	}
	p := authenticate(tb, a, login(tb, a, email, testPassword).Token)
	if !p.IsAdmin() {
		tb.Fatalf("admin principal %+v is not an admin", p)
	}
	return p
}

func newAdminUsers(tb testing.TB, db *models.DB, actor models.Principal) *models.AdminUsers {
	tb.Helper()
	admin, err := models.NewAdminUsers(db, actor)
	if err != nil {
		tb.Fatal(err)
	}
	return admin
}

// asError returns err as *models.Error, failing the test if it is not one.
func asError(tb testing.TB, err error) *models.Error {
	tb.Helper()
	var e *models.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T) is not a *models.Error", err, err)
	}
	return e
}

// wantInvalidField fails the test unless err is KindInvalid naming field.
func wantInvalidField(tb testing.TB, err error, field string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want invalid %s", field)
	}
	e := asError(tb, err)
	if e.Kind != models.KindInvalid || len(e.Fields) != 1 || e.Fields[0].Field != field || e.Fields[0].Message == "" {
		tb.Errorf("error %v (fields %+v), want KindInvalid on field %q with a message", e, e.Fields, field)
	}
}

func passwordHash(tb testing.TB, db *models.DB, userID string) string {
	tb.Helper()
	h, err := db.QueryStringForTest(context.Background(), `SELECT password_hash FROM users WHERE id = ?`, userID)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func countSessions(tb testing.TB, db *models.DB, userID string) int64 {
	tb.Helper()
	n, err := db.QueryIntForTest(context.Background(), `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestRegister(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})

		// The role in the input is ignored: sign-up makes ordinary users.
		u, err := a.Register(ctx, models.NewUser{
			Email: "alice@example.com", DisplayName: "Alice", Password: testPassword, Role: models.RoleAdmin,
		})
		if err != nil {
			t.Fatal(err)
		}
		if u.Role != models.RoleUser || u.Email != "alice@example.com" || u.DisplayName != "Alice" || u.Locked() || !models.ValidID(u.ID) {
			t.Errorf("registered %+v", u)
		}
		if role, err := db.QueryStringForTest(ctx, `SELECT role FROM users WHERE id = ?`, u.ID); err != nil || role != "user" {
			t.Errorf("stored role %q, %v; want user", role, err)
		}

		// The hash is Argon2id with the baseline parameters, never the
		// password, and salted: the same password hashes differently.
		hash := passwordHash(t, db, u.ID)
		if !strings.HasPrefix(hash, defaultHashPrefix) {
			t.Errorf("stored hash %q does not start with %q", hash, defaultHashPrefix)
		}
		if hash == testPassword || strings.Contains(hash, testPassword) {
			t.Error("the stored hash holds the password")
		}
		bob := register(t, a, "bob@example.com", testPassword)
		if passwordHash(t, db, bob.ID) == hash {
			t.Error("two users with the same password have the same hash: no salt")
		}

		// The e-mail is unique whatever its case.
		for _, email := range []string{"ALICE@example.com", "alice@EXAMPLE.COM", "Alice@Example.Com"} {
			_, err := a.Register(ctx, models.NewUser{Email: email, DisplayName: "Mallory", Password: testPassword})
			e := asError(t, err)
			if e.Kind != models.KindConflict || e.Detail == "" {
				t.Errorf("Register(%s) after alice@example.com: %v, want KindConflict with a detail", email, err)
			}
		}
		if n, err := db.QueryIntForTest(ctx, `SELECT COUNT(*) FROM users`); err != nil || n != 2 {
			t.Errorf("%d users after the conflicts, %v; want 2", n, err)
		}
	})
}

func TestRegisterRejectsInvalidInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})

		badEmails := []struct{ name, email string }{
			{"empty", ""},
			{"no at sign", "alice"},
			{"no domain", "alice@"},
			{"no local part", "@example.com"},
			{"two at signs", "alice@@example.com"},
			{"display name", "Alice <alice@example.com>"},
			{"leading space", " alice@example.com"},
			{"trailing newline", "alice@example.com\n"},
			{"inner space", "al ice@example.com"},
			{"NUL", "alice@example.com\x00"},
			{"bidi override", "alice@exa\u202emple.com"},
			{"255 bytes", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"},
		}
		for _, tc := range badEmails {
			t.Run("email "+tc.name, func(t *testing.T) {
				_, err := a.Register(ctx, models.NewUser{Email: tc.email, DisplayName: "Alice", Password: testPassword})
				wantInvalidField(t, err, "email")
			})
		}

		badPasswords := []struct {
			name, email, displayName, password string
		}{
			{"too short", "p1@example.com", "Alice", "elevenchars"},
			{"too long", "p2@example.com", "Alice", strings.Repeat("x", 129)},
			{"common", "p3@example.com", "Alice", "qwerty123456"},
			{"the e-mail", "margaret.hamilton@example.com", "Alice", "Margaret.Hamilton@example.com"},
			{"the local part", "margaret.hamilton@example.com", "Alice", "margaret.hamilton"},
			{"the display name", "p4@example.com", "Margaret Hamilton", "margaret hamilton"},
		}
		for _, tc := range badPasswords {
			t.Run("password "+tc.name, func(t *testing.T) {
				_, err := a.Register(ctx, models.NewUser{Email: tc.email, DisplayName: tc.displayName, Password: tc.password})
				wantInvalidField(t, err, "password")
				if e := asError(t, err); len(e.Fields) == 1 && strings.Contains(e.Fields[0].Message+e.Detail, tc.password) {
					t.Errorf("the message repeats the password: %+v", e)
				}
			})
		}
		if n, err := db.QueryIntForTest(ctx, `SELECT COUNT(*) FROM users`); err != nil || n != 0 {
			t.Errorf("%d users after invalid registrations, %v; want 0", n, err)
		}
	})
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		hasher := models.NewPasswordHasher(models.DefaultArgon2Params)
		a := newAccountsWith(t, db, models.AccountsConfig{Hasher: hasher})
		register(t, a, "victim@example.com", testPassword)
		locked := register(t, a, "locked@example.com", testPassword)
		admin := newAdminUsers(t, db, newAdmin(t, a, "admin@example.com"))
		if err := admin.Lock(ctx, locked.ID); err != nil {
			t.Fatal(err)
		}

		cases := []struct{ name, email, password string }{
			{"unknown e-mail", "nobody@example.com", testPassword},
			{"wrong password", "victim@example.com", "not the right password"},
			{"locked account, right password", "locked@example.com", testPassword},
			{"locked account, wrong password", "locked@example.com", "not the right password"},
		}
		var first *models.Error
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := hasher.Verifications()
				res, err := a.Login(ctx, tc.email, tc.password)
				if n := hasher.Verifications() - before; n != 1 {
					t.Errorf("%d Argon2id verifications, want exactly 1", n)
				}
				if res.Token != "" {
					t.Errorf("a failed login returned a token")
				}
				e := asError(t, err)
				if e.Kind != models.KindUnauthenticated || e.Detail == "" || e.Cause != nil || e.Fields != nil {
					t.Errorf("error %+v, want KindUnauthenticated with a detail only", e)
				}
				if first == nil {
					first = e
					return
				}
				if e.Kind != first.Kind || e.Detail != first.Detail || e.Error() != first.Error() {
					t.Errorf("error %q differs from the first failure's %q", e.Error(), first.Error())
				}
			})
		}
		if n := countSessions(t, db, locked.ID); n != 0 {
			t.Errorf("the locked user has %d sessions", n)
		}

		// The e-mail of a login is case-insensitive.
		for _, email := range []string{"VICTIM@EXAMPLE.COM", "Victim@Example.com"} {
			if _, err := a.Login(ctx, email, testPassword); err != nil {
				t.Errorf("Login(%s): %v", email, err)
			}
		}
	})
}

func TestSessionTokenIsStoredOnlyAsItsHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})
		u := register(t, a, "token@example.com", testPassword)
		res := login(t, a, "token@example.com", testPassword)
		again := login(t, a, "token@example.com", testPassword)

		if !strings.HasPrefix(res.Token, models.SessionTokenPrefix) || models.SessionTokenPrefix != "rps_" {
			t.Errorf("token %q lacks the rps_ prefix", res.Token)
		}
		if !models.IsSessionToken(res.Token) || res.UserID != u.ID || !models.ValidID(res.SessionID) {
			t.Errorf("login result %+v", res)
		}
		if res.Token == again.Token || res.SessionID == again.SessionID {
			t.Error("two logins gave the same token or session")
		}
		random, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(res.Token, "rps_"))
		if err != nil || len(random) < 32 {
			t.Errorf("token carries %d random bytes (%v), want at least 32", len(random), err)
		}

		stored, err := db.QueryBytesForTest(ctx, `SELECT token_hash FROM sessions WHERE id = ?`, res.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256([]byte(res.Token)); !bytes.Equal(stored, sum[:]) {
			t.Errorf("stored token_hash %x is not the SHA-256 of the token", stored)
		}

		// No column of any session row holds the token or its random part.
		rows, err := db.QueryRowsForTest(ctx, `SELECT * FROM sessions`)
		if err != nil || len(rows) != 2 {
			t.Fatalf("sessions: %d rows, %v", len(rows), err)
		}
		secrets := []string{res.Token, again.Token, strings.TrimPrefix(res.Token, "rps_"), strings.TrimPrefix(again.Token, "rps_")}
		for _, row := range rows {
			for _, v := range row {
				var text string
				switch v := v.(type) {
				case []byte:
					text = string(v)
				default:
					text = fmt.Sprint(v)
				}
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("the sessions table holds a token in clear: %q", text)
					}
				}
			}
		}
	})
}

func TestIsSessionToken(t *testing.T) {
	// All-zero random bytes, so that the variants with a line break below
	// still decode under strict base64 (whose unused trailing bits must be
	// zero): they must be refused for their line breaks alone.
	good := "rps_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if !models.IsSessionToken(good) {
		t.Fatalf("%q is not a session token", good)
	}
	// Each is refused before any database work. Strict base64 decoding
	// skips line breaks, so it alone would accept the last two.
	for _, tok := range []string{
		"",
		"rps_",
		good[4:],
		"rpk_" + good[4:],
		good + "A",
		good[:len(good)-1],
		good[:len(good)-1] + "=",
		good[:len(good)-1] + "B", // the last character carries unused bits that must be zero
		good[:10] + "/" + good[11:],
		good[:len(good)-1] + "\n",
		good[:10] + "\r" + good[11:],
	} {
		if models.IsSessionToken(tok) {
			t.Errorf("IsSessionToken(%q) = true", tok)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := newClock()
		a := newAccountsWith(t, db, models.AccountsConfig{Now: clk.Now})
		if a.IdleTimeout() != models.DefaultSessionIdleTimeout {
			t.Fatalf("idle timeout %v, want the default", a.IdleTimeout())
		}
		u := register(t, a, "auth@example.com", testPassword)

		t.Run("valid", func(t *testing.T) {
			res := login(t, a, u.Email, testPassword)
			p := authenticate(t, a, res.Token)
			if p.Kind != models.PrincipalSession || p.UserID != u.ID || p.Role != models.RoleUser || p.SessionID != res.SessionID {
				t.Errorf("principal %+v", p)
			}
			if !res.ExpiresAt.Equal(clk.Now().Add(models.DefaultSessionAbsoluteTimeout)) {
				t.Errorf("expires_at %v, want login time + %v", res.ExpiresAt, models.DefaultSessionAbsoluteTimeout)
			}
		})

		t.Run("malformed and unknown", func(t *testing.T) {
			good := login(t, a, u.Email, testPassword).Token
			random := make([]byte, 32)
			_, _ = rand.Read(random)
			unknown := "rps_" + base64.RawURLEncoding.EncodeToString(random)
			if !models.IsSessionToken(unknown) {
				t.Fatalf("test token %q is not well-formed", unknown)
			}
			for _, tok := range []string{
				"",
				"rps_",
				"rps",
				"Bearer " + good,
				good[4:],                    // no prefix
				"rpk_" + good[4:],           // another prefix
				"RPS_" + good[4:],           // prefix in another case
				good + "A",                  // one character too many
				good[:len(good)-1],          // one too few
				good + "=",                  // padded
				good[:len(good)-1] + "!",    // not base64url
				good[:10] + "+" + good[11:], // standard base64
				" " + good,
				good + "\n",
				good[:len(good)-1] + "\n", // a line break in place of a character
				"' OR '1'='1",
				unknown,
			} {
				rejected(t, a, tok, fmt.Sprintf("token %q", tok))
			}
			// The token that was mangled above still works.
			authenticate(t, a, good)
		})

		t.Run("after logout", func(t *testing.T) {
			res := login(t, a, u.Email, testPassword)
			other := login(t, a, u.Email, testPassword)
			if err := a.Logout(ctx, authenticate(t, a, res.Token)); err != nil {
				t.Fatal(err)
			}
			rejected(t, a, res.Token, "after logout")
			authenticate(t, a, other.Token) // only that session ended
			if err := a.Logout(ctx, models.Principal{Kind: models.PrincipalAPIKey, UserID: u.ID}); !errors.Is(err, models.ErrForbidden) {
				t.Errorf("Logout of an API-key principal: %v, want forbidden", err)
			}
		})

		t.Run("idle timeout", func(t *testing.T) {
			res := login(t, a, u.Email, testPassword)
			clk.Advance(14 * time.Minute)
			authenticate(t, a, res.Token)
			clk.Advance(14 * time.Minute) // 28 min after login, 14 after last use
			authenticate(t, a, res.Token)
			clk.Advance(16 * time.Minute)
			rejected(t, a, res.Token, "16 min idle")
		})

		t.Run("absolute timeout", func(t *testing.T) {
			res := login(t, a, u.Email, testPassword)
			loggedIn := clk.Now()
			// Used every 10 minutes, the session never idles out...
			for clk.Now().Add(10 * time.Minute).Before(loggedIn.Add(models.DefaultSessionAbsoluteTimeout)) {
				clk.Advance(10 * time.Minute)
				authenticate(t, a, res.Token)
			}
			// ...but it ends at the absolute timeout all the same, though its
			// last use is less than the idle timeout ago.
			clk.Advance(11 * time.Minute)
			if !clk.Now().After(loggedIn.Add(models.DefaultSessionAbsoluteTimeout)) || clk.Now().Sub(loggedIn) > 5*time.Hour {
				t.Fatalf("test clock at %v after login", clk.Now().Sub(loggedIn))
			}
			rejected(t, a, res.Token, "past the absolute timeout")
		})

		t.Run("locked user", func(t *testing.T) {
			res := login(t, a, u.Email, testPassword)
			// Set the lock alone, leaving the session row in place: the
			// authentication query itself must refuse a locked user.
			if _, err := db.ExecForTest(ctx, `UPDATE users SET locked_at = ? WHERE id = ?`, time.Now().UTC(), u.ID); err != nil {
				t.Fatal(err)
			}
			rejected(t, a, res.Token, "locked user, session row kept")
			if _, err := db.ExecForTest(ctx, `UPDATE users SET locked_at = NULL WHERE id = ?`, u.ID); err != nil {
				t.Fatal(err)
			}
			authenticate(t, a, res.Token)

			// Locked the proper way, through AdminUsers.
			admin := newAdminUsers(t, db, newAdmin(t, a, "admin@example.com"))
			if err := admin.Lock(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
			rejected(t, a, res.Token, "locked by an admin")
		})
	})
}

func TestRehashOnLogin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		weakParams := argon2id.Params{Memory: 8 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
		weak := newAccountsWith(t, db, models.AccountsConfig{Hasher: models.NewPasswordHasher(weakParams)})
		u := register(t, weak, "legacy@example.com", testPassword)
		old := passwordHash(t, db, u.ID)
		if !strings.HasPrefix(old, "$argon2id$v=19$m=8192,t=2,p=1$") {
			t.Fatalf("weak hash %q", old)
		}

		a := newAccountsWith(t, db, models.AccountsConfig{Hasher: models.NewPasswordHasher(models.DefaultArgon2Params)})
		// A failed login does not touch the hash.
		if _, err := a.Login(context.Background(), u.Email, "not the right password"); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("wrong password: %v", err)
		}
		if got := passwordHash(t, db, u.ID); got != old {
			t.Errorf("a failed login replaced the hash")
		}

		authenticate(t, a, login(t, a, u.Email, testPassword).Token)
		rehashed := passwordHash(t, db, u.ID)
		if !strings.HasPrefix(rehashed, defaultHashPrefix) {
			t.Errorf("after login the hash is %q, want the default parameters %q", rehashed, defaultHashPrefix)
		}

		// The new hash works, and a current hash is not replaced again.
		login(t, a, u.Email, testPassword)
		if got := passwordHash(t, db, u.ID); got != rehashed {
			t.Errorf("a current hash was replaced on login")
		}
	})
}

func TestChangePassword(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})
		const newPassword = "a brand new passphrase"
		alice := register(t, a, "alice@example.com", testPassword)
		register(t, a, "bob@example.com", testPassword)
		current := login(t, a, "alice@example.com", testPassword)
		other := login(t, a, "alice@example.com", testPassword)
		bobs := login(t, a, "bob@example.com", testPassword)
		p := authenticate(t, a, current.Token)

		cases := []struct {
			name, current, next, field string
		}{
			{"wrong current", "not the right password", newPassword, "current_password"},
			{"too short", testPassword, "short", "new_password"},
			{"common", testPassword, "qwerty123456", "new_password"},
			{"the e-mail", testPassword, "alice@example.com", "new_password"},
			{"same as current", testPassword, testPassword, "new_password"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				wantInvalidField(t, a.ChangePassword(ctx, p, tc.current, tc.next), tc.field)
			})
		}
		apiKey := models.Principal{Kind: models.PrincipalAPIKey, UserID: alice.ID, Scopes: []models.Scope{models.ScopeProjectsWrite}}
		if err := a.ChangePassword(ctx, apiKey, testPassword, newPassword); !errors.Is(err, models.ErrForbidden) {
			t.Errorf("ChangePassword by an API key: %v, want forbidden", err)
		}
		// Nothing changed yet: every session works, the old password too.
		authenticate(t, a, other.Token)
		login(t, a, "alice@example.com", testPassword)

		if err := a.ChangePassword(ctx, p, testPassword, newPassword); err != nil {
			t.Fatal(err)
		}
		authenticate(t, a, current.Token) // the session that made the change stays
		rejected(t, a, other.Token, "alice's other session after the change")
		authenticate(t, a, bobs.Token) // another user's session is untouched
		if n := countSessions(t, db, alice.ID); n != 1 {
			t.Errorf("alice has %d sessions after the change, want 1", n)
		}
		if _, err := a.Login(ctx, "alice@example.com", testPassword); !errors.Is(err, models.ErrUnauthenticated) {
			t.Errorf("login with the old password: %v", err)
		}
		login(t, a, "alice@example.com", newPassword)
	})
}

func TestPurgeExpiredSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := newClock()
		a := newAccountsWith(t, db, models.AccountsConfig{
			Now: clk.Now, IdleTimeout: 15 * time.Minute, AbsoluteTimeout: 30 * time.Minute,
		})
		register(t, a, "alice@example.com", testPassword)
		register(t, a, "bob@example.com", testPassword)

		idle := login(t, a, "alice@example.com", testPassword)     // never used again
		oldButBusy := login(t, a, "bob@example.com", testPassword) // kept in use past the absolute timeout
		if n, err := a.PurgeExpiredSessions(ctx); err != nil || n != 0 {
			t.Fatalf("purge with nothing expired: %d, %v", n, err)
		}
		for range 3 {
			clk.Advance(9 * time.Minute)
			authenticate(t, a, oldButBusy.Token)
		}
		live := login(t, a, "alice@example.com", testPassword) // 27 min after the others
		clk.Advance(4 * time.Minute)                           // 31 min: two sessions expired

		n, err := a.PurgeExpiredSessions(ctx)
		if err != nil || n != 2 {
			t.Fatalf("purge: %d, %v; want 2", n, err)
		}
		rows, err := db.QueryRowsForTest(ctx, `SELECT id FROM sessions`)
		if err != nil || len(rows) != 1 || fmt.Sprint(rows[0][0]) != live.SessionID {
			t.Errorf("sessions left: %v, %v; want only %s", rows, err, live.SessionID)
		}
		authenticate(t, a, live.Token)
		rejected(t, a, idle.Token, "idle session")
		rejected(t, a, oldButBusy.Token, "session past its absolute timeout")
		if n, err := a.PurgeExpiredSessions(ctx); err != nil || n != 0 {
			t.Errorf("second purge: %d, %v; want 0", n, err)
		}
	})
}

func TestNewAdminUsersNeedsAnAdminSession(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		a := newAccountsWith(t, db, models.AccountsConfig{})
		adminP := newAdmin(t, a, "admin@example.com")
		u := register(t, a, "user@example.com", testPassword)
		userP := authenticate(t, a, login(t, a, u.Email, testPassword).Token)

		refused := map[string]models.Principal{
			"user session":      userP,
			"admin's API key":   {Kind: models.PrincipalAPIKey, UserID: adminP.UserID, Role: models.RoleAdmin, APIKeyID: missingID},
			"anonymous":         {},
			"anonymous as role": {Role: models.RoleAdmin},
			"service":           {Kind: models.PrincipalService, Service: "billing", Role: models.RoleAdmin},
			"session, no role":  {Kind: models.PrincipalSession, UserID: adminP.UserID, SessionID: adminP.SessionID},
		}
		for name, p := range refused {
			admin, err := models.NewAdminUsers(db, p)
			if !errors.Is(err, models.ErrForbidden) || admin != nil {
				t.Errorf("%s: NewAdminUsers = %v, %v; want nil, forbidden", name, admin, err)
			}
		}
		if _, err := models.NewAdminUsers(db, adminP); err != nil {
			t.Errorf("admin session: %v", err)
		}
	})
}

func TestAdminLockAndUnlock(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})
		adminP := newAdmin(t, a, "admin@example.com")
		admin := newAdminUsers(t, db, adminP)
		u := register(t, a, "user@example.com", testPassword)
		bystander := register(t, a, "bystander@example.com", testPassword)
		s1 := login(t, a, u.Email, testPassword)
		s2 := login(t, a, u.Email, testPassword)
		sb := login(t, a, bystander.Email, testPassword)

		if err := admin.Lock(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		rejected(t, a, s1.Token, "first session after lock")
		rejected(t, a, s2.Token, "second session after lock")
		if n := countSessions(t, db, u.ID); n != 0 {
			t.Errorf("%d sessions of the locked user remain", n)
		}
		authenticate(t, a, sb.Token)
		if _, err := a.Login(ctx, u.Email, testPassword); !errors.Is(err, models.ErrUnauthenticated) {
			t.Errorf("login of a locked user: %v", err)
		}
		lockedAt := func() time.Time {
			t.Helper()
			me, err := a.Me(ctx, models.Principal{Kind: models.PrincipalSession, UserID: u.ID})
			if err != nil || me.LockedAt == nil {
				t.Fatalf("locked user: %+v, %v", me, err)
			}
			return *me.LockedAt
		}
		first := lockedAt()

		// Locking again is a no-op that keeps the original time.
		if err := admin.Lock(ctx, u.ID); err != nil {
			t.Errorf("second lock: %v", err)
		}
		if again := lockedAt(); !again.Equal(first) {
			t.Errorf("second lock moved locked_at from %v to %v", first, again)
		}

		// An admin cannot lock themselves out.
		err := admin.Lock(ctx, adminP.UserID)
		if e := asError(t, err); e.Kind != models.KindConflict || e.Detail == "" {
			t.Errorf("self-lock: %v, want KindConflict with a detail", err)
		}
		if me, err := a.Me(ctx, adminP); err != nil || me.Locked() {
			t.Errorf("admin after self-lock attempt: %+v, %v", me, err)
		}

		for _, id := range []string{missingID, "", "x", "' OR '1'='1", strings.ToUpper(u.ID), "{" + u.ID + "}"} {
			if err := admin.Lock(ctx, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Lock(%q): %v, want not found", id, err)
			}
			if _, err := admin.Unlock(ctx, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Unlock(%q): %v, want not found", id, err)
			}
		}

		if got, err := admin.Unlock(ctx, u.ID); err != nil || got.Email != u.Email {
			t.Fatalf("Unlock = %+v, %v", got, err)
		}
		rejected(t, a, s1.Token, "old session after unlock") // sessions do not come back
		authenticate(t, a, login(t, a, u.Email, testPassword).Token)
		if me, err := a.Me(ctx, models.Principal{Kind: models.PrincipalSession, UserID: u.ID}); err != nil || me.Locked() {
			t.Errorf("after unlock: %+v, %v", me, err)
		}
	})
}

func TestAdminListPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccountsWith(t, db, models.AccountsConfig{})
		adminP := newAdmin(t, a, "admin@example.com")
		admin := newAdminUsers(t, db, adminP)
		want := []string{"admin@example.com"}
		for i := range 4 {
			email := fmt.Sprintf("user%d@example.com", i)
			register(t, a, email, testPassword)
			want = append(want, email)
		}
		var got []string
		req := models.PageRequest{Limit: 2}
		for pages := 1; ; pages++ {
			if pages > 3 {
				t.Fatalf("more than 3 pages of 2 for %d users", len(want))
			}
			page, err := admin.List(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Items {
				got = append(got, u.Email)
			}
			if page.Next == 0 {
				break
			}
			req.After = page.Next
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("pages gave %v, want %v", got, want)
		}
	})
}

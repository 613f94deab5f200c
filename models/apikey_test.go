package models_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// nowClock is a movable clock that starts at the real time: API keys are
// created against the system clock (an expiry must be in the future), and
// the clock of Accounts then moves past it.
func nowClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Microsecond)} }

func newKey(tb testing.TB, repo *models.APIKeyRepo, in models.NewAPIKey) models.CreatedAPIKey {
	tb.Helper()
	if in.Name == "" {
		in.Name = "ci"
	}
	if in.Scopes == nil {
		in.Scopes = []models.Scope{models.ScopeProjectsRead}
	}
	if in.RateLimit == 0 {
		in.RateLimit = 600
	}
	k, err := repo.Create(context.Background(), in)
	if err != nil {
		tb.Fatalf("create API key: %v", err)
	}
	return k
}

func countKeys(tb testing.TB, db *models.DB, userID string) int64 {
	tb.Helper()
	n, err := db.QueryIntForTest(context.Background(), `SELECT COUNT(*) FROM api_keys WHERE user_id = ?`, userID)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// lastUsed reads a key's last_used_at through the owner's list.
func lastUsed(tb testing.TB, repo *models.APIKeyRepo, id string) *time.Time {
	tb.Helper()
	page, err := repo.List(context.Background(), models.PageRequest{Limit: 100})
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range page.Items {
		if k.ID == id {
			return k.LastUsedAt
		}
	}
	tb.Fatalf("key %s is not in its owner's list", id)
	return nil
}

func TestAPIKeyIsStoredOnlyAsItsHash(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "keys@example.com")
		k := newKey(t, models.NewAPIKeyRepo(db, owner), models.NewAPIKey{Name: "deploy"})

		// The shape: the marker, 256 random bits, base64url; the stored
		// prefix is the marker and 8 characters of the random part.
		if !strings.HasPrefix(k.Key, models.APIKeyPrefix) || !models.IsAPIKey(k.Key) {
			t.Fatalf("key %q does not have the API-key shape", k.Key)
		}
		secret := strings.TrimPrefix(k.Key, models.APIKeyPrefix)
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Fatalf("random part: %d bytes, %v; want 32", len(raw), err)
		}
		if want := k.Key[:len(models.APIKeyPrefix)+8]; k.Prefix != want {
			t.Errorf("prefix %q, want %q (rpk_ and 8 characters)", k.Prefix, want)
		}

		// No column holds the key, its random part or its bytes; the
		// SHA-256 of the key is there.
		rows, err := db.QueryRowsForTest(ctx, `SELECT * FROM api_keys`)
		if err != nil || len(rows) != 1 {
			t.Fatalf("api_keys rows: %d, %v", len(rows), err)
		}
		hash := sha256.Sum256([]byte(k.Key))
		hashFound := false
		for i, v := range rows[0] {
			var b []byte
			switch v := v.(type) {
			case []byte:
				b = v
			case string:
				b = []byte(v)
			default:
				b = []byte(fmt.Sprint(v))
			}
			for _, leak := range [][]byte{[]byte(k.Key), []byte(secret), raw} {
				if bytes.Contains(b, leak) {
					t.Errorf("column %d holds the key (or its random part): %q", i, b)
				}
			}
			if bytes.Equal(b, hash[:]) {
				hashFound = true
			}
		}
		if !hashFound {
			t.Error("no column holds the SHA-256 of the key")
		}
		// The secret exists only in what Create returned.
		page, err := models.NewAPIKeyRepo(db, owner).List(ctx, models.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].Prefix != k.Prefix {
			t.Fatalf("List: %+v, %v", page.Items, err)
		}
	})
}

func TestAPIKeyScopesRoundTripSortedAndUnique(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "scopes@example.com")
		repo := models.NewAPIKeyRepo(db, owner)
		want := models.Scopes{models.ScopeProjectsRead, models.ScopeProjectsWrite}
		k := newKey(t, repo, models.NewAPIKey{Scopes: []models.Scope{
			models.ScopeProjectsWrite, models.ScopeProjectsRead, models.ScopeProjectsWrite}})
		if !slices.Equal(k.Scopes, want) {
			t.Errorf("created scopes %v, want %v", k.Scopes, want)
		}
		stored, err := db.QueryStringForTest(ctx, `SELECT scopes FROM api_keys WHERE id = ?`, k.ID)
		if err != nil || stored != "projects:read,projects:write" {
			t.Errorf("stored scopes %q, %v", stored, err)
		}
		page, err := repo.List(ctx, models.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 1 || !slices.Equal(page.Items[0].Scopes, want) {
			t.Errorf("listed: %+v, %v", page.Items, err)
		}
		p := authenticate(t, newAccounts(t, db), k.Key)
		if !slices.Equal(p.Scopes, []models.Scope(want)) {
			t.Errorf("principal scopes %v, want %v", p.Scopes, want)
		}

		one := newKey(t, repo, models.NewAPIKey{Scopes: []models.Scope{models.ScopeProjectsRead}})
		if p := authenticate(t, newAccounts(t, db), one.Key); !p.HasScope(models.ScopeProjectsRead) || p.HasScope(models.ScopeProjectsWrite) {
			t.Errorf("read-only key: principal scopes %v", p.Scopes)
		}
	})
}

func TestAPIKeyCreateRejectsInvalidInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "invalid-keys@example.com")
		repo := models.NewAPIKeyRepo(db, owner)
		past := time.Now().Add(-time.Minute)
		read := []models.Scope{models.ScopeProjectsRead}
		for _, tc := range []struct {
			name  string
			in    models.NewAPIKey
			field string
		}{
			{"no scopes", models.NewAPIKey{Name: "x", RateLimit: 10}, "scopes"},
			{"unknown scope", models.NewAPIKey{Name: "x", Scopes: []models.Scope{"admin:*"}, RateLimit: 10}, "scopes"},
			{"known and unknown scope", models.NewAPIKey{Name: "x", Scopes: []models.Scope{models.ScopeProjectsRead, "keys:write"}, RateLimit: 10}, "scopes"},
			{"past expiry", models.NewAPIKey{Name: "x", Scopes: read, RateLimit: 10, ExpiresAt: &past}, "expires_at"},
			{"zero rate", models.NewAPIKey{Name: "x", Scopes: read}, "rate_limit"},
			{"negative rate", models.NewAPIKey{Name: "x", Scopes: read, RateLimit: -1}, "rate_limit"},
		} {
			_, err := repo.Create(ctx, tc.in)
			wantInvalidField(t, err, tc.field)
		}
		if n := countKeys(t, db, owner); n != 0 {
			t.Errorf("%d keys stored after invalid creates", n)
		}
	})
}

func TestAuthenticateAPIKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		clk := nowClock()
		a := newAccountsWith(t, db, models.AccountsConfig{Now: clk.Now})
		u := register(t, a, "robot-owner@example.com", testPassword)
		repo := models.NewAPIKeyRepo(db, u.ID)
		k := newKey(t, repo, models.NewAPIKey{Name: "robot", RateLimit: 42,
			Scopes: []models.Scope{models.ScopeProjectsRead, models.ScopeProjectsWrite}})

		p := authenticate(t, a, k.Key)
		if p.Kind != models.PrincipalAPIKey || p.UserID != u.ID || p.APIKeyID != k.ID || p.Role != models.RoleUser ||
			p.RateLimit != 42 || p.SessionID != "" || !slices.Equal(p.Scopes, []models.Scope{models.ScopeProjectsRead, models.ScopeProjectsWrite}) {
			t.Errorf("principal %+v", p)
		}
		if p.IsAdmin() {
			t.Error("an API key acts as admin")
		}

		t.Run("unknown and malformed", func(t *testing.T) {
			other := newKey(t, models.NewAPIKeyRepo(db, newUser(t, db, "other@example.com")), models.NewAPIKey{})
			body := strings.TrimPrefix(k.Key, models.APIKeyPrefix)
			// The same key with its first random character changed: still
			// well formed, so it reaches the lookup and is unknown there.
			changed := []byte(body)
			changed[0] = map[bool]byte{true: 'B', false: 'A'}[changed[0] == 'A']
			for _, tc := range []struct{ why, token string }{
				{"unknown key of the right shape", models.APIKeyPrefix + strings.Repeat("A", 43)},
				{"one character changed", models.APIKeyPrefix + string(changed)},
				{"truncated", k.Key[:len(k.Key)-1]},
				{"extended", k.Key + "A"},
				{"line break inside", k.Key[:20] + "\n" + k.Key[21:]},
				{"prefix only", k.Prefix},
				{"marker only", models.APIKeyPrefix},
				{"other marker", "rpx_" + body},
				{"session marker", models.SessionTokenPrefix + body},
				{"upper-case marker", "RPK_" + body},
				{"empty", ""},
			} {
				rejected(t, a, tc.token, tc.why)
			}
			// The other user's key still works: refusing is not a side effect.
			if p := authenticate(t, a, other.Key); p.APIKeyID != other.ID {
				t.Errorf("other key: %+v", p)
			}
		})

		t.Run("expired", func(t *testing.T) {
			expires := time.Now().Add(time.Hour)
			e := newKey(t, repo, models.NewAPIKey{ExpiresAt: &expires})
			if e.ExpiresAt == nil || !e.ExpiresAt.Equal(expires.UTC().Truncate(time.Microsecond)) {
				t.Errorf("ExpiresAt %v, want %v", e.ExpiresAt, expires)
			}
			authenticate(t, a, e.Key)
			clk.Advance(59 * time.Minute)
			authenticate(t, a, e.Key)
			clk.Advance(2 * time.Minute)
			rejected(t, a, e.Key, "past its expiry")
			authenticate(t, a, k.Key) // a key without expiry lives on
		})

		t.Run("revoked", func(t *testing.T) {
			r := newKey(t, repo, models.NewAPIKey{Name: "to revoke"})
			authenticate(t, a, r.Key)
			if err := repo.Delete(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			rejected(t, a, r.Key, "revoked")
			if err := repo.Delete(ctx, r.ID); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("second Delete: %v, want not found", err)
			}
		})

		t.Run("locked user", func(t *testing.T) {
			if _, err := db.ExecForTest(ctx, `UPDATE users SET locked_at = ? WHERE id = ?`, time.Now().UTC(), u.ID); err != nil {
				t.Fatal(err)
			}
			rejected(t, a, k.Key, "owner locked")
			if _, err := db.ExecForTest(ctx, `UPDATE users SET locked_at = NULL WHERE id = ?`, u.ID); err != nil {
				t.Fatal(err)
			}
			authenticate(t, a, k.Key)
		})
	})
}

func TestAPIKeyLastUsedAtIsWrittenAtMostOnceAMinute(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		clk := nowClock()
		a := newAccountsWith(t, db, models.AccountsConfig{Now: clk.Now})
		u := register(t, a, "last-used@example.com", testPassword)
		repo := models.NewAPIKeyRepo(db, u.ID)
		k := newKey(t, repo, models.NewAPIKey{})
		if got := lastUsed(t, repo, k.ID); got != nil {
			t.Fatalf("last_used_at %v before any use", got)
		}

		first := clk.Now()
		authenticate(t, a, k.Key)
		if got := lastUsed(t, repo, k.ID); got == nil || !got.Equal(first) {
			t.Fatalf("after first use: %v, want %v", got, first)
		}
		clk.Advance(30 * time.Second)
		authenticate(t, a, k.Key)
		clk.Advance(29 * time.Second)
		authenticate(t, a, k.Key)
		if got := lastUsed(t, repo, k.ID); got == nil || !got.Equal(first) {
			t.Errorf("within the minute: %v, want it left at %v", got, first)
		}
		clk.Advance(time.Second) // a minute after the write
		second := clk.Now()
		authenticate(t, a, k.Key)
		if got := lastUsed(t, repo, k.ID); got == nil || !got.Equal(second) {
			t.Errorf("a minute later: %v, want %v", got, second)
		}
	})
}

func TestAPIKeyRepoIsOwnerScoped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		a := newAccounts(t, db)
		alice := newUser(t, db, "alice-keys@example.com")
		bob := newUser(t, db, "bob-keys@example.com")
		aliceRepo, bobRepo := models.NewAPIKeyRepo(db, alice), models.NewAPIKeyRepo(db, bob)
		ak := newKey(t, aliceRepo, models.NewAPIKey{Name: "alice's"})
		bk := newKey(t, bobRepo, models.NewAPIKey{Name: "bob's"})

		page, err := bobRepo.List(ctx, models.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != bk.ID {
			t.Errorf("bob's list: %+v, %v", page.Items, err)
		}
		for _, id := range []string{ak.ID, missingID, "not-a-uuid", ""} {
			if err := bobRepo.Delete(ctx, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("bob Delete(%q): %v, want not found", id, err)
			}
		}
		if p := authenticate(t, a, ak.Key); p.APIKeyID != ak.ID || p.UserID != alice {
			t.Errorf("alice's key after bob's attempts: %+v", p)
		}
		if n := countKeys(t, db, alice); n != 1 {
			t.Errorf("alice has %d keys, want 1", n)
		}

		// Paging the owner's list.
		for i := range 4 {
			newKey(t, aliceRepo, models.NewAPIKey{Name: fmt.Sprintf("k%d", i)})
		}
		var seen []string
		req := models.PageRequest{Limit: 2}
		for {
			page, err := aliceRepo.List(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page.Items {
				seen = append(seen, k.Name)
			}
			if page.Next == 0 {
				break
			}
			req.After = page.Next
		}
		if want := []string{"alice's", "k0", "k1", "k2", "k3"}; !slices.Equal(seen, want) {
			t.Errorf("pages: %v, want %v", seen, want)
		}
	})
}

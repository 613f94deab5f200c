package main

// End-to-end tests of the session cache: two complete API instances, each
// with its own cache of verified session tokens, sharing one database and
// one Redis. A logout, a password change or an administrator's lock on one
// instance must be refused at once on the other, whose cache still held
// the session a moment before.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/middleware/redistest"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// cachedInstance is an instance whose database has a session cache; with
// bus true its revocations go through Redis (prefix), otherwise they stay
// in the instance.
type cachedInstance struct {
	*instance
	cache *models.SessionCache
}

func newCachedInstance(t *testing.T, u models.DatabaseURL, prefix string, bus bool) cachedInstance {
	t.Helper()
	var cache *models.SessionCache
	in := newInstanceWith(t, u, nil, "", sharedLimits(), 0, func(db *models.DB) {
		cfg := models.SessionCacheConfig{TTL: models.MaxSessionCacheTTL}
		if bus {
			cfg.Bus = middleware.NewRedisSessionBus(redistest.NewClient(t), prefix)
		}
		c, err := models.NewSessionCache(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		db.SetSessionCache(c)
		cache = c
	})
	deadline := time.Now().Add(5 * time.Second)
	for !cache.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the session cache did not subscribe to Redis within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cachedInstance{instance: in, cache: cache}
}

// call sends an authenticated request.
func (in cachedInstance) call(method, target, token, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	r.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
	r.RemoteAddr = "203.0.113.70:40000"
	w := httptest.NewRecorder()
	in.e.ServeHTTP(w, r)
	return w
}

// cached checks that token is served from in's cache: two reads, the
// second one a cache hit.
func (in cachedInstance) cached(t *testing.T, token, what string) {
	t.Helper()
	for range 2 {
		if w := in.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusOK {
			t.Fatalf("%s: GET /v1/me answered %d before the revocation", what, w.Code)
		}
	}
	hits := in.cache.Hits()
	if w := in.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusOK || in.cache.Hits() != hits+1 {
		t.Fatalf("%s: the session is not served from the cache (status %d, hits %d → %d)", what, w.Code, hits, in.cache.Hits())
	}
}

func loginToken(t *testing.T, in *instance, email, password string) string {
	t.Helper()
	w := in.login("203.0.113.71", email, password)
	if w.Code != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, w.Code, w.Body)
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Token == "" {
		t.Fatalf("login %s: %s", email, w.Body)
	}
	return body.Token
}

// TestSessionRevocationReachesEveryInstance: with the session cached on
// instance B, a logout, a password change and an administrator's lock on
// instance A are refused on B by the very next request. The control shows
// what the Redis bus is for: without it, B keeps believing its cache.
func TestSessionRevocationReachesEveryInstance(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			u := migratedURL(t, d)
			prefix := redistest.Prefix(t)
			a := newCachedInstance(t, u, prefix, true)
			b := newCachedInstance(t, u, prefix, true)
			ctx := context.Background()
			if _, err := a.accounts.CreateUser(ctx, models.NewUser{Email: "admin@example.com", DisplayName: "Admin",
				Password: e2ePassword, Role: models.RoleAdmin}); err != nil {
				t.Fatal(err)
			}
			adminToken := loginToken(t, a.instance, "admin@example.com", e2ePassword)
			user := func(email string) string {
				if w := a.register("203.0.113.72", email); w.Code != http.StatusCreated {
					t.Fatalf("register %s: %d %s", email, w.Code, w.Body)
				}
				return email
			}

			t.Run("logout", func(t *testing.T) {
				email := user("logout@example.com")
				token := loginToken(t, a.instance, email, e2ePassword)
				b.cached(t, token, "logout")
				if w := a.call(http.MethodPost, "/v1/auth/logout", token, ""); w.Code != http.StatusNoContent {
					t.Fatalf("logout on A: %d %s", w.Code, w.Body)
				}
				if w := b.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusUnauthorized {
					t.Errorf("B answered %d right after the logout on A, want 401", w.Code)
				}
			})

			t.Run("password change", func(t *testing.T) {
				email := user("password@example.com")
				current := loginToken(t, a.instance, email, e2ePassword)
				other := loginToken(t, a.instance, email, e2ePassword)
				b.cached(t, other, "password change")
				w := a.call(http.MethodPost, "/v1/me/password", current, fmt.Sprintf(
					`{"current_password":%q,"new_password":"an entirely new passphrase 42"}`, e2ePassword))
				if w.Code != http.StatusNoContent {
					t.Fatalf("password change on A: %d %s", w.Code, w.Body)
				}
				if w := b.call(http.MethodGet, "/v1/me", other, ""); w.Code != http.StatusUnauthorized {
					t.Errorf("B answered %d for the user's other session right after the password change on A, want 401", w.Code)
				}
				if w := b.call(http.MethodGet, "/v1/me", current, ""); w.Code != http.StatusOK {
					t.Errorf("B answered %d for the session that changed the password, want 200", w.Code)
				}
			})

			t.Run("lock", func(t *testing.T) {
				email := user("lock@example.com")
				token := loginToken(t, a.instance, email, e2ePassword)
				b.cached(t, token, "lock")
				var me struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(b.call(http.MethodGet, "/v1/me", token, "").Body.Bytes(), &me); err != nil {
					t.Fatal(err)
				}
				if w := a.call(http.MethodPost, "/v1/admin/users/"+me.ID+"/lock", adminToken, ""); w.Code != http.StatusNoContent {
					t.Fatalf("lock on A: %d %s", w.Code, w.Body)
				}
				if w := b.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusUnauthorized {
					t.Errorf("B answered %d right after the lock on A, want 401", w.Code)
				}
			})

			t.Run("control: without the bus B keeps its cached session", func(t *testing.T) {
				la := newCachedInstance(t, u, "", false)
				lb := newCachedInstance(t, u, "", false)
				email := user("control@example.com")
				token := loginToken(t, la.instance, email, e2ePassword)
				lb.cached(t, token, "control")
				if w := la.call(http.MethodPost, "/v1/auth/logout", token, ""); w.Code != http.StatusNoContent {
					t.Fatalf("logout on A: %d", w.Code)
				}
				if w := la.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusUnauthorized {
					t.Errorf("A itself answered %d after its logout, want 401", w.Code)
				}
				if w := lb.call(http.MethodGet, "/v1/me", token, ""); w.Code != http.StatusOK {
					t.Errorf("control: B answered %d; without a bus it was expected to still believe its cache (200), so this test proves nothing", w.Code)
				}
			})
		})
	}
}

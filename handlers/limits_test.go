package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// Resource guards: per-route body caps, the per-user concurrency cap of
// the report page, the Argon2id memory budget and the request deadline.

// padTo pads a JSON body with trailing spaces to exactly n bytes.
func padTo(tb testing.TB, body string, n int) string {
	tb.Helper()
	if len(body) > n {
		tb.Fatalf("body of %d bytes is already over %d", len(body), n)
	}
	return body + strings.Repeat(" ", n-len(body))
}

func TestBodyCapsPerRoute(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		if DefaultBodyLimit != 64<<10 {
			t.Fatalf("DefaultBodyLimit %d, want 64 KiB", DefaultBodyLimit)
		}
		u := api.signUp(t)

		t.Run("login and registration take 4 KiB", func(t *testing.T) {
			before := api.hasher.Verifications()
			rec := api.call(t, http.MethodPost, "/v1/auth/login", "", padTo(t, loginBody(u.Email, u.Password), 5<<10))
			expectStatus(t, rec, http.StatusRequestEntityTooLarge, "5 KiB login")
			if n := api.hasher.Verifications() - before; n != 0 {
				t.Errorf("an oversized login checked %d passwords, want none", n)
			}
			email, password, body := api.registerBody()
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/register", "", padTo(t, body, 5<<10)), http.StatusRequestEntityTooLarge, "5 KiB registration")
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(email, password)), http.StatusUnauthorized, "the oversized registration made no account")

			// The caps are exact.
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/login", "", padTo(t, loginBody(u.Email, u.Password), 4<<10)), http.StatusOK, "4 KiB login")
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/login", "", padTo(t, loginBody(u.Email, u.Password), 4<<10+1)), http.StatusRequestEntityTooLarge, "4 KiB + 1 login")
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/register", "", padTo(t, body, 4<<10)), http.StatusCreated, "4 KiB registration")
		})

		t.Run("projects take 32 KiB", func(t *testing.T) {
			body := `{"name":"Padded"}`
			expectStatus(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, padTo(t, body, 32<<10+1)), http.StatusRequestEntityTooLarge, "32 KiB + 1 project")
			expectStatus(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, padTo(t, body, 40<<10)), http.StatusRequestEntityTooLarge, "40 KiB project")
			if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != 0 {
				t.Errorf("%d projects made by oversized requests", n)
			}
			expectStatus(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, padTo(t, body, 32<<10)), http.StatusCreated, "32 KiB project")
		})
	})
}

func TestBodyCapsBelowTheGlobalCap(t *testing.T) {
	t.Parallel()
	// A global cap below a route's own cap wins.
	eachAPIWith(t, func(d *Deps) { d.BodyLimit = 16 << 10 }, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		body := `{"name":"Padded"}`
		expectStatus(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, padTo(t, body, 16<<10+1)), http.StatusRequestEntityTooLarge, "16 KiB + 1 project")
		expectStatus(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, padTo(t, body, 16<<10)), http.StatusCreated, "16 KiB project")
	})
}

// blockingWriter is a ResponseWriter whose first Write waits until release
// is closed, after closing writing: a request served into it holds
// whatever it holds (a concurrency slot) for as long as the test wants.
type blockingWriter struct {
	*httptest.ResponseRecorder
	once    sync.Once
	writing chan struct{}
	release chan struct{}
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{ResponseRecorder: httptest.NewRecorder(), writing: make(chan struct{}), release: make(chan struct{})}
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	w.once.Do(func() {
		close(w.writing)
		<-w.release
	})
	return w.ResponseRecorder.Write(b)
}

func TestReportConcurrencyPerUser(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, func(d *Deps) { d.ReportConcurrency = 1 }, func(t *testing.T, api *testAPI) {
		u, other := api.signUp(t), api.signUp(t)
		p := api.createProject(t, u.Token, "Reported")
		q := api.createProject(t, u.Token, "Also reported")
		op := api.createProject(t, other.Token, "Other's")
		key := api.createKey(t, u.Token, keyBody("reader", "projects:read"))
		report := func(id string) string { return "/v1/projects/" + id + "/report" }

		// The first report is rendered and stuck while sending.
		w := newBlockingWriter()
		done := make(chan struct{})
		go func() {
			defer close(done)
			api.e.ServeHTTP(w, withToken(newRequest(http.MethodGet, report(p.ID), ""), u.Token))
		}()
		select {
		case <-w.writing:
		case <-done:
			t.Fatalf("the first report ended without writing: %d %s", w.Code, w.Body.String())
		}

		// Meanwhile the same user gets 429 for any report, by any credential.
		for _, c := range []struct{ what, path, token string }{
			{"same report", report(p.ID), u.Token},
			{"another project's report", report(q.ID), u.Token},
			{"through an API key", report(p.ID), key.Key},
		} {
			rec := api.call(t, http.MethodGet, c.path, c.token, "")
			if !checkStatus(t, rec, http.StatusTooManyRequests, c.what) {
				continue
			}
			pr := problemOf(t, rec)
			if pr.Type != problemTypeRateLimited || !slices.Equal(pr.ViolatedPolicies, []string{"report-concurrency"}) {
				t.Errorf("%s: type %q, violated-policies %v", c.what, pr.Type, pr.ViolatedPolicies)
			}
			if ra, err := strconv.Atoi(rec.Header().Get(echo.HeaderRetryAfter)); err != nil || ra < 1 {
				t.Errorf("%s: Retry-After %q", c.what, rec.Header().Get(echo.HeaderRetryAfter))
			}
		}
		// Other users and other routes are not held up.
		expectStatus(t, api.call(t, http.MethodGet, report(op.ID), other.Token, ""), http.StatusOK, "another user's report")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p.ID, u.Token, ""), http.StatusOK, "another route")

		close(w.release)
		<-done
		if w.Code != http.StatusOK {
			t.Errorf("the first report: %d", w.Code)
		}
		// The slot is free again.
		expectStatus(t, api.call(t, http.MethodGet, report(p.ID), u.Token, ""), http.StatusOK, "after the first report")
	})
}

// slowArgon2Params cost far more per hash than the hasher's wait for a
// slot, so that one hash in progress keeps every other call waiting past
// that wait.
var slowArgon2Params = func() argon2id.Params {
	p := models.DefaultArgon2Params
	p.Iterations = 96
	return p
}()

// withHasher gives the API an Accounts using h.
func withHasher(tb testing.TB, h *models.PasswordHasher) func(*Deps) {
	return func(d *Deps) {
		policy, err := models.NewPasswordPolicy()
		if err != nil {
			tb.Fatal(err)
		}
		a, err := models.NewAccounts(context.Background(), d.DB, models.AccountsConfig{Hasher: h, Policy: policy})
		if err != nil {
			tb.Fatal(err)
		}
		d.Accounts = a
	}
}

// holdHasher starts a login that takes h's only slot for one slow hash,
// and returns once that hash is under way; wait returns its answer.
func holdHasher(t *testing.T, api *testAPI, h *models.PasswordHasher) (wait func() *httptest.ResponseRecorder) {
	t.Helper()
	if h.Slots() != 1 {
		t.Fatalf("the hasher has %d slots, want 1", h.Slots())
	}
	before := h.Verifications()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := newRequest(http.MethodPost, "/v1/auth/login", loginBody("holder@example.com", "the-holder-password"))
		req.RemoteAddr = "198.51.100.90:1000"
		api.e.ServeHTTP(rec, req)
	}()
	// Verifications counts a call once it has its slot.
	for h.Verifications() == before {
		select {
		case <-done:
			t.Fatalf("the holding login ended before it hashed: %d %s", rec.Code, rec.Body.String())
		case <-time.After(time.Millisecond):
		}
	}
	return func() *httptest.ResponseRecorder {
		<-done
		return rec
	}
}

func TestArgon2MemoryBudget(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		// A budget of one hash's memory: one slot; 50 ms of waiting.
		h := models.NewPasswordHasherWithBudget(slowArgon2Params, models.HasherBudget{MemoryBytes: 19 << 20, MaxWait: 50 * time.Millisecond})
		api := newTestAPIWith(t, db, withHasher(t, h))
		wait := holdHasher(t, api, h)

		rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody("waiting@example.com", "the-waiting-password"))
		expectStatus(t, rec, http.StatusServiceUnavailable, "login while the budget is used up")
		if ra, err := strconv.Atoi(rec.Header().Get(echo.HeaderRetryAfter)); err != nil || ra < 1 {
			t.Errorf("Retry-After %q, want a positive number of seconds", rec.Header().Get(echo.HeaderRetryAfter))
		}
		if h.Refusals() != 1 {
			t.Errorf("the hasher counted %d refusals, want 1", h.Refusals())
		}
		if held := wait(); held.Code != http.StatusUnauthorized {
			t.Errorf("the holding login: %d, want 401", held.Code)
		}
		// With the slot back, logins are checked again.
		rec = api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody("waiting@example.com", "the-waiting-password"))
		expectStatus(t, rec, http.StatusUnauthorized, "login after the slot is free")
		// A refusal for load was taken back, not counted as a failed
		// login: this attempt is the account's first (r = max - 1).
		if r := remaining(t, rec, "login-account"); r != int64(generousLimits().LoginFailures-1) {
			t.Errorf("login-account r=%d after a 503 and one failure, want %d", r, generousLimits().LoginFailures-1)
		}
	})
}

func TestRequestDeadline(t *testing.T) {
	t.Parallel()

	t.Run("every request has one", func(t *testing.T) {
		t.Parallel()
		eachAPI(t, func(t *testing.T, api *testAPI) {
			u := api.signUp(t)
			p := api.createProject(t, u.Token, "Before the deadline")
			// Another instance over the same data, whose deadline has
			// always passed by the time the database is asked.
			expired := newTestAPIWith(t, api.db, func(d *Deps) { d.RequestTimeout = time.Nanosecond })
			for _, c := range []struct{ method, path, token, body string }{
				{http.MethodGet, "/v1/me", u.Token, ""},
				{http.MethodGet, "/v1/projects", u.Token, ""},
				{http.MethodPost, "/v1/projects", u.Token, `{"name":"Past the deadline"}`},
				{http.MethodGet, "/v1/projects/" + p.ID + "/report", u.Token, ""},
				{http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, u.Password)},
				{http.MethodGet, "/readyz", "", ""},
			} {
				rec := expired.call(t, c.method, c.path, c.token, c.body)
				if !checkStatus(t, rec, http.StatusServiceUnavailable, c.method+" "+c.path) {
					continue
				}
				if d := strings.ToLower(problemOf(t, rec).Detail); strings.Contains(d, "context") || strings.Contains(d, "deadline") {
					t.Errorf("%s %s: the problem leaks the cause: %s", c.method, c.path, rec.Body.String())
				}
			}
			if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != 1 {
				t.Errorf("%d projects, want 1: a request past its deadline created one", n)
			}
		})
	})

	t.Run("a stuck dependency ends in 503", func(t *testing.T) {
		t.Parallel()
		dbtest.Each(t, func(t *testing.T, db *models.DB) {
			t.Parallel()
			// The hasher would let a login wait an hour for its slot; the
			// request's deadline ends the wait first.
			h := models.NewPasswordHasherWithBudget(slowArgon2Params, models.HasherBudget{MemoryBytes: 19 << 20, MaxWait: time.Hour})
			api := newTestAPIWith(t, db, func(d *Deps) {
				withHasher(t, h)(d)
				d.RequestTimeout = 100 * time.Millisecond
			})
			wait := holdHasher(t, api, h)
			rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody("stuck@example.com", "the-stuck-password"))
			expectStatus(t, rec, http.StatusServiceUnavailable, "login stuck behind the held slot")
			if ra, err := strconv.Atoi(rec.Header().Get(echo.HeaderRetryAfter)); err != nil || ra < 1 {
				t.Errorf("Retry-After %q, want a positive number of seconds", rec.Header().Get(echo.HeaderRetryAfter))
			}
			if h.Refusals() != 0 {
				t.Errorf("the hasher's own wait ended it (%d refusals), not the deadline", h.Refusals())
			}
			wait()
		})
	})
}

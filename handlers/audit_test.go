package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// events flushes the API's audit writer and returns every stored event
// that matches f, oldest first.
func (a *testAPI) events(tb testing.TB, f models.AuditFilter) []models.AuditEvent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.audit.Flush(ctx); err != nil {
		tb.Fatalf("flush the audit trail: %v", err)
	}
	l := models.NewAuditLog(a.db)
	var out []models.AuditEvent
	p := models.PageRequest{Limit: 500}
	for {
		page, err := l.List(ctx, f, p)
		if err != nil {
			tb.Fatalf("list audit events: %v", err)
		}
		out = append(out, page.Items...)
		if page.Next == 0 {
			return out
		}
		p.After = page.Next
	}
}

// onlyEvent returns the one event that matches f and keep, failing if
// there is not exactly one.
func (a *testAPI) onlyEvent(tb testing.TB, f models.AuditFilter, keep func(models.AuditEvent) bool) models.AuditEvent {
	tb.Helper()
	var found []models.AuditEvent
	for _, e := range a.events(tb, f) {
		if keep == nil || keep(e) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("%d events match %+v, want 1: %+v", len(found), f, found)
	}
	return found[0]
}

func byRequest(id string) func(models.AuditEvent) bool {
	return func(e models.AuditEvent) bool { return e.RequestID == id }
}

// TestAuditNothingLost: N concurrent requests leave exactly N decision
// events, with a queue so small that recording blocks (backpressure)
// instead of dropping; the chain stays intact.
func TestAuditNothingLost(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		tiny := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{QueueSize: 2, BatchSize: 3, FlushEvery: time.Millisecond})
		api := newTestAPIWith(t, db, func(d *Deps) { d.Auditor = tiny })
		api.audit = tiny
		owner, other := api.signUp(t), api.signUp(t)
		p := api.createProject(t, owner.Token, "Audited")

		const n = 40
		var wg sync.WaitGroup
		codes := make([]int, 2*n)
		for i := range n {
			wg.Go(func() {
				codes[i] = api.call(t, http.MethodGet, "/v1/projects/"+p.ID, owner.Token, "").Code
			})
			wg.Go(func() {
				codes[n+i] = api.call(t, http.MethodGet, "/v1/projects/"+p.ID, other.Token, "").Code
			})
		}
		wg.Wait()
		for i, c := range codes {
			if want := map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[i < n]; c != want {
				t.Fatalf("request %d: %d, want %d", i, c, want)
			}
		}
		route := "GET /v1/projects/:id"
		allowed := api.events(t, models.AuditFilter{Actor: owner.ID, Action: models.ActionAuthzAllow})
		allowed = slices.DeleteFunc(allowed, func(e models.AuditEvent) bool { return e.Route != route })
		denied := api.events(t, models.AuditFilter{Actor: other.ID, Action: models.ActionAuthzFail})
		if len(allowed) != n || len(denied) != n {
			t.Fatalf("%d allow and %d deny events for %d + %d requests", len(allowed), len(denied), n, n)
		}
		ids := map[string]bool{}
		for _, e := range append(allowed, denied...) {
			ids[e.RequestID] = true
			if e.ResourceType != "project" || e.ResourceID != p.ID {
				t.Errorf("event names %s %q, want project %s", e.ResourceType, e.ResourceID, p.ID)
			}
		}
		if len(ids) != 2*n {
			t.Errorf("%d distinct request ids among %d events", len(ids), 2*n)
		}
		if _, err := models.NewAuditLog(db).Verify(context.Background()); err != nil {
			t.Errorf("verify: %v", err)
		}
	})
}

// TestAuditAuthentication: every login attempt is recorded with its
// internal reason, while the client sees one answer; the e-mail address
// is never stored, only an opaque account key.
func TestAuditAuthentication(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(loginLockout), func(t *testing.T, api *testAPI) {
		admin := api.newAdmin(t)
		u := api.signUp(t)
		locked := api.signUp(t)
		expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+locked.ID+"/lock", admin.Token, ""), http.StatusNoContent, "lock")
		ghost := fmt.Sprintf("ghost-%d@example.com", api.next())

		cases := []struct {
			name, email, password string
			status                int
			action, outcome       string
			reason, userID        string
		}{
			{"success", u.Email, u.Password, http.StatusOK, models.ActionLoginSuccess, models.OutcomeAllow, "", u.ID},
			{"wrong password", u.Email, "not-the-password-at-all", http.StatusUnauthorized, models.ActionLoginFail, models.OutcomeDeny, "wrong_password", u.ID},
			{"unknown e-mail", ghost, "whatever-password-here", http.StatusUnauthorized, models.ActionLoginFail, models.OutcomeDeny, "unknown_email", ""},
			{"locked account", locked.Email, locked.Password, http.StatusUnauthorized, models.ActionLoginFail, models.OutcomeDeny, "account_locked", locked.ID},
		}
		for _, c := range cases {
			rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(c.email, c.password))
			expectStatus(t, rec, c.status, c.name)
			e := api.onlyEvent(t, models.AuditFilter{Action: c.action}, byRequest(rec.Header().Get("X-Request-Id")))
			if e.Outcome != c.outcome || e.Reason != c.reason || e.UserID != c.userID {
				t.Errorf("%s: outcome %q reason %q user %q; want %q %q %q", c.name, e.Outcome, e.Reason, e.UserID, c.outcome, c.reason, c.userID)
			}
			if e.ResourceType != "account" || e.ResourceID != middleware.AccountKey(c.email) || e.ClientIP == "" || e.Route != "POST /v1/auth/login" {
				t.Errorf("%s: event %+v", c.name, e)
			}
		}
		// The failures look alike to the client.
		a := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(ghost, "whatever-password-here"))
		b := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(locked.Email, locked.Password))
		if problemOf(t, a).Detail != problemOf(t, b).Detail {
			t.Errorf("the client can tell the failures apart")
		}
		// No column of any event holds an e-mail address or a password.
		for _, e := range api.events(t, models.AuditFilter{}) {
			row := strings.Join([]string{e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID, e.Route,
				e.Action, e.ResourceType, e.ResourceID, e.Reason}, "|")
			for _, secret := range []string{u.Email, ghost, locked.Email, u.Password, locked.Password, "@example.com"} {
				if strings.Contains(row, secret) {
					t.Errorf("an audit event holds %q: %s", secret, row)
				}
			}
		}

		// Past the per-account limit: authn_login_fail_max.
		v := api.signUp(t)
		for range 3 {
			api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(v.Email, "not-the-password-at-all"))
		}
		rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(v.Email, v.Password))
		expectStatus(t, rec, http.StatusTooManyRequests, "over the account's failures")
		e := api.onlyEvent(t, models.AuditFilter{Action: models.ActionLoginFailMax}, byRequest(rec.Header().Get("X-Request-Id")))
		if e.Outcome != models.OutcomeDeny || e.Reason != "login-account" {
			t.Errorf("fail_max event %+v", e)
		}

		// A bad token: authn_token_invalid.
		rec = api.call(t, http.MethodGet, "/v1/me", unknownSessionToken(t), "")
		expectStatus(t, rec, http.StatusUnauthorized, "unknown token")
		api.onlyEvent(t, models.AuditFilter{Action: models.ActionTokenInvalid}, byRequest(rec.Header().Get("X-Request-Id")))

		// Logout: authn_token_revoked by the user.
		rec = api.call(t, http.MethodPost, "/v1/auth/logout", u.Token, "")
		expectStatus(t, rec, http.StatusNoContent, "logout")
		e = api.onlyEvent(t, models.AuditFilter{Action: models.ActionTokenRevoked}, byRequest(rec.Header().Get("X-Request-Id")))
		if e.ActorType != models.ActorUser || e.ActorID != u.ID {
			t.Errorf("logout event %+v", e)
		}
	})
}

// TestAuditAuthorization: allow and deny decisions, with the actor and the
// object asked for, including a BOLA attempt the client saw as 404; key,
// account and admin actions; rate-limit and quota refusals.
func TestAuditAuthorization(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.RegisterIP.Rate = 2 }), func(t *testing.T, api *testAPI) {
		admin := api.newAdmin(t)
		owner, intruder := api.signUp(t), api.signUp(t)
		p := api.createProject(t, owner.Token, "Private")
		reqID := func(rec interface{ Header() http.Header }) string { return rec.Header().Get("X-Request-Id") }

		// BOLA: another owner's project is 404 for the client, authz_fail for the audit.
		rec := api.call(t, http.MethodGet, "/v1/projects/"+p.ID, intruder.Token, "")
		expectStatus(t, rec, http.StatusNotFound, "another owner's project")
		e := api.onlyEvent(t, models.AuditFilter{Actor: intruder.ID, Action: models.ActionAuthzFail}, byRequest(reqID(rec)))
		if e.Outcome != models.OutcomeDeny || e.Reason != "not_found" || e.ResourceType != "project" || e.ResourceID != p.ID ||
			e.ActorType != models.ActorUser || e.ActorID != intruder.ID || e.Route != "GET /v1/projects/:id" {
			t.Errorf("BOLA event %+v", e)
		}

		// Allowed: authz_allow with the object.
		rec = api.call(t, http.MethodGet, "/v1/projects/"+p.ID, owner.Token, "")
		expectStatus(t, rec, http.StatusOK, "own project")
		e = api.onlyEvent(t, models.AuditFilter{Actor: owner.ID, Action: models.ActionAuthzAllow}, byRequest(reqID(rec)))
		if e.Outcome != models.OutcomeAllow || e.ResourceID != p.ID {
			t.Errorf("allow event %+v", e)
		}

		// A user on an admin route: authz_fail forbidden. An admin: authz_admin.
		rec = api.call(t, http.MethodGet, "/v1/admin/users", owner.Token, "")
		expectStatus(t, rec, http.StatusForbidden, "admin route as a user")
		e = api.onlyEvent(t, models.AuditFilter{Actor: owner.ID, Action: models.ActionAuthzFail}, byRequest(reqID(rec)))
		if !strings.HasPrefix(e.Reason, "forbidden") {
			t.Errorf("forbidden event %+v", e)
		}
		rec = api.call(t, http.MethodGet, "/v1/admin/users", admin.Token, "")
		expectStatus(t, rec, http.StatusOK, "admin route as an admin")
		api.onlyEvent(t, models.AuditFilter{Actor: admin.ID, Action: models.ActionAuthzAdmin}, byRequest(reqID(rec)))

		// API keys: created, used (actor apikey), refused outside their scope, revoked.
		k := api.createKey(t, owner.Token, `{"name":"ci","scopes":["projects:read"]}`)
		e = api.onlyEvent(t, models.AuditFilter{Action: models.ActionAPIKeyCreated}, nil)
		if e.ResourceID != k.ID || e.ActorID != owner.ID {
			t.Errorf("key created event %+v", e)
		}
		rec = api.call(t, http.MethodGet, "/v1/projects/"+p.ID, k.Key, "")
		expectStatus(t, rec, http.StatusOK, "read with the key")
		e = api.onlyEvent(t, models.AuditFilter{Actor: k.ID}, byRequest(reqID(rec)))
		if e.ActorType != models.ActorAPIKey || e.UserID != owner.ID || e.Action != models.ActionAuthzAllow {
			t.Errorf("key use event %+v", e)
		}
		rec = api.call(t, http.MethodPost, "/v1/projects", k.Key, `{"name":"Not allowed"}`)
		expectStatus(t, rec, http.StatusForbidden, "write with a read key")
		api.onlyEvent(t, models.AuditFilter{Actor: k.ID, Action: models.ActionAuthzFail}, byRequest(reqID(rec)))
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/api-keys/"+k.ID, owner.Token, ""), http.StatusNoContent, "revoke")
		api.onlyEvent(t, models.AuditFilter{Action: models.ActionAPIKeyRevoked}, func(e models.AuditEvent) bool { return e.ResourceID == k.ID })

		// Account changes and admin actions.
		api.onlyEvent(t, models.AuditFilter{Action: models.ActionUserCreated}, func(e models.AuditEvent) bool { return e.UserID == intruder.ID })
		expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+intruder.ID+"/lock", admin.Token, ""), http.StatusNoContent, "lock")
		expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+intruder.ID+"/unlock", admin.Token, ""), http.StatusNoContent, "unlock")
		for _, action := range []string{models.ActionLoginLock, models.ActionLoginUnlock} {
			e = api.onlyEvent(t, models.AuditFilter{Action: action}, nil)
			if e.ActorID != admin.ID || e.ResourceType != "user" || e.ResourceID != intruder.ID {
				t.Errorf("%s event %+v", action, e)
			}
		}
		rec = api.call(t, http.MethodPost, "/v1/me/password", owner.Token, `{"current_password":"wrong-password-here","new_password":"another-long-passphrase"}`)
		expectStatus(t, rec, http.StatusUnprocessableEntity, "change password with a wrong current one")
		api.onlyEvent(t, models.AuditFilter{Action: models.ActionPasswordChangeBad}, byRequest(reqID(rec)))

		// Rate limits: registration per IP is 2 here.
		for range 2 {
			_, _, body := api.registerBody()
			api.from(t, "198.51.100.77:1000", http.MethodPost, "/v1/auth/register", "", body)
		}
		_, _, body := api.registerBody()
		rec = api.from(t, "198.51.100.77:1000", http.MethodPost, "/v1/auth/register", "", body)
		expectStatus(t, rec, http.StatusTooManyRequests, "third registration")
		e = api.onlyEvent(t, models.AuditFilter{Action: models.ActionRateLimited}, byRequest(reqID(rec)))
		if e.Reason != "register-ip" || e.ClientIP != "198.51.100.77" || e.ActorType != models.ActorAnonymous {
			t.Errorf("rate-limit event %+v", e)
		}

		// Validation failures on an authorized route.
		rec = api.call(t, http.MethodPost, "/v1/projects", owner.Token, `{"name":""}`)
		expectStatus(t, rec, http.StatusUnprocessableEntity, "empty name")
		api.onlyEvent(t, models.AuditFilter{Action: models.ActionInputInvalid}, byRequest(reqID(rec)))
	})
}

// TestAuditQuotaEvent: a full quota is recorded as excess_quota_exceeded.
func TestAuditQuotaEvent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		db.SetQuotas(models.Quotas{ProjectsPerUser: 1})
		api := newTestAPI(t, db)
		u := api.signUp(t)
		api.createProject(t, u.Token, "The only one")
		rec := api.call(t, http.MethodPost, "/v1/projects", u.Token, `{"name":"One too many"}`)
		expectStatus(t, rec, http.StatusTooManyRequests, "over the quota")
		e := api.onlyEvent(t, models.AuditFilter{Action: models.ActionQuotaExceeded}, byRequest(rec.Header().Get("X-Request-Id")))
		if e.ActorID != u.ID || e.Outcome != models.OutcomeDeny {
			t.Errorf("quota event %+v", e)
		}
	})
}

type auditEventJSON struct {
	ID           string `json:"id"`
	Seq          int64  `json:"seq"`
	At           string `json:"at"`
	ActorType    string `json:"actor_type"`
	ActorID      string `json:"actor_id"`
	UserID       string `json:"user_id"`
	ClientIP     string `json:"client_ip"`
	UserAgent    string `json:"user_agent"`
	RequestID    string `json:"request_id"`
	Route        string `json:"route"`
	Action       string `json:"action"`
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
}

// TestAdminAuditAPI: admins read the trail with filters and signed,
// filter-bound cursors; nobody else reads it; nothing writes it.
func TestAdminAuditAPI(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		admin := api.newAdmin(t)
		u := api.signUp(t)
		start := time.Now().UTC()
		for range 5 {
			api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, "not-the-password-at-all"))
		}
		api.events(t, models.AuditFilter{}) // flush

		get := func(query string) *pageJSON[auditEventJSON] {
			t.Helper()
			rec := api.call(t, http.MethodGet, "/v1/admin/audit"+query, admin.Token, "")
			expectStatus(t, rec, http.StatusOK, "audit "+query)
			var page pageJSON[auditEventJSON]
			decodeExact(t, rec, &page, "items", "next_cursor")
			return &page
		}
		q := url.Values{"actor": {u.ID}, "action": {models.ActionLoginFail}, "outcome": {"deny"},
			"since": {start.Add(-time.Second).Format(time.RFC3339Nano)}, "limit": {"2"}}
		var all []auditEventJSON
		page := get("?" + q.Encode())
		for pages := 1; ; pages++ {
			all = append(all, page.Items...)
			if page.NextCursor == nil {
				break
			}
			if pages > 5 {
				t.Fatal("too many pages")
			}
			// A cursor is bound to its filter: with another filter it is refused.
			other := url.Values{"action": {models.ActionLoginSuccess}, "cursor": {*page.NextCursor}}
			expectStatus(t, api.call(t, http.MethodGet, "/v1/admin/audit?"+other.Encode(), admin.Token, ""), http.StatusBadRequest, "cursor of another filter")
			q.Set("cursor", *page.NextCursor)
			page = get("?" + q.Encode())
		}
		if len(all) != 5 {
			t.Fatalf("%d failed logins listed, want 5", len(all))
		}
		for i, e := range all {
			checkID(t, e.ID)
			checkTimestamp(t, e.At)
			if e.Action != models.ActionLoginFail || e.UserID != u.ID || e.Reason != "wrong_password" || len(e.Hash) != 64 {
				t.Errorf("event %+v", e)
			}
			if i > 0 && e.Seq <= all[i-1].Seq {
				t.Errorf("events out of order")
			}
		}
		if n := len(get("?since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))).Items); n != 0 {
			t.Errorf("%d events from the future", n)
		}

		// Bad filters: 422 naming the field.
		for _, bad := range []struct{ query, field string }{
			{"?outcome=maybe", "outcome"},
			{"?action=DROP%20TABLE", "action"},
			{"?since=yesterday", "since"},
			{"?actor=" + strings.Repeat("a", 129), "actor"},
		} {
			rec := api.call(t, http.MethodGet, "/v1/admin/audit"+bad.query, admin.Token, "")
			expectStatus(t, rec, http.StatusUnprocessableEntity, bad.query)
			if !problemOf(t, rec).hasField(bad.field) {
				t.Errorf("%s: the problem does not name %s: %s", bad.query, bad.field, rec.Body.String())
			}
		}
		// Only admins read it; nothing can change it.
		expectStatus(t, api.call(t, http.MethodGet, "/v1/admin/audit", u.Token, ""), http.StatusForbidden, "a user")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/admin/audit", "", ""), http.StatusUnauthorized, "anonymous")
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			expectStatus(t, api.call(t, m, "/v1/admin/audit", admin.Token, ""), http.StatusMethodNotAllowed, m+" on the audit trail")
		}
		for _, r := range api.routes {
			if strings.Contains(r.path, "audit") && r.method != http.MethodGet {
				t.Errorf("route %s %s writes the audit trail", r.method, r.path)
			}
		}
	})
}

// TestAuditRedactsClientText: what a client chooses (its user agent, an id
// in the path) is stored redacted, so a credential pasted there does not
// end up in the audit table.
func TestAuditRedactsClientText(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		k := api.createKey(t, u.Token, `{"name":"pasted","scopes":["projects:read"]}`)
		req := withToken(newRequest(http.MethodGet, "/v1/projects/"+k.Key, ""), u.Token)
		req.Header.Set("User-Agent", "script/1.0 (token="+u.Token+"; Bearer "+k.Key+")")
		rec := api.serve(t, req)
		expectStatus(t, rec, http.StatusNotFound, "a key as a project id")
		e := api.onlyEvent(t, models.AuditFilter{Actor: u.ID, Action: models.ActionAuthzFail}, byRequest(rec.Header().Get("X-Request-Id")))
		row := e.UserAgent + "|" + e.ResourceID
		for _, secret := range []string{u.Token, k.Key, strings.TrimPrefix(k.Key, "rpk_"), strings.TrimPrefix(u.Token, "rps_")} {
			if strings.Contains(row, secret) {
				t.Errorf("the audit event holds a credential: %s", row)
			}
		}
		if !strings.Contains(e.UserAgent, "script/1.0") || !strings.Contains(e.UserAgent, models.RedactedText) {
			t.Errorf("user agent stored as %q, want it redacted but recognisable", e.UserAgent)
		}
	})
}

package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// keyBody is a creation body for a key with the given scopes.
func keyBody(name string, scopes ...string) string {
	return fmt.Sprintf(`{"name":%q,"scopes":[%s]}`, name, `"`+strings.Join(scopes, `","`)+`"`)
}

// secretForms are the ways a key could leak into an answer: the key, its
// random part (all but the displayed prefix), and its SHA-256 in the
// encodings a careless serialiser would use.
func secretForms(key string) []string {
	sum := sha256.Sum256([]byte(key))
	return []string{
		key,
		key[len(models.APIKeyPrefix)+8:],
		hex.EncodeToString(sum[:]),
		base64.StdEncoding.EncodeToString(sum[:]),
		base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}

func TestAPIKeyCreateAndList(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		rec := api.call(t, http.MethodPost, "/v1/api-keys", u.Token, keyBody("CI deploy", "projects:write", "projects:read"))
		expectStatus(t, rec, http.StatusCreated, "create")
		var k apiKeyJSON
		decodeExact(t, rec, &k, newAPIKeyMembers...)
		checkID(t, k.ID)
		if loc := rec.Header().Get(echo.HeaderLocation); loc != "/v1/api-keys/"+k.ID {
			t.Errorf("Location %q", loc)
		}
		if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
			t.Errorf("the answer with the key has Cache-Control %q, want no-store", cc)
		}

		// rpk_ and 256 random bits, base64url.
		body, ok := strings.CutPrefix(k.Key, "rpk_")
		raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
		if !ok || err != nil || len(raw) != 32 {
			t.Fatalf("key %q is not rpk_ and 256 bits in base64url", k.Key)
		}
		if k.Prefix != k.Key[:12] || !strings.HasPrefix(k.Prefix, "rpk_") {
			t.Errorf("prefix %q, want the first 12 characters of the key", k.Prefix)
		}
		if k.Name != "CI deploy" || !slices.Equal(k.Scopes, []string{"projects:read", "projects:write"}) {
			t.Errorf("name %q, scopes %v", k.Name, k.Scopes)
		}
		if k.ExpiresAt != nil || k.LastUsedAt != nil {
			t.Errorf("expires_at %v, last_used_at %v; want null, null", k.ExpiresAt, k.LastUsedAt)
		}
		checkTimestamp(t, k.CreatedAt)
		if other := api.createKey(t, u.Token, keyBody("second", "projects:read")); other.Key == k.Key || other.Prefix == k.Prefix {
			t.Error("two keys share a key or a prefix")
		}

		t.Run("the key is shown only once", func(t *testing.T) {
			rec := api.call(t, http.MethodGet, "/v1/api-keys", u.Token, "")
			expectStatus(t, rec, http.StatusOK, "list")
			var page pageJSON[map[string]any]
			decodeExact(t, rec, &page, pageMembers...)
			if len(page.Items) != 2 {
				t.Fatalf("%d keys listed, want 2", len(page.Items))
			}
			for _, item := range page.Items {
				checkMembers(t, []byte(jsonBody(t, item)), apiKeyMembers...)
			}
			for _, secret := range secretForms(k.Key) {
				if strings.Contains(rec.Body.String(), secret) {
					t.Errorf("the list contains %q", secret)
				}
			}
			listed := api.listKeys(t, u.Token)
			if listed[0].ID != k.ID || listed[0].Prefix != k.Prefix || listed[0].Key != "" {
				t.Errorf("listed %+v, want the key's id and prefix without the key", listed[0])
			}
			// There is no way to read one key back.
			rec = api.call(t, http.MethodGet, "/v1/api-keys/"+k.ID, u.Token, "")
			expectStatus(t, rec, http.StatusMethodNotAllowed, "GET one key")
			for _, secret := range secretForms(k.Key) {
				if strings.Contains(rec.Body.String(), secret) {
					t.Errorf("GET /v1/api-keys/{id} contains %q", secret)
				}
			}
			// Nor are keys in the log.
			for _, secret := range secretForms(k.Key) {
				if strings.Contains(api.logs.String(), secret) {
					t.Errorf("the log contains %q", secret)
				}
			}
		})

		t.Run("last_used_at is set by use", func(t *testing.T) {
			expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusOK, "use the key")
			for _, listed := range api.listKeys(t, u.Token) {
				switch {
				case listed.ID == k.ID && listed.LastUsedAt == nil:
					t.Error("last_used_at is still null after a use")
				case listed.ID == k.ID:
					if used := checkTimestamp(t, *listed.LastUsedAt); used.Before(checkTimestamp(t, k.CreatedAt)) {
						t.Errorf("last_used_at %s before created_at %s", *listed.LastUsedAt, k.CreatedAt)
					}
				case listed.LastUsedAt != nil:
					t.Errorf("key %s was never used but has last_used_at %s", listed.ID, *listed.LastUsedAt)
				}
			}
		})

		t.Run("a client cannot choose the key or its bookkeeping", func(t *testing.T) {
			for _, member := range []string{"key", "prefix", "id", "user_id", "last_used_at", "created_at", "token_hash"} {
				body := fmt.Sprintf(`{"name":"chosen","scopes":["projects:read"],%q:"rpk_chosen-by-the-client-aaaaaaaaaaaaaaaaaaaaaaaaaaa"}`, member)
				rec := api.call(t, http.MethodPost, "/v1/api-keys", u.Token, body)
				if checkStatus(t, rec, http.StatusBadRequest, "member "+member) && !problemOf(t, rec).hasField(member) {
					t.Errorf("member %s: the problem does not name it: %s", member, rec.Body.String())
				}
			}
		})
	})
}

func TestAPIKeyScopes(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "Scoped")
		task := api.createTask(t, u.Token, p.ID, "Scoped task")
		read := api.createKey(t, u.Token, keyBody("reader", "projects:read"))
		write := api.createKey(t, u.Token, keyBody("writer", "projects:write"))
		both := api.createKey(t, u.Token, keyBody("both", "projects:read", "projects:write"))

		reads := []struct{ method, path, body string }{
			{http.MethodGet, "/v1/projects", ""},
			{http.MethodGet, "/v1/projects/" + p.ID, ""},
			{http.MethodGet, "/v1/projects/" + p.ID + "/tasks", ""},
			{http.MethodGet, "/v1/projects/" + p.ID + "/tasks/" + task.ID, ""},
			{http.MethodGet, "/v1/projects/" + p.ID + "/report", ""},
		}
		writes := []struct{ method, path, body string }{
			{http.MethodPost, "/v1/projects", `{"name":"By a key"}`},
			{http.MethodPatch, "/v1/projects/" + p.ID, `{"name":"Renamed by a key"}`},
			{http.MethodPost, "/v1/projects/" + p.ID + "/tasks", `{"title":"By a key"}`},
			{http.MethodPatch, "/v1/projects/" + p.ID + "/tasks/" + task.ID, `{"done":true}`},
			{http.MethodDelete, "/v1/projects/" + p.ID + "/tasks/" + task.ID, ""},
			{http.MethodDelete, "/v1/projects/" + p.ID, ""},
		}
		// The pages are negotiated: the report answers HTML.
		send := func(key, method, path, body string) int {
			req := withToken(newRequest(method, path, body), key)
			return api.serve(t, req).Code
		}
		before := projectState(t, api, u.Token, p.ID, task.ID)
		for _, c := range reads {
			if got := send(read.Key, c.method, c.path, c.body); got != http.StatusOK {
				t.Errorf("projects:read key, %s %s: %d, want 200", c.method, c.path, got)
			}
			if got := send(write.Key, c.method, c.path, c.body); got != http.StatusForbidden {
				t.Errorf("projects:write key, %s %s: %d, want 403", c.method, c.path, got)
			}
		}
		for _, c := range writes {
			if got := send(read.Key, c.method, c.path, c.body); got != http.StatusForbidden {
				t.Errorf("projects:read key, %s %s: %d, want 403", c.method, c.path, got)
			}
		}
		if after := projectState(t, api, u.Token, p.ID, task.ID); after != before {
			t.Errorf("a read-only key changed data:\nbefore %s\nafter  %s", before, after)
		}
		if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != 1 {
			t.Errorf("%d projects after the refused writes, want 1", n)
		}
		// Both scopes: everything on projects works, in order.
		for _, c := range reads {
			if got := send(both.Key, c.method, c.path, c.body); got != http.StatusOK {
				t.Errorf("both scopes, %s %s: %d, want 200", c.method, c.path, got)
			}
		}
		want := []int{http.StatusCreated, http.StatusOK, http.StatusCreated, http.StatusOK, http.StatusNoContent, http.StatusNoContent}
		for i, c := range writes {
			if got := send(both.Key, c.method, c.path, c.body); got != want[i] {
				t.Errorf("both scopes, %s %s: %d, want %d", c.method, c.path, got, want[i])
			}
		}
	})
}

// projectState is what the owner sees of a project and its task.
func projectState(t *testing.T, api *testAPI, token, projectID, taskID string) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/v1/projects/" + projectID, "/v1/projects/" + projectID + "/tasks/" + taskID} {
		rec := api.call(t, http.MethodGet, path, token, "")
		fmt.Fprintf(&b, "%d %s\n", rec.Code, rec.Body.String())
	}
	return b.String()
}

func TestAPIKeyNeverManagesTheAccount(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		k := api.createKey(t, u.Token, keyBody("all scopes", "projects:read", "projects:write"))
		sibling := api.createKey(t, u.Token, keyBody("sibling", "projects:read"))
		admin := api.newAdmin(t)
		adminKey := api.createKey(t, admin.Token, keyBody("admin's key", "projects:read", "projects:write"))

		for _, c := range []struct {
			key, method, path, body string
		}{
			{k.Key, http.MethodPost, "/v1/api-keys", keyBody("made by a key", "projects:read")},
			{k.Key, http.MethodGet, "/v1/api-keys", ""},
			{k.Key, http.MethodDelete, "/v1/api-keys/" + k.ID, ""},
			{k.Key, http.MethodDelete, "/v1/api-keys/" + sibling.ID, ""},
			{k.Key, http.MethodGet, "/v1/me", ""},
			{k.Key, http.MethodPost, "/v1/auth/logout", ""},
			{k.Key, http.MethodPost, "/v1/me/password", fmt.Sprintf(`{"current_password":%q,"new_password":"taken-over-by-a-key-1"}`, u.Password)},
			{adminKey.Key, http.MethodGet, "/v1/admin/users", ""},
			{adminKey.Key, http.MethodPost, "/v1/admin/users/" + u.ID + "/lock", ""},
		} {
			rec := api.call(t, c.method, c.path, c.key, c.body)
			checkStatus(t, rec, http.StatusForbidden, "API key: "+c.method+" "+c.path)
		}
		// Nothing of that took effect.
		if n := len(api.listKeys(t, u.Token)); n != 2 {
			t.Errorf("%d keys, want 2", n)
		}
		for _, key := range []string{k.Key, sibling.Key} {
			expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", key, ""), http.StatusOK, "the keys still work")
		}
		expectStatus(t, api.call(t, http.MethodGet, "/v1/me", u.Token, ""), http.StatusOK, "the session still works")
		api.login(t, u.Email, u.Password) // the password is unchanged
	})
}

func TestAPIKeyRevocation(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u, other := api.signUp(t), api.signUp(t)
		k := api.createKey(t, u.Token, keyBody("to revoke", "projects:read"))
		kept := api.createKey(t, u.Token, keyBody("to keep", "projects:read"))
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusOK, "before")

		// Another user cannot revoke it, nor learn that it exists.
		unknown := api.call(t, http.MethodDelete, "/v1/api-keys/2f1d3c4b-5a69-4788-99aa-bbccddeeff00", other.Token, "")
		foreign := api.call(t, http.MethodDelete, "/v1/api-keys/"+k.ID, other.Token, "")
		expectStatus(t, foreign, http.StatusNotFound, "another user's key")
		if problemOf(t, foreign).Detail != problemOf(t, unknown).Detail {
			t.Errorf("another user's key and an unknown key answer differently:\n%s\n%s", foreign.Body.String(), unknown.Body.String())
		}
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusOK, "after another user's attempt")

		rec := api.call(t, http.MethodDelete, "/v1/api-keys/"+k.ID, u.Token, "")
		expectStatus(t, rec, http.StatusNoContent, "revoke")
		if rec.Body.Len() != 0 {
			t.Errorf("204 with a body: %q", rec.Body.String())
		}
		rec = api.call(t, http.MethodGet, "/v1/projects", k.Key, "")
		expectStatus(t, rec, http.StatusUnauthorized, "the revoked key")
		if ch := rec.Header().Get(echo.HeaderWWWAuthenticate); !strings.HasPrefix(ch, "Bearer ") {
			t.Errorf("WWW-Authenticate %q, want a Bearer challenge", ch)
		}
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/api-keys/"+k.ID, u.Token, ""), http.StatusNotFound, "revoke again")
		listed := api.listKeys(t, u.Token)
		if len(listed) != 1 || listed[0].ID != kept.ID {
			t.Errorf("after the revocation the list is %+v, want only %s", listed, kept.ID)
		}
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", kept.Key, ""), http.StatusOK, "the other key")
	})
}

func TestAPIKeyLockedUser(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		admin, u := api.newAdmin(t), api.signUp(t)
		k := api.createKey(t, u.Token, keyBody("locked out", "projects:read"))
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusOK, "before the lock")
		expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+u.ID+"/lock", admin.Token, ""), http.StatusNoContent, "lock")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusUnauthorized, "the key of a locked user")
	})
}

// movableClock is a clock for AccountsConfig.Now that tests move.
type movableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *movableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// withClock gives the API an Accounts whose clock is clk.
func withClock(tb testing.TB, clk *movableClock) func(*Deps) {
	return func(d *Deps) {
		policy, err := models.NewPasswordPolicy()
		if err != nil {
			tb.Fatal(err)
		}
		a, err := models.NewAccounts(context.Background(), d.DB, models.AccountsConfig{
			Hasher: models.NewPasswordHasher(models.DefaultArgon2Params), Policy: policy, Now: clk.Now})
		if err != nil {
			tb.Fatal(err)
		}
		d.Accounts = a
	}
}

func TestAPIKeyExpiry(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		clk := &movableClock{t: time.Now()} // one per dialect: they run in parallel
		api := newTestAPIWith(t, db, withClock(t, clk))
		u := api.signUp(t)
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		rec := api.call(t, http.MethodPost, "/v1/api-keys", u.Token,
			fmt.Sprintf(`{"name":"an hour","scopes":["projects:read"],"expires_at":%q}`, expires.Format(time.RFC3339)))
		expectStatus(t, rec, http.StatusCreated, "create")
		var k apiKeyJSON
		decodeExact(t, rec, &k, newAPIKeyMembers...)
		if k.ExpiresAt == nil || !checkTimestamp(t, *k.ExpiresAt).Equal(expires) {
			t.Errorf("expires_at %v, want %s", k.ExpiresAt, expires.Format(time.RFC3339))
		}
		forever := api.createKey(t, u.Token, keyBody("no expiry", "projects:read"))
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", k.Key, ""), http.StatusOK, "before the expiry")

		clk.Advance(2 * time.Hour)
		rec = api.call(t, http.MethodGet, "/v1/projects", k.Key, "")
		expectStatus(t, rec, http.StatusUnauthorized, "after the expiry")
		if ch := rec.Header().Get(echo.HeaderWWWAuthenticate); !strings.HasPrefix(ch, "Bearer ") {
			t.Errorf("WWW-Authenticate %q, want a Bearer challenge", ch)
		}
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", forever.Key, ""), http.StatusOK, "a key without expiry")
	})
}

func TestAPIKeyQuota(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, func(d *Deps) { d.DB.SetQuotas(models.Quotas{APIKeysPerUser: 2}) }, func(t *testing.T, api *testAPI) {
		u, other := api.signUp(t), api.signUp(t)
		first := api.createKey(t, u.Token, keyBody("one", "projects:read"))
		api.createKey(t, u.Token, keyBody("two", "projects:read"))
		rec := api.call(t, http.MethodPost, "/v1/api-keys", u.Token, keyBody("three", "projects:read"))
		checkQuotaExceeded(t, rec)
		if n := len(api.listKeys(t, u.Token)); n != 2 {
			t.Errorf("%d keys after the refusal, want 2", n)
		}
		api.createKey(t, other.Token, keyBody("other's", "projects:read"))
		expectStatus(t, api.call(t, http.MethodDelete, "/v1/api-keys/"+first.ID, u.Token, ""), http.StatusNoContent, "revoke one")
		api.createKey(t, u.Token, keyBody("three again", "projects:read"))
	})
}

func TestAPIKeyInvalidBodies(t *testing.T) {
	t.Parallel()
	const keyMax = 100
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.APIKeyMax = keyMax; l.APIKeyDefault = 50 }), func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
		for _, c := range []struct {
			name, body, field string
		}{
			{"empty name", `{"name":"","scopes":["projects:read"]}`, "name"},
			{"long name", fmt.Sprintf(`{"name":%q,"scopes":["projects:read"]}`, strings.Repeat("n", 65)), "name"},
			{"no scopes", `{"name":"k"}`, "scopes"},
			{"empty scopes", `{"name":"k","scopes":[]}`, "scopes"},
			{"unknown scope", `{"name":"k","scopes":["projects:admin"]}`, "scopes"},
			{"admin scope", `{"name":"k","scopes":["admin"]}`, "scopes"},
			{"empty scope", `{"name":"k","scopes":[""]}`, "scopes"},
			{"duplicate scopes", `{"name":"k","scopes":["projects:read","projects:read"]}`, "scopes"},
			{"rate_limit 0", `{"name":"k","scopes":["projects:read"],"rate_limit":0}`, "rate_limit"},
			{"negative rate_limit", `{"name":"k","scopes":["projects:read"],"rate_limit":-5}`, "rate_limit"},
			{"rate_limit above the maximum", fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"rate_limit":%d}`, keyMax+1), "rate_limit"},
			{"expires_at in the past", fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"expires_at":%q}`, at(-time.Hour)), "expires_at"},
			{"expires_at now-ish", fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"expires_at":%q}`, at(-time.Second)), "expires_at"},
			{"expires_at malformed", `{"name":"k","scopes":["projects:read"],"expires_at":"next tuesday"}`, "expires_at"},
			{"expires_at a date only", `{"name":"k","scopes":["projects:read"],"expires_at":"2030-01-31"}`, "expires_at"},
			{"expires_at without zone", `{"name":"k","scopes":["projects:read"],"expires_at":"2030-01-31T10:00:00"}`, "expires_at"},
			{"expires_at over a year ahead", fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"expires_at":%q}`, at(400*24*time.Hour)), "expires_at"},
		} {
			rec := api.call(t, http.MethodPost, "/v1/api-keys", u.Token, c.body)
			if !checkStatus(t, rec, http.StatusUnprocessableEntity, c.name) {
				continue
			}
			p := problemOf(t, rec)
			if !slices.ContainsFunc(p.Errors, func(f problemFieldJSON) bool {
				return f.Field == c.field || strings.HasPrefix(f.Field, c.field+"[")
			}) {
				t.Errorf("%s: the problem does not name %q: %s", c.name, c.field, rec.Body.String())
			}
		}
		if n := len(api.listKeys(t, u.Token)); n != 0 {
			t.Errorf("%d keys made by invalid requests", n)
		}
		// The edges that are allowed.
		for _, body := range []string{
			fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"rate_limit":%d}`, keyMax),
			`{"name":"k","scopes":["projects:read"],"rate_limit":1}`,
			fmt.Sprintf(`{"name":"k","scopes":["projects:read"],"expires_at":%q}`, at(364*24*time.Hour)),
			`{"name":"k","scopes":["projects:read"],"expires_at":null}`,
		} {
			api.createKey(t, u.Token, body)
		}
	})
}

// TestAPIKeyRoutesDocumented: the API document describes the key routes
// with the schemas the handlers enforce, and only the creation answer has
// the key.
func TestAPIKeyRoutesDocumented(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, dbtest.Open(t, models.SQLite))
	rec := api.call(t, http.MethodGet, "/openapi.json", "", "")
	expectStatus(t, rec, http.StatusOK, "openapi")
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Policy      string                `json:"x-rampart-policy"`
			Security    []map[string][]string `json:"security"`
			RequestBody *struct {
				Content map[string]struct {
					Schema jsonSchema `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema jsonSchema `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	create, list, del := doc.Paths["/v1/api-keys"]["post"], doc.Paths["/v1/api-keys"]["get"], doc.Paths["/v1/api-keys/{id}"]["delete"]
	for name, op := range map[string]struct {
		id, policy string
		security   []map[string][]string
	}{
		"createAPIKey": {create.OperationID, create.Policy, create.Security},
		"listAPIKeys":  {list.OperationID, list.Policy, list.Security},
		"deleteAPIKey": {del.OperationID, del.Policy, del.Security},
	} {
		if op.id != name || op.policy != "authenticated" || len(op.security) != 1 || op.security[0]["bearer"] == nil {
			t.Errorf("%s: operationId %q, policy %q, security %v", name, op.id, op.policy, op.security)
		}
	}
	if _, ok := doc.Paths["/v1/api-keys/{id}"]["get"]; ok {
		t.Error("the document has GET /v1/api-keys/{id}: a key is shown only at creation")
	}

	if create.RequestBody == nil {
		t.Fatal("POST /v1/api-keys documents no request body")
	}
	req := create.RequestBody.Content["application/json"].Schema
	checkSchemaProperties(t, "create request", req, "name", "scopes", "expires_at", "rate_limit")
	if req.AdditionalProperties == nil || *req.AdditionalProperties || !slices.Equal(sorted(req.Required), []string{"name", "scopes"}) {
		t.Errorf("create request: additionalProperties %v, required %v", req.AdditionalProperties, req.Required)
	}
	scopes := req.Properties["scopes"]
	if scopes.Type != "array" || scopes.MinItems == nil || *scopes.MinItems != 1 || !scopes.UniqueItems || scopes.MinLength != nil ||
		scopes.Items == nil || !slices.Equal(sorted(scopes.Items.Enum), []string{"projects:read", "projects:write"}) {
		t.Errorf("scopes schema %+v: want a non-empty array of unique known scopes", scopes)
	}
	if rl := req.Properties["rate_limit"]; rl.Type != "integer" || rl.Minimum == nil || *rl.Minimum != 1 || rl.MinLength != nil {
		t.Errorf("rate_limit schema %+v: want an integer of at least 1", rl)
	}
	if n := req.Properties["name"]; n.MinLength == nil || *n.MinLength != 1 || n.MaxLength == nil || *n.MaxLength != 64 {
		t.Errorf("name schema %+v: want a string of 1-64 characters", n)
	}

	created := create.Responses["201"].Content["application/json"].Schema
	checkSchemaProperties(t, "create answer", created, newAPIKeyMembers...)
	listed := list.Responses["200"].Content["application/json"].Schema.Properties["items"]
	if listed.Items == nil {
		t.Fatal("list answer: no items schema")
	}
	checkSchemaProperties(t, "list item", *listed.Items, apiKeyMembers...)
	for _, status := range []string{"401", "403", "429"} {
		if _, ok := create.Responses[status]; !ok {
			t.Errorf("POST /v1/api-keys does not document %s", status)
		}
	}
	for _, status := range []string{"204", "401", "403", "404"} {
		if _, ok := del.Responses[status]; !ok {
			t.Errorf("DELETE /v1/api-keys/{id} does not document %s", status)
		}
	}
}

// jsonSchema is the part of a JSON Schema the document tests read.
type jsonSchema struct {
	Type                 any                   `json:"type"`
	Properties           map[string]jsonSchema `json:"properties"`
	Required             []string              `json:"required"`
	AdditionalProperties *bool                 `json:"additionalProperties"`
	Items                *jsonSchema           `json:"items"`
	Enum                 []string              `json:"enum"`
	MinItems             *int                  `json:"minItems"`
	UniqueItems          bool                  `json:"uniqueItems"`
	MinLength            *int                  `json:"minLength"`
	MaxLength            *int                  `json:"maxLength"`
	Minimum              *int                  `json:"minimum"`
}

func checkSchemaProperties(t *testing.T, what string, s jsonSchema, want ...string) {
	t.Helper()
	var got []string
	for name := range s.Properties {
		got = append(got, name)
	}
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("%s: properties %v, want %v", what, sorted(got), sorted(want))
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

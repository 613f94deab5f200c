package handlers

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestProjectCRUD(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)

		// Create: 201, the project, and where it lives.
		rec := api.call(t, http.MethodPost, "/v1/projects", u.Token, `{"name":"Garden","description":"Beds\nand borders"}`)
		expectStatus(t, rec, http.StatusCreated, "create")
		var p projectJSON
		decodeExact(t, rec, &p, projectMembers...)
		checkID(t, p.ID)
		created := checkTimestamp(t, p.CreatedAt)
		checkTimestamp(t, p.UpdatedAt)
		if p.Name != "Garden" || p.Description != "Beds\nand borders" {
			t.Errorf("project = %+v", p)
		}
		if loc := rec.Header().Get(echo.HeaderLocation); loc != "/v1/projects/"+p.ID {
			t.Errorf("Location %q, want /v1/projects/%s", loc, p.ID)
		}

		// Read it back, also through Location.
		rec = api.call(t, http.MethodGet, "/v1/projects/"+p.ID, u.Token, "")
		expectStatus(t, rec, http.StatusOK, "get")
		var got projectJSON
		decodeExact(t, rec, &got, projectMembers...)
		if got != p {
			t.Errorf("get = %+v, want %+v", got, p)
		}

		// Description is optional on create.
		rec = api.call(t, http.MethodPost, "/v1/projects", u.Token, `{"name":"Shed"}`)
		expectStatus(t, rec, http.StatusCreated, "create without description")
		var shed projectJSON
		decodeExact(t, rec, &shed, projectMembers...)
		if shed.Description != "" {
			t.Errorf("description %q, want empty", shed.Description)
		}

		// PATCH changes only what is sent.
		rec = api.call(t, http.MethodPatch, "/v1/projects/"+p.ID, u.Token, `{"description":"Only the beds"}`)
		expectStatus(t, rec, http.StatusOK, "patch description")
		var patched projectJSON
		decodeExact(t, rec, &patched, projectMembers...)
		if patched.Name != "Garden" || patched.Description != "Only the beds" || patched.ID != p.ID || patched.CreatedAt != p.CreatedAt {
			t.Errorf("patched = %+v", patched)
		}
		if checkTimestamp(t, patched.UpdatedAt).Before(created) {
			t.Errorf("updated_at %s is before created_at %s", patched.UpdatedAt, p.CreatedAt)
		}
		rec = api.call(t, http.MethodPatch, "/v1/projects/"+p.ID, u.Token, `{"name":"Allotment","description":""}`)
		expectStatus(t, rec, http.StatusOK, "patch name and clear description")
		decodeExact(t, rec, &patched, projectMembers...)
		if patched.Name != "Allotment" || patched.Description != "" {
			t.Errorf("patched = %+v", patched)
		}

		// List: the caller's projects, oldest first.
		items := walk[projectJSON](t, api, u.Token, "/v1/projects", 20)
		if len(items) != 2 || items[0].ID != p.ID || items[1].ID != shed.ID {
			t.Errorf("list = %+v", items)
		}

		// Delete: 204, gone, and its tasks with it.
		task := api.createTask(t, u.Token, p.ID, "Dig")
		rec = api.call(t, http.MethodDelete, "/v1/projects/"+p.ID, u.Token, "")
		expectStatus(t, rec, http.StatusNoContent, "delete")
		if rec.Body.Len() != 0 {
			t.Errorf("204 with a body: %q", rec.Body.String())
		}
		for _, path := range []string{"/v1/projects/" + p.ID, "/v1/projects/" + p.ID + "/tasks", "/v1/projects/" + p.ID + "/tasks/" + task.ID} {
			checkStatus(t, api.call(t, http.MethodGet, path, u.Token, ""), http.StatusNotFound, "after delete: "+path)
		}
		checkStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+p.ID, u.Token, ""), http.StatusNotFound, "delete again")
	})
}

func TestProjectUpdateRules(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "Unchanged")
		path := "/v1/projects/" + p.ID
		for _, c := range []struct {
			name, body string
			status     int
			field      string
		}{
			{"nothing to change", `{}`, http.StatusUnprocessableEntity, ""},
			{"empty name", `{"name":""}`, http.StatusUnprocessableEntity, "name"},
			{"name too long", `{"name":"` + strings.Repeat("n", 101) + `"}`, http.StatusUnprocessableEntity, "name"},
			{"name with a line break", `{"name":"a\nb"}`, http.StatusUnprocessableEntity, "name"},
			{"description too long", `{"description":"` + strings.Repeat("d", 2001) + `"}`, http.StatusUnprocessableEntity, "description"},
			{"description with an escape sequence", `{"description":"\u001b[2J"}`, http.StatusUnprocessableEntity, "description"},
			{"name null", `{"name":null}`, http.StatusBadRequest, "name"},
			{"description null", `{"description":null}`, http.StatusBadRequest, "description"},
			{"name a number", `{"name":42}`, http.StatusBadRequest, "name"},
			{"owner_id", `{"name":"Moved","owner_id":"` + u.ID + `"}`, http.StatusBadRequest, "owner_id"},
			{"id", `{"name":"Moved","id":"1b4e28ba-2fa1-4d2e-883f-0016d3cca427"}`, http.StatusBadRequest, "id"},
			{"created_at", `{"name":"Moved","created_at":"2000-01-01T00:00:00Z"}`, http.StatusBadRequest, "created_at"},
		} {
			rec := api.call(t, http.MethodPatch, path, u.Token, c.body)
			if checkStatus(t, rec, c.status, c.name) && c.field != "" && !problemOf(t, rec).hasField(c.field) {
				t.Errorf("%s: the problem does not name %s: %s", c.name, c.field, rec.Body.String())
			}
		}
		rec := api.call(t, http.MethodGet, path, u.Token, "")
		expectStatus(t, rec, http.StatusOK, "get")
		var got projectJSON
		decodeExact(t, rec, &got, projectMembers...)
		if got != p {
			t.Errorf("a refused PATCH changed the project: %+v, want %+v", got, p)
		}
		// A longest valid name is fine: the limits are where API.md puts them.
		rec = api.call(t, http.MethodPatch, path, u.Token, `{"name":"`+strings.Repeat("n", 100)+`","description":"`+strings.Repeat("d", 2000)+`"}`)
		checkStatus(t, rec, http.StatusOK, "longest name and description")
	})
}

func TestProjectPagination(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		alice, bob := api.signUp(t), api.signUp(t)
		var want []string
		for i := range 23 {
			want = append(want, api.createProject(t, alice.Token, fmt.Sprintf("Project %02d", i)).ID)
		}
		bobs := api.createProject(t, bob.Token, "Bob's")

		t.Run("200 every item exactly once", func(t *testing.T) {
			for _, limit := range []int{1, 5, 22, 23, 100} {
				got := walk[projectJSON](t, api, alice.Token, "/v1/projects", limit)
				var ids []string
				for _, p := range got {
					ids = append(ids, p.ID)
				}
				if strings.Join(ids, ",") != strings.Join(want, ",") {
					t.Errorf("limit %d: walked %d items, want the %d projects in order once each", limit, len(ids), len(want))
				}
			}
			// Bob sees only his own.
			got := walk[projectJSON](t, api, bob.Token, "/v1/projects", 100)
			if len(got) != 1 || got[0].ID != bobs.ID {
				t.Errorf("bob's list = %+v", got)
			}
		})

		t.Run("200 default limit 20", func(t *testing.T) {
			rec := api.call(t, http.MethodGet, "/v1/projects", alice.Token, "")
			expectStatus(t, rec, http.StatusOK, "list")
			var page pageJSON[projectJSON]
			decodeExact(t, rec, &page, pageMembers...)
			if len(page.Items) != 20 || page.NextCursor == nil {
				t.Errorf("default page has %d items, next %v; want 20 and a cursor", len(page.Items), page.NextCursor)
			}
		})

		// A cursor of alice's list.
		rec := api.call(t, http.MethodGet, "/v1/projects?limit=2", alice.Token, "")
		expectStatus(t, rec, http.StatusOK, "first page")
		var page pageJSON[projectJSON]
		decodeExact(t, rec, &page, pageMembers...)
		cursor := *page.NextCursor

		t.Run("400", func(t *testing.T) {
			taskRec := api.call(t, http.MethodGet, "/v1/projects/"+bobs.ID+"/tasks", bob.Token, "")
			expectStatus(t, taskRec, http.StatusOK, "bob's tasks")
			for _, c := range []struct {
				name, token, query string
				field              string
			}{
				{"limit not a number", alice.Token, "limit=abc", "limit"},
				{"limit a fraction", alice.Token, "limit=1.5", "limit"},
				{"limit twice", alice.Token, "limit=1&limit=2", "limit"},
				{"cursor twice", alice.Token, "cursor=" + cursor + "&cursor=" + cursor, "cursor"},
				{"unknown parameter", alice.Token, "callback=x", "callback"},
				{"unknown parameter beside known ones", alice.Token, "limit=2&sort=name", "sort"},
				{"another user's cursor", bob.Token, "cursor=" + cursor, "cursor"},
				{"edited cursor", alice.Token, "cursor=" + editCursor(cursor), "cursor"},
				{"truncated cursor", alice.Token, "cursor=" + cursor[:len(cursor)-2], "cursor"},
				{"invented cursor", alice.Token, "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x01after-1-please!!")), "cursor"},
				{"cursor not base64", alice.Token, "cursor=" + url.QueryEscape("' OR 1=1 --"), "cursor"},
				{"token in the query", alice.Token, "access_token=" + alice.Token, "access_token"},
			} {
				rec := api.call(t, http.MethodGet, "/v1/projects?"+c.query, c.token, "")
				if checkStatus(t, rec, http.StatusBadRequest, c.name) && !problemOf(t, rec).hasField(c.field) {
					t.Errorf("%s: the problem does not name %s: %s", c.name, c.field, rec.Body.String())
				}
			}
		})

		t.Run("422", func(t *testing.T) {
			for _, limit := range []string{"0", "-1", "101", "100000"} {
				rec := api.call(t, http.MethodGet, "/v1/projects?limit="+limit, alice.Token, "")
				if checkStatus(t, rec, http.StatusUnprocessableEntity, "limit="+limit) && !problemOf(t, rec).hasField("limit") {
					t.Errorf("limit=%s: the problem does not name limit: %s", limit, rec.Body.String())
				}
			}
		})

		t.Run("401 credentials only in the header", func(t *testing.T) {
			for _, q := range []string{"access_token=", "token=", "api_key=", "bearer="} {
				rec := api.call(t, http.MethodGet, "/v1/projects?"+q+url.QueryEscape(alice.Token), "", "")
				checkStatus(t, rec, http.StatusUnauthorized, q)
			}
			// Nor is the query string, where such credentials land, logged.
			if strings.Contains(api.logs.String(), alice.Token) {
				t.Error("the log contains a session token")
			}
		})
	})
}

// editCursor changes one character in the middle of a cursor.
func editCursor(c string) string {
	b := []byte(c)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// injections are strings that break SQL built by concatenation, in either
// dialect, and placeholder characters a careless rebinding would touch.
var injections = []string{
	`'; DROP TABLE projects; --`,
	`' OR '1'='1`,
	`"; DROP TABLE tasks; --`,
	`Robert'); DELETE FROM users; --`,
	`1; UPDATE users SET role='admin'`,
	`%' OR 1=1 --`,
	`? $1 $2 :id @p1`,
	`\'; SELECT pg_sleep(0); --`,
	`' UNION SELECT password_hash, email FROM users --`,
}

func TestSQLInjectionStoredVerbatim(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		var projects []projectJSON
		for _, s := range injections {
			rec := api.call(t, http.MethodPost, "/v1/projects", u.Token, jsonBody(t, map[string]string{"name": s, "description": s + "\n" + s}))
			expectStatus(t, rec, http.StatusCreated, "create "+s)
			var p projectJSON
			decodeExact(t, rec, &p, projectMembers...)
			if p.Name != s || p.Description != s+"\n"+s {
				t.Errorf("stored %q / %q, want %q", p.Name, p.Description, s)
			}
			projects = append(projects, p)

			rec = api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/tasks", u.Token, jsonBody(t, map[string]string{"title": s}))
			expectStatus(t, rec, http.StatusCreated, "create task "+s)
			var task taskJSON
			decodeExact(t, rec, &task, taskMembers...)
			if task.Title != s {
				t.Errorf("task title %q, want %q", task.Title, s)
			}
			rec = api.call(t, http.MethodPatch, "/v1/projects/"+p.ID+"/tasks/"+task.ID, u.Token, jsonBody(t, map[string]string{"title": s + s}))
			expectStatus(t, rec, http.StatusOK, "patch task "+s)
			rec = api.call(t, http.MethodPatch, "/v1/projects/"+p.ID, u.Token, jsonBody(t, map[string]string{"name": s}))
			expectStatus(t, rec, http.StatusOK, "patch project "+s)
		}

		// Read back verbatim.
		got := walk[projectJSON](t, api, u.Token, "/v1/projects", 100)
		if len(got) != len(injections) {
			t.Fatalf("listed %d projects, want %d", len(got), len(injections))
		}
		for i, p := range got {
			if p.Name != injections[i] {
				t.Errorf("project %d name %q, want %q", i, p.Name, injections[i])
			}
			tasks := walk[taskJSON](t, api, u.Token, "/v1/projects/"+p.ID+"/tasks", 100)
			if len(tasks) != 1 || tasks[0].Title != injections[i]+injections[i] {
				t.Errorf("tasks of project %d = %+v", i, tasks)
			}
		}

		// An account whose every text field is an injection.
		email := `o'brien'--=1@example.com`
		password := `' OR '1'='1' -- secret`
		name := `Robert'); DROP TABLE users;--`
		rec := api.call(t, http.MethodPost, "/v1/auth/register", "", jsonBody(t, map[string]string{"email": email, "password": password, "display_name": name}))
		expectStatus(t, rec, http.StatusCreated, "register")
		var created userJSON
		decodeExact(t, rec, &created, userMembers...)
		if created.Email != email || created.DisplayName != name {
			t.Errorf("user = %+v", created)
		}
		token := api.login(t, email, password)

		// Injections in the login fields match nobody.
		for _, s := range []string{`' OR '1'='1`, `' OR 1=1 --`, `admin'--`, email + `' --`} {
			rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(s, s))
			checkStatus(t, rec, http.StatusUnauthorized, "login as "+s)
		}

		// Every table is still there and intact.
		expectStatus(t, api.call(t, http.MethodGet, "/v1/me", token, ""), http.StatusOK, "users table")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/me", u.Token, ""), http.StatusOK, "sessions table")
		if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != len(injections) {
			t.Errorf("projects table: %d rows, want %d", n, len(injections))
		}
		if n := len(walk[taskJSON](t, api, u.Token, "/v1/projects/"+projects[0].ID+"/tasks", 100)); n != 1 {
			t.Errorf("tasks table: %d rows, want 1", n)
		}
	})
}

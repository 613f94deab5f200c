package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

func TestRouterErrors(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)

		t.Run("404 unknown path", func(t *testing.T) {
			for _, path := range []string{
				"/nothing-here-at-all",
				"/v1",
				"/v1/",
				"/v2/projects",
				"/v1/projects/" + "5f0c6a3e-8a5b-4c1d-9e2f-3a4b5c6d7e8f" + "/unknown-child",
				"/v1/admin",
				"/.env",
				"/wp-login.php",
				"/v1/projects/../admin/users",
			} {
				checkStatus(t, api.call(t, http.MethodGet, path, u.Token, ""), http.StatusNotFound, path)
			}
		})

		t.Run("405 wrong method with Allow", func(t *testing.T) {
			allowed := map[string][]string{}
			for _, r := range api.routes {
				allowed[r.path] = append(allowed[r.path], r.method)
			}
			methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodTrace, "PROPFIND", "CONNECT"}
			for path, ok := range allowed {
				target := fillPath(path, unknownIDs(path))
				for _, m := range methods {
					if slices.Contains(ok, m) {
						continue
					}
					rec := api.call(t, m, target, u.Token, "")
					if !checkStatus(t, rec, http.StatusMethodNotAllowed, m+" "+path) {
						continue
					}
					var got []string
					for _, v := range strings.Split(rec.Header().Get(echo.HeaderAllow), ",") {
						if v = strings.TrimSpace(v); v != "" && v != http.MethodOptions {
							got = append(got, v)
						}
					}
					want := slices.Clone(ok)
					slices.Sort(got)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Errorf("%s %s: Allow %q, want %v (and OPTIONS)", m, path, rec.Header().Get(echo.HeaderAllow), want)
					}
				}
			}
		})

		t.Run("406 JSON endpoints refuse Accept: text/html", func(t *testing.T) {
			for _, path := range []string{"/", "/healthz", "/v1/me", "/v1/projects"} {
				req := withToken(newRequest(http.MethodGet, path, ""), u.Token)
				req.Header.Set(echo.HeaderAccept, "text/html")
				checkStatus(t, api.serve(t, req), http.StatusNotAcceptable, path)
			}
		})
	})
}

func TestPanicIsA500Problem(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		// New's own instance, with a route added after it: the route gets
		// the same global middleware and error handler as every other.
		logs := &logBuffer{}
		cursors, err := models.NewCursorCodec(randomBytes(t, 32))
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Deps{DB: api.db, Accounts: api.accounts, Cursors: cursors,
			Logger: slog.New(slog.NewJSONHandler(logs, nil)), Webhooks: api.webhooks})
		if err != nil {
			t.Fatal(err)
		}
		const secret = "boom-with-secret-detail-42"
		e.GET("/test/panic", func(echo.Context) error { panic(secret) })
		e.GET("/test/panic-error", func(echo.Context) error { panic(errors.New(secret)) })
		e.GET("/test/nil-map", func(echo.Context) error {
			var m map[string]int
			//lint:ignore SA5000 the runtime error is the point: a panic inside a handler
			m["x"] = 1
			return nil
		})
		e.GET("/test/error", func(echo.Context) error { return errors.New(secret + " SELECT * FROM users") })
		withPanics := &testAPI{e: e, literals: api.literals, logs: logs}

		for _, path := range []string{"/test/panic", "/test/panic-error", "/test/nil-map", "/test/error"} {
			rec := withPanics.serve(t, newRequest(http.MethodGet, path, ""), secret)
			if !checkStatus(t, rec, http.StatusInternalServerError, path) {
				continue
			}
			id := rec.Header().Get(echo.HeaderXRequestID)
			logged := logEntries(t, logs, id)
			if len(logged) == 0 {
				t.Errorf("%s: nothing logged with request_id %s", path, id)
			}
			var text []string
			for _, entry := range logged {
				text = append(text, entry["msg"].(string)+" "+stringOf(entry["error"])+" "+stringOf(entry["stack"]))
			}
			all := strings.Join(text, "\n")
			if !strings.Contains(all, secret) && path != "/test/nil-map" {
				t.Errorf("%s: the log does not have the cause: %s", path, all)
			}
			if path != "/test/error" && (!strings.Contains(all, "panic") || !strings.Contains(all, "goroutine")) {
				t.Errorf("%s: the log does not have the panic and its stack: %s", path, all)
			}
		}
		// The server goes on answering.
		expectStatus(t, withPanics.serve(t, newRequest(http.MethodGet, "/healthz", "")), http.StatusOK, "healthz after panics")
	})
}

// logEntries returns the JSON log lines carrying request_id id.
func logEntries(t *testing.T, logs *logBuffer, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split([]byte(logs.String()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var entry map[string]any
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if entry["request_id"] == id {
			out = append(out, entry)
		}
	}
	return out
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		send := func(values ...string) string {
			req := newRequest(http.MethodGet, "/healthz", "")
			for _, v := range values {
				req.Header.Add(echo.HeaderXRequestID, v)
			}
			rec := api.serve(t, req)
			expectStatus(t, rec, http.StatusOK, "healthz")
			return rec.Header().Get(echo.HeaderXRequestID)
		}

		t.Run("generated", func(t *testing.T) {
			a, b := send(), send()
			if a == b || len(a) < 16 {
				t.Errorf("generated IDs %q and %q", a, b)
			}
		})

		t.Run("kept", func(t *testing.T) {
			for _, id := range []string{"abc-123_XYZ.9", "0f8fad5b-d9cb-469f-a165-70867728950e", strings.Repeat("a", 64)} {
				if got := send(id); got != id {
					t.Errorf("client ID %q became %q", id, got)
				}
			}
		})

		t.Run("replaced", func(t *testing.T) {
			for _, id := range []string{
				"abc\r\nX-Injected: 1",
				"abc\ndef",
				"abc def",
				"abc\tdef",
				strings.Repeat("a", 65),
				"<script>",
				"id;drop",
				"ключ",
				"a/b",
				"",
			} {
				got := send(id)
				if got == id || strings.ContainsAny(got, "\r\n \t<;/") || got == "" {
					t.Errorf("client ID %q was kept as %q", id, got)
				}
			}
		})

		t.Run("on errors too", func(t *testing.T) {
			req := newRequest(http.MethodGet, "/v1/me", "")
			req.Header.Set(echo.HeaderXRequestID, "trace-me-42")
			rec := api.serve(t, req)
			expectStatus(t, rec, http.StatusUnauthorized, "me without a token")
			if rec.Header().Get(echo.HeaderXRequestID) != "trace-me-42" || problemOf(t, rec).RequestID != "trace-me-42" {
				t.Errorf("the error lost the request ID: %v %s", rec.Header(), rec.Body.String())
			}
		})
	})
}

func TestReadyzWithoutDatabase(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		api := newTestAPI(t, db)
		expectStatus(t, api.call(t, http.MethodGet, "/readyz", "", ""), http.StatusOK, "readyz")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		rec := api.call(t, http.MethodGet, "/readyz", "", "")
		expectStatus(t, rec, http.StatusServiceUnavailable, "readyz with the database closed")
		// Liveness does not depend on the database.
		expectStatus(t, api.call(t, http.MethodGet, "/healthz", "", ""), http.StatusOK, "healthz")
		if len(logEntries(t, api.logs, rec.Header().Get(echo.HeaderXRequestID))) == 0 {
			t.Error("the 503 was not logged")
		}
	})
}

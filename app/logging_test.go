package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// Credentials the logging tests try to log; none may come out.
const (
	logPassword   = "Tr0ub4dor-and-3-horses"
	logSession    = "rps_" + "Wm9vbGVkWW91VGhpc0lzTm90QVJlYWxUb2tlbkF0QWxs"
	logAPIKey     = "rpk_" + "QW5vdGhlck9uZVRoaXNJc05vdEFSZWFsS2V5RWl0aGVy"
	logJWT        = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA"
	logDBPassword = "pg-Pa55word-in-a-URL"
)

// logLines logs with a fresh server logger and returns its output as one
// decoded object per line, failing on a line that is not JSON.
func logLines(t *testing.T, level string, do func(*slog.Logger)) (string, []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	do(newLogger(&buf, level))
	out := buf.String()
	var lines []map[string]any
	for _, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("the log does not end with a newline: %q", line)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not one JSON object: %q (%v)", line, err)
		}
		lines = append(lines, m)
	}
	return out, lines
}

// wantNoneOf fails when out contains any of the secrets.
func wantNoneOf(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log shows %q:\n%s", s, out)
		}
	}
}

func TestLogRedactsCredentialKeys(t *testing.T) {
	for _, key := range []string{
		"Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization", "Cookie", "Set-Cookie", "set_cookie",
		"password", "Password", "new_password", "current_password", "passwd", "pwd", "passphrase", "password_hash",
		"secret", "client_secret", "token", "access_token", "refresh_token", "session_token", "csrfToken",
		"api_key", "apiKey", "X-API-Key", "apikey", "key", "cursor_key", "signing_key", "private_key", "hmacKey",
		"dsn", "DSN", "database_url", "APP_DATABASE_URL", "redis_url", "connection_string", "session_id", "sessionid", "credentials",
	} {
		t.Run(key, func(t *testing.T) {
			out, lines := logLines(t, "debug", func(log *slog.Logger) {
				log.Info("plain", key, logPassword)
				log.Info("in a group", slog.Group("request", slog.Group("headers", key, logPassword)))
				log.With(key, logPassword).Info("with")
				log.WithGroup("g").With(key, logPassword).Info("with, in a group")
				log.Info("a number", key, 123456)
				log.Info("in a map", "headers", map[string]any{key: logPassword, "nested": map[string]string{key: logPassword}})
			})
			wantNoneOf(t, out, logPassword, "123456")
			if len(lines) != 6 || strings.Count(out, models.RedactedText) != 7 {
				t.Errorf("want 6 lines with 7 redactions:\n%s", out)
			}
		})
	}

	t.Run("under a group that names a credential", func(t *testing.T) {
		out, _ := logLines(t, "info", func(log *slog.Logger) {
			log.WithGroup("secrets").Info("group", "cursor", logPassword)
			log.Info("group attr", slog.Group("credentials", "user", "alice", "value", logPassword))
		})
		wantNoneOf(t, out, logPassword, "alice")
	})

	t.Run("headers, structs and slices", func(t *testing.T) {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+logJWT)
		h.Add("Cookie", "sid="+logSession)
		h.Set("Accept", "application/json")
		type loginBody struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		out, _ := logLines(t, "info", func(log *slog.Logger) {
			log.Info("headers", "header", h)
			log.Info("body", "body", loginBody{Email: "a@example.com", Password: logPassword})
			log.Info("bodies", "bodies", []loginBody{{Password: logPassword}})
			log.Info("bytes", "raw", []byte(logPassword))
		})
		wantNoneOf(t, out, logJWT, logSession, logPassword)
		for _, want := range []string{"application/json", "a@example.com"} {
			if !strings.Contains(out, want) {
				t.Errorf("the log lost %q, which is no credential:\n%s", want, out)
			}
		}
	})

	t.Run("keys about a credential are kept", func(t *testing.T) {
		_, lines := logLines(t, "info", func(log *slog.Logger) {
			log.Info("meta", "request_id", "r1", "api_key_id", "k1", "token_type", "Bearer", "secret_name", "cursor_key",
				"key_prefix", "rpk_ab", "status", 401, "route", "/v1/auth/login", "actor", "u1", "remote_ip", "::1")
		})
		for k, want := range map[string]any{"request_id": "r1", "api_key_id": "k1", "token_type": "Bearer",
			"secret_name": "cursor_key", "status": float64(401), "route": "/v1/auth/login", "actor": "u1", "remote_ip": "::1"} {
			if lines[0][k] != want {
				t.Errorf("%s = %v, want %v", k, lines[0][k], want)
			}
		}
		// A fragment of an API key is still a fragment of a credential.
		if lines[0]["key_prefix"] != "rpk_"+models.RedactedText {
			t.Errorf("key_prefix = %v", lines[0]["key_prefix"])
		}
	})
}

func TestLogRedactsCredentialValues(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("alice:" + logPassword))
	cases := []struct {
		name, value string
		secrets     []string
		want        string // the redacted value, when it is exactly known
	}{
		{"session token", "token " + logSession + " expired", []string{logSession}, "token rps_[REDACTED] expired"},
		{"API key", "key=" + logAPIKey, []string{logAPIKey}, ""},
		{"API key in a path", "/v1/x/" + logAPIKey + "/y", []string{logAPIKey}, "/v1/x/rpk_[REDACTED]/y"},
		{"a cut token", logSession[:20], []string{logSession[4:20]}, "rps_[REDACTED]"},
		{"bearer", "Authorization: Bearer " + logJWT, []string{logJWT}, "Authorization: Bearer [REDACTED]"},
		{"bearer, lower case", "bearer " + logJWT, []string{logJWT}, "bearer [REDACTED]"},
		{"bearer, URL-encoded space", "Bearer%20" + logJWT, []string{logJWT}, "Bearer [REDACTED]"},
		{"bearer, plus for space", "bearer+" + logJWT, []string{logJWT}, "bearer [REDACTED]"},
		{"bearer after a tab", "bearer\t" + logJWT, []string{logJWT}, "bearer [REDACTED]"},
		{"basic", "Basic " + basic, []string{basic}, "Basic [REDACTED]"},
		{"postgres URL", "dial postgres://app:" + logDBPassword + "@db.example.com:5432/app?sslmode=verify-full failed",
			[]string{logDBPassword}, "dial postgres://app:xxxxx@db.example.com:5432/app?sslmode=verify-full failed"},
		{"redis URL, no user", "redis://:" + logDBPassword + "@cache:6379/0", []string{logDBPassword}, "redis://:xxxxx@cache:6379/0"},
		{"password with @ and :", "postgres://app:p@ss:" + logDBPassword + "@db/app", []string{logDBPassword, "p@ss"}, "postgres://app:xxxxx@db/app"},
		{"URL with an escaped password", "postgres://app:" + url.QueryEscape(logDBPassword+"/%") + "@db/app", []string{logDBPassword}, ""},
		{"query password", "postgres://db/app?sslpassword=" + logDBPassword + "&x=1", []string{logDBPassword}, "postgres://db/app?sslpassword=[REDACTED]&x=1"},
		{"libpq DSN", "host=db user=app password=" + logDBPassword + " dbname=app", []string{logDBPassword}, "host=db user=app password=[REDACTED] dbname=app"},
		{"libpq DSN, quoted", "host=db password = '" + logDBPassword + " x' dbname=app", []string{logDBPassword}, ""},
		{"Go struct", fmt.Sprintf("%+v", struct{ Email, Password string }{"a@example.com", logPassword}), []string{logPassword}, "{Email:a@example.com Password:[REDACTED]}"},
		{"JSON body", `{"email":"a@example.com","password":"` + logPassword + `","new_password":"x\"` + logPassword + `"}`,
			[]string{logPassword}, `{"email":"a@example.com","password":"[REDACTED]","new_password":"[REDACTED]"}`},
		{"plain words stay", "password: too short; token expired; basic auth", nil, "password: too short; token expired; basic auth"},
		{"a URL without a password stays", "https://user@example.com/a@b", nil, "https://user@example.com/a@b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, lines := logLines(t, "info", func(log *slog.Logger) {
				log.Info(c.value, "value", c.value, "error", errors.New(c.value), "list", []string{c.value})
			})
			wantNoneOf(t, out, c.secrets...)
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1", len(lines))
			}
			if c.want != "" {
				for _, k := range []string{"msg", "value", "error"} {
					if lines[0][k] != c.want {
						t.Errorf("%s = %q, want %q", k, lines[0][k], c.want)
					}
				}
			}
		})
	}

	t.Run("Secret and Config", func(t *testing.T) {
		cfg, err := LoadConfig(vars{
			"APP_DATABASE_URL": "postgres://app:" + logDBPassword + "@db.example.com/app",
			"APP_REDIS_URL":    "redis://:" + logPassword + "@cache.example.com:6379/0",
		}.get)
		if err != nil {
			t.Fatal(err)
		}
		s := models.NewSecret(logPassword)
		out, lines := logLines(t, "info", func(log *slog.Logger) {
			log.Info("starting", "config", cfg, "cursor", s, "database", cfg.Database, "redis", cfg.RedisURL)
			log.Info("printed", "text", fmt.Sprintf("%v %+v %s %d", cfg, cfg, s, cfg))
		})
		wantNoneOf(t, out, logPassword, logDBPassword)
		if lines[0]["cursor"] != models.RedactedText || !strings.Contains(out, "db.example.com") || !strings.Contains(out, "cache.example.com") {
			t.Errorf("want the hosts and a redacted secret:\n%s", out)
		}
	})
}

// TestLogInjection is the test of SECURITY-BASELINE §11: a log-in as
// "x\r\nINFO admin ok" gives exactly one record, with the line break
// escaped. Other control and format characters that JSON would pass through
// are escaped as text.
func TestLogInjection(t *testing.T) {
	const forged = "x\r\nINFO admin ok"
	out, lines := logLines(t, "info", func(log *slog.Logger) {
		log.Info("login failed "+forged, "email", forged)
	})
	if len(lines) != 1 || strings.Count(out, "\n") != 1 || strings.Contains(out, "\r") {
		t.Fatalf("want exactly one line:\n%q", out)
	}
	if !strings.Contains(out, `"email":"x\r\nINFO admin ok"`) || lines[0]["email"] != forged {
		t.Errorf("the value is not escaped JSON of the original: %q", out)
	}

	odd := "a\x1b[31mb\x7fc\u0085d\u202eevil\u2028e\u200bf\xffg\u200dh"
	out, lines = logLines(t, "info", func(log *slog.Logger) { log.Info("odd", "v", odd, "group", map[string]string{"v": odd}) })
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line: %q", out)
	}
	for _, raw := range []string{"\x1b", "\x7f", "\u0085", "\u202e", "\u2028", "\u200b", "\xff"} {
		if strings.Contains(out, raw) {
			t.Errorf("the log line holds %q unescaped: %q", raw, out)
		}
	}
	want := "a\x1b[31mb\\u007Fc\\u0085d\\u202Eevil\u2028e\\u200Bf\ufffdg\u200dh"
	if lines[0]["v"] != want {
		t.Errorf("decoded value = %q, want %q", lines[0]["v"], want)
	}
}

func TestLogCapsValues(t *testing.T) {
	long := strings.Repeat("é", 100_000) // two bytes each: the cap falls inside one
	stack := strings.Repeat("goroutine 1 [running]:\n", 2000)
	out, lines := logLines(t, "info", func(log *slog.Logger) {
		log.Info(long, "v", long, "list", []string{long, long, long, long, long, long, long, long, long, long},
			"stack", stack)
	})
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	if len(out) > logValueMax*2+logAnyMax+logStackMax+1024 {
		t.Errorf("the record is %d bytes long", len(out))
	}
	for _, k := range []string{"msg", "v", "list", "stack"} {
		s, _ := lines[0][k].(string)
		if !strings.HasSuffix(s, logTruncated) || !utf8.ValidString(s) {
			t.Errorf("%s is not a capped string: %d bytes, valid UTF-8 %v", k, len(s), utf8.ValidString(s))
		}
	}
	if s := lines[0]["stack"].(string); len(s) < logStackMax {
		t.Errorf("the stack was cut to %d bytes, want %d", len(s), logStackMax)
	}
	if s := lines[0]["v"].(string); len(s) > logValueMax+len(logTruncated) {
		t.Errorf("v is %d bytes", len(s))
	}
}

func TestLogLevel(t *testing.T) {
	out, lines := logLines(t, "warn", func(log *slog.Logger) {
		log.Info("dropped")
		log.Warn("kept")
	})
	if len(lines) != 1 || lines[0]["msg"] != "kept" || lines[0]["level"] != "WARN" {
		t.Errorf("level warn logged:\n%s", out)
	}
}

// TestRequestLogLevels holds the request log's levels to who has the
// problem: a refusal (4xx) is INFO, load shedding (503 for an unavailable
// dependency) WARN, a fault of ours (500) ERROR. The database is closed
// under the running handler to make the last two happen.
func TestRequestLogLevels(t *testing.T) {
	cfg, err := LoadConfig(vars{"APP_DATA_DIR": t.TempDir(), "APP_METRICS_ADDR": "off"}.get)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srvs, cleanup, err := build(context.Background(), cfg, Env{Getenv: vars{}.get, Stdout: io.Discard, Stderr: io.Discard}, newLogger(logs, "info"))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	send := func(method, path, token, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srvs.public.Handler.ServeHTTP(rec, req)
		return rec
	}
	send(http.MethodPost, "/v1/auth/register", "", registerBody("levels@example.com"))
	rec := send(http.MethodPost, "/v1/auth/login", "", loginBody("levels@example.com", servePassword))
	var login struct{ Token string }
	if err := json.Unmarshal(rec.Body.Bytes(), &login); err != nil || login.Token == "" {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}

	type levelCase struct {
		rec   *httptest.ResponseRecorder
		level string
	}
	cases := []levelCase{
		{send(http.MethodGet, "/v1/me", login.Token, ""), "INFO"},
		{send(http.MethodGet, "/v1/me", "", ""), "INFO"},
		{send(http.MethodGet, "/nowhere", "", ""), "INFO"},
	}
	cleanup() // closes the database under the handler
	cases = append(cases,
		levelCase{send(http.MethodGet, "/readyz", "", ""), "WARN"},          // 503: KindUnavailable
		levelCase{send(http.MethodGet, "/v1/me", login.Token, ""), "ERROR"}, // 500
	)
	lines := map[string]loggedRequest{}
	for line := range strings.Lines(logs.String()) {
		var r loggedRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if r.Msg == "request" {
			lines[r.RequestID] = r
		}
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized, http.StatusNotFound, http.StatusServiceUnavailable, http.StatusInternalServerError} {
		c := cases[i]
		r, ok := lines[c.rec.Header().Get(echo.HeaderXRequestID)]
		if c.rec.Code != want || !ok || r.Status != want || r.Level != c.level {
			t.Errorf("case %d: answered %d, logged %+v; want %d at %s", i, c.rec.Code, r, want, c.level)
		}
	}
}

// BenchmarkLogRequestLine measures one request line through the server's
// handler and through a plain JSON handler: what redaction costs a request.
func BenchmarkLogRequestLine(b *testing.B) {
	for name, h := range map[string]slog.Handler{
		"redacting": newLogHandler(io.Discard, slog.LevelInfo),
		"plain":     slog.NewJSONHandler(io.Discard, nil),
		"identity":  slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}),
	} {
		b.Run(name, func(b *testing.B) {
			log := slog.New(h)
			ctx := context.Background()
			for b.Loop() {
				log.LogAttrs(ctx, slog.LevelInfo, "request",
					slog.String("listener", "public"),
					slog.String("request_id", "waqhnpDsLvRoLw2NwRQNRQ"),
					slog.String("method", "GET"),
					slog.String("path", "/v1/projects/736a53af-6272-4028-adbe-953eaa02a52c/tasks"),
					slog.String("route", "/v1/projects/:id/tasks"),
					slog.Int("status", 200),
					slog.Duration("latency", 379000),
					slog.String("actor_type", "user"),
					slog.String("actor", "736a53af-6272-4028-adbe-953eaa02a52c"),
					slog.String("remote_ip", "2001:db8::1"),
				)
			}
		})
	}
}

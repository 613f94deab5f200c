package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
	"github.com/rampart-go/rampart/models/outbound"
)

// TestNoSecretsInLogsOrAudit drives every endpoint of the API, on the
// public and the service listener as build makes them, with known
// credentials: passwords in register, login and change-password bodies,
// session tokens and API keys (valid, revoked and made up) in the
// Authorization header, Basic credentials, a cookie, a secret in the query
// string and in a path, the cursor-signing key, and, where the test setup
// allows, a database URL and a Redis URL with passwords. None of them may
// appear in the server's log or in any column of any row of the audit
// trail. It also holds the request log to its contract: exactly one line
// per request, with the route template and the actor, and the log-in as
// "x\r\nINFO admin ok" of SECURITY-BASELINE §11 is one escaped record.
func TestNoSecretsInLogsOrAudit(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) { testNoSecrets(t, d) })
	}
}

// forgedEmail is the log-injection probe of SECURITY-BASELINE §11.
const forgedEmail = "x\r\nINFO admin ok"

// secretSet is every credential value the test uses.
type secretSet struct{ values []string }

// add registers credentials and returns the first.
func (s *secretSet) add(values ...string) string {
	for _, v := range values {
		if len(v) < 8 {
			panic("a secret this short could match by chance: " + v)
		}
		s.values = append(s.values, v)
	}
	return values[0]
}

// check fails for each credential that where (its text) shows.
func (s *secretSet) check(t *testing.T, what, text string) {
	t.Helper()
	for _, v := range s.values {
		if strings.Contains(text, v) {
			t.Errorf("%s shows the secret %q", what, v)
		}
	}
}

// randomToken returns a well-formed token with prefix that nobody issued.
func randomToken(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// secretsAPI sends requests to the handlers build made, from one client
// address, and remembers each request's ID and expected actor.
type secretsAPI struct {
	t        *testing.T
	public   http.Handler
	service  http.Handler
	remote   string
	requests []sentRequest
}

type sentRequest struct {
	id, method, target string
	status             int
	actorType, actor   string
	checkActor, forged bool
}

// do sends one request with the given header lines ("Name: value") and
// JSON body, and checks its status.
func (a *secretsAPI) do(h http.Handler, method, target, body string, want int, header ...string) *httptest.ResponseRecorder {
	a.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = a.remote
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, line := range header {
		name, value, _ := strings.Cut(line, ": ")
		req.Header.Add(name, value)
	}
	if h == a.service {
		// What the mTLS listener's handshake leaves after verifying a
		// client certificate issued to the service "reports".
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, VerifiedChains: [][]*x509.Certificate{{
			{Subject: pkix.Name{CommonName: "reports"}},
		}}}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want != 0 && rec.Code != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, target, rec.Code, rec.Body, want)
	}
	a.requests = append(a.requests, sentRequest{id: rec.Header().Get(echo.HeaderXRequestID), method: method, target: target, status: rec.Code})
	return rec
}

// as marks the last request's expected actor.
func (a *secretsAPI) as(actorType, actor string) {
	r := &a.requests[len(a.requests)-1]
	r.actorType, r.actor, r.checkActor = actorType, actor, true
}

func decodeInto(t *testing.T, rec *httptest.ResponseRecorder, out any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		t.Fatalf("undecodable answer %s: %v", rec.Body, err)
	}
}

func bearer(token string) string { return "Authorization: Bearer " + token }

func testNoSecrets(t *testing.T, d models.Dialect) {
	var secrets secretSet
	ctx := context.Background()
	v := dialectVars(t, d)
	dataDir := v["APP_DATA_DIR"]

	// The cursor-signing key, through the environment.
	key := make([]byte, 48)
	_, _ = rand.Read(key)
	secrets.add(base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key))
	v["APP_SECRET_CURSOR_KEY"] = base64.StdEncoding.EncodeToString(key)
	// The key that seals webhook secrets.
	sealKey := make([]byte, 32)
	_, _ = rand.Read(sealKey)
	secrets.add(base64.StdEncoding.EncodeToString(sealKey), base64.RawURLEncoding.EncodeToString(sealKey))
	v["APP_SECRET_WEBHOOK_KEY"] = base64.StdEncoding.EncodeToString(sealKey)

	// A webhook receiver on 127.0.0.1, admitted by the test-only hook of
	// Env (nothing in the configuration can admit it).
	receiver := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	receiverURL, _ := url.Parse(receiver.URL)
	receiverPort, _ := strconv.Atoi(receiverURL.Port())
	receiverRoots := x509.NewCertPool()
	receiverRoots.AddCert(receiver.Certificate())

	// The service listener: build makes it with a pinned client CA (it is
	// never bound here; requests go to its handler).
	pki := devPKI{dir: filepath.Join(dataDir, "tls")}
	if _, err := ensureDevCA(pki, discardLogger()); err != nil {
		t.Fatal(err)
	}
	v["APP_MTLS_ADDR"] = "127.0.0.1:" + itoa(freePort(t))
	v["APP_MTLS_CLIENT_CA"] = pki.caCert()
	v["APP_METRICS_ADDR"] = "off"

	if d == models.Postgres {
		v["APP_DATABASE_URL"] = withDatabasePassword(t, v["APP_DATABASE_URL"], &secrets)
	}
	src := uniqueLoopback()
	if os.Getenv("TEST_REDIS_URL") != "" || os.Getenv("CI") != "" {
		v["APP_REDIS_URL"] = withRedisPassword(t, src.String(), &secrets)
	}

	userEmail := fmt.Sprintf("nosecrets-%s@example.com", randomToken("")[:10])
	adminEmail := "admin-" + userEmail
	userPassword := secrets.add("User-Pa55word-Lantern-" + randomToken("")[:8])
	adminPassword := secrets.add("Admin-Pa55word-Harbour-" + randomToken("")[:8])
	wrongPassword := secrets.add("Wrong-Pa55word-Meadow-" + randomToken("")[:8])
	newPassword := secrets.add("New-Pa55word-Orchard-" + randomToken("")[:8])
	weakPassword := secrets.add("Sh0rt-" + randomToken("")[:4])
	forgedPassword := secrets.add("Forged-Pa55word-" + randomToken("")[:8])
	cookie := secrets.add("Cookie-Secret-" + randomToken("")[:12])
	querySecret := secrets.add("Query-Secret-" + randomToken("")[:12])
	opaqueBearer := secrets.add("Opaque-Bearer-" + randomToken("")[:12])
	madeUpSession := secrets.add(randomToken(models.SessionTokenPrefix))
	madeUpKey := secrets.add(randomToken(models.APIKeyPrefix))
	basic := secrets.add(base64.StdEncoding.EncodeToString([]byte(userEmail + ":" + userPassword)))

	if r := runCLI(t, v, adminPassword+"\n", "user", "create", "--email", adminEmail, "--role", "admin", "--password-stdin"); r.code != exitOK {
		t.Fatalf("user create: exit %d, %s", r.code, r.stderr)
	}
	cfg, err := LoadConfig(v.get)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := newLogger(logs, "debug")
	log.Info("starting", "version", Version, "config", cfg.Redacted())
	log.Debug("configuration", "config", cfg, "database", cfg.Database)
	buildCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	env := Env{Getenv: v.get, Stdout: io.Discard, Stderr: io.Discard, outbound: func(o *outbound.Options) {
		o.AllowPrefixes = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		o.Ports = append(o.Ports, receiverPort)
		o.RootCAs = receiverRoots
	}}
	srvs, cleanup, err := build(buildCtx, cfg, env, log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	cleaned := false
	defer func() {
		if !cleaned {
			cleanup()
		}
	}()
	if srvs.service == nil {
		t.Fatal("build made no service listener")
	}
	api := &secretsAPI{t: t, public: srvs.public.Handler, service: srvs.service.Handler, remote: src.String() + ":40000"}
	pub := api.public

	// Public pages.
	api.do(pub, http.MethodGet, "/", "", http.StatusOK)
	api.as(models.ActorAnonymous, "")
	api.do(pub, http.MethodGet, "/healthz", "", http.StatusOK)
	api.do(pub, http.MethodGet, "/readyz", "", http.StatusOK)
	api.do(pub, http.MethodGet, "/openapi.json", "", http.StatusOK)

	// Registration and log-in, with passwords in the bodies.
	var user struct{ ID string }
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/auth/register", registerJSON(userEmail, userPassword), http.StatusCreated), &user)
	api.do(pub, http.MethodPost, "/v1/auth/register", registerJSON(userEmail, userPassword), http.StatusConflict)
	api.do(pub, http.MethodPost, "/v1/auth/register", registerJSON("weak-"+userEmail, weakPassword), http.StatusUnprocessableEntity)
	api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(userEmail, wrongPassword), http.StatusUnauthorized)
	api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(forgedEmail, forgedPassword), 0)
	api.requests[len(api.requests)-1].forged = true
	api.do(pub, http.MethodPost, "/v1/auth/login", `{"email":`+jsonString(userEmail)+`,"password":`+jsonString(userPassword), http.StatusBadRequest)
	var login struct{ Token string }
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(userEmail, userPassword), http.StatusOK), &login)
	session := secrets.add(login.Token)

	// Credentials in headers, the query string and the path.
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusOK, bearer(session), "Cookie: session="+cookie)
	api.as(models.ActorUser, user.ID)
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusUnauthorized, "Authorization: Basic "+basic)
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusUnauthorized, bearer(madeUpSession))
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusUnauthorized, bearer(opaqueBearer))
	api.do(pub, http.MethodGet, "/v1/me?token="+querySecret, "", http.StatusBadRequest, bearer(session))
	api.do(pub, http.MethodGet, "/v1/"+session, "", http.StatusNotFound, bearer(session))
	api.do(pub, http.MethodGet, "/nowhere?password="+querySecret+"&api_key="+madeUpKey, "", http.StatusNotFound)

	// API keys, managed with the session; the listing is paged with a
	// signed cursor.
	var key1, key2 struct{ ID, Key string }
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/api-keys", `{"name":"ci","scopes":["projects:read","projects:write"]}`, http.StatusCreated, bearer(session)), &key1)
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/api-keys", `{"name":"old","scopes":["projects:read"]}`, http.StatusCreated, bearer(session)), &key2)
	apiKey := secrets.add(key1.Key, key2.Key)
	var keys struct {
		NextCursor *string `json:"next_cursor"`
	}
	decodeInto(t, api.do(pub, http.MethodGet, "/v1/api-keys?limit=1", "", http.StatusOK, bearer(session)), &keys)
	if keys.NextCursor == nil {
		t.Fatal("no next cursor for the API keys")
	}
	api.do(pub, http.MethodGet, "/v1/api-keys?limit=1&cursor="+url.QueryEscape(*keys.NextCursor), "", http.StatusOK, bearer(session))
	api.do(pub, http.MethodGet, "/v1/api-keys", "", http.StatusForbidden, bearer(apiKey))
	api.do(pub, http.MethodDelete, "/v1/api-keys/"+key2.ID, "", http.StatusNoContent, bearer(session))
	api.do(pub, http.MethodGet, "/v1/projects", "", http.StatusUnauthorized, bearer(key2.Key))
	api.do(pub, http.MethodGet, "/v1/projects", "", http.StatusUnauthorized, bearer(madeUpKey))

	// Projects, their report and their tasks, with the API key.
	var project, task struct{ ID string }
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/projects", `{"name":"Secrets","description":"none here"}`, http.StatusCreated, bearer(apiKey)), &project)
	api.as(models.ActorAPIKey, key1.ID)
	p := "/v1/projects/" + project.ID
	api.do(pub, http.MethodGet, "/v1/projects?limit=10", "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodGet, p, "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodPatch, p, `{"description":"still none"}`, http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodGet, p+"/report", "", http.StatusOK, bearer(session), "Accept: text/html")
	decodeInto(t, api.do(pub, http.MethodPost, p+"/tasks", `{"title":"rotate keys","due_date":"2030-01-02"}`, http.StatusCreated, bearer(apiKey)), &task)
	api.do(pub, http.MethodGet, p+"/tasks?limit=5", "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodGet, p+"/tasks/"+task.ID, "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodPatch, p+"/tasks/"+task.ID, `{"done":true}`, http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodDelete, p+"/tasks/"+task.ID, "", http.StatusNoContent, bearer(apiKey))
	// A webhook whose URL carries a token, its signing secret (shown
	// once), a test delivery and the delivery log.
	hookToken := secrets.add("Hook-Query-Secret-" + randomToken("")[:12])
	var hook struct{ Secret string }
	decodeInto(t, api.do(pub, http.MethodPut, p+"/webhook", `{"url":`+jsonString(receiver.URL+"/hook?token="+hookToken)+`}`,
		http.StatusOK, bearer(apiKey)), &hook)
	if hook.Secret == "" {
		t.Fatal("the webhook's first PUT showed no secret")
	}
	secrets.add(hook.Secret)
	api.do(pub, http.MethodPost, p+"/webhook/test", "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodGet, p+"/webhook/deliveries", "", http.StatusOK, bearer(apiKey))
	api.do(pub, http.MethodDelete, p+"/webhook", "", http.StatusNoContent, bearer(apiKey))
	api.do(pub, http.MethodDelete, p, "", http.StatusNoContent, bearer(session))

	// Changing the password: a wrong current one, then the right one.
	api.do(pub, http.MethodPost, "/v1/me/password", changePasswordJSON(wrongPassword, newPassword), 0, bearer(session))
	if got := api.requests[len(api.requests)-1].status; got < 400 || got >= 500 {
		t.Fatalf("change password with a wrong current password: %d", got)
	}
	api.do(pub, http.MethodPost, "/v1/me/password", changePasswordJSON(userPassword, newPassword), http.StatusNoContent, bearer(session))
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(userEmail, newPassword), http.StatusOK), &login)
	session2 := secrets.add(login.Token)

	// The admin area, with a session of the CLI-made administrator.
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(adminEmail, adminPassword), http.StatusOK), &login)
	admin := secrets.add(login.Token)
	var users struct {
		NextCursor *string `json:"next_cursor"`
	}
	decodeInto(t, api.do(pub, http.MethodGet, "/v1/admin/users?limit=1", "", http.StatusOK, bearer(admin)), &users)
	if users.NextCursor == nil {
		t.Fatal("no next cursor for the users")
	}
	api.do(pub, http.MethodGet, "/v1/admin/users?limit=1&cursor="+url.QueryEscape(*users.NextCursor), "", http.StatusOK, bearer(admin))
	api.do(pub, http.MethodGet, "/v1/admin/users", "", http.StatusForbidden, bearer(session2))
	api.do(pub, http.MethodPost, "/v1/admin/users/"+user.ID+"/lock", "", http.StatusNoContent, bearer(admin))
	api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(userEmail, newPassword), http.StatusUnauthorized)
	api.do(pub, http.MethodPost, "/v1/admin/users/"+user.ID+"/unlock", "", http.StatusNoContent, bearer(admin))
	api.do(pub, http.MethodGet, "/v1/admin/audit?limit=2", "", http.StatusOK, bearer(admin))

	// Locking ended the user's sessions; a new one, then logging out ends it.
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusUnauthorized, bearer(session2))
	decodeInto(t, api.do(pub, http.MethodPost, "/v1/auth/login", loginBody(userEmail, newPassword), http.StatusOK), &login)
	session3 := secrets.add(login.Token)
	api.do(pub, http.MethodPost, "/v1/auth/logout", "", http.StatusNoContent, bearer(session3))
	api.do(pub, http.MethodGet, "/v1/me", "", http.StatusUnauthorized, bearer(session3))

	// The service listener, with a verified client certificate; a user
	// token means nothing there.
	api.do(api.service, http.MethodGet, "/internal/v1/stats", "", http.StatusOK)
	api.as(models.ActorService, "reports")
	api.do(api.service, http.MethodGet, "/internal/v1/stats", "", http.StatusOK, bearer(admin))

	// Closing flushes the audit queue.
	cleanup()
	cleaned = true

	out := logs.String()
	secrets.check(t, "the log", out)
	checkRequestLog(t, out, api, srvs)
	checkAuditTrail(t, cfg.Database, &secrets)
	if t.Failed() {
		t.Logf("the log:\n%s", out)
	}
}

func registerJSON(email, password string) string {
	return `{"email":` + jsonString(email) + `,"password":` + jsonString(password) + `,"display_name":"No Secrets"}`
}

func changePasswordJSON(current, next string) string {
	return `{"current_password":` + jsonString(current) + `,"new_password":` + jsonString(next) + `}`
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// withDatabasePassword returns the PostgreSQL URL raw with a password in
// it and adds the password to secrets. A server that authenticates local
// connections by "trust" (the test setups') ignores it; where the server
// checks passwords and the URL has none, there is none to add, and the
// test says so.
func withDatabasePassword(t *testing.T, raw string, secrets *secretSet) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal("the PostgreSQL test URL does not parse")
	}
	if pw, ok := u.User.Password(); ok {
		if len(pw) >= 8 {
			secrets.add(pw)
		}
		return raw
	}
	dbPassword := "Db-Pa55word-" + randomToken("")[:12]
	u.User = url.UserPassword(u.User.Username(), dbPassword)
	withPassword, err := models.ParseDatabaseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := models.OpenDB(ctx, withPassword)
	if err != nil {
		t.Logf("PostgreSQL refuses the URL with a made-up password; the database URL carries none in this run")
		return raw
	}
	db.Close()
	secrets.add(dbPassword)
	return u.String()
}

// withRedisPassword returns TEST_REDIS_URL with a password in it, when the
// Redis server accepts one (Redis 6+ with the default user's "nopass"
// accepts any password given with the user name), and adds it to secrets.
// It removes this test's rate-limit keys (all name src) when the test ends.
func withRedisPassword(t *testing.T, src string, secrets *secretSet) string {
	t.Helper()
	raw, rdb := requireRedis(t)
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, "*"+src+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		keys = append(keys, "rampart:login-failures:"+sha256Hex(models.EmailKey(forgedEmail)))
		rdb.Del(ctx, keys...)
	})
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal("TEST_REDIS_URL does not parse")
	}
	if pw, ok := u.User.Password(); ok {
		if len(pw) >= 8 {
			secrets.add(pw)
		}
		return raw
	}
	redisPassword := "Redis-Pa55word-" + randomToken("")[:12]
	u.User = url.UserPassword("default", redisPassword)
	client, err := newRedisClient(context.Background(), u.String(), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Logf("Redis refuses a made-up password; the Redis URL carries none in this run")
		return raw
	}
	secrets.add(redisPassword)
	return u.String()
}

// loggedRequest is the request line of the server log.
type loggedRequest struct {
	Msg       string `json:"msg"`
	Level     string `json:"level"`
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	ActorType string `json:"actor_type"`
	Actor     string `json:"actor"`
	RemoteIP  string `json:"remote_ip"`
}

// checkRequestLog holds the log to one JSON line per record and one
// request line per request, with the fields the request log promises, and
// checks that every route of both listeners answered a request with
// success at least once.
func checkRequestLog(t *testing.T, out string, api *secretsAPI, srvs *servers) {
	t.Helper()
	if strings.Contains(out, "\r") || strings.Contains(out, "\nINFO admin ok") {
		t.Errorf("the forged e-mail address broke a log line")
	}
	byID := map[string][]loggedRequest{}
	covered := map[string]bool{}
	for line := range strings.Lines(out) {
		var r loggedRequest
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a log line is not one JSON object: %q", line)
		}
		if r.RequestID != "" {
			byID[r.RequestID] = append(byID[r.RequestID], r)
		}
		if r.Msg == "request" && r.Status < 300 {
			covered[r.Method+" "+r.Route] = true
		}
	}
	client, _, _ := strings.Cut(api.remote, ":")
	for _, sent := range api.requests {
		lines := byID[sent.id]
		var reqLines []loggedRequest
		for _, l := range lines {
			if l.Msg == "request" {
				reqLines = append(reqLines, l)
			}
		}
		if sent.id == "" || len(reqLines) != 1 {
			t.Errorf("%s %s (request id %q): %d request lines, want 1", sent.method, sent.target, sent.id, len(reqLines))
			continue
		}
		r := reqLines[0]
		if r.Method != sent.method || r.Status != sent.status || r.RemoteIP != client || strings.Contains(r.Path, "?") {
			t.Errorf("%s %s: logged %+v, want status %d from %s and no query string", sent.method, sent.target, r, sent.status, client)
		}
		if want := "INFO"; sent.status < 500 && r.Level != want {
			t.Errorf("%s %s: %d logged at %s, want %s", sent.method, sent.target, sent.status, r.Level, want)
		}
		if sent.checkActor && (r.ActorType != sent.actorType || r.Actor != sent.actor) {
			t.Errorf("%s %s: actor %s %q, want %s %q", sent.method, sent.target, r.ActorType, r.Actor, sent.actorType, sent.actor)
		}
		if sent.forged && len(lines) != 1 {
			t.Errorf("the log-in as %q gave %d records, want exactly 1: %+v", forgedEmail, len(lines), lines)
		}
	}
	for _, e := range []*echo.Echo{srvs.public.Handler.(*echo.Echo), srvs.service.Handler.(*echo.Echo)} {
		for _, r := range e.Routes() {
			if !covered[r.Method+" "+r.Path] {
				t.Errorf("route %s %s was never driven to a successful answer: add it to this test", r.Method, r.Path)
			}
		}
	}
}

// checkAuditTrail reads every row of audit_events with plain SQL and checks
// every column for the secrets.
func checkAuditTrail(t *testing.T, u models.DatabaseURL, secrets *secretSet) {
	t.Helper()
	db, err := models.OpenRawDB(u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatalf("read the audit trail: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var actions []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		n++
		for i, c := range cols {
			text := fmt.Sprint(vals[i])
			if b, ok := vals[i].([]byte); ok {
				text = string(b)
			}
			if c == "action" {
				actions = append(actions, text)
			}
			secrets.check(t, fmt.Sprintf("audit_events row %d, column %s", n, c), text)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// An empty trail would make this check vacuous: the audit writer is
	// wired into build, and the requests above are audited.
	if n == 0 {
		t.Errorf("audit_events is empty after %s: is the audit writer wired into build?", "the requests")
	}
	t.Logf("checked %d audit events (%d distinct actions)", n, len(slices.Compact(slices.Sorted(slices.Values(actions)))))
}

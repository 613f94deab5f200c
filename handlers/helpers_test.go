package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// The HTTP tests drive the real router (newEcho is New plus its route
// table) over a real, migrated database of each dialect. Every response
// goes through testAPI.serve, which checks the invariants that hold for all
// of them; the tests check the rest.

// testAPI is one API instance over one database.
type testAPI struct {
	e      *echo.Echo
	routes []route
	// svc and svcRoutes are the mTLS listener's instance and its routes.
	svc       *echo.Echo
	svcRoutes []route
	db        *models.DB
	accounts  *models.Accounts
	// hasher is the accounts' password hasher, kept so that tests can count
	// Argon2id verifications.
	hasher *models.PasswordHasher
	// logs collects everything the API logs (JSON lines).
	logs *logBuffer
	// literals are the fixed path segments of the route table: what a
	// request path holds besides them is client input.
	literals map[string]bool
	n        atomic.Int64
	// audit is the audit writer of the API (Deps.Auditor unless a test
	// replaced it).
	audit *models.AuditWriter
	// webhooks are the webhook parts of the API's Deps (its dispatcher
	// sends queued deliveries when a test runs it).
	webhooks WebhookDeps
	// doc is the API document, loaded by document on first use; every
	// response to a route of the table is checked against it.
	doc     *openapi3.T
	docOnce sync.Once
	// docMu guards bodiesChecked: how many answers of each operation and
	// status had their body checked against the document.
	docMu         sync.Mutex
	bodiesChecked map[string]int
	// skipDocument turns that check off, for tests that change the
	// document's routes on purpose.
	skipDocument bool
	// docFrom is the API whose public listener serves the document, for
	// the mTLS listener's testAPI (nil: this one).
	docFrom *testAPI
}

// eachAPI runs fn once per dialect, in parallel, each with its own API over
// a fresh database. The caller marks its own test parallel.
func eachAPI(t *testing.T, fn func(t *testing.T, api *testAPI)) {
	t.Helper()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		fn(t, newTestAPI(t, db))
	})
}

// newTestAPI builds the API the way the app does, with the production
// Argon2id parameters, a random cursor key and a logger writing to a buffer.
func newTestAPI(tb testing.TB, db *models.DB) *testAPI {
	tb.Helper()
	return newTestAPIWith(tb, db, nil)
}

// eachAPIWith is eachAPI with configure applied to the Deps of every API
// (CORS, trusted proxies, metrics).
func eachAPIWith(t *testing.T, configure func(*Deps), fn func(t *testing.T, api *testAPI)) {
	t.Helper()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		fn(t, newTestAPIWith(t, db, configure))
	})
}

// newTestAPIWith is newTestAPI with configure (if not nil) applied to the
// Deps before both listeners' instances are built from them.
func newTestAPIWith(tb testing.TB, db *models.DB, configure func(*Deps)) *testAPI {
	tb.Helper()
	hasher := models.NewPasswordHasher(models.DefaultArgon2Params)
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatalf("password policy: %v", err)
	}
	accounts, err := models.NewAccounts(context.Background(), db, models.AccountsConfig{Hasher: hasher, Policy: policy})
	if err != nil {
		tb.Fatalf("accounts: %v", err)
	}
	cursors, err := models.NewCursorCodec(randomBytes(tb, 32))
	if err != nil {
		tb.Fatalf("cursor codec: %v", err)
	}
	logs := &logBuffer{}
	// Auditing is on, as in the server: every test also drives the audit
	// trail (a test that measures without it sets Auditor to nil).
	audit := models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{FlushEvery: 5 * time.Millisecond})
	tb.Cleanup(func() {
		if err := audit.Close(context.Background()); err != nil {
			tb.Errorf("closing the audit writer: %v", err)
		}
	})
	deps := Deps{
		DB:       db,
		Accounts: accounts,
		Cursors:  cursors,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:  "test",
		// Tests send many requests from one address and register many
		// users: the limits are raised here, and the rate-limit tests set
		// their own.
		Limits:  generousLimits(),
		Auditor: audit,
	}
	// Webhooks go to the shared test receiver through the test DNS; the
	// webhook tests configure their own.
	deps.Webhooks = webhookDeps(tb, db, defaultHooks(tb).options(false), models.WebhookConfig{})
	deps.Changes = deps.Webhooks.Dispatcher
	if configure != nil {
		configure(&deps)
	}
	e, routes, err := newEcho(deps, listenerPublic)
	if err != nil {
		tb.Fatalf("handlers.New: %v", err)
	}
	svc, svcRoutes, err := newEcho(deps, listenerService)
	if err != nil {
		tb.Fatalf("handlers.NewService: %v", err)
	}
	literals := map[string]bool{}
	for _, r := range routes {
		for _, seg := range strings.Split(r.path, "/") {
			if !strings.HasPrefix(seg, ":") {
				literals[seg] = true
			}
		}
	}
	return &testAPI{e: e, routes: routes, svc: svc, svcRoutes: svcRoutes, db: db, accounts: accounts, hasher: hasher, logs: logs, literals: literals, audit: audit,
		webhooks: deps.Webhooks}
}

// next returns a number unique within this API, for unique e-mails and names.
func (a *testAPI) next() int64 { return a.n.Add(1) }

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// unknownSessionToken has exactly the shape of a session token, but no
// session has it.
func unknownSessionToken(tb testing.TB) string {
	tb.Helper()
	return models.SessionTokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(tb, 32))
}

// ---------------------------------------------------------------------------
// Requests

// newRequest returns a request; a non-empty body is sent as
// Content-Type: application/json with an honest Content-Length.
func newRequest(method, target, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	}
	r.RemoteAddr = "192.0.2.10:40000"
	return r
}

// withToken adds Authorization: Bearer token (nothing for "").
func withToken(r *http.Request, token string) *http.Request {
	if token != "" {
		r.Header.Set(echo.HeaderAuthorization, "Bearer "+token)
	}
	return r
}

// call sends method target with a bearer token and a JSON body (either may
// be empty) and returns the checked response.
func (a *testAPI) call(tb testing.TB, method, target, token, body string) *httptest.ResponseRecorder {
	tb.Helper()
	return a.serve(tb, withToken(newRequest(method, target, body), token))
}

// serve runs r through the router and checks what holds for every
// response: it carries an X-Request-Id; an error is an RFC 9457 problem
// whose request_id is that ID and which leaks nothing (see checkProblem).
// The client input that an error must not repeat is collected from r
// (path parameters, query values, credentials, JSON string values); more
// can be passed as raw.
func (a *testAPI) serve(tb testing.TB, r *http.Request, raw ...string) *httptest.ResponseRecorder {
	tb.Helper()
	raw = append(raw, a.clientInput(tb, r)...)
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, r)
	if rec.Header().Get(echo.HeaderXRequestID) == "" {
		tb.Errorf("%s %s: %d answer has no X-Request-Id", r.Method, r.URL, rec.Code)
	}
	if rec.Code >= 400 {
		checkProblem(tb, r, rec, raw)
	}
	where := fmt.Sprintf("%s %s: %d", r.Method, r.URL.RequestURI(), rec.Code)
	checkRateLimitFields(tb, where, rec.Header())
	// The security headers of API.md, on every answer; the report page
	// has its own Content-Security-Policy.
	if mediaType(rec) == "text/html" {
		checkSecurityHeaders(tb, where, rec.Header(), reportPolicy)
	} else {
		checkSecurityHeaders(tb, where, rec.Header(), apiCSP)
	}
	a.checkAgainstDocument(tb, r, rec)
	return rec
}

// minEchoCheck is the shortest input value checked for being echoed:
// shorter ones ("1", "x") occur in any text by chance.
const minEchoCheck = 8

// clientInput lists the values of r that came from the client and that an
// error answer must never repeat. The body is read and put back.
func (a *testAPI) clientInput(tb testing.TB, r *http.Request) []string {
	tb.Helper()
	var out []string
	add := func(s string) {
		if len(s) >= minEchoCheck {
			out = append(out, s)
		}
	}
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if !a.literals[seg] {
			add(seg)
		}
	}
	for _, seg := range strings.Split(r.URL.EscapedPath(), "/") {
		if !a.literals[seg] {
			add(seg)
		}
	}
	for _, vs := range r.URL.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	for _, v := range r.Header.Values(echo.HeaderAuthorization) {
		_, cred, ok := strings.Cut(v, " ")
		if !ok {
			cred = v
		}
		add(strings.TrimSpace(cred))
	}
	// A body of unknown length (chunked) may be endless: it is not read.
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength >= 0 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			tb.Fatalf("read request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var v any
		if json.Unmarshal(body, &v) == nil {
			for _, s := range jsonStrings(v) {
				add(s)
			}
		}
	}
	return out
}

// jsonStrings returns the string values (not the member names) in v.
func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, jsonStrings(x)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, x := range v {
			out = append(out, jsonStrings(x)...)
		}
		return out
	}
	return nil
}

// ---------------------------------------------------------------------------
// Problems

// problemJSON is an error body as a client reads it.
type problemJSON struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail"`
	RequestID string             `json:"request_id"`
	Errors    []problemFieldJSON `json:"errors"`
	// ViolatedPolicies names the rate-limit policies a 429 broke.
	ViolatedPolicies []string `json:"violated-policies"`
}

// problemFieldJSON is one member of a problem's errors list.
type problemFieldJSON struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// hasField reports whether the problem names field in its errors list.
func (p problemJSON) hasField(field string) bool {
	for _, f := range p.Errors {
		if f.Field == field {
			return true
		}
	}
	return false
}

// problemMembers are the members a problem body may have.
var problemMembers = []string{"detail", "errors", "request_id", "status", "title", "type", "violated-policies"}

// leakMarkers must never appear in an error body: stack traces, Go source
// positions, SQL and runtime panics. Compared case-insensitively.
var leakMarkers = []string{"goroutine", ".go:", "sql", "select ", "runtime error", "panic"}

// checkProblem checks that rec is an RFC 9457 problem: media type, type,
// title, status equal to the HTTP status, request_id equal to X-Request-Id,
// no members beyond the documented ones, never cached, and no stack, SQL or
// echoed client input (raw) anywhere in it.
func checkProblem(tb testing.TB, r *http.Request, rec *httptest.ResponseRecorder, raw []string) {
	tb.Helper()
	where := fmt.Sprintf("%s %s: %d", r.Method, r.URL.RequestURI(), rec.Code)
	if ct := rec.Header().Get(echo.HeaderContentType); ct != MIMEProblemJSON {
		tb.Errorf("%s: Content-Type %q, want %q", where, ct, MIMEProblemJSON)
	}
	if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
		tb.Errorf("%s: Cache-Control %q, want no-store", where, cc)
	}
	body := rec.Body.Bytes()
	var members map[string]any
	if err := json.Unmarshal(body, &members); err != nil {
		tb.Errorf("%s: body is not a JSON object: %v\n%s", where, err, body)
		return
	}
	for name := range members {
		if !slices.Contains(problemMembers, name) {
			tb.Errorf("%s: problem has an undocumented member %q", where, name)
		}
	}
	var p problemJSON
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Errorf("%s: problem members have the wrong types: %v\n%s", where, err, body)
		return
	}
	if p.Type == "" || p.Title == "" {
		tb.Errorf("%s: problem lacks type or title: %s", where, body)
	}
	// violated-policies belongs to the rate-limit problem type only
	// (draft-ietf-httpapi-ratelimit-headers), and is never empty there.
	if _, ok := members["violated-policies"]; ok && (p.Type != problemTypeRateLimited || len(p.ViolatedPolicies) == 0) {
		tb.Errorf("%s: violated-policies %v on a problem of type %q", where, p.ViolatedPolicies, p.Type)
	}
	if p.Type == problemTypeRateLimited && (rec.Code != http.StatusTooManyRequests || len(p.ViolatedPolicies) == 0) {
		tb.Errorf("%s: a rate-limit problem needs status 429 and violated-policies: %s", where, body)
	}
	if p.Status != rec.Code {
		tb.Errorf("%s: problem status %d differs from the HTTP status", where, p.Status)
	}
	if id := rec.Header().Get(echo.HeaderXRequestID); p.RequestID == "" || p.RequestID != id {
		tb.Errorf("%s: problem request_id %q, X-Request-Id %q", where, p.RequestID, id)
	}
	// Everything a client can read, without the (random) request ID that
	// could spell anything.
	text := strings.ReplaceAll(string(body), p.RequestID, "")
	decoded := strings.Join(jsonStrings(members), "\n")
	decoded = strings.ReplaceAll(decoded, p.RequestID, "")
	for _, s := range []string{text, decoded} {
		lower := strings.ToLower(s)
		for _, m := range leakMarkers {
			if strings.Contains(lower, m) {
				tb.Errorf("%s: problem contains %q: %s", where, m, body)
			}
		}
		for _, in := range raw {
			if strings.Contains(s, in) {
				tb.Errorf("%s: problem repeats %q, which it must never show: %s", where, in, body)
			}
		}
	}
}

// problemOf decodes an error answer.
func problemOf(tb testing.TB, rec *httptest.ResponseRecorder) problemJSON {
	tb.Helper()
	var p problemJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		tb.Fatalf("decode problem: %v\n%s", err, rec.Body.Bytes())
	}
	return p
}

// expectStatus fails the test unless rec has status want.
func expectStatus(tb testing.TB, rec *httptest.ResponseRecorder, want int, what string) {
	tb.Helper()
	if rec.Code != want {
		tb.Fatalf("%s: status %d, want %d; body: %s", what, rec.Code, want, truncate(rec.Body.String()))
	}
}

// checkStatus is expectStatus that lets the test go on.
func checkStatus(tb testing.TB, rec *httptest.ResponseRecorder, want int, what string) bool {
	tb.Helper()
	if rec.Code != want {
		tb.Errorf("%s: status %d, want %d; body: %s", what, rec.Code, want, truncate(rec.Body.String()))
		return false
	}
	return true
}

func truncate(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// mediaType returns the media type of rec's Content-Type, without parameters.
func mediaType(rec *httptest.ResponseRecorder) string {
	mt, _, err := mime.ParseMediaType(rec.Header().Get(echo.HeaderContentType))
	if err != nil {
		return ""
	}
	return mt
}

// ---------------------------------------------------------------------------
// JSON answers

// decodeExact decodes a JSON object answer into v after checking that its
// member names are exactly want: no field is missing and none is extra
// (no hash, token, owner or internal flag slips out).
func decodeExact(tb testing.TB, rec *httptest.ResponseRecorder, v any, want ...string) {
	tb.Helper()
	if mt := mediaType(rec); mt != echo.MIMEApplicationJSON {
		tb.Fatalf("Content-Type %q, want application/json", rec.Header().Get(echo.HeaderContentType))
	}
	checkMembers(tb, rec.Body.Bytes(), want...)
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		tb.Fatalf("decode %T: %v\n%s", v, err, rec.Body.Bytes())
	}
}

// checkMembers checks that the JSON object in b has exactly the members want.
func checkMembers(tb testing.TB, b []byte, want ...string) {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Errorf("members %v, want exactly %v\n%s", got, want, b)
	}
}

// Member sets of the API's objects (API.md).
var (
	userMembers      = []string{"id", "email", "display_name", "role", "created_at"}
	adminUserMembers = []string{"id", "email", "display_name", "role", "locked", "created_at"}
	loginMembers     = []string{"token", "token_type", "expires_at"}
	projectMembers   = []string{"id", "name", "description", "created_at", "updated_at"}
	taskMembers      = []string{"id", "project_id", "title", "done", "due_date", "created_at", "updated_at"}
	pageMembers      = []string{"items", "next_cursor"}
	apiKeyMembers    = []string{"id", "name", "scopes", "prefix", "rate_limit", "expires_at", "last_used_at", "created_at"}
	newAPIKeyMembers = append(slices.Clone(apiKeyMembers), "key")
)

// problemTypeRateLimited is the problem type of a rate-limit 429, written
// out here rather than taken from the code under test.
const problemTypeRateLimited = "https://iana.org/assignments/http-problem-types#quota-exceeded"

type userJSON struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	CreatedAt   string `json:"created_at"`
}

type adminUserJSON struct {
	userJSON
	Locked bool `json:"locked"`
}

type loginJSON struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresAt string `json:"expires_at"`
}

type projectJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

type taskJSON struct {
	ID        string  `json:"id"`
	ProjectID string  `json:"project_id"`
	Title     string  `json:"title"`
	Done      bool    `json:"done"`
	DueDate   *string `json:"due_date"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
}

// apiKeyJSON is an API key as listed; Key is set only in the answer to
// its creation.
type apiKeyJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	Prefix     string   `json:"prefix"`
	RateLimit  int      `json:"rate_limit"`
	ExpiresAt  *string  `json:"expires_at"`
	LastUsedAt *string  `json:"last_used_at"`
	CreatedAt  string   `json:"created_at"`
	Key        string   `json:"key"`
}

type pageJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// checkID checks that s is a random (v4) UUID in canonical form.
func checkID(tb testing.TB, s string) {
	tb.Helper()
	u, err := uuid.Parse(s)
	if err != nil || u.Version() != 4 || u.String() != s {
		tb.Errorf("id %q is not a canonical v4 UUID", s)
	}
}

// checkTimestamp checks that s is an RFC 3339 time in UTC and returns it.
func checkTimestamp(tb testing.TB, s string) time.Time {
	tb.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		tb.Errorf("time %q is not RFC 3339 in UTC", s)
	}
	return ts
}

// ---------------------------------------------------------------------------
// Accounts and objects

// testUser is an account with an open session.
type testUser struct {
	ID       string
	Email    string
	Password string
	Token    string
}

// testPassword returns a password that passes the policy, unique for n.
func testPassword(n int64) string { return fmt.Sprintf("velvet-harbor-compass-%d", n) }

// registerBody is a registration request for a new, unique account.
func (a *testAPI) registerBody() (email, password, body string) {
	n := a.next()
	email = fmt.Sprintf("user%d@example.com", n)
	password = testPassword(n)
	return email, password, fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"Test User %d"}`, email, password, n)
}

// signUp registers a user through the API and logs them in.
func (a *testAPI) signUp(tb testing.TB) testUser {
	tb.Helper()
	email, password, body := a.registerBody()
	rec := a.call(tb, http.MethodPost, "/v1/auth/register", "", body)
	expectStatus(tb, rec, http.StatusCreated, "register")
	var u userJSON
	decodeExact(tb, rec, &u, userMembers...)
	return testUser{ID: u.ID, Email: email, Password: password, Token: a.login(tb, email, password)}
}

// newAdmin makes an admin the way the CLI does (Accounts.CreateUser) and
// logs them in through the API.
func (a *testAPI) newAdmin(tb testing.TB) testUser {
	tb.Helper()
	n := a.next()
	email, password := fmt.Sprintf("admin%d@example.com", n), testPassword(n)
	u, err := a.accounts.CreateUser(context.Background(), models.NewUser{
		Email: email, Password: password, DisplayName: fmt.Sprintf("Admin %d", n), Role: models.RoleAdmin,
	})
	if err != nil {
		tb.Fatalf("create admin: %v", err)
	}
	return testUser{ID: u.ID, Email: email, Password: password, Token: a.login(tb, email, password)}
}

// login opens a session through the API and returns its token.
func (a *testAPI) login(tb testing.TB, email, password string) string {
	tb.Helper()
	rec := a.call(tb, http.MethodPost, "/v1/auth/login", "", loginBody(email, password))
	expectStatus(tb, rec, http.StatusOK, "login "+email)
	var l loginJSON
	decodeExact(tb, rec, &l, loginMembers...)
	return l.Token
}

func loginBody(email, password string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
}

// jsonBody marshals v into a request body.
func jsonBody(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// createProject creates a project through the API.
func (a *testAPI) createProject(tb testing.TB, token, name string) projectJSON {
	tb.Helper()
	rec := a.call(tb, http.MethodPost, "/v1/projects", token,
		jsonBody(tb, map[string]string{"name": name, "description": "about " + name}))
	expectStatus(tb, rec, http.StatusCreated, "create project")
	var p projectJSON
	decodeExact(tb, rec, &p, projectMembers...)
	return p
}

// createTask creates a task through the API.
func (a *testAPI) createTask(tb testing.TB, token, projectID, title string) taskJSON {
	tb.Helper()
	rec := a.call(tb, http.MethodPost, "/v1/projects/"+projectID+"/tasks", token,
		jsonBody(tb, map[string]any{"title": title}))
	expectStatus(tb, rec, http.StatusCreated, "create task")
	var t taskJSON
	decodeExact(tb, rec, &t, taskMembers...)
	return t
}

// createKey creates an API key through the API with a session token and
// returns it with its secret.
func (a *testAPI) createKey(tb testing.TB, token, body string) apiKeyJSON {
	tb.Helper()
	rec := a.call(tb, http.MethodPost, "/v1/api-keys", token, body)
	expectStatus(tb, rec, http.StatusCreated, "create API key")
	var k apiKeyJSON
	decodeExact(tb, rec, &k, newAPIKeyMembers...)
	return k
}

// listKeys lists every API key of the session's user.
func (a *testAPI) listKeys(tb testing.TB, token string) []apiKeyJSON {
	tb.Helper()
	return walk[apiKeyJSON](tb, a, token, "/v1/api-keys", MaxPageLimit)
}

// walk follows a list from its first page to its last with the given page
// size and returns all items, checking each page's shape.
func walk[T any](tb testing.TB, a *testAPI, token, path string, limit int) []T {
	tb.Helper()
	return walkQuery[T](tb, a, token, path, "", limit)
}

// walkQuery is walk with more query parameters (e.g. "sort=title"), kept
// on every page.
func walkQuery[T any](tb testing.TB, a *testAPI, token, path, query string, limit int) []T {
	tb.Helper()
	var all []T
	if query != "" {
		query += "&"
	}
	target := fmt.Sprintf("%s?%slimit=%d", path, query, limit)
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatalf("walk %s: the cursor never ends", path)
		}
		rec := a.call(tb, http.MethodGet, target, token, "")
		expectStatus(tb, rec, http.StatusOK, "list "+target)
		var page pageJSON[T]
		decodeExact(tb, rec, &page, pageMembers...)
		if len(page.Items) > limit {
			tb.Fatalf("walk %s: page of %d items for limit %d", path, len(page.Items), limit)
		}
		all = append(all, page.Items...)
		if page.NextCursor == nil {
			return all
		}
		if len(page.Items) == 0 {
			tb.Fatalf("walk %s: empty page with a next cursor", path)
		}
		target = fmt.Sprintf("%s?%slimit=%d&cursor=%s", path, query, limit, url.QueryEscape(*page.NextCursor))
	}
}

// fillPath replaces the :name segments of an echo path with values.
func fillPath(path string, values map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			parts[i] = values[name]
		}
	}
	return strings.Join(parts, "/")
}

// unknownIDs returns well-formed IDs that address no object for every path
// parameter of an echo path: one for the first (id), another for the rest
// (task_id, or a generated child resource's parameter).
func unknownIDs(path string) map[string]string {
	out := map[string]string{}
	for i, name := range pathParams(path) {
		out[name] = []string{"5f0c6a3e-8a5b-4c1d-9e2f-3a4b5c6d7e8f", "6a1d7b4f-9b6c-4d2e-8f3a-4b5c6d7e8f90"}[min(i, 1)]
	}
	return out
}

// pathParams returns the names of the path parameters of an echo path.
func pathParams(path string) []string {
	var out []string
	for _, p := range strings.Split(path, "/") {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

// generousLimits are the default policies with rates no functional test
// reaches.
func generousLimits() middleware.Limits {
	l := middleware.DefaultLimits()
	for _, lim := range []*middleware.Limit{&l.IP, &l.User, &l.LoginIP, &l.RegisterIP} {
		lim.Rate = 1_000_000
	}
	l.APIKeyMax = 1_000_000
	l.LoginFailures = 1_000_000
	return l
}

package handlers

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// The route-table conformance test holds every route of the table that
// New registers to the contract that applies to all routes of its kind:
// authentication, query allowlist, content negotiation, strict bodies and
// object-level authorization. A route added to the table is covered
// automatically; a route that reads a body must be given a valid and an
// invalid body in routeBodies, or the test fails.

// routeKey names a route as in the table: "POST /v1/projects/:id/tasks".
func routeKey(r route) string { return r.method + " " + r.path }

// bodyCase is, for a route that reads a JSON body, a body it accepts and a
// well-formed body that breaks a validation rule (422).
type bodyCase struct {
	valid   func(fx *fixture) string
	invalid string
}

// routeBodies lists a bodyCase for every route that reads a body.
var routeBodies = map[string]bodyCase{
	"POST /v1/auth/register": {
		valid: func(fx *fixture) string {
			_, _, body := fx.api.registerBody()
			return body
		},
		invalid: `{"email":"not-an-e-mail-address","password":"short","display_name":""}`,
	},
	"POST /v1/auth/login": {
		valid:   func(fx *fixture) string { return loginBody(fx.owner.Email, fx.owner.Password) },
		invalid: `{"email":"","password":""}`,
	},
	"POST /v1/me/password": {
		// The password route runs as fx.passwords, whose password this
		// changes; the fixture remembers the new one.
		valid: func(fx *fixture) string {
			next := testPassword(fx.api.next())
			body := fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, fx.passwords.Password, next)
			fx.pendingPassword = next
			return body
		},
		invalid: `{"current_password":"whatever-it-is-now","new_password":"short"}`,
	},
	"POST /v1/projects": {
		valid:   func(*fixture) string { return `{"name":"Conformance","description":"made by the route table test"}` },
		invalid: `{"name":"","description":"an empty name is not a name"}`,
	},
	"POST /v1/api-keys": {
		valid: func(*fixture) string {
			return `{"name":"Conformance key","scopes":["projects:read"],"expires_at":null,"rate_limit":60}`
		},
		invalid: `{"name":"","scopes":[]}`,
	},
	"PATCH /v1/projects/:id": {
		valid:   func(*fixture) string { return `{"name":"Renamed by the route table test"}` },
		invalid: `{"name":""}`,
	},
	"POST /v1/projects/:id/tasks": {
		valid:   func(*fixture) string { return `{"title":"Write the tests","done":false,"due_date":"2030-01-31"}` },
		invalid: `{"title":"","due_date":"2030-02-30"}`,
	},
	"PUT /v1/projects/:id/webhook": {
		valid: func(fx *fixture) string {
			// defaultHooksEnv is set up by every test API.
			return fmt.Sprintf(`{"url":%q}`, defaultHooksEnv.receiver.url(hookHost, "/conformance"))
		},
		invalid: `{"url":"http://hooks.example.test/plain-http"}`,
	},
	"PATCH /v1/projects/:id/tasks/:task_id": {
		valid:   func(*fixture) string { return `{"done":true,"due_date":null}` },
		invalid: `{"title":""}`,
	},
}

// routesWithoutBody are the write routes that read no body. Every POST,
// PUT and PATCH route is either here or in routeBodies.
var routesWithoutBody = map[string]bool{
	"POST /v1/auth/logout":               true,
	"POST /v1/projects/:id/webhook/test": true,
	"POST /v1/admin/users/:id/lock":      true,
	"POST /v1/admin/users/:id/unlock":    true,
}

// fixture is the cast of the conformance test.
type fixture struct {
	api *testAPI
	// owner owns the objects the routes are called on.
	owner testUser
	// other is another plain user, who must not reach owner's objects.
	other testUser
	// admin calls the admin routes; target is the user they act on.
	admin, target testUser
	// passwords calls POST /v1/me/password, which changes its password.
	passwords testUser
	// spare is a second session of owner for logout calls that must not
	// get as far as ending it.
	spare string
	// pendingPassword is the new password of the last valid password body.
	pendingPassword string
	// readKey, writeKey and bothKey are API keys of owner with the scope
	// projects:read, projects:write, and both; adminKey is an API key of
	// admin with both.
	readKey, writeKey, bothKey, adminKey string
	// bodies and withoutBody are routeBodies and routesWithoutBody, copied
	// so that a test can add the routes it registers itself.
	bodies      map[string]bodyCase
	withoutBody map[string]bool
}

// fixtureQuotas are far above what the conformance tests create: they make
// a fresh project and key for nearly every call, and the quotas have
// tests of their own (quota_test.go).
var fixtureQuotas = models.Quotas{ProjectsPerUser: 100_000, TasksPerProject: 100_000, APIKeysPerUser: 100_000}

func newFixture(t testing.TB, api *testAPI) *fixture {
	t.Helper()
	// Before the first request: SetQuotas is a start-up setting.
	api.db.SetQuotas(fixtureQuotas)
	fx := &fixture{
		api:         api,
		owner:       api.signUp(t),
		other:       api.signUp(t),
		admin:       api.newAdmin(t),
		target:      api.signUp(t),
		passwords:   api.signUp(t),
		bodies:      maps.Clone(routeBodies),
		withoutBody: maps.Clone(routesWithoutBody),
	}
	fx.spare = api.login(t, fx.owner.Email, fx.owner.Password)
	fx.addGeneratedBodies(t)
	fx.readKey = api.createKey(t, fx.owner.Token, `{"name":"Read key","scopes":["projects:read"]}`).Key
	fx.writeKey = api.createKey(t, fx.owner.Token, `{"name":"Write key","scopes":["projects:write"]}`).Key
	fx.bothKey = api.createKey(t, fx.owner.Token, `{"name":"Both key","scopes":["projects:read","projects:write"]}`).Key
	fx.adminKey = api.createKey(t, fx.admin.Token, `{"name":"Admin's key","scopes":["projects:read","projects:write"]}`).Key
	return fx
}

// caller returns the token a route is called with when the call should get
// past authentication: the admin for admin routes, the spare session for
// logout, the passwords user for the password change, and the owner for
// everything else. Public routes get none.
func (fx *fixture) caller(t testing.TB, r route) string {
	t.Helper()
	switch {
	case r.policy.IsPublic():
		return ""
	case r.policy.String() == "admin":
		return fx.admin.Token
	case routeKey(r) == "POST /v1/auth/logout":
		return fx.spare
	case routeKey(r) == "POST /v1/me/password":
		return fx.passwords.Token
	}
	return fx.owner.Token
}

// ownerObjects makes a fresh project of the owner with one task, so that a
// route may change or delete them without disturbing other checks.
func (fx *fixture) ownerObjects(t testing.TB) (projectID, taskID string) {
	t.Helper()
	p := fx.api.createProject(t, fx.owner.Token, "Owner's project")
	task := fx.api.createTask(t, fx.owner.Token, p.ID, "Owner's task")
	return p.ID, task.ID
}

// ownerKey makes a fresh API key of the owner with both scopes and returns
// its ID and the key itself.
func (fx *fixture) ownerKey(t testing.TB) (id, key string) {
	t.Helper()
	k := fx.api.createKey(t, fx.owner.Token, `{"name":"Owner's key","scopes":["projects:read","projects:write"]}`)
	return k.ID, k.Key
}

// params returns path parameter values that address existing objects the
// caller of r may use. A route with parameters the test does not know
// fails here: teach params (and the object-level checks) what they mean.
func (fx *fixture) params(t testing.TB, r route) map[string]string {
	t.Helper()
	names := pathParams(r.path)
	if g, ok := generatedFor(r); ok && len(names) > 0 {
		return g.objects(fx.api, t, fx.owner.Token)
	}
	switch {
	case len(names) == 0:
		return nil
	case strings.HasPrefix(r.path, "/v1/projects/:id/webhook"):
		// A project whose webhook is set, to the shared test receiver.
		p, _ := fx.ownerObjects(t)
		rec := fx.api.call(t, http.MethodPut, "/v1/projects/"+p+"/webhook", fx.owner.Token,
			fx.validBody(route{method: http.MethodPut, path: "/v1/projects/:id/webhook"}))
		checkStatus(t, rec, http.StatusOK, "set the project's webhook")
		return map[string]string{"id": p}
	case strings.HasPrefix(r.path, "/v1/projects/:id"):
		p, task := fx.ownerObjects(t)
		return map[string]string{"id": p, "task_id": task}
	case strings.HasPrefix(r.path, "/v1/admin/users/:id"):
		return map[string]string{"id": fx.target.ID}
	case strings.HasPrefix(r.path, "/v1/api-keys/:id"):
		id, _ := fx.ownerKey(t)
		return map[string]string{"id": id}
	}
	t.Fatalf("route %s has path parameters %v the conformance test does not know", routeKey(r), names)
	return nil
}

// request builds a call of r that passes every check: caller, existing
// objects, valid body.
func (fx *fixture) request(t testing.TB, r route, body string) *http.Request {
	t.Helper()
	return withToken(newRequest(r.method, fillPath(r.path, fx.params(t, r)), body), fx.caller(t, r))
}

// successRequest is request with the valid body, and for logout, which
// ends the session it is called with, a session of its own.
func (fx *fixture) successRequest(t testing.TB, r route) *http.Request {
	t.Helper()
	req := fx.request(t, r, fx.validBody(r))
	if routeKey(r) == "POST /v1/auth/logout" {
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+fx.api.login(t, fx.owner.Email, fx.owner.Password))
	}
	return req
}

// validBody returns the route's valid body ("" for routes without one).
func (fx *fixture) validBody(r route) string {
	if c, ok := fx.bodies[routeKey(r)]; ok {
		return c.valid(fx)
	}
	return ""
}

// snapshot is what the owner sees of a project and its task: the status
// and body of each read, so that a change or deletion shows.
func (fx *fixture) snapshot(t testing.TB, projectID, taskID string) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{
		"/v1/projects/" + projectID,
		"/v1/projects/" + projectID + "/tasks?limit=100",
		"/v1/projects/" + projectID + "/tasks/" + taskID,
	} {
		rec := fx.api.call(t, http.MethodGet, path, fx.owner.Token, "")
		if rec.Code != http.StatusOK {
			fmt.Fprintf(&b, "%s: %d\n", path, rec.Code)
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", path, rec.Body.String())
	}
	return b.String()
}

func TestRouteTable(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		runConformance(t, newFixture(t, api))
	})
}

// forRoutes runs fn as a subtest for every route of the table.
func forRoutes(t *testing.T, api *testAPI, fn func(t *testing.T, r route)) {
	t.Helper()
	for _, r := range api.routes {
		t.Run(routeKey(r), func(t *testing.T) { fn(t, r) })
	}
}

// testRoutesRegistered checks that the router has exactly the routes of
// the table: nothing is reachable that bypasses the table's policies.
func testRoutesRegistered(t testing.TB, fx *fixture) {
	api := fx.api
	var table, registered []string
	for _, r := range api.routes {
		table = append(table, routeKey(r))
		if !r.policy.Valid() {
			t.Errorf("route %s has no valid policy", routeKey(r))
		}
	}
	for _, r := range api.e.Routes() {
		registered = append(registered, r.Method+" "+r.Path)
	}
	slices.Sort(table)
	slices.Sort(registered)
	if !slices.Equal(table, registered) {
		t.Errorf("router has routes\n%v\nthe table has\n%v", registered, table)
	}
}

// testRouteBodiesListed fails when a route reads a body but has no entry in
// routeBodies, when a write route is in neither list, or when an entry
// names a route that no longer exists.
func testRouteBodiesListed(t testing.TB, fx *fixture) {
	known := map[string]bool{}
	for _, r := range fx.api.routes {
		key := routeKey(r)
		known[key] = true
		_, listed := fx.bodies[key]
		hasBody := r.doc.request != nil
		switch {
		case hasBody && !listed:
			t.Errorf("route %s reads a body: add a valid and an invalid body to routeBodies", key)
		case !hasBody && listed:
			t.Errorf("route %s is in routeBodies but documents no request body", key)
		case !hasBody && (r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch) && !fx.withoutBody[key]:
			t.Errorf("write route %s documents no body: add it to routeBodies or routesWithoutBody", key)
		case hasBody && fx.withoutBody[key]:
			t.Errorf("route %s is in routesWithoutBody but documents a request body", key)
		}
	}
	for key := range fx.bodies {
		if !known[key] {
			t.Errorf("routeBodies names %s, which is not in the route table", key)
		}
	}
	for key := range fx.withoutBody {
		if !known[key] {
			t.Errorf("routesWithoutBody names %s, which is not in the route table", key)
		}
	}
}

// testSuccess calls the route as it should be called and expects its
// documented status and media type; authenticated answers are never cached.
func (fx *fixture) testSuccess(t testing.TB, r route) {
	rec := fx.api.serve(t, fx.successRequest(t, r))
	if !checkStatus(t, rec, r.doc.status, "well-formed call") {
		return
	}
	if routeKey(r) == "POST /v1/me/password" {
		fx.passwords.Password = fx.pendingPassword
	}
	if rec.Code == http.StatusNoContent {
		if rec.Body.Len() != 0 {
			t.Errorf("204 with a body: %q", rec.Body.String())
		}
	} else if got := rec.Header().Get(echo.HeaderContentType); got != r.mediaType() {
		t.Errorf("Content-Type %q, want %q", got, r.mediaType())
	}
	if !r.policy.IsPublic() {
		if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
			t.Errorf("authenticated answer has Cache-Control %q, want no-store", cc)
		}
	}
}

// testUnauthenticated: a non-public route answers 401 with a Bearer
// challenge to every request without valid credentials, before it looks at
// the query, the Accept header or the body. A public route does not read
// credentials at all.
func (fx *fixture) testUnauthenticated(t testing.TB, r route) {
	unknown := unknownSessionToken(t)
	valid := fx.owner.Token
	cases := []struct {
		name   string
		values []string // Authorization header values; none = no header
	}{
		{"no credentials", nil},
		{"empty header", []string{""}},
		{"scheme only", []string{"Bearer"}},
		{"scheme and space", []string{"Bearer "}},
		{"two words", []string{"Bearer " + unknown + " extra"}},
		{"control character", []string{"Bearer rps_abc\x01defghij"}},
		{"quoted token", []string{`Bearer "` + unknown + `"`}},
		{"oversized token", []string{"Bearer " + strings.Repeat("A", 600)}},
		{"no scheme", []string{unknown}},
		{"basic scheme", []string{"Basic b3duZXI6aHVudGVyMmh1bnRlcjI="}},
		{"token scheme", []string{"Token " + valid}},
		{"two headers", []string{"Bearer " + valid, "Bearer " + valid}},
		{"unknown session token", []string{"Bearer " + unknown}},
		{"unknown prefix", []string{"Bearer rpk_" + strings.TrimPrefix(unknown, "rps_")}},
		{"truncated token", []string{"Bearer " + valid[:len(valid)-1]}},
	}
	target := fillPath(r.path, unknownIDs(r.path))
	body := fx.validBody(r)
	if r.policy.IsPublic() {
		req := newRequest(r.method, target, body)
		req.Header.Set(echo.HeaderAuthorization, "Bearer "+unknown)
		if rec := fx.api.serve(t, req); rec.Code == http.StatusUnauthorized {
			t.Errorf("public route answered 401 to a bad token: it must not read credentials")
		}
		return
	}
	for _, c := range cases {
		req := newRequest(r.method, target, body)
		for _, v := range c.values {
			req.Header.Add(echo.HeaderAuthorization, v)
		}
		fx.expectUnauthorized(t, req, c.name)
	}
	// A credential in the query string is never read, even a valid one.
	req := newRequest(r.method, target+"?access_token="+url.QueryEscape(valid), body)
	fx.expectUnauthorized(t, req, "token in the query string")
}

func (fx *fixture) expectUnauthorized(t testing.TB, req *http.Request, what string) {
	t.Helper()
	rec := fx.api.serve(t, req)
	if !checkStatus(t, rec, http.StatusUnauthorized, what) {
		return
	}
	if ch := rec.Header().Get(echo.HeaderWWWAuthenticate); !strings.HasPrefix(ch, "Bearer ") {
		t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", what, ch)
	}
}

// testQuery: unknown, repeated and malformed query parameters are 400, on
// every route, for an authenticated caller.
func (fx *fixture) testQuery(t testing.TB, r route) {
	type queryCase struct {
		query string
		field string // the parameter the problem must name ("" = none)
	}
	cases := []queryCase{
		{"callback=evilCallbackFn", "callback"},
		{"debug=1", "debug"},
		{"access_token=" + url.QueryEscape(fx.owner.Token), "access_token"},
		{"a=%zz", ""},
		{"a=1;b=2", ""},
	}
	if slices.Contains(r.query, "limit") {
		cases = append(cases, queryCase{"limit=1&limit=2", "limit"}, queryCase{"cursor=a&cursor=b", "cursor"})
	} else {
		cases = append(cases, queryCase{"limit=5", "limit"})
	}
	for _, c := range cases {
		req := fx.request(t, r, fx.validBody(r))
		req.URL.RawQuery = c.query
		req.RequestURI = req.URL.RequestURI()
		rec := fx.api.serve(t, req)
		if !checkStatus(t, rec, http.StatusBadRequest, "?"+c.query) {
			continue
		}
		if c.field != "" && !problemOf(t, rec).hasField(c.field) {
			t.Errorf("?%s: the problem does not name %q: %s", c.query, c.field, rec.Body.String())
		}
	}
}

// testNotAcceptable: a client that accepts nothing the route produces gets
// 406; the answer's type is never taken from Accept.
func (fx *fixture) testNotAcceptable(t testing.TB, r route) {
	accepts := []string{"text/html", "application/xml", "application/json;q=0", "image/*"}
	if r.mediaType() != echo.MIMEApplicationJSON {
		accepts = []string{"application/json", "application/problem+json", "text/plain", "text/html;q=0"}
	}
	for _, accept := range accepts {
		req := fx.request(t, r, fx.validBody(r))
		req.Header.Set(echo.HeaderAccept, accept)
		checkStatus(t, fx.api.serve(t, req), http.StatusNotAcceptable, "Accept: "+accept)
	}
	for _, accept := range []string{"*/*", strings.Split(r.mediaType(), "/")[0] + "/*", r.mediaType()} {
		if routeKey(r) == "POST /v1/me/password" || routeKey(r) == "POST /v1/auth/register" {
			break // success is covered by testSuccess; these are not repeatable
		}
		req := fx.successRequest(t, r)
		req.Header.Set(echo.HeaderAccept, accept)
		checkStatus(t, fx.api.serve(t, req), r.doc.status, "Accept: "+accept)
	}
}

// testUnsupportedMedia: a body that is not declared as JSON is 415.
func (fx *fixture) testUnsupportedMedia(t testing.TB, r route) {
	for _, ct := range []string{
		"", // no Content-Type at all
		"text/plain",
		"text/plain; charset=utf-8",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=xyz",
		"application/xml",
		"text/json",
		"application/jsonp",
		"application/json; charset=iso-8859-1",
		"application/json; foo=bar",
		"application/json;;",
	} {
		req := fx.request(t, r, fx.validBody(r))
		req.Header.Del(echo.HeaderContentType)
		if ct != "" {
			req.Header.Set(echo.HeaderContentType, ct)
		}
		checkStatus(t, fx.api.serve(t, req), http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q", ct))
	}
}

// bodyCap is the largest body route r takes: its own cap, or the default
// when it has none or a larger one.
func bodyCap(r route) int {
	if r.body > 0 && r.body < DefaultBodyLimit {
		return int(r.body)
	}
	return DefaultBodyLimit
}

// testTooLarge: a body over the route's limit is 413, whether its length
// is declared or it arrives chunked, even when it is otherwise valid; a
// body of exactly the limit is read.
func (fx *fixture) testTooLarge(t testing.TB, r route) {
	limit := bodyCap(r)
	padded := func(size int) string {
		b := fx.validBody(r)
		return b + strings.Repeat(" ", size-len(b))
	}
	// Honest Content-Length.
	req := fx.request(t, r, padded(limit+1))
	checkStatus(t, fx.api.serve(t, req), http.StatusRequestEntityTooLarge, "Content-Length over the limit")

	// Chunked, length unknown until read.
	req = fx.request(t, r, "")
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(padded(limit + 1))))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	checkStatus(t, fx.api.serve(t, req), http.StatusRequestEntityTooLarge, "chunked body over the limit")

	// Chunked, much larger: reading stops at the limit.
	req = fx.request(t, r, "")
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"x":"`), &endless{}))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	checkStatus(t, fx.api.serve(t, req), http.StatusRequestEntityTooLarge, "endless chunked body")

	// Exactly the limit: read and accepted.
	if routeKey(r) == "POST /v1/me/password" {
		return // a second change would need the password of the first
	}
	req = fx.request(t, r, padded(limit))
	checkStatus(t, fx.api.serve(t, req), r.doc.status, "body of exactly the limit")
}

// endless is a body that never ends, counting what was read of it.
type endless struct{ read int }

func (e *endless) Read(p []byte) (int, error) {
	if e.read > 16*DefaultBodyLimit {
		return 0, fmt.Errorf("endless: read %d bytes; the limit is not enforced while reading", e.read)
	}
	for i := range p {
		p[i] = 'a'
	}
	e.read += len(p)
	return len(p), nil
}

// massAssigned are members no request may set: identity, ownership, role
// and bookkeeping belong to the server.
var massAssigned = []string{"id", "owner_id", "user_id", "project_id", "role", "is_admin", "locked", "created_at", "updated_at", "password_hash"}

// testMalformedBody: anything but one JSON object of known, unique,
// correctly typed members is 400 – before any rule is checked.
func (fx *fixture) testMalformedBody(t testing.TB, r route) {
	valid := fx.validBody(r)
	ms := members(t, valid)
	first, others := ms[0], ms[1:]
	with := func(head ...member) string { return object(append(head, others...)...) }
	deep := strings.Repeat("[", maxJSONDepth+8) + strings.Repeat("]", maxJSONDepth+8)

	type malformedCase struct {
		name, body string
		field      string // the member the problem must name ("" = none)
		detail     string // a phrase the detail must contain ("" = any)
	}
	cases := []malformedCase{
		{name: "duplicate member", body: with(first, first), field: first.name},
		{name: "duplicate member, other value", body: with(member{first.name, `"duplicate-value"`}, first), field: first.name},
		{name: "member in other case", body: with(member{strings.ToUpper(first.name), first.value})},
		{name: "member in other case beside it", body: with(first, member{strings.ToUpper(first.name), `"shadow-value"`})},
		{name: "trailing object", body: valid + `{}`, detail: "after"},
		{name: "trailing garbage", body: valid + `x`},
		{name: "trailing comma", body: valid + `,`},
		{name: "cut short", body: valid[:len(valid)-1]},
		{name: "form encoded", body: first.name + `=x`},
		{name: "unquoted names", body: `{` + first.name + `:` + first.value + `}`},
		{name: "single quotes", body: `{'` + first.name + `':'x'}`},
		{name: "comma before brace", body: valid[:len(valid)-1] + `,}`},
		{name: "invalid UTF-8", body: with(member{first.name, "\"\xff\xfe\""})},
		{name: "byte order mark", body: "\ufeff" + valid},
		{name: "empty", body: " "},
		{name: "array", body: `[` + valid + `]`},
		{name: "null body", body: `null`},
		{name: "string body", body: `"` + first.name + `"`},
		{name: "number body", body: `42`},
		{name: "nested too deeply", body: with(member{first.name, deep}), detail: "nested"},
		{name: "nested too deeply in an unknown member", body: object(append([]member{{"x", deep}}, ms...)...), detail: "nested"},
		{name: "wrong type", body: with(member{first.name, `{"$ne":null}`}), field: first.name},
	}
	// null is refused for every member but those that admit it (a
	// nullable[T] field, where null means "none" or "clear"): the case
	// uses the first member that does not.
	if i := slices.IndexFunc(ms, func(m member) bool { return !nullableFields(r.doc.request)[m.name] }); i >= 0 {
		rest := append(slices.Clone(ms[:i]), ms[i+1:]...)
		cases = append(cases, malformedCase{name: "null member", body: object(append([]member{{ms[i].name, `null`}}, rest...)...), field: ms[i].name})
	}
	for _, name := range massAssigned {
		cases = append(cases, malformedCase{name: "unknown member " + name,
			body: object(append([]member{{name, `"mass-assigned-value"`}}, ms...)...), field: name})
	}
	for _, c := range cases {
		rec := fx.api.serve(t, fx.request(t, r, c.body))
		if !checkStatus(t, rec, http.StatusBadRequest, c.name) {
			continue
		}
		p := problemOf(t, rec)
		if c.field != "" && !p.hasField(c.field) {
			t.Errorf("%s: the problem does not name %q: %s", c.name, c.field, rec.Body.String())
		}
		// Too deep is refused before the members are matched: the
		// problem is about the nesting, not about a member's type.
		if c.detail != "" && (!strings.Contains(p.Detail, c.detail) || (c.detail == "nested" && len(p.Errors) > 0)) {
			t.Errorf("%s: detail %q, want it to be about %q: %s", c.name, p.Detail, c.detail, rec.Body.String())
		}
	}
}

// member is one member of a JSON object: its name and raw value.
type member struct{ name, value string }

// members splits a JSON object into its members, in order.
func members(t testing.TB, body string) []member {
	t.Helper()
	dec := jsontext.NewDecoder(bytes.NewReader([]byte(body)))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		t.Fatalf("valid body %q is not an object", body)
	}
	var out []member
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			t.Fatalf("valid body %q: %v", body, err)
		}
		name := tok.String() // the token is only valid until the next read
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatalf("valid body %q: %v", body, err)
		}
		out = append(out, member{name, string(v)})
	}
	if len(out) == 0 {
		t.Fatalf("valid body %q has no member", body)
	}
	return out
}

// object joins members into a JSON object, as written (duplicates kept).
func object(ms ...member) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = quoteJSON(m.name) + ":" + m.value
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func quoteJSON(s string) string {
	b, _ := jsontext.AppendQuote(nil, s)
	return string(b)
}

// testInvalidBody: a well-formed body that breaks a rule is 422, naming
// the fields but not repeating their values.
func (fx *fixture) testInvalidBody(t testing.TB, r route) {
	c := fx.bodies[routeKey(r)]
	rec := fx.api.serve(t, fx.request(t, r, c.invalid))
	if !checkStatus(t, rec, http.StatusUnprocessableEntity, "invalid body") {
		return
	}
	p := problemOf(t, rec)
	if len(p.Errors) == 0 {
		t.Errorf("422 names no field: %s", rec.Body.String())
	}
	for _, f := range p.Errors {
		if f.Field == "" || f.Message == "" {
			t.Errorf("422 error without field or message: %s", rec.Body.String())
		}
	}
}

// malformedIDs are path parameters that are not IDs of ours. realID is an
// existing ID the variants are made from.
func malformedIDs(realID string) []string {
	return []string{
		"not-a-uuid",
		"12345",
		"-1",
		"' OR '1'='1",
		"1 UNION SELECT password_hash FROM users",
		"../../etc/passwd",
		"\x00",
		"%",
		strings.ToUpper(realID),
		realID + "0",
		realID[:len(realID)-1],
		"{" + realID + "}",
		"urn:uuid:" + realID,
		" " + realID,
		strings.ReplaceAll(realID, "-", ""),
		strings.Repeat("9", 400),
	}
}

// testIDs: for every route with path parameters, an ID that is malformed
// or unknown is 404 (never 500), and another user's object is 404 and
// stays as it was.
func (fx *fixture) testIDs(t testing.TB, r route) {
	names := pathParams(r.path)
	if len(names) == 0 || r.policy.IsPublic() {
		return
	}
	good := fx.params(t, r)
	token := fx.caller(t, r)
	body := fx.validBody(r)
	send := func(token string, values map[string]string) *httptest.ResponseRecorder {
		target := fillPath(r.path, escapeAll(values))
		return fx.api.serve(t, withToken(newRequest(r.method, target, body), token))
	}

	// Malformed and unknown IDs, in each position.
	for _, name := range names {
		bad := append(malformedIDs(good[name]), "00000000-0000-0000-0000-000000000000", "2f1d3c4b-5a69-4788-99aa-bbccddeeff00")
		for _, id := range bad {
			values := cloneMap(good)
			values[name] = id
			checkStatus(t, send(token, values), http.StatusNotFound, fmt.Sprintf(":%s = %q", name, id))
		}
	}

	if g, ok := generatedFor(r); ok {
		fx.testGeneratedIDs(t, g, r, body)
		return
	}
	switch {
	case r.policy.String() == "admin":
		// An admin may act on any user: there is no "someone else's" user.
		return
	case strings.HasPrefix(r.path, "/v1/api-keys/:id"):
		// Another user's key: 404, and it keeps working for its owner.
		id, key := fx.ownerKey(t)
		checkStatus(t, send(fx.other.Token, map[string]string{"id": id}), http.StatusNotFound, "another user's key")
		checkStatus(t, fx.api.call(t, http.MethodGet, "/v1/projects", key, ""), http.StatusOK, "the key after another user's call")
		if !slices.ContainsFunc(fx.api.listKeys(t, fx.owner.Token), func(k apiKeyJSON) bool { return k.ID == id }) {
			t.Errorf("the owner's key %s is gone from their list after another user's call", id)
		}
		return
	case strings.HasPrefix(r.path, "/v1/projects/:id"):
	default:
		t.Fatalf("route %s: the conformance test does not know whose objects its parameters address", routeKey(r))
	}

	// Another user's objects: 404, and the owner sees them unchanged.
	projectID, taskID := fx.ownerObjects(t)
	victim := map[string]string{"id": projectID, "task_id": taskID}
	before := fx.snapshot(t, projectID, taskID)
	checkStatus(t, send(fx.other.Token, victim), http.StatusNotFound, "another user's object")
	if after := fx.snapshot(t, projectID, taskID); after != before {
		t.Errorf("another user's call changed the owner's objects:\nbefore %s\nafter  %s", before, after)
	}
	// The other user's own project with the owner's task.
	if slices.Contains(names, "task_id") {
		own := fx.api.createProject(t, fx.other.Token, "Other's project")
		checkStatus(t, send(fx.other.Token, map[string]string{"id": own.ID, "task_id": taskID}), http.StatusNotFound,
			"another user's task through the caller's own project")
		if after := fx.snapshot(t, projectID, taskID); after != before {
			t.Errorf("another user's call changed the owner's task:\nbefore %s\nafter  %s", before, after)
		}
	}
}

func escapeAll(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = url.PathEscape(v)
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

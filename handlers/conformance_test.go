package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

// The conformance suite: the checks that hold every route of the table to
// the contract of its kind, with no code for any particular route. It is
// driven by the route table and by echo's own route list, so a route added
// later, by hand or by the generator, is covered the moment it is
// registered. TestRouteTable runs it on SQLite and PostgreSQL;
// TestConformanceCatchesBrokenRoutes registers deliberately broken routes
// (in the test only) and shows that the suite reports each of them.
//
// Besides the checks listed here, every response the suite receives goes
// through testAPI.serve, which holds it to what is true of all answers:
// X-Request-Id, the security headers of API.md, problem+json without
// internals or echoed input for errors, RateLimit fields, and agreement
// with the API document (status, headers and body schema).

// conformanceCheck is one check of the suite: either a table check, run
// once over the whole table, or a route check, run for every route it
// applies to.
type conformanceCheck struct {
	name    string
	table   func(t testing.TB, fx *fixture)
	route   func(fx *fixture, t testing.TB, r route)
	applies func(r route) bool // nil: every route
}

func hasBody(r route) bool { return r.doc.request != nil }

// adminArea: admin-policy routes and anything under /v1/admin/, whatever
// policy it was given.
func adminArea(r route) bool { return r.policy.IsAdmin() || strings.HasPrefix(r.path, "/v1/admin/") }

// userCredentials: routes that take a session or an API key.
func userCredentials(r route) bool { return !r.policy.IsPublic() && !r.policy.IsService() }

func conformanceChecks() []conformanceCheck {
	return []conformanceCheck{
		{name: "registered", table: testRoutesRegistered},
		{name: "bodies listed", table: testRouteBodiesListed},
		{name: "public routes", table: testPublicRoutes},
		{name: "scopes", table: testOwnerScopes},
		{name: "document", table: testDocumentAgrees},
		{name: "2xx", route: (*fixture).testSuccess},
		{name: "401", route: (*fixture).testUnauthenticated},
		{name: "403 role", route: (*fixture).testRole, applies: adminArea},
		{name: "403 api key", route: (*fixture).testKeyScope, applies: userCredentials},
		{name: "400 query", route: (*fixture).testQuery},
		{name: "406", route: (*fixture).testNotAcceptable},
		{name: "415", route: (*fixture).testUnsupportedMedia, applies: hasBody},
		{name: "413", route: (*fixture).testTooLarge, applies: hasBody},
		{name: "400 body", route: (*fixture).testMalformedBody, applies: hasBody},
		{name: "422", route: (*fixture).testInvalidBody, applies: hasBody},
		{name: "schema limits", route: (*fixture).testSchemaLimits, applies: hasBody},
		{name: "404 ids", route: (*fixture).testIDs},
	}
}

// runConformance runs every check of the suite as a subtest.
func runConformance(t *testing.T, fx *fixture) {
	t.Helper()
	for _, c := range conformanceChecks() {
		t.Run(c.name, func(t *testing.T) {
			if c.table != nil {
				c.table(t, fx)
				return
			}
			n := 0
			for _, r := range fx.api.routes {
				if c.applies == nil || c.applies(r) {
					n++
					t.Run(routeKey(r), func(t *testing.T) { c.route(fx, t, r) })
				}
			}
			if n == 0 {
				t.Fatalf("the check %q applies to no route of the table", c.name)
			}
		})
	}
}

// conformanceFailures runs the suite like runConformance, but records the
// failures instead of failing t: the names of the checks that failed, each
// with its messages. Route checks run only for the routes only admits.
func conformanceFailures(t testing.TB, fx *fixture, only func(route) bool) map[string][]string {
	out := map[string][]string{}
	for _, c := range conformanceChecks() {
		rec := &recordingTB{TB: t}
		if c.table != nil {
			rec.run(func() { c.table(rec, fx) })
		} else {
			for _, r := range fx.api.routes {
				if only(r) && (c.applies == nil || c.applies(r)) {
					rec.run(func() { c.route(fx, rec, r) })
				}
			}
		}
		if rec.Failed() {
			out[c.name] = rec.messages()
		}
	}
	return out
}

// recordingTB is a testing.TB that records failures instead of reporting
// them, so that a check can be run where it is expected to fail. Fatal
// ends the goroutine that run started; everything else (Cleanup, TempDir,
// Context) is the real test's.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recordingTB) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, msg)
}

func (r *recordingTB) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Log(args ...any)                   {}
func (r *recordingTB) Logf(format string, args ...any)   {}
func (r *recordingTB) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *recordingTB) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Fail()                             { r.record("Fail") }
func (r *recordingTB) FailNow()                          { r.record("FailNow"); runtime.Goexit() }
func (r *recordingTB) Fatal(args ...any)                 { r.record(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// A check must not skip: under the recorder a skip counts as a failure.
func (r *recordingTB) Skip(args ...any)                 { r.record("Skip: " + fmt.Sprint(args...)); runtime.Goexit() }
func (r *recordingTB) Skipf(format string, args ...any) { r.Skip(fmt.Sprintf(format, args...)) }
func (r *recordingTB) SkipNow()                         { r.Skip() }

func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// run calls fn on a goroutine of its own, so that Fatal ends fn only.
func (r *recordingTB) run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// publicRoutes are the only routes that may be called without credentials
// (API.md, "Endpoints"). A route with the public policy that is not listed
// here fails the suite: making a route public is a decision to write down,
// not a default to fall into.
var publicRoutes = map[string]bool{
	"GET /":                  true,
	"GET /healthz":           true,
	"GET /readyz":            true,
	"GET /openapi.json":      true,
	"POST /v1/auth/register": true,
	"POST /v1/auth/login":    true,
}

// testPublicRoutes: the public routes are exactly the listed ones.
func testPublicRoutes(t testing.TB, fx *fixture) {
	for _, r := range fx.api.routes {
		switch {
		case r.policy.IsPublic() && !publicRoutes[routeKey(r)]:
			t.Errorf("route %s is public, but not in publicRoutes: give it a policy, or list it if it really is public", routeKey(r))
		case !r.policy.IsPublic() && publicRoutes[routeKey(r)]:
			t.Errorf("route %s is listed in publicRoutes but has the policy %s", routeKey(r), r.policy)
		}
	}
}

// testOwnerScopes: an owner route that reads (GET) needs projects:read;
// one that changes anything needs projects:write. A read-only key must
// never be able to change data through a route given the wrong scope.
func testOwnerScopes(t testing.TB, fx *fixture) {
	for _, r := range fx.api.routes {
		scope := r.policy.Scope()
		if scope == "" {
			continue
		}
		want := "projects:write"
		if r.method == http.MethodGet {
			want = "projects:read"
		}
		if string(scope) != want {
			t.Errorf("route %s needs the scope %s, want %s for a %s", routeKey(r), scope, want, r.method)
		}
	}
}

// testDocumentAgrees: the API document lists exactly the routes both
// routers serve, with each one's security requirement, answers and body.
func testDocumentAgrees(t testing.TB, fx *fixture) {
	api := fx.api
	doc := api.document(t)
	var problems []string
	problems = append(problems, documentDiff(doc, api.e.Routes(), api.svc.Routes())...)
	routes := allRoutes(api)
	problems = append(problems, documentSecurityProblems(doc, routes)...)
	problems = append(problems, documentResponseProblems(doc, routes)...)
	problems = append(problems, documentRequestProblems(doc, routes)...)
	for _, p := range problems {
		t.Error(p)
	}
}

// testRole: a plain user is refused (403) in the admin area, and so is an
// administrator's API key: keys never reach admin functions.
func (fx *fixture) testRole(t testing.TB, r route) {
	target := fillPath(r.path, fx.params(t, r))
	body := fx.validBody(r)
	before := fx.api.call(t, http.MethodGet, "/v1/admin/users?limit=100", fx.admin.Token, "").Body.String()
	checkStatus(t, fx.api.call(t, r.method, target, fx.other.Token, body), http.StatusForbidden, "a plain user")
	checkStatus(t, fx.api.call(t, r.method, target, fx.adminKey, body), http.StatusForbidden, "an administrator's API key")
	// Nothing of that changed any account.
	if after := fx.api.call(t, http.MethodGet, "/v1/admin/users?limit=100", fx.admin.Token, "").Body.String(); after != before {
		t.Errorf("refused calls changed the accounts:\nbefore %s\nafter  %s", before, after)
	}
}

// testKeyScope: an API key is refused (403) on a route it has no scope
// for: the other scope on an owner route, any key on a session-only
// route. On an owner route, the owner's key with the route's scope gets in.
func (fx *fixture) testKeyScope(t testing.TB, r route) {
	body := fx.validBody(r)
	target := fillPath(r.path, fx.params(t, r))
	switch scope := r.policy.Scope(); scope {
	case "projects:read":
		checkStatus(t, fx.api.call(t, r.method, target, fx.writeKey, body), http.StatusForbidden, "a projects:write key")
		checkStatus(t, fx.api.call(t, r.method, target, fx.readKey, body), r.doc.status, "a projects:read key")
	case "projects:write":
		checkStatus(t, fx.api.call(t, r.method, target, fx.readKey, body), http.StatusForbidden, "a projects:read key")
		target = fillPath(r.path, fx.params(t, r)) // the last call may have deleted its objects
		checkStatus(t, fx.api.call(t, r.method, target, fx.writeKey, fx.validBody(r)), r.doc.status, "a projects:write key")
	case "":
		key := fx.bothKey
		if adminArea(r) {
			key = fx.adminKey
		}
		checkStatus(t, fx.api.call(t, r.method, target, key, body), http.StatusForbidden, "an API key with every scope")
	default:
		t.Fatalf("route %s needs the scope %q, which the suite does not know", routeKey(r), scope)
	}
}

// boundMessage tells a validation message about a length, count or value
// bound ("must be at most 64 characters") from others ("is incorrect").
func boundMessage(msg string) bool {
	return strings.HasPrefix(msg, "must be at most") || strings.HasPrefix(msg, "must be at least")
}

// testSchemaLimits proves that the limits the API document states for a
// request body are the ones the server enforces: for each property with
// a bound (maxLength, minLength, maximum, minimum, maxItems, minItems), a
// value just outside it is 422 naming the property, and a value at it is
// not refused for its size; a value outside an enum or a format
// (email, date, date-time) is 422 naming the property.
func (fx *fixture) testSchemaLimits(t testing.TB, r route) {
	op := operationOf(fx.api.document(t), r)
	if op == nil || op.RequestBody == nil {
		t.Fatalf("route %s reads a body but the document has none for it", routeKey(r))
	}
	schema := op.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON).Schema.Value
	// The valid body is made afresh for every call: it may hold a unique
	// e-mail address or the current password.
	with := func(name, value string) string {
		ms := members(t, fx.validBody(r))
		for i := range ms {
			if ms[i].name == name {
				ms[i].value = value
				return object(ms...)
			}
		}
		return object(append(ms, member{name, value})...)
	}
	send := func(name, value, what string, refused bool) {
		t.Helper()
		body := with(name, value)
		rec := fx.api.serve(t, fx.request(t, r, body))
		fx.settle(r, body, rec.Code)
		what = fmt.Sprintf("%s %s (%d bytes)", name, what, len(value))
		if refused {
			// An array's item is named by its index: scopes[0].
			names := func(f string) bool { return f == name || strings.HasPrefix(f, name+"[") }
			if checkStatus(t, rec, http.StatusUnprocessableEntity, what) && !slices.ContainsFunc(problemOf(t, rec).Errors,
				func(e problemFieldJSON) bool { return names(e.Field) }) {
				t.Errorf("%s: the 422 does not name %s: %s", what, name, rec.Body.String())
			}
			return
		}
		if rec.Code == http.StatusBadRequest {
			t.Errorf("%s: 400, a value of the documented type was not read: %s", what, rec.Body.String())
		}
		if rec.Code == http.StatusUnprocessableEntity {
			for _, f := range problemOf(t, rec).Errors {
				if f.Field == name && boundMessage(f.Message) {
					t.Errorf("%s: refused (%s), but the document allows it", what, f.Message)
				}
			}
		}
	}
	n := 0
	for name, ref := range schema.Properties {
		s := ref.Value
		switch {
		case s.Type.Includes("string"):
			if s.MaxLength != nil {
				n++
				max := int(*s.MaxLength)
				send(name, quoteJSON(fx.textOf(max, s.Format)), "at maxLength", false)
				send(name, quoteJSON(fx.textOf(max+1, s.Format)), "over maxLength", true)
			}
			if s.MinLength > 0 {
				n++
				min := int(s.MinLength)
				send(name, quoteJSON(fx.textOf(min, s.Format)), "at minLength", false)
				send(name, quoteJSON(fx.textOf(min-1, s.Format)), "under minLength", true)
			}
			if bad, ok := badFormat[s.Format]; ok {
				n++
				send(name, quoteJSON(bad), "in a wrong "+s.Format+" format", true)
			} else if s.Format != "" {
				t.Errorf("property %s has the format %q, which the suite cannot check: add it to badFormat", name, s.Format)
			}
		case s.Type.Includes("integer"):
			if s.Max != nil {
				n++
				send(name, strconv.Itoa(int(*s.Max)), "at maximum", false)
				send(name, strconv.Itoa(int(*s.Max)+1), "over maximum", true)
			}
			if s.Min != nil {
				n++
				send(name, strconv.Itoa(int(*s.Min)), "at minimum", false)
				send(name, strconv.Itoa(int(*s.Min)-1), "under minimum", true)
			}
		case s.Type.Includes("array"):
			var enum []string
			if s.Items != nil {
				for _, v := range s.Items.Value.Enum {
					enum = append(enum, quoteJSON(fmt.Sprint(v)))
				}
			}
			if len(enum) == 0 {
				t.Errorf("array property %s has no enum for its items: the suite cannot make items", name)
				continue
			}
			list := func(count int) string { // distinct items while the enum lasts
				items := make([]string, count)
				for i := range items {
					items[i] = enum[i%len(enum)]
				}
				return "[" + strings.Join(items, ",") + "]"
			}
			if s.MaxItems != nil {
				n++
				send(name, list(int(*s.MaxItems)), "at maxItems", false)
				send(name, list(int(*s.MaxItems)+1), "over maxItems", true)
			}
			if s.MinItems > 0 {
				n++
				send(name, list(int(s.MinItems)), "at minItems", false)
				send(name, list(int(s.MinItems)-1), "under minItems", true)
			}
			n++
			send(name, `["no-such-`+name+`"]`, "with an item outside the enum", true)
		}
	}
	if n == 0 {
		t.Errorf("the document states no limit for any member of the body of %s", routeKey(r))
	}
}

// badFormat is, for each string format the document uses, a value that is
// not in it.
var badFormat = map[string]string{
	"email":     "not-an-e-mail-address",
	"date":      "2030-02-30",
	"date-time": "tomorrow at noon",
	"uri":       "not a URL at all",
	"uuid":      "not-a-uuid",
}

// textOf returns a string of exactly n characters in the given format
// ("" or "email"), unique within the API, that no other rule refuses: no
// control characters, not a common password.
func (fx *fixture) textOf(n int, format string) string {
	id := strconv.FormatInt(fx.api.next(), 10)
	pad := func(prefix string, n int) string {
		const filler = "qZ7kW2vR9mT4xL6pB3nH8cJ5"
		for len(prefix) < n {
			prefix += filler
		}
		return prefix[:max(n, 0)]
	}
	const tld = "example"
	if format != "email" || n < len("l"+id+"@d."+tld) {
		return pad("L"+id+"-", n)
	}
	// local@label.….example: a local part of at most 64 characters and
	// labels of at most 63, so that the address is well formed at any n.
	local := pad("l"+id+"-", min(64, n-1-len(tld)-2))
	var labels []string
	for rest := n - len(local) - 1 - len(tld); rest > 0; {
		l := min(63, rest-1) // a label and its dot
		if rest-1-l == 1 {   // one character left would be an empty label
			l--
		}
		labels = append(labels, pad("d", l))
		rest -= l + 1
	}
	return local + "@" + strings.Join(append(labels, tld), ".")
}

// settle keeps the fixture in step with a call that may have succeeded:
// a password change that went through changes fx.passwords' password.
func (fx *fixture) settle(r route, body string, status int) {
	if routeKey(r) != "POST /v1/me/password" || status != http.StatusNoContent {
		return
	}
	var req struct {
		NewPassword string `json:"new_password"`
	}
	if json.Unmarshal([]byte(body), &req) == nil {
		fx.passwords.Password = req.NewPassword
	}
}

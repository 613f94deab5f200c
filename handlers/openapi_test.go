package handlers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// The API document is held to three things: it is a valid OpenAPI 3.1
// document (kin-openapi's loader and validator, plus the checks below that
// kin-openapi does not make), it lists exactly the routes the routers
// serve, and the server keeps to it: every response any test of this
// package receives is validated against the document (see
// checkAgainstDocument, called by testAPI.serve), so an undocumented status,
// header or body member fails the test that caused it.

// What kin-openapi v0.153 checks in (*openapi3.T).Validate for a 3.1
// document: the openapi version and info; every path template and its path
// parameters; unique operationIds; each operation's parameters, request
// body and responses (a response needs a description; media types must not
// overlap); every schema (types, type arrays with "null", keywords, formats,
// $refs resolved); security schemes (type, and scheme/flows per type,
// mutualTLS included); headers. It does not check that a security
// requirement names a defined scheme or a known scope, nor what this API
// promises about its error answers: documentSecurityProblems and
// documentResponseProblems do.

var registerHTMLDecoder sync.Once

// bodiesPerStatus is how many answers of each operation and status have
// their body validated against the document.
const bodiesPerStatus = 3

// loadDocument fetches GET /openapi.json from api's router and loads and
// validates it with kin-openapi.
func loadDocument(tb testing.TB, api *testAPI) *openapi3.T {
	tb.Helper()
	rec := httptest.NewRecorder()
	api.e.ServeHTTP(rec, newRequest(http.MethodGet, "/openapi.json", ""))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /openapi.json: %d", rec.Code)
	}
	doc, err := parseDocument(rec.Body.Bytes())
	if err != nil {
		tb.Fatalf("the API document: %v", err)
	}
	return doc
}

// parseDocument loads an OpenAPI document (no external references) and
// validates it.
func parseDocument(b []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("kin-openapi cannot load it: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		return nil, fmt.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		return nil, fmt.Errorf("kin-openapi finds it invalid: %w", err)
	}
	return doc, nil
}

// document returns api's API document, loaded once.
func (a *testAPI) document(tb testing.TB) *openapi3.T {
	tb.Helper()
	if a.docFrom != nil {
		return a.docFrom.document(tb)
	}
	a.docOnce.Do(func() { a.doc = loadDocument(tb, a) })
	if a.doc == nil {
		tb.Fatal("the API document did not load")
	}
	return a.doc
}

// matchRoute finds the route of routes that method and path address, and
// the values of its path parameters.
func matchRoute(routes []route, method, path string) (route, map[string]string, bool) {
	segs := strings.Split(path, "/")
	for _, r := range routes {
		if r.method != method {
			continue
		}
		tmpl := strings.Split(r.path, "/")
		if len(tmpl) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range tmpl {
			if name, isParam := strings.CutPrefix(t, ":"); isParam {
				if segs[i] == "" {
					ok = false
					break
				}
				params[name] = segs[i]
			} else if t != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return r, params, true
		}
	}
	return route{}, nil, false
}

// checkAgainstDocument validates a response of api's router against the
// API document: its status must be documented for the operation, its
// documented headers present (X-Request-Id always, WWW-Authenticate on
// 401) and its body must match the documented schema. Requests that no
// route of the table matches (unknown paths, 405s, routes added by a test)
// are not the document's business.
func (a *testAPI) checkAgainstDocument(tb testing.TB, r *http.Request, rec *httptest.ResponseRecorder) {
	tb.Helper()
	rt, params, ok := matchRoute(a.routes, r.Method, r.URL.Path)
	if !ok || a.skipDocument {
		return
	}
	doc := a.document(tb)
	item := doc.Paths.Value(openAPIPath(rt.path))
	if item == nil || item.GetOperation(rt.method) == nil {
		tb.Errorf("%s %s: the route %s is not in the API document", r.Method, r.URL, routeKey(rt))
		return
	}
	registerHTMLDecoder.Do(func() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) })
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    r,
			PathParams: params,
			Route: &routers.Route{Spec: doc, Path: openAPIPath(rt.path), PathItem: item,
				Method: rt.method, Operation: item.GetOperation(rt.method)},
		},
		Status:  rec.Code,
		Header:  rec.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	// Status and headers are checked on every answer. Bodies are checked
	// on the first few answers of each operation and status: compiling
	// the schemas for every answer would triple the package's test time,
	// and the answers of one status share one shape.
	key := routeKey(rt) + " " + strconv.Itoa(rec.Code)
	a.docMu.Lock()
	if a.bodiesChecked == nil {
		a.bodiesChecked = map[string]int{}
	}
	a.bodiesChecked[key]++
	in.Options.ExcludeResponseBody = a.bodiesChecked[key] > bodiesPerStatus
	a.docMu.Unlock()
	in.SetBodyBytes(bytes.Clone(rec.Body.Bytes()))
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s: %d answer disagrees with the API document: %v\nbody: %s", r.Method, r.URL, rec.Code, err, truncate(rec.Body.String()))
	}
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, dbtest.Open(t, models.SQLite))
	doc := api.document(t)

	t.Run("routers and document agree", func(t *testing.T) {
		for _, d := range documentDiff(doc, api.e.Routes(), api.svc.Routes()) {
			t.Error(d)
		}
	})
	t.Run("security requirements", func(t *testing.T) {
		for _, p := range documentSecurityProblems(doc, allRoutes(api)) {
			t.Error(p)
		}
	})
	t.Run("error answers", func(t *testing.T) {
		for _, p := range documentResponseProblems(doc, allRoutes(api)) {
			t.Error(p)
		}
	})
	t.Run("request schemas", func(t *testing.T) {
		for _, p := range documentRequestProblems(doc, allRoutes(api)) {
			t.Error(p)
		}
	})
}

// documentDiff lists the differences between the routes the routers
// serve (echo's own lists: the public listener's and the mTLS listener's)
// and the operations of the document, in both directions.
func documentDiff(doc *openapi3.T, registered ...[]*echo.Route) []string {
	served := map[string]bool{}
	for _, rs := range registered {
		for _, r := range rs {
			served[r.Method+" "+openAPIPath(r.Path)] = true
		}
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var out []string
	for k := range served {
		if !documented[k] {
			out = append(out, "the router serves "+k+", which the API document does not list")
		}
	}
	for k := range documented {
		if !served[k] {
			out = append(out, "the API document lists "+k+", which no router serves")
		}
	}
	slices.Sort(out)
	return out
}

// operationOf returns the document's operation for route r.
func operationOf(doc *openapi3.T, r route) *openapi3.Operation {
	item := doc.Paths.Value(openAPIPath(r.path))
	if item == nil {
		return nil
	}
	return item.GetOperation(r.method)
}

// documentSecurityProblems checks each route's security requirement
// against its policy, written out here from the policy's meaning rather
// than taken from the generator: public routes say so with an empty list;
// a session-only route needs the bearer (session) scheme; an admin route
// the bearer scheme with the admin role; an owner route the owner's
// session or an API key with exactly the route's scope; a service route
// mutual TLS. Every requirement names a scheme of the document, and the
// policy is named in x-rampart-policy.
func documentSecurityProblems(doc *openapi3.T, routes []route) []string {
	var out []string
	bad := func(r route, format string, args ...any) {
		out = append(out, routeKey(r)+": "+fmt.Sprintf(format, args...))
	}
	schemes := doc.Components.SecuritySchemes
	for _, r := range routes {
		op := operationOf(doc, r)
		if op == nil {
			bad(r, "not in the document")
			continue
		}
		if got := op.Extensions["x-rampart-policy"]; got != r.policy.String() {
			bad(r, "x-rampart-policy %v, the route table says %s", got, r.policy)
		}
		if op.Security == nil {
			bad(r, "no security requirement at all (an empty list would say \"public\")")
			continue
		}
		var got []string
		for _, req := range *op.Security {
			for name, roles := range req {
				s, ok := schemes[name]
				if !ok || s.Value == nil {
					bad(r, "security names the scheme %q, which the document does not define", name)
					continue
				}
				got = append(got, name+"="+strings.Join(roles, "+"))
				switch {
				case s.Value.Type == "http" && s.Value.Scheme != "bearer":
					bad(r, "scheme %q is http %q, want bearer", name, s.Value.Scheme)
				case name == schemeAPIKey:
					for _, role := range roles {
						if !slices.Contains([]string{"projects:read", "projects:write"}, role) {
							bad(r, "API-key scope %q is not a scope of the API", role)
						}
					}
				}
			}
		}
		slices.Sort(got)
		var want []string
		switch {
		case r.policy.IsPublic():
			want = nil
		case r.policy.IsService():
			want = []string{"mtls="}
		case r.policy.IsAdmin():
			want = []string{"bearer=admin"}
		case r.policy.Scope() != "":
			want = []string{"apiKey=" + string(r.policy.Scope()), "bearer="}
		default:
			want = []string{"bearer="}
		}
		if !slices.Equal(got, want) {
			bad(r, "security %v, want %v for the policy %s", got, want, r.policy)
		}
		if r.policy.IsService() && (schemes["mtls"] == nil || schemes["mtls"].Value.Type != "mutualTLS") {
			bad(r, "the mtls scheme is not mutualTLS")
		}
	}
	return out
}

// wantStatuses are the statuses the document must list for route r,
// decided from the route's kind here, independently of the generator.
func wantStatuses(r route) []int {
	want := []int{r.doc.status, http.StatusBadRequest, http.StatusNotAcceptable, http.StatusTooManyRequests,
		http.StatusInternalServerError}
	if !r.policy.IsPublic() {
		want = append(want, http.StatusUnauthorized)
	}
	if !r.policy.IsPublic() && !r.policy.IsService() {
		want = append(want, http.StatusForbidden)
	}
	if len(pathParams(r.path)) > 0 {
		want = append(want, http.StatusNotFound)
	}
	if r.doc.request != nil {
		want = append(want, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
	}
	if slices.Contains(r.query, "limit") {
		want = append(want, http.StatusUnprocessableEntity)
	}
	return want
}

// documentResponseProblems checks each operation's answers: the statuses
// of wantStatuses are there; every error answer is problem+json with the
// Problem schema; every answer documents X-Request-Id, every 401
// WWW-Authenticate, every 429 Retry-After. The Problem schema itself
// requires type, title, status and request_id and allows nothing else.
func documentResponseProblems(doc *openapi3.T, routes []route) []string {
	var out []string
	bad := func(r route, format string, args ...any) {
		out = append(out, routeKey(r)+": "+fmt.Sprintf(format, args...))
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return []string{"the document has no Problem schema"}
	}
	for _, m := range []string{"type", "title", "status", "request_id"} {
		if !slices.Contains(problem.Value.Required, m) {
			out = append(out, "the Problem schema does not require "+m)
		}
	}
	if ap := problem.Value.AdditionalProperties.Has; ap == nil || *ap {
		out = append(out, "the Problem schema allows members it does not list")
	}
	for _, r := range routes {
		op := operationOf(doc, r)
		if op == nil {
			bad(r, "not in the document")
			continue
		}
		for _, s := range wantStatuses(r) {
			if op.Responses.Status(s) == nil {
				bad(r, "does not document %d", s)
			}
		}
		for code, ref := range op.Responses.Map() {
			status, err := strconv.Atoi(code)
			if err != nil || ref.Value == nil {
				bad(r, "response %q is not a status code", code)
				continue
			}
			resp := ref.Value
			if resp.Headers["X-Request-Id"] == nil {
				bad(r, "%d does not document X-Request-Id", status)
			}
			if status < 400 {
				continue
			}
			mt := resp.Content.Get(MIMEProblemJSON)
			if len(resp.Content) != 1 || mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Problem" {
				bad(r, "%d is not documented as application/problem+json with the Problem schema", status)
			}
			if status == http.StatusUnauthorized && (resp.Headers["WWW-Authenticate"] == nil || !resp.Headers["WWW-Authenticate"].Value.Required) {
				bad(r, "401 does not document a required WWW-Authenticate")
			}
			if status == http.StatusTooManyRequests && resp.Headers["Retry-After"] == nil {
				bad(r, "429 does not document Retry-After")
			}
		}
	}
	return out
}

// documentRequestProblems checks that each body route documents a strict
// JSON object (no additional properties) whose members are the request
// type's JSON members, required exactly where the validator requires them.
// That the documented limits are the validator's is proved by behaviour,
// in the conformance suite's "schema limits" check.
func documentRequestProblems(doc *openapi3.T, routes []route) []string {
	var out []string
	for _, r := range routes {
		op := operationOf(doc, r)
		if op == nil {
			continue
		}
		if r.doc.request == nil {
			if op.RequestBody != nil {
				out = append(out, routeKey(r)+": documents a body the route does not read")
			}
			continue
		}
		if op.RequestBody == nil || op.RequestBody.Value == nil || !op.RequestBody.Value.Required {
			out = append(out, routeKey(r)+": does not document its required body")
			continue
		}
		content := op.RequestBody.Value.Content
		mt := content.Get(echo.MIMEApplicationJSON)
		if len(content) != 1 || mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
			out = append(out, routeKey(r)+": the body is not documented as application/json only")
			continue
		}
		s := mt.Schema.Value
		if ap := s.AdditionalProperties.Has; ap == nil || *ap {
			out = append(out, routeKey(r)+": the body schema allows unknown members")
		}
		var members, required []string
		t := reflect.TypeOf(r.doc.request)
		for i := range t.NumField() {
			f := t.Field(i)
			members = append(members, jsonName(f))
			if slices.Contains(strings.Split(f.Tag.Get("validate"), ","), "required") {
				required = append(required, jsonName(f))
			}
		}
		var documented []string
		for name := range s.Properties {
			documented = append(documented, name)
		}
		if !slices.Equal(sorted(documented), sorted(members)) {
			out = append(out, fmt.Sprintf("%s: the body documents %v, the request type has %v", routeKey(r), sorted(documented), sorted(members)))
		}
		if !slices.Equal(sorted(s.Required), sorted(required)) {
			out = append(out, fmt.Sprintf("%s: the body requires %v, the validator %v", routeKey(r), sorted(s.Required), sorted(required)))
		}
	}
	return out
}

// TestOpenAPIRefusesUnknownRules: a request type with a validation rule
// the document cannot express makes the document, and so start-up, fail
// rather than leave the limit out.
func TestOpenAPIRefusesUnknownRules(t *testing.T) {
	t.Parallel()
	type exotic struct {
		Code string `json:"code" validate:"required,startswith=ab"`
	}
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	routes := []route{{method: http.MethodPost, path: "/x", handler: ok,
		doc: routeDoc{id: "exotic", request: exotic{}, status: http.StatusNoContent}}}
	_, err := openAPIDocument(routes, "test")
	if err == nil || !strings.Contains(err.Error(), "startswith=ab") || !strings.Contains(err.Error(), "code") {
		t.Fatalf("openAPIDocument = %v, want an error naming the field and the rule", err)
	}
	routes[0].doc.request = struct {
		Code string `json:"code" validate:"required,max=6"`
	}{}
	routes[0].doc.limits = map[string]map[string]any{"other": {"maximum": 1}}
	if _, err := openAPIDocument(routes, "test"); err == nil || !strings.Contains(err.Error(), "other") {
		t.Fatalf("openAPIDocument = %v, want an error naming the unknown property of limits", err)
	}
}

// TestOpenAPIValidationFailsOnADifference shows that the checks above
// fail when the document and the routers differ: a route served but not
// documented, a documented route not served, a route documented as public
// and an error answer without its problem schema.
func TestOpenAPIValidationFailsOnADifference(t *testing.T) {
	t.Parallel()
	api := newTestAPI(t, dbtest.Open(t, models.SQLite))
	doc := loadDocument(t, api)

	// A route registered on the router but not in the table the document
	// is made from.
	e := echo.New()
	for _, r := range api.e.Routes() {
		e.Add(r.Method, r.Path, func(echo.Context) error { return nil })
	}
	e.GET("/v1/projects/:id/export", func(echo.Context) error { return nil })
	diff := documentDiff(doc, e.Routes(), api.svc.Routes())
	if !slices.Contains(diff, "the router serves GET /v1/projects/{id}/export, which the API document does not list") {
		t.Errorf("an undocumented route is not reported: %v", diff)
	}
	// A documented route that no router serves.
	if diff := documentDiff(doc, api.e.Routes()); !slices.Contains(diff, "the API document lists GET /internal/v1/stats, which no router serves") {
		t.Errorf("a documented route that is not served is not reported: %v", diff)
	}

	// The document edited: a private route made public, an error answer
	// without its schema, a missing 404.
	edited := loadDocument(t, api)
	get := edited.Paths.Value("/v1/projects/{id}").Get
	get.Security = &openapi3.SecurityRequirements{}
	get.Responses.Delete("404")
	get.Responses.Value("401").Value.Content = openapi3.NewContentWithJSONSchema(openapi3.NewObjectSchema())
	probs := append(documentSecurityProblems(edited, api.routes), documentResponseProblems(edited, api.routes)...)
	for _, want := range []string{"GET /v1/projects/:id: security [] ", "GET /v1/projects/:id: does not document 404",
		"GET /v1/projects/:id: 401 is not documented as application/problem+json"} {
		if !slices.ContainsFunc(probs, func(p string) bool { return strings.HasPrefix(p, strings.TrimSpace(want)) }) {
			t.Errorf("no problem starting %q in %q", want, probs)
		}
	}

	// A response the document does not allow fails the check every
	// response of the package's tests goes through.
	rec := httptest.NewRecorder()
	rec.Header().Set(echo.HeaderXRequestID, "abc")
	rec.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	rec.WriteHeader(http.StatusTeapot)
	rb := &recordingTB{TB: t}
	rb.run(func() { api.checkAgainstDocument(rb, newRequest(http.MethodGet, "/healthz", ""), rec) })
	if !rb.Failed() {
		t.Error("an undocumented status passes checkAgainstDocument")
	}
	rec = httptest.NewRecorder()
	rec.Header().Set(echo.HeaderXRequestID, "abc")
	rec.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	rec.WriteHeader(http.StatusOK)
	io.WriteString(rec, `{"status":"ok","uptime":12}`)
	rb = &recordingTB{TB: t}
	rb.run(func() { api.checkAgainstDocument(rb, newRequest(http.MethodGet, "/healthz", ""), rec) })
	if !rb.Failed() {
		t.Error("an undocumented member passes checkAgainstDocument")
	}
}

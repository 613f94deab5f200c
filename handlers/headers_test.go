package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// The security headers of API.md ("Headers on every response") and
// SECURITY-BASELINE §8, written out here rather than read from the
// middleware, so that the test holds the code to the contract: every
// response of either listener carries each of them exactly once with
// exactly this value – successes and errors, 404, 405, TRACE, OPTIONS and
// panics alike.
var wantSecurityHeaders = map[string]string{
	"Strict-Transport-Security":         "max-age=63072000; includeSubDomains",
	"X-Content-Type-Options":            "nosniff",
	"X-Frame-Options":                   "DENY",
	"Referrer-Policy":                   "no-referrer",
	"Content-Security-Policy":           "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"Cross-Origin-Opener-Policy":        "same-origin",
	"Cross-Origin-Embedder-Policy":      "require-corp",
	"Cross-Origin-Resource-Policy":      "same-origin",
	"X-Permitted-Cross-Domain-Policies": "none",
	"X-DNS-Prefetch-Control":            "off",
	// Everything authenticated must not be cached; the API configures
	// no-store for every answer, public ones included.
	"Cache-Control": "no-store",
}

// deniedFeatures must each be switched off by the Permissions-Policy; it is
// the powerful part of the OWASP Secure Headers list, so a policy that
// forgets one of them is not "deny-all".
var deniedFeatures = []string{
	"accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen", "geolocation",
	"gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
	"publickey-credentials-get", "screen-wake-lock", "sync-xhr", "usb", "xr-spatial-tracking",
	"clipboard-read", "clipboard-write", "hid", "serial", "idle-detection",
}

// bannedHeaders must never be sent: version banners and the legacy XSS
// filter switch (OSHP remove list).
var bannedHeaders = []string{"Server", "X-Powered-By", "X-XSS-Protection", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Generator"}

var permissionsItem = regexp.MustCompile(`^([a-z][a-z0-9-]*)=\(\)$`)

// cspMode says which Content-Security-Policy a response must have.
type cspMode int

const (
	apiCSP       cspMode = iota // the API policy of wantSecurityHeaders
	reportPolicy                // the report's own policy, checked by checkReportCSP
)

// checkSecurityHeaders checks h against wantSecurityHeaders, the deny-all
// Permissions-Policy and bannedHeaders. With reportPolicy the policy itself is
// left to checkReportCSP; it must still be there exactly once.
func checkSecurityHeaders(tb testing.TB, where string, h http.Header, mode cspMode) {
	tb.Helper()
	for name, want := range wantSecurityHeaders {
		got := h.Values(name)
		if len(got) != 1 {
			tb.Errorf("%s: %s sent %d times (%q), want exactly once", where, name, len(got), got)
			continue
		}
		if name == "Content-Security-Policy" && mode == reportPolicy {
			continue
		}
		if got[0] != want {
			tb.Errorf("%s: %s = %q, want %q", where, name, got[0], want)
		}
	}
	pp := h.Values("Permissions-Policy")
	if len(pp) != 1 {
		tb.Errorf("%s: Permissions-Policy sent %d times, want exactly once", where, len(pp))
	} else {
		checkDenyAll(tb, where, pp[0])
	}
	for _, name := range bannedHeaders {
		if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
			tb.Errorf("%s: sends %s %q", where, name, v)
		}
	}
}

// checkDenyAll checks that a Permissions-Policy gives every feature it
// names the empty allowlist "()" and names every one of deniedFeatures.
func checkDenyAll(tb testing.TB, where, policy string) {
	tb.Helper()
	seen := map[string]bool{}
	for _, item := range strings.Split(policy, ",") {
		m := permissionsItem.FindStringSubmatch(strings.TrimSpace(item))
		if m == nil {
			tb.Errorf("%s: Permissions-Policy item %q is not feature=()", where, strings.TrimSpace(item))
			continue
		}
		if seen[m[1]] {
			tb.Errorf("%s: Permissions-Policy names %s twice", where, m[1])
		}
		seen[m[1]] = true
	}
	for _, f := range deniedFeatures {
		if !seen[f] {
			tb.Errorf("%s: Permissions-Policy does not deny %s", where, f)
		}
	}
}

// checkRecorded is checkSecurityHeaders for a recorded response.
func checkRecorded(tb testing.TB, rec *httptest.ResponseRecorder, where string, mode cspMode) {
	tb.Helper()
	checkSecurityHeaders(tb, fmt.Sprintf("%s (%d)", where, rec.Code), rec.Header(), mode)
}

// TestDefaultHeadersConfigIsTheContract: the middleware's defaults are the
// values of API.md, so that whoever uses SecureHeaders() gets them.
func TestDefaultHeadersConfigIsTheContract(t *testing.T) {
	t.Parallel()
	c := middleware.DefaultHeadersConfig
	for name, got := range map[string]string{
		"Strict-Transport-Security":         c.StrictTransportSecurity,
		"X-Content-Type-Options":            c.ContentTypeOptions,
		"X-Frame-Options":                   c.FrameOptions,
		"Referrer-Policy":                   c.ReferrerPolicy,
		"Content-Security-Policy":           c.ContentSecurityPolicy,
		"Cross-Origin-Opener-Policy":        c.CrossOriginOpenerPolicy,
		"Cross-Origin-Embedder-Policy":      c.CrossOriginEmbedderPolicy,
		"Cross-Origin-Resource-Policy":      c.CrossOriginResourcePolicy,
		"X-Permitted-Cross-Domain-Policies": c.PermittedCrossDomainPolicies,
		"X-DNS-Prefetch-Control":            c.DNSPrefetchControl,
		"Cache-Control":                     c.CacheControl,
	} {
		if got != wantSecurityHeaders[name] {
			t.Errorf("DefaultHeadersConfig %s = %q, want %q", name, got, wantSecurityHeaders[name])
		}
	}
	if middleware.APIContentSecurityPolicy != wantSecurityHeaders["Content-Security-Policy"] {
		t.Errorf("APIContentSecurityPolicy = %q", middleware.APIContentSecurityPolicy)
	}
	checkDenyAll(t, "DefaultHeadersConfig", c.PermissionsPolicy)
}

// TestSecurityHeadersOnEveryResponse drives every route of the table
// through success and each error it can answer, plus the router's own
// answers, a panic, the wire, and the mTLS listener, and holds every
// response to checkSecurityHeaders.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		fx := newFixture(t, api)
		methodsOf := map[string][]string{}
		for _, r := range api.routes {
			methodsOf[r.path] = append(methodsOf[r.path], r.method)
		}

		t.Run("every route", func(t *testing.T) {
			forRoutes(t, api, func(t *testing.T, r route) { fx.testHeadersOfRoute(t, r, methodsOf[r.path]) })
		})

		t.Run("router answers", func(t *testing.T) {
			u := fx.owner
			for _, c := range []struct {
				method, path string
				status       int
			}{
				{http.MethodGet, "/nothing-here", http.StatusNotFound},
				{http.MethodGet, "/v2/projects", http.StatusNotFound},
				{http.MethodGet, "/.env", http.StatusNotFound},
				{http.MethodGet, "/metrics", http.StatusNotFound},
				{http.MethodGet, "/internal/v1/stats", http.StatusNotFound},
				{http.MethodPost, "/nothing-here", http.StatusNotFound},
				{http.MethodTrace, "/", http.StatusMethodNotAllowed},
				{http.MethodTrace, "/v1/projects", http.StatusMethodNotAllowed},
				{http.MethodTrace, "/nothing-here", http.StatusNotFound},
				{http.MethodOptions, "/", http.StatusNoContent},
				{http.MethodOptions, "/v1/projects", http.StatusNoContent},
				{http.MethodOptions, "/nothing-here", http.StatusNotFound},
				{http.MethodHead, "/", http.StatusMethodNotAllowed},
				{"PROPFIND", "/v1/projects", http.StatusMethodNotAllowed},
				{"BREW", "/", http.StatusMethodNotAllowed},
			} {
				what := c.method + " " + c.path
				var rec *httptest.ResponseRecorder
				if c.method == http.MethodHead {
					// No body to check as a problem: the headers are all.
					rec = httptest.NewRecorder()
					api.e.ServeHTTP(rec, withToken(newRequest(c.method, c.path, ""), u.Token))
				} else {
					rec = api.call(t, c.method, c.path, u.Token, "")
				}
				if checkStatus(t, rec, c.status, what) {
					checkRecorded(t, rec, what, apiCSP)
				}
				if c.method == http.MethodTrace && strings.Contains(rec.Body.String(), "Bearer") {
					t.Errorf("%s echoes the request: %s", what, rec.Body.String())
				}
			}
		})

		t.Run("panic", func(t *testing.T) {
			cursors, err := models.NewCursorCodec(randomBytes(t, 32))
			if err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			e, err := New(Deps{DB: api.db, Accounts: api.accounts, Cursors: cursors, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
				Webhooks: api.webhooks})
			if err != nil {
				t.Fatal(err)
			}
			e.GET("/test/panic", func(echo.Context) error { panic("header test panic") })
			withPanic := &testAPI{e: e, literals: api.literals, logs: logs}
			rec := withPanic.serve(t, newRequest(http.MethodGet, "/test/panic", ""))
			if checkStatus(t, rec, http.StatusInternalServerError, "panic") {
				checkRecorded(t, rec, "panic", apiCSP)
			}
		})

		t.Run("on the wire", func(t *testing.T) {
			// net/http adds nothing of its own (no Server banner) and the
			// headers survive a real TLS connection.
			srv := httptest.NewTLSServer(api.e)
			defer srv.Close()
			client := srv.Client()
			for _, c := range []struct {
				path   string
				status int
			}{{"/", http.StatusOK}, {"/nothing-here", http.StatusNotFound}, {"/v1/me", http.StatusUnauthorized}} {
				res, err := client.Get(srv.URL + c.path)
				if err != nil {
					t.Fatal(err)
				}
				_ = res.Body.Close()
				if res.StatusCode != c.status {
					t.Errorf("GET %s over TLS: %d, want %d", c.path, res.StatusCode, c.status)
					continue
				}
				checkSecurityHeaders(t, "GET "+c.path+" over TLS", res.Header, apiCSP)
			}
		})

		t.Run("mTLS listener", func(t *testing.T) {
			svc := api.serviceListener()
			for _, c := range []struct {
				name   string
				req    *http.Request
				status int
			}{
				{"stats without certificate", newRequest(http.MethodGet, "/internal/v1/stats", ""), http.StatusUnauthorized},
				{"stats with a user token", withToken(newRequest(http.MethodGet, "/internal/v1/stats", ""), fx.owner.Token), http.StatusUnauthorized},
				{"stats with certificate", withServiceCert(newRequest(http.MethodGet, "/internal/v1/stats", ""), "reports"), http.StatusOK},
				{"stats, wrong method", withServiceCert(newRequest(http.MethodPost, "/internal/v1/stats", ""), "reports"), http.StatusMethodNotAllowed},
				{"stats, TRACE", withServiceCert(newRequest(http.MethodTrace, "/internal/v1/stats", ""), "reports"), http.StatusMethodNotAllowed},
				{"stats, OPTIONS", newRequest(http.MethodOptions, "/internal/v1/stats", ""), http.StatusNoContent},
				{"a public route", withServiceCert(newRequest(http.MethodGet, "/", ""), "reports"), http.StatusNotFound},
				{"unknown path", withServiceCert(newRequest(http.MethodGet, "/nothing-here", ""), "reports"), http.StatusNotFound},
			} {
				rec := svc.serve(t, c.req)
				if checkStatus(t, rec, c.status, c.name) {
					checkRecorded(t, rec, "mTLS listener: "+c.name, apiCSP)
				}
			}
		})
	})
}

// testHeadersOfRoute sends r the calls that give each of its answers –
// success, 401, 400 (query), 406, 404 (ids), 405, OPTIONS, TRACE and for
// body routes 415, 413, 400 and 422 – and checks the headers of each.
func (fx *fixture) testHeadersOfRoute(t testing.TB, r route, methods []string) {
	api := fx.api
	send := func(what string, req *http.Request, status int) {
		t.Helper()
		rec := api.serve(t, req)
		if checkStatus(t, rec, status, what) {
			checkRecorded(t, rec, what, apiCSP)
		}
	}

	// Success: the report keeps its own, stricter policy, and every other
	// header.
	rec := api.serve(t, fx.successRequest(t, r))
	if checkStatus(t, rec, r.doc.status, "success") {
		if r.produces == mimeHTML {
			checkReportCSP(t, rec)
			checkRecorded(t, rec, "success", reportPolicy)
		} else {
			checkRecorded(t, rec, "success", apiCSP)
		}
	}
	if routeKey(r) == "POST /v1/me/password" {
		fx.passwords.Password = fx.pendingPassword
	}

	// 401.
	if !r.policy.IsPublic() {
		send("no credentials", newRequest(r.method, fillPath(r.path, fx.params(t, r)), fx.validBody(r)), http.StatusUnauthorized)
		send("unknown token", withToken(newRequest(r.method, fillPath(r.path, fx.params(t, r)), fx.validBody(r)), unknownSessionToken(t)), http.StatusUnauthorized)
	}

	// 400 for an unknown query parameter.
	req := fx.request(t, r, fx.validBody(r))
	req.URL.RawQuery = "debug=1"
	req.RequestURI = req.URL.RequestURI()
	send("unknown query parameter", req, http.StatusBadRequest)

	// 406.
	req = fx.request(t, r, fx.validBody(r))
	if r.mediaType() == echo.MIMEApplicationJSON {
		req.Header.Set(echo.HeaderAccept, "text/html")
	} else {
		req.Header.Set(echo.HeaderAccept, "application/json")
	}
	send("not acceptable", req, http.StatusNotAcceptable)

	// 404 for an unknown id, in the first position.
	if names := pathParams(r.path); len(names) > 0 && !r.policy.IsPublic() {
		values := fx.params(t, r)
		values[names[0]] = "2f1d3c4b-5a69-4788-99aa-bbccddeeff00"
		send("unknown id", withToken(newRequest(r.method, fillPath(r.path, values), fx.validBody(r)), fx.caller(t, r)), http.StatusNotFound)
	}

	// 405, OPTIONS and TRACE on the route's path.
	target := fillPath(r.path, unknownIDs(r.path))
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodPost, http.MethodGet} {
		if !slices.Contains(methods, m) {
			send(m+" (not allowed)", withToken(newRequest(m, target, ""), fx.owner.Token), http.StatusMethodNotAllowed)
			break
		}
	}
	send("OPTIONS", newRequest(http.MethodOptions, target, ""), http.StatusNoContent)
	send("TRACE", withToken(newRequest(http.MethodTrace, target, ""), fx.owner.Token), http.StatusMethodNotAllowed)

	if r.doc.request == nil {
		return
	}
	// 415, 413, 400 and 422 for body routes.
	req = fx.request(t, r, fx.validBody(r))
	req.Header.Set(echo.HeaderContentType, "text/plain")
	send("text/plain body", req, http.StatusUnsupportedMediaType)
	b := fx.validBody(r)
	send("oversized body", fx.request(t, r, b+strings.Repeat(" ", DefaultBodyLimit+1-len(b))), http.StatusRequestEntityTooLarge)
	send("unknown member", fx.request(t, r, `{"is_admin":true,`+strings.TrimPrefix(fx.validBody(r), "{")), http.StatusBadRequest)
	send("invalid body", fx.request(t, r, fx.bodies[routeKey(r)].invalid), http.StatusUnprocessableEntity)
}

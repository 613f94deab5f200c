package handlers

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
)

// The allowlist of the CORS tests: one origin on the default port, one on
// an explicit port.
const (
	allowedOrigin     = "https://app.example.com"
	allowedPortOrigin = "https://admin.example.com:8443"
)

// withCORS configures the allowlist, with or without credentials.
func withCORS(credentials bool) func(*Deps) {
	return func(d *Deps) {
		d.CORS = middleware.CORSConfig{AllowOrigins: []string{allowedOrigin, allowedPortOrigin}, AllowCredentials: credentials}
	}
}

// foreignOrigins are origins a browser may send that are not on the
// allowlist: other sites, other ports, schemes and subdomains of the
// allowed ones, the opaque origin, and the prefix, suffix and pattern
// tricks that defeat naive matching.
var foreignOrigins = []string{
	"https://evil.example",
	"https://app.example.com:8443",   // other port
	"https://app.example.com:443",    // the default port written out: not what browsers send
	"http://app.example.com",         // other scheme
	"https://sub.app.example.com",    // subdomain
	"https://example.com",            // parent domain
	"https://admin.example.com",      // the other allowed host without its port
	"https://admin.example.com:8444", // the other allowed host, other port
	"null",
	"https://app.example.com.evil.example", // suffix trick
	"https://evilapp.example.com",          // prefix trick
	"https://app-example.com",
	"https://app.example.co",
	"https://app.example.com/", // with a path
	"https://app.example.com.", // trailing dot
	"https://APP.EXAMPLE.COM",  // not the serialisation a browser sends
	"https://app.example.com%00.evil.example",
	"https://app.example.com, https://evil.example",
	"*",
	"https://*.example.com",
}

// accessControlHeaders returns the Access-Control-* headers of h.
func accessControlHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for name, v := range h {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			out[name] = v
		}
	}
	return out
}

// expectNoCORS fails unless rec has no Access-Control-* header at all.
func expectNoCORS(t *testing.T, rec *httptest.ResponseRecorder, what string) {
	t.Helper()
	if ac := accessControlHeaders(rec.Header()); len(ac) > 0 {
		t.Errorf("%s (%d): Access-Control headers %v, want none", what, rec.Code, ac)
	}
}

// headerSet splits comma-separated header values into a sorted set.
func headerSet(values []string) []string {
	var out []string
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	slices.Sort(out)
	return out
}

// hasVaryOrigin reports whether the response varies by Origin.
func hasVaryOrigin(h http.Header) bool {
	for _, v := range headerSet(h.Values(echo.HeaderVary)) {
		if strings.EqualFold(v, echo.HeaderOrigin) {
			return true
		}
	}
	return false
}

// expectAllowed checks the headers of a non-preflight answer to an allowed
// origin: that exact origin, Vary: Origin, the exposed headers, and
// credentials exactly as configured.
func expectAllowed(t *testing.T, rec *httptest.ResponseRecorder, origin string, credentials bool, what string) {
	t.Helper()
	h := rec.Header()
	if got := h.Values(echo.HeaderAccessControlAllowOrigin); len(got) != 1 || got[0] != origin {
		t.Errorf("%s (%d): Access-Control-Allow-Origin %q, want exactly %q", what, rec.Code, got, origin)
	}
	if !hasVaryOrigin(h) {
		t.Errorf("%s: Vary %q lacks Origin", what, h.Values(echo.HeaderVary))
	}
	wantExposed := headerSet([]string{"X-Request-Id, Location, Retry-After, RateLimit, RateLimit-Policy"})
	if got := headerSet(h.Values(echo.HeaderAccessControlExposeHeaders)); !slices.Equal(got, wantExposed) {
		t.Errorf("%s: Access-Control-Expose-Headers %v, want %v", what, got, wantExposed)
	}
	creds := h.Values(echo.HeaderAccessControlAllowCredentials)
	switch {
	case credentials && (len(creds) != 1 || creds[0] != "true"):
		t.Errorf("%s: Access-Control-Allow-Credentials %q, want true", what, creds)
	case !credentials && len(creds) > 0:
		t.Errorf("%s: Access-Control-Allow-Credentials %q without credentials configured", what, creds)
	}
}

// corsRequest is newRequest from a browser page of origin.
func corsRequest(method, target, origin, token string) *http.Request {
	r := withToken(newRequest(method, target, ""), token)
	r.Header.Set(echo.HeaderOrigin, origin)
	return r
}

// preflight is the OPTIONS request a browser sends before a call of method
// with the request headers headers.
func preflight(target, origin, method, headers string) *http.Request {
	r := newRequest(http.MethodOptions, target, "")
	r.Header.Set(echo.HeaderOrigin, origin)
	r.Header.Set(echo.HeaderAccessControlRequestMethod, method)
	if headers != "" {
		r.Header.Set(echo.HeaderAccessControlRequestHeaders, headers)
	}
	return r
}

func TestCORS(t *testing.T) {
	t.Parallel()
	for _, credentials := range []bool{false, true} {
		name := "without credentials"
		if credentials {
			name = "with credentials"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			eachAPIWith(t, withCORS(credentials), func(t *testing.T, api *testAPI) {
				testCORSAllowlist(t, api, credentials)
			})
		})
	}
}

func testCORSAllowlist(t *testing.T, api *testAPI, credentials bool) {
	u := api.signUp(t)
	p := api.createProject(t, u.Token, "Shared with the browser")
	values := map[string]string{"id": p.ID, "task_id": api.createTask(t, u.Token, p.ID, "A task").ID}

	t.Run("allowed origin: exact echo, Vary, exposed headers", func(t *testing.T) {
		for _, origin := range []string{allowedOrigin, allowedPortOrigin} {
			for _, c := range []struct {
				name, method, path, token string
				status                    int
			}{
				{"public GET", http.MethodGet, "/", "", http.StatusOK},
				{"authenticated GET", http.MethodGet, "/v1/projects/" + p.ID, u.Token, http.StatusOK},
				{"401", http.MethodGet, "/v1/me", "", http.StatusUnauthorized},
				{"404 foreign id", http.MethodGet, "/v1/projects/2f1d3c4b-5a69-4788-99aa-bbccddeeff00", u.Token, http.StatusNotFound},
				{"404 unknown path", http.MethodGet, "/nothing-here", u.Token, http.StatusNotFound},
				{"405", http.MethodPut, "/v1/projects", u.Token, http.StatusMethodNotAllowed},
			} {
				what := origin + " " + c.name
				rec := api.serve(t, corsRequest(c.method, c.path, origin, c.token))
				if checkStatus(t, rec, c.status, what) {
					expectAllowed(t, rec, origin, credentials, what)
				}
			}
		}
	})

	t.Run("foreign origins get no Access-Control header", func(t *testing.T) {
		for _, origin := range foreignOrigins {
			for _, req := range []*http.Request{
				corsRequest(http.MethodGet, "/", origin, ""),
				corsRequest(http.MethodGet, "/v1/projects/"+p.ID, origin, u.Token),
				corsRequest(http.MethodGet, "/v1/me", origin, ""),
				corsRequest(http.MethodGet, "/nothing-here", origin, ""),
				preflight("/v1/projects", origin, http.MethodPost, "Authorization, Content-Type"),
				preflight("/v1/projects/"+p.ID, origin, http.MethodDelete, "Authorization"),
			} {
				what := req.Method + " " + req.URL.Path + " from " + origin
				rec := api.serve(t, req)
				if rec.Code >= 500 {
					t.Errorf("%s: %d", what, rec.Code)
				}
				expectNoCORS(t, rec, what)
			}
		}
	})

	t.Run("preflight names the path's methods and the API's headers", func(t *testing.T) {
		methodsOf := map[string][]string{}
		for _, r := range api.routes {
			methodsOf[r.path] = append(methodsOf[r.path], r.method)
		}
		if len(methodsOf) < 2 {
			t.Fatal("the route table has fewer than two paths")
		}
		wantHeaders := headerSet([]string{"Authorization, Content-Type, X-Request-Id"})
		for path, methods := range methodsOf {
			for _, origin := range []string{allowedOrigin, allowedPortOrigin} {
				what := "preflight " + path + " from " + origin
				ids := unknownIDs(path) // a generated child's parameter
				for k, v := range values {
					ids[k] = v
				}
				rec := api.serve(t, preflight(fillPath(path, ids), origin, methods[0], "Authorization, Content-Type, X-Evil, Cookie"))
				if !checkStatus(t, rec, http.StatusNoContent, what) {
					continue
				}
				h := rec.Header()
				if got := h.Values(echo.HeaderAccessControlAllowOrigin); len(got) != 1 || got[0] != origin {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want exactly %q", what, got, origin)
				}
				if !hasVaryOrigin(h) {
					t.Errorf("%s: Vary %q lacks Origin", what, h.Values(echo.HeaderVary))
				}
				// Exactly the router's methods of this path (OPTIONS,
				// which the router answers itself, may be named).
				var got []string
				for _, m := range headerSet(h.Values(echo.HeaderAccessControlAllowMethods)) {
					if m != http.MethodOptions {
						got = append(got, m)
					}
				}
				want := slices.Clone(methods)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: Access-Control-Allow-Methods %q, want %v", what, h.Values(echo.HeaderAccessControlAllowMethods), want)
				}
				if got := headerSet(h.Values(echo.HeaderAccessControlAllowHeaders)); !slices.Equal(got, wantHeaders) {
					t.Errorf("%s: Access-Control-Allow-Headers %v, want exactly %v (never what the request asked for)", what, got, wantHeaders)
				}
				if age, err := strconv.Atoi(h.Get(echo.HeaderAccessControlMaxAge)); err != nil || age <= 0 || age > 7200 {
					t.Errorf("%s: Access-Control-Max-Age %q, want a positive number of seconds of at most 7200 (Chromium's cap)", what, h.Get(echo.HeaderAccessControlMaxAge))
				}
				creds := h.Values(echo.HeaderAccessControlAllowCredentials)
				if credentials && (len(creds) != 1 || creds[0] != "true") {
					t.Errorf("%s: Access-Control-Allow-Credentials %q, want true", what, creds)
				}
				if !credentials && len(creds) > 0 {
					t.Errorf("%s: Access-Control-Allow-Credentials %q without credentials configured", what, creds)
				}
				if rec.Body.Len() != 0 {
					t.Errorf("%s: body %q", what, rec.Body.String())
				}
			}
		}
		// Two paths with different method sets, spelled out.
		for path, want := range map[string]string{
			"/v1/projects":         "GET,POST",
			"/v1/projects/" + p.ID: "DELETE,GET,PATCH",
			"/v1/projects/" + p.ID + "/tasks/" + values["task_id"]: "DELETE,GET,PATCH",
			"/v1/auth/login": "POST",
			"/":              "GET",
		} {
			rec := api.serve(t, preflight(path, allowedOrigin, http.MethodGet, ""))
			var got []string
			for _, m := range headerSet(rec.Header().Values(echo.HeaderAccessControlAllowMethods)) {
				if m != http.MethodOptions {
					got = append(got, m)
				}
			}
			if strings.Join(got, ",") != want {
				t.Errorf("preflight %s: Access-Control-Allow-Methods %q, want %s", path, rec.Header().Values(echo.HeaderAccessControlAllowMethods), want)
			}
		}
	})

	t.Run("preflight for an unknown path is a 404 problem", func(t *testing.T) {
		for _, path := range []string{"/nothing-here", "/v2/projects", "/v1/projects/" + p.ID + "/unknown", "/internal/v1/stats"} {
			rec := api.serve(t, preflight(path, allowedOrigin, http.MethodGet, "Authorization"))
			if checkStatus(t, rec, http.StatusNotFound, "preflight "+path) {
				if mediaType(rec) != MIMEProblemJSON {
					t.Errorf("preflight %s: Content-Type %q", path, rec.Header().Get(echo.HeaderContentType))
				}
				if m := rec.Header().Get(echo.HeaderAccessControlAllowMethods); m != "" {
					t.Errorf("preflight %s: Access-Control-Allow-Methods %q on a 404", path, m)
				}
			}
		}
	})

	t.Run("never a wildcard", func(t *testing.T) {
		for _, req := range []*http.Request{
			corsRequest(http.MethodGet, "/", allowedOrigin, ""),
			corsRequest(http.MethodGet, "/", "*", ""),
			preflight("/v1/projects", allowedOrigin, http.MethodPost, "*"),
			preflight("/v1/projects", "https://evil.example", http.MethodPost, "*"),
		} {
			rec := api.serve(t, req)
			for name, vs := range accessControlHeaders(rec.Header()) {
				for _, v := range vs {
					if strings.Contains(v, "*") {
						t.Errorf("%s %s from %s: %s: %q", req.Method, req.URL.Path, req.Header.Get(echo.HeaderOrigin), name, v)
					}
				}
			}
		}
	})
}

// TestCORSOffByDefault: with no origins configured (API.md's default) no
// response ever carries an Access-Control-* header, whoever asks.
func TestCORSOffByDefault(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		fx := newFixture(t, api)
		// The would-be allowed origin, the API's own, another site and the
		// opaque origin: with CORS off they are all the same.
		for _, origin := range []string{allowedOrigin, "https://localhost:8443", "https://evil.example", "null"} {
			for _, r := range api.routes {
				target := fillPath(r.path, unknownIDs(r.path))
				token := fx.owner.Token
				if routeKey(r) == "POST /v1/auth/logout" {
					token = unknownSessionToken(t) // the owner's session must live on
				}
				for _, req := range []*http.Request{
					corsRequest(r.method, target, origin, token),
					corsRequest(r.method, target, origin, ""),
					preflight(target, origin, r.method, "Authorization, Content-Type"),
				} {
					expectNoCORS(t, api.serve(t, req), req.Method+" "+r.path+" from "+origin)
				}
			}
			for _, req := range []*http.Request{
				corsRequest(http.MethodGet, "/nothing-here", origin, ""),
				preflight("/nothing-here", origin, http.MethodGet, ""),
			} {
				expectNoCORS(t, api.serve(t, req), req.Method+" "+req.URL.Path+" from "+origin)
			}
		}
		// The successful calls of the table, from an origin.
		for _, r := range api.routes {
			req := fx.successRequest(t, r)
			req.Header.Set(echo.HeaderOrigin, allowedOrigin)
			rec := api.serve(t, req)
			if checkStatus(t, rec, r.doc.status, "success of "+routeKey(r)) && routeKey(r) == "POST /v1/me/password" {
				fx.passwords.Password = fx.pendingPassword
			}
			expectNoCORS(t, rec, "success of "+routeKey(r))
		}
	})
}

package handlers

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestEchoAdvisoriesNotExposed: echo v4 is affected, as a whole module, by
// GO-2026-6875 (the Proxy middleware forwards a client's X-Real-IP
// upstream; the fix also touches Context.Scheme, JSONP, Static, Secure and
// MethodOverride) and GO-2026-6872 (Context.RealIP believes X-Forwarded-For
// and X-Real-IP by default, so the RateLimiter middleware keyed on it can
// be bypassed); both are fixed only in echo v5. This test shows that the
// running API is not exposed; TestEchoAdvisorySymbolsUnused (module root)
// shows that the affected middleware and methods are never referenced.
// See SECURITY.md, "echo v4 advisories".
func TestEchoAdvisoriesNotExposed(t *testing.T) {
	t.Parallel()
	eachProxySetting(t, func(t *testing.T, api *testAPI) {
		// GO-2026-6872: RealIP is echo's default (forwarding
		// headers believed) only while IPExtractor is nil.
		for name, e := range map[string]*echo.Echo{"public": api.e, "mTLS": api.svc} {
			if e.IPExtractor == nil {
				t.Fatalf("the %s listener's echo has no IPExtractor: c.RealIP() would believe X-Forwarded-For and X-Real-IP", name)
			}
			for _, peer := range []string{"192.0.2.10:40000", "127.0.0.1:40000", "192.168.1.20:40000", "[fd00::7]:40000"} {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.RemoteAddr = peer
				req.Header.Set(echo.HeaderXRealIP, "203.0.113.7")
				req.Header.Set(echo.HeaderXForwardedFor, "203.0.113.9")
				got := e.NewContext(req, httptest.NewRecorder()).RealIP()
				if host, _, _ := net.SplitHostPort(peer); got != host {
					t.Errorf("%s listener: peer %s with forged X-Real-IP and X-Forwarded-For: RealIP %q, want the peer", name, peer, got)
				}
			}
		}

		u := api.signUp(t)
		// GO-2026-6875, MethodOverride: X-HTTP-Method-Override and
		// _method change nothing.
		req := withToken(newRequest(http.MethodPost, "/v1/projects", `{"name":"Override"}`), u.Token)
		req.Header.Set("X-HTTP-Method-Override", http.MethodDelete)
		expectStatus(t, api.serve(t, req), http.StatusCreated, "POST with X-HTTP-Method-Override: DELETE")
		checkStatus(t, api.call(t, http.MethodPost, "/v1/projects?_method=DELETE", u.Token, `{"name":"Override"}`), http.StatusBadRequest, "?_method=DELETE")

		// JSONP: a callback parameter is refused, never wrapped.
		checkStatus(t, api.call(t, http.MethodGet, "/v1/projects?callback=evil", u.Token, ""), http.StatusBadRequest, "?callback=")

		// Static: no file is ever served from disk.
		for _, path := range []string{"/static/", "/index.html", "/go.mod", "/favicon.ico", "/.env", "/%2e%2e/go.mod"} {
			checkStatus(t, api.call(t, http.MethodGet, path, "", ""), http.StatusNotFound, "GET "+path)
		}
		// Context.Scheme and Secure: X-Forwarded-Proto changes no
		// answer (TestForwardedProtoChangesNothing); HSTS is on
		// every answer regardless (TestSecurityHeadersOnEveryResponse).
	})
}

package handlers

import (
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// xss are strings that become live markup or template actions if a page
// is built by concatenation or from a template made of input.
var xss = []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `{{.}}`}

var (
	styleNonce = regexp.MustCompile(`<style nonce="([^"]*)">`)
	cspNonce   = regexp.MustCompile(`style-src 'nonce-([^']+)'`)
)

func TestReport(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		other := api.signUp(t)
		all := strings.Join(xss, " ")
		rec := api.call(t, http.MethodPost, "/v1/projects", u.Token, jsonBody(t, map[string]string{"name": all, "description": all}))
		expectStatus(t, rec, http.StatusCreated, "create")
		var p projectJSON
		decodeExact(t, rec, &p, projectMembers...)
		for _, s := range xss {
			api.createTask(t, u.Token, p.ID, s)
		}
		path := "/v1/projects/" + p.ID + "/report"

		t.Run("200 encoded page with a strict CSP", func(t *testing.T) {
			first := api.call(t, http.MethodGet, path, u.Token, "")
			expectStatus(t, first, http.StatusOK, "report")
			if ct := first.Header().Get(echo.HeaderContentType); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := first.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			nonce := checkReportCSP(t, first)
			body := first.Body.String()

			// Nothing the user wrote is markup.
			for _, live := range []string{"<script", "<img", "onerror=alert(1)>", `"><`} {
				if strings.Contains(body, live) {
					t.Errorf("the page contains live %q", live)
				}
			}
			for _, encoded := range []string{
				"&lt;script&gt;alert(1)&lt;/script&gt;",
				"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
			} {
				// Name (title and heading), description and a task title.
				if n := strings.Count(body, encoded); n < 4 {
					t.Errorf("%q appears %d times, want at least 4 (title, heading, description, task)", encoded, n)
				}
			}
			// A template action in data is data: shown as written, never run.
			if n := strings.Count(body, "{{.}}"); n < 4 {
				t.Errorf("{{.}} appears %d times as text, want at least 4", n)
			}
			if strings.Contains(body, "main.reportView") || strings.Contains(body, "handlers.") {
				t.Error("the page shows template internals")
			}

			// The nonce is per response.
			second := api.call(t, http.MethodGet, path, u.Token, "")
			expectStatus(t, second, http.StatusOK, "second report")
			if again := checkReportCSP(t, second); again == nonce {
				t.Errorf("two responses share the nonce %q", nonce)
			}
		})

		t.Run("200 for Accept: text/html", func(t *testing.T) {
			for _, accept := range []string{"text/html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"} {
				req := withToken(newRequest(http.MethodGet, path, ""), u.Token)
				req.Header.Set(echo.HeaderAccept, accept)
				checkStatus(t, api.serve(t, req), http.StatusOK, "Accept: "+accept)
			}
		})

		t.Run("406 for Accept: application/json", func(t *testing.T) {
			req := withToken(newRequest(http.MethodGet, path, ""), u.Token)
			req.Header.Set(echo.HeaderAccept, "application/json")
			checkStatus(t, api.serve(t, req), http.StatusNotAcceptable, "Accept: application/json")
		})

		t.Run("404 another user's report", func(t *testing.T) {
			rec := api.call(t, http.MethodGet, path, other.Token, "")
			checkStatus(t, rec, http.StatusNotFound, "other user")
			if strings.Contains(rec.Body.String(), "alert(1)") {
				t.Error("the 404 shows the project")
			}
		})
	})
}

// checkReportCSP checks the report's own policy and that its nonce is the
// one on the page's style element; it returns the nonce.
func checkReportCSP(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	csp := rec.Header().Values("Content-Security-Policy")
	if len(csp) != 1 {
		t.Fatalf("Content-Security-Policy headers %q, want exactly one", csp)
	}
	policy := csp[0]
	directives := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	if directives["default-src"] != "'none'" {
		t.Errorf("CSP %q: default-src is not 'none'", policy)
	}
	if strings.Contains(policy, "unsafe-") {
		t.Errorf("CSP %q allows unsafe-*", policy)
	}
	if _, ok := directives["script-src"]; ok {
		t.Errorf("CSP %q admits scripts", policy)
	}
	m := cspNonce.FindStringSubmatch(policy)
	if m == nil || directives["style-src"] != "'nonce-"+m[1]+"'" {
		t.Fatalf("CSP %q: style-src is not a single nonce", policy)
	}
	nonce := m[1]
	if len(nonce) < 16 {
		t.Errorf("nonce %q is too short to be unguessable", nonce)
	}
	styles := styleNonce.FindAllStringSubmatch(rec.Body.String(), -1)
	if len(styles) != 1 {
		t.Fatalf("the page has %d nonced style elements, want 1", len(styles))
	}
	// The attribute is HTML-encoded ('+' may be written &#43;); the browser
	// compares the decoded value.
	if got := html.UnescapeString(styles[0][1]); got != nonce {
		t.Errorf("style nonce %q, CSP nonce %q", got, nonce)
	}
	if n := strings.Count(rec.Body.String(), "<style"); n != 1 {
		t.Errorf("the page has %d style elements, want 1", n)
	}
	return nonce
}

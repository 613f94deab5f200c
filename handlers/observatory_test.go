package handlers

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// An in-process version of the MDN HTTP Observatory's scoring (algorithm v6:
// the ten tests of mdn/mdn-http-observatory src/analyzer/tests plus the
// cross-origin-opener-policy and cross-origin-embedder-policy tests, graded
// as src/scanner/index.js and src/grader do), for the responses a JSON API
// gives. SECURITY-BASELINE.md ("MDN HTTP Observatory") has the rules and
// the expected scores. Where the scanner looks at things a JSON API does not
// produce – http-equiv meta tags, scripts in HTML (subresource integrity),
// duplicated report-uri directives – observatoryScore fails the test
// instead of guessing.

// scanResponse is one response the scanner retrieved.
type scanResponse struct {
	status int
	header http.Header
	body   string
}

// observatoryScan is what the scanner retrieves for a URL.
type observatoryScan struct {
	// auto is the final HTTPS response of the URL, over a certificate the
	// scanner trusts unless untrustedCert.
	auto          scanResponse
	untrustedCert bool
	// cors is the answer to OPTIONS with corsOrigin and
	// Access-Control-Request-Method: GET.
	cors scanResponse
	// robots is the answer to /robots.txt (its cookies count too).
	robots scanResponse
	// plainHTTP is the answer of http://host/, nil when nothing listens.
	plainHTTP *scanResponse
	// preloaded says the host is on the HSTS preload list.
	preloaded bool
}

// observatoryCORSOrigin is the Origin the scanner sends in its CORS probe.
const observatoryCORSOrigin = "https://http-observatory.security.mozilla.org"

// observatoryTest is the outcome of one test: its expectation name (as in
// the Observatory's src/types.js), score modifier and whether it passed.
type observatoryTest struct {
	result   string
	modifier int
	pass     bool
}

// observatoryResult is a graded scan.
type observatoryResult struct {
	score  int
	grade  string
	passed int
	tests  map[string]observatoryTest
}

func (r observatoryResult) String() string {
	var names []string
	for name := range r.tests {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d (%d/%d passed)", r.grade, r.score, r.passed, len(r.tests))
	for _, name := range names {
		t := r.tests[name]
		fmt.Fprintf(&b, "\n  %-30s %+4d %-5v %s", name, t.modifier, t.pass, t.result)
	}
	return b.String()
}

// observatoryMinimumForExtraCredit: bonuses count only if the score with
// penalties alone is at least this (charts.js).
const observatoryMinimumForExtraCredit = 90

// observatoryGrades maps a score floored to a multiple of 5 (at most 100)
// to its grade (charts.js GRADE_CHART).
var observatoryGrades = map[int]string{
	100: "A+", 95: "A", 90: "A", 85: "A-", 80: "B+", 75: "B", 70: "B", 65: "B-", 60: "C+", 55: "C",
	50: "C", 45: "C-", 40: "D+", 35: "D", 30: "D", 25: "D-", 20: "F", 15: "F", 10: "F", 5: "F", 0: "F",
}

// observatoryScore runs the twelve tests on s and grades the result.
func observatoryScore(tb testing.TB, s observatoryScan) observatoryResult {
	tb.Helper()
	if s.auto.status < 200 || s.auto.status >= 300 {
		tb.Fatalf("observatory: the URL answered %d; the scanner refuses anything but 2xx", s.auto.status)
	}
	csp, cspData := observatoryCSP(tb, s.auto)
	hsts := observatoryHSTS(s)
	tests := map[string]observatoryTest{
		"content-security-policy":       csp,
		"cookies":                       observatoryCookies(s, hsts.pass),
		"cross-origin-resource-sharing": observatoryCORS(s.cors),
		"redirection":                   observatoryRedirection(s.plainHTTP),
		"referrer-policy":               observatoryReferrer(s.auto),
		"strict-transport-security":     hsts,
		"subresource-integrity":         observatorySRI(tb, s.auto),
		"x-content-type-options":        observatoryXCTO(s.auto),
		"x-frame-options":               observatoryXFO(s.auto, cspData),
		"cross-origin-resource-policy":  observatoryCORP(s.auto),
		"cross-origin-opener-policy":    observatoryCOOP(s.auto),
		"cross-origin-embedder-policy":  observatoryCOEP(s.auto),
	}
	withExtra, uncurved, passed := 100, 100, 0
	for _, t := range tests {
		withExtra += t.modifier
		if t.modifier < 0 {
			uncurved += t.modifier
		}
		if t.pass {
			passed++
		}
	}
	score := uncurved
	if uncurved >= observatoryMinimumForExtraCredit {
		score = withExtra
	}
	score = max(score, 0)
	return observatoryResult{score: score, grade: observatoryGrades[min(score-score%5, 100)], passed: passed, tests: tests}
}

// firstHeader is a header as the scanner's HTTP client gives it: repeated
// fields joined with ", "; "" when absent.
func firstHeader(h http.Header, name string) string {
	return strings.Join(h.Values(name), ", ")
}

func isHTML(r scanResponse) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.header.Get(echo.HeaderContentType))), "text/html")
}

// --- content-security-policy (csp.js, cspParser.js)

var (
	cspBroad        = []string{"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
	cspUnsafeInline = []string{"'unsafe-inline'", "data:"}
	cspNonceHash    = []string{"'sha256-", "'sha384-", "'sha512-", "'nonce-"}
)

// parseCSPPolicies parses the policies of the CSP header fields into one
// map of directive to sources. A source of a directive that several
// policies set counts only if every one of them has it. ok is false for a
// policy the Observatory calls invalid (too short, a directive repeated).
func parseCSPPolicies(tb testing.TB, policies []string) (map[string][]string, bool) {
	tb.Helper()
	csp := map[string][]string{}
	for i, policy := range policies {
		policy = strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(policy))
		if len(policy) < len("img-src")-1 {
			return nil, false
		}
		seen := map[string]bool{}
		for _, entry := range strings.Split(policy, ";") {
			fields := strings.Fields(entry)
			if len(fields) == 0 {
				continue
			}
			directive := strings.ToLower(fields[0])
			if seen[directive] {
				if directive == "report-uri" || directive == "report-to" {
					tb.Fatalf("observatory: a repeated %s is not modelled", directive)
				}
				return nil, false
			}
			seen[directive] = true
			var sources []string
			for _, src := range fields[1:] {
				sources = append(sources, strings.ToLower(src))
			}
			if len(sources) == 0 && strings.HasSuffix(directive, "-src") {
				sources = []string{"'none'"}
			}
			if prev, ok := csp[directive]; ok && i > 0 {
				var both []string
				for _, s := range sources {
					if slices.Contains(prev, s) {
						both = append(both, s)
					}
				}
				if len(both) == 0 {
					both = []string{"'none'"}
				}
				sources = both
			}
			csp[directive] = sources
		}
	}
	return csp, true
}

func anyIn(sources, set []string) bool {
	for _, s := range sources {
		if slices.Contains(set, s) {
			return true
		}
	}
	return false
}

func hasNonceOrHash(sources []string) bool {
	for _, s := range sources {
		for _, p := range cspNonceHash {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
	}
	return false
}

// observatoryCSP returns the CSP test and the parsed policy (nil when there
// is none), which the X-Frame-Options test reads.
func observatoryCSP(tb testing.TB, r scanResponse) (observatoryTest, map[string][]string) {
	tb.Helper()
	if isHTML(r) && regexp.MustCompile(`(?i)<meta[^>]+http-equiv`).MatchString(r.body) {
		tb.Fatalf("observatory: http-equiv meta tags are not modelled")
	}
	var policies []string
	for _, v := range r.header.Values("Content-Security-Policy") {
		for _, p := range strings.Split(v, ",") {
			policies = append(policies, strings.TrimSpace(p))
		}
	}
	if len(policies) == 0 {
		return observatoryTest{"csp-not-implemented", -25, false}, nil
	}
	csp, ok := parseCSPPolicies(tb, policies)
	if !ok {
		return observatoryTest{"csp-header-invalid", -25, false}, nil
	}
	if len(csp) == 0 {
		return observatoryTest{"csp-not-implemented", -25, false}, nil
	}
	get := func(names ...string) []string {
		for _, n := range names {
			if v, ok := csp[n]; ok {
				return slices.Clone(v)
			}
		}
		return []string{"*"}
	}
	objectSrc, scriptSrc, styleSrc := get("object-src", "default-src"), get("script-src", "default-src"), get("style-src", "default-src")
	removeUnsafeInline := func(list []string) []string {
		if hasNonceOrHash(list) {
			return slices.DeleteFunc(list, func(s string) bool { return s == "'unsafe-inline'" })
		}
		return list
	}
	scriptSrc, styleSrc = removeUnsafeInline(scriptSrc), removeUnsafeInline(styleSrc)

	result, modifier := "", 0
	set := func(r string, m int) {
		if result == "" {
			result, modifier = r, m
		}
	}
	if slices.Contains(scriptSrc, "'strict-dynamic'") {
		if hasNonceOrHash(scriptSrc) {
			scriptSrc = slices.DeleteFunc(scriptSrc, func(s string) bool {
				for _, b := range cspBroad {
					if strings.HasPrefix(s, b) {
						return true
					}
				}
				return s == "'self'" || s == "'unsafe-inline'"
			})
		} else {
			set("csp-header-invalid", -25)
		}
	}
	var active, passive []string
	for d, sources := range csp {
		if d != "img-src" && d != "media-src" && d != "script-src" {
			active = append(active, sources...)
		}
	}
	active = append(active, scriptSrc...)
	for _, d := range []string{"img-src", "media-src"} {
		if v, ok := csp[d]; ok {
			passive = append(passive, v...)
		} else {
			passive = append(passive, csp["default-src"]...)
		}
	}
	insecure := func(sources []string) bool {
		for _, s := range sources {
			if strings.HasPrefix(s, "http:") || strings.HasPrefix(s, "ftp:") {
				return true
			}
		}
		return false
	}
	if anyIn(scriptSrc, append(slices.Clone(cspBroad), cspUnsafeInline...)) || anyIn(objectSrc, cspBroad) {
		set("csp-implemented-with-unsafe-inline", -20)
	}
	if insecure(active) {
		set("csp-implemented-with-insecure-scheme", -20)
	}
	if slices.Contains(scriptSrc, "'unsafe-eval'") || slices.Contains(styleSrc, "'unsafe-eval'") {
		set("csp-implemented-with-unsafe-eval", -10)
	}
	if insecure(passive) {
		set("csp-implemented-with-insecure-scheme-in-passive-content-only", -10)
	}
	if anyIn(styleSrc, append(slices.Clone(cspBroad), cspUnsafeInline...)) {
		set("csp-implemented-with-unsafe-inline-in-style-src-only", 0)
	}
	if d := csp["default-src"]; len(d) == 1 && d[0] == "'none'" {
		set("csp-implemented-with-no-unsafe-default-src-none", 10)
	} else {
		set("csp-implemented-with-no-unsafe", 5)
	}
	pass := slices.Contains([]string{"csp-implemented-with-no-unsafe", "csp-implemented-with-no-unsafe-default-src-none",
		"csp-implemented-with-unsafe-inline-in-style-src-only", "csp-implemented-with-insecure-scheme-in-passive-content-only"}, result)
	return observatoryTest{result, modifier, pass}, csp
}

// --- cookies (cookies.js)

// observatoryCookieOrder lists the cookie failures from least to most
// severe; a worse one replaces a milder one.
var observatoryCookieOrder = []string{
	"cookies-without-secure-flag-but-protected-by-hsts",
	"cookies-without-secure-flag",
	"cookies-session-without-secure-flag-but-protected-by-hsts",
	"cookies-samesite-flag-invalid",
	"cookies-anticsrf-without-samesite-flag",
	"cookies-session-without-httponly-flag",
	"cookies-session-without-secure-flag",
}

var observatoryCookieModifiers = map[string]int{
	"cookies-secure-with-httponly-sessions-and-samesite":        5,
	"cookies-secure-with-httponly-sessions":                     0,
	"cookies-not-found":                                         0,
	"cookies-without-secure-flag-but-protected-by-hsts":         -5,
	"cookies-session-without-secure-flag-but-protected-by-hsts": -10,
	"cookies-without-secure-flag":                               -20,
	"cookies-samesite-flag-invalid":                             -20,
	"cookies-anticsrf-without-samesite-flag":                    -20,
	"cookies-session-without-httponly-flag":                     -30,
	"cookies-session-without-secure-flag":                       -40,
}

func observatoryCookies(s observatoryScan, hsts bool) observatoryTest {
	result := ""
	worse := func(r string) {
		if result == "" || slices.Index(observatoryCookieOrder, r) > slices.Index(observatoryCookieOrder, result) {
			result = r
		}
	}
	for _, raw := range s.auto.header.Values("Set-Cookie") {
		for _, part := range strings.Split(raw, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(strings.TrimSpace(k), "samesite") &&
				!slices.Contains([]string{"lax", "strict", "none"}, strings.ToLower(strings.TrimSpace(v))) {
				worse("cookies-samesite-flag-invalid")
			}
		}
	}
	var cookies []*http.Cookie
	for _, r := range []scanResponse{s.auto, s.robots} {
		for _, raw := range r.header.Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(raw); err == nil && c.Name != "heroku-session-affinity" {
				cookies = append(cookies, c)
			}
		}
	}
	if len(cookies) == 0 {
		return observatoryTest{"cookies-not-found", 0, true}
	}
	missingSameSite := false
	for _, c := range cookies {
		name := strings.ToLower(c.Name)
		session := strings.Contains(name, "login") || strings.Contains(name, "sess")
		anticsrf := strings.Contains(name, "csrf")
		sameSite := c.SameSite != 0 // 0: no SameSite attribute at all
		if !c.Secure && c.SameSite == http.SameSiteNoneMode {
			worse("cookies-samesite-flag-invalid")
		}
		switch {
		case !c.Secure && hsts:
			worse("cookies-without-secure-flag-but-protected-by-hsts")
		case !c.Secure:
			worse("cookies-without-secure-flag")
		}
		if anticsrf && !sameSite {
			worse("cookies-anticsrf-without-samesite-flag")
		}
		switch {
		case session && !c.Secure && hsts:
			worse("cookies-session-without-secure-flag-but-protected-by-hsts")
		case session && !c.Secure:
			worse("cookies-session-without-secure-flag")
		}
		if session && !c.HttpOnly {
			worse("cookies-session-without-httponly-flag")
		}
		if !sameSite {
			missingSameSite = true
		}
	}
	if result == "" {
		result = "cookies-secure-with-httponly-sessions-and-samesite"
		if missingSameSite {
			result = "cookies-secure-with-httponly-sessions"
		}
	}
	pass := result == "cookies-not-found" || result == "cookies-secure-with-httponly-sessions-and-samesite" ||
		result == "cookies-secure-with-httponly-sessions"
	return observatoryTest{result, observatoryCookieModifiers[result], pass}
}

// --- cross-origin-resource-sharing (cors.js)

func observatoryCORS(r scanResponse) observatoryTest {
	acao := firstHeader(r.header, echo.HeaderAccessControlAllowOrigin)
	if acao == "" {
		return observatoryTest{"cross-origin-resource-sharing-not-implemented", 0, true}
	}
	creds := strings.ToLower(strings.TrimSpace(firstHeader(r.header, echo.HeaderAccessControlAllowCredentials)))
	switch {
	case strings.ToLower(strings.TrimSpace(acao)) == "*":
		return observatoryTest{"cross-origin-resource-sharing-implemented-with-public-access", 0, true}
	case acao == observatoryCORSOrigin && creds == "true":
		return observatoryTest{"cross-origin-resource-sharing-implemented-with-universal-access", -50, false}
	}
	return observatoryTest{"cross-origin-resource-sharing-implemented-with-restricted-access", 0, true}
}

// --- redirection (redirection.js, for a host that answers over HTTPS)

func observatoryRedirection(plain *scanResponse) observatoryTest {
	if plain == nil {
		return observatoryTest{"redirection-not-needed-no-http", 0, true}
	}
	if plain.status < 300 || plain.status >= 400 {
		return observatoryTest{"redirection-missing", -20, false}
	}
	if !strings.HasPrefix(plain.header.Get(echo.HeaderLocation), "https://") {
		return observatoryTest{"redirection-not-to-https-on-initial-redirection", -10, false}
	}
	return observatoryTest{"redirection-to-https", 0, true}
}

// --- referrer-policy (referrer-policy.js)

func observatoryReferrer(r scanResponse) observatoryTest {
	values := r.header.Values("Referrer-Policy")
	if len(values) == 0 {
		return observatoryTest{"referrer-policy-not-implemented", 0, true}
	}
	good := []string{"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
	bad := []string{"origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"}
	policy := ""
	for _, p := range strings.Split(strings.Join(values, ", "), ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); slices.Contains(good, p) || slices.Contains(bad, p) {
			policy = p // the last valid one wins
		}
	}
	switch {
	case slices.Contains(good, policy):
		return observatoryTest{"referrer-policy-private", 5, true}
	case slices.Contains(bad, policy):
		return observatoryTest{"referrer-policy-unsafe", -5, false}
	}
	return observatoryTest{"referrer-policy-header-invalid", -5, false}
}

// --- strict-transport-security (strict-transport-security.js)

// observatorySixMonths is the scanner's threshold ("a white lie": not
// 15768000).
const observatorySixMonths = 15552000

var leadingDigits = regexp.MustCompile(`^\d+`)

func observatoryHSTS(s observatoryScan) observatoryTest {
	if s.untrustedCert {
		return observatoryTest{"hsts-invalid-cert", -20, false}
	}
	if s.preloaded {
		return observatoryTest{"hsts-preloaded", 5, true}
	}
	header := firstHeader(s.auto.header, "Strict-Transport-Security")
	if header == "" {
		return observatoryTest{"hsts-not-implemented", -20, false}
	}
	if strings.Contains(header, ",") { // set more than once
		return observatoryTest{"hsts-header-invalid", -20, false}
	}
	maxAge := -1
	for _, p := range strings.Split(header, ";") {
		if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(p)), "max-age="); ok {
			n, err := strconv.Atoi(leadingDigits.FindString(v))
			if err != nil {
				return observatoryTest{"hsts-header-invalid", -20, false}
			}
			maxAge = n
		}
	}
	switch {
	case maxAge < 0:
		return observatoryTest{"hsts-header-invalid", -20, false}
	case maxAge < observatorySixMonths:
		return observatoryTest{"hsts-implemented-max-age-less-than-six-months", -10, false}
	}
	return observatoryTest{"hsts-implemented-max-age-at-least-six-months", 0, true}
}

// --- subresource-integrity (subresource-integrity.js)

func observatorySRI(tb testing.TB, r scanResponse) observatoryTest {
	tb.Helper()
	if !isHTML(r) {
		return observatoryTest{"sri-not-implemented-response-not-html", 0, true}
	}
	if strings.Contains(strings.ToLower(r.body), "<script") {
		tb.Fatalf("observatory: scripts in HTML (subresource integrity) are not modelled")
	}
	return observatoryTest{"sri-not-implemented-but-no-scripts-loaded", 0, true}
}

// --- x-content-type-options (x-content-type-options.js)

func observatoryXCTO(r scanResponse) observatoryTest {
	v := firstHeader(r.header, "X-Content-Type-Options")
	switch {
	case v == "":
		return observatoryTest{"x-content-type-options-not-implemented", -5, false}
	case strings.ToLower(strings.TrimSpace(v)) == "nosniff":
		return observatoryTest{"x-content-type-options-nosniff", 0, true}
	}
	return observatoryTest{"x-content-type-options-header-invalid", -5, false}
}

// --- x-frame-options (x-frame-options.js)

func observatoryXFO(r scanResponse, csp map[string][]string) observatoryTest {
	if _, ok := csp["frame-ancestors"]; ok {
		return observatoryTest{"x-frame-options-implemented-via-csp", 5, true}
	}
	v := strings.ToLower(strings.TrimSpace(firstHeader(r.header, "X-Frame-Options")))
	switch {
	case v == "":
		return observatoryTest{"x-frame-options-not-implemented", -20, false}
	case v == "deny" || v == "sameorigin":
		return observatoryTest{"x-frame-options-sameorigin-or-deny", 0, true}
	case strings.HasPrefix(v, "allow-from"):
		return observatoryTest{"x-frame-options-allow-from-origin", 0, true}
	}
	return observatoryTest{"x-frame-options-header-invalid", -20, false}
}

// --- cross-origin-resource-policy (cross-origin-resource-policy.js)

func observatoryCORP(r scanResponse) observatoryTest {
	switch strings.ToLower(strings.TrimSpace(firstHeader(r.header, "Cross-Origin-Resource-Policy"))) {
	case "":
		return observatoryTest{"corp-not-implemented", 0, true}
	case "same-site":
		return observatoryTest{"corp-implemented-with-same-site", 10, true}
	case "same-origin":
		return observatoryTest{"corp-implemented-with-same-origin", 10, true}
	case "cross-origin":
		return observatoryTest{"corp-implemented-with-cross-origin", 0, true}
	}
	return observatoryTest{"corp-header-invalid", -5, false}
}

// --- cross-origin-opener-policy and cross-origin-embedder-policy (v6)

var sfToken = regexp.MustCompile(`^[A-Za-z*][!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z:/]*$`)

// sfTokenItem returns the bare token of a structured-field item with
// optional parameters ("same-origin; report-to=x"), "" if it is not one.
func sfTokenItem(v string) string {
	item, _, _ := strings.Cut(strings.TrimSpace(v), ";")
	item = strings.TrimSpace(item)
	if !sfToken.MatchString(item) {
		return ""
	}
	return item
}

func observatoryCOOP(r scanResponse) observatoryTest {
	values := r.header.Values("Cross-Origin-Opener-Policy")
	switch {
	case len(values) == 0:
		return observatoryTest{"coop-not-implemented", 0, true}
	case len(values) > 1:
		return observatoryTest{"coop-header-invalid", -5, false}
	}
	switch sfTokenItem(values[0]) {
	case "same-origin", "same-origin-allow-popups", "noopener-allow-popups":
		return observatoryTest{"coop-implemented-with-" + sfTokenItem(values[0]), 10, true}
	case "unsafe-none":
		return observatoryTest{"coop-implemented-with-unsafe-none", 0, true}
	}
	return observatoryTest{"coop-header-invalid", -5, false}
}

func observatoryCOEP(r scanResponse) observatoryTest {
	values := r.header.Values("Cross-Origin-Embedder-Policy")
	switch {
	case len(values) == 0:
		return observatoryTest{"coep-not-implemented", 0, true}
	case len(values) > 1:
		return observatoryTest{"coep-header-invalid", -5, false}
	}
	switch sfTokenItem(values[0]) {
	case "require-corp", "credentialless":
		return observatoryTest{"coep-implemented-with-" + sfTokenItem(values[0]), 10, true}
	case "unsafe-none":
		return observatoryTest{"coep-implemented-with-unsafe-none", 0, true}
	}
	return observatoryTest{"coep-header-invalid", -5, false}
}

// --- the scan of the API

// scanned records a response as the scanner sees it.
func scanned(rec *httptest.ResponseRecorder) scanResponse {
	return scanResponse{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.String()}
}

// scanAPI retrieves what the scanner retrieves for path, over HTTPS. The
// API has no plain-HTTP listener at all, so plainHTTP stays nil. token, if
// set, is sent with the main request (an in-process liberty: the real
// scanner cannot log in).
func scanAPI(t *testing.T, api *testAPI, path, token string) observatoryScan {
	t.Helper()
	https := func(method, path string) *http.Request {
		r := newRequest(method, "https://api.example.test"+path, "")
		r.Header.Set(echo.HeaderAccept, "*/*")
		return r
	}
	main := withToken(https(http.MethodGet, path), token)
	cors := https(http.MethodOptions, path)
	cors.Header.Set(echo.HeaderOrigin, observatoryCORSOrigin)
	cors.Header.Set(echo.HeaderAccessControlRequestMethod, http.MethodGet)
	return observatoryScan{
		auto:   scanned(api.serve(t, main)),
		cors:   scanned(api.serve(t, cors)),
		robots: scanned(api.serve(t, https(http.MethodGet, "/robots.txt"))),
	}
}

// wantTopResults are the results of the header set of API.md: the maximum
// a JSON API can reach without cookies and HSTS preloading.
var wantTopResults = map[string]string{
	"content-security-policy":       "csp-implemented-with-no-unsafe-default-src-none",
	"cookies":                       "cookies-not-found",
	"cross-origin-resource-sharing": "cross-origin-resource-sharing-not-implemented",
	"redirection":                   "redirection-not-needed-no-http",
	"referrer-policy":               "referrer-policy-private",
	"strict-transport-security":     "hsts-implemented-max-age-at-least-six-months",
	"subresource-integrity":         "sri-not-implemented-response-not-html",
	"x-content-type-options":        "x-content-type-options-nosniff",
	"x-frame-options":               "x-frame-options-implemented-via-csp",
	"cross-origin-resource-policy":  "corp-implemented-with-same-origin",
	"cross-origin-opener-policy":    "coop-implemented-with-same-origin",
	"cross-origin-embedder-policy":  "coep-implemented-with-require-corp",
}

// expectGrade fails unless r has score and grade.
func expectGrade(t *testing.T, r observatoryResult, score int, grade, what string) {
	t.Helper()
	if r.score != score || r.grade != grade {
		t.Errorf("%s: %s, want %s %d", what, r, grade, score)
	}
}

func TestObservatoryScore(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		root := scanAPI(t, api, "/", "")

		t.Run("root scores A+ 150", func(t *testing.T) {
			if root.auto.status != http.StatusOK {
				t.Fatalf("GET / answered %d: the scanner needs a 2xx", root.auto.status)
			}
			r := observatoryScore(t, root)
			expectGrade(t, r, 150, "A+", "GET /")
			if r.passed != 12 || len(r.tests) != 12 {
				t.Errorf("%d of %d tests passed, want 12 of 12:\n%s", r.passed, len(r.tests), r)
			}
			for name, want := range wantTopResults {
				if got := r.tests[name].result; got != want {
					t.Errorf("%s: %s, want %s", name, got, want)
				}
			}
		})

		t.Run("the HTML report scores A+ 150 with its own CSP", func(t *testing.T) {
			u := api.signUp(t)
			p := api.createProject(t, u.Token, "Scanned")
			s := scanAPI(t, api, "/v1/projects/"+p.ID+"/report", u.Token)
			r := observatoryScore(t, s)
			expectGrade(t, r, 150, "A+", "report")
			if got := r.tests["subresource-integrity"].result; got != "sri-not-implemented-but-no-scripts-loaded" {
				t.Errorf("report: subresource-integrity %s", got)
			}
		})

		// The scorer is not vacuous: taking a defense away from the real
		// answer costs what the baseline says it costs.
		without := func(names ...string) observatoryScan {
			s := root
			s.auto.header = root.auto.header.Clone()
			for _, n := range names {
				s.auto.header.Del(n)
			}
			return s
		}
		t.Run("without CSP: B 75", func(t *testing.T) {
			r := observatoryScore(t, without("Content-Security-Policy"))
			expectGrade(t, r, 75, "B", "without CSP")
			if got := r.tests["x-frame-options"].result; got != "x-frame-options-sameorigin-or-deny" {
				t.Errorf("without CSP, X-Frame-Options DENY alone: %s", got)
			}
		})
		t.Run("other defenses taken away", func(t *testing.T) {
			for _, c := range []struct {
				name  string
				scan  observatoryScan
				score int
				grade string
			}{
				{"without HSTS", without("Strict-Transport-Security"), 80, "B+"},
				{"without nosniff", without("X-Content-Type-Options"), 145, "A+"},
				{"without COEP", without("Cross-Origin-Embedder-Policy"), 140, "A+"},
				{"without COOP", without("Cross-Origin-Opener-Policy"), 140, "A+"},
				{"without CORP", without("Cross-Origin-Resource-Policy"), 140, "A+"},
				{"without Referrer-Policy", without("Referrer-Policy"), 145, "A+"},
				{"without CSP and X-Frame-Options", without("Content-Security-Policy", "X-Frame-Options"), 55, "C"},
				{"without every header", without(slices.Sorted(maps.Keys(root.auto.header))...), 30, "D"},
			} {
				expectGrade(t, observatoryScore(t, c.scan), c.score, c.grade, c.name)
			}
		})
		t.Run("known bad configurations", func(t *testing.T) {
			// Plain HTTP answering without a redirect (the API has no
			// plain-HTTP listener; this is what one would cost).
			s := root
			s.plainHTTP = &scanResponse{status: http.StatusOK, header: http.Header{}}
			expectGrade(t, observatoryScore(t, s), 80, "B+", "plain HTTP answers")

			// The scanner's Origin echoed with credentials.
			s = root
			s.cors.header = root.cors.header.Clone()
			s.cors.header.Set(echo.HeaderAccessControlAllowOrigin, observatoryCORSOrigin)
			s.cors.header.Set(echo.HeaderAccessControlAllowCredentials, "true")
			expectGrade(t, observatoryScore(t, s), 50, "C", "reflected Origin with credentials")

			// A weak CSP and a short HSTS.
			s = without()
			s.auto.header.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'")
			expectGrade(t, observatoryScore(t, s), 80, "B+", "script-src 'unsafe-inline', no frame-ancestors")
			s = without()
			s.auto.header.Set("Strict-Transport-Security", "max-age=86400")
			expectGrade(t, observatoryScore(t, s), 140, "A+", "HSTS for a day")
			s = without()
			s.auto.header.Add("Strict-Transport-Security", "max-age=63072000")
			expectGrade(t, observatoryScore(t, s), 80, "B+", "HSTS sent twice")
			s = without()
			s.auto.header.Add("Cross-Origin-Embedder-Policy", "require-corp")
			expectGrade(t, observatoryScore(t, s), 135, "A+", "COEP sent twice")

			// A compliant cookie earns its +5; a session cookie without
			// Secure costs 10 under HSTS and 40 without it.
			s = without()
			s.auto.header.Add("Set-Cookie", "__Host-sid=x; Path=/; Secure; HttpOnly; SameSite=Strict")
			expectGrade(t, observatoryScore(t, s), 155, "A+", "compliant cookie")
			s = without()
			s.auto.header.Add("Set-Cookie", "sessionid=x; Path=/; HttpOnly; SameSite=Lax")
			expectGrade(t, observatoryScore(t, s), 140, "A+", "session cookie without Secure, under HSTS")
			s = without("Strict-Transport-Security")
			s.robots.header = http.Header{"Set-Cookie": {"sessionid=x; Path=/; HttpOnly; SameSite=Lax"}}
			expectGrade(t, observatoryScore(t, s), 40, "D+", "session cookie without Secure from /robots.txt, no HSTS")
		})
	})
}

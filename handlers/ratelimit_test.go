package handlers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
)

// The rate-limit tests run the API with tiny rates over hour-long periods
// (so that nothing refills while a test runs) and the in-memory limiter.
// Every answer that goes through testAPI.serve also has its RateLimit
// fields checked (checkRateLimitFields).

// The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10).
const (
	headerRateLimit       = "RateLimit"
	headerRateLimitPolicy = "RateLimit-Policy"
)

// legacyRateLimitHeaders are the fields of drafts up to 06 and the
// X- variants: never sent.
var legacyRateLimitHeaders = []string{
	"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Policy",
}

// rlItem is one member of a RateLimit or RateLimit-Policy field: the
// policy name (an sf-string) and its parameters.
type rlItem struct {
	name   string
	params map[string]string // raw bare items
}

// int returns the non-negative integer parameter key, or -1 when missing.
func (it rlItem) int(key string) int64 {
	v, ok := it.params[key]
	if !ok {
		return -1
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// parseSFList parses a Structured Field List (RFC 9651 §4.2.1) whose
// members are sf-strings with parameters, the shape the draft gives both
// fields. It is strict: anything outside the grammar is an error.
func parseSFList(s string) ([]rlItem, error) {
	var out []rlItem
	i := 0
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	sp := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	parseString := func() (string, error) {
		if i >= len(s) || s[i] != '"' {
			return "", fmt.Errorf("at %d: want an sf-string", i)
		}
		i++
		var b strings.Builder
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
					return "", fmt.Errorf("at %d: bad escape", i)
				}
				b.WriteByte(s[i+1])
				i += 2
			case c == '"':
				i++
				return b.String(), nil
			case c < 0x20 || c > 0x7e:
				return "", fmt.Errorf("at %d: character %q not allowed in an sf-string", i, c)
			default:
				b.WriteByte(c)
				i++
			}
		}
		return "", fmt.Errorf("unterminated sf-string")
	}
	parseBare := func() (string, error) {
		start := i
		switch {
		case i < len(s) && s[i] == '"':
			if _, err := parseString(); err != nil {
				return "", err
			}
		case i < len(s) && (s[i] == '-' || '0' <= s[i] && s[i] <= '9'):
			if s[i] == '-' {
				i++
			}
			d := i
			for i < len(s) && '0' <= s[i] && s[i] <= '9' {
				i++
			}
			if i == d || i-d > 15 || (i < len(s) && s[i] == '.') {
				return "", fmt.Errorf("at %d: want an sf-integer", start)
			}
		case i < len(s) && s[i] == ':':
			i++
			for i < len(s) && s[i] != ':' {
				if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", rune(s[i])) {
					return "", fmt.Errorf("at %d: bad byte sequence", i)
				}
				i++
			}
			if i >= len(s) {
				return "", fmt.Errorf("unterminated byte sequence")
			}
			i++
		default:
			return "", fmt.Errorf("at %d: unsupported bare item", start)
		}
		return s[start:i], nil
	}
	for {
		name, err := parseString()
		if err != nil {
			return nil, err
		}
		it := rlItem{name: name, params: map[string]string{}}
		for i < len(s) && s[i] == ';' {
			i++
			sp()
			start := i
			if i >= len(s) || !('a' <= s[i] && s[i] <= 'z' || s[i] == '*') {
				return nil, fmt.Errorf("at %d: want a parameter key", i)
			}
			for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || '0' <= s[i] && s[i] <= '9' || strings.IndexByte("_-.*", s[i]) >= 0) {
				i++
			}
			key := s[start:i]
			if i >= len(s) || s[i] != '=' {
				return nil, fmt.Errorf("parameter %q has no value", key)
			}
			i++
			v, err := parseBare()
			if err != nil {
				return nil, err
			}
			if _, dup := it.params[key]; dup {
				return nil, fmt.Errorf("parameter %q repeated", key)
			}
			it.params[key] = v
		}
		out = append(out, it)
		ows()
		if i == len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, fmt.Errorf("at %d: want ',' between members", i)
		}
		i++
		ows()
		if i == len(s) {
			return nil, fmt.Errorf("trailing comma")
		}
	}
}

// rateLimitItems parses field of h under the draft's rules: a non-empty
// list of uniquely named policies, each with exactly the parameters the
// field defines, the integer ones non-negative.
func rateLimitItems(h http.Header, field string) ([]rlItem, error) {
	values := h.Values(field)
	if len(values) != 1 {
		return nil, fmt.Errorf("%s: %d field lines, want 1", field, len(values))
	}
	items, err := parseSFList(values[0])
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", field, values[0], err)
	}
	required, optional := []string{"q"}, []string{"w", "qu", "pk"}
	if field == headerRateLimit {
		required, optional = []string{"r", "t"}, []string{"pk"}
	}
	seen := map[string]bool{}
	for _, it := range items {
		if it.name == "" || seen[it.name] {
			return nil, fmt.Errorf("%s %q: empty or repeated policy name %q", field, values[0], it.name)
		}
		seen[it.name] = true
		for _, k := range required {
			if _, ok := it.params[k]; !ok {
				return nil, fmt.Errorf("%s %q: policy %q lacks %s", field, values[0], it.name, k)
			}
		}
		for k, v := range it.params {
			switch {
			case slices.Contains([]string{"q", "w", "r", "t"}, k) && slices.Contains(append(required, optional...), k):
				if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
					return nil, fmt.Errorf("%s %q: %s=%s is not a non-negative integer", field, values[0], k, v)
				}
			case k == "qu" && slices.Contains(optional, k):
				if !slices.Contains([]string{`"requests"`, `"content-bytes"`, `"concurrent-requests"`}, v) {
					return nil, fmt.Errorf("%s %q: qu=%s", field, values[0], v)
				}
			case k == "pk" && slices.Contains(optional, k):
				if !strings.HasPrefix(v, ":") {
					return nil, fmt.Errorf("%s %q: pk must be a byte sequence", field, values[0])
				}
			default:
				return nil, fmt.Errorf("%s %q: unexpected parameter %s", field, values[0], k)
			}
		}
		if field == headerRateLimitPolicy && it.int("q") == 0 {
			return nil, fmt.Errorf("%s %q: policy %q has a zero quota", field, values[0], it.name)
		}
	}
	return items, nil
}

func itemNames(items []rlItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.name)
	}
	return out
}

func itemNamed(items []rlItem, name string) (rlItem, bool) {
	for _, it := range items {
		if it.name == name {
			return it, true
		}
	}
	return rlItem{}, false
}

// checkRateLimitFields holds the headers of an answer to the draft: no
// legacy fields; RateLimit-Policy and RateLimit, when sent (they always
// are, the per-IP limit applies to every request), are one field line each
// that parses, they name the same policies, and "ip" is among them.
func checkRateLimitFields(tb testing.TB, where string, h http.Header) {
	tb.Helper()
	for _, name := range legacyRateLimitHeaders {
		if v := h.Values(name); len(v) > 0 {
			tb.Errorf("%s: legacy field %s: %q", where, name, v)
		}
	}
	if h.Get(headerRateLimitPolicy) == "" && h.Get(headerRateLimit) == "" {
		tb.Errorf("%s: no RateLimit-Policy / RateLimit fields", where)
		return
	}
	policies, err := rateLimitItems(h, headerRateLimitPolicy)
	if err != nil {
		tb.Errorf("%s: %v", where, err)
		return
	}
	states, err := rateLimitItems(h, headerRateLimit)
	if err != nil {
		tb.Errorf("%s: %v", where, err)
		return
	}
	if !slices.Equal(itemNames(policies), itemNames(states)) {
		tb.Errorf("%s: RateLimit-Policy names %v, RateLimit names %v", where, itemNames(policies), itemNames(states))
	}
	if !slices.Contains(itemNames(policies), "ip") {
		tb.Errorf("%s: the per-IP policy is not reported: %q", where, h.Get(headerRateLimitPolicy))
	}
	for _, st := range states {
		if p, ok := itemNamed(policies, st.name); ok && st.int("r") > p.int("q") {
			tb.Errorf("%s: policy %q has r=%d above its quota q=%d", where, st.name, st.int("r"), p.int("q"))
		}
	}
}

// checkSamePolicyNames checks that two answers report the same policies,
// with the same quotas and windows: only the counters (r, t) may differ.
func checkSamePolicyNames(tb testing.TB, a, b http.Header) {
	tb.Helper()
	for _, field := range []string{headerRateLimitPolicy, headerRateLimit} {
		ia, errA := rateLimitItems(a, field)
		ib, errB := rateLimitItems(b, field)
		if errA != nil || errB != nil {
			tb.Errorf("%s: %v / %v", field, errA, errB)
			continue
		}
		if !slices.Equal(itemNames(ia), itemNames(ib)) {
			tb.Errorf("%s names differ: %v and %v", field, itemNames(ia), itemNames(ib))
		}
	}
	if pa, pb := a.Get(headerRateLimitPolicy), b.Get(headerRateLimitPolicy); pa != pb {
		tb.Errorf("RateLimit-Policy differs: %q and %q", pa, pb)
	}
}

// checkRateLimited checks a rate-limit refusal: 429, the problem type
// quota-exceeded naming exactly the policy, Retry-After in whole seconds
// and no earlier than the t of that policy, whose r is 0, and the policy
// in RateLimit-Policy with quota q and window w (seconds). It returns the
// Retry-After seconds.
func checkRateLimited(tb testing.TB, rec *httptest.ResponseRecorder, policy string, q, w int64) int64 {
	tb.Helper()
	expectStatus(tb, rec, http.StatusTooManyRequests, "over the "+policy+" limit")
	p := problemOf(tb, rec)
	if p.Type != problemTypeRateLimited {
		tb.Errorf("problem type %q, want %q", p.Type, problemTypeRateLimited)
	}
	if !slices.Equal(p.ViolatedPolicies, []string{policy}) {
		tb.Errorf("violated-policies %v, want [%s]", p.ViolatedPolicies, policy)
	}
	ra := rec.Header().Get(echo.HeaderRetryAfter)
	retry, err := strconv.ParseInt(ra, 10, 64)
	if err != nil || retry < 1 {
		tb.Fatalf("Retry-After %q is not a positive number of seconds", ra)
	}
	states, err := rateLimitItems(rec.Header(), headerRateLimit)
	if err != nil {
		tb.Fatal(err)
	}
	st, ok := itemNamed(states, policy)
	if !ok {
		tb.Fatalf("RateLimit %q does not report policy %q", rec.Header().Get(headerRateLimit), policy)
	}
	if st.int("r") != 0 {
		tb.Errorf("RateLimit %q: r=%d for the exhausted policy, want 0", rec.Header().Get(headerRateLimit), st.int("r"))
	}
	if retry < st.int("t") {
		tb.Errorf("Retry-After %d is earlier than t=%d of RateLimit %q", retry, st.int("t"), rec.Header().Get(headerRateLimit))
	}
	policies, err := rateLimitItems(rec.Header(), headerRateLimitPolicy)
	if err != nil {
		tb.Fatal(err)
	}
	pol, ok := itemNamed(policies, policy)
	if !ok || pol.int("q") != q || pol.int("w") != w {
		tb.Errorf("RateLimit-Policy %q, want %q;q=%d;w=%d in it", rec.Header().Get(headerRateLimitPolicy), policy, q, w)
	}
	return retry
}

// withLimits configures the API with generousLimits changed by change.
func withLimits(change func(l *middleware.Limits)) func(*Deps) {
	return func(d *Deps) {
		l := generousLimits()
		change(&l)
		d.Limits = l
	}
}

// tiny is a rate-limit policy of three requests an hour: nothing refills
// while a test runs.
func tiny(name string) middleware.Limit {
	return middleware.Limit{Name: name, Rate: 3, Period: time.Hour}
}

// from sends a request from the client address peer (host:port), with
// forwarding headers when given.
func (a *testAPI) from(tb testing.TB, peer, method, target, token, body string, forwarded ...string) *httptest.ResponseRecorder {
	tb.Helper()
	req := withToken(newRequest(method, target, body), token)
	req.RemoteAddr = peer
	for i := 0; i+1 < len(forwarded); i += 2 {
		req.Header.Set(forwarded[i], forwarded[i+1])
	}
	return a.serve(tb, req)
}

// remaining returns the r of policy in the answer's RateLimit field.
func remaining(tb testing.TB, rec *httptest.ResponseRecorder, policy string) int64 {
	tb.Helper()
	states, err := rateLimitItems(rec.Header(), headerRateLimit)
	if err != nil {
		tb.Fatal(err)
	}
	st, ok := itemNamed(states, policy)
	if !ok {
		tb.Fatalf("RateLimit %q does not report policy %q", rec.Header().Get(headerRateLimit), policy)
	}
	return st.int("r")
}

func TestRateLimitHeaderParser(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		`"ip";q=600;w=60`:                          headerRateLimitPolicy,
		`"ip";q=600;w=60, "user";q=1200;w=60`:      headerRateLimitPolicy,
		`"ip";q=600;w=60,"user";q=1;qu="requests"`: headerRateLimitPolicy,
		`"ip";r=0;t=17`:                            headerRateLimit,
		`"ip";r=599;t=1, "user";r=1199;t=1`:        headerRateLimit,
	}
	for v, field := range good {
		h := http.Header{}
		h.Set(field, v)
		if _, err := rateLimitItems(h, field); err != nil {
			t.Errorf("%s: %q refused: %v", field, v, err)
		}
	}
	bad := map[string]string{
		`ip;q=600;w=60`:               headerRateLimitPolicy, // token, not a string
		`"ip";q=600.0;w=60`:           headerRateLimitPolicy, // decimal
		`"ip";q=-1;w=60`:              headerRateLimitPolicy,
		`"ip";w=60`:                   headerRateLimitPolicy, // no quota
		`"ip";q=6, "ip";q=6`:          headerRateLimitPolicy,
		`"ip";q=6,`:                   headerRateLimitPolicy,
		`"ip";q=6;limit=6`:            headerRateLimitPolicy,
		`"ip";r=0`:                    headerRateLimit, // no t
		`"ip";r=1;t=-3`:               headerRateLimit,
		`"ip";r=1;t=3;q=4`:            headerRateLimit,
		`"i"p";r=1;t=3`:               headerRateLimit,
		`limit=100, remaining=50`:     headerRateLimit,
		`"ip";r=1;t=3 "user";r=1;t=3`: headerRateLimit,
	}
	for v, field := range bad {
		h := http.Header{}
		h.Set(field, v)
		if _, err := rateLimitItems(h, field); err == nil {
			t.Errorf("%s: %q accepted", field, v)
		}
	}
}

func TestRateLimitPerIP(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.IP = tiny("ip") }), func(t *testing.T, api *testAPI) {
		const client, other = "198.51.100.7:50000", "198.51.100.8:50000"
		for i := range 3 {
			rec := api.from(t, client, http.MethodGet, "/", "", "")
			expectStatus(t, rec, http.StatusOK, "request within the limit")
			if r := remaining(t, rec, "ip"); r != int64(2-i) {
				t.Errorf("request %d: r=%d, want %d", i+1, r, 2-i)
			}
			if got := rec.Header().Get(headerRateLimitPolicy); got != `"ip";q=3;w=3600` {
				t.Errorf("RateLimit-Policy %q, want %q", got, `"ip";q=3;w=3600`)
			}
		}
		checkRateLimited(t, api.from(t, client, http.MethodGet, "/", "", ""), "ip", 3, 3600)
		// Every request counts against the address, whatever it asks for.
		checkRateLimited(t, api.from(t, client, http.MethodGet, "/nothing-here", "", ""), "ip", 3, 3600)
		checkRateLimited(t, api.from(t, client, http.MethodPost, "/v1/auth/login", "", loginBody("a@example.com", "whatever-password")), "ip", 3, 3600)

		// No proxy is trusted: forwarding headers do not make a new client.
		for _, fwd := range [][]string{
			{echo.HeaderXForwardedFor, "203.0.113.1"},
			{echo.HeaderXForwardedFor, "203.0.113.2, 10.0.0.1"},
			{echo.HeaderXForwardedFor, "::1"},
			{echo.HeaderXRealIP, "203.0.113.3"},
			{"Forwarded", "for=203.0.113.4"},
		} {
			checkRateLimited(t, api.from(t, client, http.MethodGet, "/", "", "", fwd...), "ip", 3, 3600)
		}
		// Another address has its own budget.
		expectStatus(t, api.from(t, other, http.MethodGet, "/", "", ""), http.StatusOK, "another client")
	})
}

func TestRateLimitPerIPBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	configure := func(d *Deps) {
		withTrustedProxies("10.0.0.0/8")(d)
		withLimits(func(l *middleware.Limits) { l.IP = tiny("ip") })(d)
	}
	eachAPIWith(t, configure, func(t *testing.T, api *testAPI) {
		const proxy = "10.1.2.3:40000"
		// The client's own entries left of the one the proxy appended
		// change nothing: the budget is that of 198.51.100.1.
		for i, xff := range []string{"198.51.100.1", "203.0.113.1, 198.51.100.1", "203.0.113.2, 198.51.100.1"} {
			expectStatus(t, api.from(t, proxy, http.MethodGet, "/", "", "", echo.HeaderXForwardedFor, xff), http.StatusOK, fmt.Sprintf("request %d", i+1))
		}
		for _, xff := range []string{"198.51.100.1", "203.0.113.9, 198.51.100.1", "10.9.9.9, 198.51.100.1"} {
			checkRateLimited(t, api.from(t, proxy, http.MethodGet, "/", "", "", echo.HeaderXForwardedFor, xff), "ip", 3, 3600)
		}
		// Other clients behind the same proxy are not affected.
		expectStatus(t, api.from(t, proxy, http.MethodGet, "/", "", "", echo.HeaderXForwardedFor, "198.51.100.2"), http.StatusOK, "another client behind the proxy")
	})
}

func TestRateLimitPerUser(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.User = tiny("user") }), func(t *testing.T, api *testAPI) {
		alice, bob := api.signUp(t), api.signUp(t)
		// Three addresses, one token: one budget.
		for i, peer := range []string{"198.51.100.1:1000", "198.51.100.2:1000", "[2001:db8::3]:1000"} {
			rec := api.from(t, peer, http.MethodGet, "/v1/me", alice.Token, "")
			expectStatus(t, rec, http.StatusOK, "within the user's limit")
			if r := remaining(t, rec, "user"); r != int64(2-i) {
				t.Errorf("request %d: user r=%d, want %d", i+1, r, 2-i)
			}
		}
		rec := api.from(t, "198.51.100.4:1000", http.MethodGet, "/v1/projects", alice.Token, "")
		checkRateLimited(t, rec, "user", 3, 3600)
		// A second session of the same user shares the budget.
		second := api.login(t, alice.Email, alice.Password)
		checkRateLimited(t, api.from(t, "198.51.100.5:1000", http.MethodGet, "/v1/me", second, ""), "user", 3, 3600)
		// Another user has their own.
		expectStatus(t, api.from(t, "198.51.100.1:1000", http.MethodGet, "/v1/me", bob.Token, ""), http.StatusOK, "another user")
		// Public routes are not counted per user.
		expectStatus(t, api.from(t, "198.51.100.1:1000", http.MethodGet, "/", alice.Token, ""), http.StatusOK, "public route")
	})
}

func TestRateLimitPerAPIKey(t *testing.T) {
	t.Parallel()
	dbtestEach(t, func(t *testing.T, api *testAPI, newAPI func(func(*Deps)) *testAPI) {
		u := api.signUp(t)
		limited := api.createKey(t, u.Token, `{"name":"two a minute","scopes":["projects:read"],"rate_limit":2}`)
		if limited.RateLimit != 2 {
			t.Errorf("rate_limit %d, want 2", limited.RateLimit)
		}
		free := api.createKey(t, u.Token, `{"name":"default","scopes":["projects:read"]}`)
		if want := generousLimits().APIKeyDefault; free.RateLimit != want {
			t.Errorf("a key without rate_limit has %d, want the default %d", free.RateLimit, want)
		}

		t.Run("the key's own rate", func(t *testing.T) {
			for i := range 2 {
				rec := api.call(t, http.MethodGet, "/v1/projects", limited.Key, "")
				expectStatus(t, rec, http.StatusOK, fmt.Sprintf("key request %d", i+1))
				policies, _ := rateLimitItems(rec.Header(), headerRateLimitPolicy)
				if !slices.Equal(itemNames(policies), []string{"ip", "user", "api-key"}) {
					t.Errorf("policies %v, want ip, user, api-key", itemNames(policies))
				}
			}
			checkRateLimited(t, api.call(t, http.MethodGet, "/v1/projects", limited.Key, ""), "api-key", 2, 60)
			// Per key: the user's session and other key are not affected.
			expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", free.Key, ""), http.StatusOK, "the user's other key")
			expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", u.Token, ""), http.StatusOK, "the user's session")
		})

		t.Run("capped by configuration", func(t *testing.T) {
			// An instance configured with a lower maximum than the key was
			// made with holds the key to that maximum.
			capped := newAPI(withLimits(func(l *middleware.Limits) { l.APIKeyMax = 2 }))
			for i := range 2 {
				expectStatus(t, capped.call(t, http.MethodGet, "/v1/projects", free.Key, ""), http.StatusOK, fmt.Sprintf("key request %d", i+1))
			}
			checkRateLimited(t, capped.call(t, http.MethodGet, "/v1/projects", free.Key, ""), "api-key", 2, 60)
		})
	})
}

// dbtestEach is eachAPI that also hands fn a way to build more API
// instances over the same database (other configuration, same data).
func dbtestEach(t *testing.T, fn func(t *testing.T, api *testAPI, newAPI func(func(*Deps)) *testAPI)) {
	t.Helper()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		fn(t, api, func(configure func(*Deps)) *testAPI { return newTestAPIWith(t, api.db, configure) })
	})
}

func TestRateLimitPerUserAppliesToKeys(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.User = tiny("user") }), func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		key := api.createKey(t, u.Token, `{"name":"fast key","scopes":["projects:read"],"rate_limit":1000}`)        // user request 1
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", key.Key, ""), http.StatusOK, "key request 1")   // 2
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects", u.Token, ""), http.StatusOK, "session request") // 3
		checkRateLimited(t, api.call(t, http.MethodGet, "/v1/projects", key.Key, ""), "user", 3, 3600)
		checkRateLimited(t, api.call(t, http.MethodGet, "/v1/me", u.Token, ""), "user", 3, 3600)
	})
}

func TestRateLimitLoginPerIP(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.LoginIP = tiny("login-ip") }), func(t *testing.T, api *testAPI) {
		u := api.signUp(t) // from the default address
		const client = "198.51.100.20:1000"
		for i := range 3 {
			rec := api.from(t, client, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, fmt.Sprintf("wrong-password-%d", i)))
			expectStatus(t, rec, http.StatusUnauthorized, "wrong password within the limit")
		}
		// Now even the right password is refused from that address ...
		checkRateLimited(t, api.from(t, client, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, u.Password)), "login-ip", 3, 3600)
		checkRateLimited(t, api.from(t, client, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, u.Password),
			echo.HeaderXForwardedFor, "203.0.113.50"), "login-ip", 3, 3600)
		// ... while other routes from it and logins from elsewhere work.
		expectStatus(t, api.from(t, client, http.MethodGet, "/v1/me", u.Token, ""), http.StatusOK, "another route from the address")
		api.login(t, u.Email, u.Password)
	})
}

func TestRateLimitRegistrationPerIP(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withLimits(func(l *middleware.Limits) { l.RegisterIP = tiny("register-ip") }), func(t *testing.T, api *testAPI) {
		const client, other = "198.51.100.30:1000", "198.51.100.31:1000"
		for range 3 {
			_, _, body := api.registerBody()
			expectStatus(t, api.from(t, client, http.MethodPost, "/v1/auth/register", "", body), http.StatusCreated, "registration within the limit")
		}
		email, password, body := api.registerBody()
		checkRateLimited(t, api.from(t, client, http.MethodPost, "/v1/auth/register", "", body), "register-ip", 3, 3600)
		checkRateLimited(t, api.from(t, client, http.MethodPost, "/v1/auth/register", "", body, echo.HeaderXForwardedFor, "203.0.113.60"), "register-ip", 3, 3600)
		// The refused registration made no account: the same one succeeds
		// from elsewhere, and only then can it log in.
		rec := api.from(t, other, http.MethodPost, "/v1/auth/login", "", loginBody(email, password))
		expectStatus(t, rec, http.StatusUnauthorized, "login to the refused registration")
		expectStatus(t, api.from(t, other, http.MethodPost, "/v1/auth/register", "", body), http.StatusCreated, "registration from another address")
		api.login(t, email, password)
	})
}

// loginLockout configures three failures per account in the default
// window (15 minutes).
func loginLockout(l *middleware.Limits) { l.LoginFailures = 3 }

func TestLoginLockout(t *testing.T) {
	t.Parallel()
	window := int64(middleware.DefaultLimits().LoginWindow / time.Second)
	eachAPIWith(t, withLimits(loginLockout), func(t *testing.T, api *testAPI) {
		admin := api.newAdmin(t)
		// failFrom fails a login for email from three different addresses.
		failFrom := func(t *testing.T, email string, n int) {
			t.Helper()
			for i := range n {
				peer := fmt.Sprintf("203.0.113.%d:1000", 10+i)
				rec := api.from(t, peer, http.MethodPost, "/v1/auth/login", "", loginBody(email, fmt.Sprintf("wrong-password-%d", i)))
				expectStatus(t, rec, http.StatusUnauthorized, fmt.Sprintf("failure %d", i+1))
			}
		}
		loginFrom := func(t *testing.T, peer, email, password string) *httptest.ResponseRecorder {
			t.Helper()
			return api.from(t, peer, http.MethodPost, "/v1/auth/login", "", loginBody(email, password))
		}

		t.Run("429 after the failures, whatever the password and address", func(t *testing.T) {
			u := api.signUp(t)
			failFrom(t, u.Email, 3)
			before := api.hasher.Verifications()
			for _, peer := range []string{"198.51.100.40:1000", "[2001:db8::40]:1000"} {
				retry := checkRateLimited(t, loginFrom(t, peer, u.Email, u.Password), "login-account", 3, window)
				// Retry-After is the rest of the window that began with the
				// first failure: close to the whole window here.
				if retry > window || retry < window-60 {
					t.Errorf("Retry-After %d, want about the window (%d s)", retry, window)
				}
			}
			checkRateLimited(t, loginFrom(t, "198.51.100.41:1000", u.Email, "wrong-again-password"), "login-account", 3, window)
			// The e-mail is matched in its normalised form.
			checkRateLimited(t, loginFrom(t, "198.51.100.42:1000", strings.ToUpper(u.Email), u.Password), "login-account", 3, window)
			if n := api.hasher.Verifications() - before; n != 0 {
				t.Errorf("%d passwords checked for a locked-out account, want none", n)
			}
			// Sessions already open are not affected.
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", u.Token, ""), http.StatusOK, "existing session")
		})

		t.Run("unknown e-mail addresses are throttled alike", func(t *testing.T) {
			u := api.signUp(t)
			ghost := fmt.Sprintf("nobody-%d@example.com", api.next())
			failFrom(t, u.Email, 3)
			failFrom(t, ghost, 3)
			known := loginFrom(t, "198.51.100.43:1000", u.Email, u.Password)
			unknown := loginFrom(t, "198.51.100.43:1000", ghost, u.Password)
			checkRateLimited(t, known, "login-account", 3, window)
			checkRateLimited(t, unknown, "login-account", 3, window)
			pr, pu := problemOf(t, known), problemOf(t, unknown)
			if pr.Type != pu.Type || pr.Title != pu.Title || !slices.Equal(pr.ViolatedPolicies, pu.ViolatedPolicies) {
				t.Errorf("the refusals differ:\n%s\n%s", known.Body.String(), unknown.Body.String())
			}
			checkSamePolicyNames(t, known.Header(), unknown.Header())
			if a, b := headerKeys(known.Header()), headerKeys(unknown.Header()); !slices.Equal(a, b) {
				t.Errorf("header names differ: %v and %v", a, b)
			}
		})

		t.Run("parallel guesses get no more password checks than the limit", func(t *testing.T) {
			u := api.signUp(t)
			before := api.hasher.Verifications()
			const guesses = 20
			codes := make([]int, guesses)
			var wg sync.WaitGroup
			for i := range guesses {
				wg.Go(func() {
					peer := fmt.Sprintf("203.0.113.%d:1000", 100+i)
					rec := api.from(t, peer, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, fmt.Sprintf("parallel-guess-%d", i)))
					codes[i] = rec.Code
				})
			}
			wg.Wait()
			count := map[int]int{}
			for _, c := range codes {
				count[c]++
			}
			if count[http.StatusUnauthorized] != 3 || count[http.StatusTooManyRequests] != guesses-3 {
				t.Errorf("answers to %d parallel guesses: %v, want 3 × 401 and the rest 429", guesses, count)
			}
			if n := api.hasher.Verifications() - before; n != 3 {
				t.Errorf("%d passwords checked for %d parallel guesses, want 3 (the limit)", n, guesses)
			}
		})

		t.Run("a success before the limit resets the count", func(t *testing.T) {
			u := api.signUp(t)
			failFrom(t, u.Email, 2)
			expectStatus(t, loginFrom(t, "198.51.100.44:1000", u.Email, u.Password), http.StatusOK, "login after two failures")
			failFrom(t, u.Email, 2)
			// Four failures in all, but only two since the success.
			expectStatus(t, loginFrom(t, "198.51.100.44:1000", u.Email, u.Password), http.StatusOK, "login after two more failures")
		})

		t.Run("an admin unlock clears the count", func(t *testing.T) {
			u := api.signUp(t)
			failFrom(t, u.Email, 3)
			checkRateLimited(t, loginFrom(t, "198.51.100.45:1000", u.Email, u.Password), "login-account", 3, window)
			expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+u.ID+"/unlock", admin.Token, ""), http.StatusNoContent, "unlock")
			expectStatus(t, loginFrom(t, "198.51.100.45:1000", u.Email, u.Password), http.StatusOK, "login after the unlock")
		})
	})
}

// headerKeys lists the names of h, sorted.
func headerKeys(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

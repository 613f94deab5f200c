package handlers

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// The client IP the API acts on (rate limits, audit, logs) is observable in
// the request log line's remote_ip. These tests prove that forwarding
// headers are believed only from the configured proxy ranges, and only
// X-Forwarded-For, read from the right.

// withTrustedProxies configures the trusted proxy ranges.
func withTrustedProxies(cidrs ...string) func(*Deps) {
	return func(d *Deps) {
		for _, c := range cidrs {
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				panic(err)
			}
			d.TrustedProxies = append(d.TrustedProxies, n)
		}
	}
}

// clientIPCase is a request from the TCP peer with forwarding headers and
// the client IP the API must settle on.
type clientIPCase struct {
	name   string
	peer   string   // req.RemoteAddr
	xff    []string // X-Forwarded-For header values, in order
	realIP string   // X-Real-IP
	want   string
}

// remoteIP sends GET /healthz as c describes and returns the remote_ip of
// its request log line.
func remoteIP(t *testing.T, api *testAPI, c clientIPCase) string {
	t.Helper()
	req := newRequest(http.MethodGet, "/healthz", "")
	req.RemoteAddr = c.peer
	for _, v := range c.xff {
		req.Header.Add(echo.HeaderXForwardedFor, v)
	}
	if c.realIP != "" {
		req.Header.Set(echo.HeaderXRealIP, c.realIP)
	}
	rec := api.serve(t, req)
	expectStatus(t, rec, http.StatusOK, c.name)
	var ips []string
	for _, entry := range logEntries(t, api.logs, rec.Header().Get(echo.HeaderXRequestID)) {
		if entry["msg"] == "request" {
			ips = append(ips, stringOf(entry["remote_ip"]))
		}
	}
	if len(ips) != 1 {
		t.Fatalf("%s: %d request log lines, want 1", c.name, len(ips))
	}
	return ips[0]
}

func runClientIPCases(t *testing.T, api *testAPI, cases []clientIPCase) {
	t.Helper()
	for _, c := range cases {
		if got := remoteIP(t, api, c); got != c.want {
			t.Errorf("%s: peer %s, X-Forwarded-For %q, X-Real-IP %q: client IP %q, want %q", c.name, c.peer, c.xff, c.realIP, got, c.want)
		}
	}
}

func TestClientIPWithoutTrustedProxies(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		// Whoever the peer is – public, private, loopback, a would-be
		// proxy – its forwarding headers are ignored.
		var cases []clientIPCase
		for _, peer := range []struct{ addr, ip string }{
			{"192.0.2.10:40000", "192.0.2.10"},
			{"10.1.2.3:40000", "10.1.2.3"},
			{"127.0.0.1:40000", "127.0.0.1"},
			{"192.168.1.20:40000", "192.168.1.20"},
			{"172.16.0.5:40000", "172.16.0.5"},
			{"169.254.10.10:40000", "169.254.10.10"},
			{"[::1]:40000", "::1"},
			{"[fd00::7]:40000", "fd00::7"},
			{"[2001:db8::1]:40000", "2001:db8::1"},
		} {
			cases = append(cases,
				clientIPCase{name: "no headers", peer: peer.addr, want: peer.ip},
				clientIPCase{name: "X-Forwarded-For", peer: peer.addr, xff: []string{"203.0.113.9"}, want: peer.ip},
				clientIPCase{name: "X-Forwarded-For chain", peer: peer.addr, xff: []string{"203.0.113.9, 198.51.100.1"}, want: peer.ip},
				clientIPCase{name: "X-Real-IP", peer: peer.addr, realIP: "203.0.113.7", want: peer.ip},
				clientIPCase{name: "both", peer: peer.addr, xff: []string{"203.0.113.9"}, realIP: "203.0.113.7", want: peer.ip},
			)
		}
		runClientIPCases(t, api, cases)
	})
}

func TestClientIPWithTrustedProxies(t *testing.T) {
	t.Parallel()
	eachAPIWith(t, withTrustedProxies("10.0.0.0/8"), func(t *testing.T, api *testAPI) {
		const proxy = "10.1.2.3:40000"
		t.Run("a trusted proxy is believed", func(t *testing.T) {
			runClientIPCases(t, api, []clientIPCase{
				{name: "one hop", peer: proxy, xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
				{name: "through another trusted proxy", peer: proxy, xff: []string{"198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
				{name: "split over two headers", peer: proxy, xff: []string{"198.51.100.1", "10.9.9.9"}, want: "198.51.100.1"},
				{name: "IPv6 client", peer: proxy, xff: []string{"2001:db8::42"}, want: "2001:db8::42"},
				{name: "no header", peer: proxy, want: "10.1.2.3"},
			})
		})
		t.Run("the rightmost untrusted address is the client", func(t *testing.T) {
			runClientIPCases(t, api, []clientIPCase{
				// The client wrote the leftmost entry itself: it is not believed.
				{name: "spoofed entry before the real one", peer: proxy, xff: []string{"203.0.113.66, 198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
				{name: "spoofed loopback before the real one", peer: proxy, xff: []string{"127.0.0.1, 198.51.100.1"}, want: "198.51.100.1"},
				{name: "spoofed trusted-range entry", peer: proxy, xff: []string{"10.0.0.1, 198.51.100.1"}, want: "198.51.100.1"},
				// Garbage left of the client is the client's own writing:
				// reading stops at the client before it gets there.
				{name: "garbage before the client", peer: proxy, xff: []string{"garbage, 198.51.100.1"}, want: "198.51.100.1"},
			})
		})
		t.Run("an untrusted peer is not believed", func(t *testing.T) {
			runClientIPCases(t, api, []clientIPCase{
				{name: "public peer", peer: "192.0.2.5:40000", xff: []string{"203.0.113.9"}, want: "192.0.2.5"},
				{name: "public peer naming a trusted proxy", peer: "192.0.2.5:40000", xff: []string{"203.0.113.9, 10.9.9.9"}, want: "192.0.2.5"},
				{name: "IPv6 public peer", peer: "[2001:db8::5]:40000", xff: []string{"203.0.113.9"}, want: "2001:db8::5"},
			})
		})
		t.Run("ranges that are not configured are not trusted", func(t *testing.T) {
			// echo's defaults would trust all of these.
			runClientIPCases(t, api, []clientIPCase{
				{name: "loopback peer", peer: "127.0.0.1:40000", xff: []string{"203.0.113.9"}, want: "127.0.0.1"},
				{name: "other loopback peer", peer: "127.0.0.2:40000", xff: []string{"203.0.113.9"}, want: "127.0.0.2"},
				{name: "IPv6 loopback peer", peer: "[::1]:40000", xff: []string{"203.0.113.9"}, want: "::1"},
				{name: "192.168 peer", peer: "192.168.1.20:40000", xff: []string{"203.0.113.9"}, want: "192.168.1.20"},
				{name: "172.16 peer", peer: "172.16.0.5:40000", xff: []string{"203.0.113.9"}, want: "172.16.0.5"},
				{name: "IPv6 private peer", peer: "[fd00::7]:40000", xff: []string{"203.0.113.9"}, want: "fd00::7"},
				{name: "link-local peer", peer: "169.254.10.10:40000", xff: []string{"203.0.113.9"}, want: "169.254.10.10"},
				{name: "IPv6 link-local peer", peer: "[fe80::1]:40000", xff: []string{"203.0.113.9"}, want: "fe80::1"},
				// Behind the trusted proxy, an unconfigured range in the
				// chain is where trust ends.
				{name: "loopback hop", peer: proxy, xff: []string{"203.0.113.9, 127.0.0.1"}, want: "127.0.0.1"},
				{name: "192.168 hop", peer: proxy, xff: []string{"203.0.113.9, 192.168.0.7"}, want: "192.168.0.7"},
			})
		})
		t.Run("a garbage X-Forwarded-For falls back to the peer", func(t *testing.T) {
			var cases []clientIPCase
			for _, xff := range []string{
				"not-an-ip",
				"203.0.113.9, garbage",
				"203.0.113.9:8080",
				"<script>alert(1)</script>",
				"203.0.113.9\r\nX-Injected: 1",
				"999.1.1.1",
				"",
				",",
				"unknown",
			} {
				cases = append(cases, clientIPCase{name: "X-Forwarded-For " + xff, peer: proxy, xff: []string{xff}, want: "10.1.2.3"})
			}
			runClientIPCases(t, api, cases)
		})
		t.Run("X-Real-IP is never used", func(t *testing.T) {
			runClientIPCases(t, api, []clientIPCase{
				{name: "alone, from the trusted proxy", peer: proxy, realIP: "203.0.113.7", want: "10.1.2.3"},
				{name: "beside X-Forwarded-For", peer: proxy, xff: []string{"198.51.100.1"}, realIP: "203.0.113.7", want: "198.51.100.1"},
				{name: "from an untrusted peer", peer: "192.0.2.5:40000", realIP: "203.0.113.7", want: "192.0.2.5"},
			})
		})
	})
}

// TestForwardedProtoChangesNothing: X-Forwarded-Proto (and its relatives)
// never changes an answer – no redirect, no header dropped (HSTS stays),
// no other body – whether or not the peer is a trusted proxy.
func TestForwardedProtoChangesNothing(t *testing.T) {
	t.Parallel()
	eachProxySetting(t, func(t *testing.T, api *testAPI) {
		token := api.signUp(t).Token
		send := func(method, path, token string, forwarded map[string]string) *httptest.ResponseRecorder {
			req := withToken(newRequest(method, path, ""), token)
			req.RemoteAddr = "10.1.2.3:40000"
			req.Header.Set(echo.HeaderXRequestID, "forwarded-proto-test")
			for k, v := range forwarded {
				req.Header.Set(k, v)
			}
			return api.serve(t, req)
		}
		for _, c := range []struct{ method, path, token string }{
			{http.MethodGet, "/", ""},
			{http.MethodGet, "/v1/me", token},
			{http.MethodGet, "/v1/me", ""},
			{http.MethodGet, "/nothing-here", ""},
			{http.MethodPut, "/v1/projects", token},
		} {
			base := send(c.method, c.path, c.token, nil)
			for _, fwd := range []map[string]string{
				{echo.HeaderXForwardedProto: "http"},
				{echo.HeaderXForwardedProto: "https"},
				{echo.HeaderXForwardedProto: "javascript"},
				{echo.HeaderXForwardedProtocol: "http", echo.HeaderXForwardedSsl: "off", echo.HeaderXUrlScheme: "http"},
				{"Forwarded": "for=203.0.113.9;proto=http;host=evil.example", "X-Forwarded-Host": "evil.example"},
			} {
				got := send(c.method, c.path, c.token, fwd)
				what := c.method + " " + c.path + " with " + strings.Join(headerNames(fwd), ", ")
				if got.Code != base.Code || got.Body.String() != base.Body.String() {
					t.Errorf("%s: %d %s, without it %d %s", what, got.Code, got.Body.String(), base.Code, base.Body.String())
				}
				// The RateLimit counters move with every request;
				// the policies they report must be the same.
				checkSamePolicyNames(t, got.Header(), base.Header())
				if g, b := headerDump(withoutRateLimit(got.Header())), headerDump(withoutRateLimit(base.Header())); g != b {
					t.Errorf("%s: headers\n%s\nwithout it\n%s", what, g, b)
				}
				if strings.Contains(got.Body.String(), "evil.example") || strings.Contains(headerDump(got.Header()), "evil.example") {
					t.Errorf("%s: the answer repeats the forwarded host", what)
				}
			}
		}
	})
}

func headerNames(h map[string]string) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// withoutRateLimit returns a copy of h without the RateLimit field, whose
// remaining counts and reset times differ from one request to the next.
// RateLimit-Policy (quotas and windows) stays.
func withoutRateLimit(h http.Header) http.Header {
	h = h.Clone()
	h.Del(headerRateLimit)
	return h
}

// headerDump writes h one "Name: value" line per value, in a fixed order.
func headerDump(h http.Header) string {
	var lines []string
	for name, vs := range h {
		for _, v := range vs {
			lines = append(lines, name+": "+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// eachProxySetting runs fn on each dialect twice: without trusted proxies,
// and with 10.0.0.0/8 trusted, for the tests whose answer must not depend
// on forwarding headers either way.
func eachProxySetting(t *testing.T, fn func(t *testing.T, api *testAPI)) {
	t.Helper()
	for _, cfg := range []struct {
		name      string
		configure func(*Deps)
	}{
		{"no trusted proxies", nil},
		{"trusted 10.0.0.0/8", withTrustedProxies("10.0.0.0/8")},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			eachAPIWith(t, cfg.configure, fn)
		})
	}
}

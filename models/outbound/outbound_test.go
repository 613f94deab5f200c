package outbound_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models/outbound"
)

// ssrfURLVectors are URLs ValidateURL must refuse, each with a word its
// message must contain. No network is used.
var ssrfURLVectors = []struct {
	name, url, says string
}{
	// Loopback in every notation.
	{"dotted loopback", "https://127.0.0.1/", "loopback"},
	{"loopback range", "https://127.255.255.254/hook", "loopback"},
	{"loopback with trailing dot", "https://127.0.0.1./", "loopback"},
	{"decimal", "https://2130706433/", "dotted quad"},
	{"octal", "https://0177.0.0.1/", "dotted quad"},
	{"octal, every part", "https://0177.0000.0000.0001/", "dotted quad"},
	{"leading zeros", "https://127.000.000.001/", "dotted quad"},
	{"hex", "https://0x7f000001/", "dotted quad"},
	{"hex, upper case", "https://0X7F000001/", "dotted quad"},
	{"hex and short", "https://0x7f.1/", "dotted quad"},
	{"hex, every part", "https://0x7f.0x0.0x0.0x1/", "dotted quad"},
	{"bare 0x", "https://0x/", "dotted quad"},
	{"short form", "https://127.1/", "dotted quad"},
	{"short form, three parts", "https://127.0.1/", "dotted quad"},
	{"five parts", "https://1.2.3.4.5/", "dotted quad"},
	{"name ending in a number", "https://example.123/", "dotted quad"},
	{"full-width digits", "https://１２７.０.０.１/", "loopback"},
	{"ideographic full stops", "https://127。0。0。1/", "loopback"},
	{"percent-encoded host", "https://%31%32%37.0.0.1/", "parsed"},
	{"IPv4-mapped IPv6", "https://[::ffff:127.0.0.1]/", "IPv4-mapped"},
	{"IPv4-mapped IPv6, hex", "https://[::ffff:7f00:1]/", "IPv4-mapped"},
	{"IPv4-mapped public address", "https://[::ffff:8.8.8.8]/", "IPv4-mapped"},
	{"IPv4-compatible IPv6", "https://[::127.0.0.1]/", "IPv4-compatible"},
	{"NAT64 of loopback", "https://[64:ff9b::7f00:1]/", "NAT64"},
	{"IPv4 in brackets", "https://[127.0.0.1]/", "parsed"},
	{"IPv6 zone", "https://[fe80::1%25eth0]/", "zone"},
	{"IPv6 loopback", "https://[::1]/", "loopback"},
	{"IPv6 loopback, long form", "https://[0:0:0:0:0:0:0:1]/", "loopback"},
	// Unspecified.
	{"0.0.0.0", "https://0.0.0.0/", "unspecified"},
	{"0", "https://0/", "dotted quad"},
	{"[::]", "https://[::]/", "unspecified"},
	{"0.0.0.0/8", "https://0.1.2.3/", "0.0.0.0/8"},
	// Cloud metadata.
	{"metadata address", "https://169.254.169.254/latest/meta-data/", "cloud metadata"},
	{"metadata address, decimal", "https://2852039166/latest/meta-data/", "dotted quad"},
	{"metadata name", "https://metadata.google.internal/computeMetadata/v1/", "internal name"},
	{"metadata name, upper case and dot", "https://METADATA.google.internal./", "internal name"},
	{"AWS metadata IPv6", "https://[fd00:ec2::254]/", "cloud metadata"},
	{"EC2 internal name", "https://ip-10-0-0-1.ec2.internal/", "internal name"},
	// Private, link-local, unique-local.
	{"10/8", "https://10.0.0.1/", "private"},
	{"172.16/12", "https://172.16.0.1/", "private"},
	{"172.16/12, top", "https://172.31.255.255/", "private"},
	{"192.168/16", "https://192.168.1.1/", "private"},
	{"IPv4 link-local", "https://169.254.1.1/", "link-local"},
	{"IPv6 link-local fe80::/10", "https://[fe80::1]/", "link-local"},
	{"IPv6 link-local, top of fe80::/10", "https://[febf::1]/", "link-local"},
	{"unique-local fc00::/7", "https://[fc00::1]/", "unique-local"},
	{"unique-local fd00::/8", "https://[fd12:3456::1]/", "unique-local"},
	// Shared, documentation, benchmarking, reserved, broadcast, multicast.
	{"carrier-grade NAT", "https://100.64.0.1/", "carrier-grade NAT"},
	{"carrier-grade NAT, top", "https://100.127.255.254/", "carrier-grade NAT"},
	{"TEST-NET-1", "https://192.0.2.1/", "documentation"},
	{"TEST-NET-2", "https://198.51.100.7/", "documentation"},
	{"TEST-NET-3", "https://203.0.113.9/", "documentation"},
	{"IPv6 documentation", "https://[2001:db8::1]/", "documentation"},
	{"IPv6 documentation 3fff::/20", "https://[3fff::1]/", "documentation"},
	{"benchmarking", "https://198.18.0.1/", "benchmarking"},
	{"benchmarking, top", "https://198.19.255.255/", "benchmarking"},
	{"240/4", "https://240.0.0.1/", "reserved"},
	{"broadcast", "https://255.255.255.255/", "broadcast"},
	{"multicast 224/4", "https://224.0.0.1/", "multicast"},
	{"multicast SSDP", "https://239.255.255.250/", "multicast"},
	{"multicast ff00::/8", "https://[ff02::1]/", "multicast"},
	{"multicast ff05", "https://[ff05::1:3]/", "multicast"},
	{"6to4", "https://[2002:7f00:1::1]/", "6to4"},
	// Names.
	{"localhost", "https://localhost/", "internal name"},
	{"LOCALHOST.", "https://LOCALHOST./", "internal name"},
	{"*.localhost", "https://api.localhost/", "internal name"},
	{"home.arpa", "https://router.home.arpa/", "internal name"},
	{"single label", "https://intranet/hook", "fully qualified"},
	{"single label with dot", "https://intranet./hook", "fully qualified"},
	// Scheme, user-info, port, length, host, fragment, characters.
	{"http scheme", "http://example.com/hook", "https://"},
	{"HTTP upper case", "HTTP://example.com/hook", "https://"},
	{"ftp", "ftp://example.com/", "https://"},
	{"file", "file:///etc/passwd", "https://"},
	{"gopher", "gopher://example.com:70/", "https://"},
	{"scheme-relative", "//example.com/hook", "https://"},
	{"no scheme", "example.com/hook", "https://"},
	{"opaque", "https:example.com", "absolute"},
	{"user and password", "https://user:pass@example.com/", "user information"},
	{"user", "https://user@example.com/", "user information"},
	{"empty user-info", "https://@example.com/", "user information"},
	{"user-info hiding the host", "https://example.com@127.0.0.1/", "user information"},
	{"disallowed port", "https://example.com:8443/", "port"},
	{"port 22", "https://example.com:22/", "port"},
	{"port 80", "https://example.com:80/", "port"},
	{"port 0", "https://example.com:0/", "port"},
	{"port too big", "https://example.com:65536/", "port"},
	{"too long", "https://example.com/" + strings.Repeat("a", outbound.MaxURLLength), "longer"},
	{"too long once escaped", "https://example.com/" + strings.Repeat("é", 700), "normalised"},
	{"empty host", "https:///hook", "host"},
	{"only a scheme", "https://", "host"},
	{"only a port", "https://:443/", "host"},
	{"empty", "", "empty"},
	{"fragment", "https://example.com/hook#x", "fragment"},
	{"empty fragment", "https://example.com/hook#", "fragment"},
	{"space", "https://example.com/a b", "white space"},
	{"space in host", "https://exa mple.com/", "white space"},
	{"newline", "https://example.com/\nHost: 127.0.0.1", "white space"},
	{"tab", "https://example.com\t/", "white space"},
	{"backslash", "https://example.com\\@127.0.0.1/", "backslash"},
	// IDNA.
	{"invalid punycode", "https://xn--a.example.com/", "IDNA"},
	{"punycode of ASCII", "https://xn--example-.com/", "IDNA"},
	{"underscore", "https://ex_ample.com/", "IDNA"},
	{"leading hyphen", "https://-example.com/", "IDNA"},
	{"disallowed code point", "https://exa\u2028mple.com/", "IDNA"},
	{"bidi mix", "https://a\u05d0.example.com/", "IDNA"},
	{"empty label", "https://a..example.com/", "label"},
	{"label over 63", "https://" + strings.Repeat("a", 64) + ".example.com/", "label"},
}

// ssrfAccepted are URLs ValidateURL must accept, with their normal form.
var ssrfAccepted = []struct {
	name, url, want string
}{
	{"plain", "https://example.com", "https://example.com/"},
	{"case, default port", "HTTPS://EXAMPLE.com:443/Path?q=1", "https://example.com/Path?q=1"},
	{"empty port", "https://example.com:/hook", "https://example.com/hook"},
	{"trailing dot", "https://example.com./hook", "https://example.com/hook"},
	{"Unicode host", "https://bücher.example/hook", "https://xn--bcher-kva.example/hook"},
	{"Unicode host, upper case", "https://BÜCHER.example/", "https://xn--bcher-kva.example/"},
	{"full-width letters", "https://ｅｘａｍｐｌｅ.com/", "https://example.com/"},
	{"punycode stays", "https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"},
	{"public IPv4", "https://8.8.8.8/hook", "https://8.8.8.8/hook"},
	{"public IPv4, trailing dot", "https://8.8.8.8./hook", "https://8.8.8.8/hook"},
	{"public IPv6", "https://[2606:4700:4700::1111]/", "https://[2606:4700:4700::1111]/"},
	{"public IPv6, long form", "https://[2606:4700:4700:0:0:0:0:1111]:443/", "https://[2606:4700:4700::1111]/"},
	{"escaped path kept", "https://hooks.example.com/a%2Fb?x=%zz&y=1", "https://hooks.example.com/a%2Fb?x=%zz&y=1"},
	{"empty query dropped", "https://hooks.example.com/a?", "https://hooks.example.com/a"},
	{"hex-looking label inside", "https://0x7f.example.com/", "https://0x7f.example.com/"},
}

// TestSSRFVectors covers every SSRF vector of issue 7: the URL notations
// and ranges ValidateURL refuses without touching the network, then what
// only the guarded transport can stop (a name resolving to loopback, DNS
// rebinding, redirects, slow, huge and endless answers, non-2xx, an
// untrusted certificate), against local HTTPS receivers.
func TestSSRFVectors(t *testing.T) {
	c := newClient(t, outbound.Options{})
	for _, v := range ssrfURLVectors {
		t.Run("refused/"+v.name, func(t *testing.T) {
			u, err := c.ValidateURL(v.url)
			var refusal *outbound.RefusedError
			if !errors.As(err, &refusal) {
				t.Fatalf("ValidateURL(%q) = %v, %v; want a *RefusedError", v.url, u, err)
			}
			if !strings.Contains(refusal.Error(), v.says) {
				t.Errorf("message %q does not say %q", refusal.Error(), v.says)
			}
			if strings.ContainsAny(refusal.Error(), "\n\r") || len(v.url) > 8 && strings.Contains(refusal.Error(), v.url) {
				t.Errorf("message %q is not one line or repeats the URL", refusal.Error())
			}
			// Post refuses it too, before any connection.
			if r := c.Post(context.Background(), v.url, nil, nil); r.Class != outbound.ClassRefused || r.StatusCode != 0 {
				t.Errorf("Post: %+v, want class %q", r, outbound.ClassRefused)
			}
		})
	}
	for _, v := range ssrfAccepted {
		t.Run("accepted/"+v.name, func(t *testing.T) {
			u, err := c.ValidateURL(v.url)
			if err != nil {
				t.Fatalf("ValidateURL(%q): %v", v.url, err)
			}
			if u.String() != v.want {
				t.Errorf("ValidateURL(%q) = %q, want %q", v.url, u, v.want)
			}
		})
	}
	t.Run("accepted/allowed port", func(t *testing.T) {
		c := newClient(t, outbound.Options{Ports: []int{8443}})
		u, err := c.ValidateURL("https://example.com:8443/hook")
		if err != nil || u.String() != "https://example.com:8443/hook" {
			t.Errorf("got %v, %v", u, err)
		}
		if _, err := c.ValidateURL("https://example.com:9443/hook"); err == nil || !strings.Contains(err.Error(), "443, 8443") {
			t.Errorf("another port: %v", err)
		}
	})
	t.Run("AllowPrefixes admits only its range", func(t *testing.T) {
		c := newClient(t, outbound.Options{AllowPrefixes: loopback})
		if _, err := c.ValidateURL("https://127.0.0.1/"); err != nil {
			t.Errorf("127.0.0.1 with AllowPrefixes: %v", err)
		}
		for _, raw := range []string{"https://127.0.0.2/", "https://localhost/", "https://0x7f000001/", "https://[::ffff:127.0.0.1]/"} {
			if _, err := c.ValidateURL(raw); err == nil {
				t.Errorf("%s accepted with AllowPrefixes 127.0.0.1/32", raw)
			}
		}
	})

	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

	t.Run("local receiver without AllowPrefixes", func(t *testing.T) {
		recv := newReceiver(t, ok)
		// Admitted, it is reached: the refusals below are the guard's.
		if r := newClient(t, withAllow(optionsFor(recv))).Post(context.Background(), recv.url("/hook"), nil, nil); r.Class != "" {
			t.Fatalf("with AllowPrefixes: %+v", r)
		}
		recv.hits.Store(0)
		r := newClient(t, optionsFor(recv)).Post(context.Background(), recv.url("/hook"), nil, nil)
		if r.Class != outbound.ClassRefused || recv.hits.Load() != 0 {
			t.Errorf("got %+v and %d requests, want %q and none", r, recv.hits.Load(), outbound.ClassRefused)
		}
	})

	t.Run("host name resolving to loopback", func(t *testing.T) {
		recv := newReceiver(t, ok)
		dns := newFakeDNS(t, every(map[string]string{"example.com": "127.0.0.1"}))
		o := optionsFor(recv)
		o.Resolver = dns.Resolver()
		target := recv.urlAt("example.com", "/hook")

		// With the receiver's range admitted, the name leads to it: the
		// resolver is in use and the certificate matches.
		if r := newClient(t, withAllow(o)).Post(context.Background(), target, nil, nil); r.Class != "" || r.StatusCode != http.StatusNoContent {
			t.Fatalf("with AllowPrefixes: %+v", r)
		}
		recv.hits.Store(0)

		c := newClient(t, o)
		u, err := c.ValidateURL(target)
		if err != nil {
			t.Fatalf("the name itself is fine: %v", err)
		}
		var refusal *outbound.RefusedError
		if err := c.CheckResolves(context.Background(), u); !errors.As(err, &refusal) || !strings.Contains(err.Error(), "resolves to a non-public address (loopback)") {
			t.Errorf("CheckResolves: %v", err)
		}
		r := c.Post(context.Background(), target, nil, nil)
		if r.Class != outbound.ClassRefused || !errors.As(r.Err, &refusal) || !strings.Contains(refusal.Reason, "loopback") {
			t.Errorf("Post: %+v, want %q at dial time", r, outbound.ClassRefused)
		}
		if sum := r.Summary(); sum != "the URL's host resolves to a non-public address (loopback)" {
			t.Errorf("Summary %q", sum)
		}
		if recv.hits.Load() != 0 {
			t.Errorf("the receiver got %d requests", recv.hits.Load())
		}
	})

	t.Run("DNS rebinding", func(t *testing.T) {
		recv := newReceiver(t, ok)
		// The first answer is public (registration), later ones loopback.
		dns := newFakeDNS(t, func(name string, n int) []netip.Addr {
			if name != "example.com" {
				return nil
			}
			if n <= 1 {
				return []netip.Addr{netip.MustParseAddr("93.184.215.14")}
			}
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		})
		o := optionsFor(recv)
		o.Resolver = dns.Resolver()
		c := newClient(t, o)
		target := recv.urlAt("example.com", "/hook")
		u, err := c.ValidateURL(target)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CheckResolves(context.Background(), u); err != nil {
			t.Fatalf("at registration the name is public: %v", err)
		}
		if r := c.Post(context.Background(), target, nil, nil); r.Class != outbound.ClassRefused || recv.hits.Load() != 0 {
			t.Errorf("after rebinding: %+v, %d requests; want %q and none", r, recv.hits.Load(), outbound.ClassRefused)
		}
	})

	t.Run("any non-public address among several", func(t *testing.T) {
		dns := newFakeDNS(t, func(name string, _ int) []netip.Addr {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.1.2.3")}
		})
		c := newClient(t, outbound.Options{Resolver: dns.Resolver()})
		u, _ := c.ValidateURL("https://mixed.example.com/")
		if err := c.CheckResolves(context.Background(), u); err == nil || !strings.Contains(err.Error(), "private") {
			t.Errorf("CheckResolves: %v", err)
		}
	})

	t.Run("unknown name", func(t *testing.T) {
		dns := newFakeDNS(t, every(nil))
		c := newClient(t, outbound.Options{Resolver: dns.Resolver()})
		u, _ := c.ValidateURL("https://nx.example.com/")
		var refusal *outbound.RefusedError
		if err := c.CheckResolves(context.Background(), u); !errors.As(err, &refusal) || !strings.Contains(err.Error(), "does not resolve") {
			t.Errorf("CheckResolves: %v", err)
		}
		if r := c.Post(context.Background(), u.String(), nil, nil); r.Class != outbound.ClassDNS {
			t.Errorf("Post: %+v, want %q", r, outbound.ClassDNS)
		}
	})

	t.Run("redirect to an internal address", func(t *testing.T) {
		internal := newReceiver(t, ok)
		redirector := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.url("/"), http.StatusFound)
		})
		// Both admitted: only the no-redirect rule keeps the second away.
		c := newClient(t, withAllow(optionsFor(redirector, internal)))
		r := c.Post(context.Background(), redirector.url("/hook"), nil, nil)
		if r.Class != outbound.ClassRedirect || r.StatusCode != http.StatusFound {
			t.Errorf("got %+v, want %q with 302", r, outbound.ClassRedirect)
		}
		if redirector.hits.Load() != 1 || internal.hits.Load() != 0 {
			t.Errorf("requests: redirector %d, target %d; want 1 and 0", redirector.hits.Load(), internal.hits.Load())
		}
		// And to https://127.0.0.1/ itself, for a client that admits no
		// local address: the redirect is answered, never dialled.
		loop := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://127.0.0.1/", http.StatusFound)
		})
		if r := newClient(t, withAllow(optionsFor(loop))).Post(context.Background(), loop.url("/"), nil, nil); r.Class != outbound.ClassRedirect {
			t.Errorf("redirect to https://127.0.0.1/: %+v", r)
		}
	})

	t.Run("slow body", func(t *testing.T) {
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		recv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			select { // stall until the client gives up
			case <-r.Context().Done():
			case <-done:
			}
		})
		o := withAllow(optionsFor(recv))
		o.Timeout = 300 * time.Millisecond
		start := time.Now()
		r := newClient(t, o).Post(context.Background(), recv.url("/"), nil, nil)
		if r.Class != outbound.ClassTimeout || r.StatusCode != http.StatusOK {
			t.Errorf("got %+v, want %q after the headers", r, outbound.ClassTimeout)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %v with a 300 ms timeout", took)
		}
	})

	t.Run("slow headers", func(t *testing.T) {
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		recv := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-done:
			}
		})
		o := withAllow(optionsFor(recv))
		o.Timeout = 300 * time.Millisecond
		if r := newClient(t, o).Post(context.Background(), recv.url("/"), nil, nil); r.Class != outbound.ClassTimeout || r.StatusCode != 0 {
			t.Errorf("got %+v, want %q", r, outbound.ClassTimeout)
		}
	})

	t.Run("huge body", func(t *testing.T) {
		const size = 50 << 20
		var written int64
		recv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(size))
			n, _ := io.CopyN(w, zeros{}, size)
			written = n
		})
		r := newClient(t, withAllow(optionsFor(recv))).Post(context.Background(), recv.url("/"), nil, nil)
		if r.Class != outbound.ClassTooLarge || r.StatusCode != http.StatusOK {
			t.Errorf("got %+v, want %q", r, outbound.ClassTooLarge)
		}
		recv.srv.Close() // waits for the handler
		if written >= size {
			t.Errorf("the receiver wrote all %d bytes: the client read them", written)
		}
	})

	t.Run("endless stream", func(t *testing.T) {
		recv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.Copy(w, zeros{}) // until the client hangs up
		})
		o := withAllow(optionsFor(recv))
		o.MaxResponseBytes = 1024
		start := time.Now()
		r := newClient(t, o).Post(context.Background(), recv.url("/"), nil, nil)
		if r.Class != outbound.ClassTooLarge {
			t.Errorf("got %+v, want %q", r, outbound.ClassTooLarge)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v", took)
		}
	})

	t.Run("non-2xx", func(t *testing.T) {
		recv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>secret internal page</html>"))
		})
		r := newClient(t, withAllow(optionsFor(recv))).Post(context.Background(), recv.url("/"), nil, nil)
		if r.Class != outbound.ClassStatus || r.StatusCode != http.StatusNotFound {
			t.Errorf("got %+v, want %q 404", r, outbound.ClassStatus)
		}
		if r.Err == nil || strings.Contains(r.Err.Error(), "secret") {
			t.Errorf("Err %v: missing, or holds the body", r.Err)
		}
	})

	t.Run("self-signed certificate not in RootCAs", func(t *testing.T) {
		recv := newReceiver(t, ok)
		o := withAllow(optionsFor(recv))
		o.RootCAs = otherRoot(t) // trusts another certificate only
		if r := newClient(t, o).Post(context.Background(), recv.url("/"), nil, nil); r.Class != outbound.ClassTLS || recv.hits.Load() != 0 {
			t.Errorf("got %+v, %d requests; want %q", r, recv.hits.Load(), outbound.ClassTLS)
		}
		// The system roots do not trust it either.
		o.RootCAs = nil
		if r := newClient(t, o).Post(context.Background(), recv.url("/"), nil, nil); r.Class != outbound.ClassTLS {
			t.Errorf("system roots: %+v, want %q", r, outbound.ClassTLS)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		o := outbound.Options{Ports: []int{port}, AllowPrefixes: loopback}
		if r := newClient(t, o).Post(context.Background(), "https://127.0.0.1:"+strconv.Itoa(port)+"/", nil, nil); r.Class != outbound.ClassConnect {
			t.Errorf("got %+v, want %q", r, outbound.ClassConnect)
		}
	})
}

// withAllow admits the loopback receivers.
func withAllow(o outbound.Options) outbound.Options {
	o.AllowPrefixes = loopback
	return o
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestPost: the receiver gets the method, headers and body given, a
// default User-Agent, and no Accept-Encoding (compression is off); the
// Result holds the status and a latency; nothing of the URL's path or
// query (which may hold a token) appears in an error.
func TestPost(t *testing.T) {
	type seen struct {
		method, ua, encoding, sig, body string
	}
	got := make(chan seen, 1)
	recv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("User-Agent"), r.Header.Get("Accept-Encoding"), r.Header.Get("X-Signature"), string(b)}
		w.WriteHeader(http.StatusAccepted)
	})
	c := newClient(t, withAllow(optionsFor(recv)))
	h := http.Header{"Content-Type": {"application/json"}, "X-Signature": {"t=1,v1=ab"}}
	r := c.Post(context.Background(), recv.url("/hook"), h, []byte(`{"a":1}`))
	if r.Class != "" || r.Err != nil || r.StatusCode != http.StatusAccepted || r.Latency <= 0 {
		t.Fatalf("%+v", r)
	}
	s := <-got
	if s.method != http.MethodPost || s.ua != outbound.DefaultUserAgent || s.encoding != "" || s.sig != "t=1,v1=ab" || s.body != `{"a":1}` {
		t.Errorf("the receiver saw %+v", s)
	}
	h.Set("User-Agent", "custom/1")
	c.Post(context.Background(), recv.url("/hook"), h, nil)
	if s := <-got; s.ua != "custom/1" {
		t.Errorf("User-Agent %q, want the caller's", s.ua)
	}

	// Errors never repeat the URL.
	const token = "s3cr3t-t0ken"
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	o := withAllow(optionsFor(failing))
	o.Ports = append(o.Ports, closedPort)
	c = newClient(t, o)
	for _, u := range []string{
		failing.url("/" + token + "?k=" + token),
		"https://127.0.0.1:" + strconv.Itoa(closedPort) + "/" + token + "?k=" + token,
		"https://127.0.0.2/" + token,
		"http://example.com/" + token,
	} {
		r := c.Post(context.Background(), u, nil, nil)
		if r.Err == nil || r.Class == "" || strings.Contains(r.Err.Error(), token) {
			t.Errorf("%s: %+v", u, r)
		}
		// The client-safe summary names no address either.
		if sum := r.Summary(); strings.Contains(sum, token) || strings.Contains(sum, "127.0.0") || strings.ContainsAny(sum, "\r\n") {
			t.Errorf("%s: summary %q", u, sum)
		}
	}
	if sum := (outbound.Result{StatusCode: 204}).Summary(); sum != "delivered: the receiver answered 204" {
		t.Errorf("summary of a success: %q", sum)
	}
}

// TestPostOverHTTP2: a receiver that speaks HTTP/2 is spoken to in
// HTTP/2 through the guarded dialer (the custom TLS dial keeps ALPN).
func TestPostOverHTTP2(t *testing.T) {
	proto := make(chan int, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto <- r.ProtoMajor
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := newClient(t, outbound.Options{RootCAs: pool, AllowPrefixes: loopback, Ports: []int{srv.Listener.Addr().(*net.TCPAddr).Port}})
	if r := c.Post(context.Background(), srv.URL+"/hook", nil, []byte("{}")); r.Class != "" || r.StatusCode != http.StatusNoContent {
		t.Fatalf("%+v", r)
	}
	if p := <-proto; p != 2 {
		t.Errorf("HTTP/%d, want HTTP/2", p)
	}
}

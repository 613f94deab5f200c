package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestDialCheckWithoutValidateURL sends a request through the client's
// transport directly, past ValidateURL: the dial-time check alone
// refuses the loopback receiver, and lets it through only when its range
// is allowed. It fails if the Control hook is removed.
func TestDialCheckWithoutValidateURL(t *testing.T) {
	hits := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits++
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	do := func(o Options) error {
		c, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.http.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var refusal *RefusedError
	if err := do(Options{Ports: []int{port}, RootCAs: pool}); !errors.As(err, &refusal) || hits != 0 {
		t.Errorf("without AllowPrefixes: %v, %d requests; want a *RefusedError and none", err, hits)
	}
	if err := do(Options{Ports: []int{port + 1}, RootCAs: pool, AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}); !errors.As(err, &refusal) || hits != 0 {
		t.Errorf("port %d not allowed: %v, %d requests", port, err, hits)
	}
	if err := do(Options{Ports: []int{port}, RootCAs: pool, AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}); err != nil || hits != 1 {
		t.Errorf("with AllowPrefixes: %v, %d requests", err, hits)
	}
}

// TestTransportSettings pins the transport rules that have no behaviour
// a local test can observe: no proxy (whatever HTTPS_PROXY says), no
// cookies, no compression, TLS 1.2 at least with verification, bounded
// idle connections.
func TestTransportSettings(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.http.Transport.(*http.Transport)
	switch {
	case tr.Proxy != nil:
		t.Error("the transport has a proxy function")
	case c.http.Jar != nil:
		t.Error("the client keeps cookies")
	case !tr.DisableCompression:
		t.Error("compression is asked for")
	case tr.TLSClientConfig.MinVersion < 0x0303 || tr.TLSClientConfig.InsecureSkipVerify || c.tlsConfig("x").InsecureSkipVerify || c.tlsConfig("x").MinVersion < 0x0303:
		t.Error("TLS below 1.2 or unverified")
	case tr.MaxIdleConnsPerHost <= 0 || tr.MaxIdleConns <= 0 || tr.MaxConnsPerHost <= 0 || tr.IdleConnTimeout <= 0:
		t.Error("idle connections unbounded")
	case tr.ResponseHeaderTimeout <= 0 || c.http.Timeout != DefaultTimeout || tr.MaxResponseHeaderBytes <= 0:
		t.Error("no header or total timeout")
	case c.http.CheckRedirect == nil || c.http.CheckRedirect(nil, nil) != http.ErrUseLastResponse:
		t.Error("redirects are followed")
	}
	for _, o := range []Options{{Ports: []int{0}}, {Ports: []int{65536}}, {Timeout: -1}, {MaxResponseBytes: -1}, {AllowPrefixes: []netip.Prefix{{}}}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if c.opts.ConnectTimeout != DefaultConnectTimeout || c.opts.MaxResponseBytes != DefaultMaxResponseBytes || c.opts.UserAgent != DefaultUserAgent ||
		c.breaker.Failures != DefaultBreakerFailures || c.breaker.OpenFor != DefaultBreakerOpenFor {
		t.Errorf("defaults not applied: %+v %+v", c.opts, c.breaker)
	}
}

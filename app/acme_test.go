package app

import (
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/acme"
)

// countingListener stands in for an ACME directory: it accepts TCP
// connections, counts them and closes them. No ACME exchange can succeed
// with it, but it shows whether the server tried to reach its CA.
type countingListener struct {
	ln    net.Listener
	count atomic.Int64
}

func newCountingListener(tb testing.TB) *countingListener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &countingListener{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.count.Add(1)
			conn.Close()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return c
}

// TestACMEWiring checks the ACME configuration without any network beyond
// loopback: the TLS-ALPN-01 protocol is offered, the TLS profile is the
// same, and the host policy refuses names that are not listed before any
// request to the CA.
func TestACMEWiring(t *testing.T) {
	directory := newCountingListener(t)
	cfg, err := LoadConfig(vars{
		"APP_DATA_DIR":       t.TempDir(),
		"APP_ACME_DOMAINS":   "API.example.com, www.example.com",
		"APP_ACME_EMAIL":     "ops@example.com",
		"APP_ACME_DIRECTORY": "https://" + directory.ln.Addr().String() + "/directory",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.ACMEDomains, []string{"api.example.com", "www.example.com"}) {
		t.Errorf("ACMEDomains = %q", cfg.ACMEDomains)
	}
	s, err := newServerTLS(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	c, profile := s.config, tlsProfile()
	if s.acme == nil || s.reloader != nil || c.GetCertificate == nil || len(c.Certificates) != 0 {
		t.Fatalf("the certificate does not come from ACME: %+v", s)
	}
	if !slices.Contains(c.NextProtos, acme.ALPNProto) {
		t.Errorf("NextProtos %q lack %s: TLS-ALPN-01 validation cannot reach us", c.NextProtos, acme.ALPNProto)
	}
	if !slices.Equal(c.NextProtos[:len(profile.NextProtos)], profile.NextProtos) {
		t.Errorf("NextProtos %q do not start with the profile's %q", c.NextProtos, profile.NextProtos)
	}
	if c.MinVersion != profile.MinVersion || !slices.Equal(c.CipherSuites, profile.CipherSuites) ||
		!slices.Equal(c.CurvePreferences, profile.CurvePreferences) || c.MaxVersion != profile.MaxVersion {
		t.Errorf("the ACME configuration changes the TLS profile: %+v", c)
	}
	if s.acme.Email != "ops@example.com" || s.acme.Client.DirectoryURL != cfg.ACMEDirectory {
		t.Errorf("manager email %q, directory %q", s.acme.Email, s.acme.Client.DirectoryURL)
	}
	if s.acme.HostPolicy == nil {
		t.Fatal("no host policy: any name sent in SNI would get a certificate request")
	}

	addr := serveTLSConfig(t, c)
	for _, name := range []string{"evil.example.com", "example.com", "api.example.com.evil.example", "www.example.org"} {
		t.Run("no certificate for "+name, func(t *testing.T) {
			_, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
			if err == nil || !strings.Contains(err.Error(), "not configured") {
				t.Errorf("GetCertificate(%s) = %v, want the host policy's refusal", name, err)
			}
			// Over a real handshake: no certificate, an alert.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: hangGuard}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
				t.Fatalf("the handshake for %s succeeded with %s", name, conn.ConnectionState().PeerCertificates[0].Subject)
			}
			if !strings.Contains(err.Error(), "remote error: tls:") {
				t.Errorf("handshake error %q is not the server's refusal", err)
			}
		})
	}
	t.Run("no certificate without SNI", func(t *testing.T) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: hangGuard}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatal("a handshake without a server name got a certificate")
		}
	})
	t.Run("TLS 1.1 is refused as on every listener", func(t *testing.T) {
		wantRefused(t, serverRefusal(t, addr, &tls.Config{ServerName: "api.example.com", InsecureSkipVerify: true,
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}))
	})
	if n := directory.count.Load(); n != 0 {
		t.Fatalf("the ACME directory was contacted %d times for names that are not listed", n)
	}

	// Control: for a listed name the manager does go to its CA (which here
	// cannot answer), so the refusals above came from the host policy.
	t.Run("control: a listed name reaches the CA", func(t *testing.T) {
		if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "api.example.com"}); err == nil {
			t.Fatal("got a certificate from a CA that cannot answer")
		}
		if directory.count.Load() == 0 {
			t.Errorf("the ACME directory was not contacted for a listed name")
		}
	})
}

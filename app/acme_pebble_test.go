package app

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// loopbackDNS is a DNS server on 127.0.0.1 (TCP, as Pebble's validation
// authority asks) that answers every A question with 127.0.0.1 and every
// other question with no records, so that any name leads to this machine.
func loopbackDNS(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	tb.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// TestACMEIssuance gets a certificate end to end, offline: Pebble (Let's
// Encrypt's ACME test server) runs in this process, its validation
// authority resolves every name to 127.0.0.1 through loopbackDNS and
// validates TLS-ALPN-01 on the port of the listener under test, which is
// the public listener's TLS configuration served as serve does.
func TestACMEIssuance(t *testing.T) {
	// Pebble reads these when it is made: no random sleeps before
	// validation, no random nonce rejections.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	pebbleLog := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		pebbleLog = log.New(os.Stderr, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	authority := ca.New(pebbleLog, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(pebbleLog, 0, port, false, loopbackDNS(t), store)
	frontEnd := wfe.New(pebbleLog, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	acmeServer := httptest.NewTLSServer(frontEnd.Handler())
	t.Cleanup(acmeServer.Close)

	const domain = "api.example.test"
	dataDir := t.TempDir()
	cfg, err := LoadConfig(vars{
		"APP_DATA_DIR":       dataDir,
		"APP_ACME_DOMAINS":   domain,
		"APP_ACME_EMAIL":     "ops@example.test",
		"APP_ACME_DIRECTORY": acmeServer.URL + wfe.DirectoryPath,
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerTLS(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	// The one thing a test changes: the ACME client trusts the test
	// server's certificate (in production: the system roots).
	s.acme.Client.HTTPClient = acmeServer.Client()

	srv := newHTTPServer(ln.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), s.config, discardLogger())
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.ServeTLS(tlsOnlyListener{ln}, "", "")
	t.Cleanup(func() { srv.Close() })

	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	client := &tls.Config{ServerName: domain, RootCAs: roots}

	// The first handshake for the name makes the server order, validate
	// (Pebble connects back with acme-tls/1) and fetch its certificate.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: hangGuard}, "tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("handshake for %s: %v", domain, err)
	}
	st := conn.ConnectionState()
	conn.Close()
	leaf := st.PeerCertificates[0]
	if !slices.Equal(leaf.DNSNames, []string{domain}) {
		t.Errorf("the certificate names %q, want [%s]", leaf.DNSNames, domain)
	}
	if len(st.VerifiedChains) == 0 {
		t.Errorf("the certificate does not chain to Pebble's root")
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version %s", tls.VersionName(st.Version))
	}
	if cached, _ := filepath.Glob(filepath.Join(dataDir, "acme", domain+"*")); len(cached) == 0 {
		t.Errorf("the certificate was not kept in APP_DATA_DIR/acme")
	}

	// Later handshakes get the same certificate, and the TLS profile
	// holds for it.
	again, err := tls.DialWithDialer(&net.Dialer{Timeout: hangGuard}, "tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	if again.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("the second handshake got another certificate")
	}
	again.Close()
	old := client.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	wantRefused(t, serverRefusal(t, ln.Addr().String(), old))
	cbc := client.Clone()
	cbc.MaxVersion = tls.VersionTLS12
	cbc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
	wantRefused(t, serverRefusal(t, ln.Addr().String(), cbc))

	// A name that is not listed still gets nothing, though the CA would
	// validate it just as well here.
	other := client.Clone()
	other.ServerName = "other.example.test"
	wantRefused(t, serverRefusal(t, ln.Addr().String(), other))
}

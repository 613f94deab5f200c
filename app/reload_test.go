package app

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveTLSConfig serves "ok" with the TLS configuration c the way serve
// does (an http.Server with our limits behind tlsOnlyListener) on
// 127.0.0.1 and returns the address.
func serveTLSConfig(tb testing.TB, c *tls.Config) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	srv := newHTTPServer(ln.Addr().String(), h, c, discardLogger())
	srv.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected here
	go srv.ServeTLS(tlsOnlyListener{ln}, "", "")
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// servedLeaf makes a TLS connection to addr for serverName, verified
// against roots, and returns the certificate the server presented.
func servedLeaf(tb testing.TB, addr, serverName string, roots *x509.CertPool) *x509.Certificate {
	tb.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: hangGuard}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		tb.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestCertificateReload replaces APP_TLS_CERT_FILE/APP_TLS_KEY_FILE under a
// running listener: a good new pair is served from the next handshake on,
// without a restart; a broken pair, or one production refuses, is not, and
// the last good certificate stays.
func TestCertificateReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")

	// Every replacement gets a later modification time, as a renewal would;
	// the reloader compares times and sizes.
	stamp := time.Now()
	bump := func() {
		t.Helper()
		stamp = stamp.Add(time.Second)
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, stamp, stamp); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	install := func(cn string) *x509.Certificate {
		t.Helper()
		key := newECKey(t)
		leaf := ca.sign(t, serverTemplate(cn), key)
		writePair(t, certFile, keyFile, key, leaf, ca.cert)
		bump()
		return leaf
	}

	a := install("cert A")
	logBuf := &syncBuffer{}
	cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), TLSCertFile: certFile, TLSKeyFile: keyFile}
	s, err := newServerTLS(cfg, slog.New(slog.NewJSONHandler(logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if s.reloader == nil || s.acme != nil || len(s.config.Certificates) != 0 || s.config.GetCertificate == nil {
		t.Fatalf("certificate files are not served through the reloader: %+v", s)
	}
	if s.reloader.checkEvery <= 0 {
		t.Errorf("the reloader checks the files on every handshake by default (checkEvery %s)", s.reloader.checkEvery)
	}
	s.reloader.mu.Lock()
	s.reloader.checkEvery = 0 // look at the files on every handshake
	s.reloader.mu.Unlock()
	addr := serveTLSConfig(t, s.config)

	served := func() *big.Int {
		t.Helper()
		return servedLeaf(t, addr, "localhost", ca.pool()).SerialNumber
	}
	wantServed := func(what string, want *x509.Certificate) {
		t.Helper()
		if got := served(); got.Cmp(want.SerialNumber) != 0 {
			t.Errorf("%s: serves serial %s, want %s (%s)", what, got, want.SerialNumber, want.Subject.CommonName)
		}
	}
	wantServed("at start", a)
	wantServed("unchanged files", a)

	b := install("cert B")
	wantServed("after the files were replaced", b)
	if !strings.Contains(logBuf.String(), "reloaded the TLS certificate") {
		t.Errorf("the reload was not logged:\n%s", logBuf)
	}

	refusals := []struct {
		what    string
		replace func()
		log     string
	}{
		{"a corrupt certificate file", func() {
			if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "refused"},
		{"a corrupt key file", func() {
			install("good cert, bad key")
			if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "refused"},
		{"a key that does not match (half-way through a renewal)", func() {
			key := newECKey(t)
			leaf := ca.sign(t, serverTemplate("cert C"), key)
			other := newECKey(t)
			writePair(t, certFile, keyFile, other, leaf, ca.cert)
		}, "refused"},
		{"a self-signed pair in production", func() {
			self, selfKey := selfSignedPair(t, t.TempDir())
			copyFile(t, self, certFile)
			copyFile(t, selfKey, keyFile)
		}, "self-signed"},
		{"the development certificate in production", func() {
			p := devPKI{dir: filepath.Join(t.TempDir(), "tls")}
			devCert(t, p.dir)
			copyFile(t, p.serverCert(), certFile)
			copyFile(t, p.serverKey(), keyFile)
		}, "development CA"},
		{"missing files", func() {
			os.Remove(certFile)
			os.Remove(keyFile)
		}, "cannot be read"},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.what, func(t *testing.T) {
			before := len(logBuf.String())
			tt.replace()
			bump()
			wantServed("after "+tt.what, b)
			wantServed("again after "+tt.what, b)
			if logged := logBuf.String()[before:]; !strings.Contains(logged, tt.log) || !strings.Contains(logged, `"level":"WARN"`) {
				t.Errorf("no warning saying %q:\n%s", tt.log, logged)
			}
		})
	}

	c := install("cert D")
	wantServed("a good pair after the refused ones", c)
}

// TestCertificateReloadDevelopment: in development a self-signed pair from
// files is taken, as at start-up (only production refuses it).
func TestCertificateReloadDevelopment(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, dir)
	s, err := newServerTLS(Config{Env: EnvDevelopment, DataDir: t.TempDir(), TLSCertFile: certFile, TLSKeyFile: keyFile}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.reloader.mu.Lock()
	s.reloader.checkEvery = 0
	s.reloader.mu.Unlock()
	addr := serveTLSConfig(t, s.config)
	servedLeaf(t, addr, "localhost", ca.pool())

	self, selfKey := selfSignedPair(t, t.TempDir())
	copyFile(t, self, certFile)
	copyFile(t, selfKey, keyFile)
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	selfPool := poolFromFile(t, certFile)
	if leaf := servedLeaf(t, addr, "localhost", selfPool); leaf.Issuer.CommonName != leaf.Subject.CommonName {
		t.Errorf("the self-signed pair was not served in development")
	}
}

func TestCertificateFilesAtStart(t *testing.T) {
	self, selfKey := selfSignedPair(t, t.TempDir())
	for _, tt := range []struct {
		what, cert, key, want string
	}{
		{"missing files", filepath.Join(t.TempDir(), "none.pem"), filepath.Join(t.TempDir(), "none-key.pem"), "APP_TLS_CERT_FILE"},
		{"a self-signed pair in production", self, selfKey, "self-signed"},
	} {
		t.Run(tt.what, func(t *testing.T) {
			_, err := serverTLSConfig(Config{Env: EnvProduction, DataDir: t.TempDir(), TLSCertFile: tt.cert, TLSKeyFile: tt.key}, discardLogger())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("serverTLSConfig = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

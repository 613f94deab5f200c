package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// devCert makes (or loads) the development server certificate in dir, a
// development PKI folder (DataDir/tls).
func devCert(tb testing.TB, dir string) tls.Certificate {
	tb.Helper()
	cert, err := devServerCertificate(dir, discardLogger())
	if err != nil {
		tb.Fatalf("devServerCertificate: %v", err)
	}
	if cert.Leaf == nil {
		tb.Fatal("devServerCertificate returned no parsed leaf")
	}
	return cert
}

func TestDevCertificateFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	before := time.Now()
	leaf := devCert(t, dir).Leaf

	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
		t.Errorf("DNS names %v, want [localhost]", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("IP addresses %v, want [127.0.0.1 ::1]", ips)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 30*24*time.Hour {
		t.Errorf("valid for %s, want at most 30 days", life)
	}
	if leaf.NotBefore.After(before) || leaf.NotAfter.Before(before.Add(29*24*time.Hour)) {
		t.Errorf("validity %s .. %s does not cover the next 29 days", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Errorf("the development certificate can sign certificates")
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v, want server auth only", leaf.ExtKeyUsage)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("not valid for %s: %v", name, err)
		}
	}

	fi, err := os.Stat(filepath.Join(dir, "dev-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("dev-key.pem has mode %o, want 600", perm)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("certificate folder: %v, mode %o, want 700", err, di.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestDevCertificateReused(t *testing.T) {
	dir := t.TempDir()
	first := devCert(t, dir).Leaf
	second := devCert(t, dir).Leaf
	if first.SerialNumber.Cmp(second.SerialNumber) != 0 {
		t.Errorf("second run made a new certificate (serial %s, then %s)", first.SerialNumber, second.SerialNumber)
	}
}

// writeCertPair writes a server certificate made from tmpl (serial, key
// usage and key filled in) as dev-cert.pem and dev-key.pem in dir, issued by
// the development CA of dir (made if missing), or self-signed when
// selfSigned is set.
func writeCertPair(tb testing.TB, dir string, tmpl *x509.Certificate, selfSigned bool) *big.Int {
	tb.Helper()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid = true
	key := newECKey(tb)
	var cert *x509.Certificate
	if selfSigned {
		cert = signCert(tb, tmpl, key, nil, nil)
	} else {
		ca, err := ensureDevCA(devPKI{dir: dir}, discardLogger())
		if err != nil {
			tb.Fatal(err)
		}
		cert = signCert(tb, tmpl, key, ca.cert, ca.key)
	}
	p := devPKI{dir: dir}
	writePair(tb, p.serverCert(), p.serverKey(), key, cert)
	return cert.SerialNumber
}

func TestDevCertificateRemade(t *testing.T) {
	now := time.Now()
	tests := []struct {
		what       string
		tmpl       x509.Certificate
		selfSigned bool
	}{
		{"expires within a day", x509.Certificate{NotBefore: now.Add(-29 * 24 * time.Hour), NotAfter: now.Add(time.Hour),
			DNSNames: devCertNames, IPAddresses: devCertIPs}, false},
		{"expired", x509.Certificate{NotBefore: now.Add(-40 * 24 * time.Hour), NotAfter: now.Add(-time.Hour),
			DNSNames: devCertNames, IPAddresses: devCertIPs}, false},
		{"names another host", x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 24 * time.Hour),
			DNSNames: []string{"example.com"}, IPAddresses: devCertIPs}, false},
		{"names fewer addresses", x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 24 * time.Hour),
			DNSNames: devCertNames, IPAddresses: devCertIPs[:1]}, false},
		{"self-signed, not from the development CA", x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 24 * time.Hour),
			DNSNames: devCertNames, IPAddresses: devCertIPs}, true},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			dir := t.TempDir()
			old := writeCertPair(t, dir, &tt.tmpl, tt.selfSigned)
			leaf := devCert(t, dir).Leaf
			if leaf.SerialNumber.Cmp(old) == 0 {
				t.Fatalf("the kept certificate was reused")
			}
			if time.Until(leaf.NotAfter) < 29*24*time.Hour {
				t.Errorf("the new certificate expires at %s", leaf.NotAfter)
			}
			ca, err := loadDevCA(devPKI{dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := leaf.CheckSignatureFrom(ca.cert); err != nil {
				t.Errorf("the new certificate is not issued by the development CA: %v", err)
			}
		})
	}

	t.Run("control: a good kept certificate is reused", func(t *testing.T) {
		dir := t.TempDir()
		old := writeCertPair(t, dir, &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 24 * time.Hour),
			DNSNames: devCertNames, IPAddresses: devCertIPs}, false)
		if leaf := devCert(t, dir).Leaf; leaf.SerialNumber.Cmp(old) != 0 {
			t.Errorf("a usable kept certificate was replaced")
		}
	})
}

func TestLoadCertificate(t *testing.T) {
	selfCert, selfKey := selfSignedPair(t, t.TempDir())
	devDir := t.TempDir()
	devCert(t, devDir)
	devCertFile, devKeyFile := devPKI{dir: devDir}.serverCert(), devPKI{dir: devDir}.serverKey()
	caCert, caKey := newTestCA(t).issue(t, t.TempDir())

	t.Run("production refuses a self-signed certificate from files", func(t *testing.T) {
		cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), TLSCertFile: selfCert, TLSKeyFile: selfKey}
		_, err := loadCertificate(cfg, discardLogger())
		if err == nil || !strings.Contains(err.Error(), "self-signed") || !strings.Contains(err.Error(), "APP_TLS_CERT_FILE") {
			t.Errorf("loadCertificate = %v, want a self-signed refusal naming APP_TLS_CERT_FILE", err)
		}
	})
	// The development certificate is made by the app for itself, like a
	// self-signed one, only through its own CA: production refuses it too.
	t.Run("production refuses the development certificate from files", func(t *testing.T) {
		cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), TLSCertFile: devCertFile, TLSKeyFile: devKeyFile}
		_, err := loadCertificate(cfg, discardLogger())
		if err == nil || !strings.Contains(err.Error(), "development CA") || !strings.Contains(err.Error(), "APP_TLS_CERT_FILE") {
			t.Errorf("loadCertificate = %v, want a development-CA refusal naming APP_TLS_CERT_FILE", err)
		}
	})
	t.Run("development accepts the development certificate from files", func(t *testing.T) {
		cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), TLSCertFile: devCertFile, TLSKeyFile: devKeyFile}
		if _, err := loadCertificate(cfg, discardLogger()); err != nil {
			t.Errorf("loadCertificate: %v", err)
		}
	})
	t.Run("production accepts a CA-issued certificate", func(t *testing.T) {
		cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), TLSCertFile: caCert, TLSKeyFile: caKey}
		cert, err := loadCertificate(cfg, discardLogger())
		if err != nil {
			t.Fatalf("loadCertificate: %v", err)
		}
		if len(cert.Certificate) != 2 {
			t.Errorf("the chain has %d certificates, want 2 (leaf and CA)", len(cert.Certificate))
		}
	})
	t.Run("production without files is refused", func(t *testing.T) {
		cfg := Config{Env: EnvProduction, DataDir: t.TempDir()}
		if _, err := loadCertificate(cfg, discardLogger()); err == nil {
			t.Error("production made itself a certificate")
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); !os.IsNotExist(err) {
			t.Errorf("production wrote a development certificate: %v", err)
		}
	})
	t.Run("development accepts a self-signed certificate from files", func(t *testing.T) {
		cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), TLSCertFile: selfCert, TLSKeyFile: selfKey}
		if _, err := loadCertificate(cfg, discardLogger()); err != nil {
			t.Errorf("loadCertificate: %v", err)
		}
	})
	t.Run("a key that does not match is refused", func(t *testing.T) {
		cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), TLSCertFile: selfCert, TLSKeyFile: caKey}
		if _, err := loadCertificate(cfg, discardLogger()); err == nil || !strings.Contains(err.Error(), "APP_TLS_CERT_FILE") {
			t.Errorf("loadCertificate = %v, want an error naming APP_TLS_CERT_FILE", err)
		}
	})
}

// rsaCert makes a self-signed RSA-2048 server certificate for 127.0.0.1,
// to test the RSA cipher suites.
func rsaCert(tb testing.TB) tls.Certificate {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: devCertIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsServer serves "ok" over TLS with TLSConfig(cert) on 127.0.0.1 and
// returns its address.
func tlsServer(tb testing.TB, cert tls.Certificate) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected here
	}
	go srv.Serve(tls.NewListener(ln, TLSConfig(cert)))
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// tlsGet makes one request to addr with the client TLS settings cfg (which
// trusts cert) and returns the negotiated connection state.
func tlsGet(tb testing.TB, addr string, cert tls.Certificate, cfg *tls.Config) (tls.ConnectionState, error) {
	tb.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	cfg.RootCAs = roots
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "ok" || resp.TLS == nil {
		tb.Fatalf("answer %q, %v", body, err)
	}
	return *resp.TLS, nil
}

func TestTLSHandshakes(t *testing.T) {
	legacyGoTLSDefaults(t)
	ecdsaCert := devCert(t, t.TempDir())
	ecdsaAddr := tlsServer(t, ecdsaCert)
	rsaC := rsaCert(t)
	rsaAddr := tlsServer(t, rsaC)

	refused := []struct {
		what string
		addr string
		cert tls.Certificate
		cfg  *tls.Config
	}{
		{"TLS 1.1", ecdsaAddr, ecdsaCert, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
		{"TLS 1.0", ecdsaAddr, ecdsaCert, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}},
		{"TLS 1.2 CBC (ECDSA)", ecdsaAddr, ecdsaCert, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}},
		{"TLS 1.2 CBC (RSA)", rsaAddr, rsaC, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}}},
		{"TLS 1.2 static RSA key exchange", rsaAddr, rsaC, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.what, func(t *testing.T) {
			_, err := tlsGet(t, tt.addr, tt.cert, tt.cfg)
			if err == nil {
				t.Fatal("the handshake succeeded")
			}
			// The server said no (a TLS alert), not the client.
			if !strings.Contains(err.Error(), "remote error: tls:") {
				t.Errorf("error %q is not the server's refusal", err)
			}
		})
	}

	accepted := []struct {
		what    string
		addr    string
		cert    tls.Certificate
		cfg     *tls.Config
		version uint16
		suite   uint16
		curve   tls.CurveID
	}{
		{"TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256", ecdsaAddr, ecdsaCert, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0},
		{"TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305", ecdsaAddr, ecdsaCert, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0},
		{"TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384", rsaAddr, rsaC, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
			tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, 0},
		{"TLS 1.3", ecdsaAddr, ecdsaCert, &tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13, 0, 0},
		{"TLS 1.3 with X25519MLKEM768 offered", ecdsaAddr, ecdsaCert, &tls.Config{MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}, tls.VersionTLS13, 0, tls.X25519MLKEM768},
		{"TLS 1.3 with X25519 only", ecdsaAddr, ecdsaCert, &tls.Config{MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519}}, tls.VersionTLS13, 0, tls.X25519},
		{"default client", ecdsaAddr, ecdsaCert, &tls.Config{}, tls.VersionTLS13, 0, tls.X25519MLKEM768},
	}
	for _, tt := range accepted {
		t.Run("accepted: "+tt.what, func(t *testing.T) {
			st, err := tlsGet(t, tt.addr, tt.cert, tt.cfg)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if st.Version != tt.version {
				t.Errorf("version %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.version))
			}
			if tt.suite != 0 && st.CipherSuite != tt.suite {
				t.Errorf("suite %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.suite))
			}
			if tt.curve != 0 && st.CurveID != tt.curve {
				t.Errorf("key exchange %s, want %s", st.CurveID, tt.curve)
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	selfFile, selfKey := selfSignedPair(t, t.TempDir())
	self, err := tls.LoadX509KeyPair(selfFile, selfKey)
	if err != nil {
		t.Fatal(err)
	}
	dev := devCert(t, t.TempDir())
	certFile, keyFile := newTestCA(t).issue(t, t.TempDir())
	issued, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what string
		cert tls.Certificate
		want bool
	}{
		{"self-signed", self, true},
		{"self-signed, leaf not parsed", tls.Certificate{Certificate: self.Certificate}, true},
		{"development certificate (issued by the development CA)", dev, false},
		{"CA-issued", issued, false},
		{"CA-issued, leaf not parsed", tls.Certificate{Certificate: issued.Certificate}, false},
		{"no certificate (fail closed)", tls.Certificate{}, true},
		{"garbage (fail closed)", tls.Certificate{Certificate: [][]byte{[]byte("not DER")}}, true},
	} {
		if got := selfSigned(tt.cert); got != tt.want {
			t.Errorf("%s: selfSigned = %v, want %v", tt.what, got, tt.want)
		}
	}
}

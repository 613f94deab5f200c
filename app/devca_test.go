package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// oidNameConstraints is the X.509 name constraints extension.
var oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}

// devPKIIn makes the development CA and server certificate in a fresh
// folder and returns the folder, the CA and the server certificate.
func devPKIIn(tb testing.TB) (devPKI, *devCA, tls.Certificate) {
	tb.Helper()
	p := devPKI{dir: filepath.Join(tb.TempDir(), "tls")}
	cert := devCert(tb, p.dir)
	ca, err := loadDevCA(p)
	if err != nil {
		tb.Fatalf("no development CA after the first run: %v", err)
	}
	return p, ca, cert
}

func TestDevCA(t *testing.T) {
	p, ca, _ := devPKIIn(t)
	c := ca.cert

	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("the development CA is not a CA: IsCA %v, basic constraints %v", c.IsCA, c.BasicConstraintsValid)
	}
	// Path length 0: it signs leaves only, never a sub-CA that could escape
	// its name constraints' intent.
	if c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("MaxPathLen %d (zero flag %v), want 0", c.MaxPathLen, c.MaxPathLenZero)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("the CA cannot sign certificates: key usage %b", c.KeyUsage)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life > 366*24*time.Hour {
		t.Errorf("the CA is valid for %s, want at most a year", life)
	}
	if !slices.Equal(c.PermittedDNSDomains, []string{"localhost"}) {
		t.Errorf("permitted DNS domains %v, want [localhost]", c.PermittedDNSDomains)
	}
	var ranges []string
	for _, r := range c.PermittedIPRanges {
		ranges = append(ranges, r.String())
	}
	if !slices.Equal(ranges, []string{"127.0.0.0/8", "::1/128"}) {
		t.Errorf("permitted IP ranges %v, want [127.0.0.0/8 ::1/128]", ranges)
	}
	// Critical: a verifier that does not understand name constraints must
	// refuse the CA rather than ignore them.
	var found bool
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidNameConstraints) {
			found = true
			if !ext.Critical {
				t.Errorf("the name constraints extension is not critical")
			}
		}
	}
	if !found || !c.PermittedDNSDomainsCritical {
		t.Errorf("no critical name constraints extension (found %v)", found)
	}

	for _, f := range []string{p.caKey(), p.serverKey()} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(f), perm)
		}
	}
	if fi, err := os.Stat(p.caCert()); err != nil || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("dev-ca.pem: %v, writable by others", err)
	}
}

func TestDevServerCertificateChainsToTheCA(t *testing.T) {
	_, ca, cert := devPKIIn(t)
	leaf := cert.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the server certificate does not verify for %s against the development CA: %v", name, err)
		}
	}
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		t.Errorf("the server certificate can sign certificates")
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("server key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 30*24*time.Hour {
		t.Errorf("the server certificate is valid for %s, want at most 30 days", life)
	}
	if leaf.NotAfter.After(ca.cert.NotAfter) {
		t.Errorf("the server certificate outlives its CA")
	}
}

// TestDevCANameConstraints signs certificates with the development CA's own
// key, as someone who stole it would: none of them verifies for a name
// outside localhost, 127.0.0.0/8 and ::1.
func TestDevCANameConstraints(t *testing.T) {
	_, ca, _ := devPKIIn(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	leafFor := func(dns []string, ips []net.IP) *x509.Certificate {
		tmpl := serverTemplate("x")
		tmpl.DNSNames, tmpl.IPAddresses = dns, ips
		return signCert(t, tmpl, newECKey(t), ca.cert, ca.key)
	}

	refused := []struct {
		what string
		leaf *x509.Certificate
	}{
		{"a public host name", leafFor([]string{"bank.example.com"}, nil)},
		{"localhost as a label of a public name", leafFor([]string{"localhost.example.com"}, nil)},
		{"a public name beside localhost", leafFor([]string{"localhost", "bank.example.com"}, nil)},
		{"a private IPv4 address", leafFor(nil, []net.IP{net.ParseIP("10.0.0.1")})},
		{"a public IPv4 address", leafFor(nil, []net.IP{net.ParseIP("93.184.216.34")})},
		{"an IPv6 address other than ::1", leafFor(nil, []net.IP{net.ParseIP("2001:db8::1")})},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.what, func(t *testing.T) {
			_, err := tt.leaf.Verify(x509.VerifyOptions{Roots: roots})
			var inv x509.CertificateInvalidError
			if !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
				t.Errorf("Verify = %v, want a name-constraint refusal", err)
			}
		})
	}

	// A sub-CA signed by the development CA: path length 0 forbids it, so
	// it cannot issue what the name constraints would otherwise not see.
	t.Run("refused: a leaf under a sub-CA", func(t *testing.T) {
		subKey := newECKey(t)
		sub := signCert(t, &x509.Certificate{
			Subject:   pkix.Name{CommonName: "sub"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}, subKey, ca.cert, ca.key)
		leaf := signCert(t, serverTemplate("localhost"), newECKey(t), sub, subKey)
		inter := x509.NewCertPool()
		inter.AddCert(sub)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err == nil {
			t.Errorf("a leaf under a sub-CA of the development CA verifies")
		}
	})

	for _, ok := range []struct {
		what string
		leaf *x509.Certificate
	}{
		{"localhost", leafFor([]string{"localhost"}, nil)},
		{"a name under localhost", leafFor([]string{"app.localhost"}, nil)},
		{"127.0.0.2", leafFor(nil, []net.IP{net.ParseIP("127.0.0.2")})},
		{"::1", leafFor(nil, []net.IP{net.IPv6loopback})},
	} {
		t.Run("control: "+ok.what, func(t *testing.T) {
			if _, err := ok.leaf.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestDevPKIReused(t *testing.T) {
	p, ca, cert := devPKIIn(t)
	again := devCert(t, p.dir)
	ca2, err := loadDevCA(p)
	if err != nil {
		t.Fatal(err)
	}
	if ca2.cert.SerialNumber.Cmp(ca.cert.SerialNumber) != 0 {
		t.Errorf("the second run made a new CA")
	}
	if again.Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
		t.Errorf("the second run made a new server certificate")
	}
	if ca3, err := ensureDevCA(p, discardLogger()); err != nil || ca3.cert.SerialNumber.Cmp(ca.cert.SerialNumber) != 0 {
		t.Errorf("ensureDevCA made a new CA: %v", err)
	}
}

// writeDevCA writes a CA made from tmpl as the development CA of p.
func writeDevCA(tb testing.TB, p devPKI, tmpl *x509.Certificate) *x509.Certificate {
	tb.Helper()
	key := newECKey(tb)
	c := signCert(tb, tmpl, key, nil, nil)
	writePair(tb, p.caCert(), p.caKey(), key, c)
	return c
}

func TestDevCARemade(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		what string
		tmpl *x509.Certificate
	}{
		{"the CA expires within a week", &x509.Certificate{Subject: devCAName,
			NotBefore: now.Add(-360 * 24 * time.Hour), NotAfter: now.Add(3 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}},
		{"the CA file holds no CA", serverTemplate("localhost")},
	} {
		t.Run(tt.what, func(t *testing.T) {
			p := devPKI{dir: filepath.Join(t.TempDir(), "tls")}
			old := writeDevCA(t, p, tt.tmpl)
			ca, err := ensureDevCA(p, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			if ca.cert.SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Fatalf("the old CA was kept")
			}
			if !ca.cert.IsCA || time.Until(ca.cert.NotAfter) < 300*24*time.Hour {
				t.Errorf("the new CA: IsCA %v, until %s", ca.cert.IsCA, ca.cert.NotAfter)
			}
		})
	}

	// The server certificate of an older CA (the CA was remade, or its
	// files replaced) no longer chains to what clients trust: it is remade.
	t.Run("a server certificate from an older CA is remade", func(t *testing.T) {
		p, oldCA, old := devPKIIn(t)
		if err := os.Remove(p.caCert()); err != nil {
			t.Fatal(err)
		}
		cert := devCert(t, p.dir)
		ca, err := loadDevCA(p)
		if err != nil {
			t.Fatal(err)
		}
		if ca.cert.SerialNumber.Cmp(oldCA.cert.SerialNumber) == 0 {
			t.Fatalf("the CA was not remade")
		}
		if cert.Leaf.SerialNumber.Cmp(old.Leaf.SerialNumber) == 0 {
			t.Fatalf("the server certificate of the old CA was kept")
		}
		if err := cert.Leaf.CheckSignatureFrom(ca.cert); err != nil {
			t.Errorf("the new server certificate is not issued by the new CA: %v", err)
		}
		onDisk, err := tls.LoadX509KeyPair(p.serverCert(), p.serverKey())
		if err != nil || onDisk.Leaf.SerialNumber.Cmp(cert.Leaf.SerialNumber) != 0 {
			t.Errorf("the remade certificate was not kept on disk: %v", err)
		}
	})
}

func TestDevIssued(t *testing.T) {
	_, _, dev := devPKIIn(t)
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
		{"the development certificate", dev, true},
		{"the development certificate, leaf not parsed", tls.Certificate{Certificate: dev.Certificate}, true},
		{"issued by another CA", issued, false},
		{"garbage (fail closed)", tls.Certificate{Certificate: [][]byte{[]byte("not DER")}}, true},
	} {
		if got := devIssued(tt.cert); got != tt.want {
			t.Errorf("%s: devIssued = %v, want %v", tt.what, got, tt.want)
		}
	}
}

// TestDevCommands runs `rampart dev ca` and `rampart dev client-cert`
// through Main, as the binary would.
func TestDevCommands(t *testing.T) {
	dataDir := t.TempDir()
	v := vars{"APP_DATA_DIR": dataDir}
	p := devPKI{dir: filepath.Join(dataDir, "tls")}

	r := runCLI(t, v, "", "dev", "ca")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("dev ca: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, p.caCert()) || !strings.Contains(r.stdout, "--cacert") {
		t.Errorf("dev ca does not say where the CA is and how to use it:\n%s", r.stdout)
	}
	ca, err := loadDevCA(p)
	if err != nil {
		t.Fatalf("dev ca made no CA: %v", err)
	}
	if r := runCLI(t, v, "", "dev", "ca"); r.code != exitOK {
		t.Errorf("second dev ca: exit %d %q", r.code, r.stderr)
	}
	if again, err := loadDevCA(p); err != nil || again.cert.SerialNumber.Cmp(ca.cert.SerialNumber) != 0 {
		t.Errorf("the second dev ca replaced the CA: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	checkClientCert := func(t *testing.T, certFile, keyFile, name string, maxLife time.Duration) {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("the client certificate files: %v", err)
		}
		leaf := pair.Leaf
		if leaf.Subject.CommonName != name {
			t.Errorf("Common Name %q, want %q", leaf.Subject.CommonName, name)
		}
		if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Errorf("extended key usage %v, want client auth only", leaf.ExtKeyUsage)
		}
		if leaf.IsCA || len(leaf.DNSNames)+len(leaf.IPAddresses) != 0 {
			t.Errorf("the client certificate is a CA or names hosts")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("the client certificate does not verify against the development CA: %v", err)
		}
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > maxLife || leaf.NotAfter.Before(time.Now()) {
			t.Errorf("valid %s .. %s, want at most %s", leaf.NotBefore, leaf.NotAfter, maxLife)
		}
		if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the key file: %v, want mode 600", err)
		}
	}

	t.Run("client-cert", func(t *testing.T) {
		r := runCLI(t, v, "", "dev", "client-cert", "--name", "svc")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		certFile, keyFile := filepath.Join(p.clientDir(), "svc.pem"), filepath.Join(p.clientDir(), "svc-key.pem")
		if !strings.Contains(r.stdout, certFile) || !strings.Contains(r.stdout, keyFile) {
			t.Errorf("stdout does not name the files:\n%s", r.stdout)
		}
		checkClientCert(t, certFile, keyFile, "svc", 30*24*time.Hour)
	})
	t.Run("client-cert --days 90 --out", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "certs")
		r := runCLI(t, v, "", "dev", "client-cert", "--name", "billing.worker-2", "--days", "90", "--out", out)
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		checkClientCert(t, filepath.Join(out, "billing.worker-2.pem"), filepath.Join(out, "billing.worker-2-key.pem"), "billing.worker-2", 90*24*time.Hour)
	})
	if again, err := loadDevCA(p); err != nil || again.cert.SerialNumber.Cmp(ca.cert.SerialNumber) != 0 {
		t.Errorf("client-cert replaced the CA: %v", err)
	}

	for _, tt := range []struct {
		what string
		args []string
		want []string
	}{
		{"no subcommand", []string{"dev"}, []string{"ca or client-cert"}},
		{"an unknown subcommand", []string{"dev", "server-cert"}, []string{"server-cert"}},
		{"ca with an argument", []string{"dev", "ca", "--force"}, []string{"no arguments"}},
		{"no --name", []string{"dev", "client-cert"}, []string{"--name"}},
		{"an empty name", []string{"dev", "client-cert", "--name", ""}, []string{"--name"}},
		{"upper case", []string{"dev", "client-cert", "--name", "Svc"}, []string{"--name"}},
		{"a leading dash", []string{"dev", "client-cert", "--name", "-svc"}, []string{"--name"}},
		{"a path", []string{"dev", "client-cert", "--name", "../../etc/x"}, []string{"--name"}},
		{"a slash", []string{"dev", "client-cert", "--name", "a/b"}, []string{"--name"}},
		{"a space", []string{"dev", "client-cert", "--name", "a b"}, []string{"--name"}},
		{"a line break", []string{"dev", "client-cert", "--name", "svc\nINFO admin"}, []string{"--name"}},
		{"65 characters", []string{"dev", "client-cert", "--name", strings.Repeat("a", 65)}, []string{"--name"}},
		{"--days 0", []string{"dev", "client-cert", "--name", "svc2", "--days", "0"}, []string{"--days"}},
		{"--days 91", []string{"dev", "client-cert", "--name", "svc2", "--days", "91"}, []string{"--days"}},
		{"--days -1", []string{"dev", "client-cert", "--name", "svc2", "--days", "-1"}, []string{"--days"}},
		{"--days x", []string{"dev", "client-cert", "--name", "svc2", "--days", "x"}, []string{"days"}},
		{"an unknown flag", []string{"dev", "client-cert", "--name", "svc2", "--ca-key", "k.pem"}, []string{"ca-key"}},
		{"a positional argument", []string{"dev", "client-cert", "--name", "svc2", "extra"}, []string{"positional"}},
	} {
		t.Run("refused: "+tt.what, func(t *testing.T) {
			before, _ := os.ReadDir(p.clientDir())
			wantFailure(t, runCLI(t, v, "", tt.args...), exitUsage, tt.want)
			if after, _ := os.ReadDir(p.clientDir()); len(after) != len(before) {
				t.Errorf("a refused command wrote files: %d before, %d after", len(before), len(after))
			}
		})
	}
	t.Run("control: 64 characters is the longest name", func(t *testing.T) {
		if r := runCLI(t, v, "", "dev", "client-cert", "--name", strings.Repeat("a", 64)); r.code != exitOK {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})

	t.Run("refused in production", func(t *testing.T) {
		prodData := t.TempDir()
		pv := productionVars().with("APP_DATA_DIR", prodData)
		if _, err := LoadConfig(pv.get); err != nil {
			t.Fatalf("the production configuration is refused: %v", err)
		}
		for _, args := range [][]string{{"dev", "ca"}, {"dev", "client-cert", "--name", "svc"}} {
			wantFailure(t, runCLI(t, pv, "", args...), exitUsage, []string{"development only", "APP_ENV=production"})
		}
		if _, err := os.Stat(filepath.Join(prodData, "tls")); !os.IsNotExist(err) {
			t.Errorf("a refused dev command wrote into the data folder: %v", err)
		}
	})
	t.Run("refused with a bad configuration", func(t *testing.T) {
		wantFailure(t, runCLI(t, v.with("APP_ENV", "staging"), "", "dev", "ca"), exitFail, []string{"APP_ENV"})
	})
}

// TestDevClientCertWithinCALifetime: a client certificate never outlives the
// CA that issued it (a CA a week or more from its end is kept, not remade).
func TestDevClientCertWithinCALifetime(t *testing.T) {
	dataDir := t.TempDir()
	p := devPKI{dir: filepath.Join(dataDir, "tls")}
	caKey := newECKey(t)
	ca := signCert(t, &x509.Certificate{Subject: devCAName,
		NotBefore: time.Now().Add(-355 * 24 * time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}, caKey, nil, nil)
	writePair(t, p.caCert(), p.caKey(), caKey, ca)

	if r := runCLI(t, vars{"APP_DATA_DIR": dataDir}, "", "dev", "client-cert", "--name", "svc", "--days", "30"); r.code != exitOK {
		t.Fatalf("exit %d %q", r.code, r.stderr)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(p.clientDir(), "svc.pem"), filepath.Join(p.clientDir(), "svc-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.Leaf.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("not issued by the kept CA: %v", err)
	}
	if pair.Leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("the client certificate ends %s, after its CA (%s)", pair.Leaf.NotAfter, ca.NotAfter)
	}
}

package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certificate helpers shared by the TLS tests: throwaway keys, CAs and
// leaves, written as PEM files the way an operator would provide them.

// newECKey returns a fresh ECDSA P-256 key.
func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// newRSAKey returns a fresh RSA-2048 key.
func newRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// signCert makes the certificate tmpl for key's public key, signed by
// parent with parentKey, or self-signed when parent is nil. A missing
// serial number is filled in.
func signCert(tb testing.TB, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	tb.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = newSerial()
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// writePair writes the chain (leaf first) to certFile and key, PKCS#8, to
// keyFile (0600).
func writePair(tb testing.TB, certFile, keyFile string, key crypto.Signer, chain ...*x509.Certificate) {
	tb.Helper()
	var certPEM []byte
	for _, c := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// serverTemplate is a server certificate for localhost and 127.0.0.1,
// valid from an hour ago for a day.
func serverTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
}

// clientTemplate is a client certificate for service cn, valid from an hour
// ago for a day.
func clientTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(tb testing.TB) testCA {
	tb.Helper()
	key := newECKey(tb)
	cert := signCert(tb, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, key, nil, nil)
	return testCA{cert: cert, key: key}
}

// pool returns a certificate pool holding only the CA.
func (ca testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// sign issues tmpl for key.
func (ca testCA) sign(tb testing.TB, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	tb.Helper()
	return signCert(tb, tmpl, key, ca.cert, ca.key)
}

// issue writes a server certificate for localhost signed by ca (chain
// included) and its key into dir, and returns the two paths.
func (ca testCA) issue(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key := newECKey(tb)
	leaf := ca.sign(tb, serverTemplate("localhost"), key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair(tb, certFile, keyFile, key, leaf, ca.cert)
	return certFile, keyFile
}

// clientCert returns a client certificate for tmpl signed by ca, ready for
// tls.Config.Certificates.
func (ca testCA) clientCert(tb testing.TB, tmpl *x509.Certificate) tls.Certificate {
	tb.Helper()
	key := newECKey(tb)
	leaf := ca.sign(tb, tmpl, key)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
}

// selfSignedPair writes a self-signed ECDSA server certificate for
// localhost and its key into dir and returns the two paths.
func selfSignedPair(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key := newECKey(tb)
	cert := signCert(tb, serverTemplate("localhost"), key, nil, nil)
	certFile, keyFile = filepath.Join(dir, "self-cert.pem"), filepath.Join(dir, "self-key.pem")
	writePair(tb, certFile, keyFile, key, cert)
	return certFile, keyFile
}

// devCAOf loads the development CA kept in dataDir/tls.
func devCAOf(tb testing.TB, dataDir string) *devCA {
	tb.Helper()
	ca, err := loadDevCA(devPKI{dir: filepath.Join(dataDir, "tls")})
	if err != nil {
		tb.Fatalf("the development CA in %s: %v", dataDir, err)
	}
	return ca
}

// poolFromFile returns a certificate pool of the PEM certificates in path.
func poolFromFile(tb testing.TB, path string) *x509.CertPool {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		tb.Fatalf("%s holds no certificate", path)
	}
	return p
}

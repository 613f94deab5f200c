package app

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The development PKI lives in DataDir/tls (git-ignored): a local CA that
// installs nothing anywhere, the server certificate it issues, and client
// certificates for the mTLS listener. Point curl at the CA with --cacert,
// or import it into a browser profile used for development.
//
// The CA is name-constrained to localhost, 127.0.0.0/8 and ::1: should its
// key leak, or should someone trust it in their everyday browser, it cannot
// vouch for any real host name.
const (
	devCAValidity     = 365 * 24 * time.Hour
	devCertValidity   = 30 * 24 * time.Hour // a leaked dev certificate is useless within weeks
	devClientValidity = 30 * 24 * time.Hour
)

// devCAName is the subject of every development CA. Production recognises
// certificates it issued by this issuer name and refuses them, as it refuses
// self-signed ones: both are made by the app for itself.
var devCAName = pkix.Name{CommonName: "Rampart development CA", Organization: []string{"Rampart development"}}

// devPKI names the files of the development PKI in dir.
type devPKI struct{ dir string }

func (p devPKI) caCert() string     { return filepath.Join(p.dir, "dev-ca.pem") }
func (p devPKI) caKey() string      { return filepath.Join(p.dir, "dev-ca-key.pem") }
func (p devPKI) serverCert() string { return filepath.Join(p.dir, "dev-cert.pem") }
func (p devPKI) serverKey() string  { return filepath.Join(p.dir, "dev-key.pem") }
func (p devPKI) clientDir() string  { return filepath.Join(p.dir, "clients") }

var devCertNames = []string{"localhost"}
var devCertIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// devCA is the loaded development CA.
type devCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// ensureDevCA loads the development CA, or makes it (ECDSA P-256, one year,
// path length 0, name-constrained) when it is missing or near its end.
func ensureDevCA(p devPKI, log *slog.Logger) (*devCA, error) {
	if ca, err := loadDevCA(p); err == nil && time.Until(ca.cert.NotAfter) > 7*24*time.Hour {
		return ca, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, loopback4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loopback6, _ := net.ParseCIDR("::1/128")
	notBefore := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:                newSerial(),
		Subject:                     devCAName,
		NotBefore:                   notBefore,
		NotAfter:                    notBefore.Add(devCAValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLen:                  0,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{"localhost"},
		PermittedIPRanges:           []*net.IPNet{loopback4, loopback6},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(p.caCert(), p.caKey(), der, key); err != nil {
		return nil, err
	}
	log.Info("made a development CA; trust it with curl --cacert (it installs nothing)", "path", p.caCert())
	return loadDevCA(p)
}

func loadDevCA(p devPKI) (*devCA, error) {
	pair, err := tls.LoadX509KeyPair(p.caCert(), p.caKey())
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || pair.Leaf == nil || !pair.Leaf.IsCA {
		return nil, errors.New("the development CA files do not hold a CA")
	}
	return &devCA{cert: pair.Leaf, key: signer}, nil
}

// devServerCertificate returns the development server certificate, issued
// by the development CA: ECDSA P-256 for localhost, 127.0.0.1 and ::1, valid
// 30 days, remade when it nears its end or the CA changed.
func devServerCertificate(dir string, log *slog.Logger) (tls.Certificate, error) {
	p := devPKI{dir: dir}
	ca, err := ensureDevCA(p, log)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("development CA: %w", err)
	}
	if cert, err := tls.LoadX509KeyPair(p.serverCert(), p.serverKey()); err == nil && devCertUsable(cert.Leaf, ca) {
		return cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	notBefore := time.Now().Add(-time.Hour) // back-dated for clock skew
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Rampart development"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(devCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              devCertNames,
		IPAddresses:           devCertIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeKeyPair(p.serverCert(), p.serverKey(), der, key); err != nil {
		return tls.Certificate{}, err
	}
	log.Info("made a development TLS certificate", "path", p.serverCert(), "ca", p.caCert(),
		"expires", tmpl.NotAfter.UTC().Format(time.RFC3339))
	return tls.LoadX509KeyPair(p.serverCert(), p.serverKey())
}

// devCertUsable reports whether a kept development certificate still has a
// day to live, chains to the current CA, and names exactly what we serve.
func devCertUsable(c *x509.Certificate, ca *devCA) bool {
	if c == nil || time.Until(c.NotAfter) < 24*time.Hour || !slices.Equal(c.DNSNames, devCertNames) || len(c.IPAddresses) != len(devCertIPs) {
		return false
	}
	for i, ip := range c.IPAddresses {
		if !ip.Equal(devCertIPs[i]) {
			return false
		}
	}
	return c.CheckSignatureFrom(ca.cert) == nil
}

// devIssued reports whether the leaf certificate was issued by a
// development CA (any one: the check is by issuer name, so a copy of the
// development certificate from another machine counts too). A leaf that
// does not parse counts as development-issued (fail closed).
func devIssued(cert tls.Certificate) bool {
	leaf, ok := leafOf(cert)
	return !ok || leaf.Issuer.CommonName == devCAName.CommonName && slices.Equal(leaf.Issuer.Organization, devCAName.Organization)
}

// issueDevClientCert issues a client certificate for service name from the
// development CA (Common Name = name, client-auth usage only) and writes
// NAME.pem and NAME-key.pem (0600) into outDir. It returns the two paths.
func issueDevClientCert(p devPKI, name, outDir string, validity time.Duration, log *slog.Logger) (certPath, keyPath string, err error) {
	ca, err := ensureDevCA(p, log)
	if err != nil {
		return "", "", fmt.Errorf("development CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Rampart development services"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(outDir, name+".pem"), filepath.Join(outDir, name+"-key.pem")
	if err := writeKeyPair(certPath, keyPath, der, key); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// writeKeyPair writes a certificate (0644) and its PKCS#8 key (0600), each
// atomically, creating the folder (0700).
func writeKeyPair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func newSerial() *big.Int {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return serial
}

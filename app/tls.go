package app

import (
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

// TLSConfig is the server's TLS profile: Mozilla "intermediate" (TLS 1.2
// and 1.3). TLS 1.2 is limited to ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305 (forward secrecy, AEAD only: no CBC, no static RSA);
// TLS 1.3 suites are fixed by Go and all strong. Groups: the hybrid
// post-quantum X25519MLKEM768 first, then X25519 and P-256.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		Certificates:     []tls.Certificate{cert},
		NextProtos:       []string{"h2", "http/1.1"},
	}
}

// devCertValidity is short on purpose: a development certificate that leaks
// is useless within weeks. It is remade when it nears its end.
const devCertValidity = 30 * 24 * time.Hour

var devCertNames = []string{"localhost"}
var devCertIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// loadCertificate returns the server certificate: from the configured
// files, or in development a self-made one under DataDir/tls (made on first
// run, reused while it is valid). Production refuses a self-signed
// certificate.
func loadCertificate(cfg Config, log *slog.Logger) (tls.Certificate, error) {
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE: cannot load the key pair: %w", err)
		}
		if cfg.Env == EnvProduction && selfSigned(cert) {
			return tls.Certificate{}, errors.New("APP_TLS_CERT_FILE is self-signed: production needs a certificate from a CA")
		}
		return cert, nil
	}
	if cfg.Env == EnvProduction {
		return tls.Certificate{}, errors.New("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE must be set in production")
	}
	return devCertificate(filepath.Join(cfg.DataDir, "tls"), log)
}

// selfSigned reports whether the leaf certificate is signed by its own key.
// It checks the signature itself: CheckSignatureFrom(leaf) would first
// refuse the leaf as an issuer because it is not a CA, and so call every
// self-signed server certificate CA-issued. A leaf that does not parse
// counts as self-signed (fail closed).
func selfSigned(cert tls.Certificate) bool {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return true
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return true
		}
	}
	return leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}

// devCertificate loads dir/dev-cert.pem and dev-key.pem, or makes them: an
// ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1, valid 30 days.
func devCertificate(dir string, log *slog.Logger) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "dev-cert.pem"), filepath.Join(dir, "dev-key.pem")
	if cert, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && devCertUsable(cert.Leaf) {
		return cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	// Back-dated an hour for clock skew; the lifetime stays devCertValidity.
	notBefore := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"Rampart development"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(devCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              devCertNames,
		IPAddresses:           devCertIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("keep the development certificate: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	log.Info("made a development TLS certificate", "path", certPath, "expires", tmpl.NotAfter.UTC().Format(time.RFC3339))
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// devCertUsable reports whether a kept development certificate still has a
// day to live and names exactly what we serve.
func devCertUsable(c *x509.Certificate) bool {
	if c == nil || time.Until(c.NotAfter) < 24*time.Hour || !slices.Equal(c.DNSNames, devCertNames) || len(c.IPAddresses) != len(devCertIPs) {
		return false
	}
	for i, ip := range c.IPAddresses {
		if !ip.Equal(devCertIPs[i]) {
			return false
		}
	}
	return true
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

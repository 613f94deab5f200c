package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLSConfig is the server's TLS profile: Mozilla "intermediate" (TLS 1.2
// and 1.3). TLS 1.2 is limited to ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305 (forward secrecy, AEAD only: no CBC, no static RSA);
// TLS 1.3 suites are fixed by Go and all strong. Groups: the hybrid
// post-quantum X25519MLKEM768 first, then X25519 and P-256.
func TLSConfig(cert tls.Certificate) *tls.Config {
	c := tlsProfile()
	c.Certificates = []tls.Certificate{cert}
	return c
}

// tlsProfile is TLSConfig without a certificate, for listeners that pick
// theirs per handshake (reloaded files, ACME).
func tlsProfile() *tls.Config {
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
		NextProtos:       []string{"h2", "http/1.1"},
	}
}

// loadCertificate returns the server certificate: from the configured
// files, or in development one issued by the development CA under
// DataDir/tls (made on first run, reused while it is valid). Production
// refuses a self-signed certificate and one from the development CA.
func loadCertificate(cfg Config, log *slog.Logger) (tls.Certificate, error) {
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE: cannot load the key pair: %w", err)
		}
		if cfg.Env == EnvProduction && selfSigned(cert) {
			return tls.Certificate{}, errors.New("APP_TLS_CERT_FILE is self-signed: production needs a certificate from a CA")
		}
		if cfg.Env == EnvProduction && devIssued(cert) {
			return tls.Certificate{}, errors.New("APP_TLS_CERT_FILE is issued by the Rampart development CA: production needs a certificate from a real CA")
		}
		return cert, nil
	}
	if cfg.Env == EnvProduction {
		return tls.Certificate{}, errors.New("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE must be set in production")
	}
	return devServerCertificate(filepath.Join(cfg.DataDir, "tls"), log)
}

// selfSigned reports whether the leaf certificate is signed by its own key.
// It checks the signature itself: CheckSignatureFrom(leaf) would first
// refuse the leaf as an issuer because it is not a CA, and so call every
// self-signed server certificate CA-issued. A leaf that does not parse
// counts as self-signed (fail closed).
func selfSigned(cert tls.Certificate) bool {
	leaf, ok := leafOf(cert)
	return !ok || leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}

// leafOf returns the parsed leaf of cert; ok is false when there is none or
// it does not parse.
func leafOf(cert tls.Certificate) (leaf *x509.Certificate, ok bool) {
	if cert.Leaf != nil {
		return cert.Leaf, true
	}
	if len(cert.Certificate) == 0 {
		return nil, false
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	return leaf, err == nil
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
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// certReloader serves the certificate of APP_TLS_CERT_FILE/APP_TLS_KEY_FILE
// and picks up new files without a restart: on a handshake, at most every
// checkEvery, it compares the files' modification times and sizes with
// those it loaded, and reloads when they differ (a renewal by certbot, a
// Kubernetes secret update). A pair that fails to load or to pass the
// production checks is logged and the current certificate stays.
type certReloader struct {
	cfg        Config
	log        *slog.Logger
	checkEvery time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string
	lastCheck time.Time
}

func newCertReloader(cfg Config, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{cfg: cfg, log: log, checkEvery: 5 * time.Second}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE: %w", err)
	}
	cert, err := loadCertificate(cfg, log)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.lastCheck = &cert, stamp, time.Now()
	return r, nil
}

// fileStamp identifies the current contents of both files.
func (r *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, path := range []string{r.cfg.TLSCertFile, r.cfg.TLSKeyFile} {
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.lastCheck) >= r.checkEvery {
		r.lastCheck = time.Now()
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	stamp, err := r.fileStamp()
	if err != nil {
		r.log.Warn("TLS certificate files cannot be read; keeping the loaded certificate", "error", err.Error())
		return
	}
	if stamp == r.stamp {
		return
	}
	cert, err := loadCertificate(r.cfg, r.log)
	if err != nil {
		// Half-written files (key replaced before the certificate) land
		// here; the next check after both are in place succeeds.
		r.log.Warn("new TLS certificate files refused; keeping the loaded certificate", "error", err.Error())
		return
	}
	r.cert, r.stamp = &cert, stamp
	r.log.Info("reloaded the TLS certificate", "path", r.cfg.TLSCertFile,
		"expires", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// serverTLSConfig returns the public listener's TLS configuration: the
// profile of TLSConfig with the certificate from ACME, from reloaded files,
// or from the development CA.
func serverTLSConfig(cfg Config, log *slog.Logger) (*tls.Config, error) {
	s, err := newServerTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	return s.config, nil
}

// serverTLS is the public listener's TLS configuration together with what
// supplies its certificate: the reloader of APP_TLS_CERT_FILE or the ACME
// manager (each nil when unused). Tests reach them through it, e.g. to make
// the reloader look at the files on every handshake.
type serverTLS struct {
	config   *tls.Config
	reloader *certReloader
	acme     *autocert.Manager
}

func newServerTLS(cfg Config, log *slog.Logger) (serverTLS, error) {
	s := serverTLS{config: tlsProfile()}
	switch {
	case len(cfg.ACMEDomains) > 0:
		s.acme = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...), // never a certificate for a name we did not list
			Cache:      autocert.DirCache(filepath.Join(cfg.DataDir, "acme")),
			Email:      cfg.ACMEEmail,
			Client:     &acme.Client{DirectoryURL: cfg.ACMEDirectory},
		}
		s.config.GetCertificate = s.acme.GetCertificate
		// TLS-ALPN-01: the CA validates on this TLS port itself, so no
		// plain-HTTP listener is needed for HTTP-01.
		s.config.NextProtos = append(s.config.NextProtos, acme.ALPNProto)
	case cfg.TLSCertFile != "":
		r, err := newCertReloader(cfg, log)
		if err != nil {
			return serverTLS{}, err
		}
		s.reloader = r
		s.config.GetCertificate = r.GetCertificate
	default:
		cert, err := loadCertificate(cfg, log)
		if err != nil {
			return serverTLS{}, err
		}
		s.config.Certificates = []tls.Certificate{cert}
	}
	return s, nil
}

// clientCAPool reads the pinned client CA(s) of APP_MTLS_CLIENT_CA. Only
// these verify client certificates: never the system roots.
func clientCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a path the operator configures
	if err != nil {
		return nil, fmt.Errorf("APP_MTLS_CLIENT_CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("APP_MTLS_CLIENT_CA holds no PEM certificate")
	}
	return pool, nil
}

// mutualTLSConfig derives from base a configuration that requires a client
// certificate and verifies it against pool during the handshake: a client
// without one, with one from another CA, expired, or without the
// client-auth usage never gets past the handshake.
func mutualTLSConfig(base *tls.Config, pool *x509.CertPool) *tls.Config {
	c := base.Clone()
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	c.NextProtos = []string{"h2", "http/1.1"}
	return c
}

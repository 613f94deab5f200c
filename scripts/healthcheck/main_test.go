package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsServer starts an HTTPS server answering /readyz with status and
// /moved with a redirect to /readyz, and writes its certificate (its own
// issuer: httptest's certificate is self-signed) to a PEM file.
func tlsServer(t *testing.T, status int) (srv *httptest.Server, caFile string) {
	t.Helper()
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(status)
		case "/moved":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	// The refused handshakes are the point of some cases: keep them out of
	// the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, block, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// otherCAFile writes a CA certificate that issued nothing the servers use
// (every httptest server shares one certificate, so a second server would
// not do).
func otherCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func probe(t *testing.T, args ...string) (code int, stderr string) {
	t.Helper()
	var b strings.Builder
	code = run(context.Background(), args, &b)
	return code, b.String()
}

// TestHealthcheck checks the probe's verdicts: 200 from a server whose
// certificate chains to -cacert is healthy; anything else, including a
// certificate it cannot verify, is not.
func TestHealthcheck(t *testing.T) {
	ok, okCA := tlsServer(t, http.StatusOK)
	down, downCA := tlsServer(t, http.StatusServiceUnavailable)
	otherCA := otherCAFile(t)

	tests := []struct {
		name string
		args []string
		want int
		says string
	}{
		{"ready", []string{"-cacert", okCA, ok.URL + "/readyz"}, exitHealthy, ""},
		{"host name given apart from the address", []string{"-cacert", okCA, "-servername", "example.com", ok.URL + "/readyz"}, exitHealthy, ""},
		{"not ready", []string{"-cacert", downCA, down.URL + "/readyz"}, exitUnhealthy, "503"},
		{"unknown path", []string{"-cacert", okCA, ok.URL + "/nothing"}, exitUnhealthy, "404"},
		{"redirect not followed", []string{"-cacert", okCA, ok.URL + "/moved"}, exitUnhealthy, "302"},
		{"certificate from another CA", []string{"-cacert", otherCA, ok.URL + "/readyz"}, exitUnhealthy, "certificate"},
		{"system roots do not know a private CA", []string{ok.URL + "/readyz"}, exitUnhealthy, "certificate"},
		{"certificate not for that name", []string{"-cacert", okCA, "-servername", "db.internal", ok.URL + "/readyz"}, exitUnhealthy, "certificate"},
		{"nothing listening", []string{"-cacert", okCA, "-timeout", "2s", "https://127.0.0.1:1/readyz"}, exitUnhealthy, "GET"},
		{"plain http refused", []string{"-cacert", okCA, strings.Replace(ok.URL, "https://", "http://", 1) + "/readyz"}, exitUsage, "https://"},
		{"credentials in the URL refused", []string{"-cacert", okCA, strings.Replace(ok.URL, "https://", "https://u:p@", 1) + "/readyz"}, exitUsage, "https://"},
		{"missing CA file", []string{"-cacert", filepath.Join(t.TempDir(), "none.pem"), ok.URL + "/readyz"}, exitUsage, "-cacert"},
		{"two URLs", []string{"-cacert", okCA, ok.URL, ok.URL}, exitUsage, "usage"},
		{"unknown flag", []string{"-insecure", ok.URL}, exitUsage, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := probe(t, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr)
			}
			if !strings.Contains(stderr, tt.says) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.says)
			}
		})
	}
}

// TestHealthcheckDeadline checks that a server that never answers makes
// the probe fail within its -timeout instead of hanging Docker's check.
func TestHealthcheckDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, stderr := probe(t, "-cacert", caFile, "-timeout", "300ms", srv.URL+"/readyz")
	if code != exitUnhealthy {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitUnhealthy, stderr)
	}
	// Generous: the point is that it does not wait for the server.
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the probe waited %s for a server that never answers", waited)
	}
}

package main

// Tests of what docker-compose.yml needs at run time, without Docker:
// scripts/compose-secrets.sh makes every secret file the compose file
// names, with the right shape and modes; the app's compose environment,
// with those files where the containers see them, is a configuration that
// production accepts; and the app's health-check command, as written in
// the compose file, passes against a server using the compose certificate
// and the app's TLS profile.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-go/rampart/app"
)

// needTool skips the test when a command is missing, except in CI, where
// it fails: CI must run every test.
func needTool(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not installed; in CI this test must run", name)
		}
		tb.Skipf("%s is not installed", name)
	}
}

// makeComposeSecrets runs scripts/compose-secrets.sh into a new folder and
// returns it.
func makeComposeSecrets(tb testing.TB) string {
	tb.Helper()
	needTool(tb, "bash")
	needTool(tb, "openssl")
	dir := filepath.Join(tb.TempDir(), "secrets")
	runComposeSecrets(tb, dir)
	return dir
}

func runComposeSecrets(tb testing.TB, dir string) string {
	tb.Helper()
	out, err := exec.Command("bash", "scripts/compose-secrets.sh", dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("scripts/compose-secrets.sh: %v\n%s", err, out)
	}
	return string(out)
}

// readFiles returns the contents of every file in dir.
func readFiles(tb testing.TB, dir string) map[string][]byte {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func parseCert(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		tb.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return c
}

// TestComposeSecretsScript checks scripts/compose-secrets.sh: it makes
// every file docker-compose.yml mounts, keys and passwords of the right
// strength, a name-constrained CA, server certificates valid for exactly
// their service names, modes that keep other users out, and a second run
// changes nothing while a removed file is made again alone.
func TestComposeSecretsScript(t *testing.T) {
	dir := makeComposeSecrets(t)
	p := loadCompose(t)

	// Every file the compose file mounts exists.
	for name, s := range p.Secrets {
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(s.File))); err != nil {
			t.Errorf("the script does not make %s (secret %s)", filepath.Base(s.File), name)
		}
	}

	// Modes: the folder keeps other users out; the CA key is private;
	// what containers read is readable by their (other) users.
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets folder mode = %v, want 0700", fi.Mode().Perm())
	}
	files := readFiles(t, dir)
	for name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if name == "ca-key.pem" {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), want)
		}
		if strings.HasSuffix(name, ".tmp") {
			t.Errorf("a temporary file was left behind: %s", name)
		}
	}

	for _, name := range []string{"cursor_key", "webhook_key", "alert_webhook_key"} {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(files[name])))
		if err != nil || len(key) < 32 || bytes.Count(key, key[:1]) == len(key) {
			t.Errorf("%s is not base64 of 32 random bytes", name)
		}
	}
	if pw := strings.TrimSpace(string(files["database_password"])); len(pw) < 32 {
		t.Errorf("database_password has %d characters, want at least 32", len(pw))
	} else if _, err := hex.DecodeString(pw); err != nil {
		t.Errorf("database_password is not hex (it must be safe in a URL): %v", err)
	}
	if bytes.Equal(files["cursor_key"], files["alert_webhook_key"]) || bytes.Equal(files["cursor_key"], files["webhook_key"]) ||
		bytes.Equal(files["webhook_key"], files["alert_webhook_key"]) {
		t.Error("two of the app's keys are the same key")
	}

	ca := parseCert(t, filepath.Join(dir, "ca.pem"))
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("ca.pem: IsCA=%v MaxPathLen=%d: want a CA that can issue only end-entity certificates", ca.IsCA, ca.MaxPathLen)
	}
	if !ca.PermittedDNSDomainsCritical || !slices.Equal(ca.PermittedDNSDomains, []string{"localhost", "app", "postgres", "redis"}) {
		t.Errorf("ca.pem: name constraints %v (critical %v), want exactly localhost, app, postgres, redis",
			ca.PermittedDNSDomains, ca.PermittedDNSDomainsCritical)
	}
	var ranges []string
	for _, r := range ca.PermittedIPRanges {
		ranges = append(ranges, r.String())
	}
	if !slices.Equal(ranges, []string{"127.0.0.0/8", "::1/128"}) {
		t.Errorf("ca.pem: permitted IP ranges %v, want the loopback ones", ranges)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	leaves := map[string][]string{
		"app":      {"localhost", "app", "127.0.0.1", "::1"},
		"postgres": {"postgres"},
		"redis":    {"redis", "127.0.0.1"},
	}
	for name, hosts := range leaves {
		certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			t.Errorf("%s: certificate and key do not match: %v", name, err)
		}
		leaf := parseCert(t, certFile)
		if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key is not ECDSA P-256", name)
		}
		if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 91*24*time.Hour {
			t.Errorf("%s: valid for %s, want at most 90 days", name, life)
		}
		if leaf.IsCA {
			t.Errorf("%s: a server certificate must not be a CA", name)
		}
		for _, host := range hosts {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("%s.pem does not verify for %s: %v", name, host, err)
			}
		}
		for _, other := range []string{"example.com", "db"} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: other, Roots: roots}); err == nil {
				t.Errorf("%s.pem verifies for %s, which it is not for", name, other)
			}
		}
	}

	// The name constraints hold even for a certificate the CA's own key
	// issues: one for another host does not verify.
	t.Run("name constraints", func(t *testing.T) {
		caKeyPEM, _ := pem.Decode(files["ca-key.pem"])
		if caKeyPEM == nil {
			t.Fatal("ca-key.pem holds no PEM key")
		}
		caKey, err := x509.ParsePKCS8PrivateKey(caKeyPEM.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7),
			Subject:      pkix.Name{CommonName: "bank.example"},
			DNSNames:     []string{"bank.example"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		rogue, _ := x509.ParseCertificate(der)
		_, err = rogue.Verify(x509.VerifyOptions{DNSName: "bank.example", Roots: roots})
		var invalid x509.CertificateInvalidError
		if !errors.As(err, &invalid) || invalid.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("a certificate for bank.example from the compose CA: got %v, want CANotAuthorizedForThisName", err)
		}
	})

	// Running it again keeps everything; a removed certificate is remade
	// alone, still from the same CA.
	out := runComposeSecrets(t, dir)
	if !strings.Contains(out, "nothing made") {
		t.Errorf("second run: %s", out)
	}
	again := readFiles(t, dir)
	for name, b := range files {
		if !bytes.Equal(again[name], b) {
			t.Errorf("second run changed %s", name)
		}
	}
	if err := os.Remove(filepath.Join(dir, "app.pem")); err != nil {
		t.Fatal(err)
	}
	runComposeSecrets(t, dir)
	third := readFiles(t, dir)
	for name, b := range files {
		changed := !bytes.Equal(third[name], b)
		if want := name == "app.pem" || name == "app-key.pem"; changed != want {
			t.Errorf("after removing app.pem, %s changed: %v, want %v", name, changed, want)
		}
	}
}

// runSecretsFor lays out, in a new folder, the files service sees under
// /run/secrets (each mounted secret under its target name, from the folder
// the script made) and returns that folder.
func runSecretsFor(tb testing.TB, service, made string) string {
	tb.Helper()
	p := loadCompose(tb)
	run := filepath.Join(tb.TempDir(), "run-secrets")
	if err := os.Mkdir(run, 0o700); err != nil {
		tb.Fatal(err)
	}
	for _, ref := range p.Services[service].Secrets {
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		target = strings.TrimPrefix(target, secretsMount)
		b, err := os.ReadFile(filepath.Join(made, filepath.Base(p.Secrets[ref.Source].File)))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(run, target), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return run
}

// TestComposeAppConfigIsProduction runs `rampart config` with the app
// service's environment from docker-compose.yml, /run/secrets being the
// files the script made: production must accept it (TLS files, file
// secrets, PostgreSQL with verify-full and a CA file that exists), and the
// printed configuration must not show the database password.
func TestComposeAppConfigIsProduction(t *testing.T) {
	made := makeComposeSecrets(t)
	run := runSecretsFor(t, appService, made)
	data := t.TempDir()
	env := map[string]string{}
	for k, v := range loadCompose(t).Services[appService].Environment {
		if v == nil {
			continue
		}
		val := strings.ReplaceAll(*v, strings.TrimSuffix(secretsMount, "/"), run)
		if k == "APP_DATA_DIR" {
			val = data
		}
		env[k] = val
	}
	var stdout, stderr bytes.Buffer
	code := app.Main(context.Background(), []string{"config"}, app.Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
	})
	if code != 0 {
		t.Fatalf("rampart config with the compose environment: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "APP_ENV=production") {
		t.Errorf("rampart config did not run in production:\n%s", stdout.String())
	}
	pw := strings.TrimSpace(string(readFiles(t, made)["database_password"]))
	if strings.Contains(stdout.String()+stderr.String(), pw) {
		t.Error("rampart config printed the database password")
	}
	// Production refuses a self-signed certificate: the compose one is
	// issued by the compose CA.
	cert := parseCert(t, env["APP_TLS_CERT_FILE"])
	if bytes.Equal(cert.RawIssuer, cert.RawSubject) || cert.CheckSignatureFrom(parseCert(t, filepath.Join(made, "ca.pem"))) != nil {
		t.Error("the app's compose certificate is not issued by the compose CA")
	}
}

// TestComposeAppHealthcheck runs the app's health check exactly as
// docker-compose.yml writes it (the probe built from scripts/healthcheck,
// the compose CA, https://127.0.0.1:8443/readyz) against a server with the
// compose certificate and the app's own TLS profile (app.TLSConfig): ready
// is healthy, 503 is not.
func TestComposeAppHealthcheck(t *testing.T) {
	made := makeComposeSecrets(t)
	run := runSecretsFor(t, appService, made)
	needTool(t, "go")
	probe := filepath.Join(t.TempDir(), "healthcheck")
	if out, err := exec.Command("go", "build", "-o", probe, "./scripts/healthcheck").CombinedOutput(); err != nil {
		t.Fatalf("go build ./scripts/healthcheck: %v\n%s", err, out)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(run, "app_tls_cert"), filepath.Join(run, "app_tls_key"))
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.TLS = app.TLSConfig(cert)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	test := loadCompose(t).Services[appService].HealthCheck.Test
	argv := slices.Clone(test[2:])
	for i, a := range argv {
		a = strings.ReplaceAll(a, strings.TrimSuffix(secretsMount, "/"), run)
		argv[i] = strings.ReplaceAll(a, ":8443/", ":"+strconv.Itoa(port)+"/")
	}
	check := func() (int, string) {
		out, err := exec.Command(probe, argv...).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatal(err)
		return -1, ""
	}
	if code, out := check(); code != 0 {
		t.Errorf("health check %v against a ready server: exit %d, want 0\n%s", argv, code, out)
	}
	down.Store(true)
	if code, out := check(); code != 1 {
		t.Errorf("health check against a server answering 503: exit %d, want 1\n%s", code, out)
	}
}

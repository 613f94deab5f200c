package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests drive the listeners that `rampart serve` (app.Main) starts,
// over real TCP connections: the TLS profile, the mTLS service listener and
// the metrics listener.

// serverRefusal completes the client side of a TLS handshake with addr and
// then reads, without sending a request, and returns the error that ended
// the connection. A server that refuses the client (a version, a suite, a
// client certificate) answers with a TLS alert: "remote error: tls: ...",
// during the handshake in TLS 1.2, on the first read in TLS 1.3 (where the
// server checks the client certificate after the client has finished). A
// server that accepted instead waits for a request until its header
// timeout and closes: EOF, not an alert.
func serverRefusal(tb testing.TB, addr string, cfg *tls.Config) error {
	tb.Helper()
	d := &net.Dialer{Timeout: hangGuard}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangGuard))
	_, err = conn.Read(make([]byte, 1))
	if err == nil {
		return fmt.Errorf("the server sent application data without a request")
	}
	return err
}

// wantRefused checks that err is the server's TLS alert.
func wantRefused(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		tb.Fatal("the handshake succeeded")
	}
	if !strings.Contains(err.Error(), "remote error: tls:") {
		tb.Errorf("error %q is not the server's refusal (a TLS alert)", err)
	}
}

// getWith makes one GET request to https://addr+path with the client TLS
// settings cfg (RootCAs included) and an optional bearer token, and
// returns the status, the body and the TLS state.
func getWith(tb testing.TB, addr, path string, cfg *tls.Config, token string) (int, string, *tls.ConnectionState, error) {
	tb.Helper()
	tr := &http.Transport{TLSClientConfig: cfg.Clone()}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: hangGuard}
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: reading the answer: %v", path, err)
	}
	return resp.StatusCode, string(body), resp.TLS, nil
}

// plainHTTPAnswer sends a plain-HTTP request to addr and returns what came
// back before the server closed the connection.
func plainHTTPAnswer(tb testing.TB, addr, path string) []byte {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangGuard))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	answer, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		tb.Errorf("plain HTTP to %s: the connection was left open: %v", addr, err)
	}
	return answer
}

// listening returns the names of the listeners serve said it opened.
func listening(tb testing.TB, log string) []string {
	tb.Helper()
	var names []string
	for _, line := range strings.Split(log, "\n") {
		var rec struct{ Msg, Listener string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			names = append(names, rec.Listener)
		}
	}
	return names
}

// legacyGoTLSDefaults turns Go's own TLS defaults back to what they were
// before Go 1.22 for the rest of the test: TLS 1.0 and 1.1 served, RSA key
// exchange and 3DES among the default suites. Go applies a changed GODEBUG
// at once. With them, only the server's own configuration (MinVersion,
// CipherSuites) refuses weak handshakes, so the tests below fail when that
// configuration is removed, not only when Go's defaults change. (The test
// cannot run in parallel: GODEBUG is process-wide.)
func legacyGoTLSDefaults(t *testing.T) {
	t.Setenv("GODEBUG", "tls10server=1,tlsrsakex=1,tls3des=1")
}

// TestTLSProfileOnServe runs the handshake matrix against the public
// listener that serve starts: with the development certificate (ECDSA) and
// with an RSA certificate from files, since the suites differ by key type.
func TestTLSProfileOnServe(t *testing.T) {
	legacyGoTLSDefaults(t)
	ecdsaRun := startServe(t)
	if got := listening(t, ecdsaRun.output.String()); len(got) != 1 || got[0] != "public" {
		t.Errorf("with APP_METRICS_ADDR=off and no APP_MTLS_ADDR serve listens on %v, want [public]", got)
	}

	ca := newTestCA(t)
	dir := t.TempDir()
	rsaKey := newRSAKey(t)
	rsaLeaf := ca.sign(t, serverTemplate("localhost"), rsaKey)
	certFile, keyFile := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "rsa-key.pem")
	writePair(t, certFile, keyFile, rsaKey, rsaLeaf, ca.cert)
	rsaRun := startServeWith(t, vars{"APP_TLS_CERT_FILE": certFile, "APP_TLS_KEY_FILE": keyFile}, ca.pool())

	with := func(run *serveRun, c *tls.Config) *tls.Config {
		c = c.Clone()
		c.RootCAs = run.roots
		return c
	}
	// Old versions are refused for their version (MinVersion), not only
	// because none of our suites exists before TLS 1.2.
	const oldVersion = "protocol version not supported"
	refused := []struct {
		what  string
		run   *serveRun
		cfg   *tls.Config
		alert string // the server's alert, when it matters which
	}{
		{"TLS 1.0", ecdsaRun, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, oldVersion},
		{"TLS 1.1", ecdsaRun, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, oldVersion},
		{"TLS 1.1 (RSA)", rsaRun, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, oldVersion},
		{"TLS 1.1 offering CBC suites", rsaRun, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, oldVersion},
		{"TLS 1.2 offering only CBC suites (ECDSA)", ecdsaRun, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, ""},
		{"TLS 1.2 offering only CBC suites (RSA)", rsaRun, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, ""},
		{"TLS 1.2 offering only static-RSA key exchange", rsaRun, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}}, ""},
		{"TLS 1.2 offering only 3DES", rsaRun, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}, ""},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.what, func(t *testing.T) {
			err := serverRefusal(t, tt.run.addr, with(tt.run, tt.cfg))
			wantRefused(t, err)
			if err != nil && !strings.Contains(err.Error(), tt.alert) {
				t.Errorf("alert %q, want %q", err, tt.alert)
			}
		})
	}

	accepted := []struct {
		what    string
		run     *serveRun
		cfg     *tls.Config
		version uint16
		suite   uint16
		curve   tls.CurveID
	}{
		{"TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256", ecdsaRun, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0},
		{"TLS 1.2 ECDHE-ECDSA-AES256-GCM-SHA384", ecdsaRun, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
			tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, 0},
		{"TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305", ecdsaRun, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0},
		{"TLS 1.2 over P-256", ecdsaRun, &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.CurveP256}},
			tls.VersionTLS12, 0, tls.CurveP256},
		{"TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256", rsaRun, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 0},
		{"TLS 1.2 ECDHE-RSA-CHACHA20-POLY1305", rsaRun, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}},
			tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, 0},
		{"TLS 1.3", ecdsaRun, &tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13, 0, 0},
		{"TLS 1.3 (RSA)", rsaRun, &tls.Config{MinVersion: tls.VersionTLS13}, tls.VersionTLS13, 0, 0},
		{"TLS 1.3 with X25519MLKEM768 offered", ecdsaRun, &tls.Config{MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}, tls.VersionTLS13, 0, tls.X25519MLKEM768},
		{"TLS 1.3 with X25519 only", ecdsaRun, &tls.Config{MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519}}, tls.VersionTLS13, 0, tls.X25519},
		{"default client", ecdsaRun, &tls.Config{}, tls.VersionTLS13, 0, tls.X25519MLKEM768},
	}
	for _, tt := range accepted {
		t.Run("accepted: "+tt.what, func(t *testing.T) {
			status, body, st, err := getWith(t, tt.run.addr, "/healthz", with(tt.run, tt.cfg), "")
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if status != http.StatusOK || !strings.Contains(body, `"ok"`) {
				t.Errorf("/healthz: %d %q", status, body)
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

	// Go would otherwise answer "400 Bad Request: client sent an HTTP
	// request to an HTTPS server"; not a byte comes back.
	for _, run := range []*serveRun{ecdsaRun, rsaRun} {
		if answer := plainHTTPAnswer(t, run.addr, "/healthz"); len(answer) != 0 {
			t.Errorf("plain HTTP to the TLS port got an answer: %q", answer)
		}
	}
}

// mtlsRun is serve with the mTLS service listener and the loopback metrics
// listener, trusting the development CA for client certificates, and a
// client certificate for service "svc" made with `rampart dev client-cert`.
type mtlsRun struct {
	*serveRun
	mtlsAddr, metricsAddr string
	ca                    *devCA
	svc                   tls.Certificate
}

func startMTLS(tb testing.TB) *mtlsRun {
	tb.Helper()
	dataDir := tb.TempDir()
	v := vars{"APP_DATA_DIR": dataDir}
	for _, args := range [][]string{{"dev", "ca"}, {"dev", "client-cert", "--name", "svc"}} {
		if r := runCLI(tb, v, "", args...); r.code != exitOK {
			tb.Fatalf("%v: exit %d %q", args, r.code, r.stderr)
		}
	}
	p := devPKI{dir: filepath.Join(dataDir, "tls")}
	svc, err := tls.LoadX509KeyPair(filepath.Join(p.clientDir(), "svc.pem"), filepath.Join(p.clientDir(), "svc-key.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	m := &mtlsRun{
		mtlsAddr:    "127.0.0.1:" + itoa(freePort(tb)),
		metricsAddr: "127.0.0.1:" + itoa(freePort(tb)),
		svc:         svc,
	}
	m.serveRun = startServeWith(tb, vars{
		"APP_DATA_DIR":       dataDir,
		"APP_MTLS_ADDR":      m.mtlsAddr,
		"APP_MTLS_CLIENT_CA": p.caCert(),
		"APP_METRICS_ADDR":   m.metricsAddr,
	}, nil)
	m.ca = devCAOf(tb, dataDir)
	return m
}

// withCert returns client TLS settings trusting the development CA and
// presenting certs.
func (m *mtlsRun) withCert(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: m.roots, Certificates: certs}
}

// devIssuedClient issues a client certificate from tmpl with the
// development CA's key, as `rampart dev client-cert` would but with any
// dates and usages.
func (m *mtlsRun) devIssuedClient(tb testing.TB, tmpl *x509.Certificate) tls.Certificate {
	tb.Helper()
	return testCA{cert: m.ca.cert, key: m.ca.key}.clientCert(tb, tmpl)
}

func TestMTLSListener(t *testing.T) {
	t.Parallel()
	m := startMTLS(t)
	if got := strings.Join(listening(t, m.output.String()), ","); got != "public,service,metrics" {
		t.Errorf("serve listens on %s, want public,service,metrics", got)
	}

	// A user with a bearer token, to show that tokens open nothing on the
	// service listener.
	var user struct{ ID string }
	if code := m.call(t, http.MethodPost, "/v1/auth/register", "", registerBody("mtls@example.com"), &user); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	var login struct{ Token string }
	if code := m.call(t, http.MethodPost, "/v1/auth/login", "", fmt.Sprintf(`{"email":"mtls@example.com","password":%q}`, servePassword), &login); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}

	expired := clientTemplate("svc")
	expired.NotBefore, expired.NotAfter = time.Now().Add(-10*24*time.Hour), time.Now().Add(-24*time.Hour)
	notYet := clientTemplate("svc")
	notYet.NotBefore, notYet.NotAfter = time.Now().Add(24*time.Hour), time.Now().Add(48*time.Hour)
	serverOnly := clientTemplate("svc")
	serverOnly.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	otherCA := newTestCA(t)

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		refused := []struct {
			what  string
			certs []tls.Certificate
		}{
			{"no client certificate", nil},
			{"a certificate from another CA", []tls.Certificate{otherCA.clientCert(t, clientTemplate("svc"))}},
			{"an expired certificate from the pinned CA", []tls.Certificate{m.devIssuedClient(t, expired)}},
			{"a not-yet-valid certificate from the pinned CA", []tls.Certificate{m.devIssuedClient(t, notYet)}},
			{"a server-auth-only certificate from the pinned CA", []tls.Certificate{m.devIssuedClient(t, serverOnly)}},
			{"the server's own certificate", []tls.Certificate{devCert(t, filepath.Join(m.dataDir, "tls"))}},
		}
		for _, tt := range refused {
			t.Run(tls.VersionName(version)+" refused: "+tt.what, func(t *testing.T) {
				cfg := m.withCert(tt.certs...)
				cfg.MinVersion, cfg.MaxVersion = version, version
				wantRefused(t, serverRefusal(t, m.mtlsAddr, cfg))
				// And through an HTTP client: no answer at all, token or not.
				if status, _, _, err := getWith(t, m.mtlsAddr, "/internal/v1/stats", cfg, login.Token); err == nil {
					t.Errorf("got an HTTP answer (%d) without a valid client certificate", status)
				}
			})
		}
	}

	t.Run("a certificate from `rampart dev client-cert` is the service principal", func(t *testing.T) {
		for _, token := range []string{"", login.Token} {
			status, body, st, err := getWith(t, m.mtlsAddr, "/internal/v1/stats", m.withCert(m.svc), token)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var stats struct {
				Service string `json:"service"`
				Users   *int64 `json:"users"`
			}
			if status != http.StatusOK || json.Unmarshal([]byte(body), &stats) != nil || stats.Service != "svc" || stats.Users == nil || *stats.Users < 1 {
				t.Errorf("with token %v: %d %s, want 200 with \"service\":\"svc\"", token != "", status, body)
			}
			if len(st.VerifiedChains) == 0 && len(st.PeerCertificates) == 0 {
				t.Errorf("no server certificate")
			}
		}
	})
	t.Run("a pinned-CA certificate whose Common Name is no service name gets 401", func(t *testing.T) {
		cert := m.devIssuedClient(t, clientTemplate("Svc Admin"))
		status, body, _, err := getWith(t, m.mtlsAddr, "/internal/v1/stats", m.withCert(cert), "")
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if status != http.StatusUnauthorized || strings.Contains(body, "Svc Admin") {
			t.Errorf("%d %s, want 401 (without echoing the name)", status, body)
		}
	})

	notFound := []struct {
		what, addr, path, token string
		cfg                     *tls.Config
	}{
		{"the service route on the public listener", m.addr, "/internal/v1/stats", "", m.withCert(m.svc)},
		{"the service route on the public listener, with a token", m.addr, "/internal/v1/stats", login.Token, m.withCert()},
		{"a user route on the service listener", m.mtlsAddr, "/v1/me", "", m.withCert(m.svc)},
		{"a user route on the service listener, with a token", m.mtlsAddr, "/v1/me", login.Token, m.withCert(m.svc)},
		{"the user's projects on the service listener, with a token", m.mtlsAddr, "/v1/projects", login.Token, m.withCert(m.svc)},
		{"health on the service listener", m.mtlsAddr, "/healthz", "", m.withCert(m.svc)},
		{"metrics on the service listener", m.mtlsAddr, "/metrics", "", m.withCert(m.svc)},
		{"metrics on the public listener", m.addr, "/metrics", "", m.withCert()},
	}
	for _, tt := range notFound {
		t.Run("404: "+tt.what, func(t *testing.T) {
			status, body, _, err := getWith(t, tt.addr, tt.path, tt.cfg, tt.token)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusNotFound {
				t.Errorf("%d %s, want 404", status, body)
			}
		})
	}
	// Control: the same token works where it belongs.
	if status, _, _, err := getWith(t, m.addr, "/v1/me", m.withCert(), login.Token); err != nil || status != http.StatusOK {
		t.Errorf("/v1/me on the public listener with the token: %d %v", status, err)
	}

	for _, addr := range []string{m.mtlsAddr, m.metricsAddr} {
		if answer := plainHTTPAnswer(t, addr, "/metrics"); len(answer) != 0 {
			t.Errorf("plain HTTP to %s got an answer: %q", addr, answer)
		}
	}
}

func TestMetricsListener(t *testing.T) {
	t.Parallel()
	m := startMTLS(t)
	const rawID = "0b9e3a5c-7f2d-4e61-9a44-3f1c2d5e8b70"
	// Requests whose raw paths must not become label values.
	for _, path := range []string{"/v1/projects/" + rawID, "/v1/projects/" + rawID + "/tasks/" + rawID, "/no/such/" + rawID} {
		if _, _, _, err := getWith(t, m.addr, path, m.withCert(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if status, _, _, err := getWith(t, m.mtlsAddr, "/internal/v1/stats", m.withCert(m.svc), ""); err != nil || status != http.StatusOK {
		t.Fatalf("stats: %d %v", status, err)
	}

	scrape := func(t *testing.T, addr string, cfg *tls.Config) string {
		t.Helper()
		status, body, _, err := getWith(t, addr, "/metrics", cfg, "")
		if err != nil || status != http.StatusOK {
			t.Fatalf("/metrics: %d %v", status, err)
		}
		return body
	}
	// The counter moves after the answer is written; wait until it shows the
	// last request (a hang guard, not a time limit).
	want := []string{
		`rampart_http_requests_total{listener="public",method="GET",route="/v1/projects/:id",status="401"}`,
		`rampart_http_requests_total{listener="public",method="GET",route="/v1/projects/:id/tasks/:task_id",status="401"}`,
		`rampart_http_requests_total{listener="service",method="GET",route="/internal/v1/stats",status="200"}`,
		`route="(unmatched)"`,
		"rampart_http_request_duration_seconds_bucket",
		"rampart_password_verifications_total",
		"rampart_session_cache_hits_total",
		"rampart_session_cache_misses_total",
		"rampart_session_cache_up 1",
		"go_goroutines",
	}
	var body string
	for deadline := time.Now().Add(hangGuard); ; {
		body = scrape(t, m.metricsAddr, m.withCert())
		if strings.Contains(body, rawID) {
			t.Fatalf("/metrics shows a raw id from a request path:\n%s", body)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", missing, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(body, "# TYPE rampart_http_requests_total counter") {
		t.Errorf("/metrics is not Prometheus text")
	}

	t.Run("over TLS only, with the server profile", func(t *testing.T) {
		wantRefused(t, serverRefusal(t, m.metricsAddr, &tls.Config{RootCAs: m.roots, MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}))
		_, _, st, err := getWith(t, m.metricsAddr, "/metrics", m.withCert(), "")
		if err != nil || st.Version != tls.VersionTLS13 {
			t.Errorf("metrics over %v: %v", st, err)
		}
	})
	t.Run("only GET /metrics", func(t *testing.T) {
		for _, path := range []string{"/", "/healthz", "/v1/me", "/debug/pprof/"} {
			if status, _, _, err := getWith(t, m.metricsAddr, path, m.withCert(), ""); err != nil || status != http.StatusNotFound {
				t.Errorf("%s on the metrics listener: %d %v, want 404", path, status, err)
			}
		}
	})
}

// serveMustFail runs serve (Main without arguments) with v, expecting it to
// refuse to start. Should it start instead, it is stopped as soon as it
// logs that it listens, and the test fails rather than hangs.
func serveMustFail(tb testing.TB, v vars) cliResult {
	tb.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, nil, Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: v.get})
	}()
	deadline := time.After(hangGuard)
	for {
		select {
		case code := <-done:
			return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
		case <-deadline:
			cancel()
			<-done
			tb.Fatalf("serve neither failed nor listened:\n%s", stderr.String())
		case <-time.After(10 * time.Millisecond):
			if len(listening(tb, stderr.String())) > 0 {
				cancel()
				<-done
				tb.Fatalf("serve started instead of refusing the configuration:\n%s", stderr.String())
			}
		}
	}
}

func TestMetricsOffTheLoopback(t *testing.T) {
	t.Parallel()

	t.Run("without APP_MTLS_CLIENT_CA serve refuses to start", func(t *testing.T) {
		v := vars{"APP_DATA_DIR": t.TempDir(), "APP_ADDR": "127.0.0.1:" + itoa(freePort(t)), "APP_METRICS_ADDR": "0.0.0.0:" + itoa(freePort(t))}
		wantFailure(t, serveMustFail(t, v), exitFail, []string{"APP_METRICS_ADDR", "APP_MTLS_CLIENT_CA"})
	})

	t.Run("with APP_MTLS_CLIENT_CA scrapers need a client certificate", func(t *testing.T) {
		dataDir := t.TempDir()
		v := vars{"APP_DATA_DIR": dataDir}
		if r := runCLI(t, v, "", "dev", "client-cert", "--name", "prometheus"); r.code != exitOK {
			t.Fatalf("dev client-cert: %d %q", r.code, r.stderr)
		}
		p := devPKI{dir: filepath.Join(dataDir, "tls")}
		port := itoa(freePort(t))
		run := startServeWith(t, vars{
			"APP_DATA_DIR":       dataDir,
			"APP_METRICS_ADDR":   "0.0.0.0:" + port,
			"APP_MTLS_CLIENT_CA": p.caCert(),
		}, nil)
		if got := strings.Join(listening(t, run.output.String()), ","); got != "public,metrics" {
			t.Errorf("serve listens on %s, want public,metrics", got)
		}
		addr := "127.0.0.1:" + port
		wantRefused(t, serverRefusal(t, addr, &tls.Config{RootCAs: run.roots}))
		wantRefused(t, serverRefusal(t, addr, &tls.Config{RootCAs: run.roots, MaxVersion: tls.VersionTLS12}))
		other := newTestCA(t).clientCert(t, clientTemplate("prometheus"))
		wantRefused(t, serverRefusal(t, addr, &tls.Config{RootCAs: run.roots, Certificates: []tls.Certificate{other}}))

		scraper, err := tls.LoadX509KeyPair(filepath.Join(p.clientDir(), "prometheus.pem"), filepath.Join(p.clientDir(), "prometheus-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		status, body, _, err := getWith(t, addr, "/metrics", &tls.Config{RootCAs: run.roots, Certificates: []tls.Certificate{scraper}}, "")
		if err != nil || status != http.StatusOK || !strings.Contains(body, "rampart_http_requests_total") {
			t.Errorf("a scraper with a client certificate: %d %v", status, err)
		}
		// The public listener still asks nobody for a certificate.
		if status, _, _, err := getWith(t, run.addr, "/healthz", &tls.Config{RootCAs: run.roots}, ""); err != nil || status != http.StatusOK {
			t.Errorf("/healthz on the public listener: %d %v", status, err)
		}
	})
}

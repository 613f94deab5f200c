package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds every wait in these tests. It is not a performance
// assertion: it only turns a hang into a failure.
const hangGuard = 2 * time.Minute

// serveRun is `rampart serve` running in the test process.
type serveRun struct {
	addr    string // 127.0.0.1:port
	dataDir string
	env     vars        // the environment serve runs with
	output  *syncBuffer // standard output and error together: the JSON log, and any error
	cancel  context.CancelFunc
	exited  chan struct{} // closed when Main returns
	code    int           // Main's exit code, once exited is closed
	roots   *x509.CertPool
	client  *http.Client // trusts roots (by default the development CA), nothing else
}

// startServe runs Main with no arguments (serve) on a free port of
// 127.0.0.1 with a fresh data folder and no metrics listener, and waits
// until /healthz answers over TLS, verified against the development CA that
// serve made for itself.
func startServe(tb testing.TB) *serveRun {
	tb.Helper()
	return startServeWith(tb, nil, nil)
}

// startServeWith is startServe with extra variables (they win over the
// defaults above: APP_ADDR, APP_DATA_DIR, APP_METRICS_ADDR=off) and, when
// roots is not nil, a client that trusts roots instead of the development
// CA.
func startServeWith(tb testing.TB, extra vars, roots *x509.CertPool) *serveRun {
	tb.Helper()
	return startServeAt(tb, extra, roots, nil)
}

// startServeAt is startServeWith whose client, when src is not nil,
// connects from the local address src (see startServeFrom).
func startServeAt(tb testing.TB, extra vars, roots *x509.CertPool, src net.IP) *serveRun {
	tb.Helper()
	env := vars{"APP_ADDR": "127.0.0.1:" + itoa(freePort(tb)), "APP_DATA_DIR": tb.TempDir(), "APP_METRICS_ADDR": "off"}
	for k, v := range extra {
		env[k] = v
	}
	run := &serveRun{
		addr:    env["APP_ADDR"],
		dataDir: env["APP_DATA_DIR"],
		env:     env,
		output:  &syncBuffer{},
		exited:  make(chan struct{}),
		roots:   roots,
	}
	ctx, cancel := context.WithCancel(context.Background())
	run.cancel = cancel
	go func() {
		defer close(run.exited)
		run.code = Main(ctx, nil, Env{Stdin: strings.NewReader(""), Stdout: run.output, Stderr: run.output, Getenv: env.get})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-run.exited:
		case <-time.After(hangGuard):
			tb.Errorf("serve did not stop")
		}
	})

	deadline := time.Now().Add(hangGuard)
	for {
		select {
		case <-run.exited:
			tb.Fatalf("serve exited with code %d before answering:\n%s", run.code, run.output)
		default:
		}
		if run.roots == nil {
			run.roots = devCAPool(tb, run.dataDir)
		}
		if run.client == nil && run.roots != nil {
			if src != nil {
				run.client = clientFrom(tb, run.roots, src)
			} else {
				run.client = run.newClient(tb, nil)
			}
		}
		if run.client != nil {
			if resp, err := run.client.Get("https://" + run.addr + "/healthz"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"ok"`) {
					return run
				}
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("serve did not answer /healthz:\n%s", run.output)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// devCAPool returns a pool holding only the development CA of dataDir
// (dev-ca.pem, never the server certificate itself), or nil while there is
// none yet.
func devCAPool(tb testing.TB, dataDir string) *x509.CertPool {
	tb.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "tls", "dev-ca.pem"))
	if err != nil {
		return nil
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil // being written
	}
	return roots
}

// newClient returns an HTTPS client that trusts run.roots only, with the
// TLS settings of cfg (nil: defaults), one connection per request.
func (run *serveRun) newClient(tb testing.TB, cfg *tls.Config) *http.Client {
	tb.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	cfg.RootCAs = run.roots
	tr := &http.Transport{TLSClientConfig: cfg}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: hangGuard}
}

// call makes one JSON request and decodes the JSON answer into out.
func (run *serveRun) call(tb testing.TB, method, path, token, body string, out any) int {
	tb.Helper()
	req, err := http.NewRequest(method, "https://"+run.addr+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := run.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			tb.Fatalf("%s %s: %d, undecodable answer: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

const servePassword = "quiet-Lantern-42-harbour"

func registerBody(email string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"Serve Test"}`, email, servePassword)
}

func TestServe(t *testing.T) {
	run := startServe(t)

	t.Run("the API works over TLS", func(t *testing.T) {
		var user struct{ ID, Email string }
		if code := run.call(t, http.MethodPost, "/v1/auth/register", "", registerBody("s@example.com"), &user); code != http.StatusCreated {
			t.Fatalf("register: %d", code)
		}
		var login struct {
			Token     string `json:"token"`
			TokenType string `json:"token_type"`
		}
		body := fmt.Sprintf(`{"email":"s@example.com","password":%q}`, servePassword)
		if code := run.call(t, http.MethodPost, "/v1/auth/login", "", body, &login); code != http.StatusOK || login.Token == "" {
			t.Fatalf("login: %d", code)
		}
		var me struct{ ID, Email string }
		if code := run.call(t, http.MethodGet, "/v1/me", login.Token, "", &me); code != http.StatusOK || me.ID != user.ID || me.Email != "s@example.com" {
			t.Errorf("me: %d %+v, want %+v", code, me, user)
		}
		if code := run.call(t, http.MethodGet, "/v1/me", "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("me without a token: %d", code)
		}
	})

	t.Run("plain HTTP gets no API answer", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", run.addr, hangGuard)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(hangGuard))
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", run.addr)
		// Not even Go's own "400 Bad Request: client sent an HTTP request to
		// an HTTPS server": tlsOnlyListener closes the connection unanswered.
		answer, err := io.ReadAll(conn)
		if len(answer) != 0 {
			t.Errorf("plain HTTP got an answer: %q", answer)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("the connection was left open instead of closed: %v", err)
		}
	})

	t.Run("graceful shutdown finishes a request in flight", func(t *testing.T) {
		// A request whose handler is running when the shutdown starts: the
		// server answers "100 Continue" only once the handler reads the
		// body, and the body is sent only after the shutdown has begun.
		conn, err := tls.Dial("tcp", run.addr, &tls.Config{RootCAs: run.roots, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(hangGuard))
		body := registerBody("inflight@example.com")
		fmt.Fprintf(conn, "POST /v1/auth/register HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
			"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", run.addr, len(body))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusContinue {
			t.Fatalf("no 100 Continue: %v %v", resp, err)
		}

		run.cancel()
		for !strings.Contains(run.output.String(), `"msg":"shutting down"`) {
			select {
			case <-run.exited:
				t.Fatalf("serve returned (code %d) with a request in flight:\n%s", run.code, run.output)
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-run.exited:
			t.Fatalf("serve returned (code %d) with a request in flight:\n%s", run.code, run.output)
		default:
		}

		io.WriteString(conn, body)
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("the request in flight got no answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("the request in flight got %d, want 201", resp.StatusCode)
		}

		select {
		case <-run.exited:
		case <-time.After(hangGuard):
			t.Fatalf("serve did not return after the shutdown:\n%s", run.output)
		}
		if run.code != exitOK {
			t.Errorf("serve returned %d, want 0:\n%s", run.code, run.output)
		}
		if !strings.Contains(run.output.String(), `"msg":"stopped"`) {
			t.Errorf("serve did not log that it stopped:\n%s", run.output)
		}
	})

	if strings.Contains(run.output.String(), servePassword) {
		t.Errorf("the server log shows a password")
	}
}

// TestServerLimits checks every http.Server that build makes (public,
// service and metrics listener) against SECURITY-BASELINE §7: header-read
// (Slowloris), read, write and idle timeouts, and a 64 KiB header cap
// instead of Go's 1 MiB.
func TestServerLimits(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := ensureDevCA(devPKI{dir: filepath.Join(dataDir, "tls")}, discardLogger()); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(vars{
		"APP_DATA_DIR":       dataDir,
		"APP_MTLS_ADDR":      "127.0.0.1:8444",
		"APP_MTLS_CLIENT_CA": filepath.Join(dataDir, "tls", "dev-ca.pem"),
		"APP_METRICS_ADDR":   "127.0.0.1:9090", // not bound: build only makes the servers
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srvs, cleanup, err := build(ctx, cfg, Env{Getenv: vars{}.get, Stdout: io.Discard, Stderr: io.Discard}, discardLogger())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer cleanup()
	if srvs.public == nil || srvs.service == nil || srvs.metrics == nil {
		t.Fatalf("build made public %v, service %v, metrics %v; want all three", srvs.public != nil, srvs.service != nil, srvs.metrics != nil)
	}
	all := srvs.all()
	if len(all) != 3 {
		t.Fatalf("all() lists %d servers, want 3", len(all))
	}

	for _, l := range all {
		t.Run(l.name, func(t *testing.T) {
			srv := l.srv
			for _, c := range []struct {
				name      string
				got, want time.Duration
			}{
				{"ReadHeaderTimeout", srv.ReadHeaderTimeout, 5 * time.Second},
				{"ReadTimeout", srv.ReadTimeout, 15 * time.Second},
				{"WriteTimeout", srv.WriteTimeout, 30 * time.Second},
				{"IdleTimeout", srv.IdleTimeout, 120 * time.Second},
			} {
				if c.got != c.want {
					t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
				}
			}
			if srv.MaxHeaderBytes != 64<<10 {
				t.Errorf("MaxHeaderBytes = %d, want %d", srv.MaxHeaderBytes, 64<<10)
			}
			if srv.TLSConfig == nil || srv.TLSConfig.MinVersion != tls.VersionTLS12 || len(srv.TLSConfig.Certificates) != 1 ||
				!slices.Equal(srv.TLSConfig.CipherSuites, tlsProfile().CipherSuites) ||
				!slices.Equal(srv.TLSConfig.CurvePreferences, tlsProfile().CurvePreferences) {
				t.Errorf("TLSConfig is not the server profile: %+v", srv.TLSConfig)
			}
			if srv.Handler == nil || srv.ErrorLog == nil {
				t.Errorf("Handler or ErrorLog is missing")
			}
		})
	}
	if srvs.service.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || srvs.service.TLSConfig.ClientCAs == nil {
		t.Errorf("the service listener does not require verified client certificates")
	}
	if srvs.public.TLSConfig.ClientAuth != tls.NoClientCert || srvs.metrics.TLSConfig.ClientAuth != tls.NoClientCert {
		t.Errorf("the public or loopback metrics listener asks for client certificates")
	}

	t.Run("APP_METRICS_ADDR=off and no APP_MTLS_ADDR: the public server only", func(t *testing.T) {
		cfg, err := LoadConfig(vars{"APP_DATA_DIR": t.TempDir(), "APP_METRICS_ADDR": "off"}.get)
		if err != nil {
			t.Fatal(err)
		}
		srvs, cleanup, err := build(ctx, cfg, Env{Getenv: vars{}.get, Stdout: io.Discard, Stderr: io.Discard}, discardLogger())
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		defer cleanup()
		if srvs.service != nil || srvs.metrics != nil || len(srvs.all()) != 1 {
			t.Errorf("build made service %v, metrics %v", srvs.service != nil, srvs.metrics != nil)
		}
	})
}

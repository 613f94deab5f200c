package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of the admin connection

	"github.com/rampart-go/rampart/models"
)

// The test PostgreSQL server trusts every connection from 127.0.0.1
// (pg_hba.conf "trust"), so it never asks for a password and a rotation
// could not be seen. pgAuthProxy puts password authentication in front of
// it: it asks the client for its password, checks it against the role's
// SCRAM-SHA-256 verifier in pg_authid (the one ALTER ROLE … PASSWORD
// wrote), and answers a wrong one as PostgreSQL does, FATAL 28P01
// "password authentication failed". A right one is passed on: the proxy
// connects to the server as the role and relays bytes both ways.
type pgAuthProxy struct {
	ln       net.Listener
	upstream string  // host:port of the real server
	admin    *sql.DB // superuser connection, to read pg_authid

	mu     sync.Mutex
	events []pgAuthEvent
}

// pgAuthEvent is one password check of the proxy.
type pgAuthEvent struct {
	password string
	ok       bool
}

func startPGAuthProxy(tb testing.TB, admin *sql.DB) *pgAuthProxy {
	tb.Helper()
	base, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
	if err != nil || base.Host == "" {
		tb.Fatalf("TEST_DATABASE_URL names no host")
	}
	host := base.Host
	if base.Port() == "" {
		host = net.JoinHostPort(base.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &pgAuthProxy{ln: ln, upstream: host, admin: admin}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(conn) })
		}
	})
	return p
}

func (p *pgAuthProxy) addr() string { return p.ln.Addr().String() }

// checks returns the password checks so far, and forgets them.
func (p *pgAuthProxy) checks() []pgAuthEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events
	p.events = nil
	return ev
}

func (p *pgAuthProxy) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	be := pgproto3.NewBackend(conn, conn)
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte("N")); err != nil { // no TLS on loopback
				return
			}
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return
		}
	}
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if be.Flush() != nil || be.SetAuthType(pgproto3.AuthTypeCleartextPassword) != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return
	}
	user := startup.Parameters["user"]
	good := p.verify(user, pw.Password)
	p.mu.Lock()
	p.events = append(p.events, pgAuthEvent{password: pw.Password, ok: good})
	p.mu.Unlock()
	if !good {
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "28P01",
			Message: "password authentication failed for user \"" + user + "\""})
		_ = be.Flush()
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	fe := pgproto3.NewFrontend(up, up)
	fe.Send(startup)
	if fe.Flush() != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done
}

// verify checks password against the role's SCRAM-SHA-256 verifier
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" (RFC 5802:
// StoredKey = H(HMAC(SaltedPassword, "Client Key"))).
func (p *pgAuthProxy) verify(role, password string) bool {
	var verifier sql.NullString
	if err := p.admin.QueryRow("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&verifier); err != nil || !verifier.Valid {
		return false
	}
	method, rest, _ := strings.Cut(verifier.String, "$")
	iterSalt, keys, _ := strings.Cut(rest, "$")
	iterText, saltText, _ := strings.Cut(iterSalt, ":")
	storedText, _, _ := strings.Cut(keys, ":")
	iter, err := strconv.Atoi(iterText)
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	stored, err2 := base64.StdEncoding.DecodeString(storedText)
	if method != "SCRAM-SHA-256" || err != nil || err1 != nil || err2 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	clientKey := sha256.Sum256(mac.Sum(nil))
	return hmac.Equal(clientKey[:], stored)
}

// pgRole is a login role made for one test, owning the test's schema so
// that it can run the migrations there.
type pgRole struct {
	name   string
	schema string
	admin  *sql.DB
}

// newPGRole makes a role with password in the PostgreSQL of
// TEST_DATABASE_URL (through the trusted superuser connection), owning a
// fresh schema, and drops it when the test ends.
func newPGRole(tb testing.TB, password string) *pgRole {
	tb.Helper()
	schemaURL, err := url.Parse(postgresURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	admin, err := sql.Open("pgx", os.Getenv("TEST_DATABASE_URL"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Close() })
	r := &pgRole{name: "rampart_rotation_" + hex.EncodeToString(randomKey(tb, 6)), schema: schemaURL.Query().Get("search_path"), admin: admin}
	// Statements that take no parameters are built by format() with %I
	// and %L, PostgreSQL's own quoting.
	r.exec(tb, "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", r.name, password)
	tb.Cleanup(func() {
		for _, q := range []string{
			"SELECT format('REASSIGN OWNED BY %I TO CURRENT_USER', $1::text)",
			"SELECT format('DROP OWNED BY %I', $1::text)",
			"SELECT format('DROP ROLE %I', $1::text)",
		} {
			r.exec(tb, q, r.name)
		}
	})
	r.exec(tb, "SELECT format('ALTER SCHEMA %I OWNER TO %I', $1::text, $2::text)", r.schema, r.name)
	return r
}

// exec runs the statement that the query format returns.
func (r *pgRole) exec(tb testing.TB, format string, args ...any) {
	tb.Helper()
	var stmt string
	if err := r.admin.QueryRow(format, args...).Scan(&stmt); err != nil {
		tb.Fatalf("format a statement: %v", err)
	}
	if _, err := r.admin.Exec(stmt); err != nil {
		tb.Fatalf("%s: %v", strings.SplitN(stmt, " PASSWORD", 2)[0], err)
	}
}

// setPassword is ALTER ROLE … PASSWORD: the database side of a rotation.
func (r *pgRole) setPassword(tb testing.TB, password string) {
	tb.Helper()
	r.exec(tb, "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", r.name, password)
}

// dropConnections ends the role's server connections, so that the pool
// must open new ones (PostgreSQL checks a password only when a connection
// starts).
func (r *pgRole) dropConnections(tb testing.TB) {
	tb.Helper()
	if _, err := r.admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", r.name); err != nil {
		tb.Fatal(err)
	}
}

// url is APP_DATABASE_URL for the role through proxy: no password in it.
func (r *pgRole) url(proxy *pgAuthProxy) string {
	return "postgres://" + r.name + "@" + proxy.addr() + "/postgres?sslmode=disable&search_path=" + url.QueryEscape(r.schema)
}

func newDBPassword(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestPGAuthProxyChecksPasswords: the proxy refuses a wrong password with
// 28P01 and lets the right one through, so the tests below see real
// password authentication.
func TestPGAuthProxyChecksPasswords(t *testing.T) {
	pw := newDBPassword(t)
	role := newPGRole(t, pw)
	proxy := startPGAuthProxy(t, role.admin)
	for password, ok := range map[string]bool{pw: true, newDBPassword(t): false} {
		u, err := url.Parse(role.url(proxy))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(role.name, password)
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		err = db.Ping()
		db.Close()
		if (err == nil) != ok || (!ok && !strings.Contains(err.Error(), "28P01")) {
			t.Errorf("password accepted=%v: Ping = %v", ok, err)
		}
	}
}

// TestDatabasePasswordRotation: the PostgreSQL password comes from the
// secret database_password (not the URL), each new connection uses the
// password of the moment, and a password the server refuses makes the
// store read the secret again, current and previous version.
func TestDatabasePasswordRotation(t *testing.T) {
	ctx := context.Background()
	p1, p2, p3, p4 := newDBPassword(t), newDBPassword(t), newDBPassword(t), newDBPassword(t)
	role := newPGRole(t, p1)
	proxy := startPGAuthProxy(t, role.admin)
	dir := t.TempDir()
	writeSecret(t, dir, databasePasswordName, p1)

	cfg, err := LoadConfig(vars{"APP_DATABASE_URL": role.url(proxy), "APP_SECRETS": "file:" + dir, "APP_SECRETS_REFRESH": "1h"}.get)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	store := newSecretStore(fileSource{dir: dir}, cfg, newLogger(logs, "info"))
	store.rereadGap = 0
	u, err := store.database(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateUp(u); err != nil {
		t.Fatalf("migrations as the role: %v", err)
	}
	db, err := models.OpenDB(ctx, u)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	db.SQLDB().SetMaxIdleConns(0) // every Ping opens a new connection
	wantChecks := func(what string, want ...pgAuthEvent) {
		t.Helper()
		got := proxy.checks()
		if len(got) != len(want) {
			t.Errorf("%s: %d password checks %v, want %d", what, len(got), got, len(want))
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: check %d is %+v, want %+v", what, i, got[i], want[i])
			}
		}
	}
	proxy.checks()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping with the secret's password: %v", err)
	}
	wantChecks("the secret's password", pgAuthEvent{p1, true})

	t.Run("the database changes first, then the secret", func(t *testing.T) {
		role.setPassword(t, p2)
		err := db.Ping(ctx)
		var me *models.Error
		if !errors.As(err, &me) || me.Kind != models.KindUnavailable {
			t.Errorf("Ping while only the database has the new password: %v, want KindUnavailable", err)
		}
		// Refused; the secret read again still has p1, so nothing more to try.
		wantChecks("the database ahead of the secret", pgAuthEvent{p1, false})

		writeSecret(t, dir, databasePasswordName, p2)
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping after the secret was updated: %v", err)
		}
		// The cached p1 is refused, the secret is read again, p2 works.
		wantChecks("after the secret was updated", pgAuthEvent{p1, false}, pgAuthEvent{p2, true})
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		wantChecks("once rotated", pgAuthEvent{p2, true})
	})

	t.Run("the secret changes first, then the database", func(t *testing.T) {
		// The procedure the README gives: the new password in the secret,
		// the old one kept as its previous version, then ALTER ROLE.
		writeSecret(t, dir, databasePasswordName+".previous", p2)
		writeSecret(t, dir, databasePasswordName, p3)
		store.Refresh(ctx)
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping while only the secret has the new password: %v", err)
		}
		wantChecks("the secret ahead of the database", pgAuthEvent{p3, false}, pgAuthEvent{p2, true})
		role.setPassword(t, p3)
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("Ping after ALTER ROLE: %v", err)
		}
		wantChecks("after ALTER ROLE", pgAuthEvent{p3, true})
	})

	t.Run("connections opened before a rotation keep working", func(t *testing.T) {
		db.SQLDB().SetMaxIdleConns(2)
		conn, err := db.SQLDB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		role.setPassword(t, p4)
		writeSecret(t, dir, databasePasswordName, p4)
		if err := conn.PingContext(ctx); err != nil {
			t.Errorf("an open connection after the rotation: %v", err)
		}
	})

	out := logs.String()
	if !strings.Contains(out, "the database refused its password") || !strings.Contains(out, `"secret_name":"database_password"`) ||
		!strings.Contains(out, `"msg":"secret rotated"`) {
		t.Errorf("the re-read and the rotation are not logged:\n%s", out)
	}
	for _, pw := range []string{p1, p2, p3, p4} {
		if strings.Contains(out, pw) {
			t.Errorf("the log shows a password:\n%s", out)
		}
	}
}

// TestServeDatabasePasswordRotation runs the whole server as a role whose
// password is the secret database_password (APP_DATABASE_URL has none),
// rotates it in the database and in the secret, ends the role's
// connections, and sees the server's pool reconnect with the new password
// by itself, well before the refresh interval (1h) would have read the
// secret again: the refused password made it read the secret.
func TestServeDatabasePasswordRotation(t *testing.T) {
	p1, p2 := newDBPassword(t), newDBPassword(t)
	role := newPGRole(t, p1)
	proxy := startPGAuthProxy(t, role.admin)
	dir := t.TempDir()
	writeSecret(t, dir, databasePasswordName, p1)
	run := startServeWith(t, vars{"APP_DATABASE_URL": role.url(proxy), "APP_SECRETS": "file:" + dir, "APP_SECRETS_REFRESH": "1h"}, nil)
	token, _ := signUp(t, run, "dbrotate@example.com")

	role.setPassword(t, p2)
	writeSecret(t, dir, databasePasswordName, p2)
	role.dropConnections(t)
	proxy.checks()

	deadline := time.Now().Add(hangGuard)
	for run.call(t, http.MethodGet, "/readyz", "", "", nil) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("the server never reconnected to the database:\n%s", run.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := run.call(t, http.MethodGet, "/v1/me", token, "", nil); code != http.StatusOK {
		t.Errorf("GET /v1/me after the rotation: %d", code)
	}
	var sawOld, sawNew bool
	for _, c := range proxy.checks() {
		sawOld = sawOld || (c.password == p1 && !c.ok)
		sawNew = sawNew || (c.password == p2 && c.ok)
	}
	if !sawOld || !sawNew {
		t.Errorf("the pool did not try the old password and then the new one (old refused %v, new accepted %v)", sawOld, sawNew)
	}
	out := run.output.String()
	if !strings.Contains(out, "the database refused its password") || !strings.Contains(out, `"secret_name":"database_password"`) {
		t.Errorf("the re-read is not logged:\n%s", out)
	}
	if strings.Contains(out, p1) || strings.Contains(out, p2) || bytes.Contains([]byte(out), []byte(url.QueryEscape(p2))) {
		t.Errorf("the log shows a password")
	}
}

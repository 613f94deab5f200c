package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// secret is the password in the test URLs; no output may contain it.
const secret = "s3cr3t-Pa55"

func TestParseDatabaseURL(t *testing.T) {
	cases := []struct {
		raw     string
		dialect models.Dialect
		path    string   // SQLite
		hosts   []string // PostgreSQL
	}{
		{"sqlite:/var/lib/rampart/app.db", models.SQLite, "/var/lib/rampart/app.db", nil},
		{"sqlite:data/app.db", models.SQLite, "data/app.db", nil},
		{"sqlite:///var/lib/rampart/app.db", models.SQLite, "/var/lib/rampart/app.db", nil},
		{"data/app.db", models.SQLite, "data/app.db", nil},
		{"/tmp/app.db", models.SQLite, "/tmp/app.db", nil},
		{"postgres://app:" + secret + "@db.example.com:5432/app", models.Postgres, "", []string{"db.example.com"}},
		{"postgresql://app:" + secret + "@db.example.com/app", models.Postgres, "", []string{"db.example.com"}},
		{"postgres://app@db1.example.com,db2.example.com:5433/app", models.Postgres, "", []string{"db1.example.com", "db2.example.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := models.ParseDatabaseURL(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			// With sslmode=prefer (the default) pgx tries each host with and
			// without TLS, so a host may be listed twice.
			if u.Dialect != tc.dialect || u.Path != tc.path || !slices.Equal(slices.Compact(slices.Clone(u.Hosts)), tc.hosts) {
				t.Errorf("got dialect %s, path %q, hosts %v; want %s, %q, %v", u.Dialect, u.Path, u.Hosts, tc.dialect, tc.path, tc.hosts)
			}
		})
	}
}

func TestParseDatabaseURLErrors(t *testing.T) {
	for _, raw := range []string{
		"",
		"sqlite:",
		"sqlite:/tmp/app.db?mode=memory", // would smuggle driver options past our DSN
		"sqlite:/tmp/app.db?_pragma=foreign_keys(0)", // ...such as turning foreign keys off
		"/tmp/app.db#frag",
		"POSTGRES://app:" + secret + "@db.example.com/app", // not a file name
		"mysql://app:" + secret + "@db.example.com/app",
		"host=db.example.com user=app password=" + secret + " dbname=app", // libpq keywords, not a file name
		"postgres://app:" + secret + "@db.example.com:notaport/app",
		"postgres://app:" + secret + "@[::1/app",
		"postgres://app:" + secret + "@db.example.com/app?sslmode=bogus",
		"postgres://app:" + secret + "@db.example.com/app?connect_timeout=soon",
		"postgresql://app:" + secret + "@db.example.com:99999/app",
		"postgres://app@db.example.com/app?password=" + secret + "&sslmode=bogus",
	} {
		u, err := models.ParseDatabaseURL(raw)
		if err == nil {
			t.Errorf("%q accepted as %+v", raw, u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error for a bad URL repeats its password: %q", err)
		}
		if strings.Contains(raw, "?") && strings.HasPrefix(raw, "sqlite:") && !strings.Contains(err.Error(), "?") {
			t.Errorf("the error for %q does not say what is wrong: %q", raw, err)
		}
	}
}

func TestDatabaseURLRedacted(t *testing.T) {
	cases := []struct {
		raw, password, keep string // keep: what must still show
	}{
		{"postgres://app:" + secret + "@db.example.com:5432/app?sslmode=verify-full", secret, "app:xxxxx@db.example.com:5432/app?sslmode=verify-full"},
		{"postgresql://app:" + secret + "@db.example.com/app", secret, "app:xxxxx@"},
		{"postgres://app@db.example.com/app?password=" + secret, secret, "db.example.com"},
		{"postgres://app@db.example.com/app?sslmode=verify-full&sslpassword=" + secret, secret, "sslmode=verify-full"},
		{"postgres://app@db.example.com/app?PassWord=" + secret + "&search_path=s1", secret, "search_path=s1"},
		// pgx, like libpq, reads the password "1234?x" here, while net/url
		// sees host "app", port 1234 and a query: nothing may show then.
		{"postgres://app:1234?x@db.example.com/app", "1234?x", "postgres://"},
	}
	for _, tc := range cases {
		u, err := models.ParseDatabaseURL(tc.raw)
		if err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		red := u.Redacted()
		if strings.Contains(red, tc.password) {
			t.Errorf("Redacted() = %q shows the password", red)
		}
		if !strings.Contains(red, tc.keep) {
			t.Errorf("Redacted() = %q lost %q", red, tc.keep)
		}
	}
	u, err := models.ParseDatabaseURL("sqlite:/var/lib/rampart/app.db")
	if err != nil || u.Redacted() != "sqlite:/var/lib/rampart/app.db" {
		t.Errorf("SQLite Redacted() = %q, %v", u.Redacted(), err)
	}
}

func TestDatabaseURLTLSVerified(t *testing.T) {
	cases := map[string]bool{
		"postgres://app@db.example.com/app?sslmode=verify-full":                      true,
		"postgres://app@db1.example.com,db2.example.com/app?sslmode=verify-full":     true,
		"postgres://app@db.example.com/app?sslmode=verify-ca":                        false,
		"postgres://app@db.example.com/app?sslmode=require":                          false,
		"postgres://app@db.example.com/app?sslmode=prefer":                           false,
		"postgres://app@db.example.com/app?sslmode=allow":                            false,
		"postgres://app@db.example.com/app?sslmode=disable":                          false,
		"postgres://app@db.example.com/app":                                          false, // pgx defaults to prefer
		"postgres://app@db.example.com/app?sslmode=verify-full&sslmode=disable":      false, // the last one wins in pgx
		"postgres://app@db.example.com/app?sslmode=disable&sslmode=verify-full":      true,
		"postgresql://app@db.example.com:5432/app?sslmode=verify-full&search_path=x": true,
	}
	for raw, want := range cases {
		u, err := models.ParseDatabaseURL(raw)
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if u.TLSVerified != want {
			t.Errorf("%q: TLSVerified = %v, want %v", raw, u.TLSVerified, want)
		}
	}
}

func TestDatabaseURLAllHostsLoopback(t *testing.T) {
	cases := map[string]bool{
		"postgres://app@localhost/app":                          true,
		"postgres://app@127.0.0.1:5432/app":                     true,
		"postgres://app@127.8.9.10/app":                         true,
		"postgres://app@[::1]:5432/app":                         true,
		"postgres://app@/app?host=/var/run/postgresql":          true,
		"postgres://app@localhost,127.0.0.1/app":                true,
		"postgres://app@db.example.com/app":                     false,
		"postgres://app@10.0.0.5/app":                           false,
		"postgres://app@0.0.0.0/app":                            false,
		"postgres://app@[::]/app":                               false,
		"postgres://app@localhost,db.example.com/app":           false,
		"postgres://app@localhost.example.com/app":              false,
		"postgres://app@127.0.0.1.nip.io/app":                   false,
		"postgres://app@/app?host=/var/run/postgresql,10.0.0.5": false,
	}
	for raw, want := range cases {
		u, err := models.ParseDatabaseURL(raw)
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if got := u.AllHostsLoopback(); got != want {
			t.Errorf("%q (hosts %v): AllHostsLoopback = %v, want %v", raw, u.Hosts, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		const query = "SELECT a FROM t WHERE b = ? AND c = ?"
		want := query
		if db.Dialect() == models.Postgres {
			// sqlx only rebinds for driver names it knows; this guards the
			// "pgx" name OpenDB registers the pgx v5 driver under.
			want = "SELECT a FROM t WHERE b = $1 AND c = $2"
		}
		if got := db.RebindForTest(query); got != want {
			t.Errorf("RebindForTest = %q, want %q", got, want)
		}
		// And a statement with two placeholders really runs.
		n, err := db.QueryIntForTest(context.Background(), `SELECT CAST(? AS INTEGER) + CAST(? AS INTEGER)`, 2, 3)
		if err != nil || n != 5 {
			t.Errorf("two placeholders: %d, %v", n, err)
		}
	})
}

func TestErrorTranslation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		const insertUser = `INSERT INTO users (id, email, email_key, display_name, password_hash, role, created_at, updated_at)
			VALUES (?, ?, ?, 'x', 'x', 'user', ?, ?)`
		ts := time.Now().UTC()
		if _, err := db.ExecForTest(ctx, insertUser, "11111111-1111-4111-8111-111111111111", "a@example.com", "a@example.com", ts, ts); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			run  func() error
			kind models.Kind
		}{
			{"unique violation (e-mail key)", func() error {
				_, err := db.ExecForTest(ctx, insertUser, "22222222-2222-4222-8222-222222222222", "A@example.com", "a@example.com", ts, ts)
				return err
			}, models.KindConflict},
			{"unique violation (id)", func() error {
				_, err := db.ExecForTest(ctx, insertUser, "11111111-1111-4111-8111-111111111111", "b@example.com", "b@example.com", ts, ts)
				return err
			}, models.KindConflict},
			{"foreign-key violation", func() error {
				_, err := db.ExecForTest(ctx, `INSERT INTO projects (id, owner_id, name, created_at, updated_at) VALUES (?, ?, 'p', ?, ?)`,
					"33333333-3333-4333-8333-333333333333", missingID, ts, ts)
				return err
			}, models.KindNotFound},
			{"no rows", func() error {
				_, err := db.QueryStringForTest(ctx, `SELECT email FROM users WHERE id = ?`, missingID)
				return err
			}, models.KindNotFound},
			{"cancelled context", func() error {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				_, err := db.QueryIntForTest(cctx, `SELECT 1`)
				return err
			}, models.KindUnavailable},
			{"anything else", func() error {
				_, err := db.QueryIntForTest(ctx, `SELECT no_such_column FROM users`)
				return err
			}, models.KindInternal},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.run()
				if err == nil {
					t.Fatal("no error")
				}
				e := asError(t, err)
				if e.Kind != tc.kind {
					t.Errorf("kind %v (%v), want %v", e.Kind, err, tc.kind)
				}
				// Driver text stays in the cause: nothing for the client.
				if e.Detail != "" || e.Fields != nil {
					t.Errorf("a translated driver error carries client text: %+v", e)
				}
				if tc.kind != models.KindNotFound && tc.kind != models.KindUnavailable && e.Cause == nil {
					t.Errorf("the driver error is lost: %+v", e)
				}
			})
		}
		if n, err := db.QueryIntForTest(ctx, `SELECT COUNT(*) FROM users`); err != nil || n != 1 {
			t.Errorf("%d users after the failed statements, %v; want 1", n, err)
		}
	})
}

func TestSQLiteConnectionSettings(t *testing.T) {
	db := dbtest.Open(t, models.SQLite)
	ctx := context.Background()
	// Every connection of the pool, held at once so that each is distinct,
	// runs with the settings the DSN asks for.
	n := db.MaxOpenConnsForTest()
	if n < 1 {
		t.Fatalf("pool limit %d", n)
	}
	for i, conn := range db.ConnsForTest(t, n) {
		var fk, busy, synchronous int64
		var journal string
		for _, p := range []struct {
			pragma string
			dest   any
		}{
			{"PRAGMA foreign_keys", &fk},
			{"PRAGMA journal_mode", &journal},
			{"PRAGMA busy_timeout", &busy},
			{"PRAGMA synchronous", &synchronous},
		} {
			if err := conn.QueryRowContext(ctx, p.pragma).Scan(p.dest); err != nil {
				t.Fatalf("connection %d: %s: %v", i, p.pragma, err)
			}
		}
		if fk != 1 || journal != "wal" || busy != 5000 || synchronous != 1 {
			t.Errorf("connection %d: foreign_keys=%d journal_mode=%s busy_timeout=%d synchronous=%d; want 1, wal, 5000, 1 (NORMAL)",
				i, fk, journal, busy, synchronous)
		}
	}
}

// TestPostgresPoolKeepsItsConnections: under load (every connection of the
// pool in use at once, again and again) the pool keeps the connections it
// opened. With fewer idle connections allowed than open ones, each burst
// closed the surplus and the next opened new ones: a new PostgreSQL backend
// costs a fork, authentication and preparing each statement again.
func TestPostgresPoolKeepsItsConnections(t *testing.T) {
	ctx := context.Background()
	db, err := models.OpenDB(ctx, dbtest.URL(t, models.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	n := db.MaxOpenConnsForTest()
	for range 3 {
		conns := make([]*sql.Conn, n)
		for i := range conns {
			if conns[i], err = db.SQLDB().Conn(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range conns {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := db.SQLDB().Stats()
	if st.MaxIdleClosed != 0 || st.OpenConnections != n {
		t.Errorf("after three bursts of %d connections: %d closed as surplus idle ones, %d open; want 0 and %d",
			n, st.MaxIdleClosed, st.OpenConnections, n)
	}
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                     "",
		"redis://:" + secret + "@cache:6379/0": "redis://:xxxxx@cache:6379/0",
		"rediss://cache:6380/0?password=" + secret: "rediss://cache:6380/0?password=xxxxx",
		"redis://cache:6379/0":                     "redis://cache:6379/0",
		"redis://%zz:" + secret + "@cache":         "(not shown: not a valid URL)",
	} {
		if got := models.RedactURL(raw); got != want || strings.Contains(got, secret) {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestURLPasswordAndWithPassword(t *testing.T) {
	pg, err := models.ParseDatabaseURL("postgres://app:Vq8mZ3tXk1pR7sLw@127.0.0.1/app")
	if err != nil {
		t.Fatal(err)
	}
	if pg.URLPassword().Reveal() != "Vq8mZ3tXk1pR7sLw" {
		t.Error("URLPassword does not return the URL's password")
	}
	if s := fmt.Sprint(pg.URLPassword()); s != models.RedactedText {
		t.Errorf("URLPassword prints as %q", s)
	}
	none, err := models.ParseDatabaseURL("postgres://app@127.0.0.1/app")
	if err != nil || !none.URLPassword().IsZero() {
		t.Errorf("a URL without a password: %v, %v", err, none.URLPassword())
	}
	lite, err := models.ParseDatabaseURL("sqlite:" + filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	called := false
	lite = lite.WithPassword(func(context.Context, bool) ([]models.Secret, error) { called = true; return nil, nil })
	db, err := models.OpenDB(context.Background(), lite)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if called || !lite.URLPassword().IsZero() {
		t.Error("SQLite asked for a password")
	}
	// The printed forms stay redacted with a password function attached.
	pg = pg.WithPassword(func(context.Context, bool) ([]models.Secret, error) { return nil, nil })
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if strings.Contains(fmt.Sprintf(verb, pg), "Vq8mZ3tXk1pR7sLw") {
			t.Errorf("%s shows the password", verb)
		}
	}
}

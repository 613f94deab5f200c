package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the admin connection

	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
)

// Dialects lists the dialects a test can run on.
var Dialects = []models.Dialect{models.SQLite, models.Postgres}

// Each runs fn as one subtest per dialect, each with its own fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *models.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated database of dialect d, closed and removed
// when the test ends.
func Open(tb testing.TB, d models.Dialect) *models.DB {
	tb.Helper()
	u := URL(tb, d)
	mg, err := models.NewMigrator(u, migrations.FS)
	if err != nil {
		tb.Fatalf("dbtest: prepare migrations: %v", err)
	}
	if err := mg.Up(); err != nil {
		tb.Fatalf("dbtest: migrate: %v", err)
	}
	if err := mg.Close(); err != nil {
		tb.Fatalf("dbtest: close migrator: %v", err)
	}
	db, err := models.OpenDB(context.Background(), u)
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	// Parallel tests wait paused with their database open; idle
	// connections are not kept for them, so that a package's tests stay
	// well under PostgreSQL's max_connections (100 by default).
	db.SQLDB().SetMaxIdleConns(1)
	return db
}

// URL returns the URL of a fresh, empty (unmigrated) database of dialect d.
func URL(tb testing.TB, d models.Dialect) models.DatabaseURL {
	tb.Helper()
	var raw string
	switch d {
	case models.SQLite:
		raw = "sqlite:" + filepath.Join(tb.TempDir(), "test.db")
	case models.Postgres:
		raw = postgresSchema(tb)
	default:
		tb.Fatalf("dbtest: unknown dialect %q", d)
	}
	u, err := models.ParseDatabaseURL(raw)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	return u
}

// RequirePostgres skips the test when PostgreSQL is not configured outside
// CI, and fails it in CI. It returns TEST_DATABASE_URL.
func RequirePostgres(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("dbtest: TEST_DATABASE_URL is not set; in CI the PostgreSQL half must run")
		}
		tb.Skip("PostgreSQL half skipped: TEST_DATABASE_URL is not set")
	}
	return base
}

// postgresSchema creates a schema with a random name on the TEST_DATABASE_URL
// server and returns a URL whose search_path is that schema. The schema is
// dropped when the test ends.
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	base := RequirePostgres(tb)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("dbtest: TEST_DATABASE_URL: %v", err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	admin.SetMaxIdleConns(0) // no connection held while the test runs
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The schema name is made of hex digits only; identifiers cannot be
	// bound as parameters, so this is the one statement built at run time,
	// in test support, from a value we generated.
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("dbtest: PostgreSQL at TEST_DATABASE_URL does not answer or refuses CREATE SCHEMA: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("dbtest: TEST_DATABASE_URL is not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

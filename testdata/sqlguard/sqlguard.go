// Package sqlguard is test input for the SQL guard in ../../sql_test.go.
// Every line marked "want" must be reported, every line marked "excused"
// must be excused by the exception list, and nothing else may be reported.
package sqlguard

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
)

const usersTable = "users"

// Constant queries are fine, including constant expressions.
func constant(ctx context.Context, db *sql.DB, id string) error {
	const byID = "SELECT email FROM " + usersTable + " WHERE id = ?"
	if _, err := db.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
		return err
	}
	return db.QueryRowContext(ctx, byID, id).Err()
}

// fmt.Sprintf builds SQL from a variable.
func sprintf(ctx context.Context, db *sql.DB, column string) error {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM users", column)) // want
	if err != nil {
		return err
	}
	return rows.Close()
}

// Concatenation with a variable.
func concat(ctx context.Context, db *sql.DB, name string) error {
	_, err := db.ExecContext(ctx, "DELETE FROM users WHERE name = '"+name+"'") // want
	return err
}

// A strings.Builder, and a variable holding a constant: both are values
// computed at run time as far as the type checker is concerned.
func builder(ctx context.Context, db *sql.DB, order string) error {
	var b strings.Builder
	b.WriteString("SELECT id FROM users ORDER BY ")
	b.WriteString(order)
	if err := db.QueryRowContext(ctx, b.String()).Err(); err != nil { // want
		return err
	}
	q := "SELECT 1"
	return db.QueryRowContext(ctx, q).Err() // want
}

// run passes its own query parameter through: its callers are checked.
func run(ctx context.Context, db *sql.DB, query string, args ...any) error {
	_, err := db.ExecContext(ctx, query, args...)
	return err
}

func callsRun(ctx context.Context, db *sql.DB, table string) error {
	if err := run(ctx, db, "DELETE FROM users"); err != nil {
		return err
	}
	return run(ctx, db, "DELETE FROM "+table) // want
}

// A query parameter that is changed before use is no longer a pass-through.
func rewrites(ctx context.Context, db *sql.DB, query, suffix string) error {
	query += suffix
	_, err := db.ExecContext(ctx, query) // want
	return err
}

// Closures are checked too.
func closure(ctx context.Context, db *sql.DB, table string) func() error {
	return func() error {
		_, err := db.ExecContext(ctx, "TRUNCATE "+table) // want
		return err
	}
}

// makeSchema is on the guard's exception list (by package path and name).
func makeSchema(ctx context.Context, db *sql.DB, name string) error {
	_, err := db.ExecContext(ctx, "CREATE SCHEMA "+name) // excused
	return err
}

// DB mimics models.DB: helpers that take a query and rebind its
// placeholders for the dialect.
type DB struct{ db *sql.DB }

// rebind is on the guard's list of rebinders.
func (db *DB) rebind(query string) string { return strings.ReplaceAll(query, "?", "$1") }

func (db *DB) exec(ctx context.Context, query string, args ...any) error {
	_, err := db.db.ExecContext(ctx, db.rebind(query), args...)
	return err
}

func (db *DB) callsExec(ctx context.Context, id, table string) error {
	if err := db.exec(ctx, "DELETE FROM users WHERE id = ?", id); err != nil {
		return err
	}
	if _, err := db.db.ExecContext(ctx, db.rebind("DELETE FROM users")); err != nil {
		return err
	}
	_, err := db.db.ExecContext(ctx, db.rebind("DELETE FROM "+table)) // want
	return err
}

// url.ParseQuery's parameter is named query too, but it is on the guard's
// list of callees whose query is not SQL.
func notSQL(raw string) (url.Values, error) { return url.ParseQuery(raw) }

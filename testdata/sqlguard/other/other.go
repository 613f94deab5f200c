// Package other has a function with the same name as an excused one in
// package sqlguard, which the exception must not cover, and a pgx-style
// method whose SQL parameter is named sql.
package other

import (
	"context"
	"database/sql"
)

func makeSchema(ctx context.Context, db *sql.DB, name string) error {
	_, err := db.ExecContext(ctx, "CREATE SCHEMA "+name) // want
	return err
}

// Conn mimics pgx.Conn, whose methods call the SQL parameter sql.
type Conn struct{}

// Exec mimics pgx.Conn.Exec.
func (Conn) Exec(ctx context.Context, sql string, args ...any) error { return nil }

func pgxStyle(ctx context.Context, c Conn, id, table string) error {
	if err := c.Exec(ctx, "DELETE FROM users WHERE id = $1", id); err != nil {
		return err
	}
	return c.Exec(ctx, "DELETE FROM "+table) // want
}

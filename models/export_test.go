package models

import "context"

// Test-only access to internals for the external models_test package.

// QueryStringForTest runs a constant query returning one string.
func (db *DB) QueryStringForTest(ctx context.Context, query string, args ...any) (string, error) {
	var s string
	err := db.q().get(ctx, &s, query, args...)
	return s, err
}

// QueryIntForTest runs a constant query returning one integer.
func (db *DB) QueryIntForTest(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := db.q().get(ctx, &n, query, args...)
	return n, err
}

// ExecForTest runs a constant statement.
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) (int64, error) {
	return db.q().exec(ctx, query, args...)
}

// RebindForTest exposes the placeholder rebinding.
func (db *DB) RebindForTest(query string) string { return db.rebind(query) }

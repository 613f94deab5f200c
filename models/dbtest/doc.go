// Package dbtest gives tests a fresh, migrated database: a SQLite file in a
// temporary folder, or a new schema on the PostgreSQL server named by
// TEST_DATABASE_URL. It is test support only: no production code imports it.
//
// The PostgreSQL half runs when TEST_DATABASE_URL is set and fails (never
// skips) if that server does not answer. When the variable is unset the
// PostgreSQL half is skipped with a message, except in CI (CI set), where a
// missing service is a failure.
package dbtest

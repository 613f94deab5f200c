// Package models owns the domain: its types (users, sessions, projects,
// tasks), the repositories that read and write them, the SQL they run, the
// error kinds every layer speaks, and the credential primitives (password
// hashing and policy, session tokens, cursors).
//
// Dependency rule: models imports no other package of this module and
// nothing of echo or AWS. Everything above it (middleware, handlers, app)
// may import it.
//
// Ownership is structural: a repository for owned data is constructed with
// its owner (NewProjectRepo(db, owner)) and binds that owner into every
// statement, INSERT included. No method takes a second owner or runs an
// unscoped query, so another owner's row is simply ErrNotFound. Children
// (tasks) are scoped through their parent in the same statement.
//
// Every SQL statement is a constant string with placeholders; a test fails
// the build if a query is ever assembled at run time.
package models

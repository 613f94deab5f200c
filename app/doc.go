// Package app is the composition root: it reads and validates the
// configuration, loads secrets (environment, files or AWS Secrets Manager,
// refreshed in the background so that they rotate without a restart),
// makes or loads the TLS certificate, opens
// and migrates the database, wires the handlers, runs the server with
// graceful shutdown, and implements the CLI commands (serve, migrate, user).
//
// Dependency rule: app may import every package of this module; nothing
// imports app except main.
package app

package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rampart-go/rampart/models"
)

// auditCmd runs `rampart audit verify`: it walks the hash chain of the
// configured database's audit trail and prints one line. An intact chain
// prints its length and head hash (exit 0); record the head elsewhere,
// since only a head kept outside the database shows a chain that was
// rewritten as a whole. A broken chain names its first broken row, and a
// database that cannot be read says why (exit 1, on stderr, as every
// failure). It only reads: nothing is migrated or created.
func auditCmd(ctx context.Context, args []string, env Env) error {
	switch {
	case len(args) == 0:
		return usageError{"audit needs the subcommand verify"}
	case args[0] != "verify":
		return usageError{fmt.Sprintf("audit: unknown subcommand %q; use verify", safeArg(args[0]))}
	}
	if len(args) > 1 {
		return usageError{"audit verify takes no arguments"}
	}
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	// Opening a SQLite file that is not there would create an empty one.
	if cfg.Database.Dialect == models.SQLite {
		if _, err := os.Stat(cfg.Database.Path); err != nil {
			return fmt.Errorf("audit: no database at %s (set APP_DATABASE_URL or APP_DATA_DIR)", cfg.Database.Redacted())
		}
	}
	dbURL, err := databaseFor(ctx, cfg, env)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	db, err := models.OpenDB(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer db.Close()

	v, err := models.NewAuditLog(db).Verify(ctx)
	var broken *models.AuditBreak
	switch {
	case errors.As(err, &broken) && broken.Seq == 0:
		return fmt.Errorf("audit: chain broken at the head: %s", broken.Reason)
	case errors.As(err, &broken):
		return fmt.Errorf("audit: chain broken at row %d (id %s): %s", broken.Seq, safeArg(broken.ID), broken.Reason)
	case err != nil:
		return fmt.Errorf("audit: cannot read the audit trail of %s: %w", cfg.Database.Redacted(), err)
	}
	head := v.Head
	if head == "" {
		head = "(none: the trail is empty)"
	}
	fmt.Fprintf(env.Stdout, "audit: %d events, chain intact, head %s\n", v.Rows, head)
	return nil
}

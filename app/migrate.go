package app

import (
	"context"
	"fmt"
	"slices"

	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
)

// migrateCmd runs `rampart migrate up|down|status`.
func migrateCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("migrate")
	yes := fs.Bool("yes", false, "confirm a roll-back in production")
	// Flags may come before or after the action: the refusal below tells
	// people to "add --yes", and `migrate down --yes` is how they will.
	var actions []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageError{"migrate: " + err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		actions = append(actions, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(actions) != 1 {
		return usageError{"migrate needs exactly one of up, down, status"}
	}
	action := actions[0]
	if action != "up" && action != "down" && action != "status" {
		return usageError{fmt.Sprintf("migrate: unknown action %q; use up, down or status", safeArg(action))}
	}
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	dbURL, err := databaseFor(ctx, cfg, env)
	if err != nil {
		return err
	}
	mg, err := models.NewMigrator(dbURL, migrations.FS)
	if err != nil {
		return err
	}
	defer mg.Close()
	switch action {
	case "up":
		if err := mg.Up(); err != nil {
			return err
		}
	case "down":
		if cfg.Env == EnvProduction && !*yes {
			return usageError{"migrate down drops data; in production add --yes to confirm"}
		}
		if err := mg.Down(); err != nil {
			return err
		}
	}
	st, err := mg.Status()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "database: %s (%s)\n", cfg.Database.Redacted(), cfg.Database.Dialect)
	state := "clean"
	if st.Dirty {
		state = "DIRTY: a migration failed halfway; fix the schema by hand, then force the version"
	}
	fmt.Fprintf(env.Stdout, "version: %d (%s)\n", st.Current, state)
	for _, v := range st.Versions {
		mark := "pending"
		if v <= st.Current && st.Current != 0 {
			mark = "applied"
		}
		fmt.Fprintf(env.Stdout, "  %04d %s\n", v, mark)
	}
	if len(st.Versions) > 0 && st.Current > slices.Max(st.Versions) {
		fmt.Fprintln(env.Stdout, "warning: the database is newer than this binary")
	}
	return nil
}

// migrateUp applies pending migrations, as serve and user create do.
func migrateUp(u models.DatabaseURL) error {
	mg, err := models.NewMigrator(u, migrations.FS)
	if err != nil {
		return err
	}
	if err := mg.Up(); err != nil {
		_ = mg.Close()
		return err
	}
	return mg.Close()
}

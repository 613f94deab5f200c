package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// auditTrail migrates the database of v and appends n events to its audit
// trail; it returns them as stored.
func auditTrail(tb testing.TB, v vars, n int) []models.AuditEvent {
	tb.Helper()
	parseMigrations(tb, runCLI(tb, v, "", "migrate", "up"))
	cfg, err := LoadConfig(v.get)
	if err != nil {
		tb.Fatal(err)
	}
	db, err := models.OpenDB(context.Background(), cfg.Database)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	events := make([]models.AuditEvent, n)
	for i := range events {
		events[i] = models.AuditEvent{ActorType: models.ActorUser, ActorID: "u-" + itoa(i), Action: models.ActionAuthzFail,
			Outcome: models.OutcomeDeny, ResourceType: "project", ResourceID: "p-" + itoa(i)}
	}
	if err := models.NewAuditLog(db).Append(context.Background(), events); err != nil {
		tb.Fatal(err)
	}
	return events
}

// tamper plays an attacker with the owner's rights on the database of v:
// it drops the append-only triggers and runs statements.
func tamper(tb testing.TB, v vars, statements ...string) {
	tb.Helper()
	cfg, err := LoadConfig(v.get)
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := models.OpenRawDB(cfg.Database)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	drop := []string{`DROP TRIGGER audit_batches_no_update`, `DROP TRIGGER audit_batches_no_delete`}
	if cfg.Database.Dialect == models.Postgres {
		drop = []string{`DROP TRIGGER audit_batches_no_change ON audit_batches`}
	}
	for _, s := range append(drop, statements...) {
		if _, err := raw.ExecContext(context.Background(), s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()

			t.Run("intact", func(t *testing.T) {
				v := dialectVars(t, d)
				events := auditTrail(t, v, 3)
				r := runCLI(t, v, "", "audit", "verify")
				want := "audit: 3 events, chain intact, head " + events[2].Hash + "\n"
				if r.code != exitOK || r.stdout != want || r.stderr != "" {
					t.Errorf("exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
				}
			})

			t.Run("empty trail", func(t *testing.T) {
				v := dialectVars(t, d)
				auditTrail(t, v, 0)
				r := runCLI(t, v, "", "audit", "verify")
				if r.code != exitOK || !strings.HasPrefix(r.stdout, "audit: 0 events, chain intact, head ") || r.stderr != "" {
					t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
				}
			})

			// The trail is one batch (migrations 0005 and 0006): the
			// attacker edits its JSON with the database's own functions.
			sql := func(sqlite, postgres string) string {
				if d == models.Postgres {
					return postgres
				}
				return sqlite
			}

			t.Run("edited event", func(t *testing.T) {
				v := dialectVars(t, d)
				events := auditTrail(t, v, 4)
				// The second event's resource_id (field 11: migration 0006).
				tamper(t, v, sql(`UPDATE audit_batches SET events = json_set(events, '$[1][11]', 'p-0')`,
					`UPDATE audit_batches SET events = jsonb_set(events::jsonb, '{1,11}', '"p-0"')::text`))
				wantFailure(t, runCLI(t, v, "", "audit", "verify"), exitFail,
					[]string{"audit: chain broken at row 2 (id " + events[1].ID + "): ", "edited"})
			})

			t.Run("deleted middle event", func(t *testing.T) {
				v := dialectVars(t, d)
				events := auditTrail(t, v, 4)
				tamper(t, v, sql(`UPDATE audit_batches SET events = json_remove(events, '$[1]'), last_seq = 3`,
					`UPDATE audit_batches SET events = (events::jsonb - 1)::text, last_seq = 3`))
				wantFailure(t, runCLI(t, v, "", "audit", "verify"), exitFail,
					[]string{"audit: chain broken at row 2 (id " + events[2].ID + "): "})
			})

			t.Run("deleted last event", func(t *testing.T) {
				v := dialectVars(t, d)
				auditTrail(t, v, 4)
				tamper(t, v, sql(`UPDATE audit_batches SET events = json_remove(events, '$[3]'), last_seq = 3`,
					`UPDATE audit_batches SET events = (events::jsonb - 3)::text, last_seq = 3`))
				wantFailure(t, runCLI(t, v, "", "audit", "verify"), exitFail,
					[]string{"audit: chain broken at the head: ", "row 4", "row 3"})
			})

			t.Run("database not migrated", func(t *testing.T) {
				v := dialectVars(t, d)
				r := runCLI(t, v, "", "audit", "verify")
				wantFailure(t, r, exitFail, []string{"audit: "})
				// Verifying only reads: no SQLite file appears.
				if _, err := os.Stat(filepath.Join(v["APP_DATA_DIR"], "rampart.db")); err == nil {
					t.Error("audit verify created a database file")
				}
			})
		})
	}
}

func TestAuditCommandUsage(t *testing.T) {
	v := vars{"APP_DATA_DIR": t.TempDir()}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"audit"}, "audit needs the subcommand verify"},
		{[]string{"audit", "nope"}, `unknown subcommand "nope"; use verify`},
		{[]string{"audit", "--verify"}, `unknown subcommand "--verify"`},
		{[]string{"audit", "verify", "extra"}, "audit verify takes no arguments"},
		{[]string{"audit", "ve\r\nrify"}, `"ve??rify"`}, // control characters never reach the terminal
	}
	for _, tt := range tests {
		wantFailure(t, runCLI(t, v, "", tt.args...), exitUsage, []string{tt.want, "see `rampart help`"})
	}
	r := runCLI(t, v, "", "help")
	if !strings.Contains(r.stdout, "rampart audit verify") {
		t.Errorf("help does not list audit verify:\n%s", r.stdout)
	}
}

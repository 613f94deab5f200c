package models_test

import (
	"context"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// migrationName is golang-migrate's file naming: NNNN_name.up.sql or
// NNNN_name.down.sql.
var migrationName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.(up|down)\.sql$`)

// migrationFiles maps each version of one dialect's folder to its name and
// the directions present.
func migrationFiles(tb testing.TB, dialect models.Dialect) map[uint]map[string]string {
	tb.Helper()
	entries, err := fs.ReadDir(migrations.FS, string(dialect))
	if err != nil {
		tb.Fatal(err)
	}
	files := make(map[uint]map[string]string) // version -> direction -> name
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			tb.Errorf("%s/%s is not a migration file (NNNN_name.up.sql / .down.sql)", dialect, e.Name())
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		if files[uint(v)] == nil {
			files[uint(v)] = make(map[string]string)
		}
		if prev, dup := files[uint(v)][m[3]]; dup {
			tb.Errorf("%s: version %d has two %s files (%s, %s)", dialect, v, m[3], prev, m[2])
		}
		files[uint(v)][m[3]] = m[2]
	}
	return files
}

func TestMigrationFilesMatchAcrossDialects(t *testing.T) {
	sqlite, postgres := migrationFiles(t, models.SQLite), migrationFiles(t, models.Postgres)
	if len(sqlite) == 0 {
		t.Fatal("no migrations")
	}
	for d, files := range map[models.Dialect]map[uint]map[string]string{models.SQLite: sqlite, models.Postgres: postgres} {
		for v, dirs := range files {
			if dirs["up"] == "" || dirs["down"] == "" {
				t.Errorf("%s: version %d lacks an up or a down file: %v", d, v, dirs)
			}
			if dirs["up"] != dirs["down"] {
				t.Errorf("%s: version %d has up %q but down %q", d, v, dirs["up"], dirs["down"])
			}
		}
	}
	sv, pv := slices.Sorted(maps.Keys(sqlite)), slices.Sorted(maps.Keys(postgres))
	if !slices.Equal(sv, pv) {
		t.Fatalf("versions differ: sqlite %v, postgres %v", sv, pv)
	}
	for _, v := range sv {
		if sqlite[v]["up"] != postgres[v]["up"] {
			t.Errorf("version %d is %q for sqlite but %q for postgres", v, sqlite[v]["up"], postgres[v]["up"])
		}
	}
}

// schemaTables lists the tables the migrations make.
var schemaTables = []string{"users", "sessions", "projects", "tasks"}

// countTables counts how many of schemaTables exist in db.
func countTables(tb testing.TB, db *models.DB) int64 {
	tb.Helper()
	var (
		n   int64
		err error
	)
	switch db.Dialect() {
	case models.SQLite:
		n, err = db.QueryIntForTest(context.Background(),
			`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (?, ?, ?, ?)`,
			schemaTables[0], schemaTables[1], schemaTables[2], schemaTables[3])
	case models.Postgres:
		n, err = db.QueryIntForTest(context.Background(),
			`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN (?, ?, ?, ?)`,
			schemaTables[0], schemaTables[1], schemaTables[2], schemaTables[3])
	}
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func newMigrator(tb testing.TB, u models.DatabaseURL) *models.Migrator {
	tb.Helper()
	mg, err := models.NewMigrator(u, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = mg.Close() })
	return mg
}

func status(tb testing.TB, mg *models.Migrator) models.MigrationStatus {
	tb.Helper()
	st, err := mg.Status()
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestMigrateUpDownUp(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			u := dbtest.URL(t, d)
			mg := newMigrator(t, u)
			versions := slices.Sorted(maps.Keys(migrationFiles(t, d)))
			latest := versions[len(versions)-1]
			var previous uint // the version one Down goes back to
			if len(versions) > 1 {
				previous = versions[len(versions)-2]
			}

			st := status(t, mg)
			if st.Current != 0 || st.Dirty || !slices.Equal(st.Versions, versions) {
				t.Fatalf("fresh database: %+v, want version 0 of %v", st, versions)
			}

			if err := mg.Up(); err != nil {
				t.Fatal(err)
			}
			if st := status(t, mg); st.Current != latest || st.Dirty {
				t.Fatalf("after Up: %+v, want version %d, clean", st, latest)
			}
			db, err := models.OpenDB(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if n := countTables(t, db); n != int64(len(schemaTables)) {
				t.Fatalf("after Up: %d of the %d tables", n, len(schemaTables))
			}

			// Up again changes nothing and is no error.
			if err := mg.Up(); err != nil {
				t.Errorf("second Up: %v", err)
			}
			if st := status(t, mg); st.Current != latest || st.Dirty {
				t.Errorf("after a second Up: %+v", st)
			}

			// Down goes back exactly one step.
			if err := mg.Down(); err != nil {
				t.Fatal(err)
			}
			if st := status(t, mg); st.Current != previous || st.Dirty {
				t.Fatalf("after Down: %+v, want version %d, clean", st, previous)
			}
			if previous == 0 {
				if n := countTables(t, db); n != 0 {
					t.Errorf("after rolling back everything %d tables are left", n)
				}
				if err := mg.Down(); err == nil {
					t.Error("Down with nothing applied succeeded")
				}
			}

			// Up again works only if Down really dropped what Up made.
			if err := mg.Up(); err != nil {
				t.Fatalf("Up after Down: %v", err)
			}
			if st := status(t, mg); st.Current != latest || st.Dirty {
				t.Fatalf("after Up, Down, Up: %+v", st)
			}
			if n := countTables(t, db); n != int64(len(schemaTables)) {
				t.Fatalf("after Up, Down, Up: %d of the %d tables", n, len(schemaTables))
			}
			// And the schema works.
			owner := newUser(t, db, "migrated@example.com")
			if _, err := models.NewProjectRepo(db, owner).Create(ctx, models.ProjectInput{Name: "p"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

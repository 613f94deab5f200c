package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// migrationsUpTo returns the migrations of dialect d up to version last
// only, in the layout models.NewMigrator reads (one folder per dialect):
// its Up stops at last. (models.Migrator has no "migrate to version".)
func migrationsUpTo(tb testing.TB, d models.Dialect, last uint) fs.FS {
	tb.Helper()
	entries, err := fs.ReadDir(migrations.FS, string(d))
	if err != nil {
		tb.Fatal(err)
	}
	files := fstest.MapFS{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		if uint(v) > last {
			continue
		}
		name := path.Join(string(d), e.Name())
		data, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			tb.Fatal(err)
		}
		files[name] = &fstest.MapFile{Data: data, Mode: 0o444}
	}
	return files
}

// legacyUserAgent holds what JSON escapes or encodes specially: '<', '>',
// '&', a quote, a backslash, a tab, non-ASCII letters, U+2028 (which
// encoding/json escapes and SQL JSON functions do not) and an emoji.
const legacyUserAgent = "Mozilla/5.0 <script>&amp; \"quoted\" \\path\tGröße café \u2028 ✓ 😀"

// legacyTrail returns n chained events as the pre-0005 writer made them
// (normalized: UTC, microseconds), with varied fields.
func legacyTrail(tb testing.TB, n int) []models.AuditEvent {
	tb.Helper()
	newID := func() string {
		id, err := models.NewID()
		if err != nil {
			tb.Fatal(err)
		}
		return id
	}
	actors := []struct{ typ, id, user string }{
		{models.ActorAnonymous, "", ""},
		{models.ActorUser, newID(), ""}, // user filled below: the same as the actor
		{models.ActorAPIKey, newID(), newID()},
		{models.ActorService, "svc-reports", ""},
		{models.ActorSystem, "", ""},
	}
	actors[1].user = actors[1].id
	actions := []string{models.ActionLoginSuccess, models.ActionLoginFail, models.ActionAuthzAllow,
		models.ActionAuthzFail, models.ActionAPIKeyCreated, models.ActionAnomaly, models.ActionRateLimited}
	outcomes := []string{models.OutcomeAllow, models.OutcomeDeny, models.OutcomeError}
	// Not UTC on purpose: stored times are UTC whatever the writer's zone.
	base := time.Date(2025, 3, 4, 23, 50, 7, 0, time.FixedZone("CET", 3600))
	events := make([]models.AuditEvent, n)
	prev := ""
	for i := range events {
		a := actors[i%len(actors)]
		at := base.Add(time.Duration(i) * time.Second)
		switch i % 4 {
		case 0: // a whole second: no fraction stored
		case 1:
			at = at.Add(120 * time.Millisecond) // trailing zeros
		case 2:
			at = at.Add(time.Duration(i*7919%1000000)*time.Microsecond + 789*time.Nanosecond) // truncated
		case 3:
			at = at.Add(-1500 * time.Millisecond) // earlier than the event before it
		}
		e := models.AuditEvent{
			ID:        newID(),
			At:        at.UTC().Truncate(time.Microsecond),
			ActorType: a.typ,
			ActorID:   a.id,
			UserID:    a.user,
			ClientIP:  fmt.Sprintf("203.0.113.%d", i%250),
			Route:     "GET /v1/projects/:id",
			Action:    actions[i%len(actions)],
			Outcome:   outcomes[i%len(outcomes)],
			PrevHash:  prev,
		}
		if i%3 != 2 {
			e.UserAgent = legacyUserAgent
			e.RequestID = fmt.Sprintf("req-%04d", i)
			e.ResourceType = "project"
			e.ResourceID = newID()
		}
		if e.Outcome != models.OutcomeAllow {
			e.Reason = fmt.Sprintf("rule %d: \"no\" <%d>", i%5, i)
		}
		e.Hash = e.ChainHashForTest()
		prev = e.Hash
		events[i] = e
	}
	return events
}

// insertLegacyEvent writes e into 0003's audit_events as the old writer
// did (the time bound as a time.Time) and returns its seq. seq 0 lets the
// database number the row.
func insertLegacyEvent(tb testing.TB, db *models.DB, e models.AuditEvent, seq int64) int64 {
	tb.Helper()
	ctx := context.Background()
	var (
		got int64
		err error
	)
	switch {
	case seq == 0:
		got, err = db.QueryIntForTest(ctx, `
			INSERT INTO audit_events (id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
				route, action, resource_type, resource_id, outcome, reason, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING seq`,
			e.ID, e.At, e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID,
			e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash, e.Hash)
	case db.Dialect() == models.Postgres:
		got, err = db.QueryIntForTest(ctx, `
			INSERT INTO audit_events (seq, id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
				route, action, resource_type, resource_id, outcome, reason, prev_hash, hash)
			OVERRIDING SYSTEM VALUE
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING seq`,
			seq, e.ID, e.At, e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID,
			e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash, e.Hash)
	default:
		got, err = db.QueryIntForTest(ctx, `
			INSERT INTO audit_events (seq, id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
				route, action, resource_type, resource_id, outcome, reason, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING seq`,
			seq, e.ID, e.At, e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID,
			e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash, e.Hash)
	}
	if err != nil {
		tb.Fatalf("insert legacy event: %v", err)
	}
	if seq != 0 && got != seq {
		tb.Fatalf("legacy event stored with seq %d, want %d", got, seq)
	}
	return got
}

// setLegacyHead moves audit_head as the old writer did after a batch.
func setLegacyHead(tb testing.TB, db *models.DB, lastSeq int64, hash string) {
	tb.Helper()
	n, err := db.ExecForTest(context.Background(),
		`UPDATE audit_head SET last_seq = ?, hash = ?, locked_at = NULL WHERE id = 1`, lastSeq, hash)
	if err != nil || n != 1 {
		tb.Fatalf("update audit_head: %d rows, %v", n, err)
	}
}

// eventDiff reports the first field in which got differs from want
// (Seq aside), or "".
func eventDiff(got, want models.AuditEvent) string {
	if !got.At.Equal(want.At) {
		return fmt.Sprintf("At %s, want %s", got.At.Format(time.RFC3339Nano), want.At.Format(time.RFC3339Nano))
	}
	for _, f := range []struct {
		name      string
		got, want string
	}{
		{"ID", got.ID, want.ID}, {"ActorType", got.ActorType, want.ActorType},
		{"ActorID", got.ActorID, want.ActorID}, {"UserID", got.UserID, want.UserID},
		{"ClientIP", got.ClientIP, want.ClientIP}, {"UserAgent", got.UserAgent, want.UserAgent},
		{"RequestID", got.RequestID, want.RequestID}, {"Route", got.Route, want.Route},
		{"Action", got.Action, want.Action}, {"ResourceType", got.ResourceType, want.ResourceType},
		{"ResourceID", got.ResourceID, want.ResourceID}, {"Outcome", got.Outcome, want.Outcome},
		{"Reason", got.Reason, want.Reason}, {"PrevHash", got.PrevHash, want.PrevHash},
		{"Hash", got.Hash, want.Hash},
	} {
		if f.got != f.want {
			return fmt.Sprintf("%s %q, want %q", f.name, f.got, f.want)
		}
	}
	return ""
}

// listAllPages pages through List with f and returns every event.
func listAllPages(tb testing.TB, log *models.AuditLog, f models.AuditFilter) []models.AuditEvent {
	tb.Helper()
	var all []models.AuditEvent
	var after int64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatal("List does not end")
		}
		page, err := log.List(context.Background(), f, models.PageRequest{Limit: 100, After: after})
		if err != nil {
			tb.Fatalf("List(%+v, after %d): %v", f, after, err)
		}
		if len(page.Items) > 100 {
			tb.Fatalf("List gave %d items for a limit of 100", len(page.Items))
		}
		all = append(all, page.Items...)
		if page.Next == 0 {
			return all
		}
		if page.Next <= after {
			tb.Fatalf("List's next %d does not move past %d", page.Next, after)
		}
		after = page.Next
	}
}

// eventIDs returns the IDs of events, in order.
func eventIDs(events []models.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// column reads a string column as a driver delivers it.
func column(tb testing.TB, v any) string {
	tb.Helper()
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	default:
		tb.Fatalf("a text column came back as %T", v)
		return ""
	}
}

// readLegacyTrail reads 0003's audit_events in seq order.
func readLegacyTrail(tb testing.TB, db *models.DB) []models.AuditEvent {
	tb.Helper()
	rows, err := db.QueryRowsForTest(context.Background(), `
		SELECT seq, CAST(id AS TEXT), at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
			route, action, resource_type, resource_id, outcome, reason, prev_hash, hash
		FROM audit_events ORDER BY seq`)
	if err != nil {
		tb.Fatalf("read audit_events: %v", err)
	}
	out := make([]models.AuditEvent, len(rows))
	for i, r := range rows {
		seq, ok := r[0].(int64)
		if !ok {
			tb.Fatalf("seq came back as %T", r[0])
		}
		at, ok := r[2].(time.Time)
		if !ok {
			tb.Fatalf("row %d: at came back as %T %v, not a time", seq, r[2], r[2])
		}
		out[i] = models.AuditEvent{Seq: seq, ID: column(tb, r[1]), At: at.UTC(), ActorType: column(tb, r[3]),
			ActorID: column(tb, r[4]), UserID: column(tb, r[5]), ClientIP: column(tb, r[6]), UserAgent: column(tb, r[7]),
			RequestID: column(tb, r[8]), Route: column(tb, r[9]), Action: column(tb, r[10]),
			ResourceType: column(tb, r[11]), ResourceID: column(tb, r[12]), Outcome: column(tb, r[13]),
			Reason: column(tb, r[14]), PrevHash: column(tb, r[15]), Hash: column(tb, r[16])}
	}
	return out
}

// verifyLegacyChain checks rows as the pre-0005 Verify did: each row's
// hash recomputed from its content, each link, and the head.
func verifyLegacyChain(tb testing.TB, db *models.DB, rows []models.AuditEvent) {
	tb.Helper()
	prev := ""
	for _, e := range rows {
		if e.PrevHash != prev {
			tb.Fatalf("old table, row %d: prev_hash does not link to the row before", e.Seq)
		}
		if h := e.ChainHashForTest(); h != e.Hash {
			tb.Fatalf("old table, row %d: content hashes to %s, stored hash %s", e.Seq, h, e.Hash)
		}
		prev = e.Hash
	}
	ctx := context.Background()
	lastSeq, err := db.QueryIntForTest(ctx, `SELECT last_seq FROM audit_head WHERE id = 1`)
	if err != nil {
		tb.Fatal(err)
	}
	head, err := db.QueryStringForTest(ctx, `SELECT hash FROM audit_head WHERE id = 1`)
	if err != nil {
		tb.Fatal(err)
	}
	if len(rows) > 0 && (lastSeq != rows[len(rows)-1].Seq || head != prev) {
		tb.Fatalf("old table: head names row %d (%s), the chain ends at row %d (%s)",
			lastSeq, head, rows[len(rows)-1].Seq, prev)
	}
}

// eventStrings returns e's fields as text, in the order of its canonical
// form (the time in RFC 3339 at microseconds, UTC), then its hash.
func eventStrings(e models.AuditEvent) []string {
	return []string{e.ID, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), e.ActorType, e.ActorID,
		e.UserID, e.ClientIP, e.UserAgent, e.RequestID, e.Route, e.Action, e.ResourceType, e.ResourceID,
		e.Outcome, e.Reason, e.PrevHash, e.Hash}
}

// checkBatchJSON checks that audit_batches holds, as JSON, each event of
// trail as migration 0005 describes it: the 16 strings of its hashed
// canonical form (the time in RFC 3339 at microseconds, UTC) and its hash.
func checkBatchJSON(tb testing.TB, db *models.DB, trail []models.AuditEvent) {
	tb.Helper()
	rows, err := db.QueryRowsForTest(context.Background(), `SELECT events FROM audit_batches ORDER BY first_seq`)
	if err != nil {
		tb.Fatal(err)
	}
	var stored [][]string
	for _, r := range rows {
		var batch [][]string
		if err := json.Unmarshal([]byte(column(tb, r[0])), &batch); err != nil {
			tb.Fatalf("a batch's events are not an array of arrays of strings: %v", err)
		}
		stored = append(stored, batch...)
	}
	if len(stored) != len(trail) {
		tb.Fatalf("the batches hold %d events, want %d", len(stored), len(trail))
	}
	for i, e := range trail {
		want := append([]string{"v1"}, eventStrings(e)...)
		if !slices.Equal(stored[i], want) {
			tb.Fatalf("event %d is stored in its batch as\n%q\nwant\n%q", i+1, stored[i], want)
		}
	}
}

// checkView checks that the audit_events view reads every event of trail
// as it was written, every field and its seq included, whichever form its
// batch is stored in.
func checkView(tb testing.TB, db *models.DB, d models.Dialect, trail []models.AuditEvent) {
	tb.Helper()
	at := "at"
	if d == models.Postgres {
		at = `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
	}
	rows, err := db.QueryRowsForTest(context.Background(), `SELECT CAST(seq AS TEXT), CAST(id AS TEXT), `+at+`,
		actor_type, actor_id, user_id, client_ip, user_agent, request_id, route, action, resource_type,
		resource_id, outcome, reason, prev_hash, hash FROM audit_events ORDER BY audit_events.seq`)
	if err != nil {
		tb.Fatal(err)
	}
	if len(rows) != len(trail) {
		tb.Fatalf("the audit_events view has %d rows, want %d", len(rows), len(trail))
	}
	for i, e := range trail {
		want := append([]string{strconv.FormatInt(e.Seq, 10)}, eventStrings(e)...)
		got := make([]string, len(rows[i]))
		for k, v := range rows[i] {
			got[k] = column(tb, v)
		}
		if !slices.Equal(got, want) {
			tb.Fatalf("the audit_events view reads event %d as\n%q\nwant\n%q", i+1, got, want)
		}
	}
}

// TestMigration0005KeepsTheAuditTrail writes a trail into 0003's table as
// the old writer did, migrates up through 0005 (a row per batch) and 0006
// (the shorter form the writer appends in), and checks that every event
// survives, readable, filterable and verifiable, that the writer continues
// the chain, that rolling 0006 back rewrites its batches in 0005's form,
// and that rolling 0005 back gives the old table with every event, its seq
// and its hash again.
func TestMigration0005KeepsTheAuditTrail(t *testing.T) {
	const (
		n     = 600 // three batches: 256 + 256 + 88
		gapAt = 300 // events from here on get seqs after a gap
	)
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			u := dbtest.URL(t, d)

			// 1. A database at version 4: the audit trail is 0003's table.
			old, err := models.NewMigrator(u, migrationsUpTo(t, d, 4))
			if err != nil {
				t.Fatal(err)
			}
			upErr := old.Up()
			st, stErr := old.Status()
			if err := errors.Join(upErr, stErr, old.Close()); err != nil {
				t.Fatalf("migrate to version 4: %v", err)
			}
			if st.Current != 4 || st.Dirty {
				t.Fatalf("at version 4: %+v", st)
			}
			db, err := models.OpenDB(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })

			// 2. The legacy trail, with a gap in seq.
			events := legacyTrail(t, n)
			var lastSeq int64
			for i, e := range events {
				switch {
				case i < gapAt && d == models.Postgres:
					lastSeq = insertLegacyEvent(t, db, e, 0) // the identity numbers it
				case i < gapAt:
					lastSeq = insertLegacyEvent(t, db, e, int64(i+1))
				default:
					lastSeq = insertLegacyEvent(t, db, e, int64(1000+i))
				}
			}
			if lastSeq != 1000+n-1 {
				t.Fatalf("last legacy seq %d", lastSeq)
			}
			setLegacyHead(t, db, lastSeq, events[n-1].Hash)
			if first, err := db.QueryIntForTest(ctx, `SELECT min(seq) FROM audit_events`); err != nil || first != 1 {
				t.Fatalf("first legacy seq %d, %v", first, err)
			}
			if d == models.SQLite {
				// Stored as the old writer stored it: a bound time.Time.
				want, err := db.QueryStringForTest(ctx, `SELECT CAST(? AS TEXT)`, events[1].At)
				if err != nil {
					t.Fatal(err)
				}
				got, err := db.QueryStringForTest(ctx, `SELECT CAST(at AS TEXT) FROM audit_events WHERE id = ?`, events[1].ID)
				if err != nil || got != want {
					t.Fatalf("legacy at stored as %q (%v), want %q", got, err, want)
				}
			}

			// 3. Up to version 6, the form the writer appends in. (Only
			// the migrations up to 0006: later ones, such as a generated
			// resource's, are not this test's, and Down must step back
			// over 0006 and 0005 themselves.)
			mg, err := models.NewMigrator(u, migrationsUpTo(t, d, 6))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = mg.Close() })
			if err := mg.Up(); err != nil {
				t.Fatalf("migrate up over a legacy trail: %v", err)
			}
			st = status(t, mg)
			const latest = 6
			if st.Current != latest || st.Dirty {
				t.Fatalf("after Up: %+v, want version %d", st, latest)
			}

			// 4. Every event is there, in order, unchanged.
			log := models.NewAuditLog(db)
			v, err := log.Verify(ctx)
			if err != nil {
				t.Fatalf("Verify after migrating: %v", err)
			}
			if v.Rows != n || v.Head != events[n-1].Hash {
				t.Fatalf("Verify after migrating: %+v, want %d rows and head %s", v, n, events[n-1].Hash)
			}
			all := listAllPages(t, log, models.AuditFilter{})
			if len(all) != n {
				t.Fatalf("List after migrating: %d events, want %d", len(all), n)
			}
			for i, e := range all {
				if e.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d, want %d", i, e.Seq, i+1)
				}
				if diff := eventDiff(e, events[i]); diff != "" {
					t.Fatalf("event %d after migrating: %s", i, diff)
				}
			}
			filters := []models.AuditFilter{
				{Actor: events[2].ActorID},                              // an API key: matches its actor ID
				{Actor: events[2].UserID},                               // ... and its acting user
				{Actor: events[1].ActorID, Outcome: models.OutcomeDeny}, // a user and an outcome
				{Outcome: models.OutcomeDeny},
				{Outcome: models.OutcomeError, Action: models.ActionAuthzFail},
				{Since: events[n-10].At}, // events out of time order too
			}
			for _, f := range filters {
				var want []string
				for _, e := range events {
					if (f.Actor == "" || e.ActorID == f.Actor || e.UserID == f.Actor) &&
						(f.Action == "" || e.Action == f.Action) &&
						(f.Outcome == "" || e.Outcome == f.Outcome) && !e.At.Before(f.Since) {
						want = append(want, e.ID)
					}
				}
				if len(want) == 0 || len(want) == n {
					t.Fatalf("filter %+v selects %d events: a poor test", f, len(want))
				}
				if got := eventIDs(listAllPages(t, log, f)); !slices.Equal(got, want) {
					t.Errorf("List(%+v) after migrating: %d events, want %d", f, len(got), len(want))
				}
			}
			if c, err := db.QueryIntForTest(ctx, `SELECT COUNT(*) FROM audit_events`); err != nil || c != n {
				t.Fatalf("the audit_events view has %d rows (%v), want %d", c, err, n)
			}
			if c, err := db.QueryIntForTest(ctx, `SELECT COUNT(DISTINCT seq) FROM audit_events WHERE seq BETWEEN 1 AND ?`, n); err != nil || c != n {
				t.Fatalf("the audit_events view has seqs 1..%d %d times (%v)", n, c, err)
			}
			batches, err := db.AuditBatchesForTest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantBatches := [][2]int64{{1, 256}, {257, 512}, {513, 600}}
			if len(batches) != len(wantBatches) {
				t.Fatalf("%d batches, want %d", len(batches), len(wantBatches))
			}
			for i, b := range batches {
				if [2]int64{b.FirstSeq, b.LastSeq} != wantBatches[i] || int64(len(b.Events)) != b.LastSeq-b.FirstSeq+1 {
					t.Errorf("batch %d: seqs %d..%d with %d events, want %v", i, b.FirstSeq, b.LastSeq, len(b.Events), wantBatches[i])
				}
			}

			checkBatchJSON(t, db, events)

			// 5. The writer continues the chain from the migrated head.
			last := events[n-1].At
			added := []models.AuditEvent{
				{ActorType: models.ActorUser, ActorID: events[1].ActorID, UserID: events[1].UserID,
					Action: models.ActionAuthzAllow, At: last.Add(1 * time.Second), UserAgent: legacyUserAgent},
				{Action: models.ActionLoginFail, Outcome: models.OutcomeDeny, At: last.Add(2*time.Second + 500*time.Millisecond)},
				{ActorType: models.ActorSystem, Action: models.ActionSysStartup, At: last.Add(3*time.Second + 123456*time.Microsecond)},
				{ActorType: models.ActorService, ActorID: "svc-reports", Action: models.ActionAuthzAdmin,
					Outcome: models.OutcomeError, Reason: "boom", At: last.Add(4 * time.Second)},
			}
			k := len(added)
			if err := log.Append(ctx, added); err != nil {
				t.Fatalf("Append after migrating: %v", err)
			}
			if added[0].Seq != n+1 || added[0].PrevHash != events[n-1].Hash {
				t.Fatalf("the first appended event has seq %d and prev %s, want %d and %s",
					added[0].Seq, added[0].PrevHash, n+1, events[n-1].Hash)
			}
			v, err = log.Verify(ctx)
			if err != nil {
				t.Fatalf("Verify after appending: %v", err)
			}
			if v.Rows != int64(n+k) || v.Head != added[k-1].Hash {
				t.Fatalf("Verify after appending: %+v, want %d rows and head %s", v, n+k, added[k-1].Hash)
			}
			trail := append(slices.Clone(events), added...)
			for i := range trail {
				trail[i].Seq = int64(i + 1)
			}
			checkView(t, db, d, trail)

			// 6. Down one step: every batch in 0005's form, the appended
			// one included; then another: 0003's table again, every
			// event in it.
			if err := mg.Down(); err != nil {
				t.Fatalf("migrate down from 0006: %v", err)
			}
			if st := status(t, mg); st.Current != 5 || st.Dirty {
				t.Fatalf("after Down: %+v, want version 5", st)
			}
			checkBatchJSON(t, db, trail)
			if err := mg.Down(); err != nil {
				t.Fatalf("migrate down from 0005: %v", err)
			}
			if st := status(t, mg); st.Current != 4 || st.Dirty {
				t.Fatalf("after Down: %+v, want version 4", st)
			}
			rows := readLegacyTrail(t, db)
			if len(rows) != n+k {
				t.Fatalf("old table after Down: %d rows, want %d", len(rows), n+k)
			}
			for i, r := range rows {
				if r.Seq != int64(i+1) {
					t.Fatalf("old table row %d has seq %d, want %d", i, r.Seq, i+1)
				}
				if diff := eventDiff(r, trail[i]); diff != "" {
					t.Fatalf("old table row %d: %s", r.Seq, diff)
				}
			}
			verifyLegacyChain(t, db, rows)
			if d == models.SQLite {
				// Every time is stored as the old writer stored it (a
				// bound time.Time), or the old code's "at >= ?" compares
				// text of two formats.
				stored, err := db.QueryRowsForTest(ctx, `SELECT CAST(at AS TEXT) FROM audit_events ORDER BY seq`)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range stored {
					want, err := db.QueryStringForTest(ctx, `SELECT CAST(? AS TEXT)`, trail[i].At)
					if err != nil {
						t.Fatal(err)
					}
					if got := column(t, r[0]); got != want {
						t.Errorf("old table row %d: at stored as %q, the old writer stores %q", i+1, got, want)
						break
					}
				}
			}
			// The old List's time filter.
			for _, since := range []time.Time{events[n/2].At, added[1].At, added[k-1].At} {
				var want int64
				for _, e := range trail {
					if !e.At.Before(since) {
						want++
					}
				}
				got, err := db.QueryIntForTest(ctx, `SELECT COUNT(*) FROM audit_events WHERE at >= ?`, since)
				if err != nil || got != want {
					t.Errorf("old table: %d rows at or after %s (%v), want %d", got, since, err, want)
				}
			}
			// The old writer appends after the last seq.
			more := legacyTrail(t, 1)[0]
			more.PrevHash = trail[len(trail)-1].Hash
			more.At = added[k-1].At.Add(time.Second)
			more.Hash = more.ChainHashForTest()
			if seq := insertLegacyEvent(t, db, more, 0); seq != int64(n+k+1) {
				t.Fatalf("old writer after Down: seq %d, want %d", seq, n+k+1)
			}
			setLegacyHead(t, db, int64(n+k+1), more.Hash)
			trail = append(trail, more)

			// 7. Up again.
			if err := mg.Up(); err != nil {
				t.Fatalf("Up after Down: %v", err)
			}
			if st := status(t, mg); st.Current != latest || st.Dirty {
				t.Fatalf("after Up, Down, Up: %+v", st)
			}
			v, err = log.Verify(ctx)
			if err != nil {
				t.Fatalf("Verify after Up, Down, Up: %v", err)
			}
			if v.Rows != int64(len(trail)) || v.Head != more.Hash {
				t.Fatalf("Verify after Up, Down, Up: %+v, want %d rows and head %s", v, len(trail), more.Hash)
			}
			checkBatchJSON(t, db, trail)
			all = listAllPages(t, log, models.AuditFilter{})
			if len(all) != len(trail) {
				t.Fatalf("List after Up, Down, Up: %d events, want %d", len(all), len(trail))
			}
			for i, e := range all {
				if diff := eventDiff(e, trail[i]); e.Seq != int64(i+1) || diff != "" {
					t.Fatalf("event %d after Up, Down, Up: seq %d, %s", i, e.Seq, diff)
				}
			}
		})
	}
}

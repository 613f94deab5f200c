package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rampart-go/rampart/migrations"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// auditEvent returns a plausible event (a refused read of another user's
// project); i makes it distinct.
func auditEvent(i int) models.AuditEvent {
	return models.AuditEvent{
		ActorType:    models.ActorUser,
		ActorID:      fmt.Sprintf("user-%d", i%3),
		UserID:       fmt.Sprintf("user-%d", i%3),
		ClientIP:     "203.0.113.7",
		UserAgent:    "curl/8.5.0",
		RequestID:    fmt.Sprintf("req-%04d", i),
		Route:        "GET /v1/projects/:id",
		Action:       models.ActionAuthzFail,
		ResourceType: "project",
		ResourceID:   fmt.Sprintf("project-%d", i),
		Outcome:      models.OutcomeDeny,
		Reason:       "not the owner",
	}
}

// appendAudit appends events as one batch and returns them as stored,
// with their Seq, PrevHash and Hash.
func appendAudit(tb testing.TB, l *models.AuditLog, events ...models.AuditEvent) []models.AuditEvent {
	tb.Helper()
	events = slices.Clone(events)
	if err := l.Append(context.Background(), events); err != nil {
		tb.Fatalf("append: %v", err)
	}
	return events
}

// appendN appends n events (auditEvent(0..n-1)) in one batch.
func appendN(tb testing.TB, l *models.AuditLog, n int) []models.AuditEvent {
	tb.Helper()
	events := make([]models.AuditEvent, n)
	for i := range events {
		events[i] = auditEvent(i)
	}
	return appendAudit(tb, l, events...)
}

// listAll pages through every event matching f, a few at a time.
func listAll(tb testing.TB, l *models.AuditLog, f models.AuditFilter) []models.AuditEvent {
	tb.Helper()
	var all []models.AuditEvent
	p := models.PageRequest{Limit: 7}
	for {
		page, err := l.List(context.Background(), f, p)
		if err != nil {
			tb.Fatalf("list: %v", err)
		}
		all = append(all, page.Items...)
		if page.Next == 0 {
			return all
		}
		p.After = page.Next
	}
}

// countAudit counts the stored events.
func countAudit(tb testing.TB, db *models.DB) int64 {
	tb.Helper()
	n, err := db.QueryIntForTest(context.Background(), `SELECT COUNT(*) FROM audit_events`)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// verifyIntact checks that the chain verifies and returns the result.
func verifyIntact(tb testing.TB, l *models.AuditLog) models.AuditVerification {
	tb.Helper()
	v, err := l.Verify(context.Background())
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return v
}

// wantBreak checks that err is a broken chain at row seq (0: at the head)
// with the given id, and that its reason says want.
func wantBreak(tb testing.TB, err error, seq int64, id, want string) {
	tb.Helper()
	var b *models.AuditBreak
	if !errors.As(err, &b) {
		tb.Fatalf("verify: %v, want a broken chain at row %d", err, seq)
	}
	if !models.IsAuditBreak(err) {
		tb.Errorf("IsAuditBreak(%v) is false", err)
	}
	if b.Seq != seq || b.ID != id {
		tb.Errorf("broken at row %d (id %q), want row %d (id %q): %v", b.Seq, b.ID, seq, id, b)
	}
	if !strings.Contains(b.Reason, want) {
		tb.Errorf("reason %q does not say %q", b.Reason, want)
	}
}

// execAudit runs a statement an attacker (or a test) runs directly.
func execAudit(tb testing.TB, db *models.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecForTest(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// dropAuditTriggers plays an attacker with the owner's rights, who can
// drop the append-only triggers; only the hash chain is left to notice.
func dropAuditTriggers(tb testing.TB, db *models.DB) {
	tb.Helper()
	switch db.Dialect() {
	case models.SQLite:
		execAudit(tb, db, `DROP TRIGGER audit_batches_no_update`)
		execAudit(tb, db, `DROP TRIGGER audit_batches_no_delete`)
		execAudit(tb, db, `DROP TRIGGER audit_batches_no_replace`)
	case models.Postgres:
		execAudit(tb, db, `DROP TRIGGER audit_batches_no_change ON audit_batches`)
		execAudit(tb, db, `DROP TRIGGER audit_batches_no_truncate ON audit_batches`)
	}
}

// rewriteAudit plays the same attacker editing the stored batches: change
// gets them decoded (the trail appended by appendN calls: one batch each)
// and returns what is written back in their place, byte for byte as an
// event would be stored, with filter columns that match the events.
func rewriteAudit(tb testing.TB, db *models.DB, change func(b []models.AuditBatchForTest) []models.AuditBatchForTest) {
	tb.Helper()
	ctx := context.Background()
	batches, err := db.AuditBatchesForTest(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.WriteAuditBatchesForTest(ctx, change(batches)); err != nil {
		tb.Fatal(err)
	}
}

// editStored plays the same attacker editing the batch that starts at
// firstSeq as the writer stored it (migration 0006's short form): change
// gets its events (JSON numbers as float64), its strings and its
// prev_hash, and what it returns is written back.
func editStored(tb testing.TB, db *models.DB, firstSeq int64,
	change func(events [][]any, strs []string, prev *string) ([][]any, []string)) {
	tb.Helper()
	rows, err := db.QueryRowsForTest(context.Background(),
		`SELECT events, strings, prev_hash FROM audit_batches WHERE first_seq = ?`, firstSeq)
	if err != nil || len(rows) != 1 {
		tb.Fatalf("batch %d: %d rows, %v", firstSeq, len(rows), err)
	}
	var events [][]any
	var strs []string
	prev := column(tb, rows[0][2])
	if err := errors.Join(json.Unmarshal([]byte(column(tb, rows[0][0])), &events),
		json.Unmarshal([]byte(column(tb, rows[0][1])), &strs)); err != nil {
		tb.Fatalf("batch %d is not in the short form: %v", firstSeq, err)
	}
	events, strs = change(events, strs, &prev)
	eventsJSON, err1 := json.Marshal(events)
	strsJSON, err2 := json.Marshal(strs)
	if err := errors.Join(err1, err2); err != nil {
		tb.Fatal(err)
	}
	execAudit(tb, db, `UPDATE audit_batches SET events = ?, strings = ?, prev_hash = ? WHERE first_seq = ?`,
		string(eventsJSON), string(strsJSON), prev, firstSeq)
}

// batchOf returns a batch holding events, numbered from first.
func batchOf(first int64, events ...models.AuditEvent) models.AuditBatchForTest {
	return models.AuditBatchForTest{FirstSeq: first, LastSeq: first + int64(len(events)) - 1, Events: events}
}

// forged returns an event chained to prev with a correct hash: the
// algorithm is public, so anyone can compute one.
func forged(tb testing.TB, prev string) models.AuditEvent {
	tb.Helper()
	id, err := models.NewID()
	if err != nil {
		tb.Fatal(err)
	}
	e := auditEvent(999)
	e.ID, e.At, e.Outcome, e.Reason = id, time.Now().UTC().Truncate(time.Microsecond), models.OutcomeAllow, "forged"
	e.PrevHash = prev
	e.Hash = e.ChainHashForTest()
	return e
}

func TestAuditAppendThenVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)

		// An empty trail verifies, with an empty head.
		if v := verifyIntact(t, l); v.Rows != 0 || v.Head != "" {
			t.Errorf("empty trail: %+v", v)
		}
		if err := l.Append(context.Background(), nil); err != nil {
			t.Errorf("appending nothing: %v", err)
		}

		var stored []models.AuditEvent
		for _, n := range []int{1, 4, 2} {
			stored = append(stored, appendN(t, l, n)...)
		}
		prev := ""
		for i, e := range stored {
			if e.Seq != int64(i+1) || e.PrevHash != prev || len(e.Hash) != 64 || !models.ValidID(e.ID) {
				t.Errorf("event %d: seq %d, prev %q, hash %q, id %q; want seq %d chained to %q",
					i, e.Seq, e.PrevHash, e.Hash, e.ID, i+1, prev)
			}
			if e.Hash != e.ChainHashForTest() {
				t.Errorf("event %d: hash %s does not cover its content", i, e.Hash)
			}
			prev = e.Hash
		}
		v := verifyIntact(t, l)
		if v.Rows != int64(len(stored)) || v.Head != stored[len(stored)-1].Hash {
			t.Errorf("verify: %+v, want %d rows and head %s", v, len(stored), stored[len(stored)-1].Hash)
		}
		// What is read back is exactly what Append returned.
		if got := listAll(t, l, models.AuditFilter{}); !slices.EqualFunc(got, stored, sameEvent) {
			t.Errorf("list:\n%+v\nwant\n%+v", got, stored)
		}
	})
}

// sameEvent compares every field, the time as an instant.
func sameEvent(a, b models.AuditEvent) bool {
	ta, tb := a.At, b.At
	a.At, b.At = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func TestAuditEventRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		at := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("UTC+5:30", 5*3600+1800))
		in := models.AuditEvent{
			At:           at,
			ActorType:    models.ActorAPIKey,
			ActorID:      "key-Zoë",
			UserID:       "user-東京",
			ClientIP:     "2001:db8::1",
			UserAgent:    strings.Repeat("ü", 300),              // capped at 256 runes
			RequestID:    "req\r\nInjected: yes\tand a bell \a", // control characters are kept, not lost
			Route:        "GET /v1/projects/:id",
			Action:       models.ActionAuthzFail,
			ResourceType: "project",
			ResourceID:   "🛡️" + strings.Repeat("x", 600), // capped at 512 runes
			Outcome:      models.OutcomeDeny,
			Reason:       "bad UTF-8: \xff\xfe end",
		}
		stored := appendAudit(t, l, in)[0]

		if want := at.UTC().Truncate(time.Microsecond); !stored.At.Equal(want) || stored.At.Location() != time.UTC {
			t.Errorf("at %v, want %v in UTC at microseconds", stored.At, want)
		}
		if n := utf8.RuneCountInString(stored.UserAgent); n != 256 {
			t.Errorf("user agent kept %d runes, want 256", n)
		}
		if n := utf8.RuneCountInString(stored.ResourceID); n != 512 || !strings.HasPrefix(stored.ResourceID, "🛡️") {
			t.Errorf("resource id kept %d runes (want 512): %.20q", n, stored.ResourceID)
		}
		if stored.Reason != "bad UTF-8: \uFFFD end" { // one U+FFFD per run of bad bytes
			t.Errorf("reason %q: invalid UTF-8 is not replaced", stored.Reason)
		}
		if stored.RequestID != in.RequestID || stored.ActorID != in.ActorID || stored.UserID != in.UserID {
			t.Errorf("text changed: %q %q %q", stored.RequestID, stored.ActorID, stored.UserID)
		}
		for _, s := range []string{stored.UserAgent, stored.ResourceID, stored.Reason} {
			if !utf8.ValidString(s) {
				t.Errorf("%.20q is not valid UTF-8", s)
			}
		}

		got := listAll(t, l, models.AuditFilter{})
		if len(got) != 1 {
			t.Fatalf("%d events, want 1", len(got))
		}
		if !sameEvent(got[0], stored) {
			t.Errorf("read back\n%+v\nwant\n%+v", got[0], stored)
		}
		if !got[0].At.UTC().Equal(got[0].At) || got[0].At.Nanosecond() != 123456000 {
			t.Errorf("read back at %v, want .123456", got[0].At)
		}
		// The hash recomputed from the row read back is the stored one.
		if got[0].ChainHashForTest() != got[0].Hash {
			t.Error("the hash does not survive the round trip")
		}
		verifyIntact(t, l)
	})
}

func TestAuditRejectsNULAndUnknownValues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		// A NUL byte may come from a decoded path (%00); PostgreSQL cannot
		// store it in text, and a writer retrying such a batch forever
		// would stop the whole trail.
		e := auditEvent(1)
		e.ResourceID = "abc\x00def"
		e.UserAgent = "\x00"
		stored := appendAudit(t, l, e)[0]
		if stored.ResourceID != "abc\uFFFDdef" || stored.UserAgent != "\uFFFD" {
			t.Errorf("NUL stored as %q, %q", stored.ResourceID, stored.UserAgent)
		}
		if got := listAll(t, l, models.AuditFilter{}); len(got) != 1 || !sameEvent(got[0], stored) {
			t.Errorf("read back %+v", got)
		}

		// An outcome or actor type the table does not allow is refused
		// before any statement runs (the database would refuse it forever).
		for _, bad := range []models.AuditEvent{{Outcome: "maybe"}, {ActorType: "robot"}} {
			if err := l.Append(context.Background(), []models.AuditEvent{auditEvent(2), bad}); err == nil {
				t.Errorf("append %+v: no error", bad)
			}
		}
		if n := countAudit(t, db); n != 1 {
			t.Errorf("%d events after the refused batches, want 1", n)
		}
		verifyIntact(t, l)
	})
}

func TestAuditListFiltersAndPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		l := models.NewAuditLog(db)
		base := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		events := []models.AuditEvent{
			{At: base, ActorType: models.ActorAnonymous, UserID: "alice", Action: models.ActionLoginFail, Outcome: models.OutcomeDeny},
			{At: base.Add(time.Second), ActorType: models.ActorUser, ActorID: "alice", UserID: "alice", Action: models.ActionLoginSuccess},
			{At: base.Add(2 * time.Second), ActorType: models.ActorAPIKey, ActorID: "key-1", UserID: "alice", Action: models.ActionAuthzAllow},
			{At: base.Add(3 * time.Second), ActorType: models.ActorUser, ActorID: "bob", UserID: "bob", Action: models.ActionAuthzFail, Outcome: models.OutcomeDeny},
			{At: base.Add(3*time.Second + time.Microsecond), ActorType: models.ActorService, ActorID: "reports", Action: models.ActionAuthzAllow},
			{At: base.Add(4 * time.Second), ActorType: models.ActorSystem, Action: models.ActionAnomaly, Outcome: models.OutcomeError},
		}
		stored := appendAudit(t, l, events...)
		seqs := func(es []models.AuditEvent) []int64 {
			out := []int64{}
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}

		tests := []struct {
			name string
			f    models.AuditFilter
			want []int64
		}{
			{"no filter", models.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6}},
			{"actor as user id", models.AuditFilter{Actor: "alice"}, []int64{1, 2, 3}},
			{"actor as actor id", models.AuditFilter{Actor: "key-1"}, []int64{3}},
			{"service actor", models.AuditFilter{Actor: "reports"}, []int64{5}},
			{"action", models.AuditFilter{Action: models.ActionAuthzAllow}, []int64{3, 5}},
			{"outcome", models.AuditFilter{Outcome: models.OutcomeDeny}, []int64{1, 4}},
			{"since is inclusive", models.AuditFilter{Since: base.Add(3 * time.Second)}, []int64{4, 5, 6}},
			{"since at microseconds", models.AuditFilter{Since: base.Add(3*time.Second + time.Microsecond)}, []int64{5, 6}},
			{"since in another zone", models.AuditFilter{Since: base.Add(4 * time.Second).In(time.FixedZone("-07", -7*3600))}, []int64{6}},
			{"since after everything", models.AuditFilter{Since: base.Add(time.Hour)}, []int64{}},
			{"combined", models.AuditFilter{Actor: "alice", Outcome: models.OutcomeAllow, Since: base.Add(time.Second)}, []int64{2, 3}},
			{"no match", models.AuditFilter{Actor: "mallory"}, []int64{}},
		}
		for _, tt := range tests {
			if got := seqs(listAll(t, l, tt.f)); !slices.Equal(got, tt.want) {
				t.Errorf("%s: seqs %v, want %v", tt.name, got, tt.want)
			}
		}

		// Pages of two: each continues after the last, the last has no Next.
		var got []models.AuditEvent
		p := models.PageRequest{Limit: 2}
		for pages := 0; ; pages++ {
			page, err := l.List(ctx, models.AuditFilter{}, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > 2 || pages > 3 {
				t.Fatalf("page %d: %d items", pages, len(page.Items))
			}
			got = append(got, page.Items...)
			if page.Next == 0 {
				break
			}
			if page.Next != page.Items[len(page.Items)-1].Seq {
				t.Errorf("next %d is not the last item's seq", page.Next)
			}
			p.After = page.Next
		}
		if !slices.EqualFunc(got, stored, sameEvent) {
			t.Errorf("paged list differs from what was appended")
		}
		// Filters apply across pages too.
		page, err := l.List(ctx, models.AuditFilter{Actor: "alice"}, models.PageRequest{Limit: 2})
		if err != nil || !slices.Equal(seqs(page.Items), []int64{1, 2}) || page.Next != 2 {
			t.Fatalf("first filtered page: %v, next %d, %v", seqs(page.Items), page.Next, err)
		}
		page, err = l.List(ctx, models.AuditFilter{Actor: "alice"}, models.PageRequest{Limit: 2, After: page.Next})
		if err != nil || !slices.Equal(seqs(page.Items), []int64{3}) || page.Next != 0 {
			t.Errorf("second filtered page: %v, next %d, %v", seqs(page.Items), page.Next, err)
		}
	})
}

func TestAuditTrailIsAppendOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		l := models.NewAuditLog(db)
		stored := appendN(t, l, 3)

		// The application's own connection cannot change or remove a
		// batch, nor write through the per-event view.
		refused := []string{
			`UPDATE audit_batches SET events = replace(events, 'deny', 'allow')`,
			`UPDATE audit_batches SET actors = ','`,
			`DELETE FROM audit_batches WHERE first_seq = 1`,
			`DELETE FROM audit_batches`,
			`INSERT INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events)
			SELECT first_seq, last_seq, first_id, max_at, outcomes, actions, actors, '[]' FROM audit_batches
			ON CONFLICT (first_id) DO UPDATE SET events = '[]'`,
			`UPDATE audit_events SET outcome = 'allow' WHERE seq = 2`,
			`DELETE FROM audit_events WHERE seq = 3`,
		}
		switch db.Dialect() {
		case models.Postgres:
			refused = append(refused, `TRUNCATE audit_batches`, `TRUNCATE audit_batches CASCADE`)
		case models.SQLite:
			// REPLACE deletes the old row without firing delete triggers.
			refused = append(refused, `INSERT OR REPLACE INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes,
				actions, actors, events)
			SELECT first_seq, last_seq, first_id, max_at, outcomes, actions, actors, '[]' FROM audit_batches`,
				`REPLACE INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events)
			SELECT first_seq, last_seq, 'forged-id', max_at, outcomes, actions, actors, '[]' FROM audit_batches`)
		}
		for _, q := range refused {
			if n, err := db.ExecForTest(ctx, q); err == nil {
				t.Errorf("%s: allowed (%d rows)", q, n)
			}
		}
		if got := listAll(t, l, models.AuditFilter{}); !slices.EqualFunc(got, stored, sameEvent) {
			t.Errorf("the trail changed:\n%+v", got)
		}
		if v := verifyIntact(t, l); v.Rows != 3 {
			t.Errorf("verify: %+v", v)
		}
	})
}

// TestAuditVerifyNamesTheFirstBrokenRow plays an attacker with the owner's
// rights (the triggers dropped) and shows that each kind of tampering is
// found, at the first event it breaks.
func TestAuditVerifyNamesTheFirstBrokenRow(t *testing.T) {
	type tamper func(t *testing.T, db *models.DB, rows []models.AuditEvent)
	tests := []struct {
		name   string
		tamper tamper
		seq    int64 // the row Verify must name; 0: the head
		index  int   // whose id it must name (index into rows), -1 for none
		reason string
	}{
		{
			name: "edited event (deny turned into allow)",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1].Events[0].Outcome = models.OutcomeAllow
					return b
				})
			},
			seq: 3, index: 2, reason: "content does not match its hash",
		},
		{
			name: "edited event with its own hash recomputed",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					e := &b[1].Events[0]
					e.Outcome = models.OutcomeAllow
					e.Hash = e.ChainHashForTest()
					return b
				})
			},
			seq: 4, index: 3, reason: "previous-hash does not match",
		},
		{
			name: "edited time",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[0].Events[1].At = rows[1].At.Add(-time.Hour)
					return b
				})
			},
			seq: 2, index: 1, reason: "content does not match its hash",
		},
		{
			name: "deleted middle event",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1] = batchOf(4, rows[3], rows[4])
					return b
				})
			},
			seq: 4, index: 3, reason: "previous-hash does not match",
		},
		{
			name: "deleted middle event, the ones after renumbered",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1] = batchOf(3, rows[3], rows[4])
					return b
				})
			},
			seq: 3, index: 3, reason: "previous-hash does not match",
		},
		{
			name: "deleted batch",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					return b[1:]
				})
			},
			seq: 3, index: 2, reason: "previous-hash does not match",
		},
		{
			name: "two events swapped",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					return []models.AuditBatchForTest{batchOf(1, rows[0], rows[2]), batchOf(3, rows[1], rows[3], rows[4])}
				})
			},
			seq: 2, index: 2, reason: "previous-hash does not match",
		},
		{
			name: "deleted last event",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1] = batchOf(3, rows[2], rows[3])
					return b
				})
			},
			seq: 0, index: -1, reason: "the head names row 5, the chain ends at row 4",
		},
		{
			name: "every event deleted",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func([]models.AuditBatchForTest) []models.AuditBatchForTest { return nil })
			},
			seq: 0, index: -1, reason: "the head names row 5, the chain ends at row 0",
		},
		{
			name: "forged event appended after the last",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					return append(b, batchOf(6, forged(t, rows[4].Hash)))
				})
			},
			seq: 0, index: -1, reason: "the head names row 5, the chain ends at row 6",
		},
		{
			name: "forged event inserted in the middle",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				// Rows 4 and 5 move up one place to make room.
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1] = batchOf(3, rows[2], forged(t, rows[2].Hash), rows[3], rows[4])
					return b
				})
			},
			seq: 5, index: 3, reason: "previous-hash does not match",
		},
		{
			name: "forged batch inserted before the first",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					return append([]models.AuditBatchForTest{batchOf(0, forged(t, ""))}, b...)
				})
			},
			seq: 1, index: 0, reason: "previous-hash does not match",
		},
		{
			name: "forged batch with a negative seq",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					return append([]models.AuditBatchForTest{batchOf(-7, forged(t, ""))}, b...)
				})
			},
			seq: 1, index: 0, reason: "previous-hash does not match",
		},
		{
			name: "batches overlapping",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1].FirstSeq, b[1].LastSeq = 2, 4
					return b
				})
			},
			seq: 2, index: 2, reason: "its batch starts at seq 2, the one before it ends at 2",
		},
		{
			// The filter columns are not hashed: an attacker who removes
			// an actor from them hides its events from ?actor= without
			// touching an event.
			name: "filter columns edited to hide an actor",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET actors = ',user-0,' WHERE first_seq = 3`)
			},
			seq: 3, index: 2, reason: "filter columns do not cover its events",
		},
		{
			name: "filter outcomes edited to hide denials",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET outcomes = 1 WHERE first_seq = 1`)
			},
			seq: 1, index: 0, reason: "filter columns do not cover its events",
		},
		{
			name: "filter time edited to hide a batch from since=",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET max_at = ? WHERE first_seq = 3`, rows[4].At.Add(-time.Hour))
			},
			seq: 3, index: 2, reason: "filter columns do not cover its events",
		},
		{
			name: "events that are not JSON",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET events = '[["v1"' WHERE first_seq = 3`)
			},
			seq: 3, index: 2, reason: "its batch was edited",
		},
		{
			name: "an event taken out of the JSON, seqs kept",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
					b[1].Events = b[1].Events[1:] // last_seq still 5
					return b
				})
			},
			seq: 3, index: 3, reason: "it holds 2 events for seqs 3 to 5",
		},
	}
	// The writer stores a batch in the short form of migration 0006 (each
	// repeated string once, in the batch's strings, and no prev_hash but
	// the batch's): an attacker can edit what it shares, or move events
	// that no longer carry their predecessor's hash.
	const moved = "the event was edited, or an event before it was deleted, inserted or moved"
	tests = append(tests, []struct {
		name   string
		tamper tamper
		seq    int64
		index  int
		reason string
	}{
		{
			name: "short form: a shared string edited (every denial of the batch turned into an allow)",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					strs[int(events[0][12].(float64))] = models.OutcomeAllow
					return events, strs
				})
			},
			seq: 3, index: 2, reason: moved,
		},
		{
			name: "short form: an event's index pointed at another string",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[1][3] = events[0][3] // the actor of the event before
					return events, strs
				})
			},
			seq: 4, index: 3, reason: moved,
		},
		{
			name: "short form: two events swapped",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[0], events[1] = events[1], events[0]
					return events, strs
				})
			},
			seq: 3, index: 3, reason: moved,
		},
		{
			name: "short form: an event deleted, the batch's last seq lowered",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					return append(events[:1], events[2]), strs
				})
				execAudit(t, db, `UPDATE audit_batches SET last_seq = 4 WHERE first_seq = 3`)
			},
			seq: 4, index: 4, reason: moved,
		},
		{
			name: "short form: the batch's prev_hash edited",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					*prev = rows[0].Hash
					return events, strs
				})
			},
			seq: 3, index: 2, reason: "previous-hash does not match",
		},
		{
			name: "short form: an index out of range",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[2][9] = float64(len(strs))
					return events, strs
				})
			},
			seq: 3, index: 2, reason: "its event 2 has a bad field 9",
		},
		{
			name: "short form: an index written as a string",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[0][2] = "0"
					return events, strs
				})
			},
			seq: 3, index: 2, reason: "its event 0 has a bad field 2",
		},
		{
			name: "short form: a text field written as a number or null",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[1][7], events[2][11] = float64(7), nil
					return events, strs
				})
			},
			seq: 3, index: 2, reason: "its event 1 has a bad field 7",
		},
		{
			name: "short form: an event with a field too few",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				editStored(t, db, 3, func(events [][]any, strs []string, prev *string) ([][]any, []string) {
					events[1] = events[1][:14]
					return events, strs
				})
			},
			seq: 3, index: 2, reason: "its event 1 has 14 fields, not 15",
		},
		{
			name: "short form: strings and prev_hash removed, to be read as the old form",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET strings = NULL, prev_hash = NULL WHERE first_seq = 3`)
			},
			seq: 3, index: 2, reason: "not a JSON array of arrays of strings",
		},
		{
			name: "short form: prev_hash removed only",
			tamper: func(t *testing.T, db *models.DB, rows []models.AuditEvent) {
				execAudit(t, db, `UPDATE audit_batches SET prev_hash = NULL WHERE first_seq = 3`)
			},
			seq: 3, index: 2, reason: "strings without a prev_hash",
		},
	}...)
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// Each case tampers with a trail of its own: rows 1-2
					// appended in one batch, rows 3-5 in another.
					db := dbtest.Open(t, d)
					l := models.NewAuditLog(db)
					rows := appendN(t, l, 2)
					rows = append(rows, appendN(t, l, 3)...)
					verifyIntact(t, l)
					dropAuditTriggers(t, db)
					tt.tamper(t, db, rows)
					_, err := l.Verify(context.Background())
					id := ""
					if tt.index >= 0 {
						id = rows[tt.index].ID
					}
					wantBreak(t, err, tt.seq, id, tt.reason)
					if b := (*models.AuditBreak)(nil); errors.As(err, &b) && !strings.Contains(b.Error(), tt.reason) {
						t.Errorf("message %q does not give the reason", b.Error())
					}
				})
			}
		})
	}
}

// TestAuditVerifyCannotSeeARewrittenChain documents the limit of a hash
// chain without a secret: an attacker who rewrites every row after an edit
// and the head gets a chain that verifies. Only a head recorded elsewhere
// beforehand shows the rewrite.
func TestAuditVerifyCannotSeeARewrittenChain(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		rows := appendN(t, l, 4)
		recorded := verifyIntact(t, l).Head

		dropAuditTriggers(t, db)
		prev := rows[0].Hash
		rewriteAudit(t, db, func(b []models.AuditBatchForTest) []models.AuditBatchForTest {
			for i := 1; i < len(b[0].Events); i++ {
				e := &b[0].Events[i]
				if i == 1 {
					e.Outcome = models.OutcomeAllow
				}
				e.PrevHash = prev
				e.Hash = e.ChainHashForTest()
				prev = e.Hash
			}
			return b
		})
		execAudit(t, db, `UPDATE audit_head SET hash = ? WHERE id = 1`, prev)

		v := verifyIntact(t, l)
		if v.Rows != 4 {
			t.Errorf("rows %d", v.Rows)
		}
		if v.Head == recorded {
			t.Fatal("the head did not change: a recorded head could not reveal the rewrite")
		}
	})
}

// sharedDatabase makes a fresh, migrated database of dialect d and returns
// a function that opens another handle on it each time it is called, as
// another instance or process of the server would. For PostgreSQL, params
// ("name=value") are added to the URL (run-time settings such as
// lock_timeout).
func sharedDatabase(tb testing.TB, d models.Dialect) (open func(params ...string) *models.DB) {
	tb.Helper()
	u := dbtest.URL(tb, d)
	raw := "sqlite:" + u.Path
	if d == models.Postgres {
		// dbtest hands out the parsed URL only; the schema it made is the
		// search_path of its printable form.
		printed, err := url.Parse(u.Redacted())
		if err != nil {
			tb.Fatal(err)
		}
		base, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
		if err != nil {
			tb.Fatal("TEST_DATABASE_URL is not a URL")
		}
		q := base.Query()
		q.Set("search_path", printed.Query().Get("search_path"))
		base.RawQuery = q.Encode()
		raw = base.String()
	}
	mg, err := models.NewMigrator(u, migrations.FS)
	if err != nil {
		tb.Fatal(err)
	}
	if err := mg.Up(); err != nil {
		tb.Fatal(err)
	}
	if err := mg.Close(); err != nil {
		tb.Fatal(err)
	}
	return func(params ...string) *models.DB {
		tb.Helper()
		s := raw
		if d == models.Postgres {
			for _, p := range params {
				s += "&" + p
			}
		}
		pu, err := models.ParseDatabaseURL(s)
		if err != nil {
			tb.Fatal(err)
		}
		db, err := models.OpenDB(context.Background(), pu)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = db.Close() })
		return db
	}
}

// TestAuditConcurrentAppendersKeepOneChain appends from two handles on the
// same database (two instances of the server, or two processes on one
// SQLite file), several goroutines each, and checks that the result is one
// unbroken chain with every batch in one piece.
func TestAuditConcurrentAppendersKeepOneChain(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			open := sharedDatabase(t, d)
			logs := []*models.AuditLog{models.NewAuditLog(open()), models.NewAuditLog(open())}
			const perWriter, batches = 3, 12
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				written [][]models.AuditEvent
			)
			for w := range len(logs) * perWriter {
				l := logs[w%len(logs)]
				wg.Go(func() {
					for b := range batches {
						batch := make([]models.AuditEvent, 1+(w+b)%4)
						for i := range batch {
							batch[i] = auditEvent(w*1000 + b*10 + i)
						}
						if err := l.Append(context.Background(), batch); err != nil {
							t.Errorf("writer %d batch %d: %v", w, b, err)
							return
						}
						mu.Lock()
						written = append(written, batch)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}

			var total int64
			for _, batch := range written {
				total += int64(len(batch))
				// A batch is appended under the lock: its rows are adjacent.
				for i := 1; i < len(batch); i++ {
					if batch[i].Seq != batch[i-1].Seq+1 || batch[i].PrevHash != batch[i-1].Hash {
						t.Errorf("batch interleaved: seq %d after %d", batch[i].Seq, batch[i-1].Seq)
					}
				}
			}
			for _, l := range logs {
				if v := verifyIntact(t, l); v.Rows != total {
					t.Errorf("verify: %d rows, want %d", v.Rows, total)
				}
			}
			all := listAll(t, logs[0], models.AuditFilter{})
			ids := map[string]bool{}
			for _, e := range all {
				ids[e.ID] = true
			}
			if int64(len(all)) != total || int64(len(ids)) != total {
				t.Errorf("%d rows, %d distinct ids, want %d", len(all), len(ids), total)
			}
		})
	}
}

// TestAuditVerifyWhileAppending runs Verify while another instance keeps
// appending: a live trail must never be reported broken.
func TestAuditVerifyWhileAppending(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			open := sharedDatabase(t, d)
			writer, verifier := models.NewAuditLog(open()), models.NewAuditLog(open())
			appendN(t, writer, 3)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := writer.Append(context.Background(), []models.AuditEvent{auditEvent(i), auditEvent(i + 1)}); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					// A batch a millisecond at most: each Verify reads the
					// whole trail, which must not outgrow the test.
					time.Sleep(time.Millisecond)
				}
			})
			var last int64
			for range 60 {
				v, err := verifier.Verify(context.Background())
				if err != nil {
					t.Errorf("verify while appending: %v", err)
					break
				}
				if v.Rows < last {
					t.Errorf("verify saw %d rows after %d", v.Rows, last)
				}
				last = v.Rows
			}
			close(stop)
			wg.Wait()
			verifyIntact(t, verifier)
		})
	}
}

// TestAuditCanonicalIsJSON holds the canonical form to what json.Marshal
// gives for the fields as a []string, which is how the hashes of events
// written before the faster encoder were computed: every field that needs
// escaping in JSON, or escaping for HTML, or is not ASCII.
func TestAuditCanonicalIsJSON(t *testing.T) {
	awkward := []string{"", "plain", `quote"d`, `back\slash`, "<script>&amp;</script>", "tab\there\nnew\rline",
		"\x00nul\x1fus\x7fdel", "é ü 日本 🙂", "\u2028\u2029", "bad\xffutf8", "\ufffd", "a'b", strings.Repeat("x", 600)}
	at := time.Date(2026, 11, 29, 14, 35, 43, 123456000, time.UTC)
	for i, v := range awkward {
		e := models.AuditEvent{ID: v, At: at, ActorType: v, ActorID: v, UserID: v, ClientIP: v, UserAgent: v,
			RequestID: v, Route: v, Action: v, ResourceType: v, ResourceID: v, Outcome: v, Reason: v, PrevHash: v}
		want, err := json.Marshal([]string{"v1", v, "2026-11-29T14:35:43.123456Z", v, v, v, v, v, v, v, v, v, v, v, v, v})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.CanonicalForTest(); !bytes.Equal(got, want) {
			t.Errorf("value %d %q:\n got %s\nwant %s", i, v, got, want)
		}
	}
}

// TestAuditShortFormRoundTrip stores awkward text in every field of the
// short form (migration 0006), the shared strings and the fields stored in
// each event alike, several events to a batch and one value in several
// fields, and reads every event back as it was written: through List,
// through the audit_events view, and through Verify.
func TestAuditShortFormRoundTrip(t *testing.T) {
	awkward := []string{"", "plain", `quote"d`, `back\slash`, "<script>&amp;</script>", "tab\there\nnew\rline",
		"\x01soh\x1fus\x7fdel", "é ü 日本 🙂", "\u2028\u2029", "bad\xffutf8", "\ufffd", "a'b", strings.Repeat("x", 600), "3", "[0]"}
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		var stored []models.AuditEvent
		for batch := range 2 {
			events := make([]models.AuditEvent, len(awkward))
			for i, v := range awkward {
				w := awkward[(i+batch+1)%len(awkward)] // a value seen in another field of another event
				events[i] = models.AuditEvent{ActorType: models.ActorService, ActorID: v, UserID: w, ClientIP: v,
					UserAgent: w, RequestID: v, Route: w, Action: v, ResourceType: w, ResourceID: v,
					Outcome: models.OutcomeError, Reason: w}
			}
			stored = append(stored, appendAudit(t, l, events...)...)
		}
		if got := listAll(t, l, models.AuditFilter{}); !slices.EqualFunc(got, stored, sameEvent) {
			t.Errorf("read back %d events, not as written:\n%+v", len(got), got)
		}
		checkView(t, db, db.Dialect(), stored)
		if v := verifyIntact(t, l); v.Rows != int64(len(stored)) {
			t.Errorf("verify: %+v", v)
		}
	})
}

// TestAuditCanonicalEveryByte puts each byte value at each position of a
// plain string: the encoder copies plain strings itself, and what it
// writes is still exactly what encoding/json writes.
func TestAuditCanonicalEveryByte(t *testing.T) {
	at := time.Date(2026, 11, 29, 14, 35, 43, 123456000, time.UTC)
	plain := []byte("abcdefghijklmnopq")
	for c := range 256 {
		for pos := range plain {
			v := []byte(string(plain))
			v[pos] = byte(c)
			e := models.AuditEvent{At: at, Reason: string(v)}
			want, err := json.Marshal([]string{"v1", "", "2026-11-29T14:35:43.123456Z", "", "", "", "", "", "", "", "", "", "", "", string(v), ""})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.CanonicalForTest(); !bytes.Equal(got, want) {
				t.Fatalf("byte %#x at %d:\n got %s\nwant %s", c, pos, got, want)
			}
		}
	}
}

// TestAuditCanonicalTime: the time is written as time.Format writes the
// canonical layout, for any instant, in any location.
func TestAuditCanonicalTime(t *testing.T) {
	east := time.FixedZone("east", 5*3600+1800)
	for _, at := range []time.Time{
		time.Date(2026, 11, 29, 14, 35, 43, 123456000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2027, 1, 1, 0, 0, 0, 1000, east), // another day in UTC
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // more digits
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),    // a sign
		time.Unix(1<<40, 0),
	} {
		e := models.AuditEvent{At: at}
		want, err := json.Marshal([]string{"v1", "", at.UTC().Format("2006-01-02T15:04:05.000000Z"), "", "", "", "", "", "", "", "", "", "", "", "", ""})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.CanonicalForTest(); !bytes.Equal(got, want) {
			t.Errorf("%v:\n got %s\nwant %s", at, got, want)
		}
	}
}

// TestAuditListBoundsEventsRead: with full batches, one page decodes about
// AuditListEvents events, not AuditListBatches batches of them.
func TestAuditListBoundsEventsRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		l := models.NewAuditLog(db)
		// Each batch holds user-0 and authz_allow, never together, so
		// its columns may match the filter and it is read.
		const size = models.AuditListEvents / 4
		events := make([]models.AuditEvent, size)
		for i := range events {
			events[i] = auditEvent(i)
			if i%3 == 1 {
				events[i].Action, events[i].Outcome = models.ActionAuthzAllow, models.OutcomeAllow
			}
		}
		for range 5 {
			appendAudit(t, l, events...)
		}
		last := auditEvent(0)
		last.Action, last.Outcome = models.ActionAuthzAllow, models.OutcomeAllow
		want := appendAudit(t, l, last)[0]
		filter := models.AuditFilter{Actor: "user-0", Action: models.ActionAuthzAllow}
		page, err := l.List(ctx, filter, models.PageRequest{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 0 || page.Next != 4*size {
			t.Fatalf("first page: %d events, next %d; want none, next %d (four batches read)", len(page.Items), page.Next, 4*size)
		}
		page, err = l.List(ctx, filter, models.PageRequest{Limit: 5, After: page.Next})
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != want.ID || page.Next != 0 {
			t.Fatalf("second page: %d events, next %d, %v; want the match and the end", len(page.Items), page.Next, err)
		}
	})
}

// TestAuditListBoundsItsWork shows that one page reads at most
// AuditListBatches batches: a filter that each batch's columns may match,
// but only the newest event does, gets an empty page with a cursor and
// then the match, instead of one request reading the whole trail (API4).
func TestAuditListBoundsItsWork(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		l := models.NewAuditLog(db)
		n := models.AuditListBatches + 10
		// Every batch holds user-0 and authz_allow, never together.
		denied, allowed := auditEvent(0), auditEvent(1)
		allowed.Action, allowed.Outcome = models.ActionAuthzAllow, models.OutcomeAllow
		for range n {
			appendAudit(t, l, denied, allowed)
		}
		last := auditEvent(0)
		last.Action, last.Outcome = models.ActionAuthzAllow, models.OutcomeAllow
		want := appendAudit(t, l, last)[0]
		filter := models.AuditFilter{Actor: "user-0", Action: models.ActionAuthzAllow}

		var pages, empty int
		var got []models.AuditEvent
		p := models.PageRequest{Limit: 5}
		for {
			page, err := l.List(ctx, filter, p)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page.Items) == 0 {
				empty++
			}
			got = append(got, page.Items...)
			if page.Next == 0 {
				break
			}
			if page.Next <= p.After {
				t.Fatalf("cursor went from %d to %d", p.After, page.Next)
			}
			p.After = page.Next
		}
		if len(got) != 1 || got[0].ID != want.ID {
			t.Fatalf("found %d events, want the last one", len(got))
		}
		if pages != 2 || empty != 1 {
			t.Errorf("%d pages (%d empty), want 2: one of %d batches read without a match, then the match",
				pages, empty, models.AuditListBatches)
		}
		// Without a filter a page fills up as usual.
		page, err := l.List(ctx, models.AuditFilter{}, models.PageRequest{Limit: 100})
		if err != nil || len(page.Items) != 100 || page.Next != 100 {
			t.Errorf("unfiltered page: %d events, next %d, %v; want 100", len(page.Items), page.Next, err)
		}
	})
}

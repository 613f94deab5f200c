package models

import (
	"context"
	"database/sql"
	"testing"
)

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

// QueryBytesForTest runs a constant query returning one byte string.
func (db *DB) QueryBytesForTest(ctx context.Context, query string, args ...any) ([]byte, error) {
	var b []byte
	err := db.q().get(ctx, &b, query, args...)
	return b, err
}

// QueryRowsForTest runs a constant query and returns every column of every
// row as the driver delivered it.
func (db *DB) QueryRowsForTest(ctx context.Context, query string, args ...any) ([][]any, error) {
	rows, err := db.x.QueryxContext(ctx, db.rebind(query), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.SliceScan()
		if err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// ConnsForTest takes n connections from the pool at once, so that each is a
// separate connection; they go back to the pool when the test ends.
func (db *DB) ConnsForTest(tb testing.TB, n int) []*sql.Conn {
	tb.Helper()
	conns := make([]*sql.Conn, 0, n)
	for range n {
		c, err := db.x.DB.Conn(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}
	return conns
}

// MaxOpenConnsForTest reports the pool's connection limit.
func (db *DB) MaxOpenConnsForTest() int { return db.x.Stats().MaxOpenConnections }

// HoldSlotsForTest takes every hashing slot of h, so that the next Hash or
// Verify has to wait; the returned function gives them back.
func (h *PasswordHasher) HoldSlotsForTest() (release func()) {
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	return func() {
		for range cap(h.slots) {
			<-h.slots
		}
	}
}

// ChainHashForTest returns the hash e would carry chained to e.PrevHash:
// what an attacker who knows the (public) algorithm can compute.
func (e *AuditEvent) ChainHashForTest() string { return e.chainHash() }

// CanonicalForTest returns the bytes e's hash covers.
func (e *AuditEvent) CanonicalForTest() []byte { return e.canonical() }

// AuditListBatches is how many batches one List call reads at most.
const AuditListBatches = auditListBatches

// AuditListEvents is how many events one List call decodes at most (give
// or take its last batch).
const AuditListEvents = auditListEvents

// CheckRefForTest runs checkRef against projects, in a transaction.
func (db *DB) CheckRefForTest(ctx context.Context, id, owner string) error {
	return db.tx(ctx, func(q q) error {
		return checkRef(ctx, q, `SELECT COUNT(*) FROM projects WHERE id = ? AND owner_id = ?`, id, owner, "project_id", "projects")
	})
}

// AuditBatchForTest is one row of audit_batches with its events decoded.
type AuditBatchForTest struct {
	FirstSeq, LastSeq int64
	Events            []AuditEvent
}

// AuditBatchesForTest reads every row of audit_batches in order.
func (db *DB) AuditBatchesForTest(ctx context.Context) ([]AuditBatchForTest, error) {
	var rows []auditBatch
	if err := db.q().sel(ctx, &rows, `
		SELECT first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events, strings, prev_hash
		FROM audit_batches ORDER BY first_seq`); err != nil {
		return nil, err
	}
	out := make([]AuditBatchForTest, len(rows))
	for i, b := range rows {
		events, err := decodeAuditBatch(b)
		if err != nil {
			return nil, err
		}
		out[i] = AuditBatchForTest{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq, Events: events}
	}
	return out, nil
}

// WriteAuditBatchesForTest replaces every row of audit_batches, as an
// attacker with the owner's rights (the triggers dropped) would: each
// event is stored exactly as given (PrevHash and Hash are not
// recomputed), the filter columns are computed from the events, and
// FirstSeq and LastSeq are taken as given. The batches are written in
// migration 0005's form, which stores every event's PrevHash.
func (db *DB) WriteAuditBatchesForTest(ctx context.Context, batches []AuditBatchForTest) error {
	if _, err := db.q().exec(ctx, `DELETE FROM audit_batches`); err != nil {
		return err
	}
	for _, b := range batches {
		buf := []byte{'['}
		var s auditSummary
		for i := range b.Events {
			e := b.Events[i]
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = e.appendCanonical(buf)
			buf = append(append(append(buf[:len(buf)-1], `,"`...), e.Hash...), `"]`...)
			s.add(&e)
		}
		buf = append(buf, ']')
		first := AuditEvent{Seq: b.FirstSeq}
		if len(b.Events) > 0 {
			first.ID = b.Events[0].ID
		}
		row := s.batch(first, b.LastSeq, string(buf))
		if _, err := db.q().exec(ctx, `
			INSERT INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			row.FirstSeq, row.LastSeq, row.FirstID, row.MaxAt, row.Outcomes, row.Actions, row.Actors, row.Events); err != nil {
			return err
		}
	}
	return nil
}

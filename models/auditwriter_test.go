package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// closeWriter closes w, failing the test if it cannot flush in time.
func closeWriter(tb testing.TB, w *models.AuditWriter) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		tb.Fatalf("close: %v", err)
	}
}

// holdAuditLock takes the audit writers' lock from another connection, as
// another instance, a backup or a long migration would: on SQLite the
// database's write lock, on PostgreSQL the audit_head row lock. release
// gives it back; the test's end does too.
func holdAuditLock(tb testing.TB, db *models.DB) (release func()) {
	tb.Helper()
	ctx := context.Background()
	conn := db.ConnsForTest(tb, 1)[0]
	tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE on SQLite (see SQLiteDSN)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET locked_at = locked_at WHERE id = 1`); err != nil {
		_ = tx.Rollback()
		tb.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback() }) }
	tb.Cleanup(release)
	return release
}

// recordedIDs lists the stored events' request ids, which the tests make
// unique per recorded event.
func recordedIDs(tb testing.TB, l *models.AuditLog) map[string]int {
	tb.Helper()
	seen := map[string]int{}
	for _, e := range listAll(tb, l, models.AuditFilter{}) {
		seen[e.RequestID]++
	}
	return seen
}

// TestAuditWriterLosesNothing records from many goroutines at once through
// a tiny queue, so that Record has to wait for room (backpressure), and
// checks after Close that every event is stored exactly once, in one
// unbroken chain.
func TestAuditWriterLosesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		const n = 150
		l := models.NewAuditLog(db)
		var observed sync.Map
		w := models.NewAuditWriter(l, models.AuditWriterConfig{
			QueueSize: 4, BatchSize: 3, FlushEvery: time.Millisecond,
			Observe: func(e models.AuditEvent) { observed.Store(e.RequestID, e.ID) },
		})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if err := w.Record(auditEvent(i)); err != nil {
					t.Errorf("record %d: %v", i, err)
				}
				if d := w.QueueDepth(); d > 4 {
					t.Errorf("queue depth %d beyond its size 4", d)
				}
			})
		}
		wg.Wait()
		closeWriter(t, w)

		if got := w.Written(); got != n {
			t.Errorf("written %d, want %d", got, n)
		}
		stored := listAll(t, l, models.AuditFilter{})
		ids := map[string]bool{}
		for _, e := range stored {
			ids[e.ID] = true
			// The id an event got when it was recorded is the one stored.
			if id, ok := observed.Load(e.RequestID); !ok || id != e.ID {
				t.Errorf("%s stored with id %s, recorded with %v", e.RequestID, e.ID, id)
			}
		}
		if len(stored) != n || len(ids) != n {
			t.Errorf("%d rows, %d distinct ids, want %d", len(stored), len(ids), n)
		}
		seen := recordedIDs(t, l)
		for i := range n {
			if c := seen[auditEvent(i).RequestID]; c != 1 {
				t.Errorf("event %d stored %d times", i, c)
			}
		}
		if v := verifyIntact(t, l); v.Rows != n {
			t.Errorf("verify: %d rows, want %d", v.Rows, n)
		}
	})
}

// TestAuditWriterBackpressure stalls the database and shows that Record
// then waits rather than queueing without bound or dropping: at most a
// batch in flight and a full queue are taken, and the rest is written once
// the database moves again.
func TestAuditWriterBackpressure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		const n, queue, batch = 20, 4, 3
		l := models.NewAuditLog(db)
		w := models.NewAuditWriter(l, models.AuditWriterConfig{QueueSize: queue, BatchSize: batch, FlushEvery: time.Millisecond})
		release := holdAuditLock(t, db)

		returned := make(chan int, n)
		go func() {
			defer close(returned)
			for i := range n {
				if err := w.Record(auditEvent(i)); err != nil {
					t.Errorf("record %d: %v", i, err)
				}
				returned <- i
			}
		}()
		// Count the Record calls that return until they stop returning.
		taken := 0
	stalled:
		for {
			select {
			case _, ok := <-returned:
				if !ok {
					break stalled
				}
				taken++
			case <-time.After(300 * time.Millisecond):
				break stalled
			}
		}
		if taken > queue+batch {
			t.Errorf("%d events taken while the database was stuck; at most %d (a batch and a full queue)", taken, queue+batch)
		}
		if taken == n {
			t.Fatal("Record never waited")
		}
		if c := countAudit(t, db); c != 0 {
			t.Errorf("%d events stored while the lock was held", c)
		}

		release()
		for range returned {
			taken++
		}
		if taken != n {
			t.Errorf("%d Record calls returned, want %d", taken, n)
		}
		closeWriter(t, w)
		if c := countAudit(t, db); c != n {
			t.Errorf("%d events stored, want %d", c, n)
		}
		verifyIntact(t, l)
	})
}

func TestAuditWriterFlushAndClose(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		l := models.NewAuditLog(db)
		// Batches this large and this slow are never written by themselves
		// during the test: only Flush and Close write them.
		w := models.NewAuditWriter(l, models.AuditWriterConfig{BatchSize: 1000, FlushEvery: time.Hour})
		for i := range 5 {
			if err := w.Record(auditEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		if c := countAudit(t, db); c != 0 {
			t.Fatalf("%d events written before Flush", c)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if c := countAudit(t, db); c != 5 {
			t.Errorf("after Flush: %d events, want 5", c)
		}
		// Flush with nothing queued returns too.
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}

		// Close writes what is still queued.
		for i := 5; i < 8; i++ {
			if err := w.Record(auditEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		closeWriter(t, w)
		if c := countAudit(t, db); c != 8 {
			t.Errorf("after Close: %d events, want 8", c)
		}
		if v := verifyIntact(t, l); v.Rows != 8 {
			t.Errorf("verify: %+v", v)
		}

		// After Close: Record refuses, Flush and Close have nothing to do.
		if err := w.Record(auditEvent(9)); !errors.Is(err, models.ErrAuditClosed) {
			t.Errorf("record after close: %v, want ErrAuditClosed", err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Errorf("flush after close: %v", err)
		}
		closeWriter(t, w)
		if c := countAudit(t, db); c != 8 {
			t.Errorf("after a second Close: %d events", c)
		}
	})
}

func TestAuditWriterRefusesAnEventTheDatabaseWouldRefuse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		w := models.NewAuditWriter(l, models.AuditWriterConfig{})
		// Retried forever, such an event would stop the writer and, once
		// the queue is full, every request. Record says so at once instead.
		for _, bad := range []models.AuditEvent{{Outcome: "denied"}, {ActorType: "robot"}} {
			if err := w.Record(bad); err == nil {
				t.Errorf("record %+v: accepted", bad)
			}
		}
		// A NUL byte is stored (as U+FFFD), not retried forever.
		e := auditEvent(1)
		e.ResourceID = "\x00"
		if err := w.Record(e); err != nil {
			t.Fatal(err)
		}
		if err := w.Record(auditEvent(2)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("flush: %v (the writer is stuck)", err)
		}
		if c := countAudit(t, db); c != 2 {
			t.Errorf("%d events stored, want 2", c)
		}
		if f := w.WriteFailures(); f != 0 {
			t.Errorf("%d failed writes", f)
		}
		closeWriter(t, w)
	})
}

// TestAuditWriterRetriesUntilTheDatabaseWorks makes writes really fail —
// another connection holds the lock longer than the writer may wait: on
// SQLite beyond the busy timeout, on PostgreSQL beyond a lock_timeout set
// for the writer's connections — and shows that the writer retries, that
// nothing is lost, and that the chain is intact once the database works.
func TestAuditWriterRetriesUntilTheDatabaseWorks(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel() // the SQLite half waits out the 5 s busy timeout
			const n = 10
			open := sharedDatabase(t, d)
			locker := open()
			wdb := open("lock_timeout=100") // PostgreSQL only; SQLite has its busy timeout
			l := models.NewAuditLog(wdb)
			w := models.NewAuditWriter(l, models.AuditWriterConfig{
				QueueSize: 4, BatchSize: 3, FlushEvery: time.Millisecond, RetryEvery: 20 * time.Millisecond,
			})
			release := holdAuditLock(t, locker)

			recorded := make(chan error, 1)
			go func() {
				for i := range n {
					if err := w.Record(auditEvent(i)); err != nil {
						recorded <- fmt.Errorf("record %d: %w", i, err)
						return
					}
				}
				recorded <- nil
			}()
			deadline := time.Now().Add(30 * time.Second)
			for w.WriteFailures() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("no write failed while the lock was held")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if c := countAudit(t, locker); c != 0 {
				t.Errorf("%d events stored while writes fail", c)
			}

			release()
			if err := <-recorded; err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.Flush(ctx); err != nil {
				t.Fatalf("flush after the database recovered: %v", err)
			}
			if got := recordedIDs(t, l); len(got) != n {
				t.Errorf("%d distinct events stored, want %d", len(got), n)
			} else {
				for id, c := range got {
					if c != 1 {
						t.Errorf("%s stored %d times", id, c)
					}
				}
			}
			if v := verifyIntact(t, l); v.Rows != n {
				t.Errorf("verify: %d rows, want %d", v.Rows, n)
			}
			if w.Written() != n {
				t.Errorf("written %d, want %d", w.Written(), n)
			}
			closeWriter(t, w)
		})
	}
}

// TestAuditWriterWaitsToFillABatch shows that events arriving while a
// batch is being written are not written at once as a small batch of
// their own: they wait for FlushEvery, a full batch or a flush. (Under
// steady load, writing them at once made every batch a handful of events,
// each paying a transaction and a commit.)
func TestAuditWriterWaitsToFillABatch(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		l := models.NewAuditLog(db)
		w := models.NewAuditWriter(l, models.AuditWriterConfig{BatchSize: 4, FlushEvery: time.Hour})
		release := holdAuditLock(t, db)
		for i := range 4 { // a full batch: written at once, and stalls on the lock
			if err := w.Record(auditEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 4; i < 6; i++ { // arrive during that write
			if err := w.Record(auditEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		release()
		for w.Written() < 4 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // time to write the two, if it did
		if got := w.Written(); got != 4 {
			t.Errorf("written %d, want 4: the two that came during the first write were written at once", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		batches, err := db.AuditBatchesForTest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(batches) != 2 || len(batches[0].Events) != 4 || len(batches[1].Events) != 2 {
			t.Errorf("%d batches, want one of 4 and one of 2", len(batches))
		}
		closeWriter(t, w)
	})
}

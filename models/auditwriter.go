package models

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// AuditWriterConfig tunes an AuditWriter; zero fields take the defaults.
type AuditWriterConfig struct {
	QueueSize  int           // events waiting at most (default 4096); Record blocks beyond
	BatchSize  int           // events per transaction at most (default 1024)
	FlushEvery time.Duration // longest an event waits for its batch (default 50 ms)
	RetryEvery time.Duration // wait between attempts when the database fails (default 1 s)
	Logger     *slog.Logger
	// Observe, if set, sees every event as it is recorded, in the caller's
	// goroutine (the anomaly detector). It must not block for long.
	Observe func(AuditEvent)
}

// AuditWriter records audit events asynchronously, in batches, without
// ever dropping one: the queue is bounded, and when it is full Record
// waits (backpressure slows the requests down rather than losing their
// trail). A batch the database refuses is retried until it is written or
// the writer is closed with a deadline that passes; Close flushes
// everything recorded before it.
//
// Record only appends under a mutex: the writer goroutine is woken when a
// queue becomes non-empty or a batch fills, not for every event, so a busy
// server pays no goroutine wake-up per request.
type AuditWriter struct {
	log    *AuditLog
	cfg    AuditWriterConfig
	logger *slog.Logger

	mu       sync.Mutex
	queue    []AuditEvent
	notFull  *sync.Cond // signalled when the writer takes events out
	closed   bool
	flushing int           // Flush calls waiting: write partial batches at once
	recorded uint64        // events accepted so far
	done     uint64        // events written (or given up at exit) so far
	progress chan struct{} // closed and replaced whenever done grows

	wake    chan struct{} // the queue became non-empty
	full    chan struct{} // a batch is ready, or a flush or close wants it now
	stopped chan struct{} // closed when the writer goroutine ends

	written atomic.Uint64
	failed  atomic.Uint64
}

// ErrAuditClosed is returned by Record after Close.
var ErrAuditClosed = errors.New("audit writer is closed")

// NewAuditWriter starts a writer appending to l.
func NewAuditWriter(l *AuditLog, cfg AuditWriterConfig) *AuditWriter {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.BatchSize <= 0 {
		// A batch has a fixed cost (a transaction, the head row, a
		// commit); 1,024 events a batch rather than 256 took about 1 µs
		// of CPU off each event on SQLite and 2 µs on PostgreSQL
		// (BenchmarkAuditAppend), with no longer a wait: under load a
		// batch fills within FlushEvery either way.
		cfg.BatchSize = 1024
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 50 * time.Millisecond
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &AuditWriter{log: l, cfg: cfg, logger: logger, progress: make(chan struct{}),
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1), stopped: make(chan struct{})}
	w.notFull = sync.NewCond(&w.mu)
	// Unprepared statements still work: a failure here only costs speed.
	if err := l.Prepare(context.Background()); err != nil {
		logger.Warn("audit trail: statements not prepared", "error", err.Error())
	}
	go w.run()
	return w
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Record queues e. It blocks while the queue is full, and fails only after
// Close.
func (w *AuditWriter) Record(e AuditEvent) error {
	// Its ID and time are fixed now, not when its batch is written.
	if err := e.normalize(time.Now()); err != nil {
		return err
	}
	w.mu.Lock()
	for !w.closed && len(w.queue) >= w.cfg.QueueSize {
		w.notFull.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return ErrAuditClosed
	}
	w.queue = append(w.queue, e)
	w.recorded++
	n := len(w.queue)
	w.mu.Unlock()
	// Outside the lock: an observer may block (the anomaly detector's own
	// queue) and may record events itself.
	if w.cfg.Observe != nil {
		w.cfg.Observe(e)
	}
	if n == 1 {
		signal(w.wake)
	}
	if n >= w.cfg.BatchSize {
		signal(w.full)
	}
	return nil
}

// Flush waits until every event recorded before it is in the database, or
// ctx ends.
func (w *AuditWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.recorded
	w.flushing++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.flushing--
		w.mu.Unlock()
	}()
	signal(w.full)
	for {
		w.mu.Lock()
		if w.done >= target {
			w.mu.Unlock()
			return nil
		}
		progress := w.progress
		w.mu.Unlock()
		select {
		case <-progress:
		case <-w.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops taking events and writes everything queued. If ctx ends
// first, it returns ctx's error and the writer keeps trying in the
// background until the process exits.
func (w *AuditWriter) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.notFull.Broadcast()
	w.mu.Unlock()
	signal(w.wake)
	signal(w.full)
	select {
	case <-w.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// QueueDepth is how many events wait to be written (a metric).
func (w *AuditWriter) QueueDepth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// Written counts the events written so far.
func (w *AuditWriter) Written() uint64 { return w.written.Load() }

// WriteFailures counts failed attempts to write a batch.
func (w *AuditWriter) WriteFailures() uint64 { return w.failed.Load() }

// run waits for a first event, gives the batch FlushEvery to fill (or
// less, if it fills or a flush wants it), then writes it and any full
// batches behind it; a partial batch left over waits again. After Close
// it writes what is left and ends.
func (w *AuditWriter) run() {
	defer close(w.stopped)
	timer := time.NewTimer(w.cfg.FlushEvery)
	timer.Stop()
	// The batch taken from the queue. When the whole queue is taken, the
	// two arrays swap places instead of the events being copied.
	batch := make([]AuditEvent, 0, w.cfg.BatchSize)
	for {
		<-w.wake
		w.mu.Lock()
		closed := w.closed
		w.mu.Unlock()
		if !closed {
			timer.Reset(w.cfg.FlushEvery)
		wait:
			for {
				select {
				case <-timer.C:
					break wait
				case <-w.full:
					// A signal left from while the last batch was being
					// written may be stale: only a full batch, a flush or
					// Close cuts FlushEvery short.
					if w.ready() {
						timer.Stop()
						break wait
					}
				}
			}
		}
		wrote := false
		for {
			w.mu.Lock()
			n := min(len(w.queue), w.cfg.BatchSize)
			if n == 0 {
				closed := w.closed
				w.mu.Unlock()
				if closed {
					return
				}
				break
			}
			// What arrived while a batch was written waits for its own
			// FlushEvery (or to fill a batch), unless the writer is
			// closing. Writing it at once would, under steady load, make
			// every batch a handful of events, and each batch has a fixed
			// cost (a transaction, the head row, a commit).
			if wrote && !w.readyLocked() {
				w.mu.Unlock()
				signal(w.wake)
				break
			}
			// The whole queue is taken by swapping arrays with the spare
			// batch (an event is a few hundred bytes of pointers: copying
			// them twice more was a measurable share of the cost). Part
			// of it is copied out and the rest moved to the front, so the
			// queue's array is reused rather than reallocated as it is
			// consumed from the front.
			if n == len(w.queue) {
				batch, w.queue = w.queue, batch[:0]
			} else {
				batch = append(batch[:0], w.queue[:n]...)
				rest := copy(w.queue, w.queue[n:])
				clear(w.queue[rest:])
				w.queue = w.queue[:rest]
			}
			w.notFull.Broadcast()
			w.mu.Unlock()

			w.write(batch)
			wrote = true
			// The written events' strings are garbage now: the spare
			// array must not keep them alive (or give the collector
			// their pointers to follow).
			clear(batch)
			if cap(batch) > 4*w.cfg.BatchSize {
				batch = make([]AuditEvent, 0, w.cfg.BatchSize) // a burst's memory back
			}

			w.mu.Lock()
			w.done += uint64(n) // #nosec G115 -- n is a batch length: never negative
			close(w.progress)
			w.progress = make(chan struct{})
			if len(w.queue) == 0 && cap(w.queue) > 4*w.cfg.BatchSize {
				w.queue = nil // give a burst's memory back
			}
			w.mu.Unlock()
		}
	}
}

// ready reports whether the writer should write without waiting longer:
// a full batch is queued, or a flush or Close wants what is there.
func (w *AuditWriter) ready() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readyLocked()
}

// readyLocked is ready with w.mu held.
func (w *AuditWriter) readyLocked() bool {
	return len(w.queue) >= w.cfg.BatchSize || w.closed || w.flushing > 0
}

// write appends batch, retrying until the database takes it: an audit
// event is never given up. Each attempt fills in the chain fields (Seq,
// PrevHash, Hash) afresh from the head it reads, so a failed attempt
// leaves nothing behind in batch that the next one would reuse.
func (w *AuditWriter) write(batch []AuditEvent) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.log.Append(ctx, batch)
		cancel()
		if err == nil {
			w.written.Add(uint64(len(batch)))
			if attempt > 0 {
				w.logger.Info("audit trail written again after database errors", "events", len(batch), "attempts", attempt+1)
			}
			return
		}
		// A commit whose acknowledgement was lost (the connection broke
		// after COMMIT) would make every retry a duplicate: a batch is
		// one transaction, so if its first event is stored, all are.
		if KindOf(err) == KindConflict || KindOf(err) == KindUnavailable || KindOf(err) == KindInternal {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			stored, serr := w.log.hasBatch(ctx, batch[0].ID)
			cancel()
			if serr == nil && stored {
				w.written.Add(uint64(len(batch)))
				return
			}
		}
		w.failed.Add(1)
		if attempt == 0 {
			w.logger.Error("audit trail: writing a batch failed; retrying until it succeeds", "events", len(batch), "error", err.Error())
		}
		time.Sleep(w.cfg.RetryEvery)
	}
}

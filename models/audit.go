package models

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Actor types of audit events.
const (
	ActorAnonymous = "anonymous"
	ActorUser      = "user"
	ActorAPIKey    = "apikey"
	ActorService   = "service"
	ActorSystem    = "system"
)

// Outcomes of audit events.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
	OutcomeError = "error"
)

// Audit actions. The names follow the OWASP Logging Vocabulary where one
// fits; the others keep its shape (area_event).
//
// #nosec G101 -- action names such as authn_token_invalid, not credentials
const (
	ActionLoginSuccess      = "authn_login_success"
	ActionLoginFail         = "authn_login_fail"
	ActionLoginFailMax      = "authn_login_fail_max" // refused: too many failures for the account
	ActionLoginLock         = "authn_login_lock"     // an admin locked the account
	ActionLoginUnlock       = "authn_login_unlock"   // an admin unlocked the account
	ActionTokenInvalid      = "authn_token_invalid"  // a bad, expired or revoked credential
	ActionTokenRevoked      = "authn_token_revoked"  // logout
	ActionPasswordChange    = "authn_password_change"
	ActionPasswordChangeBad = "authn_password_change_fail"
	ActionAuthzAllow        = "authz_allow" // a route's policy allowed the caller
	ActionAuthzFail         = "authz_fail"  // a policy or an object's owner refused the caller
	ActionAuthzAdmin        = "authz_admin" // an admin function was used
	ActionUserCreated       = "user_created"
	ActionAPIKeyCreated     = "apikey_created"
	ActionAPIKeyRevoked     = "apikey_revoked"
	ActionRateLimited       = "excess_rate_limit_exceeded"
	ActionQuotaExceeded     = "excess_quota_exceeded"
	ActionAnomaly           = "anomaly_detected" // Reason names the rule
	ActionInputInvalid      = "input_validation_fail"
	ActionSysStartup        = "sys_startup"
	ActionSysShutdown       = "sys_shutdown"
	ActionSecretRotated     = "sys_secret_rotated" // Reason names the secret, never its value
)

// Field caps: a logged value never grows an event beyond a few KiB.
const (
	auditUserAgentMax = 256
	auditFieldMax     = 512
)

// AuditEvent is one row of the audit trail. Hash covers every other field
// except Seq, and PrevHash, the Hash of the row before; the first row's
// PrevHash is "". Events are never changed or deleted.
type AuditEvent struct {
	Seq          int64     `db:"seq"`
	ID           string    `db:"id"`
	At           time.Time `db:"at"`
	ActorType    string    `db:"actor_type"`
	ActorID      string    `db:"actor_id"` // user, API key or service ID; "" for anonymous
	UserID       string    `db:"user_id"`  // the acting user (sessions and API keys), or the user a login was for
	ClientIP     string    `db:"client_ip"`
	UserAgent    string    `db:"user_agent"`
	RequestID    string    `db:"request_id"`
	Route        string    `db:"route"` // method and route template, e.g. "GET /v1/projects/:id"
	Action       string    `db:"action"`
	ResourceType string    `db:"resource_type"`
	ResourceID   string    `db:"resource_id"`
	Outcome      string    `db:"outcome"`
	Reason       string    `db:"reason"`
	PrevHash     string    `db:"prev_hash"`
	Hash         string    `db:"hash"`
}

// normalize fills ID and At, stores At in UTC at microsecond precision (what
// both databases keep, so the hash can be recomputed from a read row), caps
// every free-text field, and defaults the actor type and outcome. An actor
// type or outcome the table does not allow is an error here, at once: the
// database would refuse the event on every retry, and the writer would
// never get past it.
func (e *AuditEvent) normalize(now time.Time) error {
	if e.ID == "" {
		id, err := NewID()
		if err != nil {
			return err
		}
		e.ID = id
	}
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	if e.ActorType == "" {
		e.ActorType = ActorAnonymous
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeAllow
	}
	switch e.ActorType {
	case ActorAnonymous, ActorUser, ActorAPIKey, ActorService, ActorSystem:
	default:
		return fmt.Errorf("audit event: unknown actor type %q", capText(e.ActorType, 32))
	}
	switch e.Outcome {
	case OutcomeAllow, OutcomeDeny, OutcomeError:
	default:
		return fmt.Errorf("audit event: unknown outcome %q", capText(e.Outcome, 32))
	}
	// What a client chooses (its user agent, a request id it sent, an id
	// in a path) can hold a credential by mistake or on purpose: it is
	// redacted like a log line before it is stored and hashed.
	for _, f := range []*string{&e.UserAgent, &e.RequestID, &e.ResourceID, &e.Reason} {
		*f = RedactCredentials(*f)
	}
	e.UserAgent = capText(e.UserAgent, auditUserAgentMax)
	for _, f := range []*string{&e.ActorID, &e.UserID, &e.ClientIP, &e.RequestID, &e.Route,
		&e.Action, &e.ResourceType, &e.ResourceID, &e.Reason} {
		*f = capText(*f, auditFieldMax)
	}
	return nil
}

// capText returns s as valid UTF-8 of at most max runes. Control characters
// are kept (the JSON encodings of logs and API answers escape them), except
// NUL, which PostgreSQL cannot store in text: it becomes U+FFFD like
// invalid UTF-8, on both dialects, before the hash is computed. (A NUL
// reaches us easily, e.g. from a decoded path "/v1/projects/%00".)
func capText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}

// canonical is the exact byte string a row's hash covers: a JSON array of
// the fields in a fixed order, with the time in RFC 3339 at microseconds.
func (e *AuditEvent) canonical() []byte {
	b, _ := json.Marshal([]string{
		"v1", e.ID, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID, e.Route,
		e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash,
	})
	return b
}

// chainHash returns the hash of e chained to e.PrevHash.
func (e *AuditEvent) chainHash() string {
	sum := sha256.Sum256(e.canonical())
	return hex.EncodeToString(sum[:])
}

// AuditLog is the audit trail in the database: append (in batches, chained),
// list with filters, and verify the chain.
type AuditLog struct {
	db  *DB
	now func() time.Time
}

// NewAuditLog returns the audit trail of db.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db, now: time.Now} }

// Append writes events in order, in one transaction, each chained to the
// one before. The head row is locked first, so writers on other instances
// (or processes) append one batch after another and never fork the chain.
// On success the events carry their Seq, PrevHash and Hash.
func (l *AuditLog) Append(ctx context.Context, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	now := l.now()
	for i := range events {
		if err := events[i].normalize(now); err != nil {
			return Internal(err)
		}
	}
	return l.db.tx(ctx, func(q q) error {
		// The UPDATE takes the write lock on SQLite and the row lock on
		// PostgreSQL, and reads the head under it.
		var prev string
		if err := q.get(ctx, &prev, `UPDATE audit_head SET locked_at = ? WHERE id = 1 RETURNING hash`, now.UTC()); err != nil {
			return err
		}
		for i := range events {
			e := &events[i]
			e.PrevHash = prev
			e.Hash = e.chainHash()
			prev = e.Hash
		}
		return insertAuditBatch(ctx, q, l.db.dialect, events)
	})
}

// insertAuditBatch inserts events, already chained, in their order, sets
// each event's Seq, and moves the head to the last one. PostgreSQL gets
// one constant statement per batch (one round trip, not one per row): the
// columns as arrays (unnest), and the head moved in the same statement.
// SQLite, in this process, runs one prepared statement per event. Both
// insert in the batch's order, so seq order is chain order.
func insertAuditBatch(ctx context.Context, q q, d Dialect, events []AuditEvent) error {
	head := events[len(events)-1].Hash
	var rows []struct {
		Seq int64  `db:"seq"`
		ID  string `db:"id"`
	}
	var sum struct {
		First int64 `db:"first"`
		Last  int64 `db:"last"`
		N     int64 `db:"n"`
	}
	var err error
	switch d {
	case Postgres:
		cols := make([][]string, 15)
		at := make([]time.Time, len(events))
		for i, e := range events {
			at[i] = e.At
			for c, v := range []string{e.ID, e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID,
				e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash, e.Hash} {
				cols[c] = append(cols[c], v)
			}
		}
		err = q.get(ctx, &sum, `
			WITH ins AS (
			INSERT INTO audit_events (id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
				route, action, resource_type, resource_id, outcome, reason, prev_hash, hash)
			SELECT u.id, u.at, u.actor_type, u.actor_id, u.user_id, u.client_ip, u.user_agent, u.request_id,
				u.route, u.action, u.resource_type, u.resource_id, u.outcome, u.reason, u.prev_hash, u.hash
			FROM unnest(?::uuid[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
				?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
				WITH ORDINALITY AS u(id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
					route, action, resource_type, resource_id, outcome, reason, prev_hash, hash, ord)
			ORDER BY u.ord
			RETURNING seq, id
			), head AS (
				UPDATE audit_head SET last_seq = (SELECT max(seq) FROM ins), hash = ?, locked_at = NULL WHERE id = 1
			)
			SELECT min(seq) AS first, max(seq) AS last, count(*) AS n FROM ins`,
			cols[0], at, cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7],
			cols[8], cols[9], cols[10], cols[11], cols[12], cols[13], cols[14], head)
		if err != nil {
			return err
		}
		// Only a summary comes back (not a row per event). Under the head
		// lock no other writer inserts, so the batch's seqs are one
		// consecutive range in insertion order; if not, read them.
		if sum.N != int64(len(events)) {
			return Internal(fmt.Errorf("audit: %d rows inserted for %d events", sum.N, len(events)))
		}
		if sum.Last-sum.First+1 == sum.N {
			for i := range events {
				events[i].Seq = sum.First + int64(i)
			}
			return nil
		}
		err = q.sel(ctx, &rows, `SELECT seq, id::text AS id FROM audit_events WHERE seq BETWEEN ? AND ?`, sum.First, sum.Last)
	default:
		// SQLite runs in this process: one prepared statement, bound
		// once per event, is cheaper than decoding a JSON batch.
		st, perr := q.prepare(ctx, `
			INSERT INTO audit_events (id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
				route, action, resource_type, resource_id, outcome, reason, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if perr != nil {
			return perr
		}
		defer st.Close()
		var last int64
		for i := range events {
			e := &events[i]
			res, xerr := st.ExecContext(ctx, e.ID, e.At, e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent, e.RequestID,
				e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash, e.Hash)
			if xerr != nil {
				return translate(xerr)
			}
			// seq is SQLite's rowid (INTEGER PRIMARY KEY).
			if e.Seq, xerr = res.LastInsertId(); xerr != nil {
				return Internal(xerr)
			}
			last = e.Seq
		}
		_, err = q.exec(ctx, `UPDATE audit_head SET last_seq = ?, hash = ?, locked_at = NULL WHERE id = 1`, last, head)
		return err
	}
	// PostgreSQL, when the seqs were not one range: map them by id.
	if err != nil {
		return err
	}
	seqs := make(map[string]int64, len(rows))
	for _, r := range rows {
		seqs[r.ID] = r.Seq
	}
	for i := range events {
		events[i].Seq = seqs[events[i].ID]
	}
	return nil
}

// has reports whether an event with id is stored.
func (l *AuditLog) has(ctx context.Context, id string) (bool, error) {
	var n int
	if err := l.db.q().get(ctx, &n, `SELECT COUNT(*) FROM audit_events WHERE id = ?`, id); err != nil {
		return false, err
	}
	return n > 0, nil
}

// AuditFilter selects events for the admin API. Empty fields match all.
type AuditFilter struct {
	Actor   string // an actor ID or the acting user's ID
	Action  string
	Outcome string
	Since   time.Time
}

// List returns one page of events matching f, oldest first.
func (l *AuditLog) List(ctx context.Context, f AuditFilter, p PageRequest) (Page[AuditEvent], error) {
	since := time.Unix(0, 0).UTC()
	if !f.Since.IsZero() {
		since = f.Since.UTC()
	}
	var rows []AuditEvent
	err := l.db.q().sel(ctx, &rows, `
		SELECT seq, id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id, route,
			action, resource_type, resource_id, outcome, reason, prev_hash, hash
		FROM audit_events
		WHERE seq > ?
			AND (? = '' OR actor_id = ? OR user_id = ?)
			AND (? = '' OR action = ?)
			AND (? = '' OR outcome = ?)
			AND at >= ?
		ORDER BY seq
		LIMIT ?`,
		p.After, f.Actor, f.Actor, f.Actor, f.Action, f.Action, f.Outcome, f.Outcome, since, p.Limit+1)
	if err != nil {
		return Page[AuditEvent]{}, err
	}
	return pageOf(rows, p.Limit, func(e AuditEvent) int64 { return e.Seq }), nil
}

// AuditBreak describes the first row where the chain does not hold.
type AuditBreak struct {
	Seq    int64  // the row's seq; 0 when the head does not match the last row
	ID     string // the row's id
	Reason string
}

func (b *AuditBreak) Error() string {
	if b.Seq == 0 {
		return "audit chain broken at the head: " + b.Reason
	}
	return fmt.Sprintf("audit chain broken at row %d (id %s): %s", b.Seq, b.ID, b.Reason)
}

// AuditVerification is the result of a chain walk that found no break.
type AuditVerification struct {
	Rows int64
	Head string // the newest hash; record it elsewhere to detect a rewritten chain
}

// Verify walks the whole chain in seq order and checks each row's hash and
// its link to the row before, and that the head names the last row. It
// returns *AuditBreak for the first row that does not hold: an edited row
// fails its own hash, a deleted or reordered row breaks the link of the
// row after it, and a deleted tail no longer matches the head.
//
// The rows and the head are read in one read-only snapshot (repeatable
// read on PostgreSQL, a read transaction on SQLite's WAL), so that a
// server appending while Verify runs is not taken for rows added outside
// the writer; writers are not blocked.
func (l *AuditLog) Verify(ctx context.Context) (AuditVerification, error) {
	t, err := l.db.x.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return AuditVerification{}, translate(err)
	}
	defer func() { _ = t.Rollback() }() // read only: nothing to commit
	return l.verify(ctx, q{db: l.db, r: t})
}

func (l *AuditLog) verify(ctx context.Context, q q) (AuditVerification, error) {
	var (
		prev    string
		rows    int64
		lastSeq int64
		// The writer numbers rows from 1, but a row forged with seq 0 or
		// below must be walked too, or it would hide before the chain.
		after int64 = math.MinInt64
	)
	const batch = 1000
	for {
		var page []AuditEvent
		err := q.sel(ctx, &page, `
			SELECT seq, id, at, actor_type, actor_id, user_id, client_ip, user_agent, request_id, route,
				action, resource_type, resource_id, outcome, reason, prev_hash, hash
			FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, batch)
		if err != nil {
			return AuditVerification{}, err
		}
		for i := range page {
			e := &page[i]
			switch {
			case e.PrevHash != prev:
				return AuditVerification{}, &AuditBreak{Seq: e.Seq, ID: e.ID,
					Reason: "its previous-hash does not match the row before it (a row before it was deleted, inserted or moved)"}
			case e.chainHash() != e.Hash:
				return AuditVerification{}, &AuditBreak{Seq: e.Seq, ID: e.ID,
					Reason: "its content does not match its hash (the row was edited)"}
			}
			prev, lastSeq = e.Hash, e.Seq
			rows++
		}
		if len(page) < batch {
			break
		}
		after = page[len(page)-1].Seq
	}
	var head struct {
		LastSeq int64  `db:"last_seq"`
		Hash    string `db:"hash"`
	}
	if err := q.get(ctx, &head, `SELECT last_seq, hash FROM audit_head WHERE id = 1`); err != nil {
		return AuditVerification{}, err
	}
	if head.Hash != prev || head.LastSeq != lastSeq {
		return AuditVerification{}, &AuditBreak{Reason: fmt.Sprintf(
			"the head names row %d, the chain ends at row %d (rows at the end were deleted or added outside the writer)",
			head.LastSeq, lastSeq)}
	}
	return AuditVerification{Rows: rows, Head: prev}, nil
}

// IsAuditBreak reports whether err is a broken chain (as opposed to a
// database error).
func IsAuditBreak(err error) bool {
	var b *AuditBreak
	return errors.As(err, &b)
}

// AdminAudit is the admin's read-only view of the audit trail. There is no
// way to change or delete events through it (or anywhere in the API).
type AdminAudit struct {
	log *AuditLog
}

// NewAdminAudit returns the audit view for actor, or ErrForbidden when
// actor is not an admin acting through a session.
func NewAdminAudit(db *DB, actor Principal) (*AdminAudit, error) {
	if !actor.IsAdmin() {
		return nil, ErrForbidden
	}
	return &AdminAudit{log: NewAuditLog(db)}, nil
}

// List returns one page of events matching f, oldest first.
func (a *AdminAudit) List(ctx context.Context, f AuditFilter, p PageRequest) (Page[AuditEvent], error) {
	return a.log.List(ctx, f, p)
}

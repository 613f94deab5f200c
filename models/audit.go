package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
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

	// normalized is set by normalize: Record normalizes an event on the
	// request's path, and the writer's Append need not do it again.
	normalized bool
}

// normalize fills ID and At, stores At in UTC at microsecond precision (what
// both databases keep, so the hash can be recomputed from a read row), caps
// every free-text field, and defaults the actor type and outcome. An actor
// type or outcome the table does not allow is an error here, at once: the
// database would refuse the event on every retry, and the writer would
// never get past it.
func (e *AuditEvent) normalize(now time.Time) error {
	if e.normalized {
		return nil
	}
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
	e.normalized = true
	return nil
}

// capText returns s as valid UTF-8 of at most max runes. Control characters
// are kept (the JSON encodings of logs and API answers escape them), except
// NUL, which PostgreSQL cannot store in text: it becomes U+FFFD like
// invalid UTF-8, on both dialects, before the hash is computed. (A NUL
// reaches us easily, e.g. from a decoded path "/v1/projects/%00".)
func capText(s string, max int) string {
	if len(s) <= max && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s // the common case, without allocating
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}

// canonical is the exact byte string a row's hash covers: a JSON array of
// the fields in a fixed order, with the time in RFC 3339 at microseconds.
func (e *AuditEvent) canonical() []byte { return e.appendCanonical(nil) }

// appendCanonical appends e's canonical form to dst. The bytes are those
// json.Marshal gives for the fields as a []string (TestAuditCanonical
// holds it to that): hashes written before this encoder still verify.
func (e *AuditEvent) appendCanonical(dst []byte) []byte {
	dst = appendJSONString(append(dst, `["v1",`...), e.ID)
	// The time's digits and punctuation need no escaping.
	dst = append(appendAuditTime(append(dst, `,"`...), e.At), '"')
	for _, f := range [...]string{e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent,
		e.RequestID, e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.PrevHash} {
		dst = appendJSONString(append(dst, ','), f)
	}
	return append(dst, ']')
}

// auditTimeLayout is an event's time in its canonical form.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// appendAuditTime appends t in UTC as auditTimeLayout formats it. It
// writes the digits itself, in less than half the time AppendFormat takes to
// interpret the layout for every event; a year outside 0-9999 (which the
// layout writes with more digits or a sign) goes through AppendFormat.
func appendAuditTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, auditTimeLayout)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = appendDigits(append(dst, '-'), int(month), 2)
	dst = appendDigits(append(dst, '-'), day, 2)
	dst = appendDigits(append(dst, 'T'), hour, 2)
	dst = appendDigits(append(dst, ':'), minute, 2)
	dst = appendDigits(append(dst, ':'), sec, 2)
	dst = appendDigits(append(dst, '.'), t.Nanosecond()/1000, 6)
	return append(dst, 'Z')
}

// appendDigits appends the n lowest decimal digits of v (v >= 0), with
// leading zeros.
func appendDigits(dst []byte, v, n int) []byte {
	dst = append(dst, "000000"[:n]...)
	for i := len(dst) - 1; n > 0; i, n = i-1, n-1 {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// appendJSONString appends s as encoding/json writes a string. Most fields
// (IDs, addresses, routes, action names) are plain printable ASCII, which
// it copies between quotes; anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// jsonPlain holds the bytes encoding/json copies into a string as they
// are: printable ASCII except the quote, the backslash and the characters
// it escapes for HTML.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

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

	// The encoder's buffers, kept from one batch to the next: new ones
	// for each (a sync.Pool is emptied by the collector more often than
	// batches come) were a measurable share of the trail's cost to the
	// collector.
	encMu sync.Mutex
	enc   auditEncoder
}

// NewAuditLog returns the audit trail of db.
func NewAuditLog(db *DB) *AuditLog { return &AuditLog{db: db, now: time.Now} }

// Append writes events in order, in one transaction, each chained to the
// one before, as one row of audit_batches (migrations 0005 and 0006
// describe it).
// The head row is locked first, so writers on other instances (or
// processes) append one batch after another and never fork the chain.
// On success the events carry their Seq, PrevHash and Hash.
//
// One row a batch, not one an event: inserting a row into an indexed
// table cost about as much CPU as the authenticated read an event records
// (and, on SQLite, that insert runs on the server's own cores), so a row
// per event cost 24-37 % of the read throughput. A batch row is one
// insert, and its columns still let a filter skip the batches that
// cannot match (List).
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
		var head struct {
			LastSeq int64  `db:"last_seq"`
			Hash    string `db:"hash"`
		}
		if err := q.get(ctx, &head, auditLockHeadSQL, now.UTC()); err != nil {
			return err
		}
		l.encMu.Lock()
		b := l.enc.encode(events, head.LastSeq, head.Hash)
		l.encMu.Unlock()
		if _, err := q.exec(ctx, auditInsertBatchSQL, b.FirstSeq, b.LastSeq, b.FirstID, b.MaxAt,
			b.Outcomes, b.Actions, b.Actors, b.Events, b.Strings, b.PrevHash); err != nil {
			return err
		}
		_, err := q.exec(ctx, auditMoveHeadSQL, b.LastSeq, events[len(events)-1].Hash)
		return err
	})
}

// The statements of Append.
const (
	auditLockHeadSQL    = `UPDATE audit_head SET locked_at = ? WHERE id = 1 RETURNING last_seq, hash`
	auditInsertBatchSQL = `
		INSERT INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events, strings, prev_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditMoveHeadSQL = `UPDATE audit_head SET last_seq = ?, hash = ?, locked_at = NULL WHERE id = 1`
)

// Prepare prepares Append's statements on SQLite's pool, outside any
// transaction, so that Append's transactions run them prepared (preparing
// the batch INSERT compiles its triggers: about a microsecond an event).
// PostgreSQL's driver keeps its own prepared statements.
func (l *AuditLog) Prepare(ctx context.Context) error {
	if l.db.dialect != SQLite {
		return nil
	}
	_, err1 := l.db.stmt(ctx, auditLockHeadSQL)
	_, err2 := l.db.stmt(ctx, auditInsertBatchSQL)
	_, err3 := l.db.stmt(ctx, auditMoveHeadSQL)
	return translate(errors.Join(err1, err2, err3))
}

// auditBatch is one row of audit_batches.
type auditBatch struct {
	FirstSeq int64     `db:"first_seq"`
	LastSeq  int64     `db:"last_seq"`
	FirstID  string    `db:"first_id"`
	MaxAt    time.Time `db:"max_at"`
	Outcomes int       `db:"outcomes"`
	Actions  string    `db:"actions"`
	Actors   string    `db:"actors"`
	Events   string    `db:"events"`
	// Strings and PrevHash are NULL in a batch of migration 0005's
	// format, whose events are their canonical form and hash.
	Strings  *string `db:"strings"`
	PrevHash *string `db:"prev_hash"`
}

// Bits of auditBatch.Outcomes.
func outcomeBit(outcome string) int {
	switch outcome {
	case OutcomeAllow:
		return 1
	case OutcomeDeny:
		return 2
	default:
		return 4
	}
}

// auditEventFields is how many strings an event has in a batch of
// migration 0005's format: the canonical form's 16 and the hash.
const auditEventFields = 17

// A batch's events as the writer stores them (migration 0006): each
// event is a JSON array of auditStoredFields values,
//
//	[id, at, actor_type#, actor_id#, user_id#, client_ip#, user_agent#,
//	 request_id, route#, action#, resource_type#, resource_id, outcome#,
//	 reason#, hash]
//
// where a field marked # is an index into the batch's strings, a JSON
// array of its distinct values, and the others are strings. An event's
// prev_hash is the hash of the event before it in the batch; the first
// one's is the batch's prev_hash column. The hash still covers the
// canonical form (appendCanonical), prev_hash included: only the storage
// is shorter. The marked fields are those that repeat from one request to
// the next (who, from where, which route and what came of it); the IDs
// of the event, the request and the object mostly do not. Stored this way
// an event is about half as many bytes (460 -> 230 for a typical read's),
// and on SQLite writing an event costs about 5 ns of CPU a byte
// (BenchmarkAuditAppend).
const auditStoredFields = 15

// auditIndexed tells, for each position in a stored event, whether the
// field there is stored as an index into the batch's strings (the fields
// marked # above).
var auditIndexed = [auditStoredFields]bool{2: true, 3: true, 4: true, 5: true, 6: true, 8: true, 9: true,
	10: true, 12: true, 13: true}

// storedFields returns e's fields in the order of a stored event. The time
// (position 1) is left empty: encode writes it without building a string.
func (e *AuditEvent) storedFields() [auditStoredFields]string {
	return [auditStoredFields]string{e.ID, "", e.ActorType, e.ActorID, e.UserID, e.ClientIP, e.UserAgent,
		e.RequestID, e.Route, e.Action, e.ResourceType, e.ResourceID, e.Outcome, e.Reason, e.Hash}
}

// auditEncoder encodes batches; its buffers and map are reused.
type auditEncoder struct {
	buf, canon []byte
	index      map[string]int
	strings    []string
	last       [auditStoredFields]string // each indexed field's value in the event before
	lastIndex  [auditStoredFields]int
}

// encode numbers events from lastSeq+1, chains them to prev, and returns
// their batch row.
func (x *auditEncoder) encode(events []AuditEvent, lastSeq int64, prev string) auditBatch {
	if x.index == nil {
		x.index = make(map[string]int)
	}
	clear(x.index)
	x.strings = x.strings[:0]
	for i := range x.lastIndex {
		x.lastIndex[i] = -1
	}
	batchPrev := prev
	buf := append(x.buf[:0], '[')
	var s auditSummary
	for i := range events {
		e := &events[i]
		e.Seq = lastSeq + 1 + int64(i)
		e.PrevHash = prev
		x.canon = e.appendCanonical(x.canon[:0])
		sum := sha256.Sum256(x.canon)
		e.Hash = hex.EncodeToString(sum[:])
		prev = e.Hash
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '[')
		for k, f := range e.storedFields() {
			if k > 0 {
				buf = append(buf, ',')
			}
			switch {
			case k == 1:
				buf = append(appendAuditTime(append(buf, '"'), e.At), '"')
			case auditIndexed[k]:
				buf = strconv.AppendInt(buf, int64(x.stringIndex(k, f)), 10)
			default:
				buf = appendJSONString(buf, f)
			}
		}
		buf = append(buf, ']')
		s.add(e)
	}
	buf = append(buf, ']')
	eventsJSON := string(buf)
	buf = append(buf[:0], '[')
	for i, v := range x.strings {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, v)
	}
	buf = append(buf, ']')
	strs := string(buf)
	if cap(buf) <= auditScratchMax {
		x.buf = buf
	}
	if cap(x.canon) > auditScratchMax {
		x.canon = nil
	}
	if len(x.strings) > auditEncoderStrings {
		x.index, x.strings = nil, nil // a burst's memory back
	} else {
		clear(x.strings) // the strings are garbage after this batch
	}
	x.last = [auditStoredFields]string{}
	b := s.batch(events[0], events[len(events)-1].Seq, eventsJSON)
	b.Strings, b.PrevHash = &strs, &batchPrev
	return b
}

// stringIndex returns the index of v, the value of the field at position
// k, in the batch's strings, adding it if it is new. A field mostly has
// the value it had in the event before, which it checks first.
func (x *auditEncoder) stringIndex(k int, v string) int {
	if i := x.lastIndex[k]; i >= 0 && x.last[k] == v {
		return i
	}
	i, ok := x.index[v]
	if !ok {
		i = len(x.strings)
		x.index[v] = i
		x.strings = append(x.strings, v)
	}
	x.last[k], x.lastIndex[k] = v, i
	return i
}

// auditEncoderStrings is the most distinct strings whose map an encoder
// keeps for the next batch.
const auditEncoderStrings = 4096

// auditScratchMax is the largest encoding buffer an AuditLog keeps (a full
// batch of typical events is about 240 KB; a burst of long texts may need
// more, once).
const auditScratchMax = 1 << 20

// auditSummary gathers a batch's filter columns from its events.
type auditSummary struct {
	maxAt    time.Time
	outcomes int
	actions  []string // few distinct values: a slice beats a map
	actors   map[string]struct{}
	order    []string
}

func (s *auditSummary) add(e *AuditEvent) {
	if e.At.After(s.maxAt) {
		s.maxAt = e.At
	}
	s.outcomes |= outcomeBit(e.Outcome)
	if !slices.Contains(s.actions, e.Action) {
		s.actions = append(s.actions, e.Action)
	}
	if s.actors == nil {
		s.actors = make(map[string]struct{})
	}
	for _, a := range [...]string{e.ActorID, e.UserID} {
		if _, ok := s.actors[a]; !ok && a != "" {
			s.actors[a] = struct{}{}
			s.order = append(s.order, a)
		}
	}
}

func (s *auditSummary) batch(first AuditEvent, lastSeq int64, events string) auditBatch {
	return auditBatch{FirstSeq: first.Seq, LastSeq: lastSeq, FirstID: first.ID, MaxAt: s.maxAt,
		Outcomes: s.outcomes, Actions: tokenList(s.actions), Actors: tokenList(s.order), Events: events}
}

// tokenList is ",a,b,": a batch may hold v when the list contains ",v,".
// (A value with a comma in it can make a batch look like a match, never
// hide one: List checks every event it reads.)
func tokenList(values []string) string {
	var b strings.Builder
	b.WriteByte(',')
	for _, v := range values {
		b.WriteString(v)
		b.WriteByte(',')
	}
	return b.String()
}

// decodeAuditBatch returns the events of b, in either format: as
// encode writes them, or as migration 0005 wrote them (each event its
// canonical form and hash; Strings and PrevHash are NULL).
func decodeAuditBatch(b auditBatch) ([]AuditEvent, error) {
	if b.Strings == nil && b.PrevHash == nil {
		return decodeAuditBatchV1(b)
	}
	if b.Strings == nil || b.PrevHash == nil {
		return nil, errors.New("it has strings without a prev_hash, or a prev_hash without strings")
	}
	var strs []string
	if err := json.Unmarshal([]byte(*b.Strings), &strs); err != nil {
		return nil, fmt.Errorf("its strings are not a JSON array of strings: %w", err)
	}
	var raw [][]json.RawMessage
	if err := json.Unmarshal([]byte(b.Events), &raw); err != nil {
		return nil, fmt.Errorf("its events are not a JSON array of arrays: %w", err)
	}
	if int64(len(raw)) != b.LastSeq-b.FirstSeq+1 {
		return nil, fmt.Errorf("it holds %d events for seqs %d to %d", len(raw), b.FirstSeq, b.LastSeq)
	}
	events := make([]AuditEvent, len(raw))
	prev := *b.PrevHash
	for i, f := range raw {
		if len(f) != auditStoredFields {
			return nil, fmt.Errorf("its event %d has %d fields, not %d", i, len(f), auditStoredFields)
		}
		var v [auditStoredFields]string
		for k := range f {
			var err error
			if auditIndexed[k] {
				v[k], err = storedString(f[k], strs)
			} else {
				v[k], err = storedText(f[k])
			}
			if err != nil {
				return nil, fmt.Errorf("its event %d has a bad field %d: %w", i, k, err)
			}
		}
		at, err := parseAuditTime(v[1])
		if err != nil {
			return nil, fmt.Errorf("its event %d has a bad time: %w", i, err)
		}
		events[i] = AuditEvent{Seq: b.FirstSeq + int64(i), ID: v[0], At: at, ActorType: v[2], ActorID: v[3],
			UserID: v[4], ClientIP: v[5], UserAgent: v[6], RequestID: v[7], Route: v[8], Action: v[9],
			ResourceType: v[10], ResourceID: v[11], Outcome: v[12], Reason: v[13], PrevHash: prev, Hash: v[14],
			normalized: true} // as it was stored
		prev = v[14]
	}
	return events, nil
}

// storedString returns the string a stored index field names: raw must be
// a JSON integer that indexes strs.
func storedString(raw json.RawMessage, strs []string) (string, error) {
	i, err := strconv.Atoi(string(raw))
	if err != nil || i < 0 || i >= len(strs) {
		return "", fmt.Errorf("%.20s is not an index of its %d strings", raw, len(strs))
	}
	return strs[i], nil
}

// storedText returns the string raw holds, which must be a JSON string.
func storedText(raw json.RawMessage) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("%.20s is not a string", raw)
	}
	// Most are copied as they are: json.Unmarshal has checked the syntax,
	// and without a backslash or invalid UTF-8 the content is the string.
	if body := raw[1 : len(raw)-1]; bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), nil
	}
	var v string
	err := json.Unmarshal(raw, &v)
	return v, err
}

// decodeAuditBatchV1 returns the events of a batch in migration 0005's
// format.
func decodeAuditBatchV1(b auditBatch) ([]AuditEvent, error) {
	var raw [][]string
	if err := json.Unmarshal([]byte(b.Events), &raw); err != nil {
		return nil, fmt.Errorf("its events are not a JSON array of arrays of strings: %w", err)
	}
	if int64(len(raw)) != b.LastSeq-b.FirstSeq+1 {
		return nil, fmt.Errorf("it holds %d events for seqs %d to %d", len(raw), b.FirstSeq, b.LastSeq)
	}
	events := make([]AuditEvent, len(raw))
	for i, f := range raw {
		if len(f) != auditEventFields || f[0] != "v1" {
			return nil, fmt.Errorf("its event %d is not a v1 event of %d fields", i, auditEventFields)
		}
		at, err := parseAuditTime(f[2])
		if err != nil {
			return nil, fmt.Errorf("its event %d has a bad time: %w", i, err)
		}
		events[i] = AuditEvent{Seq: b.FirstSeq + int64(i), ID: f[1], At: at, ActorType: f[3], ActorID: f[4],
			UserID: f[5], ClientIP: f[6], UserAgent: f[7], RequestID: f[8], Route: f[9], Action: f[10],
			ResourceType: f[11], ResourceID: f[12], Outcome: f[13], Reason: f[14], PrevHash: f[15], Hash: f[16],
			normalized: true} // as it was stored
	}
	return events, nil
}

// parseAuditTime reads an event's time in its canonical form.
func parseAuditTime(s string) (time.Time, error) {
	t, err := time.Parse(auditTimeLayout, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// hasBatch reports whether the batch whose first event is id is stored.
func (l *AuditLog) hasBatch(ctx context.Context, id string) (bool, error) {
	var n int
	if err := l.db.q().get(ctx, &n, `SELECT COUNT(*) FROM audit_batches WHERE first_id = ?`, id); err != nil {
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

// auditListBatches and auditListEvents bound what one List call reads
// (and decodes): at most 64 batches, and no further batch once 16,384
// events are read (16 full batches of the writer's 1,024). A filter that
// matches few events in a long trail gets a short page, or an empty one,
// with a cursor to go on from, rather than one request reading the whole
// trail.
const (
	auditListBatches = 64
	auditListEvents  = 16 * 1024
)

// matches reports whether e passes f (f.Since is already in UTC).
func (f AuditFilter) matches(e *AuditEvent) bool {
	return (f.Actor == "" || e.ActorID == f.Actor || e.UserID == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Outcome == "" || e.Outcome == f.Outcome) &&
		!e.At.Before(f.Since)
}

// likeToken is the LIKE pattern of a batch whose token list (tokenList)
// holds v, or "%" for any batch when v is empty.
func likeToken(v string) string {
	if v == "" {
		return "%"
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%," + r.Replace(v) + ",%"
}

// List returns one page of events matching f, oldest first. It reads
// the batches whose columns say they may hold a match, checks every event
// in them, and stops when the page is full or after auditListBatches
// batches or auditListEvents events; then Next continues after the last
// event it checked, so a page can be short (even empty) and still have a
// next one. Only Next == 0 means the end.
func (l *AuditLog) List(ctx context.Context, f AuditFilter, p PageRequest) (Page[AuditEvent], error) {
	f.Since = f.Since.UTC()
	mask := 7
	if f.Outcome != "" {
		mask = outcomeBit(f.Outcome)
	}
	items := []AuditEvent{}
	after := p.After
	for read, decoded := 0, 0; read < auditListBatches && decoded < auditListEvents; {
		var batches []auditBatch
		err := l.db.q().sel(ctx, &batches, `
			SELECT first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events, strings, prev_hash
			FROM audit_batches
			WHERE last_seq > ?
				AND actors LIKE ? ESCAPE '\'
				AND actions LIKE ? ESCAPE '\'
				AND (outcomes & ?) <> 0
				AND max_at >= ?
			ORDER BY first_seq
			LIMIT ?`,
			after, likeToken(f.Actor), likeToken(f.Action), mask, f.Since, min(8, auditListBatches-read))
		if err != nil {
			return Page[AuditEvent]{}, err
		}
		for _, b := range batches {
			events, err := decodeAuditBatch(b)
			if err != nil {
				// Only tampering makes a batch unreadable: audit verify
				// names it.
				return Page[AuditEvent]{}, Internal(fmt.Errorf("audit batch %d: %w", b.FirstSeq, err))
			}
			for i := range events {
				if events[i].Seq > after && f.matches(&events[i]) {
					items = append(items, events[i])
					if len(items) > p.Limit {
						return pageOf(items, p.Limit, func(e AuditEvent) int64 { return e.Seq }), nil
					}
				}
			}
			after = b.LastSeq
			read++
			if decoded += len(events); decoded >= auditListEvents {
				break
			}
		}
		if len(batches) == 0 {
			return Page[AuditEvent]{Items: items}, nil
		}
	}
	return Page[AuditEvent]{Items: items, Next: after}, nil
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
		// The writer numbers batches from 1, but a batch forged with seq
		// 0 or below must be walked too, or it would hide before the chain.
		after int64 = math.MinInt64
	)
	const page = 16 // batches (of up to the writer's 1,024 events) a query
	for {
		var batches []auditBatch
		err := q.sel(ctx, &batches, `
			SELECT first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events, strings, prev_hash
			FROM audit_batches WHERE first_seq > ? ORDER BY first_seq LIMIT ?`, after, page)
		if err != nil {
			return AuditVerification{}, err
		}
		for _, b := range batches {
			// A deleted, moved or forged batch breaks the chain of hashes
			// (below); seqs are not hashed, and only must not overlap.
			if rows > 0 && b.FirstSeq <= lastSeq {
				return AuditVerification{}, &AuditBreak{Seq: b.FirstSeq, ID: b.FirstID, Reason: fmt.Sprintf(
					"its batch starts at seq %d, the one before it ends at %d", b.FirstSeq, lastSeq)}
			}
			events, err := decodeAuditBatch(b)
			if err != nil {
				return AuditVerification{}, &AuditBreak{Seq: b.FirstSeq, ID: b.FirstID, Reason: "its batch was edited: " + err.Error()}
			}
			var sum auditSummary
			for i := range events {
				e := &events[i]
				switch {
				case e.PrevHash != prev:
					return AuditVerification{}, &AuditBreak{Seq: e.Seq, ID: e.ID,
						Reason: "its previous-hash does not match the event before it (an event before it was deleted, inserted or moved)"}
				case e.chainHash() != e.Hash:
					reason := "its content does not match its hash (the event was edited)"
					if b.Strings != nil {
						// Its prev_hash is not stored but taken from the
						// event before it (or the batch's), which may not
						// be the one it followed when it was written.
						reason = "its content and the event before it do not match its hash " +
							"(the event was edited, or an event before it was deleted, inserted or moved)"
					}
					return AuditVerification{}, &AuditBreak{Seq: e.Seq, ID: e.ID, Reason: reason}
				}
				prev = e.Hash
				sum.add(e)
			}
			// The filter columns are not hashed: they must cover what the
			// events hold, or a filter could be made to skip events. (A
			// column that says more only costs List a batch read.)
			want := sum.batch(events[0], b.LastSeq, b.Events)
			if b.MaxAt.Before(want.MaxAt) || want.Outcomes&^b.Outcomes != 0 ||
				!tokensCover(b.Actions, want.Actions) || !tokensCover(b.Actors, want.Actors) {
				return AuditVerification{}, &AuditBreak{Seq: b.FirstSeq, ID: b.FirstID,
					Reason: "its batch's filter columns do not cover its events (a filter would miss events)"}
			}
			rows += int64(len(events))
			lastSeq = b.LastSeq
		}
		if len(batches) < page {
			break
		}
		after = batches[len(batches)-1].FirstSeq
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

// tokensCover reports whether the token list (tokenList) has holds every
// value of want, in any order (migration 0005 writes them with SQL's
// DISTINCT aggregates).
func tokensCover(has, want string) bool {
	for _, v := range strings.Split(strings.Trim(want, ","), ",") {
		if v != "" && !strings.Contains(has, ","+v+",") {
			return false
		}
	}
	return true
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

package models

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it. The HTTP
// layer maps each kind to one status code; nothing maps errors by their
// message text.
type Kind int

// The error kinds. KindInternal is the zero value on purpose: an error that
// nobody classified is treated as a server fault and its detail never
// reaches the client.
const (
	KindInternal         Kind = iota // a fault on our side (500)
	KindMalformed                    // the request cannot be parsed: bad JSON, wrong types, unknown fields (400)
	KindInvalid                      // well-formed, but breaks a validation rule (422)
	KindUnauthenticated              // missing, malformed, expired or revoked credentials (401)
	KindForbidden                    // authenticated, but the role or scope does not allow the function (403)
	KindNotFound                     // absent, or owned by someone else: existence stays private (404)
	KindConflict                     // clashes with the current state, e.g. a taken e-mail (409)
	KindTooLarge                     // the body is larger than allowed (413)
	KindUnsupportedMedia             // the body is not of an accepted media type (415)
	KindNotAcceptable                // the client accepts nothing this endpoint produces (406)
	KindRateLimited                  // a rate limit is exhausted; retry later (429)
	KindQuotaExceeded                // a resource quota is full; retrying will not help (429)
	KindUnavailable                  // a dependency is down; retry later (503)
	KindUpstream                     // a third party we called failed or answered unusably (502)
)

var kindNames = map[Kind]string{
	KindInternal:         "internal",
	KindMalformed:        "malformed",
	KindInvalid:          "invalid",
	KindUnauthenticated:  "unauthenticated",
	KindForbidden:        "forbidden",
	KindNotFound:         "not found",
	KindConflict:         "conflict",
	KindTooLarge:         "too large",
	KindUnsupportedMedia: "unsupported media type",
	KindNotAcceptable:    "not acceptable",
	KindRateLimited:      "rate limited",
	KindQuotaExceeded:    "quota exceeded",
	KindUnavailable:      "unavailable",
	KindUpstream:         "upstream failed",
}

// String names the kind.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FieldError names one request field and what is wrong with it, in words
// that are safe to show the client (never the rejected value).
type FieldError struct {
	Field   string
	Message string
}

// Error is the one error type of the application. Detail and Fields are
// written for the client; Cause is for the server log only.
type Error struct {
	Kind   Kind
	Detail string       // client-safe explanation; empty means "use the generic text"
	Fields []FieldError // per-field problems, for KindMalformed and KindInvalid
	Cause  error        // internal cause; never sent to the client
	// RetryAfter, when positive, is sent as Retry-After (rate limits, 503).
	RetryAfter time.Duration
	// Policies names the violated rate-limit policies (violated-policies).
	Policies []string
	// Reason is the internal reason for the audit trail (e.g. which of the
	// indistinguishable login failures this was); never sent to a client.
	Reason string
}

// ReasonOf returns the internal audit reason of err, if it has one.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Error describes the error for logs. It includes the cause, so it must
// never be sent to a client; the HTTP layer uses Kind, Detail and Fields.
func (e *Error) Error() string {
	msg := e.Kind.String()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error of the same kind, so that
// errors.Is(err, ErrNotFound) works for any not-found error.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Kind == e.Kind && t.Detail == "" && t.Cause == nil && t.Fields == nil
}

// Sentinel errors for the kinds callers test for most often. Compare with
// errors.Is; a detailed error of the same kind matches its sentinel.
var (
	ErrNotFound        = &Error{Kind: KindNotFound}
	ErrUnauthenticated = &Error{Kind: KindUnauthenticated}
	ErrForbidden       = &Error{Kind: KindForbidden}
	ErrConflict        = &Error{Kind: KindConflict}
)

// E makes an error of the given kind with a client-safe detail.
func E(kind Kind, detail string) *Error {
	return &Error{Kind: kind, Detail: detail}
}

// Invalid makes a KindInvalid error listing the offending fields.
func Invalid(detail string, fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Detail: detail, Fields: fields}
}

// Internal wraps an unexpected error. Its text goes to the server log only.
func Internal(cause error) *Error {
	return &Error{Kind: KindInternal, Cause: cause}
}

// KindOf returns the kind of err: the kind of the first *Error in its chain,
// or KindInternal for anything unclassified.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

package models

import (
	"context"
	"slices"
	"strings"
	"time"
)

// APIKeyPrefix marks our API keys, so that the server knows which store to
// look in and secret scanners can find a leaked key.
const APIKeyPrefix = "rpk_"

// apiKeyDisplayLen is how much of a key is kept in clear as its "prefix":
// the marker and 8 characters (48 bits) of the random part, enough to tell
// keys apart in a list, far too little to guess the rest.
const apiKeyDisplayLen = len(APIKeyPrefix) + 8

// APIKey is an API key, without its secret.
type APIKey struct {
	Seq        int64      `db:"seq"` // internal ordering key; never exposed
	ID         string     `db:"id"`
	Name       string     `db:"name"`
	Prefix     string     `db:"prefix"`
	Scopes     Scopes     `db:"scopes"`
	RateLimit  int        `db:"rate_limit"` // requests per minute
	ExpiresAt  *time.Time `db:"expires_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	CreatedAt  time.Time  `db:"created_at"`
}

// NewAPIKey is what a key is created from.
type NewAPIKey struct {
	Name      string
	Scopes    []Scope
	RateLimit int        // requests per minute; already bounded by the caller's configuration
	ExpiresAt *time.Time // nil: no expiry
}

// CreatedAPIKey is a new key with its secret, which exists only here: the
// database keeps the hash.
type CreatedAPIKey struct {
	APIKey
	Key string
}

// Scopes is a set of scopes stored as a sorted, comma-separated string.
type Scopes []Scope

// Scan reads the stored form.
func (s *Scopes) Scan(src any) error {
	var str string
	switch v := src.(type) {
	case string:
		str = v
	case []byte:
		str = string(v)
	default:
		return E(KindInternal, "scopes column has an unexpected type")
	}
	*s = nil
	for _, part := range strings.Split(str, ",") {
		if part != "" {
			*s = append(*s, Scope(part))
		}
	}
	return nil
}

// String lists the scopes, sorted and comma-separated.
func (s Scopes) String() string { return s.stored() }

func (s Scopes) stored() string {
	parts := make([]string, len(s))
	for i, sc := range s {
		parts[i] = string(sc)
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

// APIKeyRepo manages the API keys of one owner. Keys never manage keys: the
// handlers admit only session principals to it.
type APIKeyRepo struct {
	db    *DB
	owner string
}

// NewAPIKeyRepo returns the keys of owner.
func NewAPIKeyRepo(db *DB, owner string) *APIKeyRepo { return &APIKeyRepo{db: db, owner: owner} }

// Create makes a key for the owner within the key quota and returns it with
// its secret. Owner-scoped. Errors: KindInvalid (no or unknown scopes, a
// past expiry), KindQuotaExceeded.
func (r *APIKeyRepo) Create(ctx context.Context, in NewAPIKey) (CreatedAPIKey, error) {
	if len(in.Scopes) == 0 {
		return CreatedAPIKey{}, Invalid("The request has invalid fields.", FieldError{Field: "scopes", Message: "must name at least one scope"})
	}
	for _, s := range in.Scopes {
		if !s.Valid() {
			return CreatedAPIKey{}, Invalid("The request has invalid fields.", FieldError{Field: "scopes", Message: "must be a subset of projects:read, projects:write"})
		}
	}
	t := now()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(t) {
		return CreatedAPIKey{}, Invalid("The request has invalid fields.", FieldError{Field: "expires_at", Message: "must be in the future"})
	}
	if in.RateLimit <= 0 {
		return CreatedAPIKey{}, Invalid("The request has invalid fields.", FieldError{Field: "rate_limit", Message: "must be positive"})
	}
	key, hash, err := newToken(APIKeyPrefix)
	if err != nil {
		return CreatedAPIKey{}, err
	}
	id, err := NewID()
	if err != nil {
		return CreatedAPIKey{}, err
	}
	var expires *time.Time
	if in.ExpiresAt != nil {
		e := in.ExpiresAt.UTC().Truncate(time.Microsecond)
		expires = &e
	}
	var out CreatedAPIKey
	err = r.db.tx(ctx, func(q q) error {
		if err := q.execOne(ctx, `UPDATE users SET updated_at = updated_at WHERE id = ?`, r.owner); err != nil {
			return err
		}
		if err := checkQuota(ctx, q, `SELECT COUNT(*) FROM api_keys WHERE user_id = ?`, r.owner, r.db.quotas.APIKeysPerUser, "API keys"); err != nil {
			return err
		}
		return q.get(ctx, &out.APIKey, `
			INSERT INTO api_keys (id, user_id, name, prefix, token_hash, scopes, rate_limit, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING seq, id, name, prefix, scopes, rate_limit, expires_at, last_used_at, created_at`,
			id, r.owner, in.Name, key[:apiKeyDisplayLen], hash, Scopes(in.Scopes).stored(), in.RateLimit, expires, t)
	})
	if err != nil {
		return CreatedAPIKey{}, err
	}
	out.Key = key
	return out, nil
}

// List returns one page of the owner's keys, oldest first. Owner-scoped.
func (r *APIKeyRepo) List(ctx context.Context, page PageRequest) (Page[APIKey], error) {
	var rows []APIKey
	err := r.db.q().sel(ctx, &rows, `
		SELECT seq, id, name, prefix, scopes, rate_limit, expires_at, last_used_at, created_at
		FROM api_keys WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?`, r.owner, page.After, page.Limit+1)
	if err != nil {
		return Page[APIKey]{}, err
	}
	return pageOf(rows, page.Limit, func(k APIKey) int64 { return k.Seq }), nil
}

// Delete revokes a key: the row goes, so the key fails from the next
// request on. Owner-scoped: another owner's key is KindNotFound.
func (r *APIKeyRepo) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	return r.db.q().execOne(ctx, `DELETE FROM api_keys WHERE id = ? AND user_id = ?`, id, r.owner)
}

// IsAPIKey reports whether token has the shape of an API key.
func IsAPIKey(token string) bool { return wellFormedToken(token, APIKeyPrefix) }

var errBadKey = &Error{Kind: KindUnauthenticated, Detail: "The API key is invalid, expired or revoked."}

// authenticateAPIKey resolves an API key to its principal. Expiry and the
// owner's lock are read in the same statement. last_used_at is written at
// most once a minute.
func (a *Accounts) authenticateAPIKey(ctx context.Context, token string) (Principal, error) {
	if !IsAPIKey(token) {
		return Principal{}, errBadKey
	}
	t := a.now()
	var row struct {
		ID        string     `db:"id"`
		UserID    string     `db:"user_id"`
		Role      Role       `db:"role"`
		Scopes    Scopes     `db:"scopes"`
		RateLimit int        `db:"rate_limit"`
		LastUsed  *time.Time `db:"last_used_at"`
	}
	err := a.db.q().get(ctx, &row, `
		SELECT k.id, k.user_id, u.role, k.scopes, k.rate_limit, k.last_used_at
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.token_hash = ? AND (k.expires_at IS NULL OR k.expires_at > ?) AND u.locked_at IS NULL`,
		HashToken(token), t)
	if KindOf(err) == KindNotFound {
		return Principal{}, errBadKey
	}
	if err != nil {
		return Principal{}, err
	}
	if row.LastUsed == nil || t.Sub(*row.LastUsed) >= sessionTouchInterval {
		if _, err := a.db.q().exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, t, row.ID); err != nil {
			return Principal{}, err
		}
	}
	return Principal{Kind: PrincipalAPIKey, UserID: row.UserID, Role: row.Role, APIKeyID: row.ID,
		Scopes: row.Scopes, RateLimit: row.RateLimit}, nil
}

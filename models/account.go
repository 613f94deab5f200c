package models

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Session lifetimes. Sessions are for people; automation uses API keys.
// Idle 15 min and absolute 4 h are the strict ends of the OWASP Session
// Management Cheat Sheet / ASVS 7.3 ranges; both are configurable.
const (
	DefaultSessionIdleTimeout     = 15 * time.Minute
	DefaultSessionAbsoluteTimeout = 4 * time.Hour
	// sessionTouchInterval bounds how often a request writes last_seen_at:
	// at most once a minute per session instead of on every request. A
	// session may therefore idle out up to a minute early, never late.
	sessionTouchInterval = time.Minute
)

// AccountsConfig configures Accounts. Zero durations take the defaults.
type AccountsConfig struct {
	Hasher          *PasswordHasher
	Policy          *PasswordPolicy
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// Now is the clock; nil means the system clock. Tests move it.
	Now func() time.Time
}

// Accounts registers users, logs them in and out, resolves session tokens
// and changes passwords. It is not owner-scoped: it is the code that
// establishes who the owner is.
type Accounts struct {
	db        *DB
	hasher    *PasswordHasher
	policy    *PasswordPolicy
	idle      time.Duration
	absolute  time.Duration
	clock     func() time.Time
	dummyHash string
}

// NewAccounts returns the account service. It hashes a random dummy password
// once, so that a login for an unknown e-mail costs what a wrong password
// costs.
func NewAccounts(ctx context.Context, db *DB, cfg AccountsConfig) (*Accounts, error) {
	if cfg.Hasher == nil || cfg.Policy == nil {
		return nil, errors.New("accounts: hasher and policy are required")
	}
	a := &Accounts{db: db, hasher: cfg.Hasher, policy: cfg.Policy,
		idle: cfg.IdleTimeout, absolute: cfg.AbsoluteTimeout, clock: cfg.Now}
	if a.idle <= 0 {
		a.idle = DefaultSessionIdleTimeout
	}
	if a.absolute <= 0 {
		a.absolute = DefaultSessionAbsoluteTimeout
	}
	if a.clock == nil {
		a.clock = time.Now
	}
	dummy, _, err := newToken("dummy_")
	if err != nil {
		return nil, err
	}
	if a.dummyHash, err = a.hasher.Hash(ctx, dummy); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Accounts) now() time.Time { return a.clock().UTC().Truncate(time.Microsecond) }

// IdleTimeout is how long a session lives without use.
func (a *Accounts) IdleTimeout() time.Duration { return a.idle }

// NewUser is what an account is created from.
type NewUser struct {
	Email       string
	DisplayName string
	Password    string
	Role        Role
}

// Register creates an ordinary user from the public sign-up. Whatever the
// input says, the role is RoleUser. Errors: KindInvalid (e-mail shape,
// password policy, with the field named), KindConflict (e-mail taken).
func (a *Accounts) Register(ctx context.Context, in NewUser) (User, error) {
	in.Role = RoleUser
	return a.CreateUser(ctx, in)
}

// CreateUser creates a user with the given role; only the CLI calls it with
// RoleAdmin. Errors as for Register.
func (a *Accounts) CreateUser(ctx context.Context, in NewUser) (User, error) {
	in.Email = NormalizeText(in.Email)
	in.DisplayName = NormalizeText(in.DisplayName)
	if !ValidEmail(in.Email) {
		return User{}, Invalid("The request has invalid fields.", FieldError{Field: "email", Message: "must be a valid e-mail address"})
	}
	if !in.Role.Valid() {
		return User{}, Invalid("The request has invalid fields.", FieldError{Field: "role", Message: "must be user or admin"})
	}
	if msg := a.policy.Check(in.Password, in.Email, in.DisplayName); msg != "" {
		return User{}, Invalid("The password does not meet the policy.", FieldError{Field: "password", Message: msg})
	}
	hash, err := a.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	id, err := NewID()
	if err != nil {
		return User{}, err
	}
	t := a.now()
	var u User
	err = a.db.q().get(ctx, &u, `
		INSERT INTO users (id, email, email_key, display_name, password_hash, role, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING seq, id, email, display_name, role, locked_at, created_at, updated_at`,
		id, in.Email, EmailKey(in.Email), in.DisplayName, hash, in.Role, t, t)
	if KindOf(err) == KindConflict {
		return User{}, &Error{Kind: KindConflict, Detail: "An account with this e-mail address already exists.", Cause: err}
	}
	return u, err
}

// LoginResult is a new session: the token (shown to the client once, never
// stored) and when it expires at the latest. On a failed login only UserID
// is set, when the account exists, for the audit trail.
type LoginResult struct {
	Token     string
	SessionID string
	UserID    string
	ExpiresAt time.Time
}

// The answers to a failed login: unknown e-mail, wrong password and locked
// account have the same kind and detail, so the API is no oracle for which
// e-mail addresses have accounts. Only their internal Reason differs, for
// the audit trail.
var (
	errBadLogin      = &Error{Kind: KindUnauthenticated, Detail: "The e-mail address or password is incorrect.", Reason: "wrong_password"}
	errUnknownLogin  = &Error{Kind: KindUnauthenticated, Detail: errBadLogin.Detail, Reason: "unknown_email"}
	errLockedAccount = &Error{Kind: KindUnauthenticated, Detail: errBadLogin.Detail, Reason: "account_locked"}
)

// Login checks an e-mail and password and opens a session. An unknown
// e-mail is checked against a dummy hash, so the answer and its timing match
// a wrong password. A hash made with older parameters is replaced. Errors:
// KindUnauthenticated (always the same detail), KindUnavailable.
func (a *Accounts) Login(ctx context.Context, email, password string) (LoginResult, error) {
	var row struct {
		ID       string     `db:"id"`
		Hash     string     `db:"password_hash"`
		LockedAt *time.Time `db:"locked_at"`
	}
	err := a.db.q().get(ctx, &row, `SELECT id, password_hash, locked_at FROM users WHERE email_key = ?`, EmailKey(email))
	switch {
	case KindOf(err) == KindNotFound:
		// Burn the same work as a real check, then fail the same way.
		if _, _, err := a.hasher.Verify(ctx, password, a.dummyHash); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, errUnknownLogin
	case err != nil:
		return LoginResult{}, err
	}
	match, rehash, err := a.hasher.Verify(ctx, password, row.Hash)
	if err != nil {
		return LoginResult{UserID: row.ID}, err
	}
	switch {
	case !match:
		return LoginResult{UserID: row.ID}, errBadLogin
	case row.LockedAt != nil:
		return LoginResult{UserID: row.ID}, errLockedAccount
	}
	var newHash string
	if rehash {
		if newHash, err = a.hasher.Hash(ctx, password); err != nil {
			return LoginResult{}, err
		}
	}
	token, tokenHash, err := newToken(SessionTokenPrefix)
	if err != nil {
		return LoginResult{}, err
	}
	sessionID, err := NewID()
	if err != nil {
		return LoginResult{}, err
	}
	t := a.now()
	expires := t.Add(a.absolute)
	err = a.db.tx(ctx, func(q q) error {
		if newHash != "" {
			if _, err := q.exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, newHash, t, row.ID); err != nil {
				return err
			}
		}
		_, err := q.exec(ctx, `
			INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, sessionID, row.ID, tokenHash, t, t, expires)
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Token: token, SessionID: sessionID, UserID: row.ID, ExpiresAt: expires}, nil
}

// errBadToken is the answer to any session token that is malformed, unknown,
// expired, revoked, or belongs to a locked user.
var errBadToken = &Error{Kind: KindUnauthenticated, Detail: "The access token is invalid or has expired."}

// IsSessionToken reports whether token has the shape of a session token.
func IsSessionToken(token string) bool { return wellFormedToken(token, SessionTokenPrefix) }

// Authenticate resolves a bearer credential, a session token (rps_) or an
// API key (rpk_), to its principal. The user's lock state is read in the
// same statement, so a lock takes effect on the next request. Errors:
// KindUnauthenticated, KindUnavailable.
func (a *Accounts) Authenticate(ctx context.Context, token string) (Principal, error) {
	if strings.HasPrefix(token, APIKeyPrefix) {
		return a.authenticateAPIKey(ctx, token)
	}
	return a.authenticateSession(ctx, token)
}

func (a *Accounts) authenticateSession(ctx context.Context, token string) (Principal, error) {
	if !IsSessionToken(token) {
		return Principal{}, errBadToken
	}
	t := a.now()
	hash := HashToken(token)
	// A session verified a moment ago is believed without a database
	// round trip (SessionCache says how revocation still takes effect at
	// once); the epoch is read before the query, so a result that raced
	// with a revocation is not cached.
	cache := a.db.sessions
	var key [32]byte
	var epoch uint64
	if cache != nil {
		copy(key[:], hash)
		if p, ok := cache.lookup(key, t, a.idle); ok {
			return p, nil
		}
		epoch = cache.currentEpoch()
	}
	var row struct {
		ID       string    `db:"id"`
		UserID   string    `db:"user_id"`
		Role     Role      `db:"role"`
		LastSeen time.Time `db:"last_seen_at"`
		Expires  time.Time `db:"expires_at"`
	}
	err := a.db.q().get(ctx, &row, `
		SELECT s.id, s.user_id, u.role, s.last_seen_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > ? AND s.last_seen_at > ? AND u.locked_at IS NULL`,
		hash, t, t.Add(-a.idle))
	if KindOf(err) == KindNotFound {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, err
	}
	if t.Sub(row.LastSeen) >= sessionTouchInterval {
		if _, err := a.db.q().exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, t, row.ID); err != nil {
			return Principal{}, err
		}
		row.LastSeen = t
	}
	p := Principal{Kind: PrincipalSession, UserID: row.UserID, Role: row.Role, SessionID: row.ID}
	if cache != nil {
		cache.store(key, p, row.Expires, row.LastSeen, t, epoch)
	}
	return p, nil
}

// Logout ends the principal's session: its token is dead from now on.
func (a *Accounts) Logout(ctx context.Context, p Principal) error {
	if p.Kind != PrincipalSession {
		return ErrForbidden
	}
	if _, err := a.db.q().exec(ctx, `DELETE FROM sessions WHERE id = ? AND user_id = ?`, p.SessionID, p.UserID); err != nil {
		return err
	}
	a.db.revokeSessions(ctx, revokeSession, p.SessionID)
	return nil
}

// Me returns the principal's own account.
func (a *Accounts) Me(ctx context.Context, p Principal) (User, error) {
	var u User
	err := a.db.q().get(ctx, &u, `
		SELECT seq, id, email, display_name, role, locked_at, created_at, updated_at
		FROM users WHERE id = ?`, p.UserID)
	return u, err
}

// ChangePassword replaces the principal's password after checking the
// current one, and ends every other session of the user (the current one
// stays, so the client is not logged out by its own change). Errors:
// KindInvalid (current_password wrong, new_password breaks the policy or
// equals the current one), KindForbidden (not a session).
func (a *Accounts) ChangePassword(ctx context.Context, p Principal, current, next string) error {
	if p.Kind != PrincipalSession {
		return ErrForbidden
	}
	var row struct {
		Email       string `db:"email"`
		DisplayName string `db:"display_name"`
		Hash        string `db:"password_hash"`
	}
	if err := a.db.q().get(ctx, &row, `SELECT email, display_name, password_hash FROM users WHERE id = ?`, p.UserID); err != nil {
		return err
	}
	match, _, err := a.hasher.Verify(ctx, current, row.Hash)
	if err != nil {
		return err
	}
	if !match {
		return Invalid("The current password is incorrect.", FieldError{Field: "current_password", Message: "is incorrect"})
	}
	if msg := a.policy.Check(next, row.Email, row.DisplayName); msg != "" {
		return Invalid("The new password does not meet the policy.", FieldError{Field: "new_password", Message: msg})
	}
	if NormalizePassword(next) == NormalizePassword(current) {
		return Invalid("The new password does not meet the policy.", FieldError{Field: "new_password", Message: "must differ from the current password"})
	}
	hash, err := a.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	t := a.now()
	err = a.db.tx(ctx, func(q q) error {
		if _, err := q.exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, t, p.UserID); err != nil {
			return err
		}
		_, err := q.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id <> ?`, p.UserID, p.SessionID)
		return err
	})
	if err != nil {
		return err
	}
	// Every cached session of the user, the current one included (it is
	// read again from the database on its next request).
	a.db.revokeSessions(ctx, revokeUser, p.UserID)
	return nil
}

// PurgeExpiredSessions deletes sessions past their absolute or idle expiry
// and reports how many went. The server runs it periodically; expired
// sessions are already refused, this only keeps the table small.
func (a *Accounts) PurgeExpiredSessions(ctx context.Context) (int64, error) {
	t := a.now()
	return a.db.q().exec(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?`, t, t.Add(-a.idle))
}

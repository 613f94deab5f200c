package models

import "context"

// AdminUsers is the administrators' view of all accounts. It is a separate,
// plainly named type rather than an "unscoped" switch on a user repository,
// and it can only be made for an admin principal.
type AdminUsers struct {
	db    *DB
	actor Principal
}

// NewAdminUsers returns the admin view for actor, or ErrForbidden when actor
// is not an admin acting through a session.
func NewAdminUsers(db *DB, actor Principal) (*AdminUsers, error) {
	if !actor.IsAdmin() {
		return nil, ErrForbidden
	}
	return &AdminUsers{db: db, actor: actor}, nil
}

// List returns one page of all users, oldest first.
func (a *AdminUsers) List(ctx context.Context, page PageRequest) (Page[User], error) {
	var rows []User
	err := a.db.q().sel(ctx, &rows, `
		SELECT seq, id, email, display_name, role, locked_at, created_at, updated_at
		FROM users WHERE seq > ? ORDER BY seq LIMIT ?`, page.After, page.Limit+1)
	if err != nil {
		return Page[User]{}, err
	}
	return pageOf(rows, page.Limit, func(u User) int64 { return u.Seq }), nil
}

// Lock locks the user and ends all of their sessions in one transaction; the
// authentication query also refuses locked users, so nothing they hold works
// from the next request on. Locking a locked user is a no-op. Errors:
// KindNotFound, KindConflict (an admin cannot lock their own account).
func (a *AdminUsers) Lock(ctx context.Context, userID string) error {
	if !ValidID(userID) {
		return ErrNotFound
	}
	if userID == a.actor.UserID {
		return E(KindConflict, "You cannot lock your own account.")
	}
	t := now()
	err := a.db.tx(ctx, func(q q) error {
		if err := q.execOne(ctx, `UPDATE users SET locked_at = COALESCE(locked_at, ?), updated_at = ? WHERE id = ?`, t, t, userID); err != nil {
			return err
		}
		_, err := q.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return err
	}
	a.db.revokeSessions(ctx, revokeUser, userID)
	return nil
}

// Unlock lifts a lock; the user must log in again. It returns the user, so
// that the caller can also clear their failed-login count. Errors:
// KindNotFound.
func (a *AdminUsers) Unlock(ctx context.Context, userID string) (User, error) {
	if !ValidID(userID) {
		return User{}, ErrNotFound
	}
	var u User
	err := a.db.q().get(ctx, &u, `
		UPDATE users SET locked_at = NULL, updated_at = ? WHERE id = ?
		RETURNING seq, id, email, display_name, role, locked_at, created_at, updated_at`, now(), userID)
	return u, err
}

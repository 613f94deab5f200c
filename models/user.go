package models

import (
	"net/mail"
	"time"
)

// User is an account. Its password hash stays inside this package.
type User struct {
	Seq         int64      `db:"seq"` // internal ordering key; never exposed
	ID          string     `db:"id"`
	Email       string     `db:"email"`
	DisplayName string     `db:"display_name"`
	Role        Role       `db:"role"`
	LockedAt    *time.Time `db:"locked_at"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
}

// Locked reports whether an admin has locked the account.
func (u User) Locked() bool { return u.LockedAt != nil }

// EmailMaxLength is the longest accepted e-mail address (RFC 5321 path limit).
const EmailMaxLength = 254

// ValidEmail reports whether s is a plain addr-spec ("local@domain"), without
// display name, comments or surrounding spaces, at most 254 bytes long.
func ValidEmail(s string) bool {
	if len(s) == 0 || len(s) > EmailMaxLength || HasControl(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

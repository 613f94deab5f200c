package models

import (
	"time"

	"github.com/google/uuid"
)

// NewID returns a new random (version 4) UUID in canonical lower-case form.
// IDs are unguessable as defence in depth; ownership checks do not rely on it.
func NewID() (string, error) {
	id, err := uuid.NewRandom() // crypto/rand
	if err != nil {
		return "", Internal(err)
	}
	return id.String(), nil
}

// ValidID reports whether s is a UUID in canonical form (36 characters,
// lower-case hex, hyphens in place). Anything else, braces, URN prefixes
// and upper case included, is not an ID of ours: callers answer 404.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// now is the time stamp written to the database: UTC, truncated to the
// microsecond so that both dialects return exactly what was written.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

package models

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// RedactedText is what every printed, logged or encoded form of a Secret
// shows, and what the server's log puts in place of a credential.
const RedactedText = "[REDACTED]"

// Secret holds a credential in memory (a password, a key, a connection
// string with a password) so that it cannot be printed by accident: its
// String, GoString, fmt (every verb: %v %+v %#v %s %q %x %d ...), JSON, text
// and slog forms are all "[REDACTED]". Reveal is the one way to the value,
// and it is meant to be called only where the value is used (to dial, to
// sign, to compare), never where it is shown.
//
// The value sits behind a pointer: fmt cannot call methods on a Secret kept
// in an unexported field of another struct and prints such fields by
// reflection, but a pointer below the top level it prints as an address,
// never following it. The zero Secret is empty.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// NewSecretBytes returns a Secret holding a copy of b (key material).
func NewSecretBytes(b []byte) Secret { return NewSecret(string(b)) }

// Reveal returns the secret value. Use it only to hand the value to the
// code that needs it, never to show or log it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// RevealBytes returns a fresh copy of the secret value as bytes.
func (s Secret) RevealBytes() []byte { return []byte(s.Reveal()) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// Equal reports whether s and t hold the same value, in constant time.
func (s Secret) Equal(t Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(t.Reveal())) == 1
}

// String returns "[REDACTED]".
func (Secret) String() string { return RedactedText }

// GoString returns "[REDACTED]", for %#v.
func (Secret) GoString() string { return RedactedText }

// Format prints "[REDACTED]" for every verb and flag, quoted for %q, so that
// not even %x or %d reaches the value by reflection.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", RedactedText)
		return
	}
	_, _ = f.Write([]byte(RedactedText))
}

// MarshalJSON returns the JSON string "[REDACTED]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + RedactedText + `"`), nil }

// MarshalText returns "[REDACTED]" (encoding.TextMarshaler: slog's text
// handler, XML, YAML encoders).
func (Secret) MarshalText() ([]byte, error) { return []byte(RedactedText), nil }

// LogValue returns "[REDACTED]" (slog.LogValuer).
func (Secret) LogValue() slog.Value { return slog.StringValue(RedactedText) }

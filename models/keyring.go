package models

import (
	"errors"
	"sync/atomic"
)

// KeyMinLength is the shortest key a KeyRing holds: 256 bits.
const KeyMinLength = 32

// KeyRing holds a MAC key as it rotates: the current key, which signs, and
// during the overlap after a rotation the previous one, which still
// verifies what was signed before. The pair is swapped as a whole, so a
// reader never sees the new current key with the old key as "previous"
// half-written. A KeyRing is safe for concurrent use; both keys are
// Secrets, printed as [REDACTED].
type KeyRing struct {
	keys atomic.Pointer[keyPair]
}

type keyPair struct {
	current, previous Secret
}

// NewKeyRing returns a ring signing with current; previous (nil: none) is
// the key that signed before the last rotation. Each key must be at least
// KeyMinLength bytes.
func NewKeyRing(current, previous []byte) (*KeyRing, error) {
	r := &KeyRing{}
	if err := r.Set(current, previous); err != nil {
		return nil, err
	}
	return r, nil
}

// Set replaces both keys at once (a rotation). It refuses a key shorter
// than KeyMinLength and leaves the ring as it was.
func (r *KeyRing) Set(current, previous []byte) error {
	if len(current) < KeyMinLength {
		return errors.New("the current key must be at least 32 bytes")
	}
	if previous != nil && len(previous) < KeyMinLength {
		return errors.New("the previous key must be at least 32 bytes")
	}
	p := &keyPair{current: NewSecretBytes(current)}
	// A previous key equal to the current one verifies nothing more.
	if previous != nil && string(previous) != string(current) {
		p.previous = NewSecretBytes(previous)
	}
	r.keys.Store(p)
	return nil
}

// Current returns the key that signs (the zero Secret for a ring that was
// never Set).
func (r *KeyRing) Current() Secret { return r.load().current }

// Previous returns the key that signed before the last rotation, or the
// zero Secret when there is none.
func (r *KeyRing) Previous() Secret { return r.load().previous }

func (r *KeyRing) load() *keyPair {
	if p := r.keys.Load(); p != nil {
		return p
	}
	return &keyPair{}
}

// verifiers returns the keys that verify, current first.
func (r *KeyRing) verifiers() []Secret {
	p := r.load()
	if p.previous.IsZero() {
		return []Secret{p.current}
	}
	return []Secret{p.current, p.previous}
}

package models

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// sealPrefix marks the format of a sealed value: AES-256-GCM, a random
// 96-bit nonce, base64url without padding.
const sealPrefix = "v1."

// sealInfo separates the sealing key from any other use of the same
// secret (HKDF's info).
const sealInfo = "rampart webhook secret sealing v1"

// Sealer encrypts small values kept in the database (webhook signing
// secrets) under a rotating KeyRing. Each value is bound to the row it
// belongs to (associated data), so a sealed value copied into another row
// does not open. After a rotation, values sealed with the previous key
// still open, and Open says so, so that they can be sealed again.
type Sealer struct {
	keys *KeyRing
}

// NewSealer returns a Sealer over keys (each at least KeyMinLength bytes).
func NewSealer(keys *KeyRing) (*Sealer, error) {
	if keys == nil || keys.Current().IsZero() {
		return nil, errors.New("sealer: a key ring with a current key is required")
	}
	return &Sealer{keys: keys}, nil
}

func aead(key Secret) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key.RevealBytes(), nil, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plain for the row named by bound.
func (s *Sealer) Seal(plain, bound string) (string, error) {
	a, err := aead(s.keys.Current())
	if err != nil {
		return "", Internal(err)
	}
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", Internal(err)
	}
	out := a.Seal(nonce, nonce, []byte(plain), []byte(bound))
	return sealPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// errUnsealable is returned for a value no key of the ring opens (a
// tampered or moved value, or one sealed before two rotations).
var errUnsealable = errors.New("sealed value does not open with the current or the previous key")

// Open decrypts a value sealed for bound. stale reports that it was sealed
// with the previous key and should be sealed again.
func (s *Sealer) Open(sealed, bound string) (plain string, stale bool, err error) {
	raw, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", false, Internal(errUnsealable)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", false, Internal(errUnsealable)
	}
	for i, key := range s.keys.verifiers() {
		a, err := aead(key)
		if err != nil {
			return "", false, Internal(err)
		}
		if len(b) < a.NonceSize() {
			break
		}
		p, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], []byte(bound))
		if err == nil {
			return string(p), i > 0, nil
		}
	}
	return "", false, Internal(errUnsealable)
}

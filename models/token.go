package models

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Token prefixes make our credentials recognisable, to the server (which
// store to look in) and to secret scanners (a leaked token is easy to find).
const (
	SessionTokenPrefix = "rps_"
	tokenRandomBytes   = 32 // 256 bits from crypto/rand
	tokenEncodedLen    = 43 // base64url without padding of 32 bytes
)

// newToken returns prefix + 256 random bits, base64url-encoded, and the
// SHA-256 hash that is all the server stores. A plain (unsalted) hash is
// enough for a secret of this entropy: it cannot be brute-forced, and it
// keeps lookups to one indexed equality.
func newToken(prefix string) (token string, hash []byte, err error) {
	b := make([]byte, tokenRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, Internal(err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of a token, the form in which tokens are
// stored and looked up.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormedToken reports whether token has the prefix and the exact shape
// we issue, so that garbage is rejected before any database work.
func wellFormedToken(token, prefix string) bool {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(rest) != tokenEncodedLen {
		return false
	}
	// Even strict decoding skips '\r' and '\n', so a token with a line
	// break in place of a character would decode; only the exact text that
	// re-encoding gives back is a token of ours.
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && base64.RawURLEncoding.EncodeToString(b) == rest
}

package models

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// PageRequest asks for one page of a list: at most Limit items that come
// after the item with ordering key After (0: from the start).
type PageRequest struct {
	Limit int
	After int64
}

// Page is one page of a list. Next is the ordering key to continue after, or
// 0 when this is the last page. Keys are internal; the HTTP layer turns them
// into signed, opaque cursors.
type Page[T any] struct {
	Items []T
	Next  int64
}

// pageOf trims rows fetched with limit+1 to one page and sets Next.
func pageOf[T any](rows []T, limit int, key func(T) int64) Page[T] {
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
		return Page[T]{Items: rows, Next: key(rows[len(rows)-1])}
	}
	if rows == nil {
		rows = []T{}
	}
	return Page[T]{Items: rows}
}

// CursorCodec turns page positions into opaque cursors and back. A cursor is
// bound by HMAC-SHA256 to the list it came from (its scope, e.g. one user's
// projects), so it cannot be edited, forged, or replayed against another
// list or another user's list.
//
// Its keys are a KeyRing: cursors are signed with the current key, and a
// cursor signed with the previous key still decodes, so a key rotation does
// not break the pages clients are in the middle of. Once the previous key
// is dropped (the next rotation), cursors it signed are refused like any
// other invalid cursor.
type CursorCodec struct {
	keys *KeyRing // printed as [REDACTED], like every key
}

// CursorKeyMinLength is the shortest accepted cursor key: 256 bits.
const CursorKeyMinLength = KeyMinLength

const (
	cursorVersion = 1
	cursorMACLen  = 16 // 128-bit tag: forging one is out of reach
	cursorLen     = 1 + 8 + cursorMACLen
)

// NewCursorCodec returns a codec signing with key (at least 32 bytes of
// secret randomness) and no previous key.
func NewCursorCodec(key []byte) (*CursorCodec, error) {
	if len(key) < CursorKeyMinLength {
		return nil, errors.New("cursor key must be at least 32 bytes")
	}
	ring, err := NewKeyRing(key, nil)
	if err != nil {
		return nil, err
	}
	return &CursorCodec{keys: ring}, nil
}

// NewCursorCodecWithKeys returns a codec using keys, which its owner
// rotates with KeyRing.Set while the codec is in use.
func NewCursorCodecWithKeys(keys *KeyRing) (*CursorCodec, error) {
	if keys == nil || keys.keys.Load() == nil {
		return nil, errors.New("cursor codec: no keys")
	}
	return &CursorCodec{keys: keys}, nil
}

func cursorMAC(key Secret, scope string, after int64) []byte {
	m := hmac.New(sha256.New, key.RevealBytes())
	m.Write([]byte("rampart-cursor-v1\x00"))
	m.Write([]byte(scope))
	m.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(after)) // #nosec G115 -- bit-for-bit reinterpretation, inverted by Decode
	m.Write(b[:])
	return m.Sum(nil)[:cursorMACLen]
}

// Encode returns the cursor for continuing the list scope after position
// after, signed with the current key.
func (c *CursorCodec) Encode(scope string, after int64) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(after)) // #nosec G115 -- bit-for-bit reinterpretation, inverted by Decode
	b = append(b, cursorMAC(c.keys.Current(), scope, after)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode checks a cursor against scope and returns its position. Any change
// to the cursor, or a cursor from another list, is KindMalformed. A cursor
// signed with the current or the previous key is accepted.
func (c *CursorCodec) Decode(scope, cursor string) (int64, error) {
	bad := &Error{Kind: KindMalformed, Detail: "The cursor is not valid for this list.",
		Fields: []FieldError{{Field: "cursor", Message: "is not a cursor issued for this list"}}}
	if len(cursor) > 64 {
		return 0, bad
	}
	// Even strict decoding skips '\r' and '\n'; only the exact text that
	// Encode wrote is a cursor, so re-encoding must give it back.
	b, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion || base64.RawURLEncoding.EncodeToString(b) != cursor {
		return 0, bad
	}
	after := int64(binary.BigEndian.Uint64(b[1:9])) // #nosec G115 -- values above MaxInt64 turn negative and are refused just below
	if after <= 0 {
		return 0, bad
	}
	for _, key := range c.keys.verifiers() {
		if hmac.Equal(b[9:], cursorMAC(key, scope, after)) {
			return after, nil
		}
	}
	return 0, bad
}

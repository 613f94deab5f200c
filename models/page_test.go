package models_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
)

const (
	scopeA = "user:11111111-1111-4111-8111-111111111111/projects"
	scopeB = "user:22222222-2222-4222-8222-222222222222/projects"
)

// cursorAlphabet is base64url, the alphabet cursors are written in.
const cursorAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func testKey(fill byte) []byte { return bytes.Repeat([]byte{fill}, models.CursorKeyMinLength) }

func newCodec(tb testing.TB, key []byte) *models.CursorCodec {
	tb.Helper()
	c, err := models.NewCursorCodec(key)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// wantMalformed fails the test unless decoding cursor for scope is refused
// as KindMalformed naming the cursor field.
func wantMalformed(tb testing.TB, c *models.CursorCodec, scope, cursor, why string) {
	tb.Helper()
	after, err := c.Decode(scope, cursor)
	if err == nil {
		tb.Errorf("%s: cursor %q decoded to %d, want it refused", why, cursor, after)
		return
	}
	e := asError(tb, err)
	if e.Kind != models.KindMalformed || len(e.Fields) != 1 || e.Fields[0].Field != "cursor" || after != 0 {
		tb.Errorf("%s: %v (fields %+v, after %d), want KindMalformed on field cursor", why, err, e.Fields, after)
	}
}

// forge builds a cursor the way the codec does, with any version byte and a
// correct MAC: only the key holder (this test) can make one.
func forge(key []byte, version byte, scope string, after int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("rampart-cursor-v1\x00"))
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(after)))
	b := append([]byte{version}, binary.BigEndian.AppendUint64(nil, uint64(after))...)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestCursorRoundTrip(t *testing.T) {
	c := newCodec(t, testKey(7))
	for _, after := range []int64{1, 2, 42, 1 << 32, math.MaxInt64} {
		cursor := c.Encode(scopeA, after)
		if len(cursor) > 64 || strings.Trim(cursor, cursorAlphabet) != "" {
			t.Errorf("cursor %q is not short base64url", cursor)
		}
		got, err := c.Decode(scopeA, cursor)
		if err != nil || got != after {
			t.Errorf("round trip of %d: %d, %v", after, got, err)
		}
	}
	// The test's forger matches the codec, so forged cursors below differ
	// from real ones only where they mean to.
	if forge(testKey(7), 1, scopeA, 42) != c.Encode(scopeA, 42) {
		t.Fatal("forge does not build cursors the way the codec does")
	}
}

func TestCursorRejectsEveryChange(t *testing.T) {
	c := newCodec(t, testKey(7))
	cursor := c.Encode(scopeA, 123456)

	// Every other character at every position of the text.
	for i := range len(cursor) {
		for _, r := range cursorAlphabet + "+/=.~ %" {
			if byte(r) == cursor[i] {
				continue
			}
			changed := cursor[:i] + string(r) + cursor[i+1:]
			if _, err := c.Decode(scopeA, changed); err == nil {
				t.Errorf("cursor with character %d changed to %q accepted", i, r)
			}
		}
	}
	// Every bit of every byte it encodes.
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for bit := range 8 {
			b := bytes.Clone(raw)
			b[i] ^= 1 << bit
			wantMalformed(t, c, scopeA, base64.RawURLEncoding.EncodeToString(b), "flipped bit")
		}
	}
	// Cut short or extended.
	wantMalformed(t, c, scopeA, cursor[:len(cursor)-1], "one character short")
	wantMalformed(t, c, scopeA, cursor+"A", "one character more")
	wantMalformed(t, c, scopeA, base64.RawURLEncoding.EncodeToString(append(raw, 0)), "one byte more")
	wantMalformed(t, c, scopeA, base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), "one byte less")
	// The original still decodes.
	if after, err := c.Decode(scopeA, cursor); err != nil || after != 123456 {
		t.Fatalf("the unchanged cursor: %d, %v", after, err)
	}
}

func TestCursorIsBoundToItsScope(t *testing.T) {
	c := newCodec(t, testKey(7))
	cursor := c.Encode(scopeA, 10)
	for _, scope := range []string{scopeB, "", scopeA + " ", strings.ToUpper(scopeA), scopeA[:len(scopeA)-1]} {
		wantMalformed(t, c, scope, cursor, "scope "+scope)
	}
	// The NUL separator keeps scope and position apart.
	wantMalformed(t, c, "ab", forge(testKey(7), 1, "a", 10), "shifted scope boundary")
}

func TestCursorRejectsGarbage(t *testing.T) {
	key := testKey(7)
	c := newCodec(t, key)
	good := c.Encode(scopeA, 5)
	cases := map[string]string{
		"empty":                   "",
		"space":                   " ",
		"null":                    "null",
		"zero":                    "0",
		"negative":                "-1",
		"SQL":                     "' OR '1'='1",
		"padded":                  good + "==",
		"standard base64":         base64.StdEncoding.EncodeToString([]byte(good)),
		"not base64":              "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
		"percent-encoded":         strings.ReplaceAll(good, "A", "%41"),
		"with whitespace":         " " + good,
		"with newline":            good + "\n",
		"with inner line breaks":  good[:10] + "\r\n" + good[10:20] + "\n" + good[20:],
		"all zero bytes":          base64.RawURLEncoding.EncodeToString(make([]byte, 25)),
		"over-long":               strings.Repeat("A", 65),
		"very long":               strings.Repeat(good, 1000),
		"version 0":               forge(key, 0, scopeA, 5),
		"version 2":               forge(key, 2, scopeA, 5),
		"version 255":             forge(key, 255, scopeA, 5),
		"position 0":              forge(key, 1, scopeA, 0),
		"negative position":       forge(key, 1, scopeA, -1),
		"smallest int64 position": forge(key, 1, scopeA, math.MinInt64),
	}
	for name, cursor := range cases {
		wantMalformed(t, c, scopeA, cursor, name)
	}
	if c.Encode(scopeA, 5) != good {
		t.Error("encoding is not deterministic")
	}
}

func TestCursorKey(t *testing.T) {
	for _, n := range []int{0, 1, 16, models.CursorKeyMinLength - 1} {
		if c, err := models.NewCursorCodec(make([]byte, n)); err == nil || c != nil {
			t.Errorf("a %d-byte key was accepted", n)
		}
	}
	if _, err := models.NewCursorCodec(nil); err == nil {
		t.Error("a nil key was accepted")
	}
	key := testKey(7)
	c := newCodec(t, key)
	other := newCodec(t, testKey(8))
	longer := newCodec(t, append(testKey(7), 7)) // same prefix, one byte more

	cursor := c.Encode(scopeA, 99)
	wantMalformed(t, other, scopeA, cursor, "another key")
	wantMalformed(t, longer, scopeA, cursor, "a longer key")
	wantMalformed(t, c, scopeA, other.Encode(scopeA, 99), "made with another key")

	// The codec keeps its own copy of the key.
	key[0] ^= 0xff
	if after, err := c.Decode(scopeA, cursor); err != nil || after != 99 {
		t.Errorf("changing the caller's key slice changed the codec: %d, %v", after, err)
	}
}

// TestCursorCodecNeverPrintsItsKey: the key is a Secret, so no format of
// the codec shows it.
func TestCursorCodecNeverPrintsItsKey(t *testing.T) {
	key := []byte("cursor-key-that-must-never-print-0123456789")
	c, err := models.NewCursorCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, c); strings.Contains(out, "never-print") || strings.Contains(out, fmt.Sprintf("%x", key[:8])) {
			t.Errorf("%s prints the key: %s", verb, out)
		}
	}
}

// TestCursorKeyRotation: the codec signs with the current key of its ring
// and accepts cursors of the previous one, so a rotation does not break a
// client's paging; once the old key has left the ring (the next rotation),
// its cursors are refused.
func TestCursorKeyRotation(t *testing.T) {
	oldKey, newKey, newerKey := testKey(1), testKey(2), testKey(3)
	ring, err := models.NewKeyRing(oldKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := models.NewCursorCodecWithKeys(ring)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Encode(scopeA, 7)
	if before != forge(oldKey, 1, scopeA, 7) {
		t.Fatal("the codec does not sign with the ring's current key")
	}

	// Rotation: new current key, the old one kept as previous.
	if err := ring.Set(newKey, oldKey); err != nil {
		t.Fatal(err)
	}
	after := c.Encode(scopeA, 7)
	if after != forge(newKey, 1, scopeA, 7) {
		t.Error("after the rotation the codec does not sign with the new key")
	}
	for name, cursor := range map[string]string{"made before the rotation": before, "made after it": after} {
		if got, err := c.Decode(scopeA, cursor); err != nil || got != 7 {
			t.Errorf("a cursor %s: %d, %v", name, got, err)
		}
	}
	// The previous key verifies; it is not a way around the scope binding.
	wantMalformed(t, c, scopeB, before, "an old cursor for another list")
	wantMalformed(t, c, scopeA, forge(testKey(9), 1, scopeA, 7), "a cursor of a key never in the ring")

	// The next rotation drops the oldest key.
	if err := ring.Set(newerKey, newKey); err != nil {
		t.Fatal(err)
	}
	wantMalformed(t, c, scopeA, before, "a cursor of a key two rotations ago")
	if got, err := c.Decode(scopeA, after); err != nil || got != 7 {
		t.Errorf("a cursor of the previous key after a second rotation: %d, %v", got, err)
	}
}

func TestKeyRing(t *testing.T) {
	if _, err := models.NewKeyRing(make([]byte, models.KeyMinLength-1), nil); err == nil {
		t.Error("a short current key was accepted")
	}
	ring, err := models.NewKeyRing(testKey(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ring.Previous().IsZero() {
		t.Error("a new ring has a previous key")
	}
	if err := ring.Set(testKey(2), make([]byte, 5)); err == nil {
		t.Error("a short previous key was accepted")
	}
	if !bytes.Equal(ring.Current().RevealBytes(), testKey(1)) {
		t.Error("a refused Set changed the ring")
	}
	if err := ring.Set(testKey(2), testKey(2)); err != nil || !ring.Previous().IsZero() {
		t.Errorf("a previous key equal to the current one: %v, previous kept", err)
	}
	if _, err := models.NewCursorCodecWithKeys(nil); err == nil {
		t.Error("a codec without keys was made")
	}
	if _, err := models.NewCursorCodecWithKeys(&models.KeyRing{}); err == nil {
		t.Error("a codec with an empty ring was made")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		if out := fmt.Sprintf(verb, ring); strings.Contains(out, string(testKey(2))) || strings.Contains(out, fmt.Sprintf("%x", testKey(2))) {
			t.Errorf("%s of a KeyRing prints the key: %s", verb, out)
		}
	}
}

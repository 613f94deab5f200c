package models_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// FuzzTokenParsing feeds the credential parsers arbitrary text:
// IsSessionToken and IsAPIKey, which decide whether a bearer credential
// is worth a database lookup, and Accounts.Authenticate behind them over a
// real (SQLite) database. Whatever comes in, nothing panics; a credential
// of ours has exactly the issued shape (its prefix, then the canonical
// unpadded base64url of 32 bytes); and an unknown credential is
// KindUnauthenticated, never an internal error. The seed corpus is
// testdata/fuzz/FuzzTokenParsing.
func FuzzTokenParsing(f *testing.F) {
	for _, seed := range []string{
		"rps_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"rpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"rps_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", // not canonical: the last character's spare bits are set
		"rpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"rps_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"rps_" + strings.Repeat("/", 43),
		"RPS_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"rpk_",
		"",
		"rps_' OR '1'='1",
	} {
		f.Add(seed)
	}
	accounts := newAccounts(f, dbtest.Open(f, models.SQLite))
	f.Fuzz(func(t *testing.T, token string) {
		for _, c := range []struct {
			prefix string
			is     func(string) bool
		}{
			{models.SessionTokenPrefix, models.IsSessionToken},
			{models.APIKeyPrefix, models.IsAPIKey},
		} {
			if !c.is(token) {
				continue
			}
			rest, ok := strings.CutPrefix(token, c.prefix)
			if !ok || len(rest) != 43 {
				t.Fatalf("%q accepted with prefix %s and %d characters", token, c.prefix, len(rest))
			}
			b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
			if err != nil || len(b) != 32 || base64.RawURLEncoding.EncodeToString(b) != rest {
				t.Fatalf("%q accepted, but it is not the canonical base64url of 32 bytes", token)
			}
		}
		if models.IsSessionToken(token) && models.IsAPIKey(token) {
			t.Fatalf("%q is both a session token and an API key", token)
		}
		if _, err := accounts.Authenticate(context.Background(), token); models.KindOf(err) != models.KindUnauthenticated {
			t.Fatalf("Authenticate(%q) = %v, want an unauthenticated error", token, err)
		}
	})
}

// FuzzCursorDecode feeds the cursor codec arbitrary cursors and scopes.
// Decoding never panics; it accepts exactly the cursors the codec issues
// for that scope (a decoded cursor re-encodes to itself), refuses a
// cursor for any other scope, and every position round-trips. The seed
// corpus is testdata/fuzz/FuzzCursorDecode.
func FuzzCursorDecode(f *testing.F) {
	c := newCodec(f, testKey(7))
	for _, seed := range []struct {
		scope, cursor string
		after         int64
	}{
		{scopeA, c.Encode(scopeA, 1), 1},
		{scopeA, c.Encode(scopeB, 42), 42},
		{scopeB, c.Encode(scopeB, 1<<62), 1 << 62},
		{scopeA, "", 0},
		{scopeA, "AQAAAAAAAAAB", -1},
		{"", c.Encode("", 5), 5},
		{scopeA, c.Encode(scopeA, 9) + "=", 9},
		{scopeA, strings.ToUpper(c.Encode(scopeA, 9)), 9},
	} {
		f.Add(seed.scope, seed.cursor, seed.after)
	}
	f.Fuzz(func(t *testing.T, scope, cursor string, after int64) {
		got, err := c.Decode(scope, cursor)
		if err == nil {
			if got <= 0 {
				t.Fatalf("Decode(%q) = %d, a position that is never issued", cursor, got)
			}
			if again := c.Encode(scope, got); again != cursor {
				t.Fatalf("Decode accepted %q, which the codec would write as %q", cursor, again)
			}
			if _, err := c.Decode(scope+"x", cursor); err == nil {
				t.Fatalf("the cursor %q of scope %q is accepted for another scope", cursor, scope)
			}
		} else if models.KindOf(err) != models.KindMalformed {
			t.Fatalf("Decode refused %q with %v, want a malformed-request error", cursor, err)
		}
		if after > 0 {
			if got, err := c.Decode(scope, c.Encode(scope, after)); err != nil || got != after {
				t.Fatalf("the position %d does not round-trip: %d, %v", after, got, err)
			}
		}
	})
}

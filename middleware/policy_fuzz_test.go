package middleware

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
)

// FuzzBearerToken feeds the Authorization header parser arbitrary header
// values (one, or two when second is set). It never panics; a refusal is
// KindUnauthenticated; an accepted token came from exactly one header of
// the form "Bearer <token>" (scheme in any case, one space), is at most
// maxTokenLength long and made of RFC 6750 b64token characters only, so
// nothing else (spaces, quotes, control characters, a second credential)
// ever reaches the token lookup. The seed corpus is
// testdata/fuzz/FuzzBearerToken.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []struct {
		first, second string
		two           bool
	}{
		{"Bearer rps_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", false},
		{"bearer rpk_abc-_~+/=", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer  token", "", false},
		{"Bearer a b", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearer \"quoted\"", "", false},
		{"Bearer tok\x00en", "", false},
		{"Bearer tok\r\nX-Injected: 1", "", false},
		{"Bearer " + strings.Repeat("A", 513), "", false},
		{"Bearer one", "Bearer two", true},
	} {
		f.Add(seed.first, seed.second, seed.two)
	}
	f.Fuzz(func(t *testing.T, first, second string, two bool) {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Add("Authorization", first)
		if two {
			r.Header.Add("Authorization", second)
		}
		token, err := bearerToken(r)
		if err != nil {
			if models.KindOf(err) != models.KindUnauthenticated {
				t.Fatalf("refusal of kind %v: %v", models.KindOf(err), err)
			}
			return
		}
		if two {
			t.Fatalf("accepted %q from two Authorization headers", token)
		}
		scheme, rest, ok := strings.Cut(first, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || rest != token {
			t.Fatalf("accepted %q from the header %q", token, first)
		}
		if token == "" || len(token) > maxTokenLength {
			t.Fatalf("accepted a token of %d bytes", len(token))
		}
		for _, c := range token {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=", c) {
				t.Fatalf("accepted a token with the character %q", c)
			}
		}
	})
}

package middleware

import "testing"

func TestAccepts(t *testing.T) {
	t.Parallel()
	const html = "text/html; charset=utf-8"
	for _, c := range []struct {
		header, mediaType string
		want              bool
	}{
		// Admitted: exact, by type, any; parameters of the offered type
		// (charset) are not part of the match.
		{"application/json", "application/json", true},
		{"text/html", html, true},
		{"text/html; charset=utf-8", html, true},
		{"text/html;level=1", html, true},
		{"text/*", html, true},
		{"*/*", html, true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", html, true},
		{"image/png, application/json;q=0.5", "application/json", true},
		{"APPLICATION/JSON", "application/json", true},

		// Refused: other types, quality zero, malformed ranges only.
		{"text/html", "application/json", false},
		{"application/json", html, false},
		{"application/problem+json", "application/json", false},
		{"application/json;q=0", "application/json", false},
		{"*/*;q=0", "application/json", false},
		{"text/*", "application/json", false},
		{"application/json;q=abc", "application/json", false},
		// The most specific matching range decides (RFC 9110 §12.5.1).
		{"application/json;q=0, */*", "application/json", false},
		{"text/html;q=0, text/*", html, false},
		{"application/*;q=0, application/json", "application/json", true},
		{"*/*;q=0, application/json;q=0.1", "application/json", true},
		{"nonsense", "application/json", false},
		{"", "application/json", false},
	} {
		if got := Accepts(c.header, c.mediaType); got != c.want {
			t.Errorf("Accepts(%q, %q) = %v, want %v", c.header, c.mediaType, got, c.want)
		}
	}
}

package models

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
)

// Credentials recognised inside string values.
var (
	// Our own tokens: session tokens and API keys, whole or in part.
	ourTokenRE = regexp.MustCompile(`rp[sk]_[A-Za-z0-9_-]+`)
	// "Bearer <token>" (RFC 6750 b64token), in a header value or a message.
	bearerRE = regexp.MustCompile(`(?i)\bbearer(?:\s+|%20|\+)[A-Za-z0-9\-._~+/]+=*`)
	// "Basic <base64 of user:password>".
	basicRE = regexp.MustCompile(`(?i)\bbasic\s+([A-Za-z0-9+/]{4,}={0,2})`)
	// scheme://userinfo@: the userinfo runs to the last '@' of the URL, as
	// net/url reads it, so a password holding '@' is caught whole.
	urlUserinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)([^\s"'<>\\]*)@`)
	// name=value and name:value where name ends in a credential word:
	// query strings (?password=, &sslpassword=), libpq DSNs
	// ("password='x y'"), Go's %+v of a struct ({Password:x}).
	assignRE = regexp.MustCompile(`(?i)\b([A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api_?key|apikey)(?:=\s*|\s+=\s*|:))` +
		`('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,)}\]"']+)`)
	// "name": "value" JSON fields inside a string, e.g. a logged body.
	jsonFieldRE = regexp.MustCompile(`(?i)("[^"\\]*(?:password|passwd|secret|token|api_?key|apikey|authorization|cookie)[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"`)
)

// RedactCredentials rewrites every credential it recognises in s: the
// application log applies it to every string, the audit trail to the
// free text a client controls (its user agent). Cheap
// checks for each expression's markers skip it for the common value that
// holds none of them (a route, a request id, an address).
func RedactCredentials(s string) string {
	if !mayHoldCredential(s) {
		return s
	}
	if strings.Contains(s, "rps_") || strings.Contains(s, "rpk_") {
		s = ourTokenRE.ReplaceAllStringFunc(s, func(m string) string { return m[:4] + RedactedText })
	}
	if containsFold(s, "bearer") {
		s = bearerRE.ReplaceAllStringFunc(s, func(m string) string { return m[:len("bearer")] + " " + RedactedText })
	}
	if containsFold(s, "basic") {
		s = basicRE.ReplaceAllStringFunc(s, func(m string) string {
			cred := basicRE.FindStringSubmatch(m)[1]
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
				if b, err := enc.DecodeString(cred); err == nil && bytes.IndexByte(b, ':') >= 0 {
					return m[:len("basic")] + " " + RedactedText
				}
			}
			return m
		})
	}
	if strings.Contains(s, "://") && strings.Contains(s, "@") {
		s = urlUserinfoRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := urlUserinfoRE.FindStringSubmatch(m)
			user, _, hasPassword := strings.Cut(sub[2], ":")
			if !hasPassword {
				return m
			}
			return sub[1] + user + ":xxxxx@"
		})
	}
	if strings.ContainsAny(s, "=:") && (containsFold(s, "pass") || containsFold(s, "pwd") || containsFold(s, "secret") ||
		containsFold(s, "token") || containsFold(s, "key") || containsFold(s, "authorization") || containsFold(s, "cookie")) {
		s = assignRE.ReplaceAllString(s, "${1}"+RedactedText)
		s = jsonFieldRE.ReplaceAllString(s, `${1}"`+RedactedText+`"`)
	}
	return s
}

// mayHoldCredential reports whether s has a byte that one of the
// expressions above needs: '_' (our tokens), white space, '%' or '+'
// (after "Bearer"; "Basic" needs white space), ':' (a URL's scheme, a
// "name:" or a JSON field) or '='.
// Most values logged or audited -- IDs, request IDs, addresses, a plain
// user agent -- have none, and skip the expressions' checks in one pass.
func mayHoldCredential(s string) bool {
	for i := 0; i < len(s); i++ {
		if credentialByte[s[i]] {
			return true
		}
	}
	return false
}

// credentialByte holds the bytes mayHoldCredential looks for: the
// expressions' \s is RE2's [\t\n\f\r ]; \v is added to be safe.
var credentialByte = func() (t [256]bool) {
	for _, c := range []byte("_%+:= \t\n\v\f\r") {
		t[c] = true
	}
	return t
}()

// containsFold reports whether s contains the lower-case ASCII word in any
// case, without allocating.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for j < len(word) && s[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/rampart-go/rampart/models"
)

// Caps on what one log record can hold (SECURITY-BASELINE §11: "cap field
// lengths"). A string value longer than its cap is cut at a character
// boundary and marked; a structured value whose JSON is longer than
// logAnyMax is logged as a capped string instead.
const (
	logValueMax = 1 << 10  // a string value and the message
	logAnyMax   = 8 << 10  // a structured value (slices, maps, structs), as JSON
	logStackMax = 16 << 10 // a panic's stack trace ("stack")
)

// logTruncated marks a value that was cut at its cap.
const logTruncated = "…[truncated]"

// newLogHandler returns the handler of the server's log: one JSON object
// per line on w, at level and above. Before the JSON encoder sees an
// attribute (the message included), the handler
//
//   - replaces the value of every attribute whose key names a credential
//     (Authorization, Cookie, password, secret, token, API key, key
//     material, DSN, database or Redis URL ...; case-insensitive, at any
//     depth: inside groups, under a group so named, and as a key of a
//     logged map or struct) with "[REDACTED]";
//   - rewrites credentials found inside any string value: our session
//     tokens (rps_...) and API keys (rpk_...), Bearer and Basic
//     credentials, the password of a URL (scheme://user:xxxxx@host),
//     password=..., secret=..., token=... assignments and "password": "..."
//     JSON fields;
//   - escapes the control and format characters the JSON encoder passes
//     through (DEL, C1 controls such as NEL, bidirectional overrides) as
//     \uXXXX text; the encoder itself escapes CR, LF and the other C0
//     controls, so a value can never start a line of its own;
//   - caps every value (logValueMax, logAnyMax, logStackMax), so that a
//     record is one line of bounded size.
//
// Errors are logged as their text, redacted alike; []byte values, which
// could be key material, are not logged at all.
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr})
}

// redactAttr is the handler's ReplaceAttr: the JSON handler calls it for
// every attribute that is not a group (group members are passed with the
// names of the groups they are in), and for the built-in message.
func redactAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && builtinAttr(a) {
		return a
	}
	if credentialKey(a.Key) || slicesAny(groups, credentialKey) {
		return slog.String(a.Key, models.RedactedText)
	}
	max := logValueMax
	if strings.EqualFold(a.Key, "stack") || strings.EqualFold(a.Key, "stacktrace") {
		max = logStackMax
	}
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(cleanLogString(a.Value.String(), max))
	case slog.KindAny:
		a.Value = cleanLogAny(a.Value.Any())
	}
	return a
}

// builtinAttr reports whether a is the record's time, level or source,
// which the handler writes as they are. The message goes through the
// redaction like any value.
func builtinAttr(a slog.Attr) bool {
	switch a.Key {
	case slog.TimeKey:
		return a.Value.Kind() == slog.KindTime
	case slog.LevelKey:
		_, ok := a.Value.Any().(slog.Level)
		return a.Value.Kind() == slog.KindAny && ok
	case slog.SourceKey:
		_, ok := a.Value.Any().(*slog.Source)
		return a.Value.Kind() == slog.KindAny && ok
	}
	return false
}

func slicesAny(s []string, f func(string) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// Attribute keys that name a credential. A key is compared in lower case
// with everything but letters and digits removed, so "Set-Cookie",
// "set_cookie" and "SetCookie" are one key.
var (
	// credentialWords make a key a credential wherever they occur in it
	// ("X-Api-Key", "client_secret", "password_hash", "session_token").
	credentialWords = []string{
		"authorization", "cookie", "password", "passwd", "passphrase", "secret", "token",
		"apikey", "accesskey", "privatekey", "signingkey", "credential", "bearer",
		"dsn", "databaseurl", "redisurl", "connectionstring", "connstr", "sessionid",
	}
	// credentialNames are credentials as whole keys only.
	credentialNames = map[string]bool{"key": true, "keys": true, "pwd": true, "pass": true, "auth": true, "otp": true, "sid": true}
	// metadataSuffixes mark a key that is about a credential without
	// holding it ("api_key_id", "token_type", "secret_name", "key_prefix").
	// Names in credentialNames and "sessionid" are credentials anyway.
	metadataSuffixes = []string{"id", "ids", "prefix", "type", "kind", "name", "count", "length", "len"}

	credentialWordBytes = func() [][]byte {
		out := make([][]byte, len(credentialWords))
		for i, w := range credentialWords {
			out[i] = []byte(w)
		}
		return out
	}()
)

// credentialKey reports whether an attribute (or map) key names a
// credential: its value is then never logged. Attribute keys are nearly
// always constants of the code, so answers are kept, up to a bound (keys of
// logged maps may come from anywhere).
func credentialKey(key string) bool {
	if v, ok := credentialKeys.Load(key); ok {
		return v.(bool)
	}
	yes := isCredentialKey(key)
	if credentialKeysKept.Add(1) <= credentialKeysMax {
		credentialKeys.Store(key, yes)
	}
	return yes
}

var (
	credentialKeys     sync.Map // key -> credentialKey(key)
	credentialKeysKept atomic.Int64
)

const credentialKeysMax = 4096

func isCredentialKey(key string) bool {
	var buf [64]byte
	k := normalizeKey(key, buf[:0])
	if len(k) == 0 {
		return false
	}
	if credentialNames[string(k)] || bytes.HasSuffix(k, []byte("sessionid")) {
		return true
	}
	for _, suffix := range metadataSuffixes {
		if len(k) > len(suffix) && string(k[len(k)-len(suffix):]) == suffix {
			return false
		}
	}
	for _, w := range credentialWordBytes {
		if bytes.Contains(k, w) {
			return true
		}
	}
	// Key material: "cursor_key", "hmac_key", "encryption_key".
	return bytes.HasSuffix(k, []byte("key"))
}

// normalizeKey appends key to dst in lower case, letters and digits only.
func normalizeKey(key string, dst []byte) []byte {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			dst = append(dst, c)
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+('a'-'A'))
		}
	}
	return dst
}

// cleanLogString redacts s, escapes the characters the JSON encoder would
// pass through unescaped, and caps it at max bytes.
func cleanLogString(s string, max int) string {
	return capLogString(escapeLogControls(models.RedactCredentials(s)), max)
}

// escapeLogControls writes DEL, the C1 controls (NEL, CSI ...) and Unicode
// format characters (bidirectional overrides, zero-width spaces) as \uXXXX
// text. CR, LF and the other C0 controls are left to the JSON encoder,
// which escapes them; invalid UTF-8 becomes U+FFFD there too.
func escapeLogControls(s string) string {
	odd := func(r rune) bool {
		return r == 0x7f || (0x80 <= r && r <= 0x9f) ||
			(unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d')
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii || strings.IndexFunc(s, odd) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if odd(r) {
			fmt.Fprintf(&b, `\u%04X`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// capLogString cuts s to at most max bytes at a character boundary and
// marks the cut.
func capLogString(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + logTruncated
}

// cleanLogAny turns a structured value into something safe to log: an
// error into its redacted text, bytes into nothing, anything else into its
// JSON (what the JSON handler would write), walked so that credential keys
// and string values are redacted like attributes.
func cleanLogAny(v any) slog.Value {
	switch x := v.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(cleanLogString(x.Error(), logValueMax))
	case []byte:
		return slog.StringValue(models.RedactedText)
	case fmt.Formatter, fmt.Stringer:
		// A type that prints itself (models.Secret, Config) but has no
		// JSON form of its own would be encoded field by field; its own
		// printed form is what it means to show.
		if _, ok := v.(json.Marshaler); !ok {
			return slog.StringValue(cleanLogString(fmt.Sprint(v), logValueMax))
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return slog.StringValue(cleanLogString("!ERROR:"+err.Error(), logValueMax))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return slog.StringValue(cleanLogString("!ERROR:"+err.Error(), logValueMax))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cleanLogTree(tree)); err != nil {
		return slog.StringValue(cleanLogString("!ERROR:"+err.Error(), logValueMax))
	}
	js := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if len(js) > logAnyMax {
		return slog.StringValue(capLogString(string(js), logAnyMax))
	}
	return slog.AnyValue(json.RawMessage(js))
}

// cleanLogTree redacts a decoded JSON value in place: the values of
// credential keys, and every string.
func cleanLogTree(v any) any {
	switch x := v.(type) {
	case string:
		return cleanLogString(x, logValueMax)
	case []any:
		for i := range x {
			x[i] = cleanLogTree(x[i])
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if credentialKey(k) {
				out[cleanLogString(k, logValueMax)] = models.RedactedText
				continue
			}
			out[cleanLogString(k, logValueMax)] = cleanLogTree(e)
		}
		return out
	}
	return v
}

package models_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
)

// secretValue is the credential these tests hide; no output may show it,
// nor its hexadecimal or decimal spelling.
const secretValue = "hunter2-Zebra-Quartz-77"

// wantHidden fails when out shows the secret in any spelling fmt could
// produce.
func wantHidden(t *testing.T, what, out string) {
	t.Helper()
	for _, form := range []string{secretValue, fmt.Sprintf("%x", secretValue), fmt.Sprintf("%X", secretValue),
		fmt.Sprint([]byte(secretValue)), "hunter2"} {
		if strings.Contains(out, form) {
			t.Errorf("%s shows the secret: %s", what, out)
			return
		}
	}
}

func TestSecretReveal(t *testing.T) {
	s := models.NewSecret(secretValue)
	if s.Reveal() != secretValue || string(s.RevealBytes()) != secretValue || s.IsZero() {
		t.Errorf("Reveal = %q, IsZero = %v; want the value", s.Reveal(), s.IsZero())
	}
	var zero models.Secret
	if zero.Reveal() != "" || !zero.IsZero() || !models.NewSecret("").IsZero() {
		t.Errorf("the zero Secret is not empty")
	}
	if !s.Equal(models.NewSecret(secretValue)) || s.Equal(zero) {
		t.Errorf("Equal compares wrongly")
	}

	// NewSecretBytes copies: wiping the caller's buffer leaves the secret,
	// and RevealBytes hands out a copy that cannot change it.
	b := []byte(secretValue)
	sb := models.NewSecretBytes(b)
	clear(b)
	out := sb.RevealBytes()
	out[0] = 'X'
	if sb.Reveal() != secretValue {
		t.Errorf("the Secret changed with a caller's buffer: %q", sb.Reveal())
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := models.NewSecret(secretValue)
	// holder keeps Secrets where fmt cannot call their methods (unexported
	// fields) as well as where it can.
	type holder struct {
		Exported   models.Secret
		unexported models.Secret
		ptr        *models.Secret
	}
	h := holder{Exported: s, unexported: s, ptr: &s}

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%-20v", "%#q", "%T"} {
		for name, arg := range map[string]any{
			"value": s, "pointer": &s, "slice": []models.Secret{s}, "map": map[string]models.Secret{"k": s},
			"struct": h, "struct pointer": &h, "interface slice": []any{s},
		} {
			out := fmt.Sprintf(verb, arg)
			wantHidden(t, verb+" of a "+name, out)
			if verb != "%T" && name == "value" && !strings.Contains(out, models.RedactedText) {
				t.Errorf("%s of a Secret = %q, want %s", verb, out, models.RedactedText)
			}
		}
	}
	if got := fmt.Sprintf("%q", s); got != `"[REDACTED]"` {
		t.Errorf("%%q = %s", got)
	}
	if s.String() != models.RedactedText || s.GoString() != models.RedactedText {
		t.Errorf("String %q, GoString %q", s.String(), s.GoString())
	}
	wantHidden(t, "an error wrapping it", fmt.Errorf("connect with %v: %w", s, errors.New("refused")).Error())
	wantHidden(t, "fmt.Sprint", fmt.Sprint(s, &s, h))
	wantHidden(t, "fmt.Sprintln", fmt.Sprintln(s))
}

func TestSecretEncodings(t *testing.T) {
	s := models.NewSecret(secretValue)
	type body struct {
		Name   string        `json:"name" xml:"name"`
		Secret models.Secret `json:"secret" xml:"secret"`
		Ptr    *models.Secret
		hidden models.Secret
	}
	b := body{Name: "n", Secret: s, Ptr: &s, hidden: s}

	j, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	wantHidden(t, "JSON", string(j))
	if !strings.Contains(string(j), `"secret":"[REDACTED]"`) {
		t.Errorf("JSON = %s", j)
	}
	if txt, err := s.MarshalText(); err != nil || string(txt) != models.RedactedText {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}
	x, err := xml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	wantHidden(t, "XML", string(x))

	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"JSON": func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		"text": func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var out bytes.Buffer
		log := slog.New(newHandler(&out))
		log.Info("connecting", "secret", s, "pointer", &s, "body", b)
		log.With("secret", s).WithGroup("g").Info("again", slog.Any("s", s), slog.Group("inner", "s", s))
		log.Info("formatted", "v", fmt.Sprintf("%+v", b))
		wantHidden(t, name+" slog", out.String())
		if !strings.Contains(out.String(), models.RedactedText) {
			t.Errorf("%s slog shows no %s:\n%s", name, models.RedactedText, out.String())
		}
	}
}

// TestDatabaseURLNeverPrinted: a parsed PostgreSQL URL keeps its password
// for connecting, but no printed or encoded form of it shows the password.
func TestDatabaseURLNeverPrinted(t *testing.T) {
	u, err := models.ParseDatabaseURL("postgres://app:" + secretValue + "@db.example.com:5432/app?sslmode=verify-full")
	if err != nil {
		t.Fatal(err)
	}
	type config struct {
		Database models.DatabaseURL
		db       models.DatabaseURL
	}
	c := config{Database: u, db: u}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
		wantHidden(t, verb+" of a DatabaseURL", fmt.Sprintf(verb, u))
		wantHidden(t, verb+" of a struct holding one", fmt.Sprintf(verb, c))
		wantHidden(t, verb+" of a pointer to it", fmt.Sprintf(verb, &c))
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	wantHidden(t, "JSON of a DatabaseURL", string(j))
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("db", "url", u, "config", c)
	wantHidden(t, "slog of a DatabaseURL", out.String())
	if r := u.Redacted(); !strings.Contains(r, "db.example.com") {
		t.Errorf("Redacted = %q, want the host", r)
	}
	wantHidden(t, "Redacted", u.Redacted())
}

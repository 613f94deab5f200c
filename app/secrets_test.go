package app

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
)

const keyName = "cursor_key"

func randomKey(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// secretStores returns a store of each kind holding value as the secret
// name (value "" means the store does not have it).
func secretStores(tb testing.TB, name, value string) map[SecretsKind]*SecretStore {
	tb.Helper()
	env := vars{}
	dir := tb.TempDir()
	if value != "" {
		env["APP_SECRET_"+strings.ToUpper(name)] = value
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	src, err := ParseSecretsSource("file:" + dir)
	if err != nil {
		tb.Fatal(err)
	}
	return map[SecretsKind]*SecretStore{
		SecretsEnv:  NewSecretStore(SecretsSource{Kind: SecretsEnv}, env.get),
		SecretsFile: NewSecretStore(src, vars{}.get),
	}
}

func TestParseSecretsSource(t *testing.T) {
	for in, want := range map[string]SecretsSource{
		"env":                   {Kind: SecretsEnv},
		"file:/run/secrets/app": {Kind: SecretsFile, Dir: "/run/secrets/app"},
	} {
		got, err := ParseSecretsSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSecretsSource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
	for _, in := range []string{"", "file:", "ENV", "vault:x", "aws-secretsmanager:"} {
		if _, err := ParseSecretsSource(in); err == nil {
			t.Errorf("ParseSecretsSource(%q) accepted", in)
		}
	}
}

func TestSecretKeyAccepted(t *testing.T) {
	key := randomKey(t, 48)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for kind, store := range secretStores(t, keyName, enc.EncodeToString(key)) {
			got, err := store.Key(keyName, 32)
			if err != nil {
				t.Errorf("%s: Key: %v", kind, err)
			} else if !bytes.Equal(got, key) {
				t.Errorf("%s: Key returned a different key", kind)
			}
		}
	}
}

func TestSecretKeyRefused(t *testing.T) {
	tests := []struct {
		what, value, want string
	}{
		{"16 bytes", base64.StdEncoding.EncodeToString(randomKey(t, 16)), "weak"},
		{"31 bytes", base64.StdEncoding.EncodeToString(randomKey(t, 31)), "weak"},
		{"one byte repeated", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x41}, 32)), "weak"},
		{"zeros", base64.StdEncoding.EncodeToString(make([]byte, 64)), "weak"},
		{"not base64", "correct-horse-battery-staple!correct-horse-battery-staple!", "not base64"},
		{"a stray character", base64.StdEncoding.EncodeToString(randomKey(t, 32)) + "!", "not base64"},
	}
	for _, tt := range tests {
		for kind, store := range secretStores(t, keyName, tt.value) {
			t.Run(tt.what+"/"+string(kind), func(t *testing.T) {
				key, err := store.Key(keyName, 32)
				if err == nil {
					t.Fatalf("accepted (%d bytes)", len(key))
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.want) || !strings.Contains(msg, keyName) {
					t.Errorf("error %q should say %q and name %s", msg, tt.want, keyName)
				}
				if strings.Contains(msg, tt.value) || strings.Contains(msg, tt.value[:12]) {
					t.Errorf("error %q repeats the secret", msg)
				}
				if errors.Is(err, errSecretMissing) {
					t.Errorf("a bad secret is reported as missing")
				}
			})
		}
	}
}

func TestSecretMissing(t *testing.T) {
	for kind, store := range secretStores(t, keyName, "") {
		if _, err := store.Key(keyName, 32); !errors.Is(err, errSecretMissing) {
			t.Errorf("%s: Key of a missing secret: %v, want errSecretMissing", kind, err)
		}
	}
}

func TestDevKeyInDevelopment(t *testing.T) {
	cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}
	store := NewSecretStore(cfg.Secrets, vars{}.get)
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	first, err := devKey(store, cfg, keyName, models.CursorKeyMinLength, logger)
	if err != nil {
		t.Fatalf("devKey: %v", err)
	}
	if len(first) < models.CursorKeyMinLength || bytes.Count(first, first[:1]) == len(first) {
		t.Fatalf("devKey made a weak key (%d bytes)", len(first))
	}
	path := filepath.Join(cfg.DataDir, "dev-secrets", keyName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the development key was not kept: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %o, want 600", path, perm)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("dev-secrets folder: %v, mode %o, want 700", err, di.Mode().Perm())
	}
	if !strings.Contains(log.String(), "development secret") || !strings.Contains(log.String(), keyName) {
		t.Errorf("making a development secret is not logged: %q", log.String())
	}
	if strings.Contains(log.String(), base64.StdEncoding.EncodeToString(first)) {
		t.Errorf("the log shows the key")
	}

	log.Reset()
	second, err := devKey(store, cfg, keyName, models.CursorKeyMinLength, logger)
	if err != nil {
		t.Fatalf("devKey, second time: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("devKey made a new key instead of reusing the kept one")
	}
	if log.Len() != 0 {
		t.Errorf("reusing the kept key logged %q", log.String())
	}
}

func TestDevKeyPrefersTheConfiguredSecret(t *testing.T) {
	cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}
	key := randomKey(t, 32)
	got, err := devKey(NewSecretStore(cfg.Secrets, vars{"APP_SECRET_CURSOR_KEY": base64.StdEncoding.EncodeToString(key)}.get),
		cfg, keyName, 32, discardLogger())
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("devKey = %v; want the configured key", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "dev-secrets")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a development key was kept although the secret is configured: %v", err)
	}

	// A configured but weak secret is an error, not silently replaced.
	weak := base64.StdEncoding.EncodeToString(randomKey(t, 8))
	_, err = devKey(NewSecretStore(cfg.Secrets, vars{"APP_SECRET_CURSOR_KEY": weak}.get), cfg, keyName, 32, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "weak") {
		t.Errorf("devKey with a weak configured secret: %v, want a weak-secret error", err)
	}
}

func TestDevKeyInProduction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsFile, Dir: dir}}
	store := NewSecretStore(cfg.Secrets, vars{}.get)
	_, err := devKey(store, cfg, keyName, 32, discardLogger())
	if err == nil {
		t.Fatal("production made up a missing secret")
	}
	if !strings.Contains(err.Error(), keyName) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %q does not say that %s is missing", err, keyName)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "dev-secrets")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("production kept a development key: %v", err)
	}

	key := randomKey(t, 32)
	if err := os.WriteFile(filepath.Join(dir, keyName), []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := devKey(store, cfg, keyName, 32, discardLogger())
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("devKey with the secret in place: %v", err)
	}
}

func TestDevKeyReplacesAnUnusableKeptKey(t *testing.T) {
	cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}
	path := filepath.Join(cfg.DataDir, "dev-secrets", keyName)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	// Too short to use, and readable by everyone.
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(randomKey(t, 8))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := devKey(NewSecretStore(cfg.Secrets, vars{}.get), cfg, keyName, 32, discardLogger())
	if err != nil || len(key) < 32 {
		t.Fatalf("devKey: %d bytes, %v", len(key), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("the replaced key file has mode %o, want 600", perm)
	}
	again, err := devKey(NewSecretStore(cfg.Secrets, vars{}.get), cfg, keyName, 32, discardLogger())
	if err != nil || !bytes.Equal(again, key) {
		t.Errorf("the replacement key was not kept: %v", err)
	}
}

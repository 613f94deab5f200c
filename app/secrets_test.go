package app

import (
	"bytes"
	"context"
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

// testSecretStore returns a store for cfg (its source, environment and data
// folder) reading variables from getenv, with a discarded log.
func testSecretStore(tb testing.TB, cfg Config, getenv func(string) string) *SecretStore {
	tb.Helper()
	if cfg.Secrets.Kind == "" {
		cfg.Secrets = SecretsSource{Kind: SecretsEnv}
	}
	if cfg.Env == "" {
		cfg.Env = EnvDevelopment
	}
	store, err := openSecretStore(context.Background(), cfg, getenv, discardLogger())
	if err != nil {
		tb.Fatal(err)
	}
	return store
}

// secretStores returns a store of each kind holding value as the secret
// name (value "" means the store does not have it), in env (development
// or production; the env source is for development only, but the key
// rules are the same).
func secretStores(tb testing.TB, env, name, value string) map[SecretsKind]*SecretStore {
	tb.Helper()
	vs := vars{}
	dir := tb.TempDir()
	if value != "" {
		vs["APP_SECRET_"+strings.ToUpper(name)] = value
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	src, err := ParseSecretsSource("file:" + dir)
	if err != nil {
		tb.Fatal(err)
	}
	return map[SecretsKind]*SecretStore{
		SecretsEnv:  testSecretStore(tb, Config{Env: env, DataDir: tb.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}, vs.get),
		SecretsFile: testSecretStore(tb, Config{Env: env, DataDir: tb.TempDir(), Secrets: src}, vars{}.get),
	}
}

func TestParseSecretsSource(t *testing.T) {
	for in, want := range map[string]SecretsSource{
		"env":                                 {Kind: SecretsEnv},
		"file:/run/secrets/app":               {Kind: SecretsFile, Dir: "/run/secrets/app"},
		"aws-secretsmanager:prod/rampart/app": {Kind: SecretsAWS, ID: "prod/rampart/app"},
		"aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:rampart-AbCdEf": {Kind: SecretsAWS,
			ID: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rampart-AbCdEf"},
	} {
		got, err := ParseSecretsSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSecretsSource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
	for _, in := range []string{"", "file:", "ENV", "vault:x", "aws-secretsmanager:", "aws-secretsmanager:a b", "aws-secretsmanager:x\n"} {
		if _, err := ParseSecretsSource(in); err == nil {
			t.Errorf("ParseSecretsSource(%q) accepted", in)
		}
	}
}

func TestSecretKeyAccepted(t *testing.T) {
	key := randomKey(t, 48)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for _, env := range []string{EnvDevelopment, EnvProduction} {
			for kind, store := range secretStores(t, env, keyName, enc.EncodeToString(key)) {
				ring, err := store.keyRing(context.Background(), keyName, 32)
				if err != nil {
					t.Errorf("%s %s: keyRing: %v", env, kind, err)
				} else if !bytes.Equal(ring.Current().RevealBytes(), key) || !ring.Previous().IsZero() {
					t.Errorf("%s %s: keyRing holds another key", env, kind)
				}
			}
		}
	}
}

func TestSecretKeyRefused(t *testing.T) {
	tests := []struct {
		what, value, want string
	}{
		{"16 bytes", base64.StdEncoding.EncodeToString(randomKey(t, 16)), "weak"},
		{"a placeholder", "change-me", "known default or placeholder"},
		{"another placeholder", "CHANGE_ME_to_a_random_key_please", "known default or placeholder"},
		{"the command instead of its output", "$(openssl rand -base64 32)", "known default or placeholder"},
		{"a sample value", "replace-with-openssl-rand-base64-32", "known default or placeholder"},
		{"password", "password", "known default or placeholder"},
		{"one character repeated", strings.Repeat("A", 44), "known default or placeholder"},
		{"base64 of a passphrase", base64.StdEncoding.EncodeToString([]byte("correct horse battery staple, twice")), "weak"},
		{"two bytes alternating", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x01, 0xfe}, 32)), "weak"},
		{"31 bytes", base64.StdEncoding.EncodeToString(randomKey(t, 31)), "weak"},
		{"one byte repeated", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x41}, 32)), "weak"},
		{"zeros", base64.StdEncoding.EncodeToString(make([]byte, 64)), "weak"},
		{"not base64", "correct-horse-battery-staple!correct-horse-battery-staple!", "not base64"},
		{"a stray character", base64.StdEncoding.EncodeToString(randomKey(t, 32)) + "!", "not base64"},
	}
	for _, tt := range tests {
		for _, env := range []string{EnvDevelopment, EnvProduction} {
			for kind, store := range secretStores(t, env, keyName, tt.value) {
				t.Run(tt.what+"/"+env+"/"+string(kind), func(t *testing.T) {
					testKeyRefused(t, store, tt.value, tt.want)
				})
			}
		}
	}
}

// testKeyRefused checks that store refuses its key keyName with an error
// that names it and the rule (want) and does not repeat value.
func testKeyRefused(t *testing.T, store *SecretStore, value, want string) {
	t.Helper()
	ring, err := store.keyRing(context.Background(), keyName, 32)
	if err == nil {
		t.Fatalf("accepted (%d bytes)", len(ring.Current().Reveal()))
	}
	msg := err.Error()
	if !strings.Contains(msg, want) || !strings.Contains(msg, keyName) {
		t.Errorf("error %q should say %q and name %s", msg, want, keyName)
	}
	if strings.Contains(msg, value) || strings.Contains(msg, value[:min(len(value), 12)]) {
		t.Errorf("error %q repeats the secret", msg)
	}
	if errors.Is(err, errSecretMissing) {
		t.Errorf("a bad secret is reported as missing")
	}
}

func TestSecretMissing(t *testing.T) {
	for _, env := range []string{EnvDevelopment, EnvProduction} {
		for kind, store := range secretStores(t, env, keyName, "") {
			if _, err := store.Get(context.Background(), keyName); !errors.Is(err, errSecretMissing) {
				t.Errorf("%s %s: Get of a missing secret: %v, want errSecretMissing", env, kind, err)
			}
		}
	}
}

// devKeyRing is the key ring a development store over the environment
// getenv gives for keyName.
func devKeyRing(tb testing.TB, cfg Config, getenv func(string) string, log *slog.Logger) (*models.KeyRing, error) {
	tb.Helper()
	src, err := newSecretSource(context.Background(), cfg, getenv)
	if err != nil {
		tb.Fatal(err)
	}
	return newSecretStore(src, cfg, log).keyRing(context.Background(), keyName, models.CursorKeyMinLength)
}

func TestDevKeyInDevelopment(t *testing.T) {
	cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	ring, err := devKeyRing(t, cfg, vars{}.get, logger)
	if err != nil {
		t.Fatalf("keyRing: %v", err)
	}
	first := ring.Current().RevealBytes()
	if len(first) < models.CursorKeyMinLength || !looksRandom(first) {
		t.Fatalf("development made a weak key (%d bytes)", len(first))
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
	ring, err = devKeyRing(t, cfg, vars{}.get, logger)
	if err != nil {
		t.Fatalf("keyRing, second time: %v", err)
	}
	if !bytes.Equal(first, ring.Current().RevealBytes()) {
		t.Errorf("development made a new key instead of reusing the kept one")
	}
	if log.Len() != 0 {
		t.Errorf("reusing the kept key logged %q", log.String())
	}
}

func TestDevKeyPrefersTheConfiguredSecret(t *testing.T) {
	cfg := Config{Env: EnvDevelopment, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsEnv}}
	key := randomKey(t, 32)
	ring, err := devKeyRing(t, cfg, vars{"APP_SECRET_CURSOR_KEY": base64.StdEncoding.EncodeToString(key)}.get, discardLogger())
	if err != nil || !bytes.Equal(ring.Current().RevealBytes(), key) {
		t.Errorf("keyRing = %v; want the configured key", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "dev-secrets")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a development key was kept although the secret is configured: %v", err)
	}

	// A configured but weak secret is an error, not silently replaced.
	weak := base64.StdEncoding.EncodeToString(randomKey(t, 8))
	_, err = devKeyRing(t, cfg, vars{"APP_SECRET_CURSOR_KEY": weak}.get, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "weak") {
		t.Errorf("keyRing with a weak configured secret: %v, want a weak-secret error", err)
	}
}

func TestDevKeyInProduction(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsFile, Dir: dir}}
	_, err := devKeyRing(t, cfg, vars{}.get, discardLogger())
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
	ring, err := devKeyRing(t, cfg, vars{}.get, discardLogger())
	if err != nil || !bytes.Equal(ring.Current().RevealBytes(), key) {
		t.Errorf("keyRing with the secret in place: %v", err)
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
	ring, err := devKeyRing(t, cfg, vars{}.get, discardLogger())
	if err != nil {
		t.Fatalf("keyRing: %v", err)
	}
	key := ring.Current().RevealBytes()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("the replaced key file has mode %o, want 600", perm)
	}
	again, err := devKeyRing(t, cfg, vars{}.get, discardLogger())
	if err != nil || !bytes.Equal(again.Current().RevealBytes(), key) {
		t.Errorf("the replacement key was not kept: %v", err)
	}
}

// TestRandomKeysAreNeverRefused guards the key rules against refusing good
// keys: many random keys of the usual sizes, in every encoding, pass.
func TestRandomKeysAreNeverRefused(t *testing.T) {
	for i := range 20000 {
		key := randomKey(t, 32+i%33)
		enc := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}[i%4]
		if _, err := checkKey(keyName, models.NewSecret(enc.EncodeToString(key)), 32); err != nil {
			t.Fatalf("a random %d-byte key was refused: %v", len(key), err)
		}
	}
}

// TestDatabasePasswordRules: production refuses an empty, placeholder or
// short database_password; development accepts the last two with a
// warning; a long random one passes everywhere.
func TestDatabasePasswordRules(t *testing.T) {
	for _, tt := range []struct {
		value, rule string
	}{
		{"", "empty"},
		{"postgres", "known default or placeholder"},
		{"Change_Me!", "known default or placeholder"},
		{"changeme-changeme-changeme", "known default or placeholder"},
		{"aaaaaaaaaaaaaaaaaaaaaaaa", "known default or placeholder"},
		{"Xy7!kQ2pL", "shorter than 16"},
	} {
		err := checkPassword(databasePasswordName, models.NewSecret(tt.value), EnvProduction, discardLogger())
		if err == nil || !strings.Contains(err.Error(), tt.rule) || !strings.Contains(err.Error(), databasePasswordName) {
			t.Errorf("production, %q: %v, want an error naming %s and saying %q", tt.value, err, databasePasswordName, tt.rule)
		} else if tt.value != "" && strings.Contains(err.Error(), tt.value) {
			t.Errorf("the error shows the password: %v", err)
		}
		var log bytes.Buffer
		err = checkPassword(databasePasswordName, models.NewSecret(tt.value), EnvDevelopment, slog.New(slog.NewTextHandler(&log, nil)))
		if (err != nil) != (tt.value == "") || (tt.value != "" && !strings.Contains(log.String(), tt.rule)) {
			t.Errorf("development, %q: %v, log %q; want a warning only", tt.value, err, log.String())
		}
	}
	good := base64.StdEncoding.EncodeToString(randomKey(t, 24))
	for _, env := range []string{EnvDevelopment, EnvProduction} {
		if err := checkPassword(databasePasswordName, models.NewSecret(good), env, discardLogger()); err != nil {
			t.Errorf("%s refused a random password: %v", env, err)
		}
	}
}

package app

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// SecretsKind names where secrets come from.
type SecretsKind string

// The secret sources.
const (
	SecretsEnv  SecretsKind = "env"
	SecretsFile SecretsKind = "file"
)

// SecretsSource is a parsed APP_SECRETS value.
type SecretsSource struct {
	Kind SecretsKind
	Dir  string // for SecretsFile
}

// ParseSecretsSource reads "env" or "file:DIR".
func ParseSecretsSource(s string) (SecretsSource, error) {
	switch {
	case s == "env":
		return SecretsSource{Kind: SecretsEnv}, nil
	case strings.HasPrefix(s, "file:") && len(s) > len("file:"):
		return SecretsSource{Kind: SecretsFile, Dir: strings.TrimPrefix(s, "file:")}, nil
	}
	return SecretsSource{}, errors.New("must be env or file:DIR")
}

func (s SecretsSource) String() string {
	if s.Kind == SecretsFile {
		return "file:" + s.Dir
	}
	return string(s.Kind)
}

// SecretStore reads named secrets from one source. Values are never logged
// or printed; errors name the secret and the rule, never the value.
type SecretStore struct {
	src    SecretsSource
	getenv func(string) string
}

// NewSecretStore returns a store reading from src.
func NewSecretStore(src SecretsSource, getenv func(string) string) *SecretStore {
	return &SecretStore{src: src, getenv: getenv}
}

// errSecretMissing reports a secret that the source does not have.
var errSecretMissing = errors.New("secret is missing")

// raw returns the secret's text, or errSecretMissing.
func (s *SecretStore) raw(name string) (string, error) {
	switch s.src.Kind {
	case SecretsEnv:
		v := s.getenv("APP_SECRET_" + strings.ToUpper(name))
		if v == "" {
			return "", errSecretMissing
		}
		return v, nil
	case SecretsFile:
		b, err := os.ReadFile(filepath.Join(s.src.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return "", errSecretMissing
		}
		if err != nil {
			return "", fmt.Errorf("read secret %s: %w", name, err)
		}
		return string(bytes.TrimSpace(b)), nil
	}
	return "", fmt.Errorf("unknown secret source %q", s.src.Kind)
}

// Key returns a key secret: base64 (standard or URL alphabet, padded or
// not) of at least minLen random bytes. A shorter or constant value is
// refused as weak.
func (s *SecretStore) Key(name string, minLen int) ([]byte, error) {
	v, err := s.raw(name)
	if err != nil {
		return nil, err
	}
	key, err := decodeKey(v)
	if err != nil {
		return nil, fmt.Errorf("secret %s is not base64: make one with `openssl rand -base64 %d`", name, minLen)
	}
	if len(key) < minLen || bytes.Count(key, key[:1]) == len(key) {
		return nil, fmt.Errorf("secret %s is weak: it must be at least %d random bytes (`openssl rand -base64 %d`)", name, minLen, minLen)
	}
	return key, nil
}

func decodeKey(v string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// devKey returns the key secret name, or in development, when it is
// missing, a random key kept in DataDir/dev-secrets/NAME (0600) so that it
// survives restarts. Production never gets here with a missing secret.
func devKey(store *SecretStore, cfg Config, name string, minLen int, log *slog.Logger) ([]byte, error) {
	key, err := store.Key(name, minLen)
	switch {
	case err == nil:
		return key, nil
	case !errors.Is(err, errSecretMissing):
		return nil, err
	case cfg.Env != EnvDevelopment:
		return nil, fmt.Errorf("secret %s is missing from %s", name, cfg.Secrets)
	}
	dir := filepath.Join(cfg.DataDir, "dev-secrets")
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		if key, err := decodeKey(string(bytes.TrimSpace(b))); err == nil && len(key) >= minLen {
			return key, nil
		}
	}
	key = make([]byte, minLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keep development secret %s: %w", name, err)
	}
	// Through a temporary file: os.WriteFile would keep the mode of an old,
	// unusable file (say 0644) that it overwrites, and could leave half a key.
	if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("keep development secret %s: %w", name, err)
	}
	log.Warn("made a development secret; production refuses to run without a real one", "secret_name", name, "path", path)
	return key, nil
}

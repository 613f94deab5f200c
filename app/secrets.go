package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/models"
)

// The secrets the app reads. Key material is base64 of at least 32 random
// bytes; database_password is a password.
const (
	cursorKeyName        = "cursor_key"        // signs pagination cursors
	webhookKeyName       = "webhook_key"       // seals webhook signing secrets in the database
	databasePasswordName = "database_password" // PostgreSQL password, overrides APP_DATABASE_URL's
)

// SecretsKind names where secrets come from.
type SecretsKind string

// The secret sources.
const (
	SecretsEnv  SecretsKind = "env"                // APP_SECRET_<NAME> variables: development only
	SecretsFile SecretsKind = "file"               // one file per secret in a folder (Docker, Kubernetes)
	SecretsAWS  SecretsKind = "aws-secretsmanager" // one JSON secret in AWS Secrets Manager
)

// SecretsSource is a parsed APP_SECRETS value.
type SecretsSource struct {
	Kind SecretsKind
	Dir  string // for SecretsFile: the folder
	ID   string // for SecretsAWS: the secret's name or ARN
}

// ParseSecretsSource reads "env", "file:DIR" or "aws-secretsmanager:NAME"
// (NAME: the secret's name or ARN).
func ParseSecretsSource(s string) (SecretsSource, error) {
	switch {
	case s == "env":
		return SecretsSource{Kind: SecretsEnv}, nil
	case strings.HasPrefix(s, "file:") && len(s) > len("file:"):
		return SecretsSource{Kind: SecretsFile, Dir: strings.TrimPrefix(s, "file:")}, nil
	case strings.HasPrefix(s, "aws-secretsmanager:"):
		id := strings.TrimPrefix(s, "aws-secretsmanager:")
		if id == "" || len(id) > 2048 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			break
		}
		return SecretsSource{Kind: SecretsAWS, ID: id}, nil
	}
	return SecretsSource{}, errors.New("must be env, file:DIR or aws-secretsmanager:NAME")
}

func (s SecretsSource) String() string {
	switch s.Kind {
	case SecretsFile:
		return "file:" + s.Dir
	case SecretsAWS:
		return "aws-secretsmanager:" + s.ID
	}
	return string(s.Kind)
}

// SecretVersions is one secret as a source holds it: the current value
// and, where the source keeps one, the value before the last rotation
// (Secrets Manager's AWSPREVIOUS, a NAME.previous file). Previous is zero
// when there is none.
type SecretVersions struct {
	Current  models.Secret
	Previous models.Secret
}

func (v SecretVersions) equal(w SecretVersions) bool {
	return v.Current.Equal(w.Current) && v.Previous.Equal(w.Previous)
}

// secretSource is where secrets are read from. Get returns the named
// secret, errSecretMissing when the source does not have it, or another
// error when the source cannot be read. Errors name the secret, never its
// value. Implementations: envSource, fileSource, awsSource.
type secretSource interface {
	Get(ctx context.Context, name string) (SecretVersions, error)
}

// errSecretMissing reports a secret that the source does not have.
var errSecretMissing = errors.New("secret is missing")

// envSource reads APP_SECRET_<NAME>. Environment variables leak into
// process listings, crash dumps and child processes, and cannot change
// while the process runs: development only (production refuses it).
type envSource struct {
	getenv func(string) string
}

func (s envSource) Get(_ context.Context, name string) (SecretVersions, error) {
	v := strings.TrimSpace(s.getenv("APP_SECRET_" + strings.ToUpper(name)))
	if v == "" {
		return SecretVersions{}, errSecretMissing
	}
	return SecretVersions{Current: models.NewSecret(v)}, nil
}

// fileSource reads DIR/NAME, the current value, and DIR/NAME.previous, the
// value before the last rotation (optional). Mounted secret files
// (Docker, Kubernetes) change in place: a rotation is new file content.
type fileSource struct {
	dir string
}

// maxSecretFile bounds what is read of one secret file.
const maxSecretFile = 64 << 10

func (s fileSource) Get(_ context.Context, name string) (SecretVersions, error) {
	cur, err := readSecretFile(filepath.Join(s.dir, name))
	if err != nil {
		if errors.Is(err, errSecretMissing) {
			return SecretVersions{}, err
		}
		return SecretVersions{}, fmt.Errorf("read secret %s: %w", name, err)
	}
	prev, err := readSecretFile(filepath.Join(s.dir, name+".previous"))
	if err != nil && !errors.Is(err, errSecretMissing) {
		return SecretVersions{}, fmt.Errorf("read secret %s.previous: %w", name, err)
	}
	return SecretVersions{Current: cur, Previous: prev}, nil
}

func readSecretFile(path string) (models.Secret, error) {
	f, err := os.Open(path) // #nosec G304 -- a file in the secrets folder the operator configures
	if errors.Is(err, fs.ErrNotExist) {
		return models.Secret{}, errSecretMissing
	}
	if err != nil {
		return models.Secret{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return models.Secret{}, err
	}
	if len(b) > maxSecretFile {
		return models.Secret{}, errors.New("the file is larger than 64 KiB")
	}
	return models.NewSecretBytes(bytes.TrimSpace(b)), nil
}

// newSecretSource returns the source cfg.Secrets names.
func newSecretSource(ctx context.Context, cfg Config, getenv func(string) string) (secretSource, error) {
	switch cfg.Secrets.Kind {
	case SecretsEnv:
		return envSource{getenv: getenv}, nil
	case SecretsFile:
		return fileSource{dir: cfg.Secrets.Dir}, nil
	case SecretsAWS:
		return newAWSSource(ctx, cfg, getenv)
	}
	return nil, fmt.Errorf("unknown secret source %q", cfg.Secrets.Kind)
}

// SecretStore reads named secrets from one source and caches them for the
// refresh interval (APP_SECRETS_REFRESH). Run re-reads every secret that
// was asked for once per interval; when one has changed (a rotation), the
// new value is checked by the rules of that secret and handed to the code
// that uses it (a KeyRing, the database connector), the rotation is logged
// (by name, never the value) and counted. A new value that breaks the
// rules, or a source that cannot be read, leaves the old value in use, and
// is logged and counted too.
type SecretStore struct {
	src       secretSource
	where     string // the source, for messages
	env       string // development | production
	ttl       time.Duration
	rereadGap time.Duration // forced re-reads of one secret are at least this far apart
	dataDir   string        // development keys are kept under it
	log       *slog.Logger

	rotations *prometheus.CounterVec
	failures  *prometheus.CounterVec

	mu        sync.Mutex
	entries   map[string]*secretEntry
	reads     uint64            // numbers the reads of the source, in the order they start
	onRotated func(name string) // told of each rotation (the audit trail); may be nil
}

// secretEntry is one cached secret.
type secretEntry struct {
	v       SecretVersions
	read    uint64 // the read that v came from
	fetched time.Time
	reread  time.Time // the last forced re-read
	// use checks a new value and puts it to use; it returns an error,
	// naming the secret and the rule, when the value is refused. Nil: the
	// value is only cached.
	use func(SecretVersions) error
}

const (
	// defaultSecretsRefresh is APP_SECRETS_REFRESH's default.
	defaultSecretsRefresh = 5 * time.Minute
	// secretFetchTimeout bounds one read of the source.
	secretFetchTimeout = 10 * time.Second
	// secretRereadGap spaces the re-reads forced by a refused database
	// password, so that a wrong password does not hammer the source.
	secretRereadGap = 5 * time.Second
)

// newSecretStore returns a store over src for cfg (environment, refresh
// interval, data folder); openSecretStore makes the source too.
func newSecretStore(src secretSource, cfg Config, log *slog.Logger) *SecretStore {
	ttl := cfg.SecretsRefresh
	if ttl <= 0 {
		ttl = defaultSecretsRefresh
	}
	return &SecretStore{
		src: src, where: cfg.Secrets.String(), env: cfg.Env, ttl: ttl, rereadGap: secretRereadGap,
		dataDir: cfg.DataDir, log: log,
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_secret_rotations_total",
			Help: "Rotations of a secret seen while running (a new current value put to use)."}, []string{"secret"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_secret_refresh_failures_total",
			Help: "Refreshes of a secret that failed or whose new value was refused; the old value stayed in use."}, []string{"secret"}),
		entries: map[string]*secretEntry{},
	}
}

// openSecretStore opens the source of cfg.Secrets (for AWS, the client and
// its credentials) and returns a store over it.
func openSecretStore(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger) (*SecretStore, error) {
	src, err := newSecretSource(ctx, cfg, getenv)
	if err != nil {
		return nil, err
	}
	return newSecretStore(src, cfg, log), nil
}

// collectors are the store's metrics, for the process registry.
func (s *SecretStore) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.rotations, s.failures}
}

// fetch reads name from the source, bounded by secretFetchTimeout.
func (s *SecretStore) fetch(ctx context.Context, name string) (SecretVersions, error) {
	ctx, cancel := context.WithTimeout(ctx, secretFetchTimeout)
	defer cancel()
	return s.src.Get(ctx, name)
}

// Get returns the secret name, from the cache while it is fresh. When the
// source cannot be read but a value was read before, that value is
// returned (and the failure logged): a secret manager that is down for a
// while does not take the app down with it.
func (s *SecretStore) Get(ctx context.Context, name string) (SecretVersions, error) {
	s.mu.Lock()
	e := s.entries[name]
	if e != nil && time.Since(e.fetched) < s.ttl {
		v := e.v
		s.mu.Unlock()
		return v, nil
	}
	s.mu.Unlock()
	return s.refresh(ctx, name)
}

// refresh reads name from the source and updates the cache.
func (s *SecretStore) refresh(ctx context.Context, name string) (SecretVersions, error) {
	s.mu.Lock()
	s.reads++
	read := s.reads
	s.mu.Unlock()
	v, err := s.fetch(ctx, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[name]
	if e != nil && read < e.read {
		// A read that started later has been applied already (two
		// refreshes at once, a slow one and a fast one): this one's value
		// may be older and must not roll the secret back.
		return e.v, nil
	}
	if err != nil {
		if e == nil {
			return SecretVersions{}, err
		}
		s.failures.WithLabelValues(name).Inc()
		s.log.Error("secret could not be read again; the value read before stays in use",
			"secret_name", name, "source", s.where, "error", err.Error())
		e.fetched = time.Now() // try again after another interval, not at every call
		return e.v, nil
	}
	if e == nil {
		s.entries[name] = &secretEntry{v: v, read: read, fetched: time.Now()}
		return v, nil
	}
	e.fetched = time.Now()
	if v.equal(e.v) {
		e.read = read
		return v, nil
	}
	if e.use != nil {
		if err := e.use(v); err != nil {
			s.failures.WithLabelValues(name).Inc()
			s.log.Error("a new value of a secret was refused; the old value stays in use",
				"secret_name", name, "source", s.where, "error", err.Error())
			return e.v, nil
		}
	}
	rotated := !v.Current.Equal(e.v.Current)
	e.v, e.read = v, read
	if rotated {
		s.rotations.WithLabelValues(name).Inc()
		s.log.Info("secret rotated", "secret_name", name, "source", s.where, "has_previous", !v.Previous.IsZero())
		if fn := s.onRotated; fn != nil {
			// Not under the lock, and not waited for: the audit writer
			// may block while the database is away, and the database
			// connector needs this store to come back.
			go fn(name)
		}
	}
	return v, nil
}

// OnRotated makes fn be told the name of each secret that rotates from now
// on, in a goroutine of its own.
func (s *SecretStore) OnRotated(fn func(name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRotated = fn
}

// reread reads name from the source now, unless it was re-read this way
// less than rereadGap ago; then it returns the cached value.
func (s *SecretStore) reread(ctx context.Context, name string) (SecretVersions, error) {
	s.mu.Lock()
	e := s.entries[name]
	if e != nil && time.Since(e.reread) < s.rereadGap {
		v := e.v
		s.mu.Unlock()
		return v, nil
	}
	if e != nil {
		e.reread = time.Now()
	}
	s.mu.Unlock()
	return s.refresh(ctx, name)
}

// watch makes use the consumer of name's new values (see secretEntry.use).
// name must have been read with Get.
func (s *SecretStore) watch(name string, use func(SecretVersions) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[name]; e != nil {
		e.use = use
	}
}

// Refresh reads every secret asked for so far from the source again.
func (s *SecretStore) Refresh(ctx context.Context) {
	s.mu.Lock()
	names := make([]string, 0, len(s.entries))
	for name := range s.entries {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		_, _ = s.refresh(ctx, name)
	}
}

// Run refreshes the secrets every refresh interval until ctx ends.
func (s *SecretStore) Run(ctx context.Context) {
	t := time.NewTicker(s.ttl)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Refresh(ctx)
		}
	}
}

// keyRing returns the key secret name as a KeyRing (current and previous
// key) that follows its rotations while Run runs. In development a missing
// key is made and kept under DATA_DIR/dev-secrets (and does not rotate);
// production refuses to start without it. A key that breaks the key rules
// (checkKey) is an error in every environment; a previous key that does is
// left out of the ring, with a warning.
func (s *SecretStore) keyRing(ctx context.Context, name string, minLen int) (*models.KeyRing, error) {
	v, err := s.Get(ctx, name)
	switch {
	case errors.Is(err, errSecretMissing) && s.env == EnvDevelopment:
		key, err := devKey(s.dataDir, name, minLen, s.log)
		if err != nil {
			return nil, err
		}
		return models.NewKeyRing(key, nil)
	case errors.Is(err, errSecretMissing):
		return nil, fmt.Errorf("secret %s is missing from %s: production does not run without it", name, s.where)
	case err != nil:
		return nil, err
	}
	cur, prev, err := s.keyPair(name, v, minLen)
	if err != nil {
		return nil, err
	}
	ring, err := models.NewKeyRing(cur, prev)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	s.watch(name, func(v SecretVersions) error {
		cur, prev, err := s.keyPair(name, v, minLen)
		if err != nil {
			return err
		}
		return ring.Set(cur, prev)
	})
	return ring, nil
}

// keyPair checks both versions of a key secret. The previous key is
// dropped, with a warning, when it breaks the rules: it only verifies.
func (s *SecretStore) keyPair(name string, v SecretVersions, minLen int) (cur, prev []byte, err error) {
	if cur, err = checkKey(name, v.Current, minLen); err != nil {
		return nil, nil, err
	}
	if !v.Previous.IsZero() {
		if prev, err = checkKey(name+" (previous version)", v.Previous, minLen); err != nil {
			s.log.Warn("the previous version of a secret is not a usable key; only the current one verifies",
				"secret_name", name, "error", err.Error())
			prev = nil
		}
	}
	return cur, prev, nil
}

// database returns cfg.Database with its PostgreSQL password coming from
// the secret database_password when the source has it: each new
// connection uses the password of the moment, and a password the server
// refuses makes the store read the secret again (see
// models.DatabaseURL.WithPassword). Without the secret, or for SQLite,
// the URL's password is used, as it is.
func (s *SecretStore) database(ctx context.Context, cfg Config) (models.DatabaseURL, error) {
	u := cfg.Database
	if u.Dialect != models.Postgres {
		return u, nil
	}
	v, err := s.Get(ctx, databasePasswordName)
	if errors.Is(err, errSecretMissing) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	if err := checkPassword(databasePasswordName, v.Current, s.env, s.log); err != nil {
		return u, err
	}
	s.watch(databasePasswordName, func(v SecretVersions) error {
		return checkPassword(databasePasswordName, v.Current, s.env, s.log)
	})
	return u.WithPassword(func(ctx context.Context, reread bool) ([]models.Secret, error) {
		if !reread {
			v, err := s.Get(ctx, databasePasswordName)
			return []models.Secret{v.Current}, err
		}
		s.log.Warn("the database refused its password; reading the secret again", "secret_name", databasePasswordName)
		v, err := s.reread(ctx, databasePasswordName)
		if err != nil {
			return nil, err
		}
		// The previous password too: while a rotation is under way the
		// secret may already hold the new password and the database still
		// the old one.
		return []models.Secret{v.Current, v.Previous}, nil
	}), nil
}

// databaseFor returns cfg.Database with its password from the secret
// database_password when the source has one (see SecretStore.database),
// for the commands that open the database once: migrate, user, audit.
func databaseFor(ctx context.Context, cfg Config, env Env) (models.DatabaseURL, error) {
	if cfg.Database.Dialect != models.Postgres {
		return cfg.Database, nil
	}
	store, err := openSecretStore(ctx, cfg, env.Getenv, newLogger(env.Stderr, cfg.LogLevel))
	if err != nil {
		return cfg.Database, err
	}
	return store.database(ctx, cfg)
}

// checkKey decodes a key secret and applies the key rules: base64
// (standard or URL alphabet, padded or not) of at least minLen bytes that
// look random. Known placeholders ("change-me"), a value of one repeated
// byte, few distinct bytes, or bytes that are all printable text (a
// passphrase, not random bytes) are refused. The error names the secret
// and the rule, never the value.
func checkKey(name string, v models.Secret, minLen int) ([]byte, error) {
	text := v.Reveal()
	hint := fmt.Sprintf("make one with `openssl rand -base64 %d`", minLen)
	if text == "" {
		return nil, fmt.Errorf("secret %s is empty: %s", name, hint)
	}
	if knownDefault(text) {
		return nil, fmt.Errorf("secret %s is a known default or placeholder value: %s", name, hint)
	}
	key, err := decodeKey(text)
	if err != nil {
		return nil, fmt.Errorf("secret %s is not base64: %s", name, hint)
	}
	if len(key) < minLen {
		return nil, fmt.Errorf("secret %s is weak: it must be at least %d random bytes (`openssl rand -base64 %d`)", name, minLen, minLen)
	}
	if !looksRandom(key) {
		return nil, fmt.Errorf("secret %s is weak: it is not random bytes (one byte repeated, few distinct bytes, or plain text); %s", name, hint)
	}
	return key, nil
}

// looksRandom rejects what random bytes practically never are: one byte
// repeated, fewer distinct bytes than half the length (for 32 random bytes
// about 30 are distinct), or printable ASCII throughout (the chance for 32
// random bytes is about 10⁻¹⁴).
func looksRandom(key []byte) bool {
	var seen [256]bool
	distinct, printable := 0, true
	for _, c := range key {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		if c < 0x20 || c > 0x7e {
			printable = false
		}
	}
	return distinct > 1 && distinct >= min(len(key), 64)/2 && !printable
}

// minDatabasePassword is the shortest database_password production takes.
const minDatabasePassword = 16

// checkPassword applies the password rules to the secret name: production
// refuses an empty value, a known default or placeholder, and one shorter
// than minDatabasePassword characters; development only warns about the
// last two.
func checkPassword(name string, v models.Secret, env string, log *slog.Logger) error {
	text := v.Reveal()
	var rule string
	switch {
	case text == "":
		return fmt.Errorf("secret %s is empty", name)
	case knownDefault(text):
		rule = "is a known default or placeholder value"
	case len(text) < minDatabasePassword:
		rule = fmt.Sprintf("is shorter than %d characters", minDatabasePassword)
	default:
		return nil
	}
	if env == EnvProduction {
		return fmt.Errorf("secret %s %s: production refuses it (make one with `openssl rand -base64 32`)", name, rule)
	}
	log.Warn("a secret "+rule+"; production would refuse it", "secret_name", name)
	return nil
}

// Known defaults and placeholders, letters and digits only, lower case:
// the values of sample files (.env.example, compose examples), tutorials
// and vendor defaults. knownDefault also refuses any value that contains
// one of placeholderMarkers, and any value of one repeated character. The
// markers are 7 letters or more, so that a random base64 key contains one
// by chance about once in 10⁹ keys, or less.
var (
	knownDefaults = map[string]bool{
		"secret": true, "password": true, "passw0rd": true, "p4ssw0rd": true, "changeme": true, "change": true,
		"default": true, "admin": true, "root": true, "postgres": true, "rampart": true, "test": true, "testing": true,
		"dev": true, "development": true, "example": true, "todo": true, "fixme": true, "letmein": true, "qwerty": true,
		"123456": true, "12345678": true, "1234567890": true, "secretkey": true, "mysecret": true, "supersecret": true,
		"topsecret": true, "pass": true, "none": true, "null": true, "key": true, "mykey": true, "dummy": true,
	}
	placeholderMarkers = []string{
		"changeme", "changethis", "replaceme", "replacewith", "placeholder", "example", "yoursecret", "yourpassword",
		"yourkey", "insertsecret", "notasecret", "notsecret", "opensslrand", "generatewith", "generateone",
		"xxxxxxxx", "secretgoeshere", "putsecret", "dummysecret", "dummypassword", "samplesecret",
	}
)

// knownDefault reports whether v is a known default or placeholder value.
func knownDefault(v string) bool {
	n := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', '0' <= r && r <= '9':
			return r
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		}
		return -1
	}, v)
	if n == "" || knownDefaults[n] || strings.Count(v, v[:1]) == len(v) {
		return true
	}
	for _, m := range placeholderMarkers {
		if strings.Contains(n, m) {
			return true
		}
	}
	return false
}

func decodeKey(v string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// devKey returns the development key name kept in dataDir/dev-secrets/NAME
// (0600), making a random one when there is none yet (or the kept one is
// unusable), so that it survives restarts. Only development gets here:
// production refuses a missing secret.
func devKey(dataDir, name string, minLen int, log *slog.Logger) ([]byte, error) {
	dir := filepath.Join(dataDir, "dev-secrets")
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil { // #nosec G304 -- the development secrets folder under APP_DATA_DIR
		if key, err := decodeKey(string(bytes.TrimSpace(b))); err == nil && len(key) >= minLen {
			return key, nil
		}
	}
	key := make([]byte, minLen)
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

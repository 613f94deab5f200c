package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-go/rampart/models"
)

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Config is the validated configuration. Every field comes from an APP_*
// variable; Load checks each and names the variable and the rule it breaks.
type Config struct {
	Env         string             // APP_ENV: development | production
	Addr        string             // APP_ADDR: host:port of the HTTPS listener
	DataDir     string             // APP_DATA_DIR: SQLite file, development certificate and secrets
	Database    models.DatabaseURL // APP_DATABASE_URL (default: SQLite under DataDir)
	RedisURL    string             // APP_REDIS_URL: shared rate limits (optional)
	CORSOrigins []string           // APP_CORS_ORIGINS: comma-separated allowlist
	TLSCertFile string             // APP_TLS_CERT_FILE
	TLSKeyFile  string             // APP_TLS_KEY_FILE
	Secrets     SecretsSource      // APP_SECRETS: env | file:DIR
	SessionIdle time.Duration      // APP_SESSION_IDLE_TIMEOUT
	SessionMax  time.Duration      // APP_SESSION_ABSOLUTE_TIMEOUT
	BodyLimit   int64              // APP_BODY_LIMIT: bytes
	LogLevel    string             // APP_LOG_LEVEL: debug | info | warn | error
}

// Variables lists every configuration variable with its default and
// meaning, for `rampart help` and the README.
var Variables = []struct{ Name, Default, Meaning string }{
	{"APP_ENV", "development", "development or production; production refuses development defaults"},
	{"APP_ADDR", "localhost:8443", "host:port of the HTTPS listener (there is no plain-HTTP listener)"},
	{"APP_DATA_DIR", "./data", "folder for the SQLite file, the development certificate and development secrets"},
	{"APP_DATABASE_URL", "sqlite:$APP_DATA_DIR/rampart.db", "sqlite:PATH, or a postgres:// URL (sslmode=verify-full for remote hosts in production)"},
	{"APP_REDIS_URL", "(none)", "redis:// or rediss:// URL; when set, rate limits and quotas are shared through Redis"},
	{"APP_CORS_ORIGINS", "(none)", "comma-separated list of allowed browser origins, e.g. https://app.example.com"},
	{"APP_TLS_CERT_FILE", "(none)", "PEM certificate chain; with APP_TLS_KEY_FILE. Unset in development: a certificate is made"},
	{"APP_TLS_KEY_FILE", "(none)", "PEM private key for APP_TLS_CERT_FILE"},
	{"APP_SECRETS", "env", "where secrets come from: env (APP_SECRET_<NAME>, development only) or file:DIR (one file per secret)"},
	{"APP_SESSION_IDLE_TIMEOUT", "15m", "a session ends after this long without use"},
	{"APP_SESSION_ABSOLUTE_TIMEOUT", "4h", "a session ends this long after login, whatever its use"},
	{"APP_BODY_LIMIT", "65536", "largest accepted request body, in bytes (1024 to 1048576)"},
	{"APP_LOG_LEVEL", "info", "debug, info, warn or error"},
}

// ConfigError lists every problem found in the configuration.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "configuration: " + strings.Join(e.Problems, "; ")
}

// LoadConfig reads the configuration from getenv (os.Getenv in the binary)
// and validates it. The error names each variable and the rule it breaks,
// and never repeats a secret.
func LoadConfig(getenv func(string) string) (Config, error) {
	var problems []string
	bad := func(name, rule string) { problems = append(problems, name+" "+rule) }
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}

	cfg := Config{
		Env:         get("APP_ENV", EnvDevelopment),
		Addr:        get("APP_ADDR", "localhost:8443"),
		DataDir:     get("APP_DATA_DIR", "data"),
		RedisURL:    get("APP_REDIS_URL", ""),
		TLSCertFile: get("APP_TLS_CERT_FILE", ""),
		TLSKeyFile:  get("APP_TLS_KEY_FILE", ""),
		LogLevel:    get("APP_LOG_LEVEL", "info"),
	}
	if cfg.Env != EnvDevelopment && cfg.Env != EnvProduction {
		bad("APP_ENV", "must be development or production")
	}
	// An empty host listens on every interface; the port must be explicit.
	if _, port, err := net.SplitHostPort(cfg.Addr); err != nil {
		bad("APP_ADDR", "must be host:port, e.g. localhost:8443")
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad("APP_ADDR", "must have a port between 1 and 65535")
	}

	dbRaw := get("APP_DATABASE_URL", "sqlite:"+filepath.Join(cfg.DataDir, "rampart.db"))
	db, err := models.ParseDatabaseURL(dbRaw)
	if err != nil {
		bad("APP_DATABASE_URL", err.Error())
	}
	cfg.Database = db

	if cfg.RedisURL != "" {
		u, err := url.Parse(cfg.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("APP_REDIS_URL", "must be a redis:// or rediss:// URL with a host")
		}
	}
	if raw := get("APP_CORS_ORIGINS", ""); raw != "" {
		for _, o := range strings.Split(raw, ",") {
			o = strings.TrimSpace(o)
			if err := checkOrigin(o, cfg.Env); err != nil {
				bad("APP_CORS_ORIGINS", err.Error())
				continue
			}
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		bad("APP_TLS_CERT_FILE/APP_TLS_KEY_FILE", "must be set together")
	}
	src, err := ParseSecretsSource(get("APP_SECRETS", "env"))
	if err != nil {
		bad("APP_SECRETS", err.Error())
	}
	cfg.Secrets = src

	cfg.SessionIdle = duration(get, bad, "APP_SESSION_IDLE_TIMEOUT", models.DefaultSessionIdleTimeout, time.Minute, 24*time.Hour)
	cfg.SessionMax = duration(get, bad, "APP_SESSION_ABSOLUTE_TIMEOUT", models.DefaultSessionAbsoluteTimeout, time.Minute, 30*24*time.Hour)
	if cfg.SessionIdle > cfg.SessionMax {
		bad("APP_SESSION_IDLE_TIMEOUT", "must not be longer than APP_SESSION_ABSOLUTE_TIMEOUT")
	}
	cfg.BodyLimit = 64 << 10
	if s := get("APP_BODY_LIMIT", ""); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1024 || n > 1<<20 {
			bad("APP_BODY_LIMIT", "must be a number of bytes between 1024 and 1048576")
		}
		cfg.BodyLimit = n
	}
	switch cfg.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("APP_LOG_LEVEL", "must be debug, info, warn or error")
	}

	if cfg.Env == EnvProduction && len(problems) == 0 {
		problems = append(problems, cfg.productionProblems()...)
	}
	if len(problems) > 0 {
		return cfg, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

func duration(get func(string, string) string, bad func(string, string), name string, def, min, max time.Duration) time.Duration {
	s := get(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < min || d > max {
		bad(name, fmt.Sprintf("must be a duration between %s and %s, e.g. 15m", min, max))
		return def
	}
	return d
}

// checkOrigin accepts a browser origin: scheme://host[:port] with nothing
// after it. Plain http is only for localhost in development.
func checkOrigin(o, env string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must list origins like https://app.example.com (scheme, host and optional port only)")
	}
	if o == "*" || strings.Contains(u.Host, "*") {
		return errors.New("must not contain wildcards")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if env == EnvDevelopment && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1") {
			return nil
		}
	}
	return errors.New("must use https (http only for localhost in development)")
}

// productionProblems lists the development defaults production refuses.
func (c Config) productionProblems() []string {
	var p []string
	if c.TLSCertFile == "" {
		p = append(p, "APP_TLS_CERT_FILE/APP_TLS_KEY_FILE must be set in production: a self-made development certificate is refused")
	}
	if c.Secrets.Kind == SecretsEnv {
		p = append(p, "APP_SECRETS=env is for development only: use file:DIR in production (environment variables leak into process listings, crash dumps and child processes)")
	}
	switch c.Database.Dialect {
	case models.SQLite:
		if inTempDir(c.Database.Path) {
			p = append(p, "APP_DATABASE_URL must not put SQLite in a temporary folder in production: its data would be lost")
		}
	case models.Postgres:
		if !c.Database.AllHostsLoopback() && !c.Database.TLSVerified {
			p = append(p, "APP_DATABASE_URL must use sslmode=verify-full for a non-loopback PostgreSQL host in production")
		}
	}
	return p
}

func inTempDir(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return true
	}
	for _, tmp := range []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm"} {
		if t, err := filepath.Abs(tmp); err == nil {
			if rel, err := filepath.Rel(t, abs); err == nil && !strings.HasPrefix(rel, "..") {
				return true
			}
		}
	}
	return false
}

// Redacted returns the configuration as "NAME=value" lines with secrets
// and passwords removed, for `rampart config` and the start-up log.
func (c Config) Redacted() []string {
	return []string{
		"APP_ENV=" + c.Env,
		"APP_ADDR=" + c.Addr,
		"APP_DATA_DIR=" + c.DataDir,
		"APP_DATABASE_URL=" + c.Database.Redacted(),
		"APP_REDIS_URL=" + models.RedactURL(c.RedisURL),
		"APP_CORS_ORIGINS=" + strings.Join(c.CORSOrigins, ","),
		"APP_TLS_CERT_FILE=" + c.TLSCertFile,
		"APP_TLS_KEY_FILE=" + c.TLSKeyFile,
		"APP_SECRETS=" + c.Secrets.String(),
		"APP_SESSION_IDLE_TIMEOUT=" + c.SessionIdle.String(),
		"APP_SESSION_ABSOLUTE_TIMEOUT=" + c.SessionMax.String(),
		"APP_BODY_LIMIT=" + strconv.FormatInt(c.BodyLimit, 10),
		"APP_LOG_LEVEL=" + c.LogLevel,
	}
}

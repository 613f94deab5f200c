package app

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatalf("LoadConfig with nothing set: %v", err)
	}
	want := Config{
		Env:         EnvDevelopment,
		Addr:        "localhost:8443",
		DataDir:     "data",
		Secrets:     SecretsSource{Kind: SecretsEnv},
		SessionIdle: 15 * time.Minute,
		SessionMax:  4 * time.Hour,
		BodyLimit:   64 << 10,
		LogLevel:    "info",
	}
	if cfg.Env != want.Env || cfg.Addr != want.Addr || cfg.DataDir != want.DataDir || cfg.Secrets != want.Secrets ||
		cfg.SessionIdle != want.SessionIdle || cfg.SessionMax != want.SessionMax || cfg.BodyLimit != want.BodyLimit ||
		cfg.LogLevel != want.LogLevel || !cfg.RedisURL.IsZero() || len(cfg.CORSOrigins) != 0 ||
		cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if cfg.Database.Dialect != models.SQLite || cfg.Database.Path != filepath.Join("data", "rampart.db") {
		t.Errorf("default database: %s %q, want SQLite data/rampart.db", cfg.Database.Dialect, cfg.Database.Path)
	}
}

// TestVariablesAreDocumented keeps `rampart help` (Variables) and `rampart
// config` (Redacted) listing the same variables.
func TestVariablesAreDocumented(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	var printed, documented []string
	for _, line := range cfg.Redacted() {
		name, _, _ := strings.Cut(line, "=")
		printed = append(printed, name)
	}
	for _, v := range Variables {
		documented = append(documented, v.Name)
	}
	if !slices.Equal(printed, documented) {
		t.Errorf("Redacted prints %v,\nVariables documents %v", printed, documented)
	}
}

// configProblems runs LoadConfig and returns its problems, failing the test
// if the error is not a *ConfigError.
func configProblems(tb testing.TB, v vars) []string {
	tb.Helper()
	_, err := LoadConfig(v.get)
	if err == nil {
		return nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		tb.Fatalf("LoadConfig error is %T, want *ConfigError: %v", err, err)
	}
	if len(ce.Problems) == 0 {
		tb.Fatalf("ConfigError without problems")
	}
	return ce.Problems
}

func TestLoadConfigRejectsEachBadVariable(t *testing.T) {
	tests := []struct {
		name, value string
		names       string // what the problem must start with
		extra       vars   // other variables for the case
	}{
		{"APP_ENV", "staging", "APP_ENV", nil},
		{"APP_ENV", "Production", "APP_ENV", nil},
		{"APP_ADDR", "localhost", "APP_ADDR", nil},
		{"APP_ADDR", "localhost:0", "APP_ADDR", nil},
		{"APP_ADDR", "localhost:65536", "APP_ADDR", nil},
		{"APP_ADDR", "localhost:https", "APP_ADDR", nil},
		{"APP_DATABASE_URL", "postgres://app@db.example.com:notaport/app", "APP_DATABASE_URL", nil},
		{"APP_DATABASE_URL", "postgres://app@db.example.com/app?sslmode=sometimes", "APP_DATABASE_URL", nil},
		{"APP_DATABASE_URL", "sqlite:", "APP_DATABASE_URL", nil},
		{"APP_DATABASE_URL", "sqlite:/var/lib/rampart.db?mode=memory", "APP_DATABASE_URL", nil},
		{"APP_REDIS_URL", "http://cache.example.com:6379", "APP_REDIS_URL", nil},
		{"APP_REDIS_URL", "redis://", "APP_REDIS_URL", nil},
		{"APP_CORS_ORIGINS", "*", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "http://evil.example", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "https://app.example.com,http://evil.example", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "https://*.example.com", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "https://app.example.com/path", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "https://user@app.example.com", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "null", "APP_CORS_ORIGINS", nil},
		{"APP_CORS_ORIGINS", "http://localhost:3000", "APP_CORS_ORIGINS", vars{"APP_ENV": EnvProduction}},
		{"APP_TLS_CERT_FILE", "/etc/rampart/cert.pem", "APP_TLS_CERT_FILE/APP_TLS_KEY_FILE", nil},
		{"APP_TLS_KEY_FILE", "/etc/rampart/key.pem", "APP_TLS_CERT_FILE/APP_TLS_KEY_FILE", nil},
		{"APP_SECRETS", "vault", "APP_SECRETS", nil},
		{"APP_SECRETS", "file:", "APP_SECRETS", nil},
		{"APP_SECRETS", "aws-secretsmanager:", "APP_SECRETS", nil},
		{"APP_SECRETS", "aws-secretsmanager:two words", "APP_SECRETS", nil},
		{"APP_SECRETS_REFRESH", "500ms", "APP_SECRETS_REFRESH", nil},
		{"APP_SECRETS_REFRESH", "25h", "APP_SECRETS_REFRESH", nil},
		{"APP_SECRETS_REFRESH", "often", "APP_SECRETS_REFRESH", nil},
		{"APP_SESSION_IDLE_TIMEOUT", "forever", "APP_SESSION_IDLE_TIMEOUT", nil},
		{"APP_SESSION_IDLE_TIMEOUT", "10s", "APP_SESSION_IDLE_TIMEOUT", nil},
		{"APP_SESSION_IDLE_TIMEOUT", "25h", "APP_SESSION_IDLE_TIMEOUT", nil},
		{"APP_SESSION_CACHE_TTL", "31s", "APP_SESSION_CACHE_TTL", nil},
		{"APP_SESSION_CACHE_TTL", "-1s", "APP_SESSION_CACHE_TTL", nil},
		{"APP_SESSION_CACHE_TTL", "soon", "APP_SESSION_CACHE_TTL", nil},
		{"APP_SESSION_ABSOLUTE_TIMEOUT", "0", "APP_SESSION_ABSOLUTE_TIMEOUT", nil},
		{"APP_SESSION_ABSOLUTE_TIMEOUT", "1000h", "APP_SESSION_ABSOLUTE_TIMEOUT", nil},
		// Idle longer than absolute: the idle limit could never apply.
		{"APP_SESSION_IDLE_TIMEOUT", "2h", "APP_SESSION_IDLE_TIMEOUT", vars{"APP_SESSION_ABSOLUTE_TIMEOUT": "1h"}},
		{"APP_BODY_LIMIT", "10", "APP_BODY_LIMIT", nil},
		{"APP_BODY_LIMIT", "2097152", "APP_BODY_LIMIT", nil},
		{"APP_BODY_LIMIT", "64k", "APP_BODY_LIMIT", nil},
		{"APP_BODY_LIMIT", "-1", "APP_BODY_LIMIT", nil},
		{"APP_LOG_LEVEL", "trace", "APP_LOG_LEVEL", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			v := tt.extra.with(tt.name, tt.value)
			problems := configProblems(t, v)
			if len(problems) != 1 {
				t.Fatalf("problems = %q, want exactly one", problems)
			}
			if !strings.HasPrefix(problems[0], tt.names+" ") {
				t.Errorf("problem %q does not start with %s", problems[0], tt.names)
			}
			_, err := LoadConfig(v.get)
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("error %q does not name %s", err, tt.names)
			}
		})
	}
}

func TestLoadConfigAcceptsGoodValues(t *testing.T) {
	cfg, err := LoadConfig(vars{
		"APP_ADDR":                     "127.0.0.1:9443",
		"APP_CORS_ORIGINS":             " https://app.example.com , http://localhost:3000",
		"APP_REDIS_URL":                "rediss://cache.example.com:6380/0",
		"APP_SESSION_IDLE_TIMEOUT":     "30m",
		"APP_SESSION_ABSOLUTE_TIMEOUT": "30m",
		"APP_BODY_LIMIT":               "1048576",
		"APP_LOG_LEVEL":                "debug",
		"APP_SECRETS":                  "file:/run/secrets/rampart",
		"APP_SECRETS_REFRESH":          "30s",
		"APP_SESSION_CACHE_TTL":        "0",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SessionCacheTTL != 0 {
		t.Errorf("SessionCacheTTL = %s, want 0 (no cache)", cfg.SessionCacheTTL)
	}
	if cfg.SecretsRefresh != 30*time.Second {
		t.Errorf("SecretsRefresh = %s, want 30s", cfg.SecretsRefresh)
	}
	if !slices.Equal(cfg.CORSOrigins, []string{"https://app.example.com", "http://localhost:3000"}) {
		t.Errorf("CORSOrigins = %q", cfg.CORSOrigins)
	}
	if cfg.SessionIdle != 30*time.Minute || cfg.SessionMax != 30*time.Minute || cfg.BodyLimit != 1<<20 ||
		cfg.Secrets != (SecretsSource{Kind: SecretsFile, Dir: "/run/secrets/rampart"}) {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestLoadConfigReportsEveryProblemAtOnce(t *testing.T) {
	bad := vars{
		"APP_ENV":          "staging",
		"APP_ADDR":         "nowhere",
		"APP_CORS_ORIGINS": "*",
		"APP_BODY_LIMIT":   "1",
		"APP_LOG_LEVEL":    "loud",
	}
	problems := configProblems(t, bad)
	if len(problems) != len(bad) {
		t.Errorf("problems = %q, want one per bad variable (%d)", problems, len(bad))
	}
	_, err := LoadConfig(bad.get)
	for name := range bad {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// productionVars is a production configuration without development
// defaults (LoadConfig does not read the files it names).
func productionVars() vars {
	return vars{
		"APP_ENV":           EnvProduction,
		"APP_TLS_CERT_FILE": "/etc/rampart/tls/cert.pem",
		"APP_TLS_KEY_FILE":  "/etc/rampart/tls/key.pem",
		"APP_SECRETS":       "file:/run/secrets/rampart",
		"APP_DATABASE_URL":  "sqlite:/var/lib/rampart/rampart.db",
	}
}

func TestProductionRefusesDevelopmentDefaults(t *testing.T) {
	if _, err := LoadConfig(productionVars().get); err != nil {
		t.Fatalf("a production configuration without development defaults is refused: %v", err)
	}
	tests := []struct {
		what string
		v    vars
		want []string // each must appear in the one problem
	}{
		{"no TLS files: self-made certificate", productionVars().with("APP_TLS_CERT_FILE", "", "APP_TLS_KEY_FILE", ""),
			[]string{"APP_TLS_CERT_FILE", "self-made"}},
		{"secrets from the environment", productionVars().with("APP_SECRETS", "env"),
			[]string{"APP_SECRETS=env"}},
		{"SQLite in the temporary folder", productionVars().with("APP_DATABASE_URL", "sqlite:"+filepath.Join(os.TempDir(), "rampart", "rampart.db")),
			[]string{"APP_DATABASE_URL", "SQLite", "temporary"}},
		{"SQLite in a temporary data folder", productionVars().with("APP_DATABASE_URL", "", "APP_DATA_DIR", filepath.Join(os.TempDir(), "rampart-data")),
			[]string{"APP_DATABASE_URL", "temporary"}},
		{"remote PostgreSQL without TLS settings", productionVars().with("APP_DATABASE_URL", "postgres://app@db.example.com/app"),
			[]string{"APP_DATABASE_URL", "verify-full"}},
		{"remote PostgreSQL with sslmode=require", productionVars().with("APP_DATABASE_URL", "postgres://app@db.example.com/app?sslmode=require"),
			[]string{"APP_DATABASE_URL", "verify-full"}},
		{"remote PostgreSQL with sslmode=verify-ca", productionVars().with("APP_DATABASE_URL", "postgres://app@db.example.com/app?sslmode=verify-ca"),
			[]string{"APP_DATABASE_URL", "verify-full"}},
		{"a loopback and a remote PostgreSQL host", productionVars().with("APP_DATABASE_URL", "postgres://app@127.0.0.1,db.example.com/app?sslmode=disable"),
			[]string{"APP_DATABASE_URL", "verify-full"}},
		{"a default database password", productionVars().with("APP_DATABASE_URL", "postgres://app:change-me@127.0.0.1/app"),
			[]string{"APP_DATABASE_URL", "known default"}},
		{"a database password that is the user name's default", productionVars().with("APP_DATABASE_URL", "postgres://postgres:postgres@localhost/app"),
			[]string{"APP_DATABASE_URL", "known default"}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			problems := configProblems(t, tt.v)
			if len(problems) != 1 {
				t.Fatalf("problems = %q, want exactly one", problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(problems[0], w) {
					t.Errorf("problem %q does not say %q", problems[0], w)
				}
			}
		})
	}

	t.Run("all development defaults", func(t *testing.T) {
		problems := configProblems(t, vars{"APP_ENV": EnvProduction, "APP_DATA_DIR": filepath.Join(os.TempDir(), "rampart-data")})
		for _, w := range []string{"APP_TLS_CERT_FILE", "APP_SECRETS=env", "APP_DATABASE_URL"} {
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
				t.Errorf("problems %q do not name %s", problems, w)
			}
		}
	})

	for _, ok := range []string{
		"postgres://app@db.example.com/app?sslmode=verify-full",
		"postgres://app@127.0.0.1/app?sslmode=disable",
		"postgres://app@localhost:5432/app",
		"postgres://app@[::1]:5432/app",
		"postgres://app:Vq8mZ3tXk1pR7sLw@localhost:5432/app",
	} {
		t.Run("accepts "+ok, func(t *testing.T) {
			if _, err := LoadConfig(productionVars().with("APP_DATABASE_URL", ok).get); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}
}

// The passwords used below; none may ever be printed.
const (
	dbPassword    = "dbPassw0rdSecret"
	redisPassword = "redisPassw0rdSecret"
)

func TestRedactedHidesPasswords(t *testing.T) {
	tests := []struct{ db, redis string }{
		{"postgres://app:" + dbPassword + "@db.example.com/app?sslmode=verify-full",
			"rediss://:" + redisPassword + "@cache.example.com:6380/0"},
		{"postgres://app:" + dbPassword + "@db.example.com/app?sslmode=verify-full",
			"redis://default:" + redisPassword + "@cache.example.com:6379/0"},
		// libpq and pgx also take the password as a query parameter.
		{"postgres://app@db.example.com/app?sslmode=verify-full&password=" + dbPassword,
			"redis://cache.example.com:6379/0?password=" + redisPassword},
		{"postgresql://app@db.example.com/app?sslmode=verify-full&sslpassword=" + dbPassword,
			"redis://cache.example.com:6379/0"},
	}
	for _, tt := range tests {
		cfg, err := LoadConfig(vars{"APP_DATABASE_URL": tt.db, "APP_REDIS_URL": tt.redis}.get)
		if err != nil {
			t.Fatalf("LoadConfig: %v", err)
		}
		out := strings.Join(cfg.Redacted(), "\n")
		if strings.Contains(out, dbPassword) || strings.Contains(out, redisPassword) {
			t.Errorf("Redacted shows a password:\n%s", out)
		}
		if !strings.Contains(out, "db.example.com") || !strings.Contains(out, "cache.example.com") {
			t.Errorf("Redacted hides more than the passwords:\n%s", out)
		}
	}

	// A value that does not parse cannot be redacted piece by piece, so it
	// is not printed at all (Redacted of a Config that LoadConfig refused).
	cfg := Config{RedisURL: models.NewSecret("redis://:" + redisPassword + "%zz@cache.example.com")}
	if out := strings.Join(cfg.Redacted(), "\n"); strings.Contains(out, redisPassword) {
		t.Errorf("Redacted shows the password of an invalid Redis URL:\n%s", out)
	}
}

func TestConfigErrorsNeverShowPasswords(t *testing.T) {
	for _, v := range []vars{
		{"APP_DATABASE_URL": "postgres://app:" + dbPassword + "@db.example.com:notaport/app"},
		{"APP_DATABASE_URL": "postgres://app:" + dbPassword + "%zz@db.example.com/app"},
		{"APP_DATABASE_URL": "postgres://app@db.example.com/app?sslmode=bogus&password=" + dbPassword},
		{"APP_REDIS_URL": "http://:" + redisPassword + "@cache.example.com"},
		{"APP_REDIS_URL": "redis://:" + redisPassword + "%zz@cache.example.com"},
		{"APP_REDIS_URL": "redis://:" + redisPassword + "@"},
		// Production refusals quote no URL either.
		productionVars().with("APP_DATABASE_URL", "postgres://app:"+dbPassword+"@db.example.com/app"),
	} {
		_, err := LoadConfig(v.get)
		if err == nil {
			t.Errorf("%v accepted", v)
			continue
		}
		if strings.Contains(err.Error(), dbPassword) || strings.Contains(err.Error(), redisPassword) {
			t.Errorf("the error shows a password: %v", err)
		}
	}
}

func TestLoadConfigTransportDefaults(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsAddr != "127.0.0.1:9090" || cfg.MTLSAddr != "" || cfg.MTLSClientCA != "" || cfg.CORSCredentials ||
		len(cfg.TrustedProxies) != 0 || len(cfg.ACMEDomains) != 0 || cfg.ACMEEmail != "" ||
		cfg.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" {
		t.Errorf("transport defaults: %+v", cfg)
	}
}

// TestLoadConfigRejectsBadTransportValues: each bad value of the transport
// variables is one problem that names its variable.
func TestLoadConfigRejectsBadTransportValues(t *testing.T) {
	ca := vars{"APP_MTLS_CLIENT_CA": "/etc/rampart/clients-ca.pem"}
	tests := []struct {
		name, value string
		names       string
		extra       vars
	}{
		{"APP_TRUSTED_PROXIES", "not-an-ip", "APP_TRUSTED_PROXIES", nil},
		{"APP_TRUSTED_PROXIES", "10.0.0.0/33", "APP_TRUSTED_PROXIES", nil},
		{"APP_TRUSTED_PROXIES", "10.0.0.0/8,proxy.example.com", "APP_TRUSTED_PROXIES", nil},
		{"APP_TRUSTED_PROXIES", "*", "APP_TRUSTED_PROXIES", nil},
		{"APP_TRUSTED_PROXIES", "10.0.0.1-10.0.0.9", "APP_TRUSTED_PROXIES", nil},
		{"APP_ACME_DOMAINS", "*.example.com", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "203.0.113.7", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "localhost", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "api.example.com:443", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "https://api.example.com", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "api_1.example.com", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "-api.example.com", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "api..example.com", "APP_ACME_DOMAINS", nil},
		{"APP_ACME_DOMAINS", "api.example.com", "APP_ACME_DOMAINS",
			vars{"APP_TLS_CERT_FILE": "/etc/rampart/cert.pem", "APP_TLS_KEY_FILE": "/etc/rampart/key.pem"}},
		{"APP_ACME_EMAIL", "ops", "APP_ACME_EMAIL", nil},
		{"APP_ACME_DIRECTORY", "http://acme.example.com/directory", "APP_ACME_DIRECTORY", nil},
		{"APP_ACME_DIRECTORY", "acme.example.com/directory", "APP_ACME_DIRECTORY", nil},
		{"APP_ACME_DIRECTORY", "https:///directory", "APP_ACME_DIRECTORY", nil},
		{"APP_MTLS_ADDR", "localhost", "APP_MTLS_ADDR", ca},
		{"APP_MTLS_ADDR", "localhost:0", "APP_MTLS_ADDR", ca},
		{"APP_MTLS_ADDR", "localhost:8444", "APP_MTLS_ADDR", nil}, // no CA to verify clients against
		{"APP_MTLS_ADDR", "localhost:8443", "APP_MTLS_ADDR", ca},  // the public listener's address
		{"APP_METRICS_ADDR", "9090", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "localhost:99999", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "on", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "localhost:8443", "APP_METRICS_ADDR", nil}, // the public listener's address
		{"APP_METRICS_ADDR", "127.0.0.1:8444", "APP_METRICS_ADDR", ca.with("APP_MTLS_ADDR", "127.0.0.1:8444")},
		// Not loopback and no client CA: metrics would be open to the network.
		{"APP_METRICS_ADDR", "0.0.0.0:9090", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", ":9090", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "[::]:9090", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "10.1.2.3:9090", "APP_METRICS_ADDR", nil},
		{"APP_METRICS_ADDR", "metrics.internal:9090", "APP_METRICS_ADDR", nil},
		{"APP_CORS_CREDENTIALS", "yes", "APP_CORS_CREDENTIALS", nil},
		{"APP_CORS_CREDENTIALS", "1", "APP_CORS_CREDENTIALS", nil},
		{"APP_CORS_CREDENTIALS", "TRUE", "APP_CORS_CREDENTIALS", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			problems := configProblems(t, tt.extra.with(tt.name, tt.value))
			if len(problems) != 1 {
				t.Fatalf("problems = %q, want exactly one", problems)
			}
			if !strings.HasPrefix(problems[0], tt.names+" ") {
				t.Errorf("problem %q does not start with %s", problems[0], tt.names)
			}
		})
	}
}

func TestLoadConfigAcceptsTransportValues(t *testing.T) {
	cfg, err := LoadConfig(vars{
		"APP_TRUSTED_PROXIES":  " 10.0.0.0/8 , 192.168.1.10,::1, fd00::/8",
		"APP_ACME_DOMAINS":     "API.Example.com,www.example.com",
		"APP_ACME_EMAIL":       "ops@example.com",
		"APP_ACME_DIRECTORY":   "https://acme-staging-v02.api.letsencrypt.org/directory",
		"APP_MTLS_ADDR":        "0.0.0.0:8444",
		"APP_MTLS_CLIENT_CA":   "/etc/rampart/clients-ca.pem",
		"APP_METRICS_ADDR":     "0.0.0.0:9090", // not loopback: allowed with the client CA
		"APP_CORS_CREDENTIALS": "true",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	var proxies []string
	for _, n := range cfg.TrustedProxies {
		proxies = append(proxies, n.String())
	}
	if !slices.Equal(proxies, []string{"10.0.0.0/8", "192.168.1.10/32", "::1/128", "fd00::/8"}) {
		t.Errorf("TrustedProxies = %q", proxies)
	}
	if !slices.Equal(cfg.ACMEDomains, []string{"api.example.com", "www.example.com"}) || cfg.ACMEEmail != "ops@example.com" ||
		cfg.ACMEDirectory != "https://acme-staging-v02.api.letsencrypt.org/directory" {
		t.Errorf("ACME: %q %q %q", cfg.ACMEDomains, cfg.ACMEEmail, cfg.ACMEDirectory)
	}
	if cfg.MTLSAddr != "0.0.0.0:8444" || cfg.MTLSClientCA != "/etc/rampart/clients-ca.pem" || cfg.MetricsAddr != "0.0.0.0:9090" || !cfg.CORSCredentials {
		t.Errorf("cfg = %+v", cfg)
	}

	for _, addr := range []string{"127.0.0.1:9191", "127.0.0.53:9090", "localhost:9090", "[::1]:9090"} {
		if cfg, err := LoadConfig(vars{"APP_METRICS_ADDR": addr}.get); err != nil || cfg.MetricsAddr != addr {
			t.Errorf("APP_METRICS_ADDR=%s (loopback, no client CA): %v", addr, err)
		}
	}
	if cfg, err := LoadConfig(vars{"APP_METRICS_ADDR": "off"}.get); err != nil || cfg.MetricsAddr != "" {
		t.Errorf("APP_METRICS_ADDR=off: %q %v, want no metrics listener", cfg.MetricsAddr, err)
	}
}

func TestCORSOrigins(t *testing.T) {
	normalised := []struct {
		in   string
		want []string
		env  string
	}{
		{"HTTPS://App.Example.com:443/", []string{"https://app.example.com"}, EnvProduction},
		{"https://app.example.com:8443", []string{"https://app.example.com:8443"}, EnvProduction},
		{"https://app.example.com, HTTPS://APP.EXAMPLE.COM/", []string{"https://app.example.com"}, EnvProduction},
		{"https://[::1]:443", []string{"https://[::1]"}, EnvProduction},
		{"https://a.example.com,https://b.example.com", []string{"https://a.example.com", "https://b.example.com"}, EnvProduction},
		{"http://LOCALHOST:80/", []string{"http://localhost"}, EnvDevelopment},
		{"http://127.0.0.1:5173", []string{"http://127.0.0.1:5173"}, EnvDevelopment},
	}
	for _, tt := range normalised {
		t.Run("normalised: "+tt.in, func(t *testing.T) {
			v := vars{"APP_CORS_ORIGINS": tt.in}
			if tt.env == EnvProduction {
				v = productionVars().with("APP_CORS_ORIGINS", tt.in)
			}
			cfg, err := LoadConfig(v.get)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.CORSOrigins, tt.want) {
				t.Errorf("CORSOrigins = %q, want %q", cfg.CORSOrigins, tt.want)
			}
		})
	}

	refused := []struct {
		in  string
		env string
	}{
		{"*", EnvDevelopment},
		{"https://*", EnvDevelopment},
		{"https://*.example.com", EnvDevelopment},
		{"https://app.example.*", EnvDevelopment},
		{"https://app?.example.com", EnvDevelopment},
		{"https://app.example.com/app", EnvDevelopment},
		{"https://app.example.com/*", EnvDevelopment},
		{"https://app.example.com?x=1", EnvDevelopment},
		{"https://app.example.com#top", EnvDevelopment},
		{"https://user:pw@app.example.com", EnvDevelopment},
		{"https://app.example.com:0", EnvDevelopment},
		{"https://app.example.com:70000", EnvDevelopment},
		{"app.example.com", EnvDevelopment},
		{"null", EnvDevelopment},
		{"file:///home/me/app.html", EnvDevelopment},
		{"ws://app.example.com", EnvDevelopment},
		{"http://app.example.com", EnvDevelopment},
		{"http://app.example.com", EnvProduction},
		{"http://localhost:3000", EnvProduction},
		{"http://127.0.0.1:3000", EnvProduction},
	}
	for _, tt := range refused {
		t.Run("refused in "+tt.env+": "+tt.in, func(t *testing.T) {
			v := vars{"APP_CORS_ORIGINS": tt.in}
			if tt.env == EnvProduction {
				v = productionVars().with("APP_CORS_ORIGINS", tt.in)
			}
			problems := configProblems(t, v)
			if len(problems) != 1 || !strings.HasPrefix(problems[0], "APP_CORS_ORIGINS ") {
				t.Errorf("problems = %q, want one naming APP_CORS_ORIGINS", problems)
			}
		})
	}
}

func TestProductionAcceptsACME(t *testing.T) {
	v := productionVars().with("APP_TLS_CERT_FILE", "", "APP_TLS_KEY_FILE", "", "APP_ACME_DOMAINS", "api.example.com")
	cfg, err := LoadConfig(v.get)
	if err != nil {
		t.Fatalf("production with ACME instead of certificate files: %v", err)
	}
	if !slices.Equal(cfg.ACMEDomains, []string{"api.example.com"}) {
		t.Errorf("ACMEDomains = %q", cfg.ACMEDomains)
	}
	// Neither: the problem says both ways out.
	problems := configProblems(t, v.with("APP_ACME_DOMAINS", ""))
	if len(problems) != 1 || !strings.Contains(problems[0], "APP_TLS_CERT_FILE") || !strings.Contains(problems[0], "APP_ACME_DOMAINS") {
		t.Errorf("problems = %q, want one naming APP_TLS_CERT_FILE and APP_ACME_DOMAINS", problems)
	}
	// serverTLSConfig in production with ACME makes no development
	// certificate.
	cfg.DataDir = t.TempDir()
	if _, err := serverTLSConfig(cfg, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); !os.IsNotExist(err) {
		t.Errorf("production with ACME wrote a development PKI: %v", err)
	}
}

package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-go/rampart/middleware"
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
	RedisURL    models.Secret      // APP_REDIS_URL: shared rate limits (optional); may hold a password
	CORSOrigins []string           // APP_CORS_ORIGINS: comma-separated allowlist
	TLSCertFile string             // APP_TLS_CERT_FILE
	TLSKeyFile  string             // APP_TLS_KEY_FILE
	Secrets     SecretsSource      // APP_SECRETS: env | file:DIR | aws-secretsmanager:NAME
	SessionIdle time.Duration      // APP_SESSION_IDLE_TIMEOUT
	SessionMax  time.Duration      // APP_SESSION_ABSOLUTE_TIMEOUT
	// SessionCacheTTL is how long a verified session token is believed
	// without the database (APP_SESSION_CACHE_TTL; 0: no cache).
	SessionCacheTTL time.Duration
	BodyLimit       int64  // APP_BODY_LIMIT: bytes
	LogLevel        string // APP_LOG_LEVEL: debug | info | warn | error

	SecretsRefresh time.Duration // APP_SECRETS_REFRESH: how long secrets are cached before they are read again

	CORSCredentials bool         // APP_CORS_CREDENTIALS: allow credentialed CORS requests
	TrustedProxies  []*net.IPNet // APP_TRUSTED_PROXIES: peers whose X-Forwarded-For is believed
	ACMEDomains     []string     // APP_ACME_DOMAINS: host names to get certificates for (ACME)
	ACMEEmail       string       // APP_ACME_EMAIL: contact for the ACME account
	ACMEDirectory   string       // APP_ACME_DIRECTORY: ACME directory URL
	MTLSAddr        string       // APP_MTLS_ADDR: host:port of the service (mTLS) listener; "" = off
	MTLSClientCA    string       // APP_MTLS_CLIENT_CA: PEM file of the CA pinned for client certificates
	MetricsAddr     string       // APP_METRICS_ADDR: host:port of the metrics listener; "" = off

	Limits            middleware.Limits // APP_RATE_* and APP_LOGIN_*: rate-limit policies
	Quotas            models.Quotas     // APP_QUOTA_*: per-owner resource quotas
	Argon2Budget      int64             // APP_ARGON2_MEMORY_BUDGET: bytes of concurrent hashing memory
	Argon2Concurrency int               // APP_ARGON2_CONCURRENCY: hashes at once at most
	RequestTimeout    time.Duration     // APP_REQUEST_TIMEOUT: per-request deadline
	ReportConcurrency int               // APP_REPORT_CONCURRENCY: report pages per user at once

	WebhookPorts       []int         // APP_WEBHOOK_PORTS: destination ports webhook URLs may use
	WebhookTimeout     time.Duration // APP_WEBHOOK_TIMEOUT: one delivery attempt, connect to last byte
	WebhookMaxAttempts int           // APP_WEBHOOK_MAX_ATTEMPTS: attempts per delivery before it fails

	Anomaly middleware.AnomalyConfig // APP_ANOMALY_*, APP_GEOIP_DB, APP_ALERT_WEBHOOK_URL: anomaly detection
	// AlertWebhookAllow (APP_ALERT_WEBHOOK_ALLOW) are non-public ranges
	// the alert webhook, and only it, may reach: an internal receiver.
	AlertWebhookAllow []netip.Prefix
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
	{"APP_SECRETS", "env", "where secrets come from: env (APP_SECRET_<NAME>, development only), file:DIR (one file per secret, NAME.previous for the one before a rotation) or aws-secretsmanager:NAME (a JSON secret of named keys; AWS_REGION and credentials from the standard AWS chain)"},
	{"APP_SECRETS_REFRESH", "5m", "secrets are cached this long, then read again: a rotation takes effect within it (1s to 24h)"},
	{"APP_SESSION_IDLE_TIMEOUT", "15m", "a session ends after this long without use"},
	{"APP_SESSION_ABSOLUTE_TIMEOUT", "4h", "a session ends this long after login, whatever its use"},
	{"APP_SESSION_CACHE_TTL", "5s", "a verified session token is believed this long without a database read (0 to 30s; 0: no cache); revocations reach every instance at once through Redis, or stay in the one process on SQLite without Redis; PostgreSQL without Redis has no cache"},
	{"APP_BODY_LIMIT", "65536", "largest accepted request body, in bytes (1024 to 1048576)"},
	{"APP_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"APP_CORS_CREDENTIALS", "false", "true lets allowed origins send credentialed requests (cookies, TLS client certificates)"},
	{"APP_TRUSTED_PROXIES", "(none)", "comma-separated IPs or CIDR ranges of TLS-terminating proxies whose X-Forwarded-For is believed"},
	{"APP_ACME_DOMAINS", "(none)", "comma-separated public host names: certificates come from ACME (TLS-ALPN-01 on APP_ADDR, which must be port 443)"},
	{"APP_ACME_EMAIL", "(none)", "contact address for the ACME account"},
	{"APP_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory", "ACME directory URL (e.g. a staging CA)"},
	{"APP_MTLS_ADDR", "(off)", "host:port of the service-to-service listener, which requires client certificates"},
	{"APP_MTLS_CLIENT_CA", "(none)", "PEM CA certificate(s) pinned for client certificates on APP_MTLS_ADDR (and a non-loopback metrics listener)"},
	{"APP_METRICS_ADDR", "127.0.0.1:9090", "host:port of the HTTPS /metrics listener; off to disable; a non-loopback address needs APP_MTLS_CLIENT_CA"},
	{"APP_RATE_IP", "600", "requests a minute per client IP, every route"},
	{"APP_RATE_USER", "1200", "requests a minute per user (sessions and API keys together)"},
	{"APP_RATE_APIKEY_DEFAULT", "600", "requests a minute for an API key created without rate_limit"},
	{"APP_RATE_APIKEY_MAX", "1200", "the highest rate_limit an API key may ask for"},
	{"APP_RATE_LOGIN_IP", "20", "login attempts a minute per client IP"},
	{"APP_RATE_REGISTER_IP", "10", "registrations a minute per client IP"},
	{"APP_LOGIN_MAX_FAILURES", "5", "failed logins per account within APP_LOGIN_FAILURE_WINDOW before 429"},
	{"APP_LOGIN_FAILURE_WINDOW", "15m", "the failed-login window, counted from the first failure"},
	{"APP_QUOTA_PROJECTS", "100", "projects per user"},
	{"APP_QUOTA_TASKS", "1000", "tasks per project"},
	{"APP_QUOTA_APIKEYS", "20", "API keys per user"},
	{"APP_ARGON2_MEMORY_BUDGET", "128", "MiB of memory for concurrent password hashing (each hash takes 19 MiB)"},
	{"APP_ARGON2_CONCURRENCY", "cores − 1", "password hashes running at once at most (each keeps a core busy); default GOMAXPROCS − 1, at least 1"},
	{"APP_REQUEST_TIMEOUT", "10s", "deadline of every request"},
	{"APP_REPORT_CONCURRENCY", "2", "HTML report pages one user may render at once"},
	{"APP_WEBHOOK_PORTS", "443", "comma-separated destination ports a project webhook URL may use (https only, public addresses only)"},
	{"APP_WEBHOOK_TIMEOUT", "5s", "time limit of one webhook delivery attempt, connection to last byte (1s to 30s, below APP_REQUEST_TIMEOUT; default 5s or half of it, whichever is shorter)"},
	{"APP_WEBHOOK_MAX_ATTEMPTS", "6", "attempts per webhook delivery (with backoff from 30s to 1h) before it is marked failed (1 to 20)"},
	{"APP_ANOMALY_SCRAPE_OBJECTS", "100", "scraping alert: one principal reads more than this many distinct objects within APP_ANOMALY_SCRAPE_WINDOW (off to disable)"},
	{"APP_ANOMALY_SCRAPE_WINDOW", "1m", "the scraping window, from the principal's first read"},
	{"APP_ANOMALY_KEY_SPIKE_FACTOR", "5", "API-key spike alert: a key's requests in one bucket exceed this many times the mean of its previous buckets (off to disable)"},
	{"APP_ANOMALY_KEY_SPIKE_BUCKET", "1m", "the length of one API-key traffic bucket (10s to 1h)"},
	{"APP_ANOMALY_KEY_SPIKE_BASELINE", "10", "how many previous buckets make an API key's baseline (1 to 100)"},
	{"APP_ANOMALY_KEY_SPIKE_MIN", "60", "requests an API key makes in one bucket at least before it can alert"},
	{"APP_ANOMALY_BOLA_DENIALS", "20", "BOLA-probing alert: one principal refused (404/403) on this many distinct object ids within APP_ANOMALY_BOLA_WINDOW (off to disable)"},
	{"APP_ANOMALY_BOLA_WINDOW", "5m", "the BOLA-probing window, from the first refusal"},
	{"APP_ANOMALY_STUFFING_ACCOUNTS", "10", "credential-stuffing alert: failed logins for this many distinct accounts from one address (IPv6: one /64) within APP_ANOMALY_STUFFING_WINDOW (off to disable)"},
	{"APP_ANOMALY_STUFFING_WINDOW", "10m", "the credential-stuffing window, from the first failure"},
	{"APP_GEOIP_DB", "(none)", "MaxMind-format GeoIP database file (e.g. GeoLite2-Country.mmdb); when set, a login from a country new to its account alerts"},
	{"APP_ALERT_WEBHOOK_URL", "(none)", "https:// URL that receives each anomaly alert as a POST signed with the secret alert_webhook_key (X-Rampart-Signature); its host must be public unless APP_ALERT_WEBHOOK_ALLOW admits it"},
	{"APP_ALERT_WEBHOOK_ALLOW", "(none)", "comma-separated IPs or CIDR ranges of an internal alert receiver that the alert webhook (and nothing else) may reach although they are not public"},
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
		RedisURL:    models.NewSecret(get("APP_REDIS_URL", "")),
		TLSCertFile: get("APP_TLS_CERT_FILE", ""),
		TLSKeyFile:  get("APP_TLS_KEY_FILE", ""),
		LogLevel:    get("APP_LOG_LEVEL", "info"),
	}
	if cfg.Env != EnvDevelopment && cfg.Env != EnvProduction {
		bad("APP_ENV", "must be development or production")
	}
	// An empty host listens on every interface; the port must be explicit.
	if !validAddr(cfg.Addr) {
		bad("APP_ADDR", "must be host:port with a port between 1 and 65535, e.g. localhost:8443")
	}

	dbRaw := get("APP_DATABASE_URL", "sqlite:"+filepath.Join(cfg.DataDir, "rampart.db"))
	db, err := models.ParseDatabaseURL(dbRaw)
	if err != nil {
		bad("APP_DATABASE_URL", err.Error())
	}
	cfg.Database = db

	if !cfg.RedisURL.IsZero() {
		u, err := url.Parse(cfg.RedisURL.Reveal())
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("APP_REDIS_URL", "must be a redis:// or rediss:// URL with a host")
		}
	}
	if raw := get("APP_CORS_ORIGINS", ""); raw != "" {
		for _, o := range strings.Split(raw, ",") {
			origin, err := checkOrigin(strings.TrimSpace(o), cfg.Env)
			if err != nil {
				bad("APP_CORS_ORIGINS", err.Error())
				continue
			}
			if !slices.Contains(cfg.CORSOrigins, origin) {
				cfg.CORSOrigins = append(cfg.CORSOrigins, origin)
			}
		}
	}
	switch get("APP_CORS_CREDENTIALS", "false") {
	case "true":
		cfg.CORSCredentials = true
	case "false":
	default:
		bad("APP_CORS_CREDENTIALS", "must be true or false")
	}
	if raw := get("APP_TRUSTED_PROXIES", ""); raw != "" {
		for _, p := range strings.Split(raw, ",") {
			n, err := parseIPRange(strings.TrimSpace(p))
			if err != nil {
				bad("APP_TRUSTED_PROXIES", err.Error())
				continue
			}
			cfg.TrustedProxies = append(cfg.TrustedProxies, n)
		}
	}
	if raw := get("APP_ACME_DOMAINS", ""); raw != "" {
		for _, d := range strings.Split(raw, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if !validHostName(d) {
				bad("APP_ACME_DOMAINS", "must list public DNS names such as api.example.com (no IPs, wildcards or ports)")
				continue
			}
			cfg.ACMEDomains = append(cfg.ACMEDomains, d)
		}
		if cfg.TLSCertFile != "" {
			bad("APP_ACME_DOMAINS", "must not be set together with APP_TLS_CERT_FILE: choose files or ACME")
		}
	}
	cfg.ACMEEmail = get("APP_ACME_EMAIL", "")
	if cfg.ACMEEmail != "" && !models.ValidEmail(cfg.ACMEEmail) {
		bad("APP_ACME_EMAIL", "must be an e-mail address")
	}
	cfg.ACMEDirectory = get("APP_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory")
	if u, err := url.Parse(cfg.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("APP_ACME_DIRECTORY", "must be an https:// URL")
	}
	cfg.MTLSAddr = get("APP_MTLS_ADDR", "")
	cfg.MTLSClientCA = get("APP_MTLS_CLIENT_CA", "")
	if cfg.MTLSAddr != "" {
		if !validAddr(cfg.MTLSAddr) {
			bad("APP_MTLS_ADDR", "must be host:port with a port between 1 and 65535")
		}
		if cfg.MTLSClientCA == "" {
			bad("APP_MTLS_ADDR", "needs APP_MTLS_CLIENT_CA: the CA that client certificates must chain to")
		}
		if cfg.MTLSAddr == cfg.Addr {
			bad("APP_MTLS_ADDR", "must differ from APP_ADDR")
		}
	}
	cfg.MetricsAddr = get("APP_METRICS_ADDR", "127.0.0.1:9090")
	if cfg.MetricsAddr == "off" {
		cfg.MetricsAddr = ""
	}
	if cfg.MetricsAddr != "" {
		switch {
		case !validAddr(cfg.MetricsAddr):
			bad("APP_METRICS_ADDR", "must be host:port with a port between 1 and 65535, or off")
		case cfg.MetricsAddr == cfg.Addr || cfg.MetricsAddr == cfg.MTLSAddr:
			bad("APP_METRICS_ADDR", "must differ from APP_ADDR and APP_MTLS_ADDR: metrics are never on the API listener")
		case !loopbackAddr(cfg.MetricsAddr) && cfg.MTLSClientCA == "":
			bad("APP_METRICS_ADDR", "is not a loopback address: set APP_MTLS_CLIENT_CA so that scrapers must present a client certificate")
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
	cfg.SecretsRefresh = duration(get, bad, "APP_SECRETS_REFRESH", defaultSecretsRefresh, time.Second, 24*time.Hour)

	cfg.SessionIdle = duration(get, bad, "APP_SESSION_IDLE_TIMEOUT", models.DefaultSessionIdleTimeout, time.Minute, 24*time.Hour)
	cfg.SessionMax = duration(get, bad, "APP_SESSION_ABSOLUTE_TIMEOUT", models.DefaultSessionAbsoluteTimeout, time.Minute, 30*24*time.Hour)
	cfg.SessionCacheTTL = duration(get, bad, "APP_SESSION_CACHE_TTL", models.DefaultSessionCacheTTL, 0, models.MaxSessionCacheTTL)
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

	positive := func(name string, def, max int) int { return wholeVar(get, bad, name, def, max) }
	l := middleware.DefaultLimits()
	l.IP.Rate = positive("APP_RATE_IP", l.IP.Rate, 1_000_000)
	l.User.Rate = positive("APP_RATE_USER", l.User.Rate, 1_000_000)
	l.APIKeyDefault = positive("APP_RATE_APIKEY_DEFAULT", l.APIKeyDefault, 1_000_000)
	l.APIKeyMax = positive("APP_RATE_APIKEY_MAX", l.APIKeyMax, 1_000_000)
	l.LoginIP.Rate = positive("APP_RATE_LOGIN_IP", l.LoginIP.Rate, 1_000_000)
	l.RegisterIP.Rate = positive("APP_RATE_REGISTER_IP", l.RegisterIP.Rate, 1_000_000)
	l.LoginFailures = positive("APP_LOGIN_MAX_FAILURES", l.LoginFailures, 1000)
	l.LoginWindow = duration(get, bad, "APP_LOGIN_FAILURE_WINDOW", l.LoginWindow, time.Minute, 24*time.Hour)
	if l.APIKeyDefault > l.APIKeyMax {
		bad("APP_RATE_APIKEY_DEFAULT", "must not be above APP_RATE_APIKEY_MAX")
	}
	cfg.Limits = l
	cfg.Quotas = models.Quotas{
		ProjectsPerUser: positive("APP_QUOTA_PROJECTS", models.DefaultQuotas.ProjectsPerUser, 1_000_000),
		TasksPerProject: positive("APP_QUOTA_TASKS", models.DefaultQuotas.TasksPerProject, 1_000_000),
		APIKeysPerUser:  positive("APP_QUOTA_APIKEYS", models.DefaultQuotas.APIKeysPerUser, 1000),
	}
	cfg.Argon2Budget = int64(positive("APP_ARGON2_MEMORY_BUDGET", models.DefaultArgon2MemoryBudget>>20, 64<<10)) << 20
	cfg.Argon2Concurrency = positive("APP_ARGON2_CONCURRENCY", models.DefaultArgon2Concurrency(), 1024)
	cfg.RequestTimeout = duration(get, bad, "APP_REQUEST_TIMEOUT", 10*time.Second, time.Second, 5*time.Minute)
	cfg.ReportConcurrency = positive("APP_REPORT_CONCURRENCY", 2, 100)
	cfg.WebhookPorts = portList(get, bad, "APP_WEBHOOK_PORTS", []int{443})
	// By default half the request deadline, at most 5 s: a test delivery
	// runs inside a request.
	cfg.WebhookTimeout = duration(get, bad, "APP_WEBHOOK_TIMEOUT", min(5*time.Second, cfg.RequestTimeout/2), time.Second, 30*time.Second)
	if get("APP_WEBHOOK_TIMEOUT", "") != "" && cfg.WebhookTimeout >= cfg.RequestTimeout {
		bad("APP_WEBHOOK_TIMEOUT", "must be shorter than APP_REQUEST_TIMEOUT (a test delivery runs inside a request)")
	}
	cfg.WebhookMaxAttempts = positive("APP_WEBHOOK_MAX_ATTEMPTS", 6, 20)
	cfg.Anomaly = loadAnomalyConfig(get, bad)
	cfg.AlertWebhookAllow = loadAlertWebhookAllow(get, bad, cfg.Anomaly.AlertWebhookURL)

	if cfg.Env == EnvProduction && len(problems) == 0 {
		problems = append(problems, cfg.productionProblems()...)
	}
	if len(problems) > 0 {
		return cfg, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// portList reads name as comma-separated TCP ports (1 to 65535); unset is
// def.
func portList(get func(string, string) string, bad func(string, string), name string, def []int) []int {
	v := get(name, "")
	if v == "" {
		return def
	}
	var ports []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 65535 {
			bad(name, "must be a comma-separated list of ports from 1 to 65535")
			return def
		}
		ports = append(ports, n)
	}
	return ports
}

// wholeVar reads name as a whole number from 1 to max; unset is def, and
// anything else is reported through bad (and def is used).
func wholeVar(get func(string, string) string, bad func(string, string), name string, def, max int) int {
	v := get(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		bad(name, fmt.Sprintf("must be a whole number between 1 and %d", max))
		return def
	}
	return n
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

// checkOrigin accepts a browser origin, scheme://host[:port] with nothing
// after it, and returns it in the form browsers send in Origin: lower case,
// without a default port, without a trailing slash. Plain http is only for
// localhost in development.
func checkOrigin(o, env string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("must list origins like https://app.example.com (scheme, host and optional port only)")
	}
	if strings.ContainsAny(u.Host, "*?[]") && !strings.HasPrefix(u.Host, "[") {
		return "", errors.New("must not contain wildcards or patterns: origins match exactly")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", errors.New("must have a port between 1 and 65535")
		}
	}
	switch {
	case scheme == "https":
		if port == "443" {
			port = ""
		}
	case scheme == "http" && env == EnvDevelopment && (host == "localhost" || host == "127.0.0.1" || host == "::1"):
		if port == "80" {
			port = ""
		}
	default:
		return "", errors.New("must use https (http only for localhost in development)")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// validAddr reports whether s is host:port with a numeric port in range.
func validAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// loopbackAddr reports whether s binds to a loopback address only.
func loopbackAddr(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseIPRange reads an IP or a CIDR range.
func parseIPRange(s string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip.To4() != nil {
			ip, bits = ip.To4(), 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	return nil, errors.New("must list IP addresses or CIDR ranges such as 10.0.0.0/8")
}

// validHostName reports whether s is a DNS name with at least two labels,
// letters, digits and hyphens only.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 || net.ParseIP(s) != nil {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// productionProblems lists the development defaults production refuses.
func (c Config) productionProblems() []string {
	var p []string
	if c.TLSCertFile == "" && len(c.ACMEDomains) == 0 {
		p = append(p, "APP_TLS_CERT_FILE/APP_TLS_KEY_FILE (or APP_ACME_DOMAINS) must be set in production: a self-made development certificate is refused")
	}
	if c.Secrets.Kind == SecretsEnv {
		p = append(p, "APP_SECRETS=env is for development only: use file:DIR or aws-secretsmanager:NAME in production (environment variables leak into process listings, crash dumps and child processes)")
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
		if pw := c.Database.URLPassword(); !pw.IsZero() && knownDefault(pw.Reveal()) {
			p = append(p, "APP_DATABASE_URL holds a known default or placeholder password: production refuses it (better: leave the password out of the URL and keep it in the secret database_password)")
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
	return append([]string{
		"APP_ENV=" + c.Env,
		"APP_ADDR=" + c.Addr,
		"APP_DATA_DIR=" + c.DataDir,
		"APP_DATABASE_URL=" + c.Database.Redacted(),
		"APP_REDIS_URL=" + models.RedactURL(c.RedisURL.Reveal()),
		"APP_CORS_ORIGINS=" + strings.Join(c.CORSOrigins, ","),
		"APP_TLS_CERT_FILE=" + c.TLSCertFile,
		"APP_TLS_KEY_FILE=" + c.TLSKeyFile,
		"APP_SECRETS=" + c.Secrets.String(),
		"APP_SECRETS_REFRESH=" + c.SecretsRefresh.String(),
		"APP_SESSION_IDLE_TIMEOUT=" + c.SessionIdle.String(),
		"APP_SESSION_ABSOLUTE_TIMEOUT=" + c.SessionMax.String(),
		"APP_SESSION_CACHE_TTL=" + c.SessionCacheTTL.String(),
		"APP_BODY_LIMIT=" + strconv.FormatInt(c.BodyLimit, 10),
		"APP_LOG_LEVEL=" + c.LogLevel,
		"APP_CORS_CREDENTIALS=" + strconv.FormatBool(c.CORSCredentials),
		"APP_TRUSTED_PROXIES=" + joinNets(c.TrustedProxies),
		"APP_ACME_DOMAINS=" + strings.Join(c.ACMEDomains, ","),
		"APP_ACME_EMAIL=" + c.ACMEEmail,
		"APP_ACME_DIRECTORY=" + c.ACMEDirectory,
		"APP_MTLS_ADDR=" + c.MTLSAddr,
		"APP_MTLS_CLIENT_CA=" + c.MTLSClientCA,
		"APP_METRICS_ADDR=" + c.MetricsAddr,
		"APP_RATE_IP=" + strconv.Itoa(c.Limits.IP.Rate),
		"APP_RATE_USER=" + strconv.Itoa(c.Limits.User.Rate),
		"APP_RATE_APIKEY_DEFAULT=" + strconv.Itoa(c.Limits.APIKeyDefault),
		"APP_RATE_APIKEY_MAX=" + strconv.Itoa(c.Limits.APIKeyMax),
		"APP_RATE_LOGIN_IP=" + strconv.Itoa(c.Limits.LoginIP.Rate),
		"APP_RATE_REGISTER_IP=" + strconv.Itoa(c.Limits.RegisterIP.Rate),
		"APP_LOGIN_MAX_FAILURES=" + strconv.Itoa(c.Limits.LoginFailures),
		"APP_LOGIN_FAILURE_WINDOW=" + c.Limits.LoginWindow.String(),
		"APP_QUOTA_PROJECTS=" + strconv.Itoa(c.Quotas.ProjectsPerUser),
		"APP_QUOTA_TASKS=" + strconv.Itoa(c.Quotas.TasksPerProject),
		"APP_QUOTA_APIKEYS=" + strconv.Itoa(c.Quotas.APIKeysPerUser),
		"APP_ARGON2_MEMORY_BUDGET=" + strconv.FormatInt(c.Argon2Budget>>20, 10),
		"APP_ARGON2_CONCURRENCY=" + strconv.Itoa(c.Argon2Concurrency),
		"APP_REQUEST_TIMEOUT=" + c.RequestTimeout.String(),
		"APP_REPORT_CONCURRENCY=" + strconv.Itoa(c.ReportConcurrency),
		"APP_WEBHOOK_PORTS=" + joinInts(c.WebhookPorts),
		"APP_WEBHOOK_TIMEOUT=" + c.WebhookTimeout.String(),
		"APP_WEBHOOK_MAX_ATTEMPTS=" + strconv.Itoa(c.WebhookMaxAttempts),
	}, anomalyRedacted(c.Anomaly, c.AlertWebhookAllow)...)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// The printed forms of a Config are its Redacted lines: the database and
// Redis URLs carry passwords, and a Config passed whole to fmt, a logger or
// a JSON encoder must not show them.

// String returns the Redacted lines, space-separated.
func (c Config) String() string { return strings.Join(c.Redacted(), " ") }

// Format prints String for every verb (%v, %+v, %#v, %s, %x, %d ...), so
// that no verb falls back to printing the fields by reflection.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	_, _ = io.WriteString(f, c.String())
}

// LogValue logs the Redacted lines (slog.LogValuer).
func (c Config) LogValue() slog.Value { return slog.AnyValue(c.Redacted()) }

// MarshalJSON encodes the Redacted lines.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.Redacted()) }

func joinNets(nets []*net.IPNet) string {
	s := make([]string, len(nets))
	for i, n := range nets {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

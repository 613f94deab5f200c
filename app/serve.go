package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-go/rampart/handlers"
	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// Server timeouts (SECURITY-BASELINE §7): the header timeout defeats
// Slowloris, the others bound slow bodies, slow readers and idle keep-alive
// connections. Headers are capped at 64 KiB (Go's default is 1 MiB).
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 20 * time.Second
	sessionPurgeEvery = 10 * time.Minute
)

// listener is one of the servers the process runs. Every one of them
// speaks TLS only: there is no plain-HTTP listener at all.
type listener struct {
	name string // public, service, metrics
	srv  *http.Server
}

// servers are the listeners of one process.
type servers struct {
	public  *http.Server
	service *http.Server // nil unless APP_MTLS_ADDR is set
	metrics *http.Server // nil when APP_METRICS_ADDR is off
}

func (s *servers) all() []listener {
	out := []listener{{"public", s.public}}
	if s.service != nil {
		out = append(out, listener{"service", s.service})
	}
	if s.metrics != nil {
		out = append(out, listener{"metrics", s.metrics})
	}
	return out
}

// serve runs the listeners until ctx ends, then shuts down gracefully: the
// listeners close, in-flight requests get shutdownTimeout to finish.
func serve(ctx context.Context, env Env) error {
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(env.Stdout, cfg.LogLevel)
	log.Info("starting", "version", Version, "config", cfg.Redacted())

	srvs, cleanup, err := build(ctx, cfg, env, log)
	if err != nil {
		return err
	}
	defer cleanup()
	// Start-up leaves garbage the server never needs again, most of it the
	// 19 MiB of the dummy Argon2id hash (models.NewAccounts): collect it
	// and give the memory back to the OS now, rather than whenever the
	// runtime's scavenger gets to it. Idle RSS went from 62 to 38 MiB.
	debug.FreeOSMemory()

	// Bind every listener before serving any, so that a taken port fails
	// start-up instead of leaving a half-running process.
	lns := map[*http.Server]net.Listener{}
	for _, l := range srvs.all() {
		ln, err := net.Listen("tcp", l.srv.Addr)
		if err != nil {
			for _, open := range lns {
				_ = open.Close()
			}
			return fmt.Errorf("listen on %s (%s): %w", l.srv.Addr, l.name, err)
		}
		lns[l.srv] = tlsOnlyListener{ln}
		log.Info("listening", "listener", l.name, "url", "https://"+ln.Addr().String())
	}

	errc := make(chan error, len(lns))
	for _, l := range srvs.all() {
		go func() {
			if err := l.srv.ServeTLS(lns[l.srv], "", ""); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", l.name, err)
				return
			}
			errc <- nil
		}()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	shutdownErrs := make([]error, len(srvs.all()))
	for i, l := range srvs.all() {
		wg.Go(func() { shutdownErrs[i] = l.srv.Shutdown(shutdownCtx) })
	}
	wg.Wait()
	if err := errors.Join(shutdownErrs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if serveErr != nil {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// build wires the application: migrations, database, secrets, accounts,
// handlers and the servers. cleanup releases what build opened.
func build(ctx context.Context, cfg Config, env Env, log *slog.Logger) (*servers, func(), error) {
	// Secrets first: the cursor key and the database password are checked
	// before anything is opened (the alert-webhook key, when there is a
	// webhook, with the detector below). Production refuses to start with a
	// missing or weak one, naming the secret and the rule it breaks.
	secrets, err := openSecretStore(ctx, cfg, env.Getenv, log)
	if err != nil {
		return nil, nil, err
	}
	cursorKeys, err := secrets.keyRing(ctx, cursorKeyName, models.CursorKeyMinLength)
	if err != nil {
		return nil, nil, err
	}
	cursors, err := models.NewCursorCodecWithKeys(cursorKeys)
	if err != nil {
		return nil, nil, err
	}
	webhookKeys, err := secrets.keyRing(ctx, webhookKeyName, models.KeyMinLength)
	if err != nil {
		return nil, nil, err
	}
	dbURL, err := secrets.database(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	publicTLS, err := serverTLSConfig(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if err := migrateUp(dbURL); err != nil {
		return nil, nil, err
	}
	db, err := models.OpenDB(ctx, dbURL)
	if err != nil {
		return nil, nil, err
	}
	db.SetQuotas(cfg.Quotas)
	var closers []func()
	closers = append(closers, func() { _ = db.Close() })
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*servers, func(), error) {
		closeAll()
		return nil, nil, err
	}
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		return fail(err)
	}
	hasher := models.NewPasswordHasherWithBudget(models.DefaultArgon2Params, models.HasherBudget{
		MemoryBytes: cfg.Argon2Budget, Concurrency: cfg.Argon2Concurrency, MaxWait: models.DefaultArgon2MaxWait,
	})
	accounts, err := models.NewAccounts(ctx, db, models.AccountsConfig{
		Hasher:          hasher,
		Policy:          policy,
		IdleTimeout:     cfg.SessionIdle,
		AbsoluteTimeout: cfg.SessionMax,
	})
	if err != nil {
		return fail(err)
	}
	reg, metrics, err := newMetrics(db, hasher, secrets)
	if err != nil {
		return fail(err)
	}
	rlCfg := middleware.RateLimiterConfig{Logger: log, Registerer: reg}
	var redisClient *redis.Client
	if !cfg.RedisURL.IsZero() {
		client, err := newRedisClient(ctx, cfg.RedisURL.Reveal(), log)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { _ = client.Close() })
		rlCfg.Redis, redisClient = client, client
	}
	sessionCache, err := newSessionCache(cfg, db, redisClient, log, reg)
	if err != nil {
		return fail(err)
	}
	limiter, err := middleware.NewRateLimiter(rlCfg)
	if err != nil {
		return fail(err)
	}
	auditor, err := newAuditor(db, log, reg)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, auditor.close)
	// The detector sees every event as it is recorded and records its
	// alerts through the same writer; it is closed first (closers run in
	// reverse), so its last alerts are still written.
	detector, err := newAnomalyDetector(ctx, cfg, db, redisClient, secrets, auditor.writer.Record, log, reg)
	if err != nil {
		return fail(err)
	}
	auditor.observe = append(auditor.observe, detector.Observe)
	closers = append(closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), auditShutdownTimeout)
		defer cancel()
		if err := detector.Close(ctx); err != nil {
			log.Error("anomaly detector: events still queued at exit were not analysed", "error", err.Error())
		}
	})
	// The one outbound client: every server-side request to a
	// user-supplied URL goes through it (SSRF checks at dial time, no
	// redirects, time and size caps, a circuit per destination).
	outboundOptions := outbound.Options{Ports: cfg.WebhookPorts, Timeout: cfg.WebhookTimeout}
	if env.outbound != nil {
		env.outbound(&outboundOptions)
	}
	webhookParts, err := handlers.NewWebhookDeps(db, webhookKeys, outboundOptions,
		models.WebhookConfig{MaxAttempts: cfg.WebhookMaxAttempts, Logger: log})
	if err != nil {
		return fail(err)
	}
	webhooks := webhookParts.Dispatcher
	deps := handlers.Deps{
		DB: db, Accounts: accounts, Cursors: cursors, Logger: log, BodyLimit: cfg.BodyLimit, Version: Version,
		CORS:              middleware.CORSConfig{AllowOrigins: cfg.CORSOrigins, AllowCredentials: cfg.CORSCredentials},
		TrustedProxies:    cfg.TrustedProxies,
		Metrics:           metrics,
		RateLimiter:       limiter,
		Limits:            cfg.Limits,
		RequestTimeout:    cfg.RequestTimeout,
		ReportConcurrency: cfg.ReportConcurrency,
		Auditor:           auditor.writer,
		Changes:           webhooks,
		Webhooks:          webhookParts,
	}
	if benchAuditOff(env.Getenv) {
		deps.Auditor = nil // benchmark builds only: what the audit trail costs
	}
	public, err := handlers.New(deps)
	if err != nil {
		return fail(err)
	}
	srvs := &servers{public: newHTTPServer(cfg.Addr, benchPublic(public, db, log), publicTLS, log)}

	var clientCAs *x509.CertPool
	if cfg.MTLSClientCA != "" {
		if clientCAs, err = clientCAPool(cfg.MTLSClientCA); err != nil {
			return fail(err)
		}
	}
	if cfg.MTLSAddr != "" {
		service, err := handlers.NewService(deps)
		if err != nil {
			return fail(err)
		}
		srvs.service = newHTTPServer(cfg.MTLSAddr, service, mutualTLSConfig(publicTLS, clientCAs), log)
	}
	if cfg.MetricsAddr != "" {
		tlsCfg := publicTLS
		if !loopbackAddr(cfg.MetricsAddr) {
			// Metrics leave the host only to scrapers with a client
			// certificate from the pinned CA (checked by LoadConfig).
			tlsCfg = mutualTLSConfig(publicTLS, clientCAs)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		benchProfiles(mux)
		srvs.metrics = newHTTPServer(cfg.MetricsAddr, mux, tlsCfg, log)
	}

	auditor.system(models.ActionSysStartup, "version "+Version)
	purgeCtx, stopPurge := context.WithCancel(ctx)
	secrets.OnRotated(func(name string) {
		auditor.system(models.ActionSecretRotated, "secret "+name)
		if name == webhookKeyName {
			// Seal every webhook secret under the new key now, so that
			// the next rotation does not leave any unreadable.
			if n, err := webhooks.Reseal(purgeCtx); err != nil {
				log.Error("webhook secrets not all sealed again after a rotation", "sealed", n, "error", err.Error())
			}
		}
	})
	go purgeSessions(purgeCtx, accounts, log)
	if sessionCache != nil {
		go sessionCache.Run(purgeCtx)
	}
	// Webhook deliveries: sent until shutdown; the attempts in flight are
	// finished and recorded before the database closes.
	webhooksDone := make(chan struct{})
	go func() { defer close(webhooksDone); webhooks.Run(purgeCtx) }()
	closers = append(closers, func() { stopPurge(); <-webhooksDone })
	// Secrets are read again every APP_SECRETS_REFRESH: rotations take
	// effect without a restart.
	go secrets.Run(purgeCtx)
	srvs.public.RegisterOnShutdown(stopPurge)
	return srvs, func() { stopPurge(); closeAll() }, nil
}

// auditor is the audit trail of a running server: the writer the
// handlers record to, and the hooks that see each event (metrics, and the
// anomaly detector).
type auditor struct {
	writer  *models.AuditWriter
	metrics *middleware.AuditMetrics
	observe []func(models.AuditEvent)
	log     *slog.Logger
}

// auditShutdownTimeout bounds the final flush of the audit queue.
const auditShutdownTimeout = 30 * time.Second

func newAuditor(db *models.DB, log *slog.Logger, reg prometheus.Registerer) (*auditor, error) {
	a := &auditor{log: log}
	a.writer = models.NewAuditWriter(models.NewAuditLog(db), models.AuditWriterConfig{
		Logger: log,
		Observe: func(e models.AuditEvent) {
			for _, o := range a.observe {
				o(e)
			}
		},
	})
	m, err := middleware.NewAuditMetrics(reg, a.writer)
	if err != nil {
		_ = a.writer.Close(context.Background())
		return nil, err
	}
	a.metrics = m
	a.observe = append(a.observe, m.Observe)
	return a, nil
}

// system records an event of the server itself.
func (a *auditor) system(action, reason string) {
	if err := a.writer.Record(models.AuditEvent{ActorType: models.ActorSystem, ActorID: "rampart", Action: action,
		Outcome: models.OutcomeAllow, Reason: reason}); err != nil {
		a.log.Error("audit event not recorded", "action", action, "error", err.Error())
	}
}

// close records the shutdown and writes everything still queued: nothing
// recorded is lost when the server stops.
func (a *auditor) close() {
	a.system(models.ActionSysShutdown, "")
	ctx, cancel := context.WithTimeout(context.Background(), auditShutdownTimeout)
	defer cancel()
	if err := a.writer.Close(ctx); err != nil {
		a.log.Error("audit trail: events still queued at exit were not written", "queued", a.writer.QueueDepth(), "error", err.Error())
	}
}

// newSessionCache makes the cache of verified session tokens and hands it
// to db, when APP_SESSION_CACHE_TTL is not 0 and revocations can reach
// every instance: through Redis pub/sub when APP_REDIS_URL is set; on
// SQLite without Redis the one server process is the only instance. On
// PostgreSQL without Redis there may be several instances and nothing to
// tell them, so every request reads its session from the database.
//
// Its metrics: rampart_session_cache_hits_total and _misses_total, and
// rampart_session_cache_up (0 while the revocation bus is down: every
// request then reads the database).
func newSessionCache(cfg Config, db *models.DB, client *redis.Client, log *slog.Logger, reg prometheus.Registerer) (*models.SessionCache, error) {
	if cfg.SessionCacheTTL <= 0 {
		return nil, nil
	}
	var bus models.SessionBus
	switch {
	case client != nil:
		bus = middleware.NewRedisSessionBus(client, "")
	case db.Dialect() == models.SQLite:
	default:
		log.Info("session cache off: PostgreSQL without APP_REDIS_URL has no way to tell other instances of a revocation")
		return nil, nil
	}
	c, err := models.NewSessionCache(models.SessionCacheConfig{TTL: cfg.SessionCacheTTL, Bus: bus, Logger: log})
	if err != nil {
		return nil, err
	}
	for _, m := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_session_cache_hits_total",
			Help: "Session tokens verified from the session cache, without a database read."},
			func() float64 { return float64(c.Hits()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_session_cache_misses_total",
			Help: "Session tokens verified against the database (not cached, expired from the cache, or cache down)."},
			func() float64 { return float64(c.Misses()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_session_cache_up",
			Help: "1 while the session cache is in use; 0 while its revocation bus is down."},
			func() float64 {
				if c.Up() {
					return 1
				}
				return 0
			}),
	} {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	db.SetSessionCache(c)
	return c, nil
}

// newRedisClient connects to APP_REDIS_URL with short timeouts and no
// retries: a slow or dead Redis must cost a request milliseconds, not
// seconds (the rate limiter then skips it for a while and falls back). An
// unreachable Redis at start-up is logged, not fatal: recovery is automatic.
func newRedisClient(ctx context.Context, raw string, log *slog.Logger) (*redis.Client, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, errors.New("APP_REDIS_URL is not a valid Redis URL")
	}
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 250 * time.Millisecond
	opts.WriteTimeout = 250 * time.Millisecond
	opts.PoolTimeout = 250 * time.Millisecond
	// go-redis v9 reads MaxRetries 0 as "the default, 3 retries" (-1 is
	// none) and retries a failed dial 5 times 100 ms apart unless
	// DialerRetries says otherwise: left as they were, a dead Redis cost a
	// request about 1.7 s, and one that drops packets up to the request
	// deadline.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		log.Error("Redis does not answer; general rate limits use this instance's memory, login and registration answer 503 until it does",
			"redis", models.RedactURL(raw), "error", err.Error())
	}
	return client, nil
}

// newHTTPServer returns a server with the timeouts and header cap above.
// Each server gets its own copy of tlsCfg: ServeTLS writes NextProtos into
// the configuration it is given, so listeners sharing one (the public and
// a loopback metrics listener) would race.
func newHTTPServer(addr string, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		TLSConfig:         tlsCfg.Clone(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newMetrics makes the process's own registry (never Prometheus' global
// default one) with runtime, process, HTTP, database-pool, password and
// secret-rotation metrics.
func newMetrics(db *models.DB, hasher *models.PasswordHasher, secrets *SecretStore) (*prometheus.Registry, *middleware.Metrics, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append(secrets.collectors(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.SQLDB(), string(db.Dialect())),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "rampart_password_verifications_total",
			Help: "Argon2id password verifications (logins, password changes).",
		}, func() float64 { return float64(hasher.Verifications()) }),
	) {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	m, err := middleware.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, m, nil
}

// purgeSessions deletes expired sessions every sessionPurgeEvery.
func purgeSessions(ctx context.Context, accounts *models.Accounts, log *slog.Logger) {
	t := time.NewTicker(sessionPurgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := accounts.PurgeExpiredSessions(ctx)
			if err != nil {
				log.Warn("purging expired sessions failed", "error", err.Error())
				continue
			}
			if n > 0 {
				log.Info("purged expired sessions", "count", n)
			}
		}
	}
}

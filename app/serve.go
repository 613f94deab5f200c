package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rampart-go/rampart/handlers"
	"github.com/rampart-go/rampart/models"
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

// serve runs the HTTPS API until ctx ends, then shuts down gracefully:
// the listener closes, in-flight requests get shutdownTimeout to finish.
func serve(ctx context.Context, env Env) error {
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.LogLevel)
	log.Info("starting", "version", Version, "config", cfg.Redacted())

	srv, cleanup, err := build(ctx, cfg, env, log)
	if err != nil {
		return err
	}
	defer cleanup()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	log.Info("listening", "url", "https://"+ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// build wires the application: migrations, database, secrets, accounts,
// handlers and the http.Server. cleanup releases what build opened.
func build(ctx context.Context, cfg Config, env Env, log *slog.Logger) (*http.Server, func(), error) {
	cert, err := loadCertificate(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	secrets := NewSecretStore(cfg.Secrets, env.Getenv)
	cursorKey, err := devKey(secrets, cfg, "cursor_key", models.CursorKeyMinLength, log)
	if err != nil {
		return nil, nil, err
	}
	cursors, err := models.NewCursorCodec(cursorKey)
	if err != nil {
		return nil, nil, err
	}
	if err := migrateUp(cfg.Database); err != nil {
		return nil, nil, err
	}
	db, err := models.OpenDB(ctx, cfg.Database)
	if err != nil {
		return nil, nil, err
	}
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	accounts, err := models.NewAccounts(ctx, db, models.AccountsConfig{
		Hasher:          models.NewPasswordHasher(models.DefaultArgon2Params),
		Policy:          policy,
		IdleTimeout:     cfg.SessionIdle,
		AbsoluteTimeout: cfg.SessionMax,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	e, err := handlers.New(handlers.Deps{
		DB: db, Accounts: accounts, Cursors: cursors, Logger: log, BodyLimit: cfg.BodyLimit, Version: Version,
	})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	purgeCtx, stopPurge := context.WithCancel(ctx)
	go purgeSessions(purgeCtx, accounts, log)

	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           e,
		TLSConfig:         TLSConfig(cert),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(stopPurge)
	return srv, func() { stopPurge(); db.Close() }, nil
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

package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL database behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DatabaseURL is a parsed APP_DATABASE_URL: which dialect it selects and
// the facts start-up checks need. It never holds the password in a form
// that is printed (the URL is a Secret: no fmt verb, JSON or log form of a
// DatabaseURL shows it): use Redacted for logs.
type DatabaseURL struct {
	Dialect Dialect
	// Path is the SQLite file (SQLite only).
	Path string
	// Hosts are the PostgreSQL hosts, fallbacks included (PostgreSQL only).
	Hosts []string
	// TLSVerified is true when every PostgreSQL connection attempt uses TLS
	// with certificate and host-name verification (sslmode=verify-full).
	TLSVerified bool

	// raw is the URL as given, password included. pgx's parsed form is
	// not kept: it holds the password in plain fields, which fmt prints
	// even through a pointer (%s of a struct holding one); see pgConfig.
	raw Secret
	// passwordFn, when set, gives the password of each new PostgreSQL
	// connection in place of the URL's (WithPassword).
	passwordFn PasswordFunc
}

// PasswordFunc returns the PostgreSQL passwords to try for a new
// connection, in order; none (or a zero Secret) means "the URL's own".
// Only the first is tried at first. After the server refused it (SQLSTATE
// 28P01, e.g. because it was rotated) the function is called again with
// reread true: it should read its source afresh rather than from a cache,
// and may return the current password and the one before it, so that a
// connection still succeeds while the database and the secret disagree
// during a rotation.
type PasswordFunc func(ctx context.Context, reread bool) ([]Secret, error)

// WithPassword returns u with the password of every new PostgreSQL
// connection coming from fn, asked each time a connection is opened. When
// the server refuses it as invalid (28P01), fn is asked to read its source
// again, and each password it gives that was not tried yet is tried once:
// a pool whose password was rotated reconnects by itself.
// Connections that are open keep working; PostgreSQL checks a password only
// when a connection starts. For SQLite, u is returned as it is.
func (u DatabaseURL) WithPassword(fn PasswordFunc) DatabaseURL {
	if u.Dialect == Postgres {
		u.passwordFn = fn
	}
	return u
}

// URLPassword returns the password written in the URL, if any (PostgreSQL
// only), for start-up checks such as refusing a default password.
func (u DatabaseURL) URLPassword() Secret { return NewSecret(u.password()) }

// ParseDatabaseURL reads a database URL: a postgres:// or postgresql:// URL
// selects PostgreSQL; "sqlite:PATH" (or a bare file path) selects SQLite.
// The error never repeats the URL, which may hold a password.
func ParseDatabaseURL(raw string) (DatabaseURL, error) {
	switch {
	case raw == "":
		return DatabaseURL{}, errors.New("is empty")
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		cfg, err := pgx.ParseConfig(raw)
		if err != nil {
			return DatabaseURL{}, errors.New("is not a valid PostgreSQL URL")
		}
		u := DatabaseURL{Dialect: Postgres, raw: NewSecret(raw), TLSVerified: true}
		all := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
		for _, fb := range all {
			u.Hosts = append(u.Hosts, fb.Host)
			if fb.TLSConfig == nil || fb.TLSConfig.InsecureSkipVerify {
				u.TLSVerified = false
			}
		}
		return u, nil
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite://"), "sqlite:")
		if path == "" {
			return DatabaseURL{}, errors.New("names no SQLite file")
		}
		if strings.ContainsAny(path, "?#") {
			return DatabaseURL{}, errors.New("SQLite path must not contain '?' or '#'")
		}
		// A URL of another scheme (POSTGRES://, mysql://) is a mistake, not
		// a file name: taken as one, its password would end up in a file
		// name and in the logs.
		if strings.Contains(path, "://") || looksLikeLibpqDSN(path) {
			return DatabaseURL{}, errors.New("is neither a postgres:// URL nor a SQLite path")
		}
		return DatabaseURL{Dialect: SQLite, Path: path, raw: NewSecret(raw)}, nil
	}
}

// looksLikeLibpqDSN spots a keyword/value connection string ("host=db
// password=x"), which must not be taken for a file name either.
func looksLikeLibpqDSN(s string) bool {
	for _, f := range strings.Fields(s) {
		k, _, ok := strings.Cut(f, "=")
		switch k {
		case "host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "passfile":
			if ok {
				return true
			}
		}
	}
	return false
}

// Redacted returns the URL with any password replaced by "xxxxx", for logs:
// the one in the user-info part and query parameters naming a password
// (?password=, ?sslpassword=, which pgx accepts). Should the password pgx
// read still show, because net/url splits an odd URL differently from pgx,
// nothing of the URL is shown.
func (u DatabaseURL) Redacted() string {
	if u.Dialect == SQLite {
		return "sqlite:" + u.Path
	}
	out := RedactURL(u.raw.Reveal())
	if pw := u.password(); pw != "" {
		for _, form := range []string{pw, url.PathEscape(pw), url.QueryEscape(pw)} {
			if strings.Contains(out, form) {
				return "postgres://(not shown)"
			}
		}
	}
	return out
}

// RedactURL returns raw with its password removed wherever a URL holds one:
// the user-info part and any query parameter whose name contains
// "password". A value that does not parse is not shown at all, since its
// password cannot be located.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	p, err := url.Parse(raw)
	if err != nil {
		return "(not shown: not a valid URL)"
	}
	q, err := url.ParseQuery(p.RawQuery)
	if err != nil {
		p.RawQuery = "(not shown)"
	} else {
		masked := false
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
				masked = true
			}
		}
		if masked {
			p.RawQuery = q.Encode()
		}
	}
	return p.Redacted()
}

func (u DatabaseURL) password() string {
	cfg, err := u.pgConfig()
	if err != nil {
		return ""
	}
	return cfg.Password
}

// pgConfig parses the URL for pgx, each time it is needed (opening a pool,
// a migration handle). ParseDatabaseURL has parsed it once already, so this
// does not fail for a DatabaseURL it returned.
func (u DatabaseURL) pgConfig() (*pgx.ConnConfig, error) {
	if u.Dialect != Postgres || u.raw.IsZero() {
		return nil, errors.New("no PostgreSQL configuration")
	}
	cfg, err := pgx.ParseConfig(u.raw.Reveal())
	if err != nil {
		return nil, errors.New("APP_DATABASE_URL is not a valid PostgreSQL URL")
	}
	return cfg, nil
}

// AllHostsLoopback reports whether every PostgreSQL host is a loopback
// address, "localhost" or a Unix socket.
func (u DatabaseURL) AllHostsLoopback() bool {
	for _, h := range u.Hosts {
		if strings.HasPrefix(h, "/") || h == "localhost" {
			continue
		}
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// DB is the application's database handle: sqlx over SQLite or PostgreSQL.
// Its query helpers are unexported, so only this package runs SQL, and each
// one rebinds the '?' placeholders of our constant queries for the dialect
// and translates driver errors into kinds.
type DB struct {
	x       *sqlx.DB
	dialect Dialect
	rebinds sync.Map // query text -> dialect-specific query text
	quotas  Quotas
	// sessions, when set, caches verified session tokens (SetSessionCache).
	sessions *SessionCache
	// stmts holds SQLite statements prepared once on the pool (see stmt).
	stmts sync.Map // query text -> *sqlx.Stmt
}

// OpenDB opens the database named by u and checks that it answers. For
// SQLite the file's folder is created (0700) and the connection runs with
// WAL, foreign keys and a busy timeout. The caller closes the DB.
func OpenDB(ctx context.Context, u DatabaseURL) (*DB, error) {
	var (
		x   *sqlx.DB
		err error
	)
	switch u.Dialect {
	case SQLite:
		x, err = openSQLite(u.Path)
	case Postgres:
		var cfg *pgx.ConnConfig
		if cfg, err = u.pgConfig(); err == nil {
			x, err = openPostgres(cfg, u.passwordFn)
		}
	default:
		return nil, fmt.Errorf("unknown dialect %q", u.Dialect)
	}
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := x.PingContext(pingCtx); err != nil {
		_ = x.Close()
		return nil, fmt.Errorf("database does not answer: %w", err)
	}
	return &DB{x: x, dialect: u.Dialect, quotas: DefaultQuotas}, nil
}

// SQLiteDSN is the driver connection string used for a SQLite file: WAL
// journal, foreign keys enforced, a 5 s busy timeout, IMMEDIATE write
// transactions (so two writers queue instead of failing mid-transaction)
// and a sortable UTC time format.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" +
		"&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
}

func openSQLite(path string) (*sqlx.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create the database folder: %w", err)
		}
	}
	x, err := sqlx.Open("sqlite", SQLiteDSN(path))
	if err != nil {
		return nil, err
	}
	// One writer at a time is all SQLite allows; a small pool keeps readers
	// concurrent under WAL without piling up writers behind the busy timeout.
	x.SetMaxOpenConns(4)
	x.SetMaxIdleConns(4)
	return x, nil
}

// postgresPoolSize is the most PostgreSQL connections an instance opens.
const postgresPoolSize = 20

func openPostgres(cfg *pgx.ConnConfig, password PasswordFunc) (*sqlx.DB, error) {
	if cfg == nil {
		return nil, errors.New("no PostgreSQL configuration")
	}
	db := openPgxDB(cfg, password)
	// As many idle connections kept as may be open: with fewer, every
	// connection returned beyond the idle limit under load is closed and
	// the next request opens a new one, and a new PostgreSQL backend costs
	// a fork, authentication and preparing each statement again (about a
	// millisecond of CPU: under 16 concurrent readers, a hundred new
	// connections every five seconds). Idle ones close after 5 minutes.
	db.SetMaxOpenConns(postgresPoolSize)
	db.SetMaxIdleConns(postgresPoolSize)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// sqlx picks the placeholder style from the driver name. The pgx v5
	// stdlib driver registers itself as "pgx/v5" as well as "pgx"; sqlx only
	// knows "pgx", and with an unknown name it would leave '?' in place,
	// which PostgreSQL rejects. Naming the driver "pgx" here selects $1
	// placeholders; a test checks the rebinding.
	return sqlx.NewDb(db, "pgx"), nil
}

// OpenRawDB opens a second, plain database/sql handle on the same database,
// for tools that take ownership of their handle (the migrator closes it).
func OpenRawDB(u DatabaseURL) (*sql.DB, error) {
	switch u.Dialect {
	case SQLite:
		return sql.Open("sqlite", SQLiteDSN(u.Path))
	case Postgres:
		cfg, err := u.pgConfig()
		if err != nil {
			return nil, err
		}
		return openPgxDB(cfg, u.passwordFn), nil
	}
	return nil, fmt.Errorf("unknown dialect %q", u.Dialect)
}

// openPgxDB returns a database/sql pool over pgx for cfg. With a password
// function, each new connection gets its password from it (see
// WithPassword); without one, the URL's password is used.
func openPgxDB(cfg *pgx.ConnConfig, password PasswordFunc) *sql.DB {
	if password == nil {
		return stdlib.OpenDB(*cfg)
	}
	// pgx calls BeforeConnect with a copy of cfg for each new connection;
	// the password to use travels in the context, set by Connect below.
	inner := stdlib.GetConnector(*cfg, stdlib.OptionBeforeConnect(func(ctx context.Context, cc *pgx.ConnConfig) error {
		if pw, ok := ctx.Value(pgPasswordKey{}).(Secret); ok && !pw.IsZero() {
			cc.Password = pw.Reveal()
		}
		return nil
	}))
	return sql.OpenDB(&pgConnector{inner: inner, password: password})
}

// pgPasswordKey is the context key of the password for one connection
// attempt.
type pgPasswordKey struct{}

// pgConnector opens pgx connections with the password of the moment and
// reads it again when the server refuses it.
type pgConnector struct {
	inner    driver.Connector
	password PasswordFunc
}

// Connect opens one connection. On "invalid password" (28P01) it asks for
// the passwords afresh and tries each one it has not tried yet, in order.
func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	pws, err := c.password(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("database password: %w", err)
	}
	var first Secret
	if len(pws) > 0 {
		first = pws[0]
	}
	conn, err := c.inner.Connect(context.WithValue(ctx, pgPasswordKey{}, first))
	if err == nil || !passwordRefused(err) {
		return conn, err
	}
	fresh, rerr := c.password(ctx, true)
	if rerr != nil {
		return nil, err
	}
	tried := []Secret{first}
	for _, pw := range fresh {
		if pw.IsZero() || slices.ContainsFunc(tried, pw.Equal) {
			continue
		}
		tried = append(tried, pw)
		conn, err = c.inner.Connect(context.WithValue(ctx, pgPasswordKey{}, pw))
		if err == nil || !passwordRefused(err) {
			return conn, err
		}
	}
	return nil, err
}

// Driver returns the pgx driver.
func (c *pgConnector) Driver() driver.Driver { return c.inner.Driver() }

// passwordRefused reports whether err is PostgreSQL's invalid_password.
func passwordRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28P01"
}

// Dialect reports which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.x.PingContext(ctx); err != nil {
		return &Error{Kind: KindUnavailable, Cause: err}
	}
	return nil
}

// SQLDB is the underlying pool, for its statistics (metrics); queries go
// through the repositories, never through it.
func (db *DB) SQLDB() *sql.DB { return db.x.DB }

// Close closes the prepared statements and the connection pool.
func (db *DB) Close() error {
	db.stmts.Range(func(k, v any) bool {
		_ = v.(*sqlx.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	return db.x.Close()
}

// stmt returns query prepared on the pool, preparing it the first time.
// SQLite (modernc) otherwise parses and plans the SQL text of every
// statement it runs, which was a third of the time of a primary-key read;
// PostgreSQL's driver (pgx) already keeps a prepared statement per
// connection. The set of queries is fixed at compile time (they are
// constants), so the map stays small; database/sql prepares each statement
// again on each connection it runs on.
func (db *DB) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := db.x.PreparexContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// rebind turns the '?' placeholders of a constant query into the dialect's
// own. Results are cached: the set of queries is fixed at compile time.
func (db *DB) rebind(query string) string {
	if db.dialect == SQLite {
		return query
	}
	if q, ok := db.rebinds.Load(query); ok {
		return q.(string)
	}
	q := db.x.Rebind(query)
	db.rebinds.Store(query, q)
	return q
}

// runner is what both a DB and a transaction can run statements on.
type runner interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PreparexContext(ctx context.Context, query string) (*sqlx.Stmt, error)
}

// q runs statements on a runner for a DB. Every query passed to it must be a
// constant; the SQL test enforces that for all callers.
type q struct {
	db *DB
	r  runner
	// pooled is true outside transactions: SQLite statements then run
	// from the statement cache (DB.stmt).
	pooled bool
	// tx is a SQLite transaction: its statements run from the same cache,
	// bound to the transaction (database/sql reuses the statement already
	// prepared on the transaction's connection).
	tx *sqlx.Tx
}

func (db *DB) q() q { return q{db: db, r: db.x, pooled: db.dialect == SQLite} }

// prepared returns the cached statement for query when q runs on the
// SQLite pool or in a SQLite transaction, and nil otherwise (then the
// runner prepares it). Preparing an INSERT compiles its triggers: for the
// audit batch that was a microsecond an event.
func (q q) prepared(ctx context.Context, query string) (*sqlx.Stmt, error) {
	switch {
	case q.tx != nil:
		// Only a statement the pool has already prepared: preparing one
		// here would take a second connection while the transaction
		// holds one, and when the pool's other connections belong to
		// transactions waiting for this one's write lock, that waits
		// until their busy timeout. (AuditLog.Prepare warms the audit
		// writer's statements.)
		if st, ok := q.db.stmts.Load(query); ok {
			return q.tx.StmtxContext(ctx, st.(*sqlx.Stmt)), nil // closed with the transaction
		}
		return nil, nil
	case q.pooled:
		return q.db.stmt(ctx, query)
	}
	return nil, nil
}

func (q q) get(ctx context.Context, dest any, query string, args ...any) error {
	st, err := q.prepared(ctx, query)
	switch {
	case err != nil:
		return translate(err)
	case st != nil:
		return translate(st.GetContext(ctx, dest, args...))
	}
	return translate(q.r.GetContext(ctx, dest, q.db.rebind(query), args...))
}

func (q q) sel(ctx context.Context, dest any, query string, args ...any) error {
	st, err := q.prepared(ctx, query)
	switch {
	case err != nil:
		return translate(err)
	case st != nil:
		return translate(st.SelectContext(ctx, dest, args...))
	}
	return translate(q.r.SelectContext(ctx, dest, q.db.rebind(query), args...))
}

func (q q) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	st, err := q.prepared(ctx, query)
	switch {
	case err != nil:
	case st != nil:
		res, err = st.ExecContext(ctx, args...)
	default:
		res, err = q.r.ExecContext(ctx, q.db.rebind(query), args...)
	}
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, Internal(err)
	}
	return n, nil
}

// execOne runs a statement that must change exactly the rows it names (an
// owner-scoped DELETE, a parent row locked for a quota) and answers
// ErrNotFound when it changed none: an absent row and someone else's look
// alike.
func (q q) execOne(ctx context.Context, query string, args ...any) error {
	n, err := q.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// tx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise (a panic rolls back too).
func (db *DB) tx(ctx context.Context, fn func(q q) error) (err error) {
	t, err := db.x.BeginTxx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = t.Rollback()
			panic(p)
		}
		if err != nil {
			_ = t.Rollback()
		}
	}()
	tq := q{db: db, r: t}
	if db.dialect == SQLite {
		tq.tx = t
	}
	if err = fn(tq); err != nil {
		return err
	}
	return translate(t.Commit())
}

// translate turns driver errors into kinds, once, by error code (never by
// message text). Errors that are already classified pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &Error{Kind: KindNotFound, Cause: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindUnavailable, Cause: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return &Error{Kind: KindConflict, Cause: err}
		case "23503": // foreign_key_violation: the parent is gone
			return &Error{Kind: KindNotFound, Cause: err}
		case "57014", "57P01", "57P02", "57P03", "53300": // canceled, shutdown, too many connections
			return &Error{Kind: KindUnavailable, Cause: err}
		case "28P01": // invalid_password: a rotation in progress; the pool reads it again
			return &Error{Kind: KindUnavailable, Cause: err}
		}
		return Internal(err)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &Error{Kind: KindConflict, Cause: err}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &Error{Kind: KindNotFound, Cause: err}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &Error{Kind: KindUnavailable, Cause: err}
		}
		return Internal(err)
	}
	return Internal(err)
}

package handlers

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// Deps are the dependencies of the HTTP layer, built by the app package.
type Deps struct {
	DB       *models.DB
	Accounts *models.Accounts
	Cursors  *models.CursorCodec
	Logger   *slog.Logger
	// BodyLimit caps request bodies; 0 means DefaultBodyLimit (64 KiB).
	BodyLimit int64
	// Version is reported by the API document.
	Version string
	// CORS is the browser-origin allowlist (empty: CORS off).
	CORS middleware.CORSConfig
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// Metrics, when set, counts requests per route.
	Metrics *middleware.Metrics
	// RateLimiter holds the rate-limit state (Redis or memory); nil means a
	// memory limiter of this instance.
	RateLimiter *middleware.RateLimiter
	// Limits are the rate-limit policies; the zero value means
	// middleware.DefaultLimits().
	Limits middleware.Limits
	// RequestTimeout bounds each request's context; 0 means 10 s.
	RequestTimeout time.Duration
	// ReportConcurrency is how many report pages one user may render at
	// once; 0 means 2.
	ReportConcurrency int
	// Auditor records the audit trail (models.AuditWriter); nil turns
	// auditing off (benchmarks measure what it costs).
	Auditor middleware.Auditor
	// Changes receives the writes resource handlers commit (webhook
	// deliveries subscribe to task changes); nil: nobody listens.
	Changes models.ChangeSink
	// Webhooks are the parts of project webhooks (required).
	Webhooks WebhookDeps
}

// WebhookDeps are what the webhook endpoints use: the sealer of signing
// secrets, the one outbound client (URL checks at registration), and the
// dispatcher (test pings).
type WebhookDeps struct {
	Sealer     *models.Sealer
	Client     *outbound.Client
	Dispatcher *models.WebhookDispatcher
}

// NewWebhookDeps builds the webhook parts over db: secrets sealed under
// keys, one outbound client with options o, and a dispatcher with cfg (its
// Run sends the deliveries).
func NewWebhookDeps(db *models.DB, keys *models.KeyRing, o outbound.Options, cfg models.WebhookConfig) (WebhookDeps, error) {
	sealer, err := models.NewSealer(keys)
	if err != nil {
		return WebhookDeps{}, err
	}
	client, err := outbound.New(o)
	if err != nil {
		return WebhookDeps{}, err
	}
	return WebhookDeps{Sealer: sealer, Client: client, Dispatcher: models.NewWebhookDispatcher(db, sealer, client, cfg)}, nil
}

// defaults fills the zero fields of d.
func (d *Deps) defaults() error {
	if d.BodyLimit <= 0 {
		d.BodyLimit = DefaultBodyLimit
	}
	if d.Limits == (middleware.Limits{}) {
		d.Limits = middleware.DefaultLimits()
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 10 * time.Second
	}
	if d.ReportConcurrency <= 0 {
		d.ReportConcurrency = 2
	}
	if d.RateLimiter == nil {
		rl, err := middleware.NewRateLimiter(middleware.RateLimiterConfig{Logger: d.Logger})
		if err != nil {
			return err
		}
		d.RateLimiter = rl
	}
	return nil
}

// server holds one handler value per resource family.
type server struct {
	accounts *accountHandlers
	apiKeys  *apiKeyHandlers
	webhooks *webhookHandlers
	reports  *reportHandlers
	admin    *adminHandlers
	meta     *metaHandlers
	service  *serviceHandlers
	// kit and db build the handlers of generated resources (routes_gen.go).
	kit kit
	db  *models.DB
}

// Listener names.
const (
	listenerPublic  = "public"
	listenerService = "service"
)

// New builds the echo instance of the public listener: error handler,
// global middleware, and every route of the table except the service ones.
func New(d Deps) (*echo.Echo, error) {
	e, _, err := newEcho(d, listenerPublic)
	return e, err
}

// NewService builds the echo instance of the mTLS listener: only the
// routes with the Service policy, so that no user endpoint is reachable
// there and no service endpoint on the public listener.
func NewService(d Deps) (*echo.Echo, error) {
	e, _, err := newEcho(d, listenerService)
	return e, err
}

// newEcho builds the echo instance of one listener and also returns the
// route table it registered, so that the package's tests can hold every
// route of that table to its contract.
func newEcho(d Deps, listener string) (*echo.Echo, []route, error) {
	if d.DB == nil || d.Accounts == nil || d.Cursors == nil || d.Logger == nil {
		return nil, nil, errors.New("handlers: DB, Accounts, Cursors and Logger are required")
	}
	if d.Webhooks.Sealer == nil || d.Webhooks.Client == nil || d.Webhooks.Dispatcher == nil {
		return nil, nil, errors.New("handlers: Webhooks (Sealer, Client, Dispatcher) are required")
	}
	if err := d.defaults(); err != nil {
		return nil, nil, err
	}
	val, err := newValidate()
	if err != nil {
		return nil, nil, err
	}
	k := kit{dec: decoder{limit: d.BodyLimit}, val: val, cursors: d.Cursors, changes: d.Changes}
	reports, err := newReportHandlers(d.DB)
	if err != nil {
		return nil, nil, err
	}
	s := &server{
		accounts: &accountHandlers{kit: k, accounts: d.Accounts, guard: middleware.LoginGuard{
			RL: d.RateLimiter, Max: d.Limits.LoginFailures, Window: d.Limits.LoginWindow}},
		apiKeys: &apiKeyHandlers{kit: k, db: d.DB, limits: d.Limits},
		webhooks: &webhookHandlers{kit: k, db: d.DB, sealer: d.Webhooks.Sealer, client: d.Webhooks.Client,
			dispatcher: d.Webhooks.Dispatcher},
		reports: reports,
		admin:   &adminHandlers{kit: k, db: d.DB, rl: d.RateLimiter},
		meta:    &metaHandlers{db: d.DB},
		service: &serviceHandlers{db: d.DB},
		kit:     k,
		db:      d.DB,
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.IPExtractor = ipExtractor(d.TrustedProxies)
	e.HTTPErrorHandler = ErrorHandler(d.Logger)
	// c.Bind mixes path, query and body into one struct; it is switched off
	// so that nobody can use it by accident. Bodies go through readBody.
	e.Binder = noBinder{}
	global := []echo.MiddlewareFunc{
		// First, so that every answer carries them: errors, 404, 405, panics.
		middleware.SecureHeaders(),
		middleware.RequestID(),
		requestLogger(d.Logger, listener),
	}
	if d.Metrics != nil {
		global = append(global, d.Metrics.Middleware(listener))
	}
	all := s.routes()
	global = append(global,
		// Outside the limits, so that their refusals are recorded too.
		middleware.AuditRequests(d.Auditor, d.Logger, routeInfo(all)),
		// Every request, even to an unknown path, counts against its
		// client IP; the general limits fall back to this instance's
		// memory if Redis is down.
		middleware.LimitIP(d.RateLimiter, d.Limits.IP, middleware.FailOpen),
		// A deadline for every request: slow queries and stuck
		// dependencies end with 503 instead of holding resources.
		echomw.ContextTimeoutWithConfig(echomw.ContextTimeoutConfig{Timeout: d.RequestTimeout}),
	)
	e.Use(global...)
	e.Use(
		// Last-resort panic handler: the panic and its stack go to the log,
		// the client gets a generic 500 problem (fail closed).
		echomw.RecoverWithConfig(echomw.RecoverConfig{
			DisableErrorHandler: true,
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				d.Logger.ErrorContext(c.Request().Context(), "panic",
					"request_id", middleware.RequestIDOf(c), "route", c.Path(), "error", err.Error(), "stack", string(stack))
				return models.Internal(err)
			},
		}),
	)
	if listener == listenerPublic {
		e.Use(middleware.CORS(d.CORS))
	}
	if s.meta.doc, err = openAPIDocument(all, d.Version); err != nil {
		return nil, nil, err
	}
	var routes []route
	for _, r := range all {
		if r.policy.IsService() == (listener == listenerService) {
			routes = append(routes, r)
		}
	}
	env := routeEnv{auth: d.Accounts, rl: d.RateLimiter, limits: d.Limits, bodyLimit: d.BodyLimit, reportConcurrency: d.ReportConcurrency}
	if err := register(e, routes, env); err != nil {
		return nil, nil, err
	}
	return e, routes, nil
}

// routeInfo answers, for the audit trail, whether a method and route
// template is in the table and whether its policy is public or admin.
func routeInfo(routes []route) func(method, path string) (name string, known, public, admin bool) {
	type info struct {
		name          string
		public, admin bool
	}
	m := make(map[string]info, len(routes))
	for _, r := range routes {
		name := r.method + " " + r.path
		m[name] = info{name: name, public: r.policy.IsPublic(), admin: r.policy.IsAdmin()}
	}
	return func(method, path string) (string, bool, bool, bool) {
		i, ok := m[method+" "+path]
		return i.name, ok, i.public, i.admin
	}
}

// ipExtractor returns how the client IP is found. Without trusted proxies
// it is the TCP peer, and X-Forwarded-For / X-Real-IP are ignored. With
// them, X-Forwarded-For is read from the right, skipping only addresses in
// the trusted ranges: the first untrusted one is the client. echo's own
// defaults would trust every loopback, link-local and private address, so
// each is switched off and only the configured ranges are trusted.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// requestLogger logs one structured line per request: listener, request
// id, method, path and route template, status, latency, the actor (user,
// API key or service; "" when anonymous) and the client IP (c.RealIP, which
// believes forwarding headers only from the trusted proxies). Never the
// query string, headers or bodies, which may carry credentials. The level
// says who has a problem: a refusal (4xx) is the client's, INFO; load
// shedding (503 for a KindUnavailable error: a busy password hasher, a
// dependency that is down) is expected under pressure, WARN; any other 5xx
// is a fault of ours, ERROR.
func requestLogger(log *slog.Logger, listener string) echo.MiddlewareFunc {
	return echomw.RequestLoggerWithConfig(echomw.RequestLoggerConfig{
		LogStatus:    true,
		LogMethod:    true,
		LogURIPath:   true,
		LogRoutePath: true,
		LogLatency:   true,
		LogRemoteIP:  true,
		LogError:     true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v echomw.RequestLoggerValues) error {
			level := slog.LevelInfo
			switch {
			case v.Status == kindStatus[models.KindUnavailable] && models.KindOf(v.Error) == models.KindUnavailable:
				level = slog.LevelWarn
			case v.Status >= 500:
				level = slog.LevelError
			}
			actorType, actor := models.ActorAnonymous, ""
			switch p := middleware.PrincipalOf(c); p.Kind {
			case models.PrincipalSession:
				actorType, actor = models.ActorUser, p.UserID
			case models.PrincipalAPIKey:
				actorType, actor = models.ActorAPIKey, p.APIKeyID
			case models.PrincipalService:
				actorType, actor = models.ActorService, p.Service
			}
			log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("listener", listener),
				slog.String("request_id", middleware.RequestIDOf(c)),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency.Round(time.Microsecond)),
				slog.String("actor_type", actorType),
				slog.String("actor", actor),
				slog.String("remote_ip", v.RemoteIP),
			)
			return nil
		},
	})
}

// noBinder refuses every c.Bind call.
type noBinder struct{}

func (noBinder) Bind(any, echo.Context) error {
	return models.Internal(errors.New("c.Bind is disabled: decode bodies with readBody"))
}

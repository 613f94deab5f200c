package handlers

import (
	"errors"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
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
}

// server holds one handler value per resource family.
type server struct {
	accounts *accountHandlers
	projects *projectHandlers
	tasks    *taskHandlers
	reports  *reportHandlers
	admin    *adminHandlers
	meta     *metaHandlers
}

// New builds the echo instance that serves the API: error handler, global
// middleware, and the route table with a policy on every route.
func New(d Deps) (*echo.Echo, error) {
	e, _, err := newEcho(d)
	return e, err
}

// newEcho is New, also returning the route table it registered, so that the
// package's tests can hold every route of that table to its contract.
func newEcho(d Deps) (*echo.Echo, []route, error) {
	if d.DB == nil || d.Accounts == nil || d.Cursors == nil || d.Logger == nil {
		return nil, nil, errors.New("handlers: DB, Accounts, Cursors and Logger are required")
	}
	if d.BodyLimit <= 0 {
		d.BodyLimit = DefaultBodyLimit
	}
	val, err := newValidate()
	if err != nil {
		return nil, nil, err
	}
	k := kit{dec: decoder{limit: d.BodyLimit}, val: val, cursors: d.Cursors}
	reports, err := newReportHandlers(d.DB)
	if err != nil {
		return nil, nil, err
	}
	s := &server{
		accounts: &accountHandlers{kit: k, accounts: d.Accounts},
		projects: &projectHandlers{kit: k, db: d.DB},
		tasks:    &taskHandlers{kit: k, db: d.DB},
		reports:  reports,
		admin:    &adminHandlers{kit: k, db: d.DB},
		meta:     &metaHandlers{db: d.DB},
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// The client IP is the TCP peer. Forwarded-for headers are client-
	// controlled unless a trusted proxy is configured (transport issue).
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = ErrorHandler(d.Logger)
	// c.Bind mixes path, query and body into one struct; it is switched off
	// so that nobody can use it by accident. Bodies go through readBody.
	e.Binder = noBinder{}
	e.Use(
		middleware.RequestID(),
		requestLogger(d.Logger),
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
	routes := s.routes()
	s.meta.doc = openAPIDocument(routes, d.Version)
	if err := register(e, routes, d.Accounts); err != nil {
		return nil, nil, err
	}
	return e, routes, nil
}

// requestLogger logs one structured line per request: never the query
// string, headers or bodies, which may carry credentials.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return echomw.RequestLoggerWithConfig(echomw.RequestLoggerConfig{
		LogStatus:    true,
		LogMethod:    true,
		LogURIPath:   true,
		LogRoutePath: true,
		LogLatency:   true,
		LogRemoteIP:  true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v echomw.RequestLoggerValues) error {
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("request_id", middleware.RequestIDOf(c)),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency.Round(time.Microsecond)),
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

package middleware

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
)

// CORSConfig configures CORS.
type CORSConfig struct {
	// AllowOrigins are exact origins (scheme://host[:port], as browsers send
	// them). Empty: CORS is off and no Access-Control-* header is ever sent.
	AllowOrigins []string
	// AllowCredentials allows credentialed requests from those origins.
	// Never together with a wildcard: there is no wildcard.
	AllowCredentials bool
}

// CORSAllowHeaders are the request headers the API reads: nothing else is
// admitted in a preflight.
var CORSAllowHeaders = []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderXRequestID}

// CORSExposeHeaders are the response headers a browser script may read.
var CORSExposeHeaders = []string{echo.HeaderXRequestID, echo.HeaderLocation, echo.HeaderRetryAfter, "RateLimit", "RateLimit-Policy"}

// CORS answers cross-origin requests from an exact allowlist, built on
// echo's CORS middleware with three restrictions of our own:
//   - origins match exactly (an allowlist function), so echo's subdomain
//     and wildcard-pattern matching can never apply;
//   - a preflight names only the methods the router has for that path and
//     only CORSAllowHeaders, never what the request asked for;
//   - a preflight for an unknown path is not answered here: it gets the
//     router's 404.
//
// An allowed origin is echoed with Vary: Origin; any other origin gets no
// Access-Control-Allow-Origin at all, so the browser withholds the answer.
func CORS(cfg CORSConfig) echo.MiddlewareFunc {
	if len(cfg.AllowOrigins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	allowed := slices.Clone(cfg.AllowOrigins)
	return echomw.CORSWithConfig(echomw.CORSConfig{
		Skipper: func(c echo.Context) bool {
			// A path the router does not know has no Allow list: let the
			// router answer 404 instead of a preflight success.
			_, known := c.Get(echo.ContextKeyHeaderAllow).(string)
			return c.Request().Method == http.MethodOptions && !known
		},
		AllowOriginFunc: func(origin string) (bool, error) {
			return slices.Contains(allowed, origin), nil
		},
		AllowMethods:     nil, // the router's Allow list of the path
		AllowHeaders:     CORSAllowHeaders,
		ExposeHeaders:    CORSExposeHeaders,
		AllowCredentials: cfg.AllowCredentials,
		MaxAge:           600,
	})
}

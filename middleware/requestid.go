package middleware

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/labstack/echo/v4"
	echomw "github.com/labstack/echo/v4/middleware"
)

const requestIDKey = "rampart.request_id"

// RequestIDConfig configures RequestIDWithConfig.
type RequestIDConfig struct {
	// Skipper skips the middleware for some requests.
	Skipper echomw.Skipper
	// Header is the request and response header carrying the ID.
	Header string
	// Generator makes a new ID.
	Generator func() string
	// MaxLength bounds a client-supplied ID; longer ones are replaced.
	MaxLength int
}

// DefaultRequestIDConfig uses X-Request-Id, 128-bit random IDs, and keeps a
// client's ID only if it is at most 64 characters of [A-Za-z0-9._-].
var DefaultRequestIDConfig = RequestIDConfig{
	Skipper:   echomw.DefaultSkipper,
	Header:    echo.HeaderXRequestID,
	Generator: randomID,
	MaxLength: 64,
}

// RequestID gives every request an ID with DefaultRequestIDConfig.
func RequestID() echo.MiddlewareFunc { return RequestIDWithConfig(DefaultRequestIDConfig) }

// RequestIDWithConfig gives every request an ID, sets it on the response
// and makes it available through RequestIDOf. A client-supplied ID is kept
// only when it is a short token of safe characters, so that it can be logged
// and echoed without enabling log or header injection.
func RequestIDWithConfig(cfg RequestIDConfig) echo.MiddlewareFunc {
	if cfg.Skipper == nil {
		cfg.Skipper = DefaultRequestIDConfig.Skipper
	}
	if cfg.Header == "" {
		cfg.Header = DefaultRequestIDConfig.Header
	}
	if cfg.Generator == nil {
		cfg.Generator = DefaultRequestIDConfig.Generator
	}
	if cfg.MaxLength <= 0 {
		cfg.MaxLength = DefaultRequestIDConfig.MaxLength
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if cfg.Skipper(c) {
				return next(c)
			}
			id := c.Request().Header.Get(cfg.Header)
			if !safeToken(id, cfg.MaxLength) {
				id = cfg.Generator()
			}
			c.Set(requestIDKey, id)
			c.Response().Header().Set(cfg.Header, id)
			return next(c)
		}
	}
}

// RequestIDOf returns the request's ID ("" outside RequestID).
func RequestIDOf(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// safeToken reports whether s is 1..max characters of [A-Za-z0-9._-].
func safeToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// SafeName reports whether s may be repeated in an error message or log as a
// field or parameter name: 1..64 characters of [A-Za-z0-9._-]. Anything
// else a client sent is described, never echoed.
func SafeName(s string) bool { return safeToken(s, 64) }

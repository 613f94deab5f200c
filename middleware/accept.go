package middleware

import (
	"mime"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// Produces refuses (406) a request whose Accept header admits nothing of
// mediaType, the one type the route answers with. The response type is never
// derived from Accept; a missing Accept admits anything.
func Produces(mediaType string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			accept := c.Request().Header.Values(echo.HeaderAccept)
			if len(accept) == 0 || Accepts(strings.Join(accept, ","), mediaType) {
				return next(c)
			}
			return models.E(models.KindNotAcceptable, "This endpoint answers with "+mediaType+" only.")
		}
	}
}

// Accepts reports whether the Accept header value admits mediaType: some
// media range with a non-zero quality matches it exactly, by type (type/*) or
// as */*. Parameters of mediaType (such as charset) are not part of the
// match: "Accept: text/html" admits "text/html; charset=utf-8". Malformed
// ranges are ignored.
func Accepts(header, mediaType string) bool {
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	typ, _, _ := strings.Cut(mediaType, "/")
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		if mt == mediaType || mt == "*/*" || mt == typ+"/*" {
			return true
		}
	}
	return false
}

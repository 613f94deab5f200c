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

// Accepts reports whether the Accept header value admits mediaType. Of the
// media ranges that match it, the most specific decides (RFC 9110 §12.5.1):
// an exact type beats type/*, which beats */*; the match admits when its
// quality is above zero. So "application/json;q=0, */*" refuses JSON.
// Parameters of mediaType (such as charset) are not part of the match:
// "Accept: text/html" admits "text/html; charset=utf-8". Malformed ranges,
// and ranges with a malformed quality, are ignored.
func Accepts(header, mediaType string) bool {
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	typ, _, _ := strings.Cut(mediaType, "/")
	best, quality := 0, 0.0 // specificity of the best match (0: none) and its quality
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		specificity := 0
		switch mt {
		case mediaType:
			specificity = 3
		case typ + "/*":
			specificity = 2
		case "*/*":
			specificity = 1
		}
		if specificity > best || specificity == best && specificity > 0 && q > quality {
			best, quality = specificity, q
		}
	}
	return best > 0 && quality > 0
}

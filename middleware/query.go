package middleware

import (
	"cmp"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// StrictQuery admits only the listed query parameters, each at most once.
// Unknown parameters are an error rather than silently ignored (a typo or a
// probe such as ?callback= or ?debug=1 gets a clear 400), and a repeated
// parameter is refused so that no layer can read a different copy than
// another (HTTP parameter pollution).
func StrictQuery(allowed ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw := c.Request().URL.RawQuery
			if raw == "" {
				return next(c)
			}
			values, err := url.ParseQuery(raw)
			if err != nil {
				return &models.Error{Kind: models.KindMalformed, Detail: "The query string is malformed."}
			}
			var fields []models.FieldError
			for name, vs := range values {
				field := name
				if !SafeName(name) {
					field = "(query)"
				}
				switch {
				case !slices.Contains(allowed, name):
					fields = append(fields, models.FieldError{Field: field, Message: "is not a query parameter of this endpoint"})
				case len(vs) > 1:
					fields = append(fields, models.FieldError{Field: field, Message: "must be given at most once"})
				}
			}
			if len(fields) > 0 {
				slices.SortFunc(fields, func(a, b models.FieldError) int { return cmp.Compare(a.Field, b.Field) })
				return &models.Error{Kind: models.KindMalformed, Detail: "The query string has parameters this endpoint does not take.", Fields: fields}
			}
			return next(c)
		}
	}
}

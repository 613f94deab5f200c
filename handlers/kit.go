package handlers

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// Paging defaults of every list endpoint.
const (
	DefaultPageLimit = 20
	MaxPageLimit     = 100
)

// kit holds the request-handling tools every resource handler shares: the
// strict decoder, the validator and the cursor codec.
type kit struct {
	dec     decoder
	val     validate
	cursors *models.CursorCodec
	changes models.ChangeSink // nil: nobody listens
}

// changed publishes a committed write to the change sink, if there is one.
func (k kit) changed(c echo.Context, ch models.Change) {
	if k.changes != nil {
		k.changes.Changed(c.Request().Context(), ch)
	}
}

// readBody decodes the JSON body into req (strictly, see decoder) and
// validates it: 415/413/400 from decoding, 422 from validation.
func (k kit) readBody(c echo.Context, req any) error {
	if err := k.dec.decodeJSON(c, req); err != nil {
		return err
	}
	return k.val.Struct(req)
}

// pageRequest reads ?limit= and ?cursor= for the list identified by scope.
// limit defaults to 20; a non-integer is 400, outside 1..100 is 422. The
// cursor must have been issued for the same list (same scope), else 400.
func (k kit) pageRequest(c echo.Context, scope string) (models.PageRequest, error) {
	req := models.PageRequest{Limit: DefaultPageLimit}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return req, &models.Error{Kind: models.KindMalformed, Detail: "The query string is malformed.",
				Fields: []models.FieldError{{Field: "limit", Message: "must be an integer"}}}
		}
		if n < 1 || n > MaxPageLimit {
			return req, models.Invalid("The query string has invalid values.",
				models.FieldError{Field: "limit", Message: "must be between 1 and 100"})
		}
		req.Limit = n
	}
	if s := c.QueryParam("cursor"); s != "" {
		after, err := k.cursors.Decode(scope, s)
		if err != nil {
			return req, err
		}
		req.After = after
	}
	return req, nil
}

// pageResponse is the shape of every list answer.
type pageResponse[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf converts a page of models with conv and signs its next cursor.
func pageOf[M, R any](k kit, scope string, page models.Page[M], conv func(M) R) pageResponse[R] {
	out := pageResponse[R]{Items: make([]R, 0, len(page.Items))}
	for _, m := range page.Items {
		out.Items = append(out.Items, conv(m))
	}
	if page.Next != 0 {
		next := k.cursors.Encode(scope, page.Next)
		out.NextCursor = &next
	}
	return out
}

// timestamp formats a time as RFC 3339 in UTC.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

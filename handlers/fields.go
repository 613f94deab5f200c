package handlers

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-go/rampart/models"
)

// Conversions between the wire form of a field and its model type, for the
// field types of generated resources (app/generator). The validator has
// already checked each value's form; these still refuse a bad one with a
// 422 naming the field rather than trusting that.

// parseTimestamp reads an RFC 3339 date and time, in UTC.
func parseTimestamp(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func fieldInvalid(field, message string) error {
	return models.Invalid("The request has invalid fields.", models.FieldError{Field: field, Message: message})
}

// timestampField converts a time field.
func timestampField(field, s string) (time.Time, error) {
	t, err := parseTimestamp(s)
	if err != nil {
		return time.Time{}, fieldInvalid(field, "must be an RFC 3339 date and time")
	}
	return t, nil
}

// optionalTimestampField converts an optional time field: nil stays nil.
func optionalTimestampField(field string, s *string) (*time.Time, error) {
	if s == nil {
		return nil, nil
	}
	t, err := timestampField(field, *s)
	return &t, err
}

// dateField converts a date field.
func dateField(field, s string) (models.NullDate, error) {
	d, err := models.ParseDate(s)
	if err != nil {
		return models.NullDate{}, fieldInvalid(field, "must be a date in the form YYYY-MM-DD")
	}
	return models.NullDate{Date: d, Valid: true}, nil
}

// optionalDateField converts an optional date field: nil is no date.
func optionalDateField(field string, s *string) (models.NullDate, error) {
	if s == nil {
		return models.NullDate{}, nil
	}
	return dateField(field, *s)
}

// nullableDateField converts an optional date member: absent or null is no
// date (in a PATCH, the request's Set says whether to apply it).
func nullableDateField(field string, n nullable[string]) (models.NullDate, error) {
	if !n.Set || n.Null {
		return models.NullDate{}, nil
	}
	return dateField(field, n.V)
}

// optionalDate is the wire form of an optional date.
func optionalDate(d models.NullDate) *string {
	if !d.Valid {
		return nil
	}
	s := d.Date.String()
	return &s
}

var decimalText = regexp.MustCompile(`^-?([0-9]+)(\.([0-9]+))?$`)

// decimalPattern is the JSON Schema pattern of the rule decimal=P.S.
func decimalPattern(param string) (string, error) {
	p, s, err := decimalParam(param)
	if err != nil {
		return "", err
	}
	if s == 0 {
		return fmt.Sprintf(`^-?[0-9]{1,%d}$`, p), nil
	}
	if p == s {
		return fmt.Sprintf(`^-?0(\.[0-9]{1,%d})?$`, s), nil
	}
	return fmt.Sprintf(`^-?[0-9]{1,%d}(\.[0-9]{1,%d})?$`, p-s, s), nil
}

func decimalParam(param string) (p, s int, err error) {
	ps, ss, ok := strings.Cut(param, ".")
	p, err1 := strconv.Atoi(ps)
	s, err2 := strconv.Atoi(ss)
	if !ok || err1 != nil || err2 != nil || p < 1 || s < 0 || s > p {
		return 0, 0, fmt.Errorf("decimal needs P.S with 0 <= S <= P, not %q", param)
	}
	return p, s, nil
}

// validDecimal reports whether s is a decimal number with at most p-s
// digits before the point and at most s after it.
func validDecimal(s, param string) bool {
	p, scale, err := decimalParam(param)
	if err != nil {
		return false
	}
	m := decimalText.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	whole := strings.TrimLeft(m[1], "0")
	return len(whole) <= p-scale && len(m[3]) <= scale && len(m[1]) <= 40
}

// decimalField converts a decimal field to its canonical text: no
// superfluous leading zeros, exactly scale digits after the point. Both
// dialects then store and return the same text.
func decimalField(field, s string, scale int) (string, error) {
	m := decimalText.FindStringSubmatch(s)
	if m == nil || len(m[3]) > scale {
		return "", fieldInvalid(field, "must be a decimal number")
	}
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign = "-"
	}
	whole := strings.TrimLeft(m[1], "0")
	if whole == "" {
		whole = "0"
	}
	frac := m[3] + strings.Repeat("0", scale-len(m[3]))
	if strings.Trim(whole+frac, "0") == "" {
		sign = "" // no negative zero
	}
	if scale == 0 {
		return sign + whole, nil
	}
	return sign + whole + "." + frac, nil
}

// optionalDecimalField converts an optional decimal field: nil stays nil.
func optionalDecimalField(field string, s *string, scale int) (*string, error) {
	if s == nil {
		return nil, nil
	}
	d, err := decimalField(field, *s, scale)
	return &d, err
}

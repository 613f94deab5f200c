package models

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// DateLayout is the wire and storage form of a calendar date.
const DateLayout = "2006-01-02"

// Date is a calendar date without time or zone, e.g. a task's due date.
type Date struct {
	t time.Time // midnight UTC
}

// ParseDate reads a strict YYYY-MM-DD date; 2026-02-30 and 2026-2-3 fail.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil || t.Year() < 1 {
		return Date{}, fmt.Errorf("not a YYYY-MM-DD date")
	}
	return Date{t: t}, nil
}

// String returns the date as YYYY-MM-DD.
func (d Date) String() string { return d.t.Format(DateLayout) }

// NullDate is a Date that may be absent (SQL NULL).
type NullDate struct {
	Date  Date
	Valid bool
}

// Scan reads a date column: PostgreSQL's date arrives as time.Time, SQLite's
// TEXT as a string.
func (n *NullDate) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n = NullDate{}
		return nil
	case time.Time:
		*n = NullDate{Date: Date{t: time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)}, Valid: true}
		return nil
	case string:
		return n.scanString(v)
	case []byte:
		return n.scanString(string(v))
	}
	return fmt.Errorf("cannot scan %T into a date", src)
}

func (n *NullDate) scanString(s string) error {
	d, err := ParseDate(s)
	if err != nil {
		return err
	}
	*n = NullDate{Date: d, Valid: true}
	return nil
}

// Value writes the date as YYYY-MM-DD text, which both dialects store
// exactly (PostgreSQL converts it to its date type).
func (n NullDate) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return n.Date.String(), nil
}

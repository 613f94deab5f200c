package handlers

import (
	"testing"
)

// TestDecimalField: decimal(p,s) values are checked against their digits
// and stored in one canonical text, so that both dialects return the same
// answer.
func TestDecimalField(t *testing.T) {
	for _, c := range []struct {
		in, param string
		valid     bool
		canonical string
	}{
		{"12.5", "10.2", true, "12.50"},
		{"0012.50", "10.2", true, "12.50"},
		{"-0.00", "10.2", true, "0.00"},
		{"-3", "10.2", true, "-3.00"},
		{"12345678.99", "10.2", true, "12345678.99"},
		{"123456789.99", "10.2", false, ""},
		{"1.234", "10.2", false, ""},
		{"1e3", "10.2", false, ""},
		{"", "10.2", false, ""},
		{".5", "10.2", false, ""},
		{"7", "3.0", true, "7"},
		{"0.25", "2.2", true, "0.25"},
		{"1.25", "2.2", false, ""},
	} {
		if got := validDecimal(c.in, c.param); got != c.valid {
			t.Errorf("validDecimal(%q, %s) = %v, want %v", c.in, c.param, got, c.valid)
		}
		if !c.valid {
			continue
		}
		_, scale, _ := decimalParam(c.param)
		got, err := decimalField("amount", c.in, scale)
		if err != nil || got != c.canonical {
			t.Errorf("decimalField(%q) = %q, %v; want %q", c.in, got, err, c.canonical)
		}
	}
	if _, err := decimalField("amount", "twelve", 2); err == nil {
		t.Error("decimalField accepted a word")
	}
	if p, err := decimalPattern("10.2"); err != nil || p != `^-?[0-9]{1,8}(\.[0-9]{1,2})?$` {
		t.Errorf("decimalPattern = %q, %v", p, err)
	}
	if _, err := decimalPattern("2.3"); err == nil {
		t.Error("decimalPattern accepted a scale above the precision")
	}
}

// TestTimeAndDateFields: the conversions refuse what is not a timestamp or
// a date with a 422 naming the field, and keep absent optional values
// absent.
func TestTimeAndDateFields(t *testing.T) {
	at, err := timestampField("at", "2030-01-31T12:00:00+02:00")
	if err != nil || timestamp(at) != "2030-01-31T10:00:00Z" {
		t.Errorf("timestampField = %s, %v", timestamp(at), err)
	}
	for _, bad := range []string{"tomorrow", "2030-01-31", "2030-01-31 12:00:00"} {
		if _, err := timestampField("at", bad); err == nil {
			t.Errorf("timestampField accepted %q", bad)
		}
	}
	if v, err := optionalTimestampField("at", nil); v != nil || err != nil {
		t.Errorf("optionalTimestampField(nil) = %v, %v", v, err)
	}
	d, err := dateField("on", "2030-01-31")
	if err != nil || optionalDate(d) == nil || *optionalDate(d) != "2030-01-31" {
		t.Errorf("dateField = %+v, %v", d, err)
	}
	if _, err := dateField("on", "2030-02-30"); err == nil {
		t.Error("dateField accepted February 30")
	}
	if d, err := optionalDateField("on", nil); d.Valid || err != nil || optionalDate(d) != nil {
		t.Errorf("optionalDateField(nil) = %+v, %v", d, err)
	}
	if v, err := optionalDecimalField("amount", nil, 2); v != nil || err != nil {
		t.Errorf("optionalDecimalField(nil) = %v, %v", v, err)
	}
}

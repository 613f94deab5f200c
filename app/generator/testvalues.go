package generator

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// stringKind is how valid test text for a string field is made.
func stringKind(f Field) string {
	for _, k := range []string{"email", "url", "uuid4", "alphanum"} {
		if _, ok := f.rule(k); ok {
			return k
		}
	}
	return "plain"
}

// lengths returns the allowed length range of a string field, with the
// generator's defaults.
func lengths(f Field) (lo, hi int64) {
	lo, hi, _ = f.bounds()
	lo = max(lo, 0)
	if _, ok := f.rule("max"); !ok {
		if _, ok := f.rule("len"); !ok {
			hi = defaultStringMax
			if f.Type == "text" {
				hi = defaultTextMax
			}
		}
	}
	return lo, hi
}

// testValues works out valid test values for f: Go expressions of JSON
// values, in scope of n (a number unique within the test API) and refs
// (the IDs of referenced objects of the same owner, by field name).
func testValues(f Field, fv *fieldView) error {
	unique := f.Index == "unique"
	switch f.Type {
	case "string", "text":
		lo, hi := lengths(f)
		if words, ok := f.rule("oneof"); ok {
			ws := strings.Fields(words)
			for _, w := range ws {
				if int64(len(w)) < lo || int64(len(w)) > hi {
					return fmt.Errorf("field %s: the oneof value %q breaks its own length rules", f.Name, w)
				}
			}
			fv.CreateValue, fv.UpdateValue = strconv.Quote(ws[0]), strconv.Quote(ws[len(ws)-1])
			return nil
		}
		kind := stringKind(f)
		need := map[string]int64{"email": 24, "url": 32, "uuid4": 36, "alphanum": 1, "plain": 1}[kind]
		if unique {
			need = max(need, 8)
		}
		switch {
		case hi < need:
			return fmt.Errorf("field %s: a max length of %d leaves no room for a valid %s value in the tests; allow at least %d", f.Name, hi, kind, need)
		case kind == "uuid4" && lo > 36:
			return fmt.Errorf("field %s: a uuid4 is 36 characters; min=%d rules it out", f.Name, lo)
		case kind == "email" && lo > 76:
			return fmt.Errorf("field %s: e-mail addresses longer than 76 characters are not supported by the tests; lower min", f.Name)
		}
		fv.CreateValue = fmt.Sprintf("textValue(%q, 1, n, %d, %d)", kind, lo, hi)
		fv.UpdateValue = fmt.Sprintf("textValue(%q, 2, n, %d, %d)", kind, lo, hi)
	case "int", "bigint":
		lo, hi, _ := f.bounds()
		if f.Type == "int" {
			lo, hi = max(lo, math.MinInt32), min(hi, math.MaxInt32)
		}
		clamp := func(x int64) int64 { return min(max(x, lo), hi) }
		if unique {
			base := clamp(1)
			if hi-base < 1_000_000 {
				return fmt.Errorf("field %s: a unique number needs room for 1000000 values above %d", f.Name, base)
			}
			fv.CreateValue = fmt.Sprintf("int64(%d) + n", base)
			fv.UpdateValue = fmt.Sprintf("int64(%d) + n + 500000", base)
			return nil
		}
		fv.CreateValue = fmt.Sprintf("int64(%d)", clamp(1))
		fv.UpdateValue = fmt.Sprintf("int64(%d)", clamp(2))
	case "bool":
		fv.CreateValue, fv.UpdateValue = "true", "false"
	case "decimal":
		p, _ := strconv.Atoi(f.Args[0])
		s, _ := strconv.Atoi(f.Args[1])
		whole1, whole2 := "1", "2"
		if p == s {
			whole1, whole2 = "0", "0"
		}
		a, b := whole1, whole2
		if s > 0 {
			a += "." + strings.Repeat("5", s)
			b += "." + strings.Repeat("2", s)
		}
		fv.CreateValue, fv.UpdateValue = strconv.Quote(a), strconv.Quote(b)
	case "time":
		fv.CreateValue, fv.UpdateValue = `"2030-01-31T12:00:00Z"`, `"2031-06-15T08:30:00Z"`
		if unique {
			fv.CreateValue, fv.UpdateValue = "timeValue(n)", "timeValue(n + 500000)"
		}
	case "date":
		fv.CreateValue, fv.UpdateValue = `"2030-01-31"`, `"2031-06-15"`
		if unique {
			fv.CreateValue, fv.UpdateValue = "dateValue(n)", "dateValue(n + 500000)"
		}
	case "uuid":
		fv.CreateValue, fv.UpdateValue = "uuidValue(n)", "uuidValue(n + 500000)"
	case "enum":
		fv.CreateValue, fv.UpdateValue = strconv.Quote(f.Args[0]), strconv.Quote(f.Args[len(f.Args)-1])
	case "ref":
		fv.CreateValue = "refs[" + strconv.Quote(f.Name) + "]"
		fv.UpdateValue = fv.CreateValue
	}
	return nil
}

// tests works out the cases of the generated tests.
func (v *view) tests() {
	v.UnknownMembers = []string{"id", "owner_id", "created_at", "updated_at"}
	members := []string{`"id"`}
	if v.Parent != nil {
		v.UnknownMembers = append(v.UnknownMembers, v.Parent.Column)
		members = append(members, strconv.Quote(v.Parent.Column))
	}
	for _, f := range v.Fields {
		members = append(members, strconv.Quote(f.Name))
	}
	members = append(members, `"created_at"`, `"updated_at"`)
	v.TestMembers = strings.Join(members, ", ")
	v.TooLong = fmt.Sprintf("strings.Repeat(%q, %d)", "x", v.BodyCapBytes)
}

// invalidCases lists, for each rule of each field, a value that breaks it.
func invalidCases(f Field, tag string) []invalidCase {
	var out []invalidCase
	add := func(what, value string, update bool) {
		out = append(out, invalidCase{What: f.Name + " " + what, Field: f.Name, Value: value, Update: update})
	}
	rules := strings.Split(tag, ",")
	lo, hi, _ := f.bounds()
	for _, rule := range rules {
		name, param, _ := strings.Cut(rule, "=")
		n, _ := strconv.ParseInt(param, 10, 64)
		switch name {
		case "required":
			add("missing", "", false)
		case "min", "max", "len", "gte", "lte":
			if f.Type == "int" || f.Type == "bigint" {
				limit := int64(math.MaxInt64)
				if f.Type == "int" {
					limit = math.MaxInt32
				}
				if (name == "min" || name == "gte") && n > -limit && n == lo {
					add(fmt.Sprintf("below %d", n), fmt.Sprintf("int64(%d)", n-1), true)
				}
				if (name == "max" || name == "lte") && n < limit && n == hi {
					add(fmt.Sprintf("above %d", n), fmt.Sprintf("int64(%d)", n+1), true)
				}
				continue
			}
			if (name == "min" || name == "len") && n > 0 {
				add(fmt.Sprintf("shorter than %d", n), fmt.Sprintf("strings.Repeat(%q, %d)", "a", n-1), true)
			}
			if name == "max" || name == "len" {
				add(fmt.Sprintf("longer than %d", n), fmt.Sprintf("strings.Repeat(%q, %d)", "a", n+1), true)
			}
		case "email":
			add("not an e-mail address", `"not-an-e-mail-address"`, true)
		case "url":
			add("not a URL", `"not a url"`, true)
		case "uuid4":
			add("not a UUID", `"not-a-uuid"`, true)
		case "alphanum":
			add("not alphanumeric", `"not alphanumeric!"`, true)
		case "oneof":
			add("not one of the values", `"not-one-of-them"`, true)
		case "nocontrol":
			add("with a line break", `"one\ntwo"`, true)
		case "nocontrolml":
			add("with an escape sequence", `"\u001b[2J"`, true)
		case "decimal":
			_, scale, _ := strings.Cut(param, ".")
			s, _ := strconv.Atoi(scale)
			add("with too many decimals", strconv.Quote("1."+strings.Repeat("1", s+1)), true)
			add("not a number", `"twelve"`, true)
		case "timestamp":
			add("not a timestamp", `"tomorrow at noon"`, true)
		case "date":
			add("not a date", `"2030-02-30"`, true)
		}
	}
	if f.Type == "ref" {
		add("not an object of the caller", `"2f1d3c4b-5a69-4788-99aa-bbccddeeff00"`, true)
	}
	return out
}

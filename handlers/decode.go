package handlers

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// Body limits. 64 KiB is far more than any request of this API needs; the
// nesting bound stops deeply nested values from costing stack and time.
const (
	DefaultBodyLimit = 64 << 10
	maxJSONDepth     = 32
)

// decoder is the one way request bodies are read. It is strict on purpose:
//   - Content-Type must be application/json (charset, if given, utf-8), else 415;
//   - at most limit bytes, else 413 (checked on Content-Length and while reading);
//   - the body is one JSON object: no trailing data, no duplicate names, no
//     invalid UTF-8, at most maxJSONDepth levels, else 400;
//   - member names match the request type exactly (case-sensitive): an
//     unknown member is refused (400), so no field can be mass-assigned;
//   - null is refused (400) except for fields declared nullable;
//   - strings are normalised to NFC before validation.
type decoder struct {
	limit int64
}

// decodeJSON reads the request body into dst (a pointer to a request
// struct) under the rules above. It never calls c.Bind, which would mix
// path, query and body values into one struct.
func (d decoder) decodeJSON(c echo.Context, dst any) error {
	req := c.Request()
	if err := checkContentType(req.Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	if req.ContentLength > d.limit {
		return tooLarge(d.limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, d.limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(d.limit)
		}
		return &models.Error{Kind: models.KindMalformed, Detail: "The request body could not be read.", Cause: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &models.Error{Kind: models.KindMalformed, Detail: "The request body is empty; send a JSON object."}
	}
	if err := prescan(body, nullableFields(dst)); err != nil {
		return err
	}
	if err := json.Unmarshal(body, dst, json.RejectUnknownMembers(true)); err != nil {
		return decodeError(err)
	}
	normalizeStrings(reflect.ValueOf(dst))
	return nil
}

func tooLarge(limit int64) error {
	return &models.Error{Kind: models.KindTooLarge, Detail: "The request body is larger than " + byteSize(limit) + "."}
}

func byteSize(n int64) string {
	if n%1024 == 0 {
		return strconv.FormatInt(n/1024, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func checkContentType(ct string) error {
	unsupported := &models.Error{Kind: models.KindUnsupportedMedia, Detail: "The request body must be sent as Content-Type: application/json."}
	if ct == "" {
		return unsupported
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupported
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return unsupported
		}
	}
	return nil
}

var errNotObject = &models.Error{Kind: models.KindMalformed, Detail: "The request body must be a JSON object."}

// prescan checks the syntax of body once before it is decoded: one object,
// bounded depth, no duplicate names (jsontext rejects them and invalid UTF-8
// by default), nothing after it, and null only for nullable members.
func prescan(body []byte, nullable map[string]bool) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	if err != nil {
		return syntaxError(err)
	}
	if tok.Kind() != '{' {
		return errNotObject
	}
	var fields []models.FieldError
	for dec.PeekKind() != '}' {
		nameTok, err := dec.ReadToken()
		if err != nil {
			return syntaxError(err)
		}
		name := nameTok.String()
		if dec.PeekKind() == 'n' && !nullable[name] {
			fields = append(fields, models.FieldError{Field: fieldName(name), Message: "must not be null"})
		}
		// Walk the member's value token by token, bounding the depth.
		for {
			if _, err := dec.ReadToken(); err != nil {
				return syntaxError(err)
			}
			if dec.StackDepth() > maxJSONDepth {
				return &models.Error{Kind: models.KindMalformed, Detail: "The request body is nested too deeply."}
			}
			if dec.StackDepth() == 1 {
				break
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil { // the closing '}'
		return syntaxError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return &models.Error{Kind: models.KindMalformed, Detail: "The request body has data after the JSON object."}
	}
	if len(fields) > 0 {
		return &models.Error{Kind: models.KindMalformed, Detail: "The request body has fields of the wrong type.", Fields: fields}
	}
	return nil
}

func syntaxError(err error) error {
	detail := "The request body is not valid JSON."
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		detail = "The request body is not valid JSON: it ends too early."
	case errors.Is(err, jsontext.ErrDuplicateName):
		// encoding/json would silently keep the last copy; two parsers
		// reading different copies is how smuggling starts.
		var se *jsontext.SyntacticError
		field := "(unnamed)"
		if errors.As(err, &se) {
			field = fieldName(se.JSONPointer.LastToken())
		}
		return &models.Error{Kind: models.KindMalformed, Detail: "The request body has a duplicate member name.",
			Fields: []models.FieldError{{Field: field, Message: "appears more than once"}}, Cause: err}
	}
	return &models.Error{Kind: models.KindMalformed, Detail: detail, Cause: err}
}

// decodeError turns a decoding error into a client-safe 400 naming the
// member, never its value.
func decodeError(err error) error {
	var se *json.SemanticError
	if !errors.As(err, &se) {
		return syntaxError(err)
	}
	name := strings.TrimPrefix(se.JSONPointer.LastToken(), "/")
	if se.JSONPointer == "" {
		return errNotObject
	}
	msg := "has the wrong type"
	if errors.Is(err, json.ErrUnknownName) {
		msg = "is not a field of this request"
	} else if se.GoType != nil {
		msg = "must be " + jsonTypeName(se.GoType)
	}
	return &models.Error{
		Kind:   models.KindMalformed,
		Detail: "The request body does not match the expected fields.",
		Fields: []models.FieldError{{Field: fieldName(name), Message: msg}},
		Cause:  err,
	}
}

// fieldName returns name if it is safe to repeat, else a placeholder: a
// client-chosen member name is only echoed when it looks like a field name.
func fieldName(name string) string {
	if middleware.SafeName(name) {
		return name
	}
	return "(unnamed)"
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(nullableType) || reflect.PointerTo(t).Implements(nullableType) {
		return "a string or null"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// nullable is a request field that may be absent, null, or a value: the
// only kind of field that admits JSON null. Used where null means "clear".
type nullable[T any] struct {
	Set  bool // the member was present
	Null bool // it was null
	V    T
}

func (n *nullable[T]) acceptsNull() {}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (n *nullable[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	n.Set = true
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		n.Null = true
		return err
	}
	return json.UnmarshalDecode(dec, &n.V)
}

var nullableType = reflect.TypeFor[interface{ acceptsNull() }]()

// nullableFields lists the JSON names of dst's fields that admit null.
func nullableFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if reflect.PointerTo(f.Type).Implements(nullableType) {
			out[jsonName(f)] = true
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// normalizeStrings rewrites every string reachable from v (fields, pointers,
// nullable values) into NFC, so validation and storage see canonical text.
func normalizeStrings(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalizeStrings(v.Elem())
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(models.NormalizeText(v.String()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalizeStrings(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			normalizeStrings(v.Index(i))
		}
	}
}

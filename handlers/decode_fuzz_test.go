package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// FuzzDecodeJSON feeds the strict JSON decoder arbitrary bodies and
// Content-Types, decoding into real request types (a nullable date, a
// pointer, a slice, plain strings). Whatever comes in:
//   - it never panics and answers the same twice;
//   - a refusal is a client error (400, 413 or 415) whose field names are
//     safe to repeat, never an internal error;
//   - an accepted body passed every rule, checked here with other code:
//     the Content-Type is application/json (charset utf-8 at most), the
//     body is one JSON object (encoding/json agrees) of at most
//     maxJSONDepth levels, with no duplicate member names and only the
//     request type's members, spelled exactly.
//
// The seed corpus is testdata/fuzz/FuzzDecodeJSON; scripts/fuzz.sh runs it
// for a bounded time.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"title":"Write the tests","done":false,"due_date":"2030-01-31"}`},
		{"application/json; charset=utf-8", `{"name":"key","scopes":["projects:read"],"expires_at":null,"rate_limit":60}`},
		{"application/json", `{"email":"a@example.com","password":"velvet-harbor-compass","display_name":"A"}`},
		{"application/json", `{"title":"x","title":"y"}`},
		{"application/json", `{"TITLE":"x"}`},
		{"application/json", `{"title":"x"}{}`},
		{"application/json", `{"title":null}`},
		{"application/json", `{"due_date":{"$ne":null}}`},
		{"application/json", "{\"title\":\"\xff\"}"},
		{"application/json", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`},
		{"text/plain", `{"title":"x"}`},
		{"application/json; charset=iso-8859-1", `{"title":"x"}`},
		{"", ``},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	const limit = 4 << 10
	dec := decoder{limit: limit}
	targets := []func() any{
		func() any { return &createTaskRequest{} },
		func() any { return &createAPIKeyRequest{} },
		func() any { return &registerRequest{} },
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		for _, target := range targets {
			run := func() (any, error) {
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				req.Header.Set(echo.HeaderContentType, ct)
				c := echo.New().NewContext(req, httptest.NewRecorder())
				dst := target()
				return dst, dec.decodeJSON(c, dst)
			}
			dst, err := run()
			dst2, err2 := run()
			if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(dst, dst2)) {
				t.Fatalf("%T: two decodings of one body differ: %v / %v", dst, err, err2)
			}
			if err != nil {
				checkDecodeRefusal(t, err)
				continue
			}
			checkAccepted(t, ct, body, reflect.TypeOf(dst).Elem(), limit)
		}
	})
}

// checkDecodeRefusal: a refusal is a client error with safe field names.
func checkDecodeRefusal(t *testing.T, err error) {
	t.Helper()
	var me *models.Error
	if !errors.As(err, &me) {
		t.Fatalf("refusal %v is not a models.Error", err)
	}
	switch me.Kind {
	case models.KindMalformed, models.KindTooLarge, models.KindUnsupportedMedia:
	default:
		t.Fatalf("refusal of kind %v, want malformed, too large or unsupported media: %v", me.Kind, err)
	}
	if me.Detail == "" {
		t.Fatalf("refusal without a client detail: %v", err)
	}
	for _, f := range me.Fields {
		if f.Field != "(unnamed)" && !middleware.SafeName(f.Field) {
			t.Fatalf("refusal names the field %q, which is not safe to repeat", f.Field)
		}
	}
}

// checkAccepted re-checks an accepted body with other code than the decoder's.
func checkAccepted(t *testing.T, ct string, body []byte, typ reflect.Type, limit int) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		t.Fatalf("accepted the Content-Type %q", ct)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			t.Fatalf("accepted the Content-Type parameter %s=%s", k, v)
		}
	}
	if len(body) > limit {
		t.Fatalf("accepted a body of %d bytes over the limit of %d", len(body), limit)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		t.Fatalf("accepted a body that is not one JSON object: %v: %q", err, body)
	}
	fields := map[string]bool{}
	for i := range typ.NumField() {
		fields[jsonName(typ.Field(i))] = true
	}
	for name := range obj {
		if !fields[name] {
			t.Fatalf("accepted the member %q, which %s does not have", name, typ)
		}
	}
	// Duplicate names and depth, token by token with encoding/json.
	d := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next string token in this object is a name
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("accepted a body encoding/json cannot read: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true
				}
				stack = append(stack, &frame{object: v == '{', seen: map[string]bool{}, key: v == '{'})
				if len(stack) > maxJSONDepth {
					t.Fatalf("accepted a body nested %d levels deep", len(stack))
				}
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.key {
				if top.seen[v] {
					t.Fatalf("accepted the duplicate member %q", v)
				}
				top.seen[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

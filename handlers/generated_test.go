package handlers

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
)

// Support for the tests the generator writes (app/generator, templates/
// generator): how the conformance suite learns about generated resources,
// and the helpers their tests share. Hand-written; the generated files
// only call it.

// generatedFixture is what the conformance suite needs to know about one
// generated resource: its paths, how to make objects and valid and
// invalid bodies. routes_gen_test.go lists one per resource.
type generatedFixture struct {
	collection, item string // echo paths
	// objects makes a fresh object (and its parent) of the user of token
	// and returns the path parameters that address it.
	objects func(api *testAPI, tb testing.TB, token string) map[string]string
	// refs makes the objects a body refers to, owned by the user of token.
	refs func(api *testAPI, tb testing.TB, token string) map[string]string
	// body and change make valid create and update bodies (change is nil
	// without an update route); n keeps unique fields unique.
	body, change func(n int64, refs map[string]string) map[string]any
	// invalid and invalidChange break one rule of a valid body.
	invalid, invalidChange func(body map[string]any) map[string]any
}

// addGeneratedBodies adds the body cases of the generated resources to the
// fixture, with references to objects of the fixture's owner.
func (fx *fixture) addGeneratedBodies(t testing.TB) {
	t.Helper()
	for _, g := range generatedFixtures() {
		refs := g.refs(fx.api, t, fx.owner.Token)
		fx.bodies["POST "+g.collection] = bodyCase{
			valid:   func(fx *fixture) string { return mustJSON(g.body(fx.api.next(), refs)) },
			invalid: mustJSON(g.invalid(g.body(fx.api.next(), refs))),
		}
		if g.change != nil {
			fx.bodies["PATCH "+g.item] = bodyCase{
				valid:   func(fx *fixture) string { return mustJSON(g.change(fx.api.next(), refs)) },
				invalid: mustJSON(g.invalidChange(g.change(fx.api.next(), refs))),
			}
		}
	}
}

// generatedFor returns the fixture of the generated resource r belongs to.
func generatedFor(r route) (generatedFixture, bool) {
	for _, g := range generatedFixtures() {
		if r.path == g.collection || r.path == g.item {
			return g, true
		}
	}
	return generatedFixture{}, false
}

// testGeneratedIDs: another user's object of a generated resource is 404
// and stays as it was; for a child resource, so is the owner's object
// addressed through the caller's own parent.
func (fx *fixture) testGeneratedIDs(t testing.TB, g generatedFixture, r route, body string) {
	send := func(token string, values map[string]string) int {
		target := fillPath(r.path, escapeAll(values))
		return fx.api.serve(t, withToken(newRequest(r.method, target, body), token)).Code
	}
	victim := g.objects(fx.api, t, fx.owner.Token)
	snapshot := func() string {
		rec := fx.api.call(t, http.MethodGet, fillPath(g.item, victim), fx.owner.Token, "")
		return fmt.Sprintf("%d %s", rec.Code, rec.Body.String())
	}
	before := snapshot()
	if code := send(fx.other.Token, victim); code != http.StatusNotFound {
		t.Errorf("another user's object: status %d, want 404", code)
	}
	if params := pathParams(r.path); len(params) > 1 {
		own := g.objects(fx.api, t, fx.other.Token)
		values := cloneMap(victim)
		values[params[0]] = own[params[0]]
		if code := send(fx.other.Token, values); code != http.StatusNotFound {
			t.Errorf("another user's object through the caller's own parent: status %d, want 404", code)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("another user's call changed the owner's object:\nbefore %s\nafter  %s", before, after)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings, numbers and booleans always marshal
	}
	return string(b)
}

// withMember returns a copy of body with member name set to v.
func withMember(body map[string]any, name string, v any) map[string]any {
	out := maps.Clone(body)
	out[name] = v
	return out
}

// withoutMember returns a copy of body without member name.
func withoutMember(body map[string]any, name string) map[string]any {
	out := maps.Clone(body)
	delete(out, name)
	return out
}

// checkEcho checks that every member of sent comes back in rec's JSON
// object with the same value.
func checkEcho(tb testing.TB, rec *httptest.ResponseRecorder, sent map[string]any) {
	tb.Helper()
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		tb.Fatalf("not a JSON object: %v", err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(mustJSON(sent)), &want); err != nil {
		tb.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if !reflect.DeepEqual(got[name], want[name]) {
			tb.Errorf("%s = %v, want %v", name, got[name], want[name])
		}
	}
}

// textValue returns valid text of a kind (plain, email, url, uuid4,
// alphanum) with a length between minLen and maxLen, unique for variant
// and n.
func textValue(kind string, variant int, n int64, minLen, maxLen int) string {
	id := strconv.Itoa(variant) + "x" + strconv.FormatInt(n, 10)
	pad := func(s, with string, length int) string {
		for len(s) < length {
			s += with
		}
		return s
	}
	fit := func(s string) string { // keep the unique end
		if len(s) > maxLen {
			return s[len(s)-maxLen:]
		}
		return s
	}
	switch kind {
	case "email":
		const domain = "@example.com"
		local := pad("u"+id, "a", minLen-len(domain))
		return local[max(0, len(local)+len(domain)-maxLen):] + domain
	case "url":
		const base = "https://example.com/"
		path := pad(id, "a", minLen-len(base))
		return base + path[max(0, len(base)+len(path)-maxLen):]
	case "uuid4":
		return fmt.Sprintf("%08d-0000-4000-8000-%012d", variant, n)
	case "alphanum":
		return fit(pad("v"+strings.ReplaceAll(id, "x", "n"), "a", minLen))
	}
	return fit(pad("Value "+id, " x", minLen))
}

// timeValue returns a distinct RFC 3339 time for n.
func timeValue(n int64) string {
	return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second).Format(time.RFC3339)
}

// dateValue returns a distinct date for n.
func dateValue(n int64) string {
	return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n)).Format("2006-01-02")
}

// uuidValue returns a distinct version 4 UUID for n.
func uuidValue(n int64) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// TestGeneratedTestValues: the values generated tests send are valid for
// the rules they are made for, so that a generated test fails only when
// the code it tests does; and the body helpers copy, never change, a body.
func TestGeneratedTestValues(t *testing.T) {
	v := validator.New()
	for _, c := range []struct {
		kind, rules string
		minLen      int
		maxLen      int
	}{
		{"plain", "min=1,max=255", 1, 255},
		{"plain", "len=8", 8, 8},
		{"plain", "min=40,max=50", 40, 50},
		{"email", "email,max=200", 0, 200},
		{"email", "email,min=60,max=70", 60, 70},
		{"url", "url,max=300", 0, 300},
		{"url", "url,min=50,max=60", 50, 60},
		{"uuid4", "uuid4", 0, 255},
		{"alphanum", "alphanum,len=8", 8, 8},
		{"alphanum", "alphanum,min=1,max=3", 1, 3},
	} {
		seen := map[string]bool{}
		for _, n := range []int64{1, 42, 99999} {
			for variant := 1; variant <= 2; variant++ {
				s := textValue(c.kind, variant, n, c.minLen, c.maxLen)
				if err := v.Var(s, c.rules); err != nil {
					t.Errorf("textValue(%s, %d, %d) = %q breaks %s: %v", c.kind, variant, n, s, c.rules, err)
				}
				if c.maxLen >= 8 && seen[s] {
					t.Errorf("textValue(%s) repeats %q", c.kind, s)
				}
				seen[s] = true
			}
		}
	}
	for _, n := range []int64{1, 500001} {
		if _, err := time.Parse(time.RFC3339, timeValue(n)); err != nil || timeValue(n) == timeValue(n+1) {
			t.Errorf("timeValue(%d) = %q, %v", n, timeValue(n), err)
		}
		if _, err := time.Parse("2006-01-02", dateValue(n)); err != nil || dateValue(n) == dateValue(n+1) {
			t.Errorf("dateValue(%d) = %q, %v", n, dateValue(n), err)
		}
		if err := v.Var(uuidValue(n), "uuid4"); err != nil || uuidValue(n) == uuidValue(n+1) {
			t.Errorf("uuidValue(%d) = %q, %v", n, uuidValue(n), err)
		}
	}
	body := map[string]any{"title": "kept", "done": true}
	if with := withMember(body, "title", "changed"); with["title"] != "changed" || body["title"] != "kept" {
		t.Errorf("withMember = %v, and the body is now %v", with, body)
	}
	if without := withoutMember(body, "done"); len(without) != 1 || len(body) != 2 {
		t.Errorf("withoutMember = %v, and the body is now %v", without, body)
	}
	rec := httptest.NewRecorder()
	rec.Body.WriteString(`{"title":"kept","done":true,"count":3,"id":"x"}`)
	checkEcho(t, rec, map[string]any{"title": "kept", "done": true, "count": int64(3)})
	mismatch := &recordingTB{TB: t}
	mismatch.run(func() { checkEcho(mismatch, rec, map[string]any{"title": "other"}) })
	if !mismatch.Failed() {
		t.Error("checkEcho accepted a different value")
	}
}

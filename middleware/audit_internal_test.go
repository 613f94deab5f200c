package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestResourceOf: the object a request addresses is the last collection in
// its route template and the id after it; a list names its type only.
func TestResourceOf(t *testing.T) {
	for _, c := range []struct {
		path           string
		params, values []string
		typ, id        string
	}{
		{"/v1/projects/:id", []string{"id"}, []string{"p1"}, "project", "p1"},
		{"/v1/projects/:id/tasks/:task", []string{"id", "task"}, []string{"p1", "t1"}, "task", "t1"},
		{"/v1/projects/:id/tasks", []string{"id"}, []string{"p1"}, "task", ""},
		{"/v1/projects", nil, nil, "project", ""},
		{"/v1/projects/", nil, nil, "project", ""},
		{"/v1/api-keys/:id", []string{"id"}, []string{"k1"}, "apikey", "k1"},
		{"/v1/admin/users/:id/lock", []string{"id"}, []string{"u1"}, "user", "u1"},
		{"/v1/me", nil, nil, "", ""},
		{"/", nil, nil, "", ""},
		{"", nil, nil, "", ""},
	} {
		e := echo.New()
		ctx := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		ctx.SetPath(c.path)
		ctx.SetParamNames(c.params...)
		ctx.SetParamValues(c.values...)
		if typ, id := resourceOf(ctx); typ != c.typ || id != c.id {
			t.Errorf("%q: (%q, %q), want (%q, %q)", c.path, typ, id, c.typ, c.id)
		}
	}
}

package app

import (
	"fmt"
	"net/http"
	"testing"
)

// bareRouteStatus starts the server, makes a project, and asks the bare
// handler of the benchmark harness for it, with the owner in the query
// string and no credentials; it returns the status and the project's name
// in the answer.
func bareRouteStatus(t *testing.T) (int, string) {
	t.Helper()
	run := startServeWith(t, vars{"RAMPART_BENCH_AUDIT": "off"}, nil)
	var user struct{ ID string }
	if code := run.call(t, http.MethodPost, "/v1/auth/register", "", registerBody("bare@example.com"), &user); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	var login struct{ Token string }
	body := fmt.Sprintf(`{"email":"bare@example.com","password":%q}`, servePassword)
	if code := run.call(t, http.MethodPost, "/v1/auth/login", "", body, &login); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	var project struct{ ID, Name string }
	if code := run.call(t, http.MethodPost, "/v1/projects", login.Token, `{"name":"Bare"}`, &project); code != http.StatusCreated {
		t.Fatalf("create project: %d", code)
	}
	var got struct{ Name string }
	code := run.call(t, http.MethodGet, "/bench/bare/projects/"+project.ID+"?owner="+user.ID, "", "", &got)
	return code, got.Name
}

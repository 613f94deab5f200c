//go:build rampart_bench

package app

import (
	"net/http"
	"testing"
)

// TestBareRouteInBenchmarkBuild: in a benchmark build (-tags
// rampart_bench) the bare handler answers the project, with no
// credentials: what TestNoBareRouteInNormalBuild proves absent otherwise.
func TestBareRouteInBenchmarkBuild(t *testing.T) {
	if code, name := bareRouteStatus(t); code != http.StatusOK || name != "Bare" {
		t.Errorf("GET /bench/bare/projects/ID?owner=OWNER in a benchmark build: %d %q, want 200 \"Bare\"", code, name)
	}
}

//go:build !rampart_bench

package app

import (
	"net/http"
	"testing"
)

// TestNoBareRouteInNormalBuild: the bare handler of the benchmark harness,
// which answers without authentication, does not exist in a normal build:
// asking it for a real project with its owner's ID is a 404 like any
// unknown path. And RAMPART_BENCH_AUDIT=off does not switch the audit
// trail off. (app/bench_on_test.go shows the same request answered in a
// benchmark build, so this test would see the route if it were there.)
func TestNoBareRouteInNormalBuild(t *testing.T) {
	if code, name := bareRouteStatus(t); code != http.StatusNotFound || name != "" {
		t.Errorf("GET /bench/bare/projects/ID?owner=OWNER in a normal build: %d %q, want 404", code, name)
	}
	if benchAuditOff(func(string) string { return "off" }) {
		t.Error("a normal build lets RAMPART_BENCH_AUDIT switch the audit trail off")
	}
}

package handlers

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// sample is one gathered series: its labels and its value (the count, for
// histograms).
type sample struct {
	family string
	labels map[string]string
	value  float64
}

// gather reads every series of reg.
func gather(t *testing.T, reg *prometheus.Registry) []sample {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []sample
	for _, f := range families {
		for _, m := range f.GetMetric() {
			s := sample{family: f.GetName(), labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out = append(out, s)
		}
	}
	return out
}

// requestCount is the value of rampart_http_requests_total for labels.
func requestCount(samples []sample, labels map[string]string) float64 {
	for _, s := range samples {
		if s.family != "rampart_http_requests_total" || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value
		}
	}
	return 0
}

func dumpSamples(samples []sample) string {
	var lines []string
	for _, s := range samples {
		var ls []string
		for k, v := range s.labels {
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(ls)
		lines = append(lines, fmt.Sprintf("%s{%s} %v", s.family, strings.Join(ls, ","), s.value))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		// A registry of the test's own: never Prometheus' global default.
		reg := prometheus.NewRegistry()
		metrics, err := middleware.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		api := newTestAPIWith(t, db, func(d *Deps) { d.Metrics = metrics })
		u := api.signUp(t)
		p1 := api.createProject(t, u.Token, "First")
		p2 := api.createProject(t, u.Token, "Second")
		task := api.createTask(t, u.Token, p1.ID, "Counted")
		const unknownID = "2f1d3c4b-5a69-4788-99aa-bbccddeeff00"

		before := gather(t, reg)
		get := map[string]string{"listener": "public", "route": "/v1/projects/:id", "method": "GET", "status": "200"}
		getBefore := requestCount(before, get)

		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p1.ID, u.Token, ""), http.StatusOK, "get p1")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p2.ID, u.Token, ""), http.StatusOK, "get p2")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+unknownID, u.Token, ""), http.StatusNotFound, "get unknown")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p1.ID+"/tasks/"+task.ID, u.Token, ""), http.StatusOK, "get task")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p1.ID, "", ""), http.StatusUnauthorized, "get without token")
		// Methods outside the standard set, and unknown paths.
		for _, m := range []string{"FOO", "get", "X-INJECT-METHOD-LABEL"} {
			expectStatus(t, api.call(t, m, "/v1/projects/"+p1.ID, u.Token, ""), http.StatusMethodNotAllowed, m)
		}
		const strayPath = "/nothing-here-scanner-probe-8d1c"
		expectStatus(t, api.call(t, http.MethodGet, strayPath, "", ""), http.StatusNotFound, "stray path")
		expectStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+p1.ID+"/stray-child-7e2a", u.Token, ""), http.StatusNotFound, "stray child")
		svc := api.serviceListener()
		expectStatus(t, svc.serve(t, withServiceCert(newRequest(http.MethodGet, "/internal/v1/stats", ""), "reports")), http.StatusOK, "stats")

		after := gather(t, reg)
		dump := dumpSamples(after)

		t.Run("counted by route template", func(t *testing.T) {
			if got := requestCount(after, get) - getBefore; got != 2 {
				t.Errorf("GET /v1/projects/:id 200 counted %v times, want 2:\n%s", got, dump)
			}
			for _, labels := range []map[string]string{
				{"listener": "public", "route": "/v1/projects/:id", "method": "GET", "status": "404"},
				{"listener": "public", "route": "/v1/projects/:id", "method": "GET", "status": "401"},
				{"listener": "public", "route": "/v1/projects/:id/tasks/:task_id", "method": "GET", "status": "200"},
				{"listener": "service", "route": "/internal/v1/stats", "method": "GET", "status": "200"},
			} {
				if got := requestCount(after, labels) - requestCount(before, labels); got != 1 {
					t.Errorf("%v counted %v times, want 1:\n%s", labels, got, dump)
				}
			}
			// Paths the router does not know share one label.
			unmatched := map[string]string{"listener": "public", "route": "(unmatched)", "method": "GET", "status": "404"}
			if got := requestCount(after, unmatched) - requestCount(before, unmatched); got != 2 {
				t.Errorf("unknown paths counted %v times as (unmatched), want 2:\n%s", got, dump)
			}
		})

		t.Run("no raw path, id or method in any label", func(t *testing.T) {
			known := map[string]bool{"(unmatched)": true}
			for _, r := range allRoutes(api) {
				known[r.path] = true
			}
			standard := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "OTHER"}
			raw := []string{p1.ID, p2.ID, task.ID, unknownID, "nothing-here", "stray-child", "FOO", "get", "X-INJECT"}
			for _, s := range after {
				for name, v := range s.labels {
					for _, r := range raw {
						if strings.Contains(v, r) {
							t.Errorf("%s: label %s=%q contains the client's %q", s.family, name, v, r)
						}
					}
				}
				if route, ok := s.labels["route"]; ok && !known[route] {
					t.Errorf("%s: route label %q is neither a template of the route table nor (unmatched)", s.family, route)
				}
				if m, ok := s.labels["method"]; ok && !slices.Contains(standard, m) {
					t.Errorf("%s: method label %q", s.family, m)
				}
			}
		})

		t.Run("unknown methods are OTHER", func(t *testing.T) {
			var other float64
			for _, s := range after {
				if s.family == "rampart_http_requests_total" && s.labels["method"] == "OTHER" {
					if s.labels["route"] != "/v1/projects/:id" || s.labels["status"] != "405" {
						t.Errorf("OTHER counted as %v", s.labels)
					}
					other += s.value
				}
			}
			if other != 3 {
				t.Errorf("OTHER counted %v times, want 3:\n%s", other, dump)
			}

		})
	})
}

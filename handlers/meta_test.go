package handlers

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMetaEndpoints(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		t.Run("GET / points at the API", func(t *testing.T) {
			// Never a 404, whoever asks and whatever they accept.
			for _, accept := range []string{"", "*/*", "application/json", "text/html,*/*;q=0.8"} {
				req := newRequest(http.MethodGet, "/", "")
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				rec := api.serve(t, req)
				expectStatus(t, rec, http.StatusOK, "GET / Accept "+accept)
				var index map[string]string
				decodeExact(t, rec, &index, "name", "api", "openapi", "health")
				if index["openapi"] != "/openapi.json" {
					t.Errorf("index = %v", index)
				}
			}
		})

		t.Run("GET /healthz and /readyz", func(t *testing.T) {
			for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
				rec := api.call(t, http.MethodGet, path, "", "")
				expectStatus(t, rec, http.StatusOK, path)
				var status struct {
					Status string `json:"status"`
				}
				decodeExact(t, rec, &status, "status")
				if status.Status != want {
					t.Errorf("%s: status %q, want %q", path, status.Status, want)
				}
			}
		})

		t.Run("GET /openapi.json lists the route table", func(t *testing.T) {
			rec := api.call(t, http.MethodGet, "/openapi.json", "", "")
			expectStatus(t, rec, http.StatusOK, "openapi")
			if mediaType(rec) != "application/json" {
				t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			var doc struct {
				OpenAPI string                                `json:"openapi"`
				Info    map[string]any                        `json:"info"`
				Paths   map[string]map[string]json.RawMessage `json:"paths"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
				t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
			}
			if doc.Info["title"] == nil || doc.Info["version"] == nil {
				t.Errorf("info = %v", doc.Info)
			}

			httpMethods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
			var documented []string
			for path, item := range doc.Paths {
				for method, op := range item {
					if !slices.Contains(httpMethods, method) {
						continue
					}
					documented = append(documented, strings.ToUpper(method)+" "+path)
					var o struct {
						Security []map[string][]string `json:"security"`
					}
					if err := json.Unmarshal(op, &o); err != nil {
						t.Errorf("%s %s: %v", method, path, err)
					}
					documentedPublic := len(o.Security) == 0
					for _, r := range allRoutes(api) {
						if r.method == strings.ToUpper(method) && templatePath(r.path) == path && r.policy.IsPublic() != documentedPublic {
							t.Errorf("%s %s: the document says public=%v, the route table says %v", method, path, documentedPublic, r.policy.IsPublic())
						}
					}
				}
			}
			var table []string
			for _, r := range allRoutes(api) {
				table = append(table, r.method+" "+templatePath(r.path))
			}
			for _, key := range table {
				if !slices.Contains(documented, key) {
					t.Errorf("the route %s is not in the document", key)
				}
			}
			for _, key := range documented {
				if !slices.Contains(table, key) {
					t.Errorf("the document lists %s, which the route table does not have", key)
				}
			}
			if len(documented) != len(table) {
				t.Errorf("the document has %d operations, the route table %d routes", len(documented), len(table))
			}
		})
	})
}

// allRoutes is the whole route table: both listeners' routes.
func allRoutes(api *testAPI) []route { return append(slices.Clone(api.routes), api.svcRoutes...) }

var echoParam = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// templatePath writes an echo path (/v1/projects/:id) as an OpenAPI path
// template (/v1/projects/{id}).
func templatePath(path string) string { return echoParam.ReplaceAllString(path, "{$1}") }

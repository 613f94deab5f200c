package handlers

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// serviceListener is a view of the API through the mTLS listener's echo
// instance, with the same per-response checks as the public one (serve).
func (a *testAPI) serviceListener() *testAPI {
	literals := map[string]bool{}
	for _, r := range a.svcRoutes {
		for _, seg := range strings.Split(r.path, "/") {
			if !strings.HasPrefix(seg, ":") {
				literals[seg] = true
			}
		}
	}
	return &testAPI{e: a.svc, routes: a.svcRoutes, db: a.db, accounts: a.accounts, logs: a.logs, literals: literals, docFrom: a}
}

// serviceCert is a client certificate naming the service cn. Only what the
// handshake leaves for the handler matters here; the handshake itself (a
// foreign CA, an expired certificate) is the app package's to test.
func serviceCert(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"rampart services"}},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// withServiceCert gives r the TLS state of a connection whose client
// certificate, with Common Name cn, the handshake verified: what the mTLS
// listener's tls.Config (RequireAndVerifyClientCert) leaves in r.TLS.
func withServiceCert(r *http.Request, cn string) *http.Request {
	cert := serviceCert(cn)
	r.TLS = &tls.ConnectionState{
		Version:           tls.VersionTLS13,
		HandshakeComplete: true,
		PeerCertificates:  []*x509.Certificate{cert},
		VerifiedChains:    [][]*x509.Certificate{{cert}},
	}
	return r
}

func TestServiceRoutes(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		svc := api.serviceListener()
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "Counted")
		api.createTask(t, u.Token, p.ID, "Counted too")
		const stats = "/internal/v1/stats"

		t.Run("401 without a verified client certificate", func(t *testing.T) {
			unverified := newRequest(http.MethodGet, stats, "")
			// A certificate was presented but not verified (as with
			// tls.RequestClientCert): no chain, no principal.
			cert := serviceCert("reports")
			unverified.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert}}
			emptyChain := newRequest(http.MethodGet, stats, "")
			emptyChain.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, VerifiedChains: [][]*x509.Certificate{{}}}
			for _, c := range []struct {
				name string
				req  *http.Request
			}{
				{"plain request (req.TLS nil)", newRequest(http.MethodGet, stats, "")},
				{"TLS without a client certificate", func() *http.Request {
					r := newRequest(http.MethodGet, stats, "")
					r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
					return r
				}()},
				{"certificate presented but not verified", unverified},
				{"empty verified chain", emptyChain},
				{"a user's session token", withToken(newRequest(http.MethodGet, stats, ""), u.Token)},
				{"a user's session token over TLS", func() *http.Request {
					r := withToken(newRequest(http.MethodGet, stats, ""), u.Token)
					r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
					return r
				}()},
			} {
				rec := svc.serve(t, c.req)
				if checkStatus(t, rec, http.StatusUnauthorized, c.name) && strings.Contains(rec.Body.String(), `"users"`) {
					t.Errorf("%s: the 401 carries stats: %s", c.name, rec.Body.String())
				}
			}
		})

		t.Run("200 for a verified service certificate", func(t *testing.T) {
			for _, cn := range []string{"reports", "billing-v2", "svc.internal_1", strings.Repeat("a", 64)} {
				rec := svc.serve(t, withServiceCert(newRequest(http.MethodGet, stats, ""), cn))
				if !checkStatus(t, rec, http.StatusOK, "CN "+cn) {
					continue
				}
				var got statsJSON
				decodeExact(t, rec, &got, "service", "users", "projects", "tasks")
				if got.Service != cn {
					t.Errorf("CN %s: service %q", cn, got.Service)
				}
				if got.Users < 1 || got.Projects < 1 || got.Tasks < 1 {
					t.Errorf("CN %s: counts %+v, want at least the user, project and task made here", cn, got)
				}
				if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
					t.Errorf("CN %s: Cache-Control %q", cn, cc)
				}
			}
		})

		t.Run("401 for a Common Name with unsafe characters", func(t *testing.T) {
			for _, cn := range []string{
				"",
				"rep orts",
				"reports\r\nX-Injected: 1",
				"reports\n",
				"a/b",
				"<script>",
				"reports;admin",
				"repörts",
				"reports\x00",
				strings.Repeat("a", 65),
			} {
				rec := svc.serve(t, withServiceCert(newRequest(http.MethodGet, stats, ""), cn))
				if checkStatus(t, rec, http.StatusUnauthorized, "CN "+strings.ToValidUTF8(cn, "?")) && cn != "" && strings.Contains(rec.Body.String(), cn) {
					t.Errorf("CN %q: the problem repeats the name: %s", cn, rec.Body.String())
				}
			}
		})

		t.Run("404 for service routes on the public listener", func(t *testing.T) {
			for _, r := range api.svcRoutes {
				for _, req := range []*http.Request{
					newRequest(r.method, r.path, ""),
					withToken(newRequest(r.method, r.path, ""), u.Token),
					withServiceCert(newRequest(r.method, r.path, ""), "reports"),
				} {
					checkStatus(t, api.serve(t, req), http.StatusNotFound, "public listener: "+routeKey(r))
				}
			}
		})

		t.Run("404 for public routes on the mTLS listener", func(t *testing.T) {
			values := map[string]string{"id": p.ID, "task_id": "6a1d7b4f-9b6c-4d2e-8f3a-4b5c6d7e8f90"}
			for _, r := range api.routes {
				for _, req := range []*http.Request{
					withServiceCert(newRequest(r.method, fillPath(r.path, values), ""), "reports"),
					withToken(newRequest(r.method, fillPath(r.path, values), ""), u.Token),
				} {
					checkStatus(t, svc.serve(t, req), http.StatusNotFound, "mTLS listener: "+routeKey(r))
				}
			}
		})

		t.Run("route table", func(t *testing.T) {
			if len(api.svcRoutes) == 0 {
				t.Fatal("the mTLS listener has no routes")
			}
			for _, r := range api.svcRoutes {
				if !r.policy.IsService() || r.policy.String() != "service" {
					t.Errorf("mTLS route %s has policy %s, want service", routeKey(r), r.policy)
				}
			}
			for _, r := range api.routes {
				if r.policy.IsService() {
					t.Errorf("public route %s has the service policy", routeKey(r))
				}
			}
			var registered []string
			for _, r := range api.svc.Routes() {
				registered = append(registered, r.Method+" "+r.Path)
			}
			var table []string
			for _, r := range api.svcRoutes {
				table = append(table, routeKey(r))
			}
			if strings.Join(registered, ",") != strings.Join(table, ",") {
				t.Errorf("the mTLS router has %v, its table %v", registered, table)
			}
		})

		t.Run("OpenAPI marks service routes mtls", func(t *testing.T) {
			rec := api.call(t, http.MethodGet, "/openapi.json", "", "")
			expectStatus(t, rec, http.StatusOK, "openapi")
			var doc struct {
				Paths      map[string]map[string]json.RawMessage `json:"paths"`
				Components struct {
					SecuritySchemes map[string]struct {
						Type string `json:"type"`
					} `json:"securitySchemes"`
				} `json:"components"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Components.SecuritySchemes["mtls"].Type != "mutualTLS" {
				t.Errorf("securitySchemes.mtls = %+v, want type mutualTLS", doc.Components.SecuritySchemes["mtls"])
			}
			for _, r := range allRoutes(api) {
				raw := doc.Paths[templatePath(r.path)][strings.ToLower(r.method)]
				if raw == nil {
					t.Errorf("%s is not in the document", routeKey(r))
					continue
				}
				var op struct {
					Security []map[string][]string `json:"security"`
					Policy   string                `json:"x-rampart-policy"`
				}
				if err := json.Unmarshal(raw, &op); err != nil {
					t.Fatal(err)
				}
				usesMTLS := false
				for _, req := range op.Security {
					if _, ok := req["mtls"]; ok {
						usesMTLS = true
						if len(req) != 1 {
							t.Errorf("%s: mtls is combined with %v", routeKey(r), req)
						}
					}
				}
				if r.policy.IsService() {
					if len(op.Security) != 1 || !usesMTLS || op.Policy != "service" {
						t.Errorf("service route %s: security %v, policy %q; want only mtls and policy service", routeKey(r), op.Security, op.Policy)
					}
				} else if usesMTLS {
					t.Errorf("public-listener route %s is documented with mtls", routeKey(r))
				}
			}
		})
	})
}

type statsJSON struct {
	Service  string `json:"service"`
	Users    int64  `json:"users"`
	Projects int64  `json:"projects"`
	Tasks    int64  `json:"tasks"`
}

package handlers

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		t.Run("201 user object", func(t *testing.T) {
			body := `{"email":"Ada.Lovelace@Example.com","password":"analytical-engine-1843","display_name":"Ada Lovelace"}`
			rec := api.call(t, http.MethodPost, "/v1/auth/register", "", body)
			expectStatus(t, rec, http.StatusCreated, "register")
			var u userJSON
			decodeExact(t, rec, &u, userMembers...)
			checkID(t, u.ID)
			checkTimestamp(t, u.CreatedAt)
			if u.Email != "Ada.Lovelace@Example.com" || u.DisplayName != "Ada Lovelace" || u.Role != "user" {
				t.Errorf("user = %+v", u)
			}
			if strings.Contains(rec.Body.String(), "argon2") || strings.Contains(rec.Body.String(), "analytical-engine") {
				t.Errorf("the answer carries the password or its hash: %s", rec.Body.String())
			}
			if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}

			// /v1/me returns the same user; the e-mail is matched without case.
			token := api.login(t, "ada.lovelace@example.com", "analytical-engine-1843")
			rec = api.call(t, http.MethodGet, "/v1/me", token, "")
			expectStatus(t, rec, http.StatusOK, "me")
			var me userJSON
			decodeExact(t, rec, &me, userMembers...)
			if me != u {
				t.Errorf("/v1/me = %+v, want %+v", me, u)
			}
		})

		t.Run("400 role cannot be chosen", func(t *testing.T) {
			for _, role := range []string{`"admin"`, `"user"`, `["admin"]`, `null`} {
				body := `{"email":"grace@example.com","password":"cobol-compiler-1959","display_name":"Grace","role":` + role + `}`
				rec := api.call(t, http.MethodPost, "/v1/auth/register", "", body)
				expectStatus(t, rec, http.StatusBadRequest, "role "+role)
				if !problemOf(t, rec).hasField("role") {
					t.Errorf("role %s: the problem does not name role: %s", role, rec.Body.String())
				}
			}
			// Nothing was created: the address is still free, and the
			// account made now is a plain user.
			rec := api.call(t, http.MethodPost, "/v1/auth/register", "",
				`{"email":"grace@example.com","password":"cobol-compiler-1959","display_name":"Grace"}`)
			expectStatus(t, rec, http.StatusCreated, "register after the refused attempts")
			var u userJSON
			decodeExact(t, rec, &u, userMembers...)
			if u.Role != "user" {
				t.Errorf("role %q, want user", u.Role)
			}
		})

		t.Run("409 e-mail taken in any case", func(t *testing.T) {
			body := `{"email":"linus@example.com","password":"monolithic-kernel-1991","display_name":"Linus"}`
			expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/register", "", body), http.StatusCreated, "first")
			for _, email := range []string{"linus@example.com", "LINUS@EXAMPLE.COM", "Linus@Example.Com"} {
				body := fmt.Sprintf(`{"email":%q,"password":"another-passphrase-2024","display_name":"Someone else"}`, email)
				checkStatus(t, api.call(t, http.MethodPost, "/v1/auth/register", "", body), http.StatusConflict, email)
			}
		})

		t.Run("422", func(t *testing.T) {
			for _, c := range []struct{ name, body, field string }{
				{"e-mail malformed", `{"email":"no-at-sign.example.com","password":"long-enough-secret-1","display_name":"A"}`, "email"},
				{"e-mail with a name", `{"email":"Eve <eve@example.com>","password":"long-enough-secret-1","display_name":"A"}`, "email"},
				{"e-mail too long", `{"email":"` + strings.Repeat("a", 250) + `@example.com","password":"long-enough-secret-1","display_name":"A"}`, "email"},
				{"password too short", `{"email":"p1@example.com","password":"elevenchars","display_name":"A"}`, "password"},
				{"password too long", `{"email":"p2@example.com","password":"` + strings.Repeat("x", 129) + `","display_name":"A"}`, "password"},
				{"password common", `{"email":"p3@example.com","password":"qwerty123456","display_name":"A"}`, "password"},
				{"password is the e-mail", `{"email":"mirror-image@example.com","password":"mirror-image@example.com","display_name":"A"}`, "password"},
				{"display name empty", `{"email":"d1@example.com","password":"long-enough-secret-1","display_name":""}`, "display_name"},
				{"display name too long", `{"email":"d2@example.com","password":"long-enough-secret-1","display_name":"` + strings.Repeat("n", 65) + `"}`, "display_name"},
				{"display name with a line break", `{"email":"d3@example.com","password":"long-enough-secret-1","display_name":"a\nb"}`, "display_name"},
				{"display name with a bidi override", `{"email":"d4@example.com","password":"long-enough-secret-1","display_name":"abc\u202edef"}`, "display_name"},
				{"fields missing", `{}`, "email"},
			} {
				rec := api.call(t, http.MethodPost, "/v1/auth/register", "", c.body)
				if checkStatus(t, rec, http.StatusUnprocessableEntity, c.name) && !problemOf(t, rec).hasField(c.field) {
					t.Errorf("%s: the problem does not name %s: %s", c.name, c.field, rec.Body.String())
				}
			}
		})
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)

		t.Run("200 bearer token", func(t *testing.T) {
			rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, u.Password))
			expectStatus(t, rec, http.StatusOK, "login")
			var l loginJSON
			decodeExact(t, rec, &l, loginMembers...)
			if l.TokenType != "Bearer" {
				t.Errorf("token_type %q, want Bearer", l.TokenType)
			}
			if !strings.HasPrefix(l.Token, "rps_") || len(l.Token) < 4+43 {
				t.Errorf("token %q is not a session token of 256 bits", l.Token)
			}
			if exp := checkTimestamp(t, l.ExpiresAt); !exp.After(time.Now()) {
				t.Errorf("expires_at %s is not in the future", l.ExpiresAt)
			}
			if cc := rec.Header().Get(echo.HeaderCacheControl); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", l.Token, ""), http.StatusOK, "me with the new token")
		})

		t.Run("401 unknown e-mail and wrong password look alike", func(t *testing.T) {
			attempt := func(email, password string) (*httptest.ResponseRecorder, uint64) {
				before := api.hasher.Verifications()
				rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(email, password))
				return rec, api.hasher.Verifications() - before
			}
			unknown, unknownCost := attempt("nobody-here@example.com", u.Password)
			wrong, wrongCost := attempt(u.Email, "not-the-right-password")
			checkSameRefusal(t, unknown, wrong)
			if unknownCost != 1 || wrongCost != 1 {
				t.Errorf("Argon2id verifications: unknown e-mail %d, wrong password %d; want 1 each", unknownCost, wrongCost)
			}
			for _, secret := range []string{u.Password, "not-the-right-password", u.Token} {
				if strings.Contains(api.logs.String(), secret) {
					t.Errorf("the log contains the secret %q", secret)
				}
			}
		})
	})
}

// checkSameRefusal checks that two refused logins are indistinguishable:
// 401, the same headers and the same body apart from the request ID and
// the RateLimit field's counters (the per-IP and per-account counts differ
// from one attempt to the next). The RateLimit field must still name the
// same policies, and RateLimit-Policy (quotas and windows) must be equal.
func checkSameRefusal(t *testing.T, a, b *httptest.ResponseRecorder) {
	t.Helper()
	checkStatus(t, a, http.StatusUnauthorized, "first refusal")
	checkStatus(t, b, http.StatusUnauthorized, "second refusal")
	pa, pb := problemOf(t, a), problemOf(t, b)
	ba := strings.ReplaceAll(a.Body.String(), pa.RequestID, "ID")
	bb := strings.ReplaceAll(b.Body.String(), pb.RequestID, "ID")
	if ba != bb {
		t.Errorf("bodies differ:\n%s\n%s", ba, bb)
	}
	checkSamePolicyNames(t, a.Header(), b.Header())
	ha, hb := a.Header().Clone(), b.Header().Clone()
	for _, h := range []http.Header{ha, hb} {
		h.Del(echo.HeaderXRequestID)
		h.Del(headerRateLimit)
	}
	if !maps.EqualFunc(ha, hb, func(x, y []string) bool { return strings.Join(x, "\n") == strings.Join(y, "\n") }) {
		t.Errorf("headers differ:\n%v\n%v", ha, hb)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		second := api.login(t, u.Email, u.Password)

		rec := api.call(t, http.MethodPost, "/v1/auth/logout", u.Token, "")
		expectStatus(t, rec, http.StatusNoContent, "logout")
		if rec.Body.Len() != 0 {
			t.Errorf("204 with a body: %q", rec.Body.String())
		}
		for _, path := range []string{"/v1/me", "/v1/projects"} {
			rec := api.call(t, http.MethodGet, path, u.Token, "")
			expectStatus(t, rec, http.StatusUnauthorized, path+" after logout")
			if ch := rec.Header().Get(echo.HeaderWWWAuthenticate); !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("WWW-Authenticate %q", ch)
			}
		}
		expectStatus(t, api.call(t, http.MethodPost, "/v1/auth/logout", u.Token, ""), http.StatusUnauthorized, "second logout")
		// Only that session ended.
		expectStatus(t, api.call(t, http.MethodGet, "/v1/me", second, ""), http.StatusOK, "the other session")
	})
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		other := api.login(t, u.Email, u.Password)
		change := func(current, next string) *httptest.ResponseRecorder {
			return api.call(t, http.MethodPost, "/v1/me/password", u.Token,
				fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, current, next))
		}

		t.Run("422 wrong current password changes nothing", func(t *testing.T) {
			rec := change("not-my-password-at-all", "brand-new-passphrase-1")
			expectStatus(t, rec, http.StatusUnprocessableEntity, "wrong current password")
			if !problemOf(t, rec).hasField("current_password") {
				t.Errorf("the problem does not name current_password: %s", rec.Body.String())
			}
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", other, ""), http.StatusOK, "other session")
		})

		t.Run("422 new password breaks the policy", func(t *testing.T) {
			for _, next := range []string{"qwerty123456", u.Password, u.Email} {
				rec := change(u.Password, next)
				if checkStatus(t, rec, http.StatusUnprocessableEntity, "new password") && !problemOf(t, rec).hasField("new_password") {
					t.Errorf("the problem does not name new_password: %s", rec.Body.String())
				}
			}
		})

		t.Run("204 other sessions end", func(t *testing.T) {
			next := "brand-new-passphrase-2"
			rec := change(u.Password, next)
			expectStatus(t, rec, http.StatusNoContent, "change")
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", other, ""), http.StatusUnauthorized, "other session")
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", u.Token, ""), http.StatusOK, "current session")

			old := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(u.Email, u.Password))
			expectStatus(t, old, http.StatusUnauthorized, "login with the old password")
			api.login(t, u.Email, next)
		})
	})
}

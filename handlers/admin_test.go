package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAdmin(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		admin := api.newAdmin(t)
		alice := api.signUp(t)
		bob := api.signUp(t)

		t.Run("403 for a plain user on every admin route", func(t *testing.T) {
			n := 0
			for _, r := range api.routes {
				if r.policy.String() != "admin" {
					continue
				}
				n++
				target := fillPath(r.path, map[string]string{"id": bob.ID})
				checkStatus(t, api.call(t, r.method, target, alice.Token, ""), http.StatusForbidden, routeKey(r))
			}
			if n == 0 {
				t.Fatal("the route table has no admin routes")
			}
			// Bob was not locked by any of that.
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", bob.Token, ""), http.StatusOK, "bob")
		})

		t.Run("200 users paged", func(t *testing.T) {
			users := walk[adminUserJSON](t, api, admin.Token, "/v1/admin/users", 1)
			var ids []string
			for _, u := range users {
				ids = append(ids, u.ID)
			}
			for _, want := range []string{admin.ID, alice.ID, bob.ID} {
				if n := countOf(ids, want); n != 1 {
					t.Errorf("user %s listed %d times, want once", want, n)
				}
			}
			if len(ids) != 3 {
				t.Errorf("listed %d users, want 3", len(ids))
			}
			rec := api.call(t, http.MethodGet, "/v1/admin/users?limit=100", admin.Token, "")
			expectStatus(t, rec, http.StatusOK, "list")
			var page pageJSON[map[string]any]
			decodeExact(t, rec, &page, pageMembers...)
			for _, item := range page.Items {
				checkMembers(t, []byte(jsonBody(t, item)), adminUserMembers...)
			}
		})

		t.Run("204 lock ends sessions and refuses login", func(t *testing.T) {
			expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+bob.ID+"/lock", admin.Token, ""), http.StatusNoContent, "lock")
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", bob.Token, ""), http.StatusUnauthorized, "bob's token after the lock")
			if !lockedIn(t, api, admin.Token, bob.ID) {
				t.Error("the user list does not show bob locked")
			}

			// The right password of a locked account is refused exactly like
			// a wrong password of an account that is not locked, at the same
			// cost: the answer says nothing about the lock.
			attempt := func(email, password string) (*httptest.ResponseRecorder, uint64) {
				before := api.hasher.Verifications()
				rec := api.call(t, http.MethodPost, "/v1/auth/login", "", loginBody(email, password))
				return rec, api.hasher.Verifications() - before
			}
			locked, lockedCost := attempt(bob.Email, bob.Password)
			wrong, wrongCost := attempt(alice.Email, "not-alices-password-at-all")
			lockedWrong, lockedWrongCost := attempt(bob.Email, "not-bobs-password-at-all")
			checkSameRefusal(t, locked, wrong)
			checkSameRefusal(t, lockedWrong, wrong)
			if lockedCost != 1 || wrongCost != 1 || lockedWrongCost != 1 {
				t.Errorf("Argon2id verifications: locked %d, wrong password %d, locked and wrong %d; want 1 each",
					lockedCost, wrongCost, lockedWrongCost)
			}
			// Locking twice is harmless.
			expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+bob.ID+"/lock", admin.Token, ""), http.StatusNoContent, "lock again")

			expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+bob.ID+"/unlock", admin.Token, ""), http.StatusNoContent, "unlock")
			if lockedIn(t, api, admin.Token, bob.ID) {
				t.Error("the user list still shows bob locked")
			}
			// The old session stays ended; a new login works.
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", bob.Token, ""), http.StatusUnauthorized, "bob's old token after the unlock")
			token := api.login(t, bob.Email, bob.Password)
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", token, ""), http.StatusOK, "bob's new token")
		})

		t.Run("409 an admin cannot lock themselves", func(t *testing.T) {
			expectStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+admin.ID+"/lock", admin.Token, ""), http.StatusConflict, "lock self")
			expectStatus(t, api.call(t, http.MethodGet, "/v1/me", admin.Token, ""), http.StatusOK, "admin still signed in")
		})

		t.Run("404 unknown user", func(t *testing.T) {
			for _, action := range []string{"lock", "unlock"} {
				for _, id := range []string{"3b0e7f0a-9c1d-4e2f-8a3b-4c5d6e7f8a9b", "not-a-user-id"} {
					checkStatus(t, api.call(t, http.MethodPost, "/v1/admin/users/"+id+"/"+action, admin.Token, ""), http.StatusNotFound, action+" "+id)
				}
			}
		})
	})
}

// lockedIn reports whether the admin user list shows the user as locked.
func lockedIn(t *testing.T, api *testAPI, adminToken, userID string) bool {
	t.Helper()
	for _, u := range walk[adminUserJSON](t, api, adminToken, "/v1/admin/users", 100) {
		if u.ID == userID {
			return u.Locked
		}
	}
	t.Fatalf("user %s is not in the list", userID)
	return false
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

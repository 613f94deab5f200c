package models_test

import (
	"context"
	"testing"

	"github.com/rampart-go/rampart/models"
)

// fastParams keeps repository tests quick; the password tests use the real
// parameters.
var fastParams = models.DefaultArgon2Params

func newAccounts(tb testing.TB, db *models.DB) *models.Accounts {
	tb.Helper()
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	a, err := models.NewAccounts(context.Background(), db, models.AccountsConfig{
		Hasher: models.NewPasswordHasher(fastParams),
		Policy: policy,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// newUser registers a user and returns its ID.
func newUser(tb testing.TB, db *models.DB, email string) string {
	tb.Helper()
	u, err := newAccounts(tb, db).Register(context.Background(), models.NewUser{
		Email: email, DisplayName: "Test User", Password: "correct horse battery staple",
	})
	if err != nil {
		tb.Fatalf("register %s: %v", email, err)
	}
	return u.ID
}

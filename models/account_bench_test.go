package models_test

import (
	"context"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// BenchmarkAuthenticateSession measures resolving a session token to its
// principal, on each dialect, with the session cache (the server's
// default) and without it (one database read per request).
//
//	go test -run '^$' -bench AuthenticateSession ./models/
func BenchmarkAuthenticateSession(b *testing.B) {
	for _, d := range dbtest.Dialects {
		for _, cached := range []bool{false, true} {
			name := string(d) + "/cache=off"
			if cached {
				name = string(d) + "/cache=on"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				db := dbtest.Open(b, d)
				// The server's pool, which keeps as many idle connections
				// as it opens (dbtest keeps one).
				db.SQLDB().SetMaxIdleConns(db.SQLDB().Stats().MaxOpenConnections)
				if cached {
					c, err := models.NewSessionCache(models.SessionCacheConfig{})
					if err != nil {
						b.Fatal(err)
					}
					db.SetSessionCache(c)
				}
				a := newAccounts(b, db)
				newUser(b, db, "bench@example.com")
				res, err := a.Login(ctx, "bench@example.com", "correct horse battery staple")
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := a.Authenticate(ctx, res.Token); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// TestCheckRefOwnerScoped: a reference (a generated resource's ref field)
// is accepted only to an object of the same owner; another owner's
// object, a missing one and a malformed id are all KindInvalid naming the
// field, so that a reference cannot probe for other owners' objects.
func TestCheckRefOwnerScoped(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		t.Parallel()
		ctx := context.Background()
		alice, bob := newUser(t, db, "alice@example.com"), newUser(t, db, "bob@example.com")
		p, err := models.NewProjectRepo(db, alice).Create(ctx, models.ProjectInput{Name: "Alice's"})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CheckRefForTest(ctx, p.ID, alice); err != nil {
			t.Errorf("the owner's project: %v", err)
		}
		for what, c := range map[string]struct{ id, owner string }{
			"another owner's": {p.ID, bob},
			"missing":         {"2f1d3c4b-5a69-4788-99aa-bbccddeeff00", alice},
			"malformed":       {"' OR 1=1 --", alice},
		} {
			err := db.CheckRefForTest(ctx, c.id, c.owner)
			var e *models.Error
			if !errors.As(err, &e) || e.Kind != models.KindInvalid || len(e.Fields) != 1 || e.Fields[0].Field != "project_id" {
				t.Errorf("%s project: %v, want KindInvalid naming project_id", what, err)
			}
		}
	})
}

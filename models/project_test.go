package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

func ptr[T any](v T) *T { return &v }

func TestProjectRepoIsOwnerScoped(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		alice := newUser(t, db, "alice@example.com")
		bob := newUser(t, db, "bob@example.com")
		aliceRepo := models.NewProjectRepo(db, alice)
		bobRepo := models.NewProjectRepo(db, bob)

		p, err := aliceRepo.Create(ctx, models.ProjectInput{Name: "Secret plans", Description: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if !models.ValidID(p.ID) {
			t.Fatalf("id %q is not a canonical UUID", p.ID)
		}

		// Bob sees nothing of it: every method answers not found.
		if _, err := bobRepo.Get(ctx, p.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob Get: %v, want not found", err)
		}
		if _, err := bobRepo.Update(ctx, p.ID, models.ProjectPatch{Name: ptr("pwned")}); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob Update: %v, want not found", err)
		}
		if err := bobRepo.Delete(ctx, p.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob Delete: %v, want not found", err)
		}
		page, err := bobRepo.List(ctx, models.PageRequest{Limit: 10})
		if err != nil || len(page.Items) != 0 {
			t.Errorf("bob List: %v items, err %v", len(page.Items), err)
		}

		// And Alice's project is unchanged.
		got, err := aliceRepo.Get(ctx, p.ID)
		if err != nil || got.Name != "Secret plans" || got.Description != "d" {
			t.Fatalf("alice Get after bob's attempts: %+v, %v", got, err)
		}
		if !got.CreatedAt.Equal(p.CreatedAt) {
			t.Errorf("created_at round trip: %v vs %v", got.CreatedAt, p.CreatedAt)
		}

		up, err := aliceRepo.Update(ctx, p.ID, models.ProjectPatch{Description: ptr("")})
		if err != nil || up.Name != "Secret plans" || up.Description != "" {
			t.Fatalf("partial update: %+v, %v", up, err)
		}
		if err := aliceRepo.Delete(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := aliceRepo.Get(ctx, p.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("Get after delete: %v", err)
		}
	})
}

func TestProjectListPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "pager@example.com")
		repo := models.NewProjectRepo(db, owner)
		for i := range 5 {
			if _, err := repo.Create(ctx, models.ProjectInput{Name: string(rune('a' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		req := models.PageRequest{Limit: 2}
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			page, err := repo.List(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Items {
				names = append(names, p.Name)
			}
			if page.Next == 0 {
				break
			}
			req.After = page.Next
		}
		if got := len(names); got != 5 || names[0] != "a" || names[4] != "e" {
			t.Fatalf("pages gave %v", names)
		}
	})
}

func TestMalformedIDsAreNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		repo := models.NewProjectRepo(db, newUser(t, db, "ids@example.com"))
		for _, id := range []string{"", "1", "' OR 1=1 --", "{00000000-0000-4000-8000-000000000000}", "00000000-0000-4000-8000-00000000000G", "00000000-0000-4000-8000-00000000000A"} {
			if _, err := repo.Get(ctx, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want not found", id, err)
			}
		}
	})
}

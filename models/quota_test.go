package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// smallQuotas keep the quota tests fast; the race is the same at 100.
var smallQuotas = models.Quotas{ProjectsPerUser: 4, TasksPerProject: 5, APIKeysPerUser: 3}

// raceRounds is how often each race is run: once from quota-1, then again
// after a delete has freed a slot.
const raceRounds = 3

// racers is how many creates are started at once against one free slot.
const racers = 10

// wantQuotaExceeded fails the test unless err is KindQuotaExceeded with a
// detail that names the limit.
func wantQuotaExceeded(tb testing.TB, err error, limit int) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want quota exceeded (limit %d)", limit)
	}
	e := asError(tb, err)
	if e.Kind != models.KindQuotaExceeded || !strings.Contains(e.Detail, fmt.Sprint(limit)) {
		tb.Errorf("error %v, want KindQuotaExceeded naming the limit %d", e, limit)
	}
	if e.RetryAfter != 0 {
		tb.Errorf("quota error has RetryAfter %v: waiting does not free a quota", e.RetryAfter)
	}
}

// raceCreates starts n calls of create at the same moment and returns how
// many succeeded; every failure must be KindQuotaExceeded.
func raceCreates(tb testing.TB, n int, create func(ctx context.Context) error) int {
	tb.Helper()
	ctx := context.Background()
	start := make(chan struct{})
	errs := make(chan error, n)
	var ready, wg sync.WaitGroup
	ready.Add(n)
	for range n {
		wg.Go(func() {
			ready.Done()
			<-start // all of them leave the gate together
			errs <- create(ctx)
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case models.KindOf(err) != models.KindQuotaExceeded:
			tb.Errorf("a racing create failed with %v, want success or quota exceeded", err)
		}
	}
	return ok
}

func countRows(tb testing.TB, db *models.DB, query string, arg any) int {
	tb.Helper()
	n, err := db.QueryIntForTest(context.Background(), query, arg)
	if err != nil {
		tb.Fatal(err)
	}
	return int(n)
}

// quotaCase is one quota: how to create one more, count, and delete one.
type quotaCase struct {
	name   string
	limit  int
	create func(ctx context.Context) error
	count  func() int
	delete func(ctx context.Context) error
}

// quotaCases builds a case per quota for a fresh owner on db (with
// smallQuotas set). Each delete removes the newest row created through the
// case.
func quotaCases(tb testing.TB, db *models.DB, owner string) []quotaCase {
	tb.Helper()
	projects := models.NewProjectRepo(db, owner)
	keys := models.NewAPIKeyRepo(db, owner)
	// The tasks go into a project of a user of their own, so that the
	// parent does not count against the owner's project quota.
	taskOwner := newUser(tb, db, "tasks-"+owner[:8]+"@example.com")
	parent := newProject(tb, db, taskOwner, "parent")
	tasks := models.NewTaskRepo(db, taskOwner)

	var mu sync.Mutex
	var projectIDs, taskIDs, keyIDs []string
	push := func(ids *[]string, id string) {
		mu.Lock()
		defer mu.Unlock()
		*ids = append(*ids, id)
	}
	pop := func(ids *[]string) string {
		mu.Lock()
		defer mu.Unlock()
		id := (*ids)[len(*ids)-1]
		*ids = (*ids)[:len(*ids)-1]
		return id
	}
	return []quotaCase{
		{
			name: "projects per user", limit: smallQuotas.ProjectsPerUser,
			create: func(ctx context.Context) error {
				p, err := projects.Create(ctx, models.ProjectInput{Name: "p"})
				if err == nil {
					push(&projectIDs, p.ID)
				}
				return err
			},
			count:  func() int { return countRows(tb, db, `SELECT COUNT(*) FROM projects WHERE owner_id = ?`, owner) },
			delete: func(ctx context.Context) error { return projects.Delete(ctx, pop(&projectIDs)) },
		},
		{
			name: "tasks per project", limit: smallQuotas.TasksPerProject,
			create: func(ctx context.Context) error {
				task, err := tasks.Create(ctx, parent.ID, models.TaskInput{Title: "t"})
				if err == nil {
					push(&taskIDs, task.ID)
				}
				return err
			},
			count:  func() int { return countRows(tb, db, `SELECT COUNT(*) FROM tasks WHERE project_id = ?`, parent.ID) },
			delete: func(ctx context.Context) error { return tasks.Delete(ctx, parent.ID, pop(&taskIDs)) },
		},
		{
			name: "API keys per user", limit: smallQuotas.APIKeysPerUser,
			create: func(ctx context.Context) error {
				k, err := keys.Create(ctx, models.NewAPIKey{Name: "k", Scopes: []models.Scope{models.ScopeProjectsRead}, RateLimit: 60})
				if err == nil {
					push(&keyIDs, k.ID)
				}
				return err
			},
			count:  func() int { return countRows(tb, db, `SELECT COUNT(*) FROM api_keys WHERE user_id = ?`, owner) },
			delete: func(ctx context.Context) error { return keys.Delete(ctx, pop(&keyIDs)) },
		},
	}
}

func TestQuotaDefaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		// API.md, "Defaults that tests rely on": 100 projects per user,
		// 1000 tasks per project; and 20 API keys per user.
		if got := db.Quotas(); got != (models.Quotas{ProjectsPerUser: 100, TasksPerProject: 1000, APIKeysPerUser: 20}) || got != models.DefaultQuotas {
			t.Errorf("quotas of a fresh DB: %+v", got)
		}
		db.SetQuotas(models.Quotas{TasksPerProject: 7})
		if got := db.Quotas(); got != (models.Quotas{ProjectsPerUser: 100, TasksPerProject: 7, APIKeysPerUser: 20}) {
			t.Errorf("zero fields must keep their defaults: %+v", got)
		}
		db.SetQuotas(models.Quotas{ProjectsPerUser: -1, TasksPerProject: 0, APIKeysPerUser: 2})
		if got := db.Quotas(); got != (models.Quotas{ProjectsPerUser: 100, TasksPerProject: 1000, APIKeysPerUser: 2}) {
			t.Errorf("non-positive fields must keep their defaults: %+v", got)
		}
	})
}

// TestQuotaAtTheLimit: a full quota refuses with KindQuotaExceeded and
// inserts nothing; another owner (or parent) is not affected; deleting
// frees a slot.
func TestQuotaAtTheLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		db.SetQuotas(smallQuotas)
		owner := newUser(t, db, "full@example.com")
		other := quotaCases(t, db, newUser(t, db, "neighbour@example.com"))
		for i, qc := range quotaCases(t, db, owner) {
			t.Run(qc.name, func(t *testing.T) {
				for range qc.limit {
					if err := qc.create(ctx); err != nil {
						t.Fatalf("create below the quota: %v", err)
					}
				}
				for range 2 {
					wantQuotaExceeded(t, qc.create(ctx), qc.limit)
				}
				if n := qc.count(); n != qc.limit {
					t.Fatalf("%d rows after refused creates, want %d", n, qc.limit)
				}
				// A full quota is its owner's alone.
				if err := other[i].create(ctx); err != nil {
					t.Errorf("another owner's create: %v", err)
				}
				if err := qc.delete(ctx); err != nil {
					t.Fatal(err)
				}
				if err := qc.create(ctx); err != nil {
					t.Errorf("create after a delete freed a slot: %v", err)
				}
				wantQuotaExceeded(t, qc.create(ctx), qc.limit)
				if n := qc.count(); n != qc.limit {
					t.Errorf("%d rows, want %d", n, qc.limit)
				}
			})
		}
	})
}

// TestQuotaHoldsUnderRaces is the race of the issue ("ten parallel creates
// at 99 end at exactly 100"), with a small quota: with quota-1 rows
// present, ten creates start at once; exactly one succeeds, the others get
// KindQuotaExceeded and the count ends at exactly the quota. A delete then
// frees one slot and the race runs again.
func TestQuotaHoldsUnderRaces(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		db.SetQuotas(smallQuotas)
		owner := newUser(t, db, "racer@example.com")
		for _, qc := range quotaCases(t, db, owner) {
			t.Run(qc.name, func(t *testing.T) {
				for range qc.limit - 1 {
					if err := qc.create(ctx); err != nil {
						t.Fatal(err)
					}
				}
				for round := range raceRounds {
					if n := qc.count(); n != qc.limit-1 {
						t.Fatalf("round %d starts at %d rows, want %d", round, n, qc.limit-1)
					}
					if ok := raceCreates(t, racers, qc.create); ok != 1 {
						t.Errorf("round %d: %d of %d racing creates succeeded, want exactly 1", round, ok, racers)
					}
					if n := qc.count(); n != qc.limit {
						t.Fatalf("round %d ends at %d rows, want exactly the quota %d", round, n, qc.limit)
					}
					if err := qc.delete(ctx); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	})
}

// TestTaskQuotaNeedsTheOwnersProject: a create against a full project of
// another owner is not found, not "quota exceeded": the quota answer would
// tell that the project exists.
func TestTaskQuotaNeedsTheOwnersProject(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		db.SetQuotas(models.Quotas{TasksPerProject: 1})
		alice := newUser(t, db, "alice-quota@example.com")
		p := newProject(t, db, alice, "full")
		newTask(t, models.NewTaskRepo(db, alice), p.ID, models.TaskInput{Title: "only"})
		bob := models.NewTaskRepo(db, newUser(t, db, "bob-quota@example.com"))
		if _, err := bob.Create(ctx, p.ID, models.TaskInput{Title: "x"}); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob's create in alice's full project: %v, want not found", err)
		}
		if _, err := models.NewTaskRepo(db, alice).Create(ctx, p.ID, models.TaskInput{Title: "x"}); models.KindOf(err) != models.KindQuotaExceeded {
			t.Errorf("alice's create in her full project: %v, want quota exceeded", err)
		}
	})
}

package models_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// missingID is a canonical UUID that no row has.
const missingID = "00000000-0000-4000-8000-000000000000"

func newProject(tb testing.TB, db *models.DB, owner, name string) models.Project {
	tb.Helper()
	p, err := models.NewProjectRepo(db, owner).Create(context.Background(), models.ProjectInput{Name: name})
	if err != nil {
		tb.Fatalf("create project %q: %v", name, err)
	}
	return p
}

func newTask(tb testing.TB, repo *models.TaskRepo, projectID string, in models.TaskInput) models.Task {
	tb.Helper()
	task, err := repo.Create(context.Background(), projectID, in)
	if err != nil {
		tb.Fatalf("create task %q: %v", in.Title, err)
	}
	return task
}

func mustDate(tb testing.TB, s string) models.NullDate {
	tb.Helper()
	d, err := models.ParseDate(s)
	if err != nil {
		tb.Fatalf("ParseDate(%q): %v", s, err)
	}
	return models.NullDate{Date: d, Valid: true}
}

// countTasks counts the rows of a project's tasks in the database itself,
// past any repository.
func countTasks(tb testing.TB, db *models.DB, projectID string) int64 {
	tb.Helper()
	n, err := db.QueryIntForTest(context.Background(), `SELECT COUNT(*) FROM tasks WHERE project_id = ?`, projectID)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// sameTask compares every field a caller can see.
func sameTask(a, b models.Task) bool {
	return a.ID == b.ID && a.ProjectID == b.ProjectID && a.Title == b.Title && a.Done == b.Done &&
		a.DueDate == b.DueDate && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestTaskRepoIsScopedThroughTheProjectOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		alice := newUser(t, db, "alice@example.com")
		bob := newUser(t, db, "bob@example.com")
		aliceTasks := models.NewTaskRepo(db, alice)
		bobTasks := models.NewTaskRepo(db, bob)

		aliceProject := newProject(t, db, alice, "alice's")
		aliceOther := newProject(t, db, alice, "alice's other")
		bobProject := newProject(t, db, bob, "bob's")
		task := newTask(t, aliceTasks, aliceProject.ID, models.TaskInput{Title: "secret", DueDate: mustDate(t, "2026-05-01")})
		bobTask := newTask(t, bobTasks, bobProject.ID, models.TaskInput{Title: "bob's task"})

		// Each case addresses a task that the caller must not reach: through
		// another owner's project, or through another project of the same
		// owner. Every method answers not found.
		cases := []struct {
			name      string
			repo      *models.TaskRepo
			projectID string
			taskID    string
		}{
			{"another owner's project and task", bobTasks, aliceProject.ID, task.ID},
			{"another owner's task through an own project", bobTasks, bobProject.ID, task.ID},
			{"own task through another project of the same owner", aliceTasks, aliceOther.ID, task.ID},
			{"another owner's task through their project", aliceTasks, bobProject.ID, bobTask.ID},
			{"another owner's task through an own project (reverse)", aliceTasks, aliceProject.ID, bobTask.ID},
			{"missing project", aliceTasks, missingID, task.ID},
			{"missing task", aliceTasks, aliceProject.ID, missingID},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := tc.repo.Get(ctx, tc.projectID, tc.taskID); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("Get: %v, want not found", err)
				}
				patch := models.TaskPatch{Title: ptr("pwned"), Done: ptr(true), SetDueDate: true}
				if _, err := tc.repo.Update(ctx, tc.projectID, tc.taskID, patch); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("Update: %v, want not found", err)
				}
				if err := tc.repo.Delete(ctx, tc.projectID, tc.taskID); !errors.Is(err, models.ErrNotFound) {
					t.Errorf("Delete: %v, want not found", err)
				}
			})
		}

		// Creating in, or listing, another owner's project is not found too,
		// and inserts nothing.
		if _, err := bobTasks.Create(ctx, aliceProject.ID, models.TaskInput{Title: "planted"}); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob Create in alice's project: %v, want not found", err)
		}
		if _, err := bobTasks.List(ctx, aliceProject.ID, models.PageRequest{Limit: 10}); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("bob List of alice's project: %v, want not found", err)
		}
		if _, err := aliceTasks.Create(ctx, bobProject.ID, models.TaskInput{Title: "planted"}); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("alice Create in bob's project: %v, want not found", err)
		}
		if n := countTasks(t, db, aliceProject.ID); n != 1 {
			t.Errorf("alice's project has %d tasks after the attempts, want 1", n)
		}
		if n := countTasks(t, db, bobProject.ID); n != 1 {
			t.Errorf("bob's project has %d tasks after the attempts, want 1", n)
		}

		// Nothing changed: both tasks are exactly as created.
		for _, want := range []struct {
			repo      *models.TaskRepo
			projectID string
			task      models.Task
		}{{aliceTasks, aliceProject.ID, task}, {bobTasks, bobProject.ID, bobTask}} {
			got, err := want.repo.Get(ctx, want.projectID, want.task.ID)
			if err != nil {
				t.Fatalf("owner Get after the attempts: %v", err)
			}
			if !sameTask(got, want.task) {
				t.Errorf("task changed by the attempts:\n got %+v\nwant %+v", got, want.task)
			}
		}
	})
}

func TestTaskRepoCRUD(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "crud@example.com")
		repo := models.NewTaskRepo(db, owner)
		p := newProject(t, db, owner, "p")

		task := newTask(t, repo, p.ID, models.TaskInput{Title: "write tests"})
		if !models.ValidID(task.ID) || task.ProjectID != p.ID || task.Title != "write tests" || task.Done || task.DueDate.Valid {
			t.Fatalf("created %+v", task)
		}
		up, err := repo.Update(ctx, p.ID, task.ID, models.TaskPatch{Done: ptr(true)})
		if err != nil || !up.Done || up.Title != "write tests" {
			t.Fatalf("partial update: %+v, %v", up, err)
		}
		if err := repo.Delete(ctx, p.ID, task.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Get(ctx, p.ID, task.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("Get after delete: %v", err)
		}
		if err := repo.Delete(ctx, p.ID, task.ID); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("second Delete: %v", err)
		}

		for _, id := range []string{"", "1", "' OR 1=1 --", "00000000-0000-4000-8000-00000000000A"} {
			if _, err := repo.Create(ctx, id, models.TaskInput{Title: "x"}); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Create(%q): %v, want not found", id, err)
			}
			if _, err := repo.List(ctx, id, models.PageRequest{Limit: 10}); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("List(%q): %v, want not found", id, err)
			}
			if _, err := repo.Get(ctx, p.ID, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Get(task %q): %v, want not found", id, err)
			}
			if _, err := repo.Update(ctx, id, id, models.TaskPatch{}); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Update(%q): %v, want not found", id, err)
			}
			if err := repo.Delete(ctx, p.ID, id); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("Delete(task %q): %v, want not found", id, err)
			}
		}
	})
}

func TestTaskListEmptyVersusNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		alice := newUser(t, db, "alice@example.com")
		bob := newUser(t, db, "bob@example.com")
		repo := models.NewTaskRepo(db, alice)
		empty := newProject(t, db, alice, "empty")
		bobs := newProject(t, db, bob, "bob's")
		newTask(t, models.NewTaskRepo(db, bob), bobs.ID, models.TaskInput{Title: "bob's task"})

		page, err := repo.List(ctx, empty.ID, models.PageRequest{Limit: 10})
		if err != nil {
			t.Fatalf("own empty project: %v, want an empty page", err)
		}
		if page.Items == nil || len(page.Items) != 0 || page.Next != 0 {
			t.Errorf("own empty project: %+v, want an empty, non-nil, last page", page)
		}

		for name, id := range map[string]string{"foreign": bobs.ID, "missing": missingID} {
			if _, err := repo.List(ctx, id, models.PageRequest{Limit: 10}); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("%s project: %v, want not found", name, err)
			}
		}
	})
}

func TestTaskListPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "pager@example.com")
		repo := models.NewTaskRepo(db, owner)
		p := newProject(t, db, owner, "p")
		other := newProject(t, db, owner, "other")
		// Tasks of another project are interleaved, so the ordering keys of
		// one project have gaps.
		var want []string
		for i := range 5 {
			title := string(rune('a' + i))
			newTask(t, repo, p.ID, models.TaskInput{Title: title})
			newTask(t, repo, other.ID, models.TaskInput{Title: "other " + title})
			want = append(want, title)
		}

		for _, limit := range []int{1, 2, 5, 6} {
			var titles []string
			req := models.PageRequest{Limit: limit}
			pages := 0
			for {
				pages++
				if pages > 10 {
					t.Fatalf("limit %d: pagination does not end", limit)
				}
				page, err := repo.List(ctx, p.ID, req)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Items) > limit {
					t.Fatalf("limit %d: page of %d items", limit, len(page.Items))
				}
				for _, task := range page.Items {
					if task.ProjectID != p.ID {
						t.Fatalf("limit %d: task of project %s in the list of %s", limit, task.ProjectID, p.ID)
					}
					titles = append(titles, task.Title)
				}
				if page.Next == 0 {
					break
				}
				if len(page.Items) != limit {
					t.Fatalf("limit %d: a short page (%d) that is not the last", limit, len(page.Items))
				}
				req.After = page.Next
			}
			if len(titles) != len(want) {
				t.Fatalf("limit %d: pages gave %v, want %v", limit, titles, want)
			}
			for i := range want {
				if titles[i] != want[i] {
					t.Fatalf("limit %d: pages gave %v, want %v", limit, titles, want)
				}
			}
			if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
			}
		}

		// A position past the last task is an empty page, not an error.
		all, err := repo.List(ctx, p.ID, models.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		last := all.Items[len(all.Items)-1].Seq
		page, err := repo.List(ctx, p.ID, models.PageRequest{Limit: 10, After: last})
		if err != nil || len(page.Items) != 0 || page.Next != 0 {
			t.Errorf("after the last task: %+v, %v; want an empty last page", page, err)
		}
	})
}

func TestTaskDueDate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "due@example.com")
		repo := models.NewTaskRepo(db, owner)
		p := newProject(t, db, owner, "p")

		check := func(t *testing.T, step string, want string) {
			t.Helper()
			page, err := repo.List(ctx, p.ID, models.PageRequest{Limit: 10})
			if err != nil || len(page.Items) != 1 {
				t.Fatalf("%s: List: %+v, %v", step, page, err)
			}
			got := page.Items[0]
			single, err := repo.Get(ctx, p.ID, got.ID)
			if err != nil {
				t.Fatalf("%s: Get: %v", step, err)
			}
			for how, task := range map[string]models.Task{"List": got, "Get": single} {
				switch {
				case want == "" && task.DueDate.Valid:
					t.Errorf("%s: %s due_date = %s, want none", step, how, task.DueDate.Date)
				case want != "" && (!task.DueDate.Valid || task.DueDate.Date.String() != want):
					t.Errorf("%s: %s due_date = %+v, want %s", step, how, task.DueDate, want)
				}
			}
		}

		task := newTask(t, repo, p.ID, models.TaskInput{Title: "t", DueDate: mustDate(t, "2026-02-28")})
		if !task.DueDate.Valid || task.DueDate.Date.String() != "2026-02-28" {
			t.Fatalf("Create returned due_date %+v", task.DueDate)
		}
		check(t, "created", "2026-02-28")

		// A patch that does not set the due date keeps it.
		if _, err := repo.Update(ctx, p.ID, task.ID, models.TaskPatch{Title: ptr("renamed")}); err != nil {
			t.Fatal(err)
		}
		check(t, "renamed", "2026-02-28")

		// Changed to a leap day, then cleared with SetDueDate and no date.
		up, err := repo.Update(ctx, p.ID, task.ID, models.TaskPatch{SetDueDate: true, DueDate: mustDate(t, "2028-02-29")})
		if err != nil || up.DueDate.Date.String() != "2028-02-29" {
			t.Fatalf("set: %+v, %v", up.DueDate, err)
		}
		check(t, "set", "2028-02-29")
		up, err = repo.Update(ctx, p.ID, task.ID, models.TaskPatch{SetDueDate: true})
		if err != nil || up.DueDate.Valid {
			t.Fatalf("clear: %+v, %v", up.DueDate, err)
		}
		check(t, "cleared", "")

		// And set again from nothing, at the ends of the calendar.
		for _, d := range []string{"0001-01-01", "9999-12-31", "2026-12-31"} {
			if _, err := repo.Update(ctx, p.ID, task.ID, models.TaskPatch{SetDueDate: true, DueDate: mustDate(t, d)}); err != nil {
				t.Fatalf("set %s: %v", d, err)
			}
			check(t, "set "+d, d)
		}
	})
}

func TestDeletingAProjectDeletesItsTasks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "cascade@example.com")
		tasks := models.NewTaskRepo(db, owner)
		doomed := newProject(t, db, owner, "doomed")
		kept := newProject(t, db, owner, "kept")
		for range 3 {
			newTask(t, tasks, doomed.ID, models.TaskInput{Title: "goes"})
		}
		keptTask := newTask(t, tasks, kept.ID, models.TaskInput{Title: "stays"})

		if err := models.NewProjectRepo(db, owner).Delete(ctx, doomed.ID); err != nil {
			t.Fatal(err)
		}
		// Counted in the table itself: the rows are gone, not just hidden.
		if n := countTasks(t, db, doomed.ID); n != 0 {
			t.Errorf("%d tasks of the deleted project are left", n)
		}
		if n := countTasks(t, db, kept.ID); n != 1 {
			t.Errorf("the other project has %d tasks, want 1", n)
		}
		if _, err := tasks.Get(ctx, kept.ID, keptTask.ID); err != nil {
			t.Errorf("task of the other project: %v", err)
		}
	})
}

func TestTaskTextIsStoredVerbatim(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *models.DB) {
		ctx := context.Background()
		owner := newUser(t, db, "verbatim@example.com")
		repo := models.NewTaskRepo(db, owner)
		p := newProject(t, db, owner, "'); DROP TABLE projects;--")
		if got, err := models.NewProjectRepo(db, owner).Get(ctx, p.ID); err != nil || got.Name != "'); DROP TABLE projects;--" {
			t.Fatalf("project name round trip: %q, %v", got.Name, err)
		}

		titles := []string{
			"'); DROP TABLE tasks;--",
			"' OR '1'='1",
			`" OR ""="`,
			"1; DELETE FROM users WHERE '1'='1",
			`\'; SELECT pg_sleep(0); --`,
			"? and $1 and :name and @p1",
			"100% _match_ %",
			"Ünïcödé ✓ 日本語 🎉",
			"<script>alert(1)</script>",
		}
		created := make(map[string]string) // id -> title
		for _, title := range titles {
			task := newTask(t, repo, p.ID, models.TaskInput{Title: title})
			if task.Title != title {
				t.Errorf("Create returned %q, want %q", task.Title, title)
			}
			created[task.ID] = title
			got, err := repo.Get(ctx, p.ID, task.ID)
			if err != nil || got.Title != title {
				t.Errorf("Get returned %q, %v; want %q", got.Title, err, title)
			}
		}
		page, err := repo.List(ctx, p.ID, models.PageRequest{Limit: 100})
		if err != nil || len(page.Items) != len(titles) {
			t.Fatalf("List: %d items, %v; want %d", len(page.Items), err, len(titles))
		}
		for i, task := range page.Items {
			if task.Title != titles[i] || created[task.ID] != titles[i] {
				t.Errorf("List item %d: %q, want %q", i, task.Title, titles[i])
			}
		}
		// Updating with them is verbatim too.
		first := page.Items[0]
		for _, title := range titles {
			up, err := repo.Update(ctx, p.ID, first.ID, models.TaskPatch{Title: ptr(title)})
			if err != nil || up.Title != title {
				t.Errorf("Update returned %q, %v; want %q", up.Title, err, title)
			}
		}
		// The tables are all still there, with every row.
		for _, q := range []string{`SELECT COUNT(*) FROM tasks`, `SELECT COUNT(*) FROM projects`, `SELECT COUNT(*) FROM users`} {
			if n, err := db.QueryIntForTest(ctx, q); err != nil || n == 0 {
				t.Errorf("%s: %d, %v", q, n, err)
			}
		}
	})
}

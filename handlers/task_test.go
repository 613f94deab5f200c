package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestTaskCRUD(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "House")
		base := "/v1/projects/" + p.ID + "/tasks"

		// Create with every field.
		rec := api.call(t, http.MethodPost, base, u.Token, `{"title":"Paint the door","done":true,"due_date":"2030-04-30"}`)
		expectStatus(t, rec, http.StatusCreated, "create")
		var task taskJSON
		decodeExact(t, rec, &task, taskMembers...)
		checkID(t, task.ID)
		checkTimestamp(t, task.CreatedAt)
		checkTimestamp(t, task.UpdatedAt)
		if task.ProjectID != p.ID || task.Title != "Paint the door" || !task.Done || task.DueDate == nil || *task.DueDate != "2030-04-30" {
			t.Errorf("task = %+v", task)
		}
		if loc := rec.Header().Get(echo.HeaderLocation); loc != base+"/"+task.ID {
			t.Errorf("Location %q, want %s/%s", loc, base, task.ID)
		}

		// Defaults: done false, no due date (absent or null).
		for _, body := range []string{`{"title":"Fix the tap"}`, `{"title":"Fix the tap","due_date":null}`} {
			rec = api.call(t, http.MethodPost, base, u.Token, body)
			expectStatus(t, rec, http.StatusCreated, "create "+body)
			var d taskJSON
			decodeExact(t, rec, &d, taskMembers...)
			if d.Done || d.DueDate != nil {
				t.Errorf("%s: task = %+v, want not done and no due date", body, d)
			}
			if !strings.Contains(rec.Body.String(), `"due_date":null`) {
				t.Errorf("due_date is not null in %s", rec.Body.String())
			}
		}

		// Read.
		rec = api.call(t, http.MethodGet, base+"/"+task.ID, u.Token, "")
		expectStatus(t, rec, http.StatusOK, "get")
		var got taskJSON
		decodeExact(t, rec, &got, taskMembers...)
		if !sameTask(got, task) {
			t.Errorf("get = %+v, want %+v", got, task)
		}

		// PATCH: only what is sent; due_date null clears it.
		rec = api.call(t, http.MethodPatch, base+"/"+task.ID, u.Token, `{"done":false}`)
		expectStatus(t, rec, http.StatusOK, "patch done")
		decodeExact(t, rec, &got, taskMembers...)
		if got.Done || got.Title != task.Title || got.DueDate == nil || *got.DueDate != "2030-04-30" {
			t.Errorf("after done=false: %+v", got)
		}
		rec = api.call(t, http.MethodPatch, base+"/"+task.ID, u.Token, `{"due_date":null}`)
		expectStatus(t, rec, http.StatusOK, "clear due date")
		got = taskJSON{}
		decodeExact(t, rec, &got, taskMembers...)
		if got.DueDate != nil || got.Title != task.Title {
			t.Errorf("after due_date=null: %+v", got)
		}
		rec = api.call(t, http.MethodGet, base+"/"+task.ID, u.Token, "")
		expectStatus(t, rec, http.StatusOK, "get after clearing")
		got = taskJSON{}
		decodeExact(t, rec, &got, taskMembers...)
		if got.DueDate != nil {
			t.Errorf("due date still %q after clearing", *got.DueDate)
		}
		rec = api.call(t, http.MethodPatch, base+"/"+task.ID, u.Token, `{"title":"Paint the gate","due_date":"2031-01-01"}`)
		expectStatus(t, rec, http.StatusOK, "set title and due date")
		decodeExact(t, rec, &got, taskMembers...)
		if got.Title != "Paint the gate" || got.DueDate == nil || *got.DueDate != "2031-01-01" || got.ProjectID != p.ID {
			t.Errorf("after title and due date: %+v", got)
		}

		// Delete.
		rec = api.call(t, http.MethodDelete, base+"/"+task.ID, u.Token, "")
		expectStatus(t, rec, http.StatusNoContent, "delete")
		checkStatus(t, api.call(t, http.MethodGet, base+"/"+task.ID, u.Token, ""), http.StatusNotFound, "get after delete")
		checkStatus(t, api.call(t, http.MethodDelete, base+"/"+task.ID, u.Token, ""), http.StatusNotFound, "delete again")
		if n := len(walk[taskJSON](t, api, u.Token, base, 100)); n != 2 {
			t.Errorf("%d tasks left, want 2", n)
		}
	})
}

func TestTaskRules(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "Rules")
		task := api.createTask(t, u.Token, p.ID, "Unchanged")
		base := "/v1/projects/" + p.ID + "/tasks"
		cases := []struct {
			name, method, path, body string
			status                   int
			field                    string
		}{
			{"create without title", http.MethodPost, base, `{"done":true}`, http.StatusUnprocessableEntity, "title"},
			{"create with title too long", http.MethodPost, base, `{"title":"` + strings.Repeat("t", 201) + `"}`, http.StatusUnprocessableEntity, "title"},
			{"create with impossible date", http.MethodPost, base, `{"title":"x","due_date":"2030-02-30"}`, http.StatusUnprocessableEntity, "due_date"},
			{"create with other date form", http.MethodPost, base, `{"title":"x","due_date":"30/01/2030"}`, http.StatusUnprocessableEntity, "due_date"},
			{"create with a timestamp", http.MethodPost, base, `{"title":"x","due_date":"2030-01-30T00:00:00Z"}`, http.StatusUnprocessableEntity, "due_date"},
			{"create with done a string", http.MethodPost, base, `{"title":"x","done":"true"}`, http.StatusBadRequest, "done"},
			{"create with project_id", http.MethodPost, base, `{"title":"x","project_id":"` + p.ID + `"}`, http.StatusBadRequest, "project_id"},
			{"patch with nothing", http.MethodPatch, base + "/" + task.ID, `{}`, http.StatusUnprocessableEntity, ""},
			{"patch title null", http.MethodPatch, base + "/" + task.ID, `{"title":null}`, http.StatusBadRequest, "title"},
			{"patch done null", http.MethodPatch, base + "/" + task.ID, `{"done":null}`, http.StatusBadRequest, "done"},
			{"patch empty title", http.MethodPatch, base + "/" + task.ID, `{"title":""}`, http.StatusUnprocessableEntity, "title"},
			{"patch bad date", http.MethodPatch, base + "/" + task.ID, `{"due_date":"tomorrow"}`, http.StatusUnprocessableEntity, "due_date"},
			{"patch date a number", http.MethodPatch, base + "/" + task.ID, `{"due_date":20300101}`, http.StatusBadRequest, "due_date"},
			{"patch moves the task", http.MethodPatch, base + "/" + task.ID, `{"project_id":"` + p.ID + `"}`, http.StatusBadRequest, "project_id"},
		}
		for _, c := range cases {
			rec := api.call(t, c.method, c.path, u.Token, c.body)
			if checkStatus(t, rec, c.status, c.name) && c.field != "" && !problemOf(t, rec).hasField(c.field) {
				t.Errorf("%s: the problem does not name %s: %s", c.name, c.field, rec.Body.String())
			}
		}
		tasks := walk[taskJSON](t, api, u.Token, base, 100)
		if len(tasks) != 1 || !sameTask(tasks[0], task) {
			t.Errorf("refused requests changed the tasks: %+v", tasks)
		}
	})
}

func TestTaskThroughAnotherProject(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		home := api.createProject(t, u.Token, "Home")
		work := api.createProject(t, u.Token, "Work")
		task := api.createTask(t, u.Token, home.ID, "Water the plants")
		wrong := "/v1/projects/" + work.ID + "/tasks/" + task.ID

		for _, c := range []struct{ method, body string }{
			{http.MethodGet, ""},
			{http.MethodPatch, `{"title":"Moved?","done":true}`},
			{http.MethodDelete, ""},
		} {
			checkStatus(t, api.call(t, c.method, wrong, u.Token, c.body), http.StatusNotFound, c.method+" through the other project")
		}
		rec := api.call(t, http.MethodGet, "/v1/projects/"+home.ID+"/tasks/"+task.ID, u.Token, "")
		expectStatus(t, rec, http.StatusOK, "through its own project")
		var got taskJSON
		decodeExact(t, rec, &got, taskMembers...)
		if !sameTask(got, task) {
			t.Errorf("task changed through another project: %+v, want %+v", got, task)
		}
		if n := len(walk[taskJSON](t, api, u.Token, "/v1/projects/"+work.ID+"/tasks", 100)); n != 0 {
			t.Errorf("the other project lists %d tasks", n)
		}
	})
}

func TestTaskPagination(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		alice, bob := api.signUp(t), api.signUp(t)
		p := api.createProject(t, alice.Token, "Many tasks")
		q := api.createProject(t, alice.Token, "Few tasks")
		api.createTask(t, alice.Token, q.ID, "Lonely")
		bobs := api.createProject(t, bob.Token, "Bob's")
		var want []string
		for i := range 12 {
			want = append(want, api.createTask(t, alice.Token, p.ID, fmt.Sprintf("Task %02d", i)).ID)
		}
		base := "/v1/projects/" + p.ID + "/tasks"

		for _, limit := range []int{1, 5, 12, 100} {
			var ids []string
			for _, task := range walk[taskJSON](t, api, alice.Token, base, limit) {
				ids = append(ids, task.ID)
			}
			if strings.Join(ids, ",") != strings.Join(want, ",") {
				t.Errorf("limit %d: walked %v, want %v", limit, ids, want)
			}
		}
		checkStatus(t, api.call(t, http.MethodGet, "/v1/projects/"+bobs.ID+"/tasks", alice.Token, ""), http.StatusNotFound, "alice lists bob's tasks")

		rec := api.call(t, http.MethodGet, base+"?limit=3", alice.Token, "")
		expectStatus(t, rec, http.StatusOK, "first page")
		var page pageJSON[taskJSON]
		decodeExact(t, rec, &page, pageMembers...)
		taskCursor := *page.NextCursor
		api.createProject(t, alice.Token, "Third")
		rec = api.call(t, http.MethodGet, "/v1/projects?limit=1", alice.Token, "")
		expectStatus(t, rec, http.StatusOK, "project page")
		var projects pageJSON[projectJSON]
		decodeExact(t, rec, &projects, pageMembers...)
		projectCursor := *projects.NextCursor

		for _, c := range []struct{ name, token, target string }{
			{"project cursor on a task list", alice.Token, base + "?cursor=" + projectCursor},
			{"task cursor on the project list", alice.Token, "/v1/projects?cursor=" + taskCursor},
			{"task cursor on another project's tasks", alice.Token, "/v1/projects/" + q.ID + "/tasks?cursor=" + taskCursor},
			{"task cursor used by another user", bob.Token, "/v1/projects/" + bobs.ID + "/tasks?cursor=" + taskCursor},
			{"edited task cursor", alice.Token, base + "?cursor=" + editCursor(taskCursor)},
		} {
			rec := api.call(t, http.MethodGet, c.target, c.token, "")
			if checkStatus(t, rec, http.StatusBadRequest, c.name) && !problemOf(t, rec).hasField("cursor") {
				t.Errorf("%s: the problem does not name cursor: %s", c.name, rec.Body.String())
			}
		}
		for _, limit := range []string{"0", "101"} {
			checkStatus(t, api.call(t, http.MethodGet, base+"?limit="+limit, alice.Token, ""), http.StatusUnprocessableEntity, "limit="+limit)
		}
		checkStatus(t, api.call(t, http.MethodGet, base+"?limit=abc", alice.Token, ""), http.StatusBadRequest, "limit=abc")
		checkStatus(t, api.call(t, http.MethodGet, base+"?limit=1&limit=2", alice.Token, ""), http.StatusBadRequest, "limit twice")
	})
}

// sameTask compares two tasks by value (due dates are pointers).
func sameTask(a, b taskJSON) bool {
	if (a.DueDate == nil) != (b.DueDate == nil) || a.DueDate != nil && *a.DueDate != *b.DueDate {
		return false
	}
	a.DueDate, b.DueDate = nil, nil
	return a == b
}

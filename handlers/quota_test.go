package handlers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/models"
)

// checkQuotaExceeded checks the answer to a create over a resource quota:
// 429 with the quota problem type, told apart from a rate limit by its
// type, and without Retry-After or violated-policies: waiting does not
// free a slot, deleting does.
func checkQuotaExceeded(tb testing.TB, rec *httptest.ResponseRecorder) {
	tb.Helper()
	expectStatus(tb, rec, http.StatusTooManyRequests, "over the quota")
	p := problemOf(tb, rec)
	if p.Type != ProblemTypeQuota || p.Type == problemTypeRateLimited {
		tb.Errorf("problem type %q, want %q", p.Type, ProblemTypeQuota)
	}
	if len(p.ViolatedPolicies) != 0 {
		tb.Errorf("a quota refusal names rate-limit policies %v", p.ViolatedPolicies)
	}
	if ra := rec.Header().Values(echo.HeaderRetryAfter); len(ra) != 0 {
		tb.Errorf("a quota refusal has Retry-After %q", ra)
	}
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	small := models.Quotas{ProjectsPerUser: 3, TasksPerProject: 3}
	eachAPIWith(t, func(d *Deps) { d.DB.SetQuotas(small) }, func(t *testing.T, api *testAPI) {
		t.Run("projects per user", func(t *testing.T) {
			u, other := api.signUp(t), api.signUp(t)
			var ids []string
			for i := range small.ProjectsPerUser {
				ids = append(ids, api.createProject(t, u.Token, fmt.Sprintf("Project %d", i)).ID)
			}
			checkQuotaExceeded(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, `{"name":"One too many"}`))
			if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != small.ProjectsPerUser {
				t.Errorf("%d projects after the refusal, want %d", n, small.ProjectsPerUser)
			}
			// Per user: another user is not affected.
			api.createProject(t, other.Token, "Other's project")
			// Deleting one frees a slot, for one project.
			expectStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+ids[0], u.Token, ""), http.StatusNoContent, "delete")
			api.createProject(t, u.Token, "In the freed slot")
			checkQuotaExceeded(t, api.call(t, http.MethodPost, "/v1/projects", u.Token, `{"name":"One too many again"}`))
		})

		t.Run("tasks per project", func(t *testing.T) {
			u := api.signUp(t)
			p, q := api.createProject(t, u.Token, "Full"), api.createProject(t, u.Token, "Empty")
			var ids []string
			for i := range small.TasksPerProject {
				ids = append(ids, api.createTask(t, u.Token, p.ID, fmt.Sprintf("Task %d", i)).ID)
			}
			checkQuotaExceeded(t, api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/tasks", u.Token, `{"title":"One too many"}`))
			if n := len(walk[taskJSON](t, api, u.Token, "/v1/projects/"+p.ID+"/tasks", 100)); n != small.TasksPerProject {
				t.Errorf("%d tasks after the refusal, want %d", n, small.TasksPerProject)
			}
			// Per project: the user's other project is not affected.
			api.createTask(t, u.Token, q.ID, "In another project")
			expectStatus(t, api.call(t, http.MethodDelete, "/v1/projects/"+p.ID+"/tasks/"+ids[0], u.Token, ""), http.StatusNoContent, "delete")
			api.createTask(t, u.Token, p.ID, "In the freed slot")
			checkQuotaExceeded(t, api.call(t, http.MethodPost, "/v1/projects/"+p.ID+"/tasks", u.Token, `{"title":"One too many again"}`))
		})
	})
}

// raceCreates sends n identical POSTs at once and returns their statuses.
func raceCreates(t *testing.T, api *testAPI, n int, target, token, body string) map[int]int {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = withToken(newRequest(http.MethodPost, target, body), token)
	}
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			rec := api.serve(t, req)
			statuses[i] = rec.Code
			if rec.Code == http.StatusTooManyRequests && problemOf(t, rec).Type != ProblemTypeQuota {
				t.Errorf("parallel create: 429 of type %q", problemOf(t, rec).Type)
			}
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	return count
}

// TestQuotaRace: ten parallel creates when one slot is left end with
// exactly one created and the quota full, not over: the quota is enforced
// inside the inserting transaction, on both dialects.
func TestQuotaRace(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, api *testAPI) {
		quotas := api.db.Quotas()
		if quotas != models.DefaultQuotas {
			t.Fatalf("quotas %+v, want the defaults %+v", quotas, models.DefaultQuotas)
		}

		t.Run("projects at the default quota", func(t *testing.T) {
			u := api.signUp(t)
			for i := range quotas.ProjectsPerUser - 1 {
				api.createProject(t, u.Token, fmt.Sprintf("Project %d", i))
			}
			got := raceCreates(t, api, 10, "/v1/projects", u.Token, `{"name":"Raced"}`)
			if got[http.StatusCreated] != 1 || got[http.StatusTooManyRequests] != 9 {
				t.Errorf("statuses %v, want one 201 and nine 429", got)
			}
			if n := len(walk[projectJSON](t, api, u.Token, "/v1/projects", 100)); n != quotas.ProjectsPerUser {
				t.Errorf("%d projects, want exactly the quota %d", n, quotas.ProjectsPerUser)
			}
		})

	})
}

func TestQuotaRaceTasks(t *testing.T) {
	t.Parallel()
	const quota = 5
	eachAPIWith(t, func(d *Deps) { d.DB.SetQuotas(models.Quotas{TasksPerProject: quota}) }, func(t *testing.T, api *testAPI) {
		u := api.signUp(t)
		p := api.createProject(t, u.Token, "Busy")
		for i := range quota - 1 {
			api.createTask(t, u.Token, p.ID, fmt.Sprintf("Task %d", i))
		}
		got := raceCreates(t, api, 10, "/v1/projects/"+p.ID+"/tasks", u.Token, `{"title":"Raced"}`)
		if got[http.StatusCreated] != 1 || got[http.StatusTooManyRequests] != 9 {
			t.Errorf("statuses %v, want one 201 and nine 429", got)
		}
		if n := len(walk[taskJSON](t, api, u.Token, "/v1/projects/"+p.ID+"/tasks", 100)); n != quota {
			t.Errorf("%d tasks, want exactly the quota %d", n, quota)
		}
	})
}

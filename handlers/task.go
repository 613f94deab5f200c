package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// taskHandlers serve the tasks of the caller's projects. The repository
// reaches a task only through its project and the project's owner, in the
// same SQL statement: a task of another owner's project, or addressed
// through another project, is 404.
type taskHandlers struct {
	kit
	db *models.DB
}

func (h *taskHandlers) repo(c echo.Context) *models.TaskRepo {
	return models.NewTaskRepo(h.db, middleware.PrincipalOf(c).UserID)
}

// taskScope binds list cursors to one project's task list of the owner.
func taskScope(c echo.Context) string {
	return "tasks:" + middleware.PrincipalOf(c).UserID + ":" + c.Param("id")
}

type taskResponse struct {
	ID        string  `json:"id"`
	ProjectID string  `json:"project_id"`
	Title     string  `json:"title"`
	Done      bool    `json:"done"`
	DueDate   *string `json:"due_date"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
}

func taskFromModel(t models.Task) taskResponse {
	r := taskResponse{
		ID:        t.ID,
		ProjectID: t.ProjectID,
		Title:     t.Title,
		Done:      t.Done,
		CreatedAt: timestamp(t.CreatedAt),
		UpdatedAt: timestamp(t.UpdatedAt),
	}
	if t.DueDate.Valid {
		d := t.DueDate.Date.String()
		r.DueDate = &d
	}
	return r
}

// createTaskRequest lists the only fields a client may set.
type createTaskRequest struct {
	Title   string           `json:"title" validate:"required,min=1,max=200,nocontrol"`
	Done    bool             `json:"done"`
	DueDate nullable[string] `json:"due_date" validate:"date"`
}

func (r createTaskRequest) toModel() (models.TaskInput, error) {
	due, err := nullDate("due_date", r.DueDate)
	return models.TaskInput{Title: r.Title, Done: r.Done, DueDate: due}, err
}

// updateTaskRequest changes the fields that are present; due_date: null
// clears the due date.
type updateTaskRequest struct {
	Title   *string          `json:"title" validate:"omitnil,min=1,max=200,nocontrol"`
	Done    *bool            `json:"done"`
	DueDate nullable[string] `json:"due_date" validate:"date"`
}

func (r updateTaskRequest) toModel() (models.TaskPatch, error) {
	if r.Title == nil && r.Done == nil && !r.DueDate.Set {
		return models.TaskPatch{}, models.Invalid("The request changes nothing; send at least one field.")
	}
	due, err := nullDate("due_date", r.DueDate)
	return models.TaskPatch{Title: r.Title, Done: r.Done, SetDueDate: r.DueDate.Set, DueDate: due}, err
}

// fields lists the JSON names of the fields the request set.
func (r updateTaskRequest) fields() []string {
	var f []string
	if r.Title != nil {
		f = append(f, "title")
	}
	if r.Done != nil {
		f = append(f, "done")
	}
	if r.DueDate.Set {
		f = append(f, "due_date")
	}
	return f
}

// nullDate converts a date field: absent or null is no date.
func nullDate(field string, n nullable[string]) (models.NullDate, error) {
	if !n.Set || n.Null {
		return models.NullDate{}, nil
	}
	d, err := models.ParseDate(n.V)
	if err != nil {
		return models.NullDate{}, models.Invalid("The request has invalid fields.",
			models.FieldError{Field: field, Message: "must be a date in the form YYYY-MM-DD"})
	}
	return models.NullDate{Date: d, Valid: true}, nil
}

func (h *taskHandlers) create(c echo.Context) error {
	var req createTaskRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	in, err := req.toModel()
	if err != nil {
		return err
	}
	t, err := h.repo(c).Create(c.Request().Context(), c.Param("id"), in)
	if err != nil {
		return err
	}
	resp := taskFromModel(t)
	h.changed(c, models.Change{Resource: "task", Action: models.ChangeCreated,
		OwnerID: middleware.PrincipalOf(c).UserID, ParentID: t.ProjectID, ID: t.ID, Object: resp})
	c.Response().Header().Set(echo.HeaderLocation, "/v1/projects/"+t.ProjectID+"/tasks/"+t.ID)
	return c.JSON(http.StatusCreated, resp)
}

func (h *taskHandlers) createDoc() routeDoc {
	return routeDoc{id: "createTask", summary: "Add a task to a project", tag: "tasks",
		request: createTaskRequest{}, response: taskResponse{}, status: http.StatusCreated}
}

func (h *taskHandlers) list(c echo.Context) error {
	scope := taskScope(c)
	page, err := h.pageRequest(c, scope)
	if err != nil {
		return err
	}
	tasks, err := h.repo(c).List(c.Request().Context(), c.Param("id"), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, scope, tasks, taskFromModel))
}

func (h *taskHandlers) listDoc() routeDoc {
	return routeDoc{id: "listTasks", summary: "List a project's tasks", tag: "tasks",
		response: pageResponse[taskResponse]{}, status: http.StatusOK}
}

func (h *taskHandlers) get(c echo.Context) error {
	t, err := h.repo(c).Get(c.Request().Context(), c.Param("id"), c.Param("task_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, taskFromModel(t))
}

func (h *taskHandlers) getDoc() routeDoc {
	return routeDoc{id: "getTask", summary: "Get a task", tag: "tasks", response: taskResponse{}, status: http.StatusOK}
}

func (h *taskHandlers) update(c echo.Context) error {
	var req updateTaskRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	patch, err := req.toModel()
	if err != nil {
		return err
	}
	t, err := h.repo(c).Update(c.Request().Context(), c.Param("id"), c.Param("task_id"), patch)
	if err != nil {
		return err
	}
	resp := taskFromModel(t)
	h.changed(c, models.Change{Resource: "task", Action: models.ChangeUpdated,
		OwnerID: middleware.PrincipalOf(c).UserID, ParentID: t.ProjectID, ID: t.ID, Fields: req.fields(), Object: resp})
	return c.JSON(http.StatusOK, resp)
}

func (h *taskHandlers) updateDoc() routeDoc {
	return routeDoc{id: "updateTask", summary: "Change a task", tag: "tasks",
		request: updateTaskRequest{}, response: taskResponse{}, status: http.StatusOK}
}

func (h *taskHandlers) delete(c echo.Context) error {
	if err := h.repo(c).Delete(c.Request().Context(), c.Param("id"), c.Param("task_id")); err != nil {
		return err
	}
	h.changed(c, models.Change{Resource: "task", Action: models.ChangeDeleted,
		OwnerID: middleware.PrincipalOf(c).UserID, ParentID: c.Param("id"), ID: c.Param("task_id")})
	return c.NoContent(http.StatusNoContent)
}

func (h *taskHandlers) deleteDoc() routeDoc {
	return routeDoc{id: "deleteTask", summary: "Delete a task", tag: "tasks", status: http.StatusNoContent}
}

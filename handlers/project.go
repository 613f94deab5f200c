package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// projectHandlers serve the caller's projects. Each request builds a
// repository bound to the authenticated owner; another owner's project is
// 404 (existence stays private), never 403.
type projectHandlers struct {
	kit
	db *models.DB
}

func (h *projectHandlers) repo(c echo.Context) *models.ProjectRepo {
	return models.NewProjectRepo(h.db, middleware.PrincipalOf(c).UserID)
}

// projectScope binds list cursors to the owner's project list.
func projectScope(c echo.Context) string { return "projects:" + middleware.PrincipalOf(c).UserID }

type projectResponse struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
}

func projectFromModel(p models.Project) projectResponse {
	return projectResponse{
		ID:          p.ID,
		Name:        p.Name,
		Description: p.Description,
		CreatedAt:   timestamp(p.CreatedAt),
		UpdatedAt:   timestamp(p.UpdatedAt),
	}
}

// createProjectRequest lists the only fields a client may set; id, owner_id
// and timestamps are unknown fields and refused.
type createProjectRequest struct {
	Name        string `json:"name" validate:"required,min=1,max=100,nocontrol"`
	Description string `json:"description" validate:"max=2000,nocontrolml"`
}

func (r createProjectRequest) toModel() (models.ProjectInput, error) {
	return models.ProjectInput{Name: r.Name, Description: r.Description}, nil
}

// updateProjectRequest changes the fields that are present.
type updateProjectRequest struct {
	Name        *string `json:"name" validate:"omitnil,min=1,max=100,nocontrol"`
	Description *string `json:"description" validate:"omitnil,max=2000,nocontrolml"`
}

func (r updateProjectRequest) toModel() (models.ProjectPatch, error) {
	if r.Name == nil && r.Description == nil {
		return models.ProjectPatch{}, models.Invalid("The request changes nothing; send at least one field.")
	}
	return models.ProjectPatch{Name: r.Name, Description: r.Description}, nil
}

func (h *projectHandlers) create(c echo.Context) error {
	var req createProjectRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	in, err := req.toModel()
	if err != nil {
		return err
	}
	p, err := h.repo(c).Create(c.Request().Context(), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/projects/"+p.ID)
	return c.JSON(http.StatusCreated, projectFromModel(p))
}

func (h *projectHandlers) createDoc() routeDoc {
	return routeDoc{id: "createProject", summary: "Create a project", tag: "projects",
		request: createProjectRequest{}, response: projectResponse{}, status: http.StatusCreated}
}

func (h *projectHandlers) list(c echo.Context) error {
	scope := projectScope(c)
	page, err := h.pageRequest(c, scope)
	if err != nil {
		return err
	}
	projects, err := h.repo(c).List(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pageOf(h.kit, scope, projects, projectFromModel))
}

func (h *projectHandlers) listDoc() routeDoc {
	return routeDoc{id: "listProjects", summary: "List the caller's projects", tag: "projects",
		response: pageResponse[projectResponse]{}, status: http.StatusOK}
}

func (h *projectHandlers) get(c echo.Context) error {
	p, err := h.repo(c).Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, projectFromModel(p))
}

func (h *projectHandlers) getDoc() routeDoc {
	return routeDoc{id: "getProject", summary: "Get a project", tag: "projects", response: projectResponse{}, status: http.StatusOK}
}

func (h *projectHandlers) update(c echo.Context) error {
	var req updateProjectRequest
	if err := h.readBody(c, &req); err != nil {
		return err
	}
	patch, err := req.toModel()
	if err != nil {
		return err
	}
	p, err := h.repo(c).Update(c.Request().Context(), c.Param("id"), patch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, projectFromModel(p))
}

func (h *projectHandlers) updateDoc() routeDoc {
	return routeDoc{id: "updateProject", summary: "Change a project", tag: "projects",
		request: updateProjectRequest{}, response: projectResponse{}, status: http.StatusOK}
}

func (h *projectHandlers) delete(c echo.Context) error {
	if err := h.repo(c).Delete(c.Request().Context(), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *projectHandlers) deleteDoc() routeDoc {
	return routeDoc{id: "deleteProject", summary: "Delete a project and its tasks", tag: "projects", status: http.StatusNoContent}
}

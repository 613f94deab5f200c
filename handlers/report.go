package handlers

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/templates"
)

const mimeHTML = "text/html; charset=utf-8"

// reportMaxTasks bounds the tasks one report page renders.
const reportMaxTasks = 1000

// reportHandlers render a project and its tasks as an HTML page. This is
// hand-written behaviour beside the generated CRUD files.
type reportHandlers struct {
	db   *models.DB
	page *template.Template
}

func newReportHandlers(db *models.DB) (*reportHandlers, error) {
	// html/template encodes every value for where it appears (text,
	// attribute, URL, CSS), so user-supplied strings cannot become markup.
	t, err := template.ParseFS(templates.FS, "report.html")
	if err != nil {
		return nil, err
	}
	return &reportHandlers{db: db, page: t}, nil
}

type reportView struct {
	Nonce     string
	Project   projectResponse
	Tasks     []reportTask
	Truncated bool
}

type reportTask struct {
	Title   string
	Done    bool
	DueDate string
}

// reportCSP is the report's own policy: nothing loads but the page's one
// style block, which must carry this response's nonce. No script runs at
// all, inline or otherwise, and there is no 'unsafe-*' anywhere.
func reportCSP(nonce string) string {
	return "default-src 'none'; style-src 'nonce-" + nonce + "'; base-uri 'none'; form-action 'none'; " +
		"frame-ancestors 'none'; require-trusted-types-for 'script'"
}

func (h *reportHandlers) report(c echo.Context) error {
	ctx := c.Request().Context()
	owner := middleware.PrincipalOf(c).UserID
	p, err := models.NewProjectRepo(h.db, owner).Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	tasks, err := models.NewTaskRepo(h.db, owner).List(ctx, p.ID, models.PageRequest{Limit: reportMaxTasks})
	if err != nil {
		return err
	}
	nonce, err := newNonce()
	if err != nil {
		return err
	}
	view := reportView{Nonce: nonce, Project: projectFromModel(p), Truncated: tasks.Next != 0}
	for _, t := range tasks.Items {
		rt := reportTask{Title: t.Title, Done: t.Done}
		if t.DueDate.Valid {
			rt.DueDate = t.DueDate.Date.String()
		}
		view.Tasks = append(view.Tasks, rt)
	}
	// Render fully before sending, so a template error is a clean 500.
	var buf bytes.Buffer
	if err := h.page.Execute(&buf, view); err != nil {
		return models.Internal(err)
	}
	c.Response().Header().Set("Content-Security-Policy", reportCSP(nonce))
	// c.HTMLBlob would send "charset=UTF-8"; the route declares mimeHTML.
	return c.Blob(http.StatusOK, mimeHTML, buf.Bytes())
}

func (h *reportHandlers) reportDoc() routeDoc {
	return routeDoc{id: "projectReport", summary: "The project and its tasks as an HTML page (strict CSP)", tag: "projects", status: http.StatusOK}
}

func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", models.Internal(err)
	}
	// base64url: no '+' or '/' for html/template to entity-encode in the
	// attribute, and valid in CSP's nonce grammar.
	return base64.RawURLEncoding.EncodeToString(b), nil
}

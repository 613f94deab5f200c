package models

import (
	"context"
	"time"
)

// Task is an item of a project.
type Task struct {
	Seq       int64     `db:"seq"` // internal ordering key; never exposed
	ID        string    `db:"id"`
	ProjectID string    `db:"project_id"`
	Title     string    `db:"title"`
	Done      bool      `db:"done"`
	DueDate   NullDate  `db:"due_date"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// TaskInput is what a task is created from.
type TaskInput struct {
	Title   string
	Done    bool
	DueDate NullDate
}

// TaskPatch changes the fields that are set. DueDate is applied when
// SetDueDate is true, so that a patch can clear it (DueDate.Valid false).
type TaskPatch struct {
	Title      *string
	Done       *bool
	SetDueDate bool
	DueDate    NullDate
}

// TaskRepo reads and writes tasks of the projects of one owner. Every
// statement reaches tasks through their project and the project's owner in
// the same SQL statement, so a task is only visible through a project the
// owner holds, and only through its own project.
type TaskRepo struct {
	db    *DB
	owner string
}

// NewTaskRepo returns the tasks of owner's projects.
func NewTaskRepo(db *DB, owner string) *TaskRepo {
	return &TaskRepo{db: db, owner: owner}
}

// Create adds a task to a project of the owner, within the project's task
// quota. The project row is locked under the owner condition first (no row:
// KindNotFound), then the tasks are counted, and the INSERT selects the
// project row under the owner condition again. Errors: KindNotFound,
// KindQuotaExceeded.
func (r *TaskRepo) Create(ctx context.Context, projectID string, in TaskInput) (Task, error) {
	if !ValidID(projectID) {
		return Task{}, ErrNotFound
	}
	id, err := NewID()
	if err != nil {
		return Task{}, err
	}
	t := now()
	var task Task
	err = r.db.tx(ctx, func(q q) error {
		if err := q.execOne(ctx, `UPDATE projects SET updated_at = updated_at WHERE id = ? AND owner_id = ?`, projectID, r.owner); err != nil {
			return err
		}
		limit := r.db.quotas.TasksPerProject
		if err := checkQuota(ctx, q, `SELECT COUNT(*) FROM tasks WHERE project_id = ?`, projectID, limit, "tasks in this project"); err != nil {
			return err
		}
		return q.get(ctx, &task, `
			INSERT INTO tasks (id, project_id, title, done, due_date, created_at, updated_at)
			SELECT ?, p.id, ?, ?, ?, ?, ? FROM projects p WHERE p.id = ? AND p.owner_id = ?
			RETURNING seq, id, project_id, title, done, due_date, created_at, updated_at`,
			id, in.Title, in.Done, in.DueDate, t, t, projectID, r.owner)
	})
	return task, err
}

// Get returns one task of one of the owner's projects. A task addressed
// through another project, even one the owner also holds, is KindNotFound.
func (r *TaskRepo) Get(ctx context.Context, projectID, taskID string) (Task, error) {
	if !ValidID(projectID) || !ValidID(taskID) {
		return Task{}, ErrNotFound
	}
	var task Task
	err := r.db.q().get(ctx, &task, `
		SELECT t.seq, t.id, t.project_id, t.title, t.done, t.due_date, t.created_at, t.updated_at
		FROM tasks t JOIN projects p ON p.id = t.project_id AND p.owner_id = ?
		WHERE t.project_id = ? AND t.id = ?`, r.owner, projectID, taskID)
	return task, err
}

// taskRow is a task read through a LEFT JOIN from its project: all task
// columns are NULL when the project exists but has no (further) tasks.
type taskRow struct {
	Seq       *int64     `db:"seq"`
	ID        *string    `db:"id"`
	ProjectID string     `db:"project_id"`
	Title     *string    `db:"title"`
	Done      *bool      `db:"done"`
	DueDate   NullDate   `db:"due_date"`
	CreatedAt *time.Time `db:"created_at"`
	UpdatedAt *time.Time `db:"updated_at"`
}

// List returns one page of a project's tasks, oldest first. It reads from
// the project (owner-scoped) with the tasks LEFT JOINed in one statement:
// no row at all means the project is not the owner's (KindNotFound), while
// a project without tasks yields an empty page.
func (r *TaskRepo) List(ctx context.Context, projectID string, page PageRequest) (Page[Task], error) {
	if !ValidID(projectID) {
		return Page[Task]{}, ErrNotFound
	}
	var rows []taskRow
	err := r.db.q().sel(ctx, &rows, `
		SELECT t.seq, t.id, p.id AS project_id, t.title, t.done, t.due_date, t.created_at, t.updated_at
		FROM projects p LEFT JOIN tasks t ON t.project_id = p.id AND t.seq > ?
		WHERE p.id = ? AND p.owner_id = ?
		ORDER BY t.seq LIMIT ?`, page.After, projectID, r.owner, page.Limit+1)
	if err != nil {
		return Page[Task]{}, err
	}
	if len(rows) == 0 {
		return Page[Task]{}, ErrNotFound
	}
	tasks := make([]Task, 0, len(rows))
	for _, row := range rows {
		if row.ID == nil {
			continue // the project has no tasks after page.After
		}
		tasks = append(tasks, Task{Seq: *row.Seq, ID: *row.ID, ProjectID: row.ProjectID, Title: *row.Title,
			Done: *row.Done, DueDate: row.DueDate, CreatedAt: *row.CreatedAt, UpdatedAt: *row.UpdatedAt})
	}
	return pageOf(tasks, page.Limit, func(t Task) int64 { return t.Seq }), nil
}

// Update changes the set fields of a task and returns it. Scoped through the
// project and its owner in the same statement: KindNotFound otherwise.
func (r *TaskRepo) Update(ctx context.Context, projectID, taskID string, patch TaskPatch) (Task, error) {
	if !ValidID(projectID) || !ValidID(taskID) {
		return Task{}, ErrNotFound
	}
	var task Task
	err := r.db.q().get(ctx, &task, `
		UPDATE tasks
		SET title = COALESCE(?, title),
		    done = COALESCE(?, done),
		    due_date = CASE WHEN ? THEN ? ELSE due_date END,
		    updated_at = ?
		WHERE id = ? AND project_id = ?
		  AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id AND p.owner_id = ?)
		RETURNING seq, id, project_id, title, done, due_date, created_at, updated_at`,
		patch.Title, patch.Done, patch.SetDueDate, patch.DueDate, now(), taskID, projectID, r.owner)
	return task, err
}

// Delete removes a task. Scoped like Update: KindNotFound otherwise.
func (r *TaskRepo) Delete(ctx context.Context, projectID, taskID string) error {
	if !ValidID(projectID) || !ValidID(taskID) {
		return ErrNotFound
	}
	return r.db.q().execOne(ctx, `
		DELETE FROM tasks
		WHERE id = ? AND project_id = ?
		  AND EXISTS (SELECT 1 FROM projects p WHERE p.id = tasks.project_id AND p.owner_id = ?)`,
		taskID, projectID, r.owner)
}

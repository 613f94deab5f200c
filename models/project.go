package models

import (
	"context"
	"time"
)

// Project is a user's project.
type Project struct {
	Seq         int64     `db:"seq"` // internal ordering key; never exposed
	ID          string    `db:"id"`
	Name        string    `db:"name"`
	Description string    `db:"description"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
}

// ProjectInput is what a project is created from.
type ProjectInput struct {
	Name        string
	Description string
}

// ProjectPatch changes the fields that are not nil.
type ProjectPatch struct {
	Name        *string
	Description *string
}

// ProjectRepo reads and writes the projects of one owner. The owner is fixed
// at construction and bound into every statement; there is no way to reach
// another owner's project through it.
type ProjectRepo struct {
	db    *DB
	owner string
}

// NewProjectRepo returns the projects of owner (a user ID taken from the
// authenticated principal, never from input).
func NewProjectRepo(db *DB, owner string) *ProjectRepo {
	return &ProjectRepo{db: db, owner: owner}
}

// Create adds a project owned by the repository's owner, within the
// owner's project quota. Owner-scoped. Errors: KindQuotaExceeded.
func (r *ProjectRepo) Create(ctx context.Context, in ProjectInput) (Project, error) {
	id, err := NewID()
	if err != nil {
		return Project{}, err
	}
	t := now()
	var p Project
	err = r.db.tx(ctx, func(q q) error {
		// Lock the owner's row: concurrent creates for one owner queue
		// here, so the count below cannot go stale before the insert.
		if err := q.execOne(ctx, `UPDATE users SET updated_at = updated_at WHERE id = ?`, r.owner); err != nil {
			return err
		}
		limit := r.db.quotas.ProjectsPerUser
		if err := checkQuota(ctx, q, `SELECT COUNT(*) FROM projects WHERE owner_id = ?`, r.owner, limit, "projects"); err != nil {
			return err
		}
		return q.get(ctx, &p, `
			INSERT INTO projects (id, owner_id, name, description, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			RETURNING seq, id, name, description, created_at, updated_at`,
			id, r.owner, in.Name, in.Description, t, t)
	})
	return p, err
}

// Get returns one project. Owner-scoped: another owner's project, like a
// missing one, is KindNotFound.
func (r *ProjectRepo) Get(ctx context.Context, id string) (Project, error) {
	if !ValidID(id) {
		return Project{}, ErrNotFound
	}
	var p Project
	err := r.db.q().get(ctx, &p, `
		SELECT seq, id, name, description, created_at, updated_at
		FROM projects WHERE id = ? AND owner_id = ?`, id, r.owner)
	return p, err
}

// List returns one page of the owner's projects, oldest first. Owner-scoped.
func (r *ProjectRepo) List(ctx context.Context, page PageRequest) (Page[Project], error) {
	var rows []Project
	err := r.db.q().sel(ctx, &rows, `
		SELECT seq, id, name, description, created_at, updated_at
		FROM projects WHERE owner_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		r.owner, page.After, page.Limit+1)
	if err != nil {
		return Page[Project]{}, err
	}
	return pageOf(rows, page.Limit, func(p Project) int64 { return p.Seq }), nil
}

// Update changes the set fields of a project and returns it. Owner-scoped:
// KindNotFound for another owner's project.
func (r *ProjectRepo) Update(ctx context.Context, id string, patch ProjectPatch) (Project, error) {
	if !ValidID(id) {
		return Project{}, ErrNotFound
	}
	var p Project
	err := r.db.q().get(ctx, &p, `
		UPDATE projects
		SET name = COALESCE(?, name), description = COALESCE(?, description), updated_at = ?
		WHERE id = ? AND owner_id = ?
		RETURNING seq, id, name, description, created_at, updated_at`,
		patch.Name, patch.Description, now(), id, r.owner)
	return p, err
}

// Delete removes a project and, through the foreign key, its tasks.
// Owner-scoped: KindNotFound for another owner's project.
func (r *ProjectRepo) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	return r.db.q().execOne(ctx, `DELETE FROM projects WHERE id = ? AND owner_id = ?`, id, r.owner)
}

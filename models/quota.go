package models

import (
	"context"
	"fmt"
)

// Quotas bound how much one owner can create. They are enforced inside the
// transaction that inserts, after locking the parent row, so they hold
// under concurrent requests and across instances sharing the database.
type Quotas struct {
	ProjectsPerUser int
	TasksPerProject int
	APIKeysPerUser  int
}

// DefaultQuotas are the defaults of API.md ("Defaults that tests rely on"),
// plus 20 API keys per user.
var DefaultQuotas = Quotas{ProjectsPerUser: 100, TasksPerProject: 1000, APIKeysPerUser: 20}

// SetQuotas replaces the quotas; zero fields keep their defaults. Call it
// once at start-up, before serving.
func (db *DB) SetQuotas(q Quotas) {
	if q.ProjectsPerUser <= 0 {
		q.ProjectsPerUser = DefaultQuotas.ProjectsPerUser
	}
	if q.TasksPerProject <= 0 {
		q.TasksPerProject = DefaultQuotas.TasksPerProject
	}
	if q.APIKeysPerUser <= 0 {
		q.APIKeysPerUser = DefaultQuotas.APIKeysPerUser
	}
	db.quotas = q
}

// Quotas reports the quotas in force.
func (db *DB) Quotas() Quotas { return db.quotas }

// quotaError is the answer when a quota is full.
func quotaError(what string, limit int) error {
	return &Error{Kind: KindQuotaExceeded, Detail: fmt.Sprintf("The quota of %d %s is used up; delete some first.", limit, what)}
}

// checkQuota counts rows with query (one argument) inside q's transaction
// and refuses when limit is reached. The caller has locked the parent row
// first, so no concurrent insert can slip in between the count and its own
// insert. The parameter is named query so that the SQL guard checks that
// every caller passes a constant.
func checkQuota(ctx context.Context, q q, query string, arg any, limit int, what string) error {
	var n int
	if err := q.get(ctx, &n, query, arg); err != nil {
		return err
	}
	if n >= limit {
		return quotaError(what, limit)
	}
	return nil
}

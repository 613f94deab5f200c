package models

import "context"

// ServiceView is what other services may read over the mTLS listener:
// aggregate counts, never rows of any user. It is a separate, plainly named
// type and can only be made for a service principal.
type ServiceView struct {
	db *DB
}

// NewServiceView returns the view for p, or ErrForbidden when p is not a
// service authenticated by a client certificate.
func NewServiceView(db *DB, p Principal) (*ServiceView, error) {
	if p.Kind != PrincipalService || p.Service == "" {
		return nil, ErrForbidden
	}
	return &ServiceView{db: db}, nil
}

// Stats are aggregate counts.
type Stats struct {
	Users    int64 `db:"users"`
	Projects int64 `db:"projects"`
	Tasks    int64 `db:"tasks"`
}

// Stats counts users, projects and tasks.
func (v *ServiceView) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := v.db.q().get(ctx, &s, `
		SELECT (SELECT COUNT(*) FROM users) AS users,
		       (SELECT COUNT(*) FROM projects) AS projects,
		       (SELECT COUNT(*) FROM tasks) AS tasks`)
	return s, err
}

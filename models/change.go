package models

import "context"

// Change actions.
const (
	ChangeCreated = "created"
	ChangeUpdated = "updated"
	ChangeDeleted = "deleted"
)

// Change is one write that a resource handler committed: which resource,
// what happened to it, whose it is, and the object as the API shows it.
// Handlers publish changes after the write succeeded; features such as
// webhooks subscribe to them without being wired into each handler.
type Change struct {
	Resource string // "task", "project", …
	Action   string // ChangeCreated, ChangeUpdated or ChangeDeleted
	OwnerID  string
	ParentID string   // the parent object's id for a child resource ("" if none)
	ID       string   // the object's id
	Fields   []string // for an update: the JSON names of the fields the request set
	Object   any      // the object's API representation (nil after a delete)
}

// ChangeSink receives committed changes. Changed must not block for long
// and must not fail the request: the write has already happened.
type ChangeSink interface {
	Changed(ctx context.Context, ch Change)
}

package models

import "context"

// checkRef refuses a reference to an object the owner does not hold: query
// counts the rows with a given id and owner (two arguments), inside q's
// transaction, and none is KindInvalid naming the field. A reference to
// another owner's object and to a missing one look alike, so existence
// stays private. The parameter is named query so that the SQL guard checks
// that every caller passes a constant.
func checkRef(ctx context.Context, q q, query, id, owner, field, what string) error {
	if ValidID(id) {
		var n int
		if err := q.get(ctx, &n, query, id, owner); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return Invalid("The request has invalid fields.",
		FieldError{Field: field, Message: "must be the id of one of your " + what})
}

package models

import (
	"context"
	"time"
)

// SeenCountry records that the account userID logged in from country (an
// ISO 3166-1 alpha-2 code) at time at, for the anomaly rule "new country".
// isNew reports that the account had never logged in from country before;
// hadOthers that it has logged in from at least one other country. A
// login from a new country of an account that had others is the anomaly;
// the very first country of an account is not.
//
// Exactly one caller sees isNew for a given account and country, even
// across instances: the row is inserted with ON CONFLICT DO NOTHING.
// Errors: KindNotFound when the account does not exist (any more),
// KindUnavailable when the database does not answer.
func (db *DB) SeenCountry(ctx context.Context, userID, country string, at time.Time) (isNew, hadOthers bool, err error) {
	err = db.tx(ctx, func(q q) error {
		n, err := q.exec(ctx, `
			INSERT INTO account_countries (user_id, country, first_seen) VALUES (?, ?, ?)
			ON CONFLICT (user_id, country) DO NOTHING`,
			userID, country, at.UTC().Truncate(time.Microsecond))
		if err != nil {
			return err
		}
		isNew = n == 1
		var others int
		if err := q.get(ctx, &others, `
			SELECT COUNT(*) FROM account_countries WHERE user_id = ? AND country <> ?`,
			userID, country); err != nil {
			return err
		}
		hadOthers = others > 0
		return nil
	})
	if err != nil {
		return false, false, err
	}
	return isNew, hadOthers, nil
}

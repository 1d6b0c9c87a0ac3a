package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueryAll runs a query and reads each row it returns with scan, the same
// function that reads the one row of a QueryRow. The caller wraps the error
// with what it was reading.
func QueryAll[T any](ctx context.Context, db DBTX, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

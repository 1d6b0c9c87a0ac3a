package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/store"
)

// openDatabase opens the service's database. With migrate, it first creates
// the database when missing and applies the migrations, whose names it
// returns; serve and migrate start the same way.
func openDatabase(ctx context.Context, databaseURL string, log *slog.Logger, migrate bool) (*pgxpool.Pool, []string, error) {
	if migrate {
		if err := store.CreateDatabase(ctx, databaseURL); err != nil {
			return nil, nil, err
		}
	}
	pool, err := store.Open(ctx, databaseURL)
	if err != nil {
		return nil, nil, err
	}
	if !migrate {
		return pool, nil, nil
	}
	applied, err := store.Migrate(ctx, pool, log)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, applied, nil
}

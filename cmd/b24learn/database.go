package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/secret"
	"b24learn/internal/store"
)

// openDatabase opens the service's database. With migrate, it first creates
// the database when missing and applies the migrations, whose names it
// returns, then seals again with kr's newest key (when kr is set) the
// secrets an older key sealed; serve and migrate start the same way.
func openDatabase(ctx context.Context, databaseURL string, log *slog.Logger, migrate bool, kr *secret.Keyring) (*pgxpool.Pool, []string, error) {
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
	if kr != nil {
		// After a rotation (a key prepended to SECRET_KEYS) the old key may
		// be dropped only once nothing stored needs it.
		res, err := store.Reseal(ctx, pool, kr)
		if err != nil {
			pool.Close()
			return nil, nil, fmt.Errorf("seal secrets with the newest key of SECRET_KEYS: %w", err)
		}
		if res.Resealed > 0 {
			log.Info("secrets sealed with the newest key of SECRET_KEYS", "count", res.Resealed)
		}
		// Logged even at 0: the README's rotation drops the old key only
		// once a run after every instance has the new key in front says 0.
		log.Info("stored secrets still sealed with an older key of SECRET_KEYS", "count", res.OlderKey)
		if res.Unreadable > 0 {
			log.Warn("stored secrets that no key of SECRET_KEYS opens (sealed with a key since dropped)",
				"count", res.Unreadable)
		}
	}
	return pool, applied, nil
}

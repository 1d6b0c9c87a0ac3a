package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"b24learn/internal/jobs/queues"
)

// Inserter is an insert-only River client: it stores the jobs the code
// under test queues, and nothing works them.
func Inserter(tb testing.TB, pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	tb.Helper()
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// StartRiver builds a client working cfg's workers on pool, polling as
// often as a test wants (a job starts within 50 ms), starts it and stops it
// when the test ends (cleanups run last registered first, so one registered
// before this runs after the stop). A nil cfg.Logger discards; nil
// cfg.Queues are the app's.
func StartRiver(tb testing.TB, pool *pgxpool.Pool, cfg *river.Config) *river.Client[pgx.Tx] {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Queues == nil {
		cfg.Queues = queues.Config()
	}
	cfg.FetchPollInterval, cfg.FetchCooldown = 50*time.Millisecond, 20*time.Millisecond
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

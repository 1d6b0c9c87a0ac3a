package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
)

// testClients is the per-portal client factory the tests hand to New: what
// cmd/b24learn builds, without the call log.
func testClients(cfg *config.Config, pool *pgxpool.Pool) *connect.Factory {
	return connect.New(connect.Options{Pool: pool, Keyring: cfg.Keyring, Log: slog.New(slog.DiscardHandler),
		OAuthServers: cfg.OAuthServers(), Rate: cfg.B24RateLimit, Burst: cfg.B24Burst,
		AllowPrivateHosts: cfg.LearnAllowPrivateHosts, B24AllowPrivateHosts: cfg.B24AllowPrivateHosts})
}

// testRiver is the insert-only River client the tests hand to New: it
// stores the jobs the app queues, and nothing works them.
func testRiver(t testing.TB, pool *pgxpool.Pool) *river.Client[pgx.Tx] {
	t.Helper()
	rc, err := river.NewClient[pgx.Tx](riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// startTestRiver starts a client working cfg's workers on pool, polling as
// often as a test wants, and stops it when the test ends. A nil cfg.Logger
// discards; nil cfg.Queues are the app's.
func startTestRiver(t testing.TB, pool *pgxpool.Pool, cfg *river.Config) *river.Client[pgx.Tx] {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Queues == nil {
		cfg.Queues = queues.Config()
	}
	cfg.FetchPollInterval, cfg.FetchCooldown = 50*time.Millisecond, 20*time.Millisecond
	rc, err := river.NewClient[pgx.Tx](riverpgxv5.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = rc.Stop(ctx)
	})
	return rc
}

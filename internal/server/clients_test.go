package server

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/config"
	"b24learn/internal/connect"
)

// testClients is the per-portal client factory the tests hand to New: what
// cmd/b24learn builds, without the call log.
func testClients(cfg *config.Config, pool *pgxpool.Pool) *connect.Factory {
	return connect.New(connect.Options{Pool: pool, Keyring: cfg.Keyring, Log: slog.New(slog.DiscardHandler),
		OAuthServers: cfg.OAuthServers(), Rate: cfg.B24RateLimit, Burst: cfg.B24Burst,
		AllowPrivateHosts: cfg.LearnAllowPrivateHosts, B24AllowPrivateHosts: cfg.B24AllowPrivateHosts})
}

package jobs

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/connect"
	"b24learn/internal/store"
)

// The keep-alive of idle portals' Bitrix24 tokens. Tokens are refreshed only
// when a call finds the access token expired, and a refresh token nobody
// uses dies: after 180 days by the current docs, after 28 by older material
// (docs/bitrix24-api.md, "OAuth refresh"). A portal that makes no call for
// weeks (waiting for activation, sync paused, nothing selected, suspended)
// would then need an admin to open the app. So the hourly maintenance makes
// one ordinary call for each portal whose pair is older than keepAliveAge;
// the call meets the expired access token and refreshes through the
// portal's usual token source, which serialises and stores the new pair.
const (
	// keepAliveAge is how old a pair gets before the keep-alive refreshes
	// it: inside the shorter lifetime, and far from a timer the docs warn
	// against (one refresh per portal in 20 days at most).
	keepAliveAge = 20 * 24 * time.Hour
	// accessLifetime is an access token's life: the stored expiry minus it
	// is when the pair was issued.
	accessLifetime = time.Hour
	// keepAlivePerPass bounds a pass, so thousands of idle portals are
	// spread over hours (50 an hour is 24,000 portals in 20 days).
	keepAlivePerPass = 50
	// keepAliveCallTimeout bounds one portal's call with its refresh.
	keepAliveCallTimeout = 20 * time.Second
	// keepAlivePassBudget bounds a whole pass; portals it did not reach
	// wait for the next one.
	keepAlivePassBudget = 5 * time.Minute
	// keepAliveRetryAfter is how long a portal whose call failed waits, so
	// portals that always fail cannot hold every place of a pass.
	keepAliveRetryAfter = 24 * time.Hour
)

// keepAlive refreshes idle portals' tokens.
type keepAlive struct {
	pool    *pgxpool.Pool
	clients *connect.Factory
	log     *slog.Logger
	perPass int // 0: keepAlivePerPass
}

// pass calls Bitrix24 for the portals with the oldest pairs past
// keepAliveAge, at most perPass of them; it returns how many calls
// succeeded. One portal's failure is logged and does not end the pass.
func (k *keepAlive) pass(ctx context.Context, now time.Time) (int, error) {
	ids, err := k.due(ctx, k.pool, now)
	if err != nil {
		return 0, err
	}
	portalID := func(id int64) int64 { return id }
	return eachClaimed(ctx, k.log, "token keep-alive", keepAlivePassBudget, ids, portalID, k.one), nil
}

// due claims the portals this pass calls, oldest pair first, marking them
// tried so that another pass does not take them again before
// keepAliveRetryAfter. Portals flagged "needs reconnect" wait for their
// admin; a portal whose expiry is unknown is left alone (its age is unknown).
func (k *keepAlive) due(ctx context.Context, db store.DBTX, now time.Time) ([]int64, error) {
	limit := k.perPass
	if limit <= 0 {
		limit = keepAlivePerPass
	}
	type due struct {
		id      int64
		expires time.Time
	}
	got, err := store.QueryAll(ctx, db, "token keep-alive: claim portals", func(r pgx.Row) (due, error) {
		var d due
		return d, r.Scan(&d.id, &d.expires)
	}, `
		WITH due AS (
			SELECT id, token_expires_at FROM portals
			WHERE install_state = 'installed' AND NOT needs_reconnect
			  AND access_token IS NOT NULL AND refresh_token IS NOT NULL
			  AND token_expires_at < $2
			  AND (token_keepalive_at IS NULL OR token_keepalive_at < $3)
			ORDER BY token_expires_at, id
			LIMIT $4
			FOR UPDATE SKIP LOCKED)
		UPDATE portals p SET token_keepalive_at = $1 FROM due WHERE p.id = due.id
		RETURNING p.id, due.token_expires_at`,
		now, now.Add(-keepAliveAge+accessLifetime), now.Add(-keepAliveRetryAfter), limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(got))
	slices.SortFunc(got, func(a, b due) int { return a.expires.Compare(b.expires) })
	for _, d := range got {
		ids = append(ids, d.id)
	}
	return ids, nil
}

// one makes the portal's call. Bitrix24 refusing the tokens for good takes
// the syncs' path: the portal is flagged "needs reconnect" (the token
// source does it for a refused refresh) and its alert observed.
func (k *keepAlive) one(ctx context.Context, portalID int64) bool {
	ctx, cancel := context.WithTimeout(ctx, keepAliveCallTimeout)
	defer cancel()
	c, err := k.clients.Bitrix24(ctx, portalID)
	if err == nil {
		_, err = c.AppInfo(ctx) // cheap, and needs no scope
	}
	switch {
	case err == nil:
		k.log.InfoContext(ctx, "token keep-alive", "portal_id", portalID)
		return true
	case tokensRefused(err):
		k.log.WarnContext(ctx, "token keep-alive: bitrix24 refuses the portal's tokens; it needs reconnect",
			"portal_id", portalID, "error", err)
		herr := recordHealth(context.WithoutCancel(ctx), k.pool, portalID, nil, false,
			`UPDATE portals SET needs_reconnect = true, updated_at = now() WHERE id = $1 AND NOT needs_reconnect`, portalID)
		if herr != nil {
			k.log.WarnContext(ctx, "token keep-alive: record needs reconnect", "portal_id", portalID, "error", herr)
		}
	default:
		k.log.WarnContext(ctx, "token keep-alive failed; tried again in a day", "portal_id", portalID, "error", err)
	}
	return false
}

package lead

import (
	"context"
	"fmt"
	"time"

	"b24learn/internal/store"
)

// Limit is at most Max hits per Window for one key. The counters live in
// Postgres so every instance behind the load balancer shares them.
type Limit struct {
	Max    int
	Window time.Duration
}

// Limits bounds activation submissions and console sign-in failures.
type Limits struct {
	SubmitPerPortal Limit
	SubmitPerIP     Limit
	LoginPerAccount Limit // failed sign-ins
	LoginPerIP      Limit // failed sign-ins
}

// DefaultLimits are generous for people and tight for scripts.
var DefaultLimits = Limits{
	SubmitPerPortal: Limit{Max: 5, Window: time.Hour},
	SubmitPerIP:     Limit{Max: 20, Window: time.Hour},
	LoginPerAccount: Limit{Max: 5, Window: 15 * time.Minute},
	LoginPerIP:      Limit{Max: 20, Window: 15 * time.Minute},
}

// RateLimitedError says a limit was hit and when to try again.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limited: retry in %s", e.RetryAfter.Round(time.Second))
}

// Minutes is the wait rounded up to whole minutes, for messages.
func (e *RateLimitedError) Minutes() int {
	return int((e.RetryAfter + time.Minute - 1) / time.Minute)
}

func windowOf(now time.Time, l Limit) (start time.Time, retry time.Duration) {
	start = now.Truncate(l.Window)
	return start, start.Add(l.Window).Sub(now)
}

// hit counts one hit for key and fails with *RateLimitedError once the
// window's count exceeds l.Max. Old windows of the key are dropped.
func hit(ctx context.Context, db store.DBTX, key string, l Limit, now time.Time) error {
	start, retry := windowOf(now, l)
	var n int
	err := db.QueryRow(ctx, `
		INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1)
		ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1
		RETURNING hits`, key, start).Scan(&n)
	if err != nil {
		return fmt.Errorf("count %s: %w", key, err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM rate_limits WHERE key = $1 AND window_start < $2`, key, start); err != nil {
		return fmt.Errorf("prune %s: %w", key, err)
	}
	if n > l.Max {
		return &RateLimitedError{RetryAfter: retry}
	}
	return nil
}

// release gives back one hit of key in the current window: an attempt that
// was counted up front and turned out not to count (refused, or a success).
func release(ctx context.Context, db store.DBTX, key string, l Limit, now time.Time) error {
	start, _ := windowOf(now, l)
	if _, err := db.Exec(ctx, `UPDATE rate_limits SET hits = hits - 1 WHERE key = $1 AND window_start = $2 AND hits > 0`,
		key, start); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}

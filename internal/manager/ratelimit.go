package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	// LoginPerIP: failed sign-ins from one address (an IPv6 /64 counts as
	// one, see clientaddr.Key), any account; over it the address waits for
	// the next window.
	LoginPerIP Limit
	// LoginPerSite: failed sign-ins from one IPv6 site (a /48, see
	// clientaddr.SiteKey), any account. Whoever holds a /48 has 65,536 /64s,
	// each with its own LoginPerIP, enough to keep every hashing slot busy;
	// over this bound the site's attempts are refused before any hash.
	LoginPerSite Limit
	// LoginBackoff: failed sign-ins for one account from one address earn
	// that pair, and only that pair, a growing wait.
	LoginBackoff Backoff
	// LoginPerAccount: failed sign-ins for one account from all addresses,
	// far above a person's rate. Over it, a distributed guess campaign gets
	// no more answers; only a password with a valid TOTP code, or a password
	// from an address the manager signed in from before, still gets in.
	LoginPerAccount Limit
	// LoginCodePerAccount: wrong second-factor codes after the right
	// password, for one account from addresses it never signed in from.
	// Only someone with the password gets here, from as many addresses as
	// they hold; over it no code from a new address is checked.
	LoginCodePerAccount Limit
	// EnrolPasswordPerAccount: wrong passwords given to turn the second
	// factor on, for one account; only a signed-in session gets there, and
	// a copy of its cookie must not make it a password oracle.
	EnrolPasswordPerAccount Limit
}

// Backoff is a wait that doubles with every failure after the free ones.
type Backoff struct {
	Free   int           // failures without any wait
	Base   time.Duration // the wait after the Free-th failure
	Max    time.Duration // the wait never grows beyond this
	Forget time.Duration // failures older than this are forgotten
}

// wait is the delay after the n-th failure in a row.
func (b Backoff) wait(n int) time.Duration {
	if n < b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// DefaultLimits are generous for people and tight for scripts.
var DefaultLimits = Limits{
	SubmitPerPortal:         Limit{Max: 5, Window: time.Hour},
	SubmitPerIP:             Limit{Max: 20, Window: time.Hour},
	LoginPerIP:              Limit{Max: 20, Window: 15 * time.Minute},
	LoginPerSite:            Limit{Max: 100, Window: 15 * time.Minute},
	LoginBackoff:            Backoff{Free: 5, Base: 30 * time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour},
	LoginPerAccount:         Limit{Max: 100, Window: time.Hour},
	LoginCodePerAccount:     Limit{Max: 10, Window: time.Hour},
	EnrolPasswordPerAccount: Limit{Max: 5, Window: time.Hour},
}

// RateLimitedError says a limit was hit and when to try again.
type RateLimitedError struct {
	RetryAfter time.Duration
	// Busy: the process, not the caller, is over its bound (every
	// password-hashing slot taken, see Hasher); nothing was counted.
	Busy bool
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

// Hit counts one hit for key and fails with *RateLimitedError once the
// window's count exceeds l.Max. Old windows of the key are dropped.
func Hit(ctx context.Context, db store.DBTX, key string, l Limit, now time.Time) error {
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

// over fails with *RateLimitedError when key has already used up the
// window's l.Max, and writes nothing: a caller over its bound is refused on
// one read instead of a count, a prune and a release.
func over(ctx context.Context, db store.DBTX, key string, l Limit, now time.Time) error {
	start, retry := windowOf(now, l)
	var n int
	err := db.QueryRow(ctx, `SELECT hits FROM rate_limits WHERE key = $1 AND window_start = $2`, key, start).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if n >= l.Max {
		return &RateLimitedError{RetryAfter: retry}
	}
	return nil
}

// bucket is one limit's counter, as a caller that takes and gives back
// places in several keeps them.
type bucket struct {
	key   string
	limit Limit
}

// Release gives back one hit of key in the current window: an attempt that
// was counted up front and turned out not to count (refused, or a success).
func Release(ctx context.Context, db store.DBTX, key string, l Limit, now time.Time) error {
	start, _ := windowOf(now, l)
	if _, err := db.Exec(ctx, `UPDATE rate_limits SET hits = hits - 1 WHERE key = $1 AND window_start = $2 AND hits > 0`,
		key, start); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return nil
}

// takeTurn counts a sign-in attempt of (account, addr) as a failure before its
// password is checked, under a row lock, so parallel guesses cannot all pass
// a check made before any of them failed. A pair still waiting gets
// *RateLimitedError and is not counted. clearTurns forgets the pair on success.
// addr is the address's limit key (clientaddr.Key), stored in the ip column.
func takeTurn(ctx context.Context, pool *pgxpool.Pool, b Backoff, account, addr string, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			failures int
			last     time.Time
			blocked  *time.Time
		)
		err := tx.QueryRow(ctx, `
			INSERT INTO login_failures (account, ip, failures, last_at) VALUES ($1, $2, 0, $3)
			ON CONFLICT (account, ip) DO UPDATE SET account = EXCLUDED.account
			RETURNING failures, last_at, blocked_until`, account, addr, now).Scan(&failures, &last, &blocked)
		if err != nil {
			return fmt.Errorf("count sign-in attempt: %w", err)
		}
		if blocked != nil && blocked.After(now) {
			return &RateLimitedError{RetryAfter: blocked.Sub(now)}
		}
		if now.Sub(last) > b.Forget {
			failures = 0
		}
		failures++
		var until *time.Time
		if d := b.wait(failures); d > 0 {
			t := now.Add(d)
			until = &t
		}
		if _, err := tx.Exec(ctx, `UPDATE login_failures SET failures = $3, last_at = $4, blocked_until = $5
			WHERE account = $1 AND ip = $2`, account, addr, failures, now, until); err != nil {
			return fmt.Errorf("count sign-in attempt: %w", err)
		}
		return nil
	})
}

// clearTurns forgets the failures of (account, addr) after a successful sign-in.
func clearTurns(ctx context.Context, db store.DBTX, account, addr string) error {
	if _, err := db.Exec(ctx, `DELETE FROM login_failures WHERE account = $1 AND ip = $2`, account, addr); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}

// limitsKept is how long counters live: longer than any window or backoff.
const limitsKept = 48 * time.Hour

// PruneLimits deletes rate-limit counters that no longer limit anything, so
// keys seen once (an e-mail tried once, an address gone) do not pile up.
func PruneLimits(ctx context.Context, db store.DBTX, now time.Time) (int64, error) {
	cut := now.Add(-limitsKept)
	a, err := db.Exec(ctx, `DELETE FROM rate_limits WHERE window_start < $1`, cut)
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	b, err := db.Exec(ctx, `DELETE FROM login_failures WHERE last_at < $1 AND (blocked_until IS NULL OR blocked_until < $2)`, cut, now)
	if err != nil {
		return 0, fmt.Errorf("prune sign-in failures: %w", err)
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}

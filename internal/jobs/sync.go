package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Syncer is the sync engine as the workers see it.
type Syncer interface {
	// Sync reads Bitrix24 and Learn, plans and applies; it must be safe to
	// run again after being stopped at any point.
	Sync(ctx context.Context, portalID int64, trigger Trigger) error
	// Preview plans without writing to Learn and stores the plan for the page.
	Preview(ctx context.Context, portalID int64) error
}

// RetryAfter is implemented by errors of rate-limited calls (Bitrix24's
// QUERY_LIMIT_EXCEEDED, Learn's 429): the job is snoozed, spending no attempt.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// ErrPortalNotSyncable says the portal was suspended, uninstalled or
// unconfigured after the job was queued; the job is cancelled.
var ErrPortalNotSyncable = errors.New("portal is not active, installed and configured")

const (
	// syncTimeout fits an initial sync of a large org through Bitrix24's
	// 2 req/s limit; River's default of one minute would cut it short.
	syncTimeout     = 2 * time.Hour
	syncMaxAttempts = 6
	// lockedSnooze is how long a sync waits when another sync of the same
	// portal is running.
	lockedSnooze = 30 * time.Second
)

type syncWorkers struct {
	deps Deps
}

// ScheduledSyncWorker runs the dispatcher's jobs.
type ScheduledSyncWorker struct {
	river.WorkerDefaults[ScheduledSyncArgs]
	s *syncWorkers
}

func (w *ScheduledSyncWorker) Timeout(*river.Job[ScheduledSyncArgs]) time.Duration {
	return syncTimeout
}

func (w *ScheduledSyncWorker) Work(ctx context.Context, job *river.Job[ScheduledSyncArgs]) error {
	return w.s.run(ctx, job.Args.PortalID, func(ctx context.Context) error {
		return w.s.deps.Sync.Sync(ctx, job.Args.PortalID, TriggerScheduled)
	})
}

// SyncWorker runs "Sync now" and "Approve".
type SyncWorker struct {
	river.WorkerDefaults[SyncArgs]
	s *syncWorkers
}

func (w *SyncWorker) Timeout(*river.Job[SyncArgs]) time.Duration { return syncTimeout }

func (w *SyncWorker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	return w.s.run(ctx, job.Args.PortalID, func(ctx context.Context) error {
		return w.s.deps.Sync.Sync(ctx, job.Args.PortalID, job.Args.Trigger)
	})
}

// PreviewWorker computes a dry run.
type PreviewWorker struct {
	river.WorkerDefaults[PreviewArgs]
	s *syncWorkers
}

func (w *PreviewWorker) Timeout(*river.Job[PreviewArgs]) time.Duration { return syncTimeout }

func (w *PreviewWorker) Work(ctx context.Context, job *river.Job[PreviewArgs]) error {
	// A preview reads only, but it shares the portal lock so it never sees a
	// half-applied run.
	return w.s.locked(ctx, job.Args.PortalID, func(ctx context.Context) error {
		return w.s.deps.Sync.Preview(ctx, job.Args.PortalID)
	})
}

// run executes one sync attempt under the portal's lock and keeps the
// portal's health: a success clears it; the configured number of failures in
// a row marks the portal "needs attention" with the last error.
func (s *syncWorkers) run(ctx context.Context, portalID int64, fn func(context.Context) error) error {
	err := s.locked(ctx, portalID, fn)
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
		return s.recordSuccess(ctx, portalID)
	case errors.As(err, &snooze), errors.As(err, &cancel):
		return err
	}
	if rerr := s.recordFailure(ctx, portalID, err); rerr != nil {
		s.deps.Log.Error("record sync failure", "portal_id", portalID, "error", rerr)
	}
	return err
}

// locked runs fn while holding the portal's sync lock, a session advisory
// lock on a dedicated connection: at most one sync per portal across all
// processes, released by PostgreSQL even if this process dies.
func (s *syncWorkers) locked(ctx context.Context, portalID int64, fn func(context.Context) error) error {
	if ok, err := s.syncable(ctx, portalID); err != nil {
		return err
	} else if !ok {
		return river.JobCancel(ErrPortalNotSyncable)
	}
	conn, err := s.deps.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockNamespace, int32(portalID)).Scan(&got); err != nil {
		return fmt.Errorf("take portal lock: %w", err)
	}
	if !got {
		return river.JobSnooze(lockedSnooze)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, $2)", lockNamespace, int32(portalID)); err != nil {
			// Dropping the connection releases the lock for sure.
			conn.Hijack().Close(context.WithoutCancel(ctx))
		}
	}()
	err = fn(ctx)
	var ra RetryAfter
	if errors.As(err, &ra) {
		return river.JobSnooze(max(ra.RetryAfter(), time.Second))
	}
	return err
}

// lockNamespace is the first key of the portal sync advisory lock ("sync").
const lockNamespace int32 = 0x73796e63

func (s *syncWorkers) syncable(ctx context.Context, portalID int64) (bool, error) {
	var ok bool
	err := s.deps.Pool.QueryRow(ctx, `
		SELECT p.install_state = 'installed' AND p.activation_state = 'active' AND NOT p.needs_reconnect
		       AND s.learn_url <> '' AND s.learn_password IS NOT NULL
		FROM portals p JOIN portal_settings s ON s.portal_id = p.id
		WHERE p.id = $1`, portalID).Scan(&ok)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return false, fmt.Errorf("check portal %d: %w", portalID, err)
	}
	return ok, nil
}

func (s *syncWorkers) recordSuccess(ctx context.Context, portalID int64) error {
	_, err := s.deps.Pool.Exec(ctx, `
		UPDATE portals SET sync_failures = 0, needs_attention = false, last_sync_error = '', updated_at = now()
		WHERE id = $1 AND (sync_failures <> 0 OR needs_attention)`, portalID)
	if err != nil {
		return fmt.Errorf("record sync success: %w", err)
	}
	return nil
}

func (s *syncWorkers) recordFailure(ctx context.Context, portalID int64, cause error) error {
	limit := s.deps.FailuresBeforeAttention
	if limit <= 0 {
		limit = 3
	}
	_, err := s.deps.Pool.Exec(ctx, `
		UPDATE portals SET sync_failures = sync_failures + 1,
		       needs_attention = sync_failures + 1 >= $2,
		       last_sync_error = left($3, 1000), updated_at = now()
		WHERE id = $1`, portalID, limit, cause.Error())
	return err
}

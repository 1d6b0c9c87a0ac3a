package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/alert"
	"b24learn/internal/calllog"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
	"b24learn/internal/uninstall"
)

// MaintenanceArgs is the hourly clean-up: run reports and settings audit
// rows past the report retention, the call log past its seven days,
// rate-limit counters and alert e-mail counts that limit nothing any more,
// expired alert confirmation links, and uninstall events past their
// retention (uninstall.EventRetention); it keeps idle portals' Bitrix24
// tokens alive (keepalive.go), and warns about and erases the portals whose
// tokens Bitrix24 has refused for too long, and queues again an
// uninstall's lost erase or lost end of its recheck (retention.go). Its calls to the
// portals' Bitrix24 are PortalCheckArgs jobs in queues.PortalCalls, one per
// portal (portal_check.go): the maintenance itself calls no portal.
type MaintenanceArgs struct{ periodicOnce }

func (MaintenanceArgs) Kind() string { return "maintenance" }

// MaintenanceWorker deletes expired data and keeps tokens alive.
type MaintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	deps Deps
	now  func() time.Time
	// keep refreshes idle portals' tokens; nil: no keep-alive (tests of
	// the clean-up alone).
	keep *keepAlive
	// retain erases portals refused too long; nil: no retention pass.
	retain *refusedRetention
}

// Timeout bounds the clean-ups and the queueing of the portal checks; the
// calls to portals are jobs of their own (portal_check.go).
func (w *MaintenanceWorker) Timeout(*river.Job[MaintenanceArgs]) time.Duration {
	return 5 * time.Minute
}

func (w *MaintenanceWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	now := w.now()
	var deleted []any
	total := int64(0)
	for _, c := range w.cleanUps() {
		n, err := c.purge(ctx, now)
		if err != nil {
			return fmt.Errorf("maintenance, %s: %w", c.name, err)
		}
		deleted, total = append(deleted, c.name, n), total+n
	}
	if total > 0 {
		w.deps.Log.InfoContext(ctx, "maintenance", deleted...)
	}
	if rc, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		return w.queueChecks(ctx, rc, now)
	}
	// Work called outside River (the passes' tests): no queue to put the
	// portal checks in, so they are made here, one after another.
	if w.keep != nil {
		if _, err := w.keep.pass(ctx, now); err != nil {
			return err
		}
	}
	if w.retain != nil {
		if _, err := w.retain.pass(ctx, now); err != nil {
			return err
		}
		if _, err := w.retain.lapsedPass(ctx, now); err != nil {
			return err
		}
	}
	return nil
}

// eachClaimed acts on the portals a pass of the maintenance claimed, in
// their order, within the pass's budget; the portals it does not reach
// stay claimed, so they wait the claim's retry delay, not just one pass.
// act logs its own failures, so one portal's does not end the pass, and
// reports whether it did the pass's work; eachClaimed returns how many
// times it did. name starts the log line.
func eachClaimed[T any](ctx context.Context, log *slog.Logger, name string, budget time.Duration,
	claimed []T, portalID func(T) int64, act func(context.Context, T) bool,
) int {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	done := 0
	for _, c := range claimed {
		if ctx.Err() != nil {
			log.WarnContext(ctx, name+": out of time; the claimed portals not reached are tried again after the retry delay", "portal_id", portalID(c))
			break
		}
		if act(ctx, c) {
			done++
		}
	}
	return done
}

// cleanUp deletes one kind of expired data; name is its count's key in
// the log line.
type cleanUp struct {
	name  string
	purge func(ctx context.Context, now time.Time) (int64, error)
}

// cleanUps are the hour's clean-ups, in order.
func (w *MaintenanceWorker) cleanUps() []cleanUp {
	pool := w.deps.Pool
	keep := w.deps.Config.ReportRetention
	return []cleanUp{
		{"run_reports_deleted", func(ctx context.Context, _ time.Time) (int64, error) {
			return syncer.NewStore(pool).PurgeRuns(ctx, keep)
		}},
		{"settings_audit_deleted", func(ctx context.Context, now time.Time) (int64, error) {
			return settings.PurgeAudit(ctx, pool, retention(keep), now)
		}},
		{"calls_deleted", func(ctx context.Context, now time.Time) (int64, error) { return calllog.Prune(ctx, pool, now) }},
		{"rate_limits_deleted", func(ctx context.Context, now time.Time) (int64, error) { return manager.PruneLimits(ctx, pool, now) }},
		{"alert_counts_deleted", func(ctx context.Context, now time.Time) (int64, error) { return alert.Prune(ctx, pool, now) }},
		{"uninstall_events_deleted", func(ctx context.Context, now time.Time) (int64, error) { return uninstall.PurgeEvents(ctx, pool, now) }},
	}
}

// retention is the report retention, or PurgeRuns' default when unset.
func retention(keep time.Duration) time.Duration {
	if keep <= 0 {
		return syncer.DefaultRetention
	}
	return keep
}

func periodicMaintenance() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
		&river.PeriodicJobOpts{ID: "maintenance"})
}

package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/calllog"
	"b24learn/internal/manager"
	"b24learn/internal/syncer"
)

// MaintenanceArgs is the hourly clean-up: run reports past their retention,
// the call log past its seven days, and rate-limit counters that limit
// nothing any more.
type MaintenanceArgs struct{ periodicOnce }

func (MaintenanceArgs) Kind() string { return "maintenance" }

// MaintenanceWorker deletes expired data.
type MaintenanceWorker struct {
	river.WorkerDefaults[MaintenanceArgs]
	deps Deps
	now  func() time.Time
}

func (w *MaintenanceWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	runs, err := syncer.NewStore(w.deps.Pool).PurgeRuns(ctx, w.deps.Config.ReportRetention)
	if err != nil {
		return fmt.Errorf("purge run reports: %w", err)
	}
	calls, err := calllog.Prune(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	limits, err := manager.PruneLimits(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	if runs+calls+limits > 0 {
		w.deps.Log.InfoContext(ctx, "maintenance", "run_reports_deleted", runs, "calls_deleted", calls, "rate_limits_deleted", limits)
	}
	return nil
}

func periodicMaintenance() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
		&river.PeriodicJobOpts{ID: "maintenance"})
}

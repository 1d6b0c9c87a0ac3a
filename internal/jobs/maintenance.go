package jobs

import (
	"context"
	"fmt"
	"time"

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
// retention (uninstall.EventRetention); and it keeps idle portals' Bitrix24
// tokens alive (keepalive.go).
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
}

// Timeout leaves room for the keep-alive's calls after the clean-up.
func (w *MaintenanceWorker) Timeout(*river.Job[MaintenanceArgs]) time.Duration {
	return keepAlivePassBudget + 5*time.Minute
}

func (w *MaintenanceWorker) Work(ctx context.Context, job *river.Job[MaintenanceArgs]) error {
	runs, err := syncer.NewStore(w.deps.Pool).PurgeRuns(ctx, w.deps.Config.ReportRetention)
	if err != nil {
		return fmt.Errorf("purge run reports: %w", err)
	}
	audit, err := settings.PurgeAudit(ctx, w.deps.Pool, retention(w.deps.Config.ReportRetention), w.now())
	if err != nil {
		return err
	}
	calls, err := calllog.Prune(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	limits, err := manager.PruneLimits(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	alerts, err := alert.Prune(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	events, err := uninstall.PurgeEvents(ctx, w.deps.Pool, w.now())
	if err != nil {
		return err
	}
	if runs+audit+calls+limits+alerts+events > 0 {
		w.deps.Log.InfoContext(ctx, "maintenance", "run_reports_deleted", runs, "settings_audit_deleted", audit,
			"calls_deleted", calls, "rate_limits_deleted", limits, "alert_counts_deleted", alerts,
			"uninstall_events_deleted", events)
	}
	if w.keep == nil {
		return nil
	}
	if _, err := w.keep.pass(ctx, w.now()); err != nil {
		return err
	}
	return nil
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

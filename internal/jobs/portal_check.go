package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/jobs/queues"
	"b24learn/internal/uninstall"
)

// The hourly maintenance's calls to the portals' Bitrix24: the token
// keep-alive (keepalive.go), the check before a refused portal's warning or
// erase and the check of a portal uninstalled on refused tokens
// (retention.go). The maintenance, a system job, only claims the portals
// due and queues one PortalCheckArgs job for each in queues.PortalCalls, so
// a portal whose server hangs holds one portal-call worker for its own
// deadline, and never a system worker.
const (
	checkKeepAlive = "keepalive"
	checkRetention = "retention"
	checkLapsed    = "lapsed"
)

// PortalCheckArgs is one portal's call of the hourly maintenance. Unique
// while it waits or runs, so a portal whose check still hangs gets no
// second one from the next pass.
type PortalCheckArgs struct {
	PortalID int64  `json:"portal_id" river:"unique"`
	Check    string `json:"check" river:"unique"`
}

func (PortalCheckArgs) Kind() string { return "portal_check" }

// One attempt: a portal whose call failed waits for its claim's retry
// delay (keepAliveRetryAfter, retentionRetryAfter, lapsedRetryAfter) and a
// later pass, as when the maintenance called it itself.
func (PortalCheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.PortalCalls, MaxAttempts: 1, UniqueOpts: queues.WaitingOnce()}
}

// PortalCheckWorker makes the maintenance's call of one portal.
type PortalCheckWorker struct {
	river.WorkerDefaults[PortalCheckArgs]
	log *slog.Logger
	now func() time.Time
	// keep and retain are the maintenance's; nil: that check does nothing.
	keep   *keepAlive
	retain *refusedRetention
}

// Timeout bounds the call with what follows it in the database.
func (w *PortalCheckWorker) Timeout(job *river.Job[PortalCheckArgs]) time.Duration {
	if job.Args.Check == checkKeepAlive {
		return keepAliveCallTimeout + 15*time.Second
	}
	return uninstall.AskTimeout + 30*time.Second
}

func (w *PortalCheckWorker) Work(ctx context.Context, job *river.Job[PortalCheckArgs]) error {
	a, now := job.Args, w.now()
	switch {
	case a.Check == checkKeepAlive && w.keep != nil:
		w.keep.one(ctx, a.PortalID)
	case a.Check == checkLapsed && w.retain != nil:
		w.retain.lapsedOne(ctx, a.PortalID, now)
	case a.Check == checkRetention && w.retain != nil:
		rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return nil // the alert and the erase are jobs: nothing to queue them with
		}
		p, found, err := w.retain.refused(ctx, a.PortalID)
		if err != nil || !found {
			return err
		}
		if _, err := w.retain.one(ctx, rc, p, now); err != nil {
			w.log.WarnContext(ctx, "data retention: portal not handled; tried again later", "portal_id", p.id, "error", err)
		}
	}
	return nil
}

// queueChecks claims the portals due for the maintenance's calls and queues
// one PortalCheckArgs job for each, in one transaction: a claim is never
// taken without its job. A portal whose previous check has not finished
// gets no second (uniqueness).
func (w *MaintenanceWorker) queueChecks(ctx context.Context, rc *river.Client[pgx.Tx], now time.Time) error {
	queued := 0
	err := pgx.BeginFunc(ctx, w.deps.Pool, func(tx pgx.Tx) error {
		var checks []PortalCheckArgs
		add := func(check string, ids []int64) {
			for _, id := range ids {
				checks = append(checks, PortalCheckArgs{PortalID: id, Check: check})
			}
		}
		if w.keep != nil {
			ids, err := w.keep.due(ctx, tx, now)
			if err != nil {
				return err
			}
			add(checkKeepAlive, ids)
		}
		if w.retain != nil {
			due, err := w.retain.due(ctx, tx, now)
			if err != nil {
				return err
			}
			for _, p := range due {
				add(checkRetention, []int64{p.id})
			}
			ids, err := w.retain.lapsedDue(ctx, tx, now)
			if err != nil {
				return err
			}
			add(checkLapsed, ids)
			if _, err := w.retain.lostErases(ctx, tx, rc); err != nil {
				return err
			}
		}
		for _, a := range checks {
			res, err := rc.InsertTx(ctx, tx, a, nil)
			if err != nil {
				return fmt.Errorf("queue %s check of portal %d: %w", a.Check, a.PortalID, err)
			}
			if !res.UniqueSkippedAsDuplicate {
				queued++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("maintenance, portal checks: %w", err)
	}
	if queued > 0 {
		w.deps.Log.InfoContext(ctx, "maintenance: portal checks queued", "portal_checks", queued)
	}
	return nil
}

package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/jobs/queues"
	"b24learn/internal/syncer"
)

// PersonSyncer runs one employee's steps (*syncer.Syncer); a Syncer that
// has it gets the on-demand worker.
type PersonSyncer interface {
	RunPerson(ctx context.Context, portalID, b24ID int64) (*syncer.Report, error)
}

// ProvisionArgs is "Sync this employee": one Bitrix24 user's steps now.
// Pressing it twice for the same person while a job waits gives one job.
type ProvisionArgs struct {
	PortalID int64 `json:"portal_id" river:"unique"`
	UserID   int64 `json:"user_id" river:"unique"`
}

// ProvisionOutput is a completed sync_person job's output: its run.
type ProvisionOutput struct {
	RunID int64 `json:"run_id"`
}

func (ProvisionArgs) Kind() string { return "sync_person" }

func (ProvisionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.Sync, MaxAttempts: 3, UniqueOpts: queues.WaitingOnce()}
}

// ProvisionWorker runs on-demand syncs of one employee. It shares the
// portal's sync lock with the full runs: while one runs it snoozes, and a
// full run snoozes while it runs.
type ProvisionWorker struct {
	river.WorkerDefaults[ProvisionArgs]
	s  *syncWorkers
	ps PersonSyncer
}

// provisionTimeout bounds one person's steps: a handful of requests.
const provisionTimeout = 5 * time.Minute

func (w *ProvisionWorker) Timeout(*river.Job[ProvisionArgs]) time.Duration { return provisionTimeout }

func (w *ProvisionWorker) Work(ctx context.Context, job *river.Job[ProvisionArgs]) error {
	if err := w.s.checkRunnable(ctx, job.Args.PortalID, true); err != nil {
		return err
	}
	rep, err := w.ps.RunPerson(ctx, job.Args.PortalID, job.Args.UserID)
	cut := cutByShutdown(ctx, err)
	w.s.observe(ctx, syncer.TriggerOnDemand, rep, err)
	switch {
	case cut != nil:
		// Handed back, as a sync is: no attempt spent, no failed job.
		return cut
	case err == nil:
		// The people page shows this run's steps once the job is done.
		if rerr := river.RecordOutput(ctx, ProvisionOutput{RunID: rep.RunID}); rerr != nil {
			return fmt.Errorf("record run id: %w", rerr)
		}
		return nil
	case errors.Is(err, syncer.ErrBusy):
		return river.JobSnooze(max(w.s.deps.BusySnooze, time.Second))
	case errors.Is(err, syncer.ErrNoSuchEmployee):
		return river.JobCancel(err)
	}
	if d, ok := rateLimited(err); ok {
		return river.JobSnooze(d)
	}
	return noRetryOfRefusedAnswers(fmt.Errorf("sync employee %d: %w", job.Args.UserID, err))
}

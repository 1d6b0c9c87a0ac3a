package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/alert"
	"b24learn/internal/bitrix24"
	"b24learn/internal/learn"
	"b24learn/internal/metrics"
	"b24learn/internal/remote"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// Syncer is the sync engine as the workers see it (*syncer.Syncer). Run
// reads Bitrix24 and Learn, plans and applies (or only records the plan for
// syncer.TriggerPreview); it is safe to run again after being stopped at any
// point, and answers syncer.ErrBusy while another sync of the portal runs.
type Syncer interface {
	Run(ctx context.Context, portalID int64, trigger syncer.Trigger) (*syncer.Report, error)
	// RunApproved is Run with syncer.TriggerApproved that approves only the
	// deactivations the held run heldRunID held.
	RunApproved(ctx context.Context, portalID, heldRunID int64) (*syncer.Report, error)
}

// ErrPortalNotSyncable says the portal was suspended, uninstalled or
// unconfigured after the job was queued; the job is cancelled.
var ErrPortalNotSyncable = errors.New("portal is not active, installed and configured")

// SyncTimeout fits an initial sync of a large org through Bitrix24's 2 req/s
// limit; River's default of one minute would cut it short. River's rescue of
// stuck jobs (JOB_RESCUE_AFTER) must come later, or it hands a sync that is
// still running to another worker.
const SyncTimeout = 2 * time.Hour

const (
	// syncMaxAttempts: River's default backoff (attempt⁴ seconds) puts
	// about 16 minutes of waits between the first and the sixth attempt,
	// enough for a short outage to pass and far short of a day's slot.
	syncMaxAttempts = 6
	// previewTimeout bounds a preview, which may run for a portal iSpring
	// has not activated, against a Learn server its admin chose: such a
	// server could drip pages until any timeout. A preview only reads the
	// Bitrix24 org and the Learn account, as an unchanged sync does: at
	// 100,000 employees 6.4 s against the simulators and 40 Bitrix24
	// requests, 20 s at Bitrix24's 2 req/s (docs/benchmarks.md). Ten minutes
	// leaves slow real servers room many times over.
	previewTimeout = 10 * time.Minute
	// previewMaxAttempts: a preview is interactive; a failed one shows its
	// error and the admin may press Preview again.
	previewMaxAttempts = 1
	// defaultBusySnooze is how long a sync waits when another sync of the
	// same portal is running.
	defaultBusySnooze = 10 * time.Second
)

type syncWorkers struct {
	deps Deps
}

// syncJob is the args of a kind whose job is a full sync of one portal:
// the dispatcher's (ScheduledSyncArgs), and "Sync now" and "Approve"
// (SyncArgs).
type syncJob interface {
	river.JobArgs
	// syncRun is the run the job asks for; heldRun is SyncArgs.HeldRun.
	syncRun() (portalID int64, trigger syncer.Trigger, heldRun int64)
}

func (a ScheduledSyncArgs) syncRun() (int64, syncer.Trigger, int64) {
	return a.PortalID, syncer.TriggerScheduled, 0
}

func (a SyncArgs) syncRun() (int64, syncer.Trigger, int64) { return a.PortalID, a.Trigger, a.HeldRun }

// syncJobWorker runs the jobs of a syncJob kind; the kinds differ only in
// the run they ask for.
type syncJobWorker[T syncJob] struct {
	river.WorkerDefaults[T]
	s *syncWorkers
}

// ScheduledSyncWorker runs the dispatcher's jobs.
type ScheduledSyncWorker = syncJobWorker[ScheduledSyncArgs]

// SyncWorker runs "Sync now" and "Approve".
type SyncWorker = syncJobWorker[SyncArgs]

func (w *syncJobWorker[T]) Timeout(*river.Job[T]) time.Duration { return SyncTimeout }

// Work runs the sync; only a scheduled one's failure begins the "needs
// attention" e-mail (run).
func (w *syncJobWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	portalID, trigger, heldRun := job.Args.syncRun()
	return w.s.run(ctx, portalID, func(ctx context.Context) (*syncer.Report, error) {
		return w.s.sync(ctx, portalID, trigger, heldRun)
	}, trigger == syncer.TriggerScheduled)
}

// PreviewWorker computes a dry run.
type PreviewWorker struct {
	river.WorkerDefaults[PreviewArgs]
	s *syncWorkers
}

func (w *PreviewWorker) Timeout(*river.Job[PreviewArgs]) time.Duration { return previewTimeout }

func (w *PreviewWorker) Work(ctx context.Context, job *river.Job[PreviewArgs]) error {
	// A preview shares the sync's portal lock, so it never sees a
	// half-applied run; its failures do not count against the portal's
	// health. It only reads, so it also runs before activation.
	if err := w.s.checkRunnable(ctx, job.Args.PortalID, false); err != nil {
		return err
	}
	_, err := w.s.sync(ctx, job.Args.PortalID, syncer.TriggerPreview, 0)
	if cut := cutByShutdown(ctx, err); cut != nil {
		// Tried once: the error would discard the admin's preview.
		return cut
	}
	return noRetryOfRefusedAnswers(err)
}

// cutByShutdown hands a job whose run failed because the process is
// shutting down (its error is its context's cancel) back at once, for
// another process to resume; it is no failure and spends no attempt. Nil
// otherwise, also for a run that failed for its own reason as the process
// stopped: that failure is the portal's (syncer.StopCause).
func cutByShutdown(ctx context.Context, err error) error {
	if syncer.StopCause(ctx, err) != "" {
		return river.JobSnooze(time.Second)
	}
	return nil
}

// run executes one sync attempt and keeps the portal's health: a success
// clears it; a failure marks the portal "needs attention" with the last
// error as recordFailure decides. Either way the portal's alert
// states are observed in the same transaction (internal/alert). scheduled
// is false for the runs an admin started by hand ("Sync now", "Approve"):
// the admin watches the page, which shows the failure, so such a run marks
// the portal but begins no "needs attention" e-mail; a scheduled run that
// still fails the same way sends it.
func (s *syncWorkers) run(ctx context.Context, portalID int64, fn func(context.Context) (*syncer.Report, error), scheduled bool) error {
	if err := s.checkRunnable(ctx, portalID, true); err != nil {
		return err
	}
	rep, err := fn(ctx)
	if cut := cutByShutdown(ctx, err); cut != nil {
		// Not the portal's failure either.
		return cut
	}
	var snooze *river.JobSnoozeError
	var cancel *river.JobCancelError
	switch {
	case err == nil:
		// A run that finished as the process stops still counts: its
		// health is written past the job's cancelled context.
		hctx, done := healthContext(ctx)
		defer done()
		return s.recordSuccess(hctx, portalID, rep)
	case errors.As(err, &snooze), errors.As(err, &cancel):
		return err
	}
	hctx, done := healthContext(ctx)
	defer done()
	if rerr := s.recordFailure(hctx, portalID, err, scheduled); rerr != nil {
		s.deps.Log.ErrorContext(ctx, "record sync failure", "portal_id", portalID, "error", rerr)
	}
	return noRetryOfRefusedAnswers(err)
}

// healthContext is ctx without its cancellation, bounded: a run that ended
// on its own as the shutdown began must still leave its outcome in the
// portal's health, or a failure would go uncounted.
func healthContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// noRetryOfRefusedAnswers cancels the job when Learn sent more than the
// client accepts: the account would send it again, to any instance, so a
// retry only repeats the load. It cancels it too when Learn refused the
// stored password or API key: they are the same at every attempt, and each
// attempt is one more failed sign-in as the Learn admin, which an account
// may count against the admin, and one more refusal in the logs. The
// failure stays in the run report and the portal's health; the next
// scheduled slot, or "Sync now", tries afresh. A server too slow to answer (learn.ErrTimeout), a 5xx or a
// 429 is retried like any failure: each attempt ends within a few of the
// client's deadlines (docs/learn-api.md, "Deadlines"), and a slow spell may
// pass before the next.
func noRetryOfRefusedAnswers(err error) error {
	var le *learn.LimitError
	if errors.As(err, &le) || credentialsRefused(err) {
		return river.JobCancel(err)
	}
	return err
}

// credentialsRefused reports whether err says Learn refused the portal's
// credentials (e-mail and password, or API key), or the run found them
// unusable before it asked.
func credentialsRefused(err error) bool {
	if errors.Is(err, learn.ErrBadCredentials) || errors.Is(err, learn.ErrAPIKeyRefused) {
		return true
	}
	var ce *learn.CheckError
	return errors.As(err, &ce) && (ce.Code == learn.CheckBadCredentials || ce.Code == learn.CheckBadAPIKey)
}

// sync calls the engine and turns "busy" and rate limits into a snooze, which
// spends no attempt: the syncer's per-portal advisory lock allows one sync of
// a portal at a time across all processes, and a second one waits its turn.
// heldRun is the held run an approved sync approves (SyncArgs.HeldRun).
func (s *syncWorkers) sync(ctx context.Context, portalID int64, trigger syncer.Trigger, heldRun int64) (*syncer.Report, error) {
	var rep *syncer.Report
	var err error
	if trigger == syncer.TriggerApproved && heldRun != 0 {
		rep, err = s.deps.Sync.RunApproved(ctx, portalID, heldRun)
	} else {
		rep, err = s.deps.Sync.Run(ctx, portalID, trigger)
	}
	s.observe(ctx, trigger, rep, err)
	if errors.Is(err, syncer.ErrBusy) {
		return rep, river.JobSnooze(cmp.Or(s.deps.BusySnooze, defaultBusySnooze))
	}
	if d, ok := rateLimited(err); ok {
		return rep, river.JobSnooze(d)
	}
	return rep, err
}

// observe records a run, ended with err under ctx, that got as far as its
// report row; a sync that found the portal busy never started and is not
// counted. A run cut by the process's shutdown (interrupted) is handed back
// to the queue, not failed: counted as a failure, every deploy would look
// like an outage. A run whose job was cancelled from River UI or the
// console is cut the same way, but River then cancels the job: it is
// counted apart, since no process resumes it.
func (s *syncWorkers) observe(ctx context.Context, trigger syncer.Trigger, rep *syncer.Report, err error) {
	if s.deps.Metrics == nil || rep == nil {
		return
	}
	result := rep.Status
	stopped := syncer.StopCause(ctx, err)
	switch {
	case stopped == syncer.RunCancelled:
		result = metrics.SyncCancelled
	case stopped == syncer.RunShutdown:
		result = metrics.SyncInterrupted
	case result == "" || result == syncer.RunRunning:
		result = syncer.RunFailed
	}
	s.deps.Metrics.ObserveSync(string(trigger), result, rep.Duration, rep.Counts)
}

// rateLimited recognises Bitrix24's and Learn's rate-limit answers that
// outlasted the clients' own retries: the job is snoozed, spending no attempt.
// A method Bitrix24 blocked by its operating time limit puts the job off
// until the method's reset time, rather than keep a worker sleeping.
func rateLimited(err error) (time.Duration, bool) {
	var le *learn.APIError
	var op *bitrix24.OperatingLimitError
	switch {
	case errors.As(err, &op):
		// A self-hosted portal sets its own reset time: an hour at most.
		return min(max(time.Until(op.ResetAt), time.Second), time.Hour), true
	case errors.As(err, &le) && errors.Is(err, learn.ErrRateLimited):
		return max(le.RetryAfter, time.Minute), true
	case errors.Is(err, learn.ErrRateLimited):
		return time.Minute, true
	case errors.Is(err, bitrix24.ErrQueryLimitExceeded), errors.Is(err, bitrix24.ErrOperationTimeLimit):
		return time.Minute, true
	}
	// OVERLOAD_LIMIT is not among them: Bitrix24's support blocks a portal's
	// REST by hand, and it is not to be retried blindly (docs/bitrix24-api.md,
	// "Errors"). The run fails, River's back-off spaces the attempts, and the
	// failures reach "needs attention".
	return 0, false
}

// checkRunnable cancels the job of a portal uninstalled, unconfigured or
// (when active is set) no longer active since the job was queued.
func (s *syncWorkers) checkRunnable(ctx context.Context, portalID int64, active bool) error {
	ok, err := s.runnable(ctx, portalID, active)
	if err != nil {
		return err
	}
	if !ok {
		return river.JobCancel(ErrPortalNotSyncable)
	}
	return nil
}

// runnable asks settings.Syncable; a preview (active unset) also runs
// before activation.
func (s *syncWorkers) runnable(ctx context.Context, portalID int64, active bool) (bool, error) {
	p, err := store.GetPortal(ctx, s.deps.Pool, portalID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check portal %d: %w", portalID, err)
	}
	st, err := settings.Load(ctx, s.deps.Pool, nil, portalID)
	if err != nil {
		return false, fmt.Errorf("check portal %d: %w", portalID, err)
	}
	ok, why := settings.Syncable(p, st)
	return ok || (!active && why == settings.NotActive), nil
}

// recordSuccess clears the portal's health. A run that finished tells
// whether deactivations are held: a held run begins the state, any other
// finished run ends it.
func (s *syncWorkers) recordSuccess(ctx context.Context, portalID int64, rep *syncer.Report) error {
	var held *bool
	if rep != nil && rep.Status != "" && rep.Status != syncer.RunRunning {
		h := rep.Status == syncer.RunHeld
		held = &h
	}
	err := recordHealth(ctx, s.deps.Pool, portalID, held, true, `
		UPDATE portals SET sync_failures = 0, needs_attention = false, last_sync_error = '', updated_at = now()
		WHERE id = $1 AND (sync_failures <> 0 OR needs_attention)`, portalID)
	if err != nil {
		return fmt.Errorf("record sync success: %w", err)
	}
	return nil
}

// maxSyncErrorBytes bounds the portal's last_sync_error, shown on the
// status panel.
const maxSyncErrorBytes = 1000

// recordFailure counts a failed attempt and owns the "needs attention"
// rule: the configured number of failures in a row (3) marks the portal, as
// most failures (an outage, a timeout) may pass by themselves, and River's
// retries reach that number within minutes. Refused Learn credentials mark
// it at the first failure: they never fix themselves, and their job is not
// retried (noRetryOfRefusedAnswers), so counting would wait for three
// scheduled slots, days. The mark stays until a success clears it. Only a
// scheduled run's failure begins the alert e-mail (run).
func (s *syncWorkers) recordFailure(ctx context.Context, portalID int64, cause error, scheduled bool) error {
	limit := s.deps.FailuresBeforeAttention
	if limit <= 0 {
		limit = 3
	}
	// Tokens Bitrix24 will never accept again stop the portal's syncs until
	// an admin opens the app.
	reconnect := tokensRefused(cause)
	// The text may quote what a portal or a Learn server sent: PostgreSQL
	// refuses a NUL or a bad byte, and the failure would go unrecorded.
	err := recordHealth(ctx, s.deps.Pool, portalID, nil, scheduled, `
		UPDATE portals SET sync_failures = sync_failures + 1,
		       needs_attention = needs_attention OR sync_failures + 1 >= $2 OR $5,
		       needs_reconnect = needs_reconnect OR $4,
		       last_sync_error = $3, updated_at = now()
		WHERE id = $1`, portalID, limit, remote.Clip(cause.Error(), maxSyncErrorBytes), reconnect, credentialsRefused(cause))
	if err != nil {
		return fmt.Errorf("record sync failure: %w", err)
	}
	return nil
}

// tokensRefused reports whether err says Bitrix24 will never accept the
// portal's tokens again (app removed, access revoked, unpaid, refresh token
// dead).
func tokensRefused(err error) bool {
	return bitrix24.IsPermanentAuthError(err) || errors.Is(err, bitrix24.ErrNeedsReconnect)
}

// recordHealth runs the health update and observes the portal's alert
// states in one transaction, so an alert e-mail is queued exactly when the
// change is stored. The token refresh that finds the access gone sets
// needs_reconnect in a transaction of its own; the failed run that follows
// observes it here. beginAttention says whether a "needs attention" the
// row shows may begin that alert: only a scheduled run's failure may
// (run); the others end it when the row is clear, and otherwise leave it
// as it is.
func recordHealth(ctx context.Context, pool *pgxpool.Pool, portalID int64, held *bool, beginAttention bool, update string,
	args ...any,
) error {
	ins, cerr := river.ClientFromContextSafely[pgx.Tx](ctx)
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, update, args...); err != nil {
			return err
		}
		if cerr != nil {
			// Outside River (a test calling the worker directly) there is no
			// queue for the e-mail; the health is still kept.
			return nil
		}
		var o alert.Observed
		o.Held = held
		p, err := store.GetPortal(ctx, tx, portalID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read portal health: %w", err)
		}
		attention := p.NeedsAttention
		o.Reconnect = p.NeedsReconnect
		if !attention || beginAttention {
			o.Attention = &attention
		}
		if !o.Reconnect {
			// Tokens that work end a scheduled erase (retention.go).
			o.EraseScheduled = new(bool)
		}
		return alert.Observe(ctx, tx, ins, portalID, o)
	})
}

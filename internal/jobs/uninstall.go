package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"b24learn/internal/alert"
	"b24learn/internal/connect"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/manager"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// UninstallCheckArgs asks Bitrix24 again about an uninstall event that could
// not be confirmed when it arrived (Bitrix24 unreachable). The args name the
// event, not the portal: a confirmed uninstall cancels every job naming the
// portal, and this one must not cancel itself.
type UninstallCheckArgs struct {
	EventID int64 `json:"event_id" river:"unique"`
}

func (UninstallCheckArgs) Kind() string { return "uninstall_check" }

// The window (uninstall.RetryWindow) ends the retries; MaxAttempts is only
// a backstop above the attempts the backoff fits into it.
func (UninstallCheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.PortalCalls, MaxAttempts: 30, UniqueOpts: queues.WaitingOnce()}
}

// UninstallCheckWorker settles pending uninstall events: confirmed, it acts
// on the event; refuted, or still unanswered past the retry window, the
// event changes nothing.
type UninstallCheckWorker struct {
	river.WorkerDefaults[UninstallCheckArgs]
	Pool    *pgxpool.Pool
	Clients *connect.Factory
	Log     *slog.Logger
	Now     func() time.Time
}

// NewUninstallCheckWorker builds the worker; clients is the portal clients'
// factory shared with the syncs.
func NewUninstallCheckWorker(pool *pgxpool.Pool, clients *connect.Factory, log *slog.Logger) *UninstallCheckWorker {
	return &UninstallCheckWorker{Pool: pool, Clients: clients, Log: log, Now: time.Now}
}

// NextRetry backs off from 30 s, doubling up to 30 min: about a dozen
// attempts in the six-hour window.
func (w *UninstallCheckWorker) NextRetry(job *river.Job[UninstallCheckArgs]) time.Time {
	d := 30 * time.Second
	for i := 1; i < job.Attempt && d < 30*time.Minute; i++ {
		d *= 2
	}
	return w.Now().Add(min(d, 30*time.Minute))
}

func (w *UninstallCheckWorker) Timeout(*river.Job[UninstallCheckArgs]) time.Duration {
	return uninstall.AskTimeout + 15*time.Second
}

var errUnanswered = errors.New("bitrix24 did not answer the uninstall check")

func (w *UninstallCheckWorker) Work(ctx context.Context, job *river.Job[UninstallCheckArgs]) error {
	id := job.Args.EventID
	ev, found, err := w.pending(ctx, id)
	if err != nil || !found {
		return err
	}
	p, err := store.GetPortal(ctx, w.Pool, ev.PortalID)
	if err != nil {
		return fmt.Errorf("uninstall check: %w", err)
	}
	if !p.Installed() {
		// Another, confirmed event uninstalled the portal meanwhile.
		return uninstall.ResolveUninstalled(ctx, w.Pool, ev)
	}
	verdict, reason := uninstall.Ask(ctx, w.Clients, ev.PortalID)
	switch verdict {
	case uninstall.Confirmed, uninstall.TokensRefused:
		err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
			if _, found, err := uninstall.LockPending(ctx, tx, id); err != nil || !found {
				return err
			}
			lp, err := store.LockPortalByMemberID(ctx, tx, p.MemberID)
			if err != nil {
				return err
			}
			if !lp.Installed() {
				return uninstall.ResolveUninstalled(ctx, tx, ev)
			}
			if lp.InstallGeneration != p.InstallGeneration {
				// Bitrix24 answered about the installation the app was
				// removed from, not the one installed since.
				return uninstall.Resolve(ctx, tx, id, uninstall.StateExpired, uninstall.ReasonReinstalled)
			}
			// Judged as when the event came: a retry may run up to
			// RetryWindow later, by when a refusal that began with the
			// uninstall looks long.
			if runs, err := uninstall.RefusalRuns(ctx, tx, lp.ID, ev.Clean, verdict, ev.ReceivedAt); err != nil || runs {
				if err != nil {
					return err
				}
				return uninstall.Resolve(ctx, tx, id, uninstall.StateExpired, uninstall.ReasonRefusalRuns)
			}
			// Its deadlines count from now, not from the event: the
			// uninstall is taken now, the admin's e-mail counts the
			// erase's day from it (alert.UninstallPending), and a retry
			// must not shorten the SettleDelay in which an uninstall
			// without CLEAN may still keep the data.
			if err := ConfirmUninstall(ctx, tx, river.ClientFromContext[pgx.Tx](ctx), w.Pool, lp, ev.Clean, verdict); err != nil {
				return err
			}
			return uninstall.Resolve(ctx, tx, id, uninstall.StateConfirmed, reason)
		})
		if err != nil {
			return fmt.Errorf("uninstall check: %w", err)
		}
		w.Log.InfoContext(ctx, "portal uninstalled", "portal_id", p.ID, "clean", ev.Clean, "reason", reason, "event_id", id)
		return nil
	case uninstall.Refuted:
		w.Log.WarnContext(ctx, "unconfirmed uninstall: the app is still installed", "portal_id", p.ID,
			"clean", ev.Clean, "source", ev.SourceIP, "event_id", id)
		return uninstall.Resolve(ctx, w.Pool, id, uninstall.StateRefuted, reason)
	}
	if w.Now().Sub(ev.ReceivedAt) >= uninstall.RetryWindow {
		w.Log.WarnContext(ctx, "unconfirmed uninstall: bitrix24 did not answer in time", "portal_id", p.ID,
			"clean", ev.Clean, "source", ev.SourceIP, "event_id", id, "reason", reason)
		return uninstall.Resolve(ctx, w.Pool, id, uninstall.StateExpired, reason)
	}
	return fmt.Errorf("%w: %s", errUnanswered, reason)
}

func (w *UninstallCheckWorker) pending(ctx context.Context, id int64) (ev uninstall.Event, found bool, err error) {
	err = pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		ev, found, err = uninstall.LockPending(ctx, tx, id)
		return err
	})
	return ev, found, err
}

// ConfirmUninstall acts in tx on an uninstall of portal p (locked) that
// Bitrix24 confirmed: uninstall.Confirm, with a clean uninstall's erase
// deferred. Bitrix24 vouches that the app is gone, not for the event's
// CLEAN flag, so the erase waits uninstall.SettleDelay and is dropped if an
// uninstall without CLEAN comes in meanwhile. When Bitrix24 only refused
// the stored tokens (uninstall.TokensRefused), which an installed portal
// whose period is over also gets, the uninstall, CLEAN or not, keeps the
// tokens for uninstall.EraseDelay, and Bitrix24 is asked again meanwhile
// and at its end: tokens that work again restore the portal
// (UninstallEraseWorker, lapsedPass); at the end a CLEAN uninstall's data
// is erased, and one without CLEAN keeps it and drops the tokens
// (UninstallEraseArgs.Keep). Without that, anyone who has seen the
// application token could stop a lapsed portal's syncs until its admin
// installs the app again. rc may be nil (no River client): jobs are left
// alone, nothing is rechecked, and the data of an uninstall Bitrix24 said
// is gone is erased at once. The erase's delay counts from the uninstall's
// time as stored, by the database's clock, which is also the clock the
// admin's e-mail and River's schedule go by: this host's clock running
// ahead must not bring the erase before the day announced.
func ConfirmUninstall(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx], pool *pgxpool.Pool, p store.Portal, clean bool, v uninstall.Verdict) error {
	var queue uninstall.JobCanceller
	if rc != nil {
		queue = NewQueue(pool, rc)
	}
	recheck := rc != nil && v == uninstall.TokensRefused
	var uninstalledAt time.Time
	var err error
	if recheck {
		uninstalledAt, err = uninstall.ConfirmRefused(ctx, tx, queue, p.ID, clean)
	} else {
		uninstalledAt, err = uninstall.Confirm(ctx, tx, queue, p.ID, clean && rc == nil && v == uninstall.Confirmed)
	}
	if err != nil {
		return err
	}
	if rc == nil || (!clean && !recheck) {
		return nil
	}
	delay := uninstall.SettleDelay
	if recheck {
		delay = uninstall.EraseDelay
	}
	if _, err := rc.InsertTx(ctx, tx, UninstallEraseArgs{PortalID: p.ID, Generation: p.InstallGeneration, Recheck: recheck, Keep: !clean},
		&river.InsertOpts{ScheduledAt: uninstalledAt.Add(delay)}); err != nil {
		return fmt.Errorf("queue deferred erase: %w", err)
	}
	if !recheck {
		// Marked in the same transaction as the job, so the maintenance
		// can queue the erase again if the job is lost (lostErases).
		return store.MarkPortalErasePending(ctx, tx, p.ID)
	}
	// The admin hears of it once: that it is called off if Bitrix24 shows
	// the app working again, and for a CLEAN one the erase's day.
	st := alert.UninstallPending
	if !clean {
		st = alert.UninstallKept
	}
	return alert.Begin(ctx, tx, rc, p.ID, st)
}

// UninstallEraseArgs erases the data of a confirmed clean uninstall, the
// portal's finished River jobs included, after
// uninstall.SettleDelay or uninstall.EraseDelay (ConfirmUninstall), or at
// once for a portal whose tokens were refused past
// uninstall.RefusedRetention (retention.go), unless
// the portal was installed again since (its install generation moved on) or
// an uninstall without CLEAN came in around it. With Keep it ends the
// recheck of an uninstall without CLEAN instead, erasing nothing. The
// hourly maintenance queues it again for a portal still in recheck past
// uninstall.EraseDelay, or still marked erase_pending past
// uninstall.SettleDelay, whose job was lost (lostErases).
type UninstallEraseArgs struct {
	PortalID   int64 `json:"portal_id" river:"unique"`
	Generation int64 `json:"generation" river:"unique"`
	// Retention: queued by the retention of refused portals, which no
	// uninstall event started, so none keeps the data (an event without
	// CLEAN is one any portal user can send).
	Retention bool `json:"retention,omitempty"`
	// Recheck: the uninstall was taken on uninstall.TokensRefused, so
	// Bitrix24 is asked again before the erase (uninstall.Recheck).
	Recheck bool `json:"recheck,omitempty"`
	// Keep: the uninstall had no CLEAN, so the end of its recheck keeps
	// the data and drops only the tokens kept to ask with.
	Keep bool `json:"keep,omitempty"`
}

func (UninstallEraseArgs) Kind() string { return "uninstall_erase" }

func (UninstallEraseArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queues.PortalCalls, MaxAttempts: 10, UniqueOpts: queues.WaitingOnce()}
}

// UninstallEraseWorker runs the deferred erases.
type UninstallEraseWorker struct {
	river.WorkerDefaults[UninstallEraseArgs]
	Pool *pgxpool.Pool
	// Clients asks Bitrix24 again before the erase of a Recheck job;
	// without it such a job waits (uninstall.Recheck's Unknown).
	Clients *connect.Factory
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
}

func (w *UninstallEraseWorker) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

// recheckRetry is how long a Recheck job waits after Bitrix24 gave no
// answer: its attempts then span uninstall.RecheckUnanswered.
const recheckRetry = 18 * time.Hour

// NextRetry spaces a Recheck job's attempts by recheckRetry; others keep
// River's backoff.
func (w *UninstallEraseWorker) NextRetry(job *river.Job[UninstallEraseArgs]) time.Time {
	if job.Args.Recheck {
		return w.now().Add(recheckRetry)
	}
	return time.Time{}
}

func (w *UninstallEraseWorker) Timeout(*river.Job[UninstallEraseArgs]) time.Duration {
	return uninstall.AskTimeout + time.Minute
}

func (w *UninstallEraseWorker) Work(ctx context.Context, job *river.Job[UninstallEraseArgs]) error {
	a := job.Args
	if a.Recheck {
		if done, err := w.recheck(ctx, job); done || err != nil {
			return err
		}
	}
	erased, keptByEvent, ended := false, false, false
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		p, err := store.LockPortal(ctx, tx, a.PortalID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if a.installedAgain(p) {
			return nil
		}
		// An uninstall without CLEAN around this one: which event was the
		// admin's is not known, and keeping the data is the safe side. The
		// retention's erase has no event's CLEAN to doubt. With Keep this
		// uninstall itself had no CLEAN.
		kept := a.Keep
		if !a.Retention && !kept {
			if kept, err = uninstall.KeptSince(ctx, tx, p.ID, p.UninstalledAt.Add(-uninstall.SettleDelay)); err != nil {
				return err
			}
			keptByEvent = kept
		}
		if kept {
			if !a.Recheck {
				// The data stays: the maintenance must not queue the
				// erase again (lostErases).
				return store.KeepPortalData(ctx, tx, p.ID)
			}
			// The data stays, uninstalled as without CLEAN: so do not the
			// tokens kept for the recheck.
			ended = a.Keep
			if _, err := tx.Exec(ctx, `UPDATE portals SET access_token = NULL, refresh_token = NULL,
				token_expires_at = NULL, uninstall_recheck = false, updated_at = now() WHERE id = $1`, p.ID); err != nil {
				return err
			}
			// The admin was told the syncs resume by themselves, and for a
			// CLEAN uninstall the day of the erase: they are told the app
			// stopped asking, a reinstall is needed and, when an uninstall
			// without CLEAN kept the data, that nothing is erased.
			rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
			switch {
			case err != nil:
				return nil
			case ended:
				return alert.Lapse(ctx, tx, rc, p.ID, alert.UninstallKept)
			}
			return alert.Lapse(ctx, tx, rc, p.ID, alert.UninstallPending)
		}
		erased = true
		if a.Recheck {
			w.Log.InfoContext(ctx, "deferred erase: bitrix24 still refuses the tokens or the portal is gone", "portal_id", p.ID)
		}
		if err := store.ErasePortalData(ctx, tx, p.ID); err != nil {
			return err
		}
		return deletePortalJobs(ctx, tx, p.ID)
	})
	if err != nil {
		return fmt.Errorf("deferred erase of portal %d: %w", a.PortalID, err)
	}
	if keptByEvent {
		w.Log.WarnContext(ctx, "deferred erase dropped: an uninstall without CLEAN came in around it", "portal_id", a.PortalID)
		return nil
	}
	if ended {
		w.Log.InfoContext(ctx, "recheck of an uninstall without CLEAN ended: bitrix24 still refuses the tokens or the portal is gone; the data is kept",
			"portal_id", a.PortalID)
		return nil
	}
	w.Log.InfoContext(ctx, "deferred erase of an uninstalled portal", "portal_id", a.PortalID, "erased", erased)
	return nil
}

// installedAgain reports whether portal p was installed again since the
// uninstall this erase is for: the portal's data is its own again, and the
// erase does nothing.
func (a UninstallEraseArgs) installedAgain(p store.Portal) bool {
	return p.Installed() || p.InstallGeneration != a.Generation
}

// deletePortalJobs deletes the erased portal's finished River jobs through
// the River client working this job; without one (Work called outside
// River) there is none to ask, and River's retention removes them later.
func deletePortalJobs(ctx context.Context, tx pgx.Tx, portalID int64) error {
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil
	}
	return NewQueue(tx, rc).DeletePortalJobs(ctx, tx, portalID)
}

// recheck asks Bitrix24 again before the erase of an uninstall taken on
// refused tokens. done reports the job finished without the erase: the
// portal installed again or restored; an error (no answer yet) has River
// try again after recheckRetry. Otherwise the erase goes ahead.
func (w *UninstallEraseWorker) recheck(ctx context.Context, job *river.Job[UninstallEraseArgs]) (done bool, err error) {
	a := job.Args
	p, err := store.GetPortal(ctx, w.Pool, a.PortalID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("deferred erase of portal %d: %w", a.PortalID, err)
	}
	if a.installedAgain(p) {
		return true, nil
	}
	v, reason := uninstall.Unknown, "no bitrix24 client"
	if w.Clients != nil {
		v, reason = uninstall.AskAgain(ctx, w.Clients, p.ID)
	}
	now := w.now()
	last := job.JobRow != nil && job.MaxAttempts > 0 && job.Attempt >= job.MaxAttempts
	switch uninstall.Recheck(v, p.UninstalledAt, now, true) {
	case uninstall.RecheckRestore:
		if err := restoreLapsed(ctx, w.Pool, p, reason, now); err != nil {
			return false, err
		}
		w.Log.InfoContext(ctx, "deferred erase dropped: bitrix24 accepts the tokens again; the portal is restored", "portal_id", p.ID)
		return true, nil
	case uninstall.RecheckWait:
		if !last {
			w.Log.WarnContext(ctx, "deferred erase waits: bitrix24 did not answer", "portal_id", p.ID, "reason", reason)
			return false, fmt.Errorf("%w: %s", errUnanswered, reason)
		}
		// The job's last attempt: its attempts span about
		// uninstall.RecheckUnanswered, and no answer must not keep the
		// data for ever.
	}
	return false, nil
}

// restoreLapsed restores portal p, uninstalled on refused tokens, whose
// tokens Bitrix24 accepts again with the app installed (uninstall.Restore),
// and writes it in the managers' audit trail.
func restoreLapsed(ctx context.Context, pool *pgxpool.Pool, p store.Portal, reason string, now time.Time) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		lp, err := store.LockPortal(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		// p, not lp: Bitrix24 was asked about p's install generation, and an
		// install and uninstall since then are not what it answered about.
		restored, err := uninstall.Restore(ctx, tx, p)
		if err != nil || !restored {
			return err
		}
		if rc, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
			for _, st := range []alert.State{alert.UninstallPending, alert.UninstallKept} {
				if err := alert.End(ctx, tx, rc, p.ID, st); err != nil {
					return err
				}
			}
		}
		return manager.Audit(ctx, tx, manager.AuditEntry{ManagerEmail: retentionActor, Action: UninstallRefutedAction,
			PortalID: p.ID, PortalDomain: lp.Domain, At: now,
			Note: "uninstall on refused tokens undone: " + reason})
	})
	if err != nil {
		return fmt.Errorf("restore portal %d: %w", p.ID, err)
	}
	return nil
}

// UninstallRefutedAction is the audit trail's action of a portal restored
// because Bitrix24 accepted its tokens again after an uninstall taken on
// their refusal; its note is the app's own words (store keeps it on erase).
const UninstallRefutedAction = "uninstall_refuted"

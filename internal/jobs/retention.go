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

// The retention of portals whose Bitrix24 tokens are refused. ONAPPUNINSTALL
// is sent once; when it is lost, the portal stays "installed" with tokens
// Bitrix24 refuses, flagged "needs reconnect", and nothing else would ever
// happen to its data. So the hourly maintenance takes the portals whose
// tokens have been refused without a break (portals.tokens_refused_at, kept
// by a trigger from needs_reconnect) for uninstall.RefusedRetention and
// erases them as a confirmed clean uninstall is erased: uninstall.Confirm
// stops the jobs and marks the portal uninstalled, and the one erase job
// (UninstallEraseWorker) erases the data. uninstall.RefusedWarning before
// that, the admin is alerted (alert.EraseScheduled) and the console shows
// the day. Before acting, Bitrix24 is asked once more on the stored tokens:
// if they work again, the refusal ends and nothing is erased. Only Bitrix24's
// refusal of the app's own stored tokens starts or keeps the clock, so no
// request from outside can start or speed it.
const (
	// retentionPerPass bounds a pass's Bitrix24 checks and erases.
	retentionPerPass = 20
	// retentionPassBudget bounds a whole pass; the rest wait an hour.
	retentionPassBudget = 3 * time.Minute
	// retentionRetryAfter is how long a portal waits after a check
	// Bitrix24 did not answer, so such portals cannot hold every place of
	// a pass.
	retentionRetryAfter = 6 * time.Hour
	// retentionActor is the audit trail's name for the maintenance.
	retentionActor = "maintenance (hourly job)"
)

// refusedRetention warns about and erases portals refused for too long.
type refusedRetention struct {
	pool    *pgxpool.Pool
	clients *connect.Factory
	log     *slog.Logger
	perPass int // 0: retentionPerPass
}

// refusedPortal is a portal a pass claimed.
type refusedPortal struct {
	id        int64
	refusedAt time.Time
	warnedAt  time.Time // zero while not warned
}

// refusedNow is the SQL condition of a portal the retention is for: still
// installed, its tokens refused by Bitrix24 since a recorded start.
const refusedNow = `install_state = 'installed' AND needs_reconnect AND tokens_refused_at IS NOT NULL`

// scanRefused reads a refusedPortal from its id, tokens_refused_at and
// erase_warned_at.
func scanRefused(row pgx.Row) (refusedPortal, error) {
	var p refusedPortal
	var warned *time.Time
	err := row.Scan(&p.id, &p.refusedAt, &warned)
	if warned != nil {
		p.warnedAt = *warned
	}
	return p, err
}

// limit is how many portals a pass claims.
func (r *refusedRetention) limit() int {
	if r.perPass <= 0 {
		return retentionPerPass
	}
	return r.perPass
}

// pass checks the portals due for a warning or an erase, oldest refusal
// first, and returns how many it erased. One portal's failure is logged and
// does not end the pass. It needs the River client working the maintenance
// job (the alert and the erase are jobs); without one it does nothing.
func (r *refusedRetention) pass(ctx context.Context, now time.Time) (int, error) {
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return 0, nil
	}
	due, err := r.due(ctx, r.pool, now)
	if err != nil {
		return 0, err
	}
	portalID := func(p refusedPortal) int64 { return p.id }
	return eachClaimed(ctx, r.log, "data retention", retentionPassBudget, due, portalID, func(ctx context.Context, p refusedPortal) bool {
		erased, err := r.one(ctx, rc, p, now)
		if err != nil {
			r.log.WarnContext(ctx, "data retention: portal not handled; tried again later", "portal_id", p.id, "error", err)
			return false
		}
		return erased
	}), nil
}

// due claims the installed portals whose refusal reached the warning and
// that were not warned, or that were warned and reached the erase
// (uninstall.RefusedEraseAt), marking them checked so that another pass
// does not take them again before retentionRetryAfter.
func (r *refusedRetention) due(ctx context.Context, db store.DBTX, now time.Time) ([]refusedPortal, error) {
	return store.QueryAll(ctx, db, "data retention: claim portals", scanRefused, `
		WITH due AS (
			SELECT id FROM portals
			WHERE `+refusedNow+`
			  AND ((erase_warned_at IS NULL AND tokens_refused_at <= $3)
				OR (tokens_refused_at <= $2 AND erase_warned_at <= $6))
			  AND (retention_checked_at IS NULL OR retention_checked_at < $4)
			ORDER BY tokens_refused_at, id
			LIMIT $5
			FOR UPDATE SKIP LOCKED)
		UPDATE portals p SET retention_checked_at = $1 FROM due WHERE p.id = due.id
		RETURNING p.id, p.tokens_refused_at, p.erase_warned_at`,
		now, now.Add(-uninstall.RefusedRetention), now.Add(-uninstall.RefusedRetention+uninstall.RefusedWarning),
		now.Add(-retentionRetryAfter), r.limit(), now.Add(-uninstall.RefusedWarning))
}

// refused reads portal id as refusedRetention.due claimed it; found is false
// when it is no longer installed with its tokens refused (an admin opened
// the app, or it was uninstalled, since the claim).
func (r *refusedRetention) refused(ctx context.Context, id int64) (p refusedPortal, found bool, err error) {
	p, err = scanRefused(r.pool.QueryRow(ctx, `SELECT id, tokens_refused_at, erase_warned_at FROM portals
		WHERE id = $1 AND `+refusedNow, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("data retention: read portal %d: %w", id, err)
	}
	return p, true, nil
}

// one asks Bitrix24 about the portal's stored tokens and acts on the
// answer: tokens that work end the refusal; otherwise the admin is warned
// first, and the erase is queued when it is due (when Bitrix24 did not
// answer, only RefusedUnanswered later). erased reports an erase queued.
func (r *refusedRetention) one(ctx context.Context, rc *river.Client[pgx.Tx], p refusedPortal, now time.Time) (erased bool, err error) {
	verdict, reason := uninstall.Ask(ctx, r.clients, p.id)
	log := r.log.With("portal_id", p.id, "refused_since", p.refusedAt, "bitrix24", reason)
	if verdict == uninstall.Refuted {
		// The refresh that worked cleared the flag already; this also
		// ends the alerts when the call needed no refresh.
		err := recordHealth(ctx, r.pool, p.id, nil, false,
			`UPDATE portals SET needs_reconnect = false, updated_at = now() WHERE id = $1`, p.id)
		if err != nil {
			return false, fmt.Errorf("end the refusal: %w", err)
		}
		log.InfoContext(ctx, "data retention: bitrix24 accepts the tokens again; nothing is erased")
		return false, nil
	}
	eraseAt := uninstall.RefusedEraseAt(p.refusedAt, p.warnedAt)
	if verdict == uninstall.Unknown {
		eraseAt = eraseAt.Add(uninstall.RefusedUnanswered)
	}
	warned := !p.warnedAt.IsZero()
	erase := warned && !now.Before(eraseAt)
	if !erase && warned {
		return false, nil // warned; Bitrix24 did not answer, the erase waits
	}
	if !warned && now.Before(p.refusedAt.Add(uninstall.RefusedRetention-uninstall.RefusedWarning)) {
		// Claimed for an older refusal; an admin's open ended it and a new
		// one began before this check ran: its warning is not due yet.
		return false, nil
	}
	acted := false
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var (
			installed, reconnect bool
			refusedAt            *time.Time
			domain               string
			generation           int64
		)
		err := tx.QueryRow(ctx, `SELECT install_state = 'installed', needs_reconnect, tokens_refused_at, domain, install_generation
			FROM portals WHERE id = $1 FOR UPDATE`, p.id).Scan(&installed, &reconnect, &refusedAt, &domain, &generation)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock portal: %w", err)
		}
		if !installed {
			erase = false
			return nil // uninstalled meanwhile: the uninstall's own rules apply
		}
		if !reconnect || refusedAt == nil || !refusedAt.Equal(p.refusedAt) {
			if verdict != uninstall.Confirmed {
				erase = false
				return nil // an admin opened the app meanwhile: a new start
			}
			// app.info said the app is not installed on tokens that work:
			// the access is gone for good, and the refusal stands from
			// its start.
			if _, err := tx.Exec(ctx, `UPDATE portals SET needs_reconnect = true, tokens_refused_at = $2 WHERE id = $1`,
				p.id, p.refusedAt); err != nil {
				return fmt.Errorf("restore the refusal: %w", err)
			}
		}
		acted = true
		if !erase {
			if _, err := tx.Exec(ctx, `UPDATE portals SET erase_warned_at = $2 WHERE id = $1`, p.id, now); err != nil {
				return fmt.Errorf("record the warning: %w", err)
			}
			return alert.Begin(ctx, tx, rc, p.id, alert.EraseScheduled)
		}
		if _, err := uninstall.Confirm(ctx, tx, NewQueue(r.pool, rc), p.id, false); err != nil {
			return err
		}
		if _, err := rc.InsertTx(ctx, tx, UninstallEraseArgs{PortalID: p.id, Generation: generation, Retention: true}, nil); err != nil {
			return fmt.Errorf("queue the erase: %w", err)
		}
		// Marked with the job, so the maintenance queues the erase again,
		// as the retention's, if the job is lost (lostErases).
		if err := store.MarkPortalRetentionErasePending(ctx, tx, p.id); err != nil {
			return err
		}
		return manager.Audit(ctx, tx, manager.AuditEntry{ManagerEmail: retentionActor, Action: RetentionEraseAction,
			PortalID: p.id, PortalDomain: domain, At: now,
			Note: "Bitrix24 refused the tokens since " + p.refusedAt.UTC().Format("2006-01-02 15:04 UTC")})
	})
	if err != nil {
		return false, fmt.Errorf("data retention of portal %d: %w", p.id, err)
	}
	switch {
	case !acted:
		log.InfoContext(ctx, "data retention: the portal changed meanwhile; nothing done")
	case erase:
		log.InfoContext(ctx, "data retention: the portal is taken as uninstalled; its data is erased")
	default:
		log.InfoContext(ctx, "data retention: the admin is warned of the erase",
			"erase_on", uninstall.RefusedEraseAt(p.refusedAt, now))
	}
	return erase && acted, nil
}

// RetentionEraseAction is the audit trail's action of an erase by the
// retention; its note is the app's own words (store keeps it on erase).
const RetentionEraseAction = "retention_erase"

// lapsedRetryAfter is how long a portal uninstalled on refused tokens waits
// between two checks of lapsedPass: about one each hourly pass.
const lapsedRetryAfter = 50 * time.Minute

// lapsedPass asks Bitrix24 again about the portals uninstalled by a CLEAN
// event on refused tokens whose erase still waits (ConfirmUninstall), and
// restores those whose tokens work again with the app installed, so a
// portal whose payment lapsed for a while gets its syncs back without its
// admin opening the app. A refusal or no answer changes nothing: the erase
// asks once more (UninstallEraseWorker). It returns how many it restored.
func (r *refusedRetention) lapsedPass(ctx context.Context, now time.Time) (int, error) {
	ids, err := r.lapsedDue(ctx, r.pool, now)
	if err != nil {
		return 0, err
	}
	return eachClaimed(ctx, r.log, "lapsed uninstalls", retentionPassBudget, ids, func(id int64) int64 { return id },
		func(ctx context.Context, id int64) bool { return r.lapsedOne(ctx, id, now) }), nil
}

// lapsedDue claims the portals lapsedPass checks, marking them checked so
// that another pass does not take them again before lapsedRetryAfter.
func (r *refusedRetention) lapsedDue(ctx context.Context, db store.DBTX, now time.Time) ([]int64, error) {
	return store.QueryAll(ctx, db, "lapsed uninstalls: claim portals", func(row pgx.Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `
		WITH due AS (
			SELECT id FROM portals
			WHERE install_state = 'uninstalled' AND uninstall_recheck
			  AND (retention_checked_at IS NULL OR retention_checked_at < $2)
			ORDER BY retention_checked_at NULLS FIRST, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE portals p SET retention_checked_at = $1 FROM due WHERE p.id = due.id
		RETURNING p.id`, now, now.Add(-lapsedRetryAfter), r.limit())
}

// lapsedOne asks Bitrix24 about one portal lapsedDue claimed and restores
// it when its tokens work again; it reports whether it did. Failures are
// logged.
func (r *refusedRetention) lapsedOne(ctx context.Context, id int64, now time.Time) bool {
	p, err := store.GetPortal(ctx, r.pool, id)
	if err != nil {
		r.log.WarnContext(ctx, "lapsed uninstalls: portal not checked", "portal_id", id, "error", err)
		return false
	}
	v, reason := uninstall.AskAgain(ctx, r.clients, id)
	if uninstall.Recheck(v, p.UninstalledAt, now, false) != uninstall.RecheckRestore {
		return false
	}
	if err := restoreLapsed(ctx, r.pool, p, reason, now); err != nil {
		r.log.WarnContext(ctx, "lapsed uninstalls: portal not restored", "portal_id", id, "error", err)
		return false
	}
	r.log.InfoContext(ctx, "bitrix24 accepts the tokens of a portal uninstalled on their refusal; the portal is restored",
		"portal_id", id)
	return true
}

// lostErases queues again the lost erase jobs of uninstalled portals: the
// end of a recheck (UninstallEraseArgs with Recheck, and Keep for an
// uninstall without CLEAN) of the portals still in recheck past
// uninstall.EraseDelay, and the erase of the portals whose CLEAN uninstall
// Bitrix24 confirmed (erase_pending, set with the job in ConfirmUninstall)
// still waiting past uninstall.SettleDelay, the data retention's erase
// included (erase_retention, queued again with Retention), when no job for their install
// generation is waiting or running any more: deleted or cancelled from the
// River UI, discarded after its attempts, or never stored by a version
// before it. Only the job ends the wait, and without it the portal would
// keep its data (and, in recheck, its tokens) for ever. An uninstall
// without CLEAN that is not in recheck has nothing to end: it keeps the
// data by design, and so does a CLEAN one whose erase was dropped
// (erase_pending cleared). A job still waiting (a Recheck job retries for
// uninstall.RecheckUnanswered) is left alone, and the insert's uniqueness
// (queues.WaitingOnce) skips one a concurrent pass queued. The job carries
// the portal's install generation, so a portal restored or installed again
// meanwhile erases nothing (UninstallEraseWorker). The waits are counted by
// the database's clock, which dated the uninstall and the admin's e-mail:
// a job queued here runs at once, so this host's clock running ahead must
// not bring it before the announced day. It returns how many it queued.
func (r *refusedRetention) lostErases(ctx context.Context, tx pgx.Tx, rc *river.Client[pgx.Tx]) (int, error) {
	limit := r.limit()
	lost, err := store.QueryAll(ctx, tx, "lost erases: find portals", func(row pgx.Row) (UninstallEraseArgs, error) {
		var a UninstallEraseArgs
		var clean, retention bool
		err := row.Scan(&a.PortalID, &a.Generation, &a.Recheck, &clean, &retention)
		a.Keep = a.Recheck && !clean
		a.Retention = retention && !a.Recheck
		return a, err
	}, `
		SELECT p.id, p.install_generation, p.uninstall_recheck, p.uninstall_clean, p.erase_pending AND p.erase_retention FROM portals p
		WHERE p.install_state = 'uninstalled'
		  AND ((p.uninstall_recheck AND p.uninstalled_at <= now() - $1::interval) OR (p.erase_pending AND p.uninstalled_at <= now() - $5::interval))
		  AND NOT `+unfinishedJobSQL("$2", "$3", "p.id", "p.install_generation")+`
		ORDER BY p.uninstalled_at, p.id
		LIMIT $4`, uninstall.EraseDelay, UninstallEraseArgs{}.Kind(), stateNames(queues.Unfinished()), limit, uninstall.SettleDelay)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, a := range lost {
		res, err := rc.InsertTx(ctx, tx, a, nil)
		if err != nil {
			return queued, fmt.Errorf("queue the lost erase of portal %d: %w", a.PortalID, err)
		}
		if !res.UniqueSkippedAsDuplicate {
			queued++
			r.log.WarnContext(ctx, "lost erases: an uninstalled portal's erase had no job; queued again", "portal_id", a.PortalID,
				"generation", a.Generation, "recheck", a.Recheck, "keep", a.Keep, "retention", a.Retention)
		}
	}
	return queued, nil
}

package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// uninstallConfirmed removes the app from the portal in the simulator and
// takes the uninstall, CLEAN or not, as the events handler does when
// Bitrix24 confirms the app is gone (uninstall.Confirmed). It returns the
// deferred erase job it queued, 0 when none (scheduled uninstall.SettleDelay
// ahead).
func (b *retentionBundle) uninstallConfirmed(t *testing.T, id int64, clean bool) int64 {
	t.Helper()
	ctx := context.Background()
	var jobID int64
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := store.LockPortal(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := ConfirmUninstall(ctx, tx, b.rc, b.pool, p, clean, uninstall.Confirmed); err != nil {
			return err
		}
		if _, err := uninstall.Record(ctx, tx, id, clean, "203.0.113.7", uninstall.StateConfirmed, "PORTAL_DELETED"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM river_job WHERE kind = 'uninstall_erase' AND state = 'scheduled'
			AND (args->>'portal_id')::bigint = $1`, id).Scan(&jobID)
	})
	if err != nil {
		t.Fatal(err)
	}
	return jobID
}

// eraseJobs counts the portal's erase jobs, finished or not.
func (b *retentionBundle) eraseJobs(t *testing.T, id int64) (unfinished, all int) {
	t.Helper()
	if err := b.pool.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE state NOT IN ('completed', 'cancelled', 'discarded')), count(*)
		FROM river_job WHERE kind = 'uninstall_erase' AND (args->>'portal_id')::bigint = $1`, id).Scan(&unfinished, &all); err != nil {
		t.Fatal(err)
	}
	return unfinished, all
}

// The erase of a CLEAN uninstall that Bitrix24 confirmed is queued once,
// uninstall.SettleDelay ahead. When that job is lost (deleted or
// cancelled from the River UI, discarded after its attempts), the hourly
// maintenance queues it again once the delay is over, not before, and the
// portal's data goes.
func TestLostEraseOfAConfirmedCleanUninstallIsQueuedAgain(t *testing.T) {
	t.Parallel()
	for name, loseJob := range lostJob() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			bp.Uninstall(context.Background(), true)
			jobID := b.uninstallConfirmed(t, id, true)
			if jobID == 0 {
				t.Fatal("a confirmed CLEAN uninstall queued no erase")
			}
			loseJob(b, t, jobID)
			b.maintain(t)
			if b.erased(t, id) {
				t.Fatal("erased before uninstall.SettleDelay")
			}
			if n, _ := b.eraseJobs(t, id); n != 0 {
				t.Fatalf("%d erase jobs queued before uninstall.SettleDelay, want none", n)
			}
			b.uninstalledEarlier(t, time.Hour, id)
			b.advance(t, time.Hour)
			if !b.erased(t, id) {
				t.Fatal("a confirmed CLEAN uninstall whose erase job was lost is never erased")
			}
			var pending, token bool
			if err := b.pool.QueryRow(context.Background(), `SELECT erase_pending, application_token IS NOT NULL
				FROM portals WHERE id = $1`, id).Scan(&pending, &token); err != nil {
				t.Fatal(err)
			}
			if pending || token {
				t.Fatalf("after the erase: erase_pending %v, application token kept %v; want neither", pending, token)
			}
			_, before := b.eraseJobs(t, id)
			b.advance(t, time.Hour)
			if _, after := b.eraseJobs(t, id); after != before {
				t.Fatalf("an erased portal got another erase job (%d jobs, then %d)", before, after)
			}
		})
	}
}

// lostJob are the ways a River job is lost: deleted or cancelled from the
// River UI, discarded after its attempts.
func lostJob() map[string]func(b *retentionBundle, t *testing.T, jobID int64) {
	return map[string]func(b *retentionBundle, t *testing.T, jobID int64){
		"Deleted": func(b *retentionBundle, t *testing.T, jobID int64) {
			if _, err := b.rc.JobDelete(context.Background(), jobID); err != nil {
				t.Fatal(err)
			}
		},
		"Cancelled": func(b *retentionBundle, t *testing.T, jobID int64) {
			if _, err := b.rc.JobCancel(context.Background(), jobID); err != nil {
				t.Fatal(err)
			}
		},
		"Discarded": func(b *retentionBundle, t *testing.T, jobID int64) {
			if _, err := b.pool.Exec(context.Background(), `UPDATE river_job SET state = 'discarded', finalized_at = now()
				WHERE id = $1`, jobID); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// The sweep that queues a lost erase again leaves alone what must keep its
// data: a portal installed again after the CLEAN uninstall whose job was
// lost, one uninstalled without CLEAN, and one whose CLEAN uninstall was
// followed by an event without CLEAN (the erase job drops the erase, and
// the portal is not queued again hour after hour). A portal whose lost
// erase it does queue shows the sweep ran.
func TestLostEraseSweepKeepsReinstalledAndKeptPortals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	lost, lbp := b.addPortal(t)
	again, abp := b.addPortal(t)
	kept, kbp := b.addPortal(t)
	late, ebp := b.addPortal(t)
	for _, p := range []struct {
		id    int64
		bp    *b24sim.Portal
		clean bool
	}{{lost, lbp, true}, {again, abp, true}, {kept, kbp, false}, {late, ebp, true}} {
		p.bp.Uninstall(ctx, p.clean)
		jobID := b.uninstallConfirmed(t, p.id, p.clean)
		if p.clean != (jobID != 0) {
			t.Fatalf("portal %d (clean %v): erase job %d", p.id, p.clean, jobID)
		}
		if jobID != 0 {
			if _, err := b.rc.JobDelete(ctx, jobID); err != nil {
				t.Fatal(err)
			}
		}
	}
	apptest.InstallPortal(t, b.pool, b.keyring, abp)
	if err := uninstall.RecordKept(ctx, b.pool, late, "198.51.100.9", uninstall.ReasonAlreadyUninstalled, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.uninstalledEarlier(t, time.Hour, lost, again, kept, late)
	b.advance(t, time.Hour)
	if !b.erased(t, lost) {
		t.Fatal("the lost erase was not queued again")
	}
	if b.erased(t, again) || !b.dispatchable(t, again) {
		t.Fatal("a portal installed again after a lost erase was erased")
	}
	for _, id := range []int64{kept, late} {
		var settingsLeft int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM portal_settings WHERE portal_id = $1`, id).Scan(&settingsLeft); err != nil {
			t.Fatal(err)
		}
		if settingsLeft == 0 {
			t.Fatalf("portal %d, whose uninstall keeps the data, was erased", id)
		}
	}
	if _, all := b.eraseJobs(t, again); all != 0 {
		t.Fatalf("the reinstalled portal's lost erase was queued again (%d erase jobs)", all)
	}
	if _, all := b.eraseJobs(t, kept); all != 0 {
		t.Fatalf("the portal uninstalled without CLEAN has %d erase jobs, want none", all)
	}
	_, before := b.eraseJobs(t, late)
	b.advance(t, time.Hour)
	if _, after := b.eraseJobs(t, late); after != before {
		t.Fatalf("a portal whose erase was dropped got another erase job (%d jobs, then %d)", before, after)
	}
}

// A confirmed CLEAN uninstall whose erase job still waits is not queued a
// second time, nor is one whose job is of an older install generation
// mistaken for it: only the lost one is queued.
func TestLostEraseSweepDoesNotQueueAPendingEraseTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	waiting, wbp := b.addPortal(t)
	lost, lbp := b.addPortal(t)
	wbp.Uninstall(ctx, true)
	lbp.Uninstall(ctx, true)
	if b.uninstallConfirmed(t, waiting, true) == 0 {
		t.Fatal("no erase queued")
	}
	jobID := b.uninstallConfirmed(t, lost, true)
	if _, err := b.rc.JobDelete(ctx, jobID); err != nil {
		t.Fatal(err)
	}
	// Both past the delay; the waiting one's job has not run yet (River
	// did not get to it, or it is retrying).
	if _, err := b.pool.Exec(ctx, `UPDATE portals SET uninstalled_at = uninstalled_at - $1::interval WHERE id = ANY($2)`,
		uninstall.SettleDelay+time.Minute, []int64{waiting, lost}); err != nil {
		t.Fatal(err)
	}
	r := &refusedRetention{pool: b.pool, clients: b.clients, log: slog.New(slog.DiscardHandler)}
	for pass := range 2 {
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			n, err := r.lostErases(ctx, tx, b.rc)
			if err == nil && n != 1-pass {
				t.Errorf("pass %d queued %d erases, want %d", pass, n, 1-pass)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, all := b.eraseJobs(t, waiting); n != 1 || all != 1 {
		t.Fatalf("the portal whose erase waits has %d unfinished erase jobs of %d, want its one", n, all)
	}
	if _, all := b.eraseJobs(t, lost); all != 1 {
		t.Fatalf("the portal whose erase was lost has %d erase jobs, want the one queued again", all)
	}
	// The jobs left scheduled are not the test's to wait for.
	if _, err := b.pool.Exec(ctx, `DELETE FROM river_job WHERE kind = 'uninstall_erase'`); err != nil {
		t.Fatal(err)
	}
}

// retentionEraseQueued runs the data retention's erase of a portal refused
// past uninstall.RefusedRetention and warned, as the hourly pass does, on a
// client that only inserts, with the erase queue paused: the erase job
// waits, for the test to lose it (resumeErases). It returns the job.
func (b *retentionBundle) retentionEraseQueued(t *testing.T, id int64) int64 {
	t.Helper()
	ctx := context.Background()
	now := b.clock.Now()
	p := refusedPortal{id: id, refusedAt: now.Add(-uninstall.RefusedRetention - 30*day), warnedAt: now.Add(-uninstall.RefusedWarning - day)}
	if _, err := b.pool.Exec(ctx, `UPDATE portals SET needs_reconnect = true, tokens_refused_at = $2, erase_warned_at = $3 WHERE id = $1`,
		id, p.refusedAt, p.warnedAt); err != nil {
		t.Fatal(err)
	}
	if err := b.rc.QueuePause(ctx, queues.PortalCalls, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the producer hears of the pause
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := &refusedRetention{pool: b.pool, clients: b.clients, log: slog.New(slog.DiscardHandler)}
	if erased, err := r.one(ctx, rc, p, now); err != nil || !erased {
		t.Fatalf("the retention's erase: queued %v, %v; want queued", erased, err)
	}
	var jobID int64
	if err := b.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM river_job WHERE kind = 'uninstall_erase'
		AND (args->>'portal_id')::bigint = $1 AND (args->>'retention')::boolean`, id).Scan(&jobID); err != nil || jobID == 0 {
		t.Fatalf("no retention erase job (%v)", err)
	}
	return jobID
}

// The data retention's erase of a portal whose tokens Bitrix24 refused too
// long is queued again by the hourly maintenance when its job is lost, as
// the retention's (an uninstall event without CLEAN does not keep the
// data), and the data and application token go. A portal installed again
// meanwhile keeps its data and gets no erase.
func TestLostRetentionEraseIsQueuedAgain(t *testing.T) {
	t.Parallel()
	for name, loseJob := range lostJob() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			again, abp := b.addPortal(t)
			bp.Uninstall(ctx, true) // the events are lost
			abp.Uninstall(ctx, true)
			b.clock.advance(2 * time.Hour)
			for _, p := range []int64{id, again} {
				loseJob(b, t, b.retentionEraseQueued(t, p))
				b.pastEraseDelay(t, p)
			}
			// Anyone can send an event without CLEAN: it must not keep
			// the retention's erase.
			if _, err := uninstall.Record(ctx, b.pool, id, false, "203.0.113.7", uninstall.StateExpired,
				uninstall.ReasonAlreadyUninstalled); err != nil {
				t.Fatal(err)
			}
			apptest.InstallPortal(t, b.pool, b.keyring, abp)
			if err := b.rc.QueueResume(ctx, queues.PortalCalls, nil); err != nil {
				t.Fatal(err)
			}
			_, againBefore := b.eraseJobs(t, again)
			b.advance(t, time.Hour)
			if !b.erased(t, id) {
				t.Fatal("a retention erase whose job was lost is never erased")
			}
			var pending, token bool
			if err := b.pool.QueryRow(ctx, `SELECT erase_pending OR erase_retention, application_token IS NOT NULL
				FROM portals WHERE id = $1`, id).Scan(&pending, &token); err != nil {
				t.Fatal(err)
			}
			if pending || token {
				t.Fatalf("after the erase: erase pending %v, application token kept %v; want neither", pending, token)
			}
			if b.erased(t, again) || !b.dispatchable(t, again) {
				t.Fatal("a portal installed again after a lost retention erase was erased")
			}
			if _, all := b.eraseJobs(t, again); all != againBefore {
				t.Fatalf("the reinstalled portal's lost erase was queued again (%d erase jobs, then %d)", againBefore, all)
			}
			_, before := b.eraseJobs(t, id)
			b.advance(t, time.Hour)
			if _, after := b.eraseJobs(t, id); after != before {
				t.Fatalf("an erased portal got another erase job (%d jobs, then %d)", before, after)
			}
		})
	}
}

// uninstalledEarlier dates the portals' uninstalls back by d: the sweep
// counts its waits by the database's clock, which the test's does not move.
func (b *retentionBundle) uninstalledEarlier(t *testing.T, d time.Duration, ids ...int64) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `UPDATE portals SET uninstalled_at = uninstalled_at - $2::interval
		WHERE id = ANY($1)`, ids, d); err != nil {
		t.Fatal(err)
	}
}

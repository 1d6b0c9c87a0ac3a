package jobs

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// recheckState is what became of a portal uninstalled on refused tokens:
// whether it still waits for a recheck, keeps its tokens, and keeps its
// settings.
func (b *retentionBundle) recheckState(t *testing.T, id int64) (recheck, tokens, settingsKept bool) {
	t.Helper()
	if err := b.pool.QueryRow(context.Background(), `SELECT uninstall_recheck, refresh_token IS NOT NULL,
		EXISTS (SELECT 1 FROM portal_settings WHERE portal_id = $1) FROM portals WHERE id = $1`, id).
		Scan(&recheck, &tokens, &settingsKept); err != nil {
		t.Fatal(err)
	}
	return recheck, tokens, settingsKept
}

// The attacker: an employee who has seen the application token sends
// ONAPPUNINSTALL without CLEAN while the portal's payment has lapsed (or an
// update reopened the installer). The portal stops, but keeps its tokens:
// its admin is told, with no erase date since nothing will be erased, and
// once the tokens work again with the app installed the hourly maintenance
// restores it, syncs and all, without anyone reinstalling the app; the end
// of the recheck then changes nothing.
func TestLapsedUninstallWithoutCleanRestoredByMaintenance(t *testing.T) {
	t.Parallel()
	for name, c := range passingLapses() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			c.lapse(bp)
			end, jobID := b.uninstallAs(t, id, false)
			if _, err := b.pool.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, jobID); err != nil {
				t.Fatal(err)
			}
			if b.dispatchable(t, id) {
				t.Fatal("the uninstalled portal is still dispatched")
			}
			b.advance(t, time.Hour)
			p, err := store.GetPortal(ctx, b.pool, id)
			if err != nil || p.Installed() {
				t.Fatalf("restored while Bitrix24 still refuses: %v %v", p.InstallState, err)
			}
			sent := b.mail.all()
			day := p.UninstalledAt.Add(uninstall.EraseDelay).UTC().Format("2006-01-02")
			if len(sent) != 1 || !strings.Contains(sent[0].Subject, "reported removed") || strings.Contains(sent[0].Body, day) ||
				strings.Contains(sent[0].Body, "erase") || !strings.Contains(sent[0].Body, "30 days") {
				t.Fatalf("e-mails after the uninstall: %+v, want one that names no erase", sent)
			}
			c.mend(bp)
			b.advance(t, time.Hour)
			if !b.dispatchable(t, id) {
				t.Fatal("the portal whose tokens work again gets no syncs")
			}
			if subjects := b.mail.subjects(); len(subjects) != 2 || !strings.Contains(subjects[1], "working again") {
				t.Fatalf("e-mails after the restore: %q, want the all-clear", subjects)
			}
			var refuted int
			if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND NOT clean
				AND state = 'refuted' AND reason = $2`, id, uninstall.ReasonRefutedLate).Scan(&refuted); err != nil || refuted != 1 {
				t.Fatalf("%d events recorded as refuted late (%v), want 1", refuted, err)
			}
			if !end.Recheck || !end.Keep {
				t.Fatalf("the end of the recheck is %+v, want a recheck that keeps the data", end)
			}
			w := &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: slog.New(slog.DiscardHandler)}
			if err := w.Work(ctx, &river.Job[UninstallEraseArgs]{Args: end}); err != nil {
				t.Fatal(err)
			}
			if _, tokens, kept := b.recheckState(t, id); !tokens || !kept || !b.dispatchable(t, id) {
				t.Fatal("the end of the recheck undid the restore")
			}
			if err := callBitrix24(b.clients, id); err != nil {
				t.Fatalf("a call after the restore: %v", err)
			}
		})
	}
}

// A genuine uninstall without CLEAN whose refusal stands: at the end of the
// recheck the portal stays uninstalled with its data kept for a reinstall,
// as any uninstall without CLEAN; only the tokens kept to ask with go.
func TestLapsedUninstallWithoutCleanKeepsTheDataWhenTheRefusalStands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	end, jobID := b.uninstallAs(t, id, false)
	if _, err := b.pool.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, jobID); err != nil {
		t.Fatal(err)
	}
	if !end.Recheck || !end.Keep {
		t.Fatalf("the end of the recheck is %+v, want a recheck that keeps the data", end)
	}
	if recheck, tokens, kept := b.recheckState(t, id); !recheck || !tokens || !kept {
		t.Fatalf("after the uninstall: recheck %v, tokens %v, settings %v; want all kept", recheck, tokens, kept)
	}
	w := &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: slog.New(slog.DiscardHandler)}
	if err := w.Work(ctx, &river.Job[UninstallEraseArgs]{Args: end}); err != nil {
		t.Fatal(err)
	}
	recheck, tokens, kept := b.recheckState(t, id)
	if recheck || tokens || !kept {
		t.Fatalf("after the recheck: recheck %v, tokens %v, settings %v; want the data kept without the tokens", recheck, tokens, kept)
	}
	if p, _ := store.GetPortal(ctx, b.pool, id); p.Installed() || b.dispatchable(t, id) {
		t.Fatal("a confirmed uninstall without CLEAN was undone")
	}
	// The next passes leave it alone: nothing to ask with, nothing to erase.
	b.advance(t, uninstall.EraseDelay+uninstall.RecheckUnanswered)
	if _, _, kept := b.recheckState(t, id); !kept {
		t.Fatal("the data of an uninstall without CLEAN was erased")
	}
}

// The end of a recheck without a restore ends the admin's "reported
// removed" alert: they were told the syncs resume by themselves, and are
// now told the app stopped asking and the app must be installed again.
func TestLapsedUninstallWithoutCleanEndTellsTheAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	_, jobID := b.uninstallAs(t, id, false)
	// The scheduled end keeps maintain waiting: wait for the e-mail alone.
	for deadline := time.Now().Add(time.Minute); len(b.mail.subjects()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if subjects := b.mail.subjects(); len(subjects) != 1 || !strings.Contains(subjects[0], "reported removed") {
		t.Fatalf("e-mails after the uninstall: %q, want the one that says so", subjects)
	}
	// The 30 days are over: River works the end of the recheck now.
	if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE id = $1`, jobID); err != nil {
		t.Fatal(err)
	}
	b.maintain(t)
	if recheck, tokens, kept := b.recheckState(t, id); recheck || tokens || !kept {
		t.Fatalf("after the recheck: recheck %v, tokens %v, settings %v; want the data kept without the tokens", recheck, tokens, kept)
	}
	var active bool
	if err := b.pool.QueryRow(ctx, `SELECT active FROM portal_alerts WHERE portal_id = $1 AND state = 'uninstall_kept'`, id).
		Scan(&active); err != nil || active {
		t.Fatalf("the uninstall-kept alert is still on (%v, %v) after the app stopped asking", active, err)
	}
	sent := b.mail.all()
	if len(sent) != 2 || !strings.Contains(sent[1].Subject, "stopped waiting") || !strings.Contains(sent[1].Body, "install the app") ||
		strings.Contains(sent[1].Subject+sent[1].Body, "working again") {
		t.Fatalf("e-mails after the end of the recheck: %+v, want one saying the app stopped asking", sent)
	}
}

// The job that ends a recheck is its only end. Lost (deleted or cancelled
// from the River UI, discarded after its attempts), the hourly maintenance
// queues it again once the portal is past its 30 days, not before: a CLEAN
// uninstall's data is then erased, and one without CLEAN keeps its data and
// drops the tokens.
func TestLostEndOfARecheckIsQueuedAgain(t *testing.T) {
	t.Parallel()
	for name, loseJob := range lostJob() {
		for _, clean := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "Clean", false: "WithoutClean"}[clean], func(t *testing.T) {
				t.Parallel()
				b := setupRetention(t)
				id, bp := b.addPortal(t)
				bp.SetLapse(b24sim.LapseUnpaid)
				_, jobID := b.uninstallAs(t, id, clean)
				loseJob(b, t, jobID)
				b.advance(t, time.Hour)
				if recheck, _, kept := b.recheckState(t, id); !recheck || !kept {
					t.Fatal("the recheck ended before its 30 days")
				}
				// 30 days on (the database dates the uninstall by its own clock).
				b.pastEraseDelay(t, id)
				b.maintain(t)
				recheck, tokens, kept := b.recheckState(t, id)
				switch {
				case recheck || tokens:
					t.Fatal("a recheck whose job was lost never ends: tokens kept past the 30 days")
				case clean && !b.erased(t, id):
					t.Fatal("a CLEAN uninstall whose erase was lost is never erased")
				case !clean && !kept:
					t.Fatal("the data of an uninstall without CLEAN was erased")
				}
			})
		}
	}
}

// A lost erase is queued again only for the install generation it would
// have erased: a portal restored (Bitrix24 accepts the tokens again) or
// installed again before the maintenance comes round keeps its data, and so
// does one restored between the queueing and the job.
func TestLostEraseDoesNotEraseARestoredOrReinstalledPortal(t *testing.T) {
	t.Parallel()
	for name, back := range map[string]func(b *retentionBundle, t *testing.T, bp *b24sim.Portal, id int64){
		"Restored": func(b *retentionBundle, t *testing.T, bp *b24sim.Portal, id int64) {
			bp.SetLapse(b24sim.LapseNone)
		},
		"Reinstalled": func(b *retentionBundle, t *testing.T, bp *b24sim.Portal, id int64) {
			bp.SetLapse(b24sim.LapseNone)
			apptest.InstallPortal(t, b.pool, b.keyring, bp)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			bp.SetLapse(b24sim.LapseUnpaid)
			b.uninstallOnAsk(t, id)
			b.pastEraseDelay(t, id)
			back(b, t, bp, id)
			b.maintain(t)
			if b.erased(t, id) || !b.dispatchable(t, id) {
				t.Fatal("a portal working again was erased by the lost erase queued again")
			}
		})
	}
	t.Run("RestoredAfterTheQueueing", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := setupRetention(t)
		id, bp := b.addPortal(t)
		bp.SetLapse(b24sim.LapseUnpaid)
		b.uninstallOnAsk(t, id)
		b.pastEraseDelay(t, id)
		// The maintenance queues the erase; it is taken out of River's
		// hands so that it runs only after the restore.
		r := &refusedRetention{pool: b.pool, clients: b.clients, log: slog.New(slog.DiscardHandler)}
		var queued UninstallEraseArgs
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if n, err := r.lostErases(ctx, tx, b.rc); err != nil || n != 1 {
				t.Errorf("lost erases queued %d (%v), want 1", n, err)
				return err
			}
			return tx.QueryRow(ctx, `DELETE FROM river_job WHERE kind = 'uninstall_erase' AND (args->>'portal_id')::bigint = $1
				RETURNING (args->>'generation')::bigint, coalesce((args->>'recheck')::bool, false), coalesce((args->>'keep')::bool, false)`,
				id).Scan(&queued.Generation, &queued.Recheck, &queued.Keep)
		})
		if err != nil {
			t.Fatal(err)
		}
		queued.PortalID = id
		bp.SetLapse(b24sim.LapseNone)
		b.advance(t, time.Hour) // the hourly check restores it
		if !b.dispatchable(t, id) {
			t.Fatal("the portal was not restored")
		}
		bp.SetLapse(b24sim.LapseUnpaid) // and lapses again before the queued erase runs
		w := &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: slog.New(slog.DiscardHandler)}
		if err := w.Work(ctx, &river.Job[UninstallEraseArgs]{Args: queued}); err != nil {
			t.Fatal(err)
		}
		if b.erased(t, id) {
			t.Fatal("an erase queued before the restore erased the restored portal")
		}
	})
}

// A CLEAN uninstall taken on refused tokens told the admin the day of the
// erase. An uninstall without CLEAN around it keeps the data: the end of
// the recheck erases nothing, ends that alert and tells the admin the data
// stays and the app must be installed again.
func TestCleanRecheckKeptByAnEventEndsTheEraseAlert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	_, jobID := b.uninstallAs(t, id, true)
	for deadline := time.Now().Add(time.Minute); len(b.mail.subjects()) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if subjects := b.mail.subjects(); len(subjects) != 1 || !strings.Contains(subjects[0], "reported removed") {
		t.Fatalf("e-mails after the uninstall: %q, want the one that says so", subjects)
	}
	if err := uninstall.RecordKept(ctx, b.pool, id, "203.0.113.8", "the portal was uninstalled already", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE id = $1`, jobID); err != nil {
		t.Fatal(err)
	}
	b.maintain(t)
	if recheck, tokens, kept := b.recheckState(t, id); recheck || tokens || !kept {
		t.Fatalf("after the recheck: recheck %v, tokens %v, settings %v; want the data kept without the tokens", recheck, tokens, kept)
	}
	var active bool
	if err := b.pool.QueryRow(ctx, `SELECT active FROM portal_alerts WHERE portal_id = $1 AND state = 'uninstall_pending'`, id).
		Scan(&active); err != nil || active {
		t.Fatalf("the erase alert is still on (%v, %v) though the data is kept", active, err)
	}
	sent := b.mail.all()
	if len(sent) != 2 || !strings.Contains(sent[1].Subject, "stopped waiting") || !strings.Contains(sent[1].Body, "will not be erased") ||
		!strings.Contains(sent[1].Body, "install the app") {
		t.Fatalf("e-mails after the end of the recheck: %+v, want one saying the data is kept", sent)
	}
}

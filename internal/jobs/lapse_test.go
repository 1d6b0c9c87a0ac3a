package jobs

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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

// dispatchable reports whether the dispatcher would schedule the portal's
// syncs.
func (b *retentionBundle) dispatchable(t *testing.T, portalID int64) bool {
	t.Helper()
	var ids []int64
	err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		s, err := syncableSchedules(context.Background(), tx)
		for _, p := range s {
			ids = append(ids, p.portalID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(ids, portalID)
}

// uninstallOnAsk takes a CLEAN uninstall of the portal as the events
// handler does, on Bitrix24's answer now, which must be TokensRefused, and
// returns the deferred erase it queued (its job dropped, so the River
// client does not wait 30 days on it).
func (b *retentionBundle) uninstallOnAsk(t *testing.T, id int64) UninstallEraseArgs {
	t.Helper()
	a, jobID := b.uninstallAs(t, id, true)
	if _, err := b.pool.Exec(context.Background(), `DELETE FROM river_job WHERE id = $1`, jobID); err != nil {
		t.Fatal(err)
	}
	return a
}

// uninstallAs takes an uninstall of the portal, CLEAN or not, as the events
// handler does, on Bitrix24's answer now, which must be TokensRefused, and
// returns the job that ends its recheck, left scheduled 30 days ahead.
func (b *retentionBundle) uninstallAs(t *testing.T, id int64, clean bool) (UninstallEraseArgs, int64) {
	t.Helper()
	ctx := context.Background()
	v, reason := uninstall.Ask(ctx, b.clients, id)
	if v != uninstall.TokensRefused {
		t.Fatalf("bitrix24 answered %v (%s), want tokens refused", v, reason)
	}
	var a UninstallEraseArgs
	var jobID int64
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := store.LockPortal(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := ConfirmUninstall(ctx, tx, b.rc, b.pool, p, clean, v); err != nil {
			return err
		}
		if _, err := uninstall.Record(ctx, tx, id, clean, "203.0.113.7", uninstall.StateConfirmed, reason); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT id, (args->>'generation')::bigint, coalesce((args->>'recheck')::bool, false),
			coalesce((args->>'keep')::bool, false) FROM river_job
			WHERE kind = 'uninstall_erase' AND state = 'scheduled' AND (args->>'portal_id')::bigint = $1`, id).
			Scan(&jobID, &a.Generation, &a.Recheck, &a.Keep)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // none queued: jobID 0, and the caller's checks say what is missing
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	a.PortalID = id
	return a, jobID
}

// A CLEAN uninstall taken while Bitrix24 refused the portal's tokens for a
// while (a lapsed payment, an update that reopened the installer): while
// the refusal lasts the portal stays uninstalled and its syncs stopped;
// once the tokens work again with the app installed, the hourly maintenance
// restores it without anyone opening the app, its syncs are dispatched
// again, and the deferred erase erases nothing.
func TestLapsedCleanUninstallRestoredByMaintenance(t *testing.T) {
	t.Parallel()
	for name, c := range passingLapses() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupRetention(t)
			id, bp := b.addPortal(t)
			if !b.dispatchable(t, id) {
				t.Fatal("the configured portal is not dispatched to begin with")
			}
			c.lapse(bp)
			erase := b.uninstallOnAsk(t, id)
			if b.dispatchable(t, id) {
				t.Fatal("the uninstalled portal is still dispatched")
			}
			b.advance(t, time.Hour)
			p, err := store.GetPortal(ctx, b.pool, id)
			if err != nil || p.Installed() {
				t.Fatalf("restored while Bitrix24 still refuses: %v %v", p.InstallState, err)
			}
			// The admin is told once, with the day of the erase.
			sent := b.mail.all()
			day := p.UninstalledAt.Add(uninstall.EraseDelay).UTC().Format("2006-01-02")
			if len(sent) != 1 || !strings.Contains(sent[0].Subject, "reported removed") || !strings.Contains(sent[0].Body, day) {
				t.Fatalf("e-mails after the uninstall: %+v, want one naming the erase on %s", sent, day)
			}
			c.mend(bp)
			b.advance(t, time.Hour)
			if !b.dispatchable(t, id) {
				t.Fatal("the portal whose tokens work again gets no syncs")
			}
			var audits int
			if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM manager_audit WHERE portal_id = $1 AND action = $2`,
				id, UninstallRefutedAction).Scan(&audits); err != nil || audits != 1 {
				t.Fatalf("%d audit lines of the restore (%v), want 1", audits, err)
			}
			if subjects := b.mail.subjects(); len(subjects) != 2 || !strings.Contains(subjects[1], "working again") {
				t.Fatalf("e-mails after the restore: %q, want the all-clear", subjects)
			}
			w := &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: slog.New(slog.DiscardHandler)}
			if err := w.Work(ctx, &river.Job[UninstallEraseArgs]{Args: erase}); err != nil {
				t.Fatal(err)
			}
			if b.erased(t, id) || !b.dispatchable(t, id) {
				t.Fatal("the deferred erase erased a restored portal")
			}
			if err := callBitrix24(b.clients, id); err != nil {
				t.Fatalf("a call after the restore: %v", err)
			}
		})
	}
}

// Bitrix24's answer is about the install generation it was asked about: an
// install and a real CLEAN uninstall in the meantime are not undone by it,
// and the later uninstall's erase still erases.
func TestRestoreIsOfTheGenerationAsked(t *testing.T) {
	ctx := context.Background()
	b := setupRetention(t)
	id, bp := b.addPortal(t)
	bp.SetLapse(b24sim.LapseUnpaid)
	b.uninstallOnAsk(t, id)
	asked, err := store.GetPortal(ctx, b.pool, id)
	if err != nil {
		t.Fatal(err)
	}
	// Bitrix24 was asked about this generation and answers "installed";
	// meanwhile the admin installs the app again and removes it with CLEAN
	// while the tokens are refused.
	bp.SetLapse(b24sim.LapseNone)
	apptest.InstallPortal(t, b.pool, b.keyring, bp)
	bp.SetLapse(b24sim.LapseUnpaid)
	later := b.uninstallOnAsk(t, id)
	if later.Generation == asked.InstallGeneration {
		t.Fatal("the second install made no new generation")
	}
	if err := restoreLapsed(ctx, b.pool, asked, "an answer about the generation before", b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if p, _ := store.GetPortal(ctx, b.pool, id); p.Installed() {
		t.Errorf("generation %d restored on an answer about generation %d", later.Generation, asked.InstallGeneration)
	}
	w := &UninstallEraseWorker{Pool: b.pool, Clients: b.clients, Log: slog.New(slog.DiscardHandler)}
	if err := w.Work(ctx, &river.Job[UninstallEraseArgs]{Args: later}); err != nil {
		t.Fatal(err)
	}
	if !b.erased(t, id) {
		t.Error("the later CLEAN uninstall's erase erased nothing")
	}
}

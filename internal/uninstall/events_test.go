package uninstall

import (
	"context"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
)

// The admin removes the app without CLEAN just after a forged CLEAN event
// that app.info's INSTALLED false confirmed: the admin's event is recorded
// as kept and drops the erase. A portal user then repeats the event without
// CLEAN, hour after hour, until it comes long after the uninstall: such a
// repeat keeps nothing, but must not turn the admin's row into one that
// keeps nothing either, or the data would be erased against the admin's
// choice.
func TestLateRepeatDoesNotRewriteAKeepingEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := apptest.Keyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1"})
	t.Cleanup(sim.Close)
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 5, 1)})
	row := apptest.InstallPortal(t, pool, kr, p)
	if _, err := store.MarkPortalUninstalled(ctx, pool, row.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := Record(ctx, pool, row.ID, true, "192.0.2.1", StateConfirmed, ReasonNotInstalled); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := RecordKept(ctx, pool, row.ID, "192.0.2.2", ReasonAlreadyUninstalled, now); err != nil {
		t.Fatal(err)
	}
	if err := RecordKept(ctx, pool, row.ID, "192.0.2.3", ReasonAlreadyUninstalled, now.Add(RetryWindow+time.Hour)); err != nil {
		t.Fatal(err)
	}
	uninstalled, err := store.GetPortal(ctx, pool, row.ID)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := KeptSince(ctx, pool, row.ID, uninstalled.UninstalledAt.Add(-SettleDelay))
	if err != nil {
		t.Fatal(err)
	}
	if !kept {
		t.Fatal("a late repeat rewrote the admin's event without CLEAN: the erase is no longer dropped")
	}
	var late int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND reason = $2`,
		row.ID, ReasonNotInstalledLongBefore).Scan(&late); err != nil || late != 1 {
		t.Fatalf("late repeat recorded %d times (%v), want once, as keeping nothing", late, err)
	}
}

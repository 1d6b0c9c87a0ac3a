package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// An older portal sends no application token, so none is stored: its
// admin's CLEAN uninstall is confirmed by Bitrix24 alone and its erase
// waits uninstall.SettleDelay. Anyone who knows the member_id (every
// portal user does) then sends ONAPPUNINSTALL without CLEAN, with any
// token: with nothing to check it against the event is unverified, and it
// must neither drop the waiting erase nor leave a row behind.
func TestUnverifiableUninstallKeepsNoErasedPortalData(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(44, 12, 3), Legacy: true})
	e.install(p)
	row := e.portalFixture(p)
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != "" {
		t.Fatal("an application token was stored for a portal that never sent one")
	}
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
	}
	uninstalled := e.portal(p.MemberID())
	if uninstalled.Installed() {
		t.Fatal("the CLEAN uninstall was not acted on")
	}
	events := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1`, row.ID)
	pg := e.postEvent(uninstallForm(p, strings.Repeat("cd", 16), false))
	if pg.status != http.StatusOK {
		t.Fatalf("unverifiable uninstall without CLEAN: %d %q", pg.status, pg.body)
	}
	if n := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1`, row.ID); n != events {
		t.Errorf("the unverifiable event left %d uninstall rows, want %d", n, events)
	}
	kept, err := uninstall.KeptSince(ctx, e.pool, row.ID, uninstalled.UninstalledAt.Add(-uninstall.SettleDelay))
	if err != nil {
		t.Fatal(err)
	}
	if kept {
		t.Error("an unverifiable uninstall without CLEAN dropped the admin's erase")
	}
	e.erased(row)
}

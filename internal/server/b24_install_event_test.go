package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
)

// TestInstallEventWithTheInstallersSpentPair: ONAPPINSTALL may carry the
// installer frame's own token pair, which the install has already refreshed
// (docs/bitrix24-api.md, "Events"). Naming the application token already
// stored, it is answered 200 without a refresh; naming another, it is
// refused as before, and the stored token stays.
func TestInstallEventWithTheInstallersSpentPair(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	e.sim.SetUnsettled(b24sim.Unsettled{InstallEventTokens: b24sim.InstallEventInstallers})
	ctx := context.Background()
	p := e.addPortal(1)
	p.Install()
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("installer: %d %s", pg.status, pg.body)
	}
	row := e.portal(p.MemberID())
	stored, err := store.ApplicationToken(ctx, e.pool, e.kr, row.ID)
	if err != nil || stored == "" {
		t.Fatalf("application token from the frame: %q %v", stored, err)
	}
	refreshes := e.sim.OAuthCalls("")
	p.FinishInstall(ctx)
	d := lastDelivery(t, p, "ONAPPINSTALL")
	if d.Status != http.StatusOK {
		t.Fatalf("ONAPPINSTALL answered %d %s", d.Status, d.Err)
	}
	if got := e.sim.OAuthCalls(""); got != refreshes {
		t.Errorf("%d refreshes for the event, want none", got-refreshes)
	}
	forged := d.Form
	forged.Set("auth[application_token]", "0123456789abcdef0123456789abcdef")
	if pg := e.postEvent(forged); pg.status == http.StatusOK {
		t.Errorf("ONAPPINSTALL with another application token answered 200: %s", pg.body)
	}
	if now, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); now != stored {
		t.Error("application token replaced")
	}
}

// TestEarlyInstallEventLeavesTheInstallersPair: ONAPPINSTALL may come when
// the install starts, before the installer page, carrying the pair that page
// then carries (docs/bitrix24-api.md, "Events"). For a portal not installed
// here (a first install, or one installed again after an uninstall) it has
// nothing to attach to and spends no refresh: the installer's proof still
// works.
func TestEarlyInstallEventLeavesTheInstallersPair(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	e.sim.SetUnsettled(b24sim.Unsettled{InstallEventEarly: true})
	ctx := context.Background()
	p := e.addPortal(1)
	for round := range 2 { // install, then install again after an uninstall
		refreshes := e.sim.OAuthCalls("")
		p.Install()
		if d := lastDelivery(t, p, "ONAPPINSTALL"); d.Status != http.StatusOK {
			t.Fatalf("round %d: early ONAPPINSTALL answered %d %s", round, d.Status, d.Err)
		}
		if got := e.sim.OAuthCalls(""); got != refreshes {
			t.Errorf("round %d: %d refreshes for the early event, want none", round, got-refreshes)
		}
		if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK || !strings.Contains(pg.body, installerScript) {
			t.Fatalf("round %d: installer: %d %s", round, pg.status, pg.body)
		}
		p.FinishInstall(ctx)
		if !e.portal(p.MemberID()).Installed() {
			t.Fatalf("round %d: not installed", round)
		}
		p.Uninstall(ctx, false)
	}
}

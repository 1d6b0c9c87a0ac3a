package server

import (
	"context"
	"net/http"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/jobs"
	"b24learn/internal/store"
	"b24learn/internal/uninstall"
)

// restored fails the test unless the portal uninstalled by a CLEAN event on
// refused tokens is installed again with everything it had, its event
// recorded as refuted late and the restore in the managers' audit trail.
func (e *b24Env) restored(p *b24sim.Portal, row store.Portal, appToken string) {
	e.t.Helper()
	e.intact(p, row, appToken)
	if now := e.portal(p.MemberID()); now.NeedsReconnect {
		e.t.Fatal("restored portal still needs reconnect: its syncs would not be dispatched")
	}
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND clean AND state = 'refuted' AND reason = $2`,
		row.ID, uninstall.ReasonRefutedLate) != 1 {
		e.t.Fatal("the uninstall is not recorded as refuted late")
	}
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'`, row.ID) != 0 {
		e.t.Fatal("the uninstall still stands as confirmed")
	}
	if e.count(`SELECT count(*) FROM manager_audit WHERE portal_id = $1 AND action = $2`, row.ID, jobs.UninstallRefutedAction) != 1 {
		e.t.Fatal("the restore is not in the audit trail")
	}
}

// uninstalledOnRefusal posts a CLEAN uninstall with the application token
// every portal user sees and checks that it was taken: the portal is
// uninstalled, nothing erased yet.
func (e *b24Env) uninstalledOnRefusal(p *b24sim.Portal, row store.Portal) {
	e.t.Helper()
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true)); pg.status != http.StatusOK {
		e.t.Fatalf("event: %d %q", pg.status, pg.body)
	}
	if e.portal(p.MemberID()).Installed() {
		e.t.Fatal("the uninstall on refused tokens was not taken")
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 {
		e.t.Fatal("settings erased at once")
	}
}

// An employee sends ONAPPUNINSTALL with CLEAN while the portal's payment
// has lapsed for a moment (the refresh refused with PAYMENT_REQUIRED). The
// portal is taken as uninstalled, but when the deferred erase comes Bitrix24
// is asked again: the tokens work and the app is installed, so nothing is
// erased and the portal is installed again.
func TestShortLapseCleanUninstallIsUndoneWhenTokensWorkAgain(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(4242)
	appToken := p.ApplicationToken()
	p.SetLapse(b24sim.LapseUnpaid)
	e.uninstalledOnRefusal(p, row)
	p.SetLapse(b24sim.LapseNone)
	e.runErases(row)
	e.restored(p, row, appToken)
}

// An app update that shows the installer again: app.info says INSTALLED
// false on tokens that work. Once the installer is finished, the deferred
// erase finds the app installed and restores the portal instead.
func TestUpdateWindowCleanUninstallIsUndoneOnceInstalled(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(4343)
	appToken := p.ApplicationToken()
	p.ReopenInstaller()
	e.uninstalledOnRefusal(p, row)
	p.FinishInstall(context.Background())
	e.runErases(row)
	e.restored(p, row, appToken)
}

// The genuine case the delay is for: the refusal persists, so the deferred
// erase, asking again, erases as a clean uninstall is erased.
func TestPersistentRefusalCleanUninstallErasesAfterTheDelay(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(4444)
	p.SetLapse(b24sim.LapseUnpaid)
	e.uninstalledOnRefusal(p, row)
	e.erased(row)
	if e.count(`SELECT count(*) FROM portals WHERE id = $1 AND uninstall_recheck`, row.ID) != 0 {
		e.t.Fatal("an erased portal is still asked about")
	}
}

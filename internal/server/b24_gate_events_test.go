package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/store"
)

// forgedFlood sends three event buckets' worth of well-formed ONAPPUPDATE
// events with made-up tokens for p's member_id, which every portal user
// (and every other app on the portal) sees, and wants some refused.
func (e *gateEnv) forgedFlood(p *b24sim.Portal, limits VerifyLimits) {
	e.t.Helper()
	var flood []attack
	for range 3 * limits.PerPortalEvents.Burst {
		flood = append(flood, forgedEvent("ONAPPUPDATE", p.MemberID(), "203.0.113.9"))
	}
	if byCode, _ := e.flood(flood); byCode[http.StatusTooManyRequests] == 0 {
		e.t.Fatalf("forged event flood never refused: %v", byCode)
	}
}

// Forged events for a portal's member_id empty its event bucket; Bitrix24's
// own ONAPPINSTALL and ONAPPUNINSTALL, which carry the stored application
// token, still get through and are answered (Bitrix24 does not send an
// event twice). The clock stands still, so nothing refills.
func TestForgedEventFloodDoesNotHoldBackBitrix24sEvents(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	ctx := context.Background()

	// Installed: the installer stored the portal and its application token;
	// then the flood, then Bitrix24's ONAPPINSTALL.
	p := e.addPortal(61)
	p.Install()
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("installer: %d %s", pg.status, pg.body)
	}
	e.forgedFlood(p, limits)
	calls := e.oauthTokens.Load()
	p.FinishInstall(ctx)
	if d := lastDelivery(t, p, "ONAPPINSTALL"); d.Status != http.StatusOK {
		t.Errorf("Bitrix24's ONAPPINSTALL after the forged flood: %d %s, want 200", d.Status, d.Err)
	}
	// It names the application token the installer stored, so it changes
	// nothing and spends no refresh (docs/bitrix24-api.md, "Events").
	if e.oauthTokens.Load() != calls {
		t.Error("ONAPPINSTALL naming the stored application token spent a refresh")
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, e.portal(p.MemberID()).ID); tok != p.ApplicationToken() {
		t.Error("application token not the one Bitrix24 sent")
	}

	// Uninstalled with CLEAN: asked about at once and confirmed, not left
	// waiting for a check job.
	p2, row := e.installedFixture(62)
	e.forgedFlood(p2, limits)
	p2.Uninstall(ctx, true)
	if d := lastDelivery(t, p2, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("Bitrix24's ONAPPUNINSTALL after the forged flood: %d %s, want 200", d.Status, d.Err)
	}
	if e.portal(p2.MemberID()).Installed() {
		t.Fatal("portal still installed after Bitrix24's uninstall")
	}
	e.erased(row)
}

// Every user who opened the app has seen its application token: events
// carrying it cost at most their own bucket and then the portal's event
// bucket in OAuth calls, and are refused past both.
func TestEventFloodWithTheApplicationTokenIsBounded(t *testing.T) {
	t.Parallel()
	limits := DefaultVerifyLimits()
	e := newGateEnv(t, limits)
	p := e.addPortal(63)
	e.install(p)
	e.oauthTokens.Store(0)
	var flood []attack
	for range 3 * (limits.PerPortalTokenEvents.Burst + limits.PerPortalEvents.Burst) {
		a := forgedEvent("ONAPPINSTALL", p.MemberID(), "203.0.113.10")
		a.body.Set("auth[application_token]", p.ApplicationToken())
		flood = append(flood, a)
	}
	byCode, _ := e.flood(flood)
	// Installing spent one token of the first bucket.
	bound := limits.PerPortalTokenEvents.Burst + limits.PerPortalEvents.Burst - 1
	if n := int(e.oauthTokens.Load()); n > bound {
		t.Errorf("%d OAuth calls for %d events with the application token, want at most %d (%v)", n, len(flood), bound, byCode)
	}
	if byCode[http.StatusTooManyRequests] == 0 || e.refused(refusedPortalToken) == 0 {
		t.Errorf("no event with the application token refused: %v", byCode)
	}
}

// Events with the stored token take their own bucket first and the event
// bucket after it; events without it cannot reach the first.
func TestVerifyGateTokenEvents(t *testing.T) {
	t.Parallel()
	now := time.Now()
	g := newVerifyGate(VerifyLimits{
		PerPortalEvents:      Bucket{Burst: 2, Every: time.Hour},
		PerPortalTokenEvents: Bucket{Burst: 1, Every: time.Hour},
	})
	const m = "0123456789abcdef0123456789abcdef"
	for i := range 2 {
		if r, _ := g.admitEvent(now, m, false); r != "" {
			t.Fatalf("forged event %d refused: %q", i, r)
		}
	}
	if r, _ := g.admitEvent(now, m, false); r != refusedPortal {
		t.Fatalf("forged event past the event bucket: %q, want %q", r, refusedPortal)
	}
	if r, _ := g.admitEvent(now, m, true); r != "" {
		t.Fatalf("event with the token after the forged ones: %q, want admitted", r)
	}
	if r, wait := g.admitEvent(now, m, true); r != refusedPortalToken || wait <= 0 {
		t.Fatalf("event with the token past both buckets: %q %v, want %q", r, wait, refusedPortalToken)
	}
	// The token's bucket empty, the event bucket is the fallback.
	h := newVerifyGate(VerifyLimits{
		PerPortalEvents:      Bucket{Burst: 1, Every: time.Hour},
		PerPortalTokenEvents: Bucket{Burst: 1, Every: time.Hour},
	})
	for i, want := range []string{"", "", refusedPortalToken} {
		if r, _ := h.admitEvent(now, m, true); r != want {
			t.Fatalf("event %d with the token: %q, want %q", i, r, want)
		}
	}
}

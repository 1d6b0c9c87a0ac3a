package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// syncEnabled is the Sync button of an admin's panel (a read-only panel's
// is disabled).
const syncEnabled = `data-action="sync">`

// panelOf asks for the status panel as the settings page polls it.
func (e *b24Env) panelOf(tab string) (page, time.Duration) {
	e.t.Helper()
	start := time.Now()
	req, _ := http.NewRequest(http.MethodGet, e.app.URL+"/app/status", nil)
	req.Header.Set(sessionHeader, tab)
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err), time.Since(start)
}

// While a sync spends the portal's quota, Bitrix24 may answer the admin
// proof of the panel's poll slowly. The proof has its own short limit and
// the panel's database reads their own time: the poll answers soon, and
// with 503 (Bitrix24 could not be asked), never with 500 after the reads
// found their time spent.
func TestPanelPollWithSlowBitrix24(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, _, tab := e.promotedTab(51)
	e.advance(adminProofTTL) // the open's proof no longer stands
	p.SetLatency(11 * time.Second)
	pg, took := e.panelOf(tab)
	if pg.status != http.StatusServiceUnavailable {
		t.Errorf("panel poll with a slow Bitrix24: %d %.200s, want 503", pg.status, pg.body)
	}
	if took > 7*time.Second {
		t.Errorf("panel poll with a slow Bitrix24 took %v, want the proof's own limit (%v) and little more", took, panelProofTimeout)
	}
}

// Only a definite answer (not an admin, or the tokens refused) turns an
// admin's panel read-only. When Bitrix24 cannot be asked the poll answers
// 503 with the reason in the user's language, so the page keeps its panel
// and asks again; Bitrix24 is then not asked again for adminUnreachableTTL.
func TestPanelPollWithBitrix24Down(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, u, tab := e.promotedTab(52)
	if pg, _ := e.panelOf(tab); pg.status != http.StatusOK || !strings.Contains(pg.body, syncEnabled) {
		t.Fatalf("admin's panel: %d %.300s", pg.status, pg.body)
	}
	e.advance(adminProofTTL)
	p.InjectFault(b24sim.Fault{Method: "profile", Status: http.StatusServiceUnavailable, Count: 100})
	profiles := func() int { return p.Requests()["profile"] }
	before := profiles()
	pg, _ := e.panelOf(tab)
	if pg.status != http.StatusServiceUnavailable || !strings.Contains(pg.body, "could not confirm your administrator rights") {
		t.Fatalf("panel poll with Bitrix24 down: %d %.300s, want 503 saying why", pg.status, pg.body)
	}
	asked := profiles() - before
	if asked == 0 {
		t.Fatal("Bitrix24 was not asked")
	}
	// The next polls and the admin's changes within adminUnreachableTTL
	// answer the same without calling Bitrix24.
	if pg, _ := e.panelOf(tab); pg.status != http.StatusServiceUnavailable {
		t.Errorf("second poll: %d, want 503", pg.status)
	}
	if pg := e.send(tab, "/app/preview", nil); pg.status != http.StatusServiceUnavailable ||
		!strings.Contains(pg.body, "could not confirm your administrator rights") {
		t.Errorf("admin's preview with Bitrix24 down: %d %.200s, want 503 saying why", pg.status, pg.body)
	}
	if got := profiles() - before; got != asked {
		t.Errorf("Bitrix24 asked %d times within adminUnreachableTTL, want %d", got, asked)
	}
	// The session stays an admin's: nothing was recorded against it.
	if pg, st := e.state(tab); pg.status != http.StatusOK || !st.Admin {
		t.Errorf("tab after Bitrix24 was down: %d %+v, want still admin", pg.status, st)
	}

	// Bitrix24 is back and says the user is no longer an admin: that is
	// definite, and the panel turns read-only.
	p.ClearFaults()
	if err := p.UpdateUser(u, func(x *b24sim.User) { x.Admin = false }); err != nil {
		t.Fatal(err)
	}
	e.advance(adminUnreachableTTL)
	if pg, _ := e.panelOf(tab); pg.status != http.StatusOK || strings.Contains(pg.body, syncEnabled) {
		t.Errorf("demoted admin's panel: %d %.300s, want the read-only panel", pg.status, pg.body)
	}
}

// fakeClock is an app clock a test moves on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// An admin's page polls the panel while a run is running, and Bitrix24
// goes down. The page keeps the admin's panel (its report links) and asks
// again, later each time; one miss shows nothing, the third says quietly
// why the panel is not current. Once Bitrix24 is back the polled panel
// takes its place.
func TestPanelKeptWhileBitrix24DownInBrowser(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Now()}
	b := newBrowserEnvWith(t, browserOptions{learnSeed: 1, now: clock.Now})
	p := b.installPortal("en", b24sim.GenerateOrg(12, 20, 3))
	portalID := b.portalID(p)
	rs := syncer.NewStore(b.e.pool)
	run, err := rs.StartRun(ctx, portalID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	b.openApp(p)
	const links = `document.querySelector('#runs-box [data-report]')`
	b.waitFor("the admin's running run with its report link", `document.querySelector('#runs-box .badge.running') && `+links)
	// The page's polls from here on, with their answers' status, as the
	// browser timed them.
	b.mustEval(`(() => { performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings(); return true; })()`, nil)
	const polls = `performance.getEntriesByType('resource').filter(function (e) { return e.name.indexOf('/app/status') >= 0; }).map(function (e) { return e.responseStatus; })`
	p.InjectFault(b24sim.Fault{Method: "profile", Status: http.StatusServiceUnavailable, Count: 1000})
	clock.advance(adminProofTTL) // the open's proof no longer stands
	b.waitFor("a poll answered 503", polls+`.includes(503)`)
	var kept bool
	b.mustEval(links+` !== null && !document.getElementById('status-stale') && document.getElementById('action-result').hidden`, &kept)
	if !kept {
		t.Error("after one missed poll the admin's panel changed or a notice shows")
	}
	b.waitFor("three missed polls", polls+`.filter(function (s) { return s === 503; }).length >= 3`)
	var note string
	b.mustEval(`(() => { const n = document.getElementById('status-stale'); return n ? n.textContent : ''; })()`, &note)
	if want := i18n.T(i18n.EN, "msg.b24_unreachable"); note != want {
		t.Errorf("after three missed polls the panel says %q, want %q", note, want)
	}
	b.mustEval(links+` !== null`, &kept)
	if !kept {
		t.Error("after three missed polls the admin's panel is gone")
	}
	// Back-off: the second wait after a miss is longer than the first.
	// (The first poll's proof waits for Bitrix24; the next ones find the
	// miss remembered.)
	var gaps []float64
	b.mustEval(`(() => { const t = performance.getEntriesByType('resource').filter(function (e) {
		return e.name.indexOf('/app/status') >= 0 && e.responseStatus === 503; });
		return [t[1].startTime - t[0].responseEnd, t[2].startTime - t[1].responseEnd]; })()`, &gaps)
	if len(gaps) != 2 || gaps[1] <= gaps[0]*1.5 {
		t.Errorf("waits between missed polls %v ms, want each longer than the last", gaps)
	}

	// A read behind the admin proof (the run's report) says the same, not
	// "admins only" nor "the server could not be reached".
	b.mustEval(`(() => { document.querySelector('#runs-box [data-report]').click(); return true; })()`, nil)
	b.waitFor("the report's failure", `!document.getElementById('action-result').hidden`)
	var said string
	b.mustEval(`document.getElementById('action-result').textContent`, &said)
	if want := i18n.T(i18n.EN, "msg.b24_unreachable"); said != want {
		t.Errorf("opening a report while Bitrix24 is down says %q, want %q", said, want)
	}

	p.ClearFaults()
	clock.advance(adminUnreachableTTL)
	if err := rs.FinishRun(ctx, portalID, run, syncer.RunFailed, nil, "learn refused", nil); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the current panel once Bitrix24 is back",
		`!document.querySelector('#runs-box .badge.running') && !document.getElementById('status-stale') && `+links)
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}

// A poll of an admin's panel whose proof times out (Bitrix24 slow or out of
// reach: its quota spent by the very sync the panel shows) learned nothing
// about the user's rights. The poll answers 503, and nothing locks the
// admin out afterwards: the tab stays an admin's and its changes go through
// once "could not be asked" no longer stands (adminUnreachableTTL), and the
// admin who opens the app again has the settings at once.
func TestPanelPollTimeoutLocksNoAdminOut(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, u, tab := e.promotedTab(53)
	timedOut := func() {
		t.Helper()
		e.advance(adminProofTTL) // the last proof no longer stands: the poll asks Bitrix24
		p.SetLatency(panelProofTimeout + 2*time.Second)
		pg, took := e.panelOf(tab)
		p.SetLatency(0)
		if took < panelProofTimeout {
			t.Fatalf("the poll answered in %v, before its proof could time out (%v)", took, panelProofTimeout)
		}
		if pg.status != http.StatusServiceUnavailable {
			t.Fatalf("panel poll whose proof timed out: %d %.300s, want 503", pg.status, pg.body)
		}
	}
	timedOut()
	// Nothing was recorded against the session or the user.
	if pg, st := e.state(tab); pg.status != http.StatusOK || !st.Admin {
		t.Errorf("the polling tab after the timeout: %d %+v, want still admin", pg.status, st)
	}
	if n := e.count(`SELECT count(*) FROM portal_demoted_users WHERE user_id = $1`, u); n != 0 {
		t.Errorf("the timeout recorded the admin as demoted (%d rows)", n)
	}
	// The tab's changes and panel are the admin's once the miss no longer
	// stands.
	e.advance(adminUnreachableTTL)
	if pg := e.send(tab, "/app/preview", nil); pg.status != http.StatusAccepted {
		t.Errorf("the polling tab's preview after the timeout: %d %.300s, want 202", pg.status, pg.body)
	}
	if pg, _ := e.panelOf(tab); pg.status != http.StatusOK || !strings.Contains(pg.body, syncEnabled) {
		t.Errorf("the polling tab's panel after the timeout: %d %.300s, want the admin's", pg.status, pg.body)
	}

	// Another poll times out, and the admin opens the app again at once:
	// the settings are theirs.
	timedOut()
	again := e.open(p, u).session()
	if pg, st := e.state(again); pg.status != http.StatusOK || !st.Admin {
		t.Errorf("the app opened again after the timeout: %d %+v, want the admin's", pg.status, st)
	}
	if pg := e.send(again, "/app/preview", nil); pg.status != http.StatusAccepted {
		t.Errorf("admin's preview from the app opened again: %d %.300s, want 202", pg.status, pg.body)
	}
}

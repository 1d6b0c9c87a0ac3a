package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/alert"
	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/connect"
	"b24learn/internal/jobs"
	"b24learn/internal/jobs/queues"
	"b24learn/internal/manager"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
	"b24learn/internal/uninstall"
)

// lapseCase is a way Bitrix24 comes to refuse a portal's tokens as it
// does after a removal, and the way that ends.
type lapseCase struct {
	name        string
	lapse, mend func(p *b24sim.Portal)
}

// lapseCases are the lapses a forged uninstall may come during; finish ends
// the reopened installer.
func lapseCases(finish func(p *b24sim.Portal)) []lapseCase {
	return []lapseCase{
		{"unpaid", func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseUnpaid) }, func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseNone) }},
		{"refresh expired", func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseRefreshExpired) }, func(p *b24sim.Portal) { p.SetLapse(b24sim.LapseNone) }},
		{"installer reopened", (*b24sim.Portal).ReopenInstaller, finish},
	}
}

// lapsedPortal installs a portal, keeps the application token its users
// have seen, then lets the portal lapse.
func (e *b24Env) lapsedPortal(seed int64, lapse func(p *b24sim.Portal)) (p *b24sim.Portal, row store.Portal, appToken string) {
	e.t.Helper()
	p = e.addPortal(seed)
	e.install(p)
	row = e.portalFixture(p)
	appToken = p.ApplicationToken()
	lapse(p)
	return p, row, appToken
}

// portalFixture gives an installed portal what a clean uninstall erases
// (settings with the Learn password) and what it keeps (an audit entry).
func (e *b24Env) portalFixture(p *b24sim.Portal) store.Portal {
	e.t.Helper()
	ctx := context.Background()
	row := e.portal(p.MemberID())
	if _, err := settings.Save(ctx, e.pool, e.kr, row.ID, 1, func(s *settings.Settings) {
		s.LearnURL, s.Password = "https://acme.ispringlearn.com", "learn-secret"
	}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO manager_audit (manager_email, action, portal_id, portal_domain)
		VALUES ('olga@ispring.example', 'activate', $1, $2)`, row.ID, row.Domain); err != nil {
		e.t.Fatal(err)
	}
	return row
}

// installedFixture installs a portal of seed's org and gives it
// portalFixture's data.
func (e *b24Env) installedFixture(seed int64) (*b24sim.Portal, store.Portal) {
	e.t.Helper()
	p := e.addPortal(seed)
	e.install(p)
	return p, e.portalFixture(p)
}

// refusedLongAgo has Bitrix24 refuse the portal's tokens (unpaid), as the
// app has for 20 days: long into the data retention.
func (e *b24Env) refusedLongAgo(p *b24sim.Portal, id int64) {
	e.t.Helper()
	p.SetLapse(b24sim.LapseUnpaid)
	if _, err := e.pool.Exec(context.Background(), `UPDATE portals SET needs_reconnect = true,
		tokens_refused_at = now() - interval '20 days' WHERE id = $1`, id); err != nil {
		e.t.Fatal(err)
	}
}

func (e *b24Env) postEvent(form url.Values) page {
	e.t.Helper()
	resp, err := http.PostForm(e.app.URL+"/b24/events", form)
	return readPage(e.t, resp, err)
}

// intact fails the test unless the portal is installed with its tokens,
// application token and settings as they were.
func (e *b24Env) intact(p *b24sim.Portal, row store.Portal, appToken string) {
	e.t.Helper()
	ctx := context.Background()
	now := e.portal(p.MemberID())
	if !now.Installed() || now.TokenExpiresAt.IsZero() {
		e.t.Fatalf("portal uninstalled or its tokens dropped: %+v", now)
	}
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != appToken {
		e.t.Fatal("application token replaced")
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1 AND learn_password IS NOT NULL`, row.ID) != 1 {
		e.t.Fatal("settings erased")
	}
	if e.count(`SELECT count(*) FROM portals WHERE id = $1 AND access_token IS NOT NULL AND refresh_token IS NOT NULL`, row.ID) != 1 {
		e.t.Fatal("portal tokens erased")
	}
}

// erased fails the test unless a confirmed clean uninstall took place: the
// portal uninstalled, secrets and settings gone, the managers' audit trail and
// the uninstall record kept. An erase still scheduled (uninstall.SettleDelay
// ahead) is run first.
func (e *b24Env) erased(row store.Portal) {
	e.t.Helper()
	if e.count(`SELECT count(*) FROM river_job WHERE kind = 'uninstall_erase' AND state = 'scheduled'
		AND (args->>'portal_id')::bigint = $1`, row.ID) > 0 {
		e.runErases(row)
	}
	if e.count(`SELECT count(*) FROM portals WHERE id = $1 AND install_state = 'uninstalled'
		AND access_token IS NULL AND refresh_token IS NULL AND application_token IS NULL`, row.ID) != 1 {
		e.t.Fatalf("portal not uninstalled or secrets left: %+v", e.portal(row.MemberID))
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 0 {
		e.t.Fatal("settings left")
	}
	if e.count(`SELECT count(*) FROM manager_audit WHERE portal_id = $1`, row.ID) != 1 {
		e.t.Fatal("managers' audit trail erased")
	}
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed' AND clean`, row.ID) != 1 {
		e.t.Fatal("no confirmed uninstall recorded")
	}
}

// A portal user who is not an admin holds, from their own iframe POST, the
// application token and a refresh token the OAuth server accepts. With them
// no event may uninstall the portal, erase its data or replace the token
// the events are checked against; the real uninstall still works afterwards.
func TestNonAdminFrameValuesCannotUninstallEraseOrRetoken(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(21)
	appToken := p.ApplicationToken()

	// What the employee's browser received when they opened the app.
	frame := func() url.Values {
		_, _, body, err := p.FrameRequest(p.NonAdminID())
		if err != nil {
			t.Fatal(err)
		}
		if body.Get("APPLICATION_TOKEN") != appToken || body.Get("REFRESH_ID") == "" || body.Get("AUTH_ID") == "" {
			t.Fatalf("frame POST lacks the values the attack needs: %v", body)
		}
		return body
	}
	stolen := frame()

	for _, clean := range []bool{true, false} {
		pg := e.postEvent(uninstallForm(p, stolen.Get("APPLICATION_TOKEN"), clean))
		if pg.status != http.StatusOK || !strings.Contains(pg.body, "still installed") {
			t.Errorf("forged ONAPPUNINSTALL clean=%v: %d %q, want 200 ignored", clean, pg.status, pg.body)
		}
		e.intact(p, row, appToken)
	}
	// Re-tokening: the employee's own refresh token proves the portal to the
	// OAuth server, but not an admin; the token must stay the portal's.
	attackerToken := strings.Repeat("a", 32)
	for _, name := range []string{"ONAPPUPDATE", "ONAPPINSTALL"} {
		body := frame()
		form := url.Values{"event": {name}, "data[VERSION]": {"2"}, "ts": {"1766047124"},
			"auth[domain]": {p.Domain()}, "auth[member_id]": {p.MemberID()},
			"auth[client_endpoint]": {p.ClientEndpoint()}, "auth[server_endpoint]": {body.Get("SERVER_ENDPOINT")},
			"auth[access_token]": {body.Get("AUTH_ID")}, "auth[refresh_token]": {body.Get("REFRESH_ID")},
			"auth[application_token]": {attackerToken}}
		if pg := e.postEvent(form); pg.status != http.StatusForbidden {
			t.Errorf("non-admin %s: %d %q, want 403", name, pg.status, pg.body)
		}
		e.intact(p, row, appToken)
		// With their own token stored, the forged uninstall would pass the
		// token check: it must still be refuted.
		e.postEvent(uninstallForm(p, attackerToken, true))
		e.intact(p, row, appToken)
	}

	// The attempts are on record for the managers: one row per source,
	// CLEAN flag and hour, with the repeats counted.
	var n, repeats int
	if err := e.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(repeats), 0) FROM uninstall_events
		WHERE portal_id = $1 AND state = 'refuted' AND source_ip = '127.0.0.1'`, row.ID).Scan(&n, &repeats); err != nil {
		t.Fatal(err)
	}
	if n != 2 || repeats != 2 {
		t.Errorf("refuted attempts recorded: %d rows, %d repeats; want 2 rows (CLEAN 1 and 0), 2 attempts", n, repeats)
	}

	// The admin really uninstalls with CLEAN: Bitrix24 revokes the tokens,
	// the app confirms it and erases.
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("genuine ONAPPUNINSTALL answered %d", d.Status)
	}
	e.erased(row)
	// A repeat of the event, e.g. by the employee, changes nothing more.
	if pg := e.postEvent(uninstallForm(p, appToken, true)); pg.status == http.StatusInternalServerError {
		t.Errorf("repeated uninstall: %d", pg.status)
	}
}

// Whichever way Bitrix24 refuses an uninstalled app's tokens, the genuine
// uninstall is confirmed: it stops the portal's jobs and, with CLEAN, erases
// its data but keeps the managers' audit trail. When Bitrix24 only refused
// the tokens' refresh, as it also does to a lapsed portal, the erase waits
// uninstall.EraseDelay (a scheduled job) and the data stays until then.
func TestGenuineUninstallIsConfirmedWhateverBitrix24Answers(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	defer func() { e.t = t }()
	for i, mode := range b24sim.AfterUninstalls {
		t.Run(mode.String(), func(t *testing.T) {
			e.t = t // the helpers report to the subtest
			p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(int64(30+i), 12, 3), AfterUninstall: mode})
			e.install(p)
			row := e.portalFixture(p)
			job, err := e.river.Insert(ctx, jobs.SyncArgs{PortalID: row.ID, Trigger: syncer.TriggerManual},
				&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			p.Uninstall(ctx, true)
			if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
				t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
			}
			e.erased(row)
			if j, _ := e.river.JobGet(ctx, job.Job.ID); j.State != rivertype.JobStateCancelled {
				t.Errorf("portal's job is %s, want cancelled", j.State)
			}
		})
	}
}

// runErases checks that the uninstalled portal's data is still there with
// its erase scheduled as far ahead as Bitrix24's answer calls for
// (uninstall.EraseDelay when it only refused the tokens, else
// uninstall.SettleDelay), then runs the portal's scheduled erases now (and
// drops their jobs).
func (e *b24Env) runErases(row store.Portal) {
	e.t.Helper()
	ctx := context.Background()
	var reason string
	if err := e.pool.QueryRow(ctx, `SELECT reason FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'
		ORDER BY id DESC LIMIT 1`, row.ID).Scan(&reason); err != nil {
		e.t.Fatalf("no confirmed uninstall: %v", err)
	}
	delay := uninstall.SettleDelay
	if v, _ := uninstall.Classify(bitrix24.AppInfo{Installed: true}, &bitrix24.APIError{Code: reason}); v == uninstall.TokensRefused ||
		reason == uninstall.ReasonNotInstalled {
		delay = uninstall.EraseDelay
	}
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 {
		e.t.Fatal("settings erased before the delay")
	}
	rows, err := e.pool.Query(ctx, `SELECT id, args, scheduled_at FROM river_job WHERE kind = 'uninstall_erase'
		AND (args->>'portal_id')::bigint = $1 AND state = 'scheduled'`, row.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	type job struct {
		id   int64
		args []byte
		at   time.Time
	}
	var found []job
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.id, &j.args, &j.at); err != nil {
			e.t.Fatal(err)
		}
		found = append(found, j)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if len(found) == 0 {
		e.t.Fatal("no deferred erase scheduled")
	}
	w := &jobs.UninstallEraseWorker{Pool: e.pool, Clients: e.checkClients(), Log: slog.New(slog.DiscardHandler)}
	for _, j := range found {
		if d := time.Until(j.at); d < delay-min(delay/2, time.Hour) || d > delay {
			e.t.Fatalf("erase scheduled in %v, want %v", d, delay)
		}
		var a jobs.UninstallEraseArgs
		if err := json.Unmarshal(j.args, &a); err != nil {
			e.t.Fatal(err)
		}
		if err := w.Work(ctx, &river.Job[jobs.UninstallEraseArgs]{Args: a}); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, j.id); err != nil {
			e.t.Fatal(err)
		}
	}
}

// The attacker: an ordinary employee of a portal whose trial ended (or whose
// refresh token outlived its idle days, or whose app update shows the
// installer again) sends ONAPPUNINSTALL with CLEAN and the application token
// every user sees. Bitrix24 refuses the app's tokens, or app.info says the
// app is not installed, as either may after an uninstall, so the app stops
// the portal, but erases nothing at once; the admin pays (or finishes the
// installer) and opens the app again before the delay, and the scheduled
// erase then erases nothing.
func TestForgedCleanUninstallOfALapsedPortalErasesNothing(t *testing.T) {
	t.Parallel()
	for i, c := range lapseCases(func(*b24sim.Portal) {}) {
		e := newB24Env(t)
		ctx := context.Background()
		p, row, appToken := e.lapsedPortal(int64(50+i), c.lapse)
		if pg := e.postEvent(uninstallForm(p, appToken, true)); pg.status != http.StatusOK {
			t.Fatalf("%s: forged uninstall: %d %s", c.name, pg.status, pg.body)
		}
		if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 {
			t.Fatalf("%s: a forged clean uninstall erased the portal's settings at once", c.name)
		}
		var args []byte
		if err := e.pool.QueryRow(ctx, `SELECT args FROM river_job WHERE kind = 'uninstall_erase' AND state = 'scheduled'
			AND (args->>'portal_id')::bigint = $1 AND scheduled_at > now() + interval '7 days'`, row.ID).Scan(&args); err != nil {
			t.Fatalf("%s: no erase deferred by days: %v", c.name, err)
		}
		// The admin pays (or the portal wakes) and opens the app again.
		c.mend(p)
		e.install(p)
		var a jobs.UninstallEraseArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		w := &jobs.UninstallEraseWorker{Pool: e.pool, Log: slog.New(slog.DiscardHandler)}
		if err := w.Work(ctx, &river.Job[jobs.UninstallEraseArgs]{Args: a}); err != nil {
			t.Fatal(err)
		}
		if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 ||
			e.count(`SELECT count(*) FROM portals WHERE id = $1 AND install_state = 'installed'`, row.ID) != 1 {
			t.Fatalf("%s: the reinstalled portal lost its data to the deferred erase", c.name)
		}
	}
}

// A sync may meet the revoked tokens before the uninstall event arrives and
// flag the portal "needs reconnect"; the check still asks Bitrix24, and
// decides by its answer both ways.
func TestUninstallCheckOnAPortalNeedingReconnect(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(40)
	flag := func() {
		if _, err := e.pool.Exec(ctx, `UPDATE portals SET needs_reconnect = true WHERE id = $1`, row.ID); err != nil {
			t.Fatal(err)
		}
	}
	flag()
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true)); pg.status != http.StatusOK || !strings.Contains(pg.body, "still installed") {
		t.Fatalf("forged uninstall on a flagged portal: %d %q", pg.status, pg.body)
	}
	if !e.portal(p.MemberID()).Installed() {
		t.Fatal("forged uninstall acted on")
	}
	flag()
	p.Uninstall(ctx, true)
	e.erased(row)
}

// A portal whose tokens Bitrix24 has refused for days (unpaid, or removed
// with its ONAPPUNINSTALL lost) is on its way to the data retention's
// erase. An uninstall without CLEAN, which any portal user can send, is no
// news of it and must not turn it into a portal uninstalled without CLEAN,
// whose data would then stay for ever: it is recorded and left alone.
func TestLateUninstallWithoutCleanLeavesTheRetentionRunning(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(41)
	e.refusedLongAgo(p, row.ID)
	pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), false))
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "data retention") {
		t.Fatalf("late uninstall without CLEAN: %d %q", pg.status, pg.body)
	}
	if !e.portal(p.MemberID()).Installed() {
		t.Fatal("a late uninstall without CLEAN took the portal out of the data retention")
	}
}

// The same portal, two events: a CLEAN one, confirmed by the refusal, takes
// it as uninstalled and schedules the erase; one without CLEAN after it
// would drop that erase (uninstall.KeptSince), and the portal, uninstalled,
// is out of the retention's reach: its data would stay for ever. Coming long
// into the refusal, the second keeps nothing.
func TestLateUninstallWithoutCleanDoesNotKeepAnErase(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(42)
	e.refusedLongAgo(p, row.ID)
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true)); pg.status != http.StatusOK || pg.body != "ok\n" {
		t.Fatalf("CLEAN uninstall of a refused portal: %d %q", pg.status, pg.body)
	}
	uninstalled := e.portal(p.MemberID())
	if uninstalled.Installed() {
		t.Fatal("the CLEAN uninstall was not acted on")
	}
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), false)); pg.status != http.StatusOK {
		t.Fatalf("uninstall without CLEAN after it: %d %q", pg.status, pg.body)
	}
	kept, err := uninstall.KeptSince(ctx, e.pool, row.ID, uninstalled.UninstalledAt.Add(-uninstall.SettleDelay))
	if err != nil {
		t.Fatal(err)
	}
	if kept {
		t.Fatal("an uninstall without CLEAN long into the refusal dropped the erase")
	}
}

// startUninstallWorker runs the uninstall-check worker on the env's database,
// as serve does.
func (e *b24Env) startUninstallWorker() { e.t.Helper(); e.startUninstallWorkers(2) }

// startUninstallWorkers is startUninstallWorker with n jobs at a time.
func (e *b24Env) startUninstallWorkers(n int) {
	e.t.Helper()
	log := slog.New(slog.DiscardHandler)
	clients := e.checkClients()
	workers := river.NewWorkers()
	river.AddWorker(workers, jobs.NewUninstallCheckWorker(e.pool, clients, log))
	river.AddWorker(workers, &jobs.UninstallEraseWorker{Pool: e.pool, Clients: clients, Log: log})
	river.AddWorker(workers, &alert.Worker{Log: log, Pool: e.pool}) // an uninstall on refused tokens alerts
	qs := queues.Config()
	qs[queues.PortalCalls] = river.QueueConfig{MaxWorkers: n}
	apptest.StartRiver(e.t, e.pool, &river.Config{Logger: log, Workers: workers, Queues: qs})
}

// checkClients is the portal clients' factory the uninstall workers ask
// Bitrix24 with, as serve builds it.
func (e *b24Env) checkClients() *connect.Factory {
	return connect.New(connect.Options{Pool: e.pool, Keyring: e.kr, Log: slog.New(slog.DiscardHandler), B24AllowPrivateHosts: true,
		OAuth: &bitrix24.OAuth{URL: e.sim.URL, ClientID: e.sim.ClientID(), ClientSecret: e.sim.ClientSecret()}})
}

// waitFor polls cond until it holds or the deadline passes.
func (e *b24Env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// When Bitrix24 cannot be asked, an uninstall is neither acted on nor
// dropped: it waits, and a River job asks again. A genuine one is then
// confirmed; one that Bitrix24 never answers about expires, changing nothing.
func TestUnansweredUninstallIsRetried(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	serverError := b24sim.Fault{Method: "app.info", Status: http.StatusInternalServerError, Code: "INTERNAL_SERVER_ERROR"}

	// Genuine uninstall while Bitrix24 fails once.
	p, row := e.installedFixture(50)
	f := serverError
	f.Count = 1
	p.InjectFault(f)
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusAccepted {
		t.Fatalf("unanswered uninstall: %d, want 202", d.Status)
	}
	if !e.portal(p.MemberID()).Installed() || e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 {
		t.Fatal("acted on an unconfirmed uninstall")
	}
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending' AND clean`, row.ID) != 1 {
		t.Fatal("unanswered uninstall not recorded as pending")
	}

	// A forged one while Bitrix24 keeps failing.
	q := e.addPortal(51)
	e.install(q)
	qrow := e.portalFixture(q)
	f = serverError
	f.Count = 1000
	q.InjectFault(f)
	if pg := e.postEvent(uninstallForm(q, q.ApplicationToken(), true)); pg.status != http.StatusAccepted {
		t.Fatalf("forged uninstall, Bitrix24 failing: %d, want 202", pg.status)
	}

	e.startUninstallWorker()
	e.waitFor("the genuine uninstall confirmed by the job", func() bool {
		return e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'`, row.ID) == 1
	})
	e.erased(row)

	// The forged one is retried, and stays pending, while the window lasts.
	e.waitFor("the forged uninstall's check to fail and wait for a retry", func() bool {
		return e.count(`SELECT count(*) FROM river_job WHERE kind = 'uninstall_check' AND state = 'retryable'`) == 1
	})
	e.intact(q, qrow, q.ApplicationToken())
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending'`, qrow.ID) != 1 {
		t.Fatal("forged uninstall no longer pending within the window")
	}
	// Past the window, the next attempt gives up: nothing changed.
	if _, err := e.pool.Exec(ctx, `UPDATE uninstall_events SET received_at = now() - $2::interval WHERE portal_id = $1`,
		qrow.ID, strconv.Itoa(int(uninstall.RetryWindow.Seconds())+60)+" seconds"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE kind = 'uninstall_check' AND state = 'retryable'`); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the forged uninstall to expire", func() bool {
		return e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'expired'`, qrow.ID) == 1
	})
	e.intact(q, qrow, q.ApplicationToken())
}

// An uninstall whose check had to wait for Bitrix24 is judged by when it
// came, not by when a retry asks: one that came an hour into a refusal is
// news of the uninstall even when the retry runs past RetryWindow into the
// refusal.
func TestRetriedUninstallIsJudgedWhenItCame(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(52)
	p.InjectFault(b24sim.Fault{Method: "app.info", Status: http.StatusInternalServerError, Code: "INTERNAL_SERVER_ERROR", Count: 1})
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), false)); pg.status != http.StatusAccepted {
		t.Fatalf("uninstall while Bitrix24 fails: %d %q, want 202", pg.status, pg.body)
	}
	p.SetLapse(b24sim.LapseUnpaid)
	window := strconv.Itoa(int(uninstall.RetryWindow.Seconds())) + " seconds"
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET needs_reconnect = true,
		tokens_refused_at = now() - $2::interval - interval '1 hour' WHERE id = $1`, row.ID, window); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE uninstall_events SET received_at = now() - $2::interval + interval '1 hour'
		WHERE portal_id = $1`, row.ID, window); err != nil {
		t.Fatal(err)
	}
	e.startUninstallWorker()
	e.waitFor("the retried uninstall settled", func() bool {
		return e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state <> 'pending'`, row.ID) == 1
	})
	if n := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'`, row.ID); n != 1 {
		var state, reason string
		_ = e.pool.QueryRow(ctx, `SELECT state, reason FROM uninstall_events WHERE portal_id = $1`, row.ID).Scan(&state, &reason)
		t.Fatalf("an uninstall that came an hour into the refusal: %s (%s), want confirmed", state, reason)
	}
}

// The managers see a portal's unconfirmed uninstall attempts on its page:
// when, whether CLEAN asked to erase, from which address, how often.
func TestConsoleShowsUnconfirmedUninstalls(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	a, b, quiet := e.portal("a.bitrix24.com"), e.portal("b.bitrix24.com"), e.portal("quiet.bitrix24.com")
	const hostile = `<img src=x onerror=alert(1)>`
	for _, r := range []struct {
		portal        int64
		clean         bool
		source, state string
	}{
		{a, true, "198.51.100.7", uninstall.StateRefuted},
		{a, true, "198.51.100.7", uninstall.StateRefuted}, // a repeat: same row
		{a, false, "198.51.100.8", uninstall.StateExpired},
		{b, true, "203.0.113.9", uninstall.StateRefuted},
	} {
		if _, err := uninstall.Record(ctx, e.pool, r.portal, r.clean, r.source, r.state, "app.info: installed "+hostile); err != nil {
			t.Fatal(err)
		}
	}
	br := e.browser("10.0.1.2")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	rec := br.do("GET", "/manager/portals/"+strconv.FormatInt(a, 10), nil)
	page := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("portal page: %d\n%s", rec.Code, page)
	}
	for _, want := range []string{`data-testid="unconfirmed-uninstalls"`, "2 unconfirmed uninstall attempts",
		"198.51.100.7", "198.51.100.8", "unconfirmed: the app is still installed", "unconfirmed: Bitrix24 did not answer",
		"<td>yes</td>", "<td>no</td>", "<td>2</td>", "&lt;img src=x onerror=alert(1)&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("portal page lacks %q", want)
		}
	}
	if strings.Contains(page, "<img") || strings.Contains(page, "203.0.113.9") {
		t.Error("portal page shows raw markup or another portal's attempts")
	}
	if n := strings.Count(page, "data-uninstall-id="); n != 2 {
		t.Errorf("%d uninstall rows, want 2", n)
	}
	rec = br.do("GET", "/manager/portals/"+strconv.FormatInt(quiet, 10), nil)
	if body := rec.Body.String(); rec.Code != http.StatusOK || strings.Contains(body, "Uninstall events") {
		t.Errorf("quiet portal page: %d, shows an uninstall section", rec.Code)
	}
}

// Every portal user knows the application token, so a flood of forged
// uninstall events must not turn into a flood of Bitrix24 calls: past the
// portal's verification bucket the events are kept as pending, sharing one
// row and one check job, and nothing changes.
func TestForgedUninstallFloodMakesBoundedBitrix24Calls(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(22)
	appToken := p.ApplicationToken()
	p.ResetCounters()

	const flood = 120
	for range flood {
		if pg := e.postEvent(uninstallForm(p, appToken, true)); pg.status >= 300 {
			t.Fatalf("forged uninstall answered %d %q", pg.status, pg.body)
		}
	}
	e.intact(p, row, appToken)
	// The default per-portal bucket holds 30; the clock stands still.
	limit := DefaultVerifyLimits().PerPortal.Burst
	if got := p.TotalRequests(); got == 0 || got > limit {
		t.Errorf("%d forged uninstalls made %d Bitrix24 requests, want 1..%d", flood, got, limit)
	}
	if n := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1`, row.ID); n > 2 {
		t.Errorf("%d uninstall_events rows for one source, want at most 2 (refuted, pending)", n)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'uninstall_check'`); n > 1 {
		t.Errorf("%d uninstall check jobs queued, want at most 1", n)
	}
}

// An OAuth server that refuses the app's client secret answers every
// refresh invalid_client, which Bitrix24 also answers for an uninstalled
// app. While the operator's secret is wrong (a rotation half done), a portal
// user who forges ONAPPUNINSTALL with CLEAN must not erase the portal: the
// check finds that a refresh token no portal holds is refused the same way,
// so the answer says nothing about the portal. The event waits, and the
// portal is not flagged "needs reconnect" for the operator's mistake.
func TestWrongClientSecretDoesNotConfirmAForgedUninstall(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p, row := e.installedFixture(41)
	appToken, _ := store.ApplicationToken(context.Background(), e.pool, e.kr, row.ID)
	e.sim.RotateClientSecret("rotated-in-the-vendor-console") // and not yet in the app's configuration
	p.ExpireTokens()                                          // the check must refresh
	pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true))
	if pg.status != http.StatusAccepted || !strings.Contains(pg.body, "awaiting confirmation") {
		t.Fatalf("forged uninstall under a refused client secret: %d %q, want 202 awaiting confirmation", pg.status, pg.body)
	}
	e.intact(p, row, appToken)
	if e.portal(p.MemberID()).NeedsReconnect {
		t.Error("portal flagged needs reconnect for the app's own refused secret")
	}
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending'
		AND reason LIKE '%client id or secret%'`, row.ID) != 1 {
		t.Error("no pending uninstall event naming the refused client secret")
	}
}

// An older portal never shows the app its application token (no
// APPLICATION_TOKEN in the frame POST, no ONAPPINSTALL to an app with a
// UI). Its genuine uninstall is still confirmed and, with CLEAN, erases its
// data; a forged one while the app is installed changes nothing.
func TestUninstallOfAPortalThatNeverSentItsApplicationToken(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(42, 12, 3), Legacy: true})
	e.install(p)
	row := e.portalFixture(p)
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != "" {
		t.Fatalf("an application token was stored for a portal that never sent one")
	}
	forged := uninstallForm(p, strings.Repeat("ab", 16), true)
	if pg := e.postEvent(forged); pg.status != http.StatusOK || !strings.Contains(pg.body, "still installed") {
		t.Fatalf("forged uninstall: %d %q, want the check to refute it", pg.status, pg.body)
	}
	e.intact(p, row, "")
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
	}
	e.erased(row)
}

// An older portal that did send ONAPPUPDATE once (so the app stores its
// application token) and then updated again without it reaching the app:
// the stored token is stale and the frame POST has none to replace it. The
// admin's next open binds the events again and leaves the uninstall to
// Bitrix24's answer, so the genuine uninstall still erases the data.
func TestUninstallAfterALostUpdateOfAnOlderPortal(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(43, 12, 3), Legacy: true})
	e.install(p)
	p.Update(ctx)
	row := e.portalFixture(p)
	if tok, _ := store.ApplicationToken(ctx, e.pool, e.kr, row.ID); tok != p.ApplicationToken() {
		t.Fatal("ONAPPUPDATE did not store the application token")
	}
	e.sim.SetUnsettled(b24sim.Unsettled{UpdateEvent: b24sim.UpdateEventLost})
	p.Update(ctx)
	if pg := e.open(p, p.AdminID()); pg.status != http.StatusOK {
		t.Fatalf("app page after the update: %d %s", pg.status, pg.body)
	}
	if !slices.Contains(p.Bindings(), "ONAPPUNINSTALL "+e.app.URL+"/b24/events") {
		t.Fatalf("events not bound again: %v", p.Bindings())
	}
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d %s", d.Status, d.Err)
	}
	e.erased(row)
}

// The same flood from many addresses (an IPv6 subscriber holds 2^64 of
// them, a proxy list thousands) must stay as bounded: pending events share
// one row and one check job whatever address each came from, and refuted
// ones one row per hour, so no address count buys rows, jobs or calls.
func TestForgedUninstallFloodFromManyAddressesStaysBounded(t *testing.T) {
	t.Parallel()
	e := newB24EnvWith(t, func(c *config.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	p, row := e.installedFixture(23)
	appToken := p.ApplicationToken()

	const flood = 120
	for i := range flood {
		form := uninstallForm(p, appToken, true)
		req, err := http.NewRequest(http.MethodPost, e.app.URL+"/b24/events", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("2001:db8::%x", i+1))
		resp, err := http.DefaultClient.Do(req)
		if pg := readPage(t, resp, err); pg.status >= 300 {
			t.Fatalf("forged uninstall answered %d %q", pg.status, pg.body)
		}
	}
	e.intact(p, row, appToken)
	if n := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending'`, row.ID); n > 1 {
		t.Errorf("%d pending uninstall_events rows from %d addresses, want at most 1", n, flood)
	}
	if n := e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'refuted'`, row.ID); n > 1 {
		t.Errorf("%d refuted uninstall_events rows from %d addresses within the hour, want at most 1", n, flood)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'uninstall_check'`); n > 1 {
		t.Errorf("%d uninstall check jobs queued from %d addresses, want at most 1", n, flood)
	}
	if n := e.count(`SELECT coalesce(sum(repeats), 0) FROM uninstall_events WHERE portal_id = $1`, row.ID); n != flood {
		t.Errorf("the rows count %d events, want %d", n, flood)
	}
}

// The attacker: an employee sends a forged ONAPPUNINSTALL with CLEAN while
// the admin uninstalls the app keeping its data and installs it again.
// Bitrix24 refuses the tokens the check read (those of the installation
// just removed), but by the time the answer comes the portal is installed
// again: the answer says nothing about the new installation, which keeps
// its data and stays installed. Before, the reinstalled portal was marked
// uninstalled and its data erased at once.
func TestForgedCleanUninstallDuringAReinstallErasesNothing(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(70)
	forged := uninstallForm(p, p.ApplicationToken(), true)
	p.SetLatency(1500 * time.Millisecond)
	done := make(chan page, 1)
	go func() { done <- e.postEvent(forged) }()
	e.waitFor("the forged event's check to reach Bitrix24", func() bool { return p.Requests()["app.info"] == 1 })
	p.SetLatency(0)
	p.Uninstall(ctx, false)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("genuine uninstall: %d", d.Status)
	}
	e.install(p)
	if !e.portal(p.MemberID()).Installed() {
		t.Fatal("the reinstall did not take")
	}
	pg := <-done
	if pg.status != http.StatusOK {
		t.Fatalf("forged uninstall: %d %s", pg.status, pg.body)
	}
	e.intact(p, row, p.ApplicationToken())
	// The genuine uninstall without CLEAN, taken on refused tokens, has a
	// recheck whose end keeps the data; nothing erases.
	if e.count(`SELECT count(*) FROM river_job WHERE kind = 'uninstall_erase' AND NOT coalesce((args->>'keep')::bool, false)`) != 0 {
		t.Fatal("an erase was scheduled for the reinstalled portal")
	}
	rows, err := e.pool.Query(ctx, `SELECT args FROM river_job WHERE kind = 'uninstall_erase'`)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	w := &jobs.UninstallEraseWorker{Pool: e.pool, Clients: e.checkClients(), Log: slog.New(slog.DiscardHandler)}
	for _, args := range ends {
		var a jobs.UninstallEraseArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		if err := w.Work(ctx, &river.Job[jobs.UninstallEraseArgs]{Args: a}); err != nil {
			t.Fatal(err)
		}
	}
	e.intact(p, row, p.ApplicationToken())
}

// The same through the check job: the forged CLEAN event waits for a retry
// (Bitrix24 failed once), and the job's question is in flight while the
// admin uninstalls keeping the data and installs again. The job's answer
// concerns the installation removed: the event expires, and the new
// installation keeps its data.
func TestUninstallCheckDuringAReinstallErasesNothing(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(71)
	p.InjectFault(b24sim.Fault{Method: "app.info", Status: http.StatusInternalServerError, Code: "INTERNAL_SERVER_ERROR", Count: 1})
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true)); pg.status != http.StatusAccepted {
		t.Fatalf("forged uninstall, Bitrix24 failing: %d %s", pg.status, pg.body)
	}
	p.SetLatency(1500 * time.Millisecond)
	e.startUninstallWorker()
	e.waitFor("the job's check to reach Bitrix24", func() bool { return p.Requests()["app.info"] == 2 })
	p.SetLatency(0)
	p.Uninstall(ctx, false)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("genuine uninstall: %d", d.Status)
	}
	e.install(p)
	e.waitFor("the forged event settled", func() bool {
		return e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending'`, row.ID) == 0
	})
	e.intact(p, row, p.ApplicationToken())
	if e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND clean AND state = 'expired' AND reason = $2`,
		row.ID, uninstall.ReasonReinstalled) != 1 {
		t.Error("the forged event is not recorded as left alone for the reinstall")
	}
}

// The attacker: an employee keeps a forged CLEAN ONAPPUNINSTALL waiting for
// its check (here Bitrix24 failed once; a flood past the portal's bucket
// does the same), and the admin then removes the app without CLEAN, meaning
// to keep its data. Bitrix24 confirms that the app is gone, which is true
// of both events, and the forged one is checked first. The erase of a CLEAN
// uninstall waits uninstall.SettleDelay and is dropped because an uninstall
// without CLEAN came in meanwhile; before, the forged event's check erased
// the portal's data at once.
func TestForgedCleanUninstallRacingOneThatKeepsTheData(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(72)
	fail := b24sim.Fault{Method: "app.info", Status: http.StatusInternalServerError, Code: "INTERNAL_SERVER_ERROR", Count: 1}
	p.InjectFault(fail)
	if pg := e.postEvent(uninstallForm(p, p.ApplicationToken(), true)); pg.status != http.StatusAccepted {
		t.Fatalf("forged uninstall, Bitrix24 failing: %d %s", pg.status, pg.body)
	}
	p.InjectFault(fail)
	p.Uninstall(ctx, false)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusAccepted {
		t.Fatalf("genuine uninstall, Bitrix24 failing: %d", d.Status)
	}
	e.startUninstallWorkers(1) // the forged event, queued first, is checked first
	e.waitFor("both events settled", func() bool {
		return e.count(`SELECT count(*) FROM uninstall_events WHERE portal_id = $1 AND state = 'pending'`, row.ID) == 0
	})
	e.keptThroughErases(p, row)
}

// The same when the admin's uninstall without CLEAN is being checked as the
// forged CLEAN one comes in and is confirmed first: the admin's event finds
// the portal uninstalled already, and still drops the erase.
func TestForgedCleanUninstallOvertakingOneThatKeepsTheData(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p, row := e.installedFixture(73)
	forged := uninstallForm(p, p.ApplicationToken(), true)
	p.SetLatency(1500 * time.Millisecond)
	done := make(chan struct{})
	go func() { defer close(done); p.Uninstall(ctx, false) }()
	e.waitFor("the genuine event's check to reach Bitrix24", func() bool { return p.Requests()["app.info"] == 1 })
	p.SetLatency(0)
	if pg := e.postEvent(forged); pg.status != http.StatusOK {
		t.Fatalf("forged uninstall: %d %s", pg.status, pg.body)
	}
	<-done
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("genuine uninstall: %d", d.Status)
	}
	e.keptThroughErases(p, row)
}

// keptThroughErases fails the test unless the portal was uninstalled and its
// settings outlive the erases scheduled for it (run now): an uninstall
// without CLEAN kept them.
func (e *b24Env) keptThroughErases(p *b24sim.Portal, row store.Portal) {
	e.t.Helper()
	if e.portal(p.MemberID()).Installed() {
		e.t.Fatal("the uninstall was not acted on")
	}
	e.runErases(row) // fails if the settings are gone before it
	if e.count(`SELECT count(*) FROM portal_settings WHERE portal_id = $1`, row.ID) != 1 {
		e.t.Fatal("the scheduled erase erased the data of an uninstall that kept it")
	}
}

// The admin removes the app with CLEAN from a portal whose Bitrix24 still
// answers app.info on the old tokens, with INSTALLED false: the erase waits
// uninstall.EraseDelay, and nothing marks the tokens refused. Days later an
// employee (or a former one) who kept the application token sends
// ONAPPUNINSTALL without CLEAN. Bitrix24 sends the event once, as the app is
// removed, so one days later is no news: it must not keep the data the admin
// chose to erase.
func TestLateUninstallWithoutCleanDoesNotKeepANotInstalledErase(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(43, 12, 3), AfterUninstall: b24sim.GoneNotInstalled})
	e.install(p)
	row := e.portalFixture(p)
	appToken := p.ApplicationToken()
	p.Uninstall(ctx, true)
	if d := lastDelivery(t, p, "ONAPPUNINSTALL"); d.Status != http.StatusOK {
		t.Fatalf("ONAPPUNINSTALL answered %d", d.Status)
	}
	var reason string
	if err := e.pool.QueryRow(ctx, `SELECT reason FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'`,
		row.ID).Scan(&reason); err != nil || reason != uninstall.ReasonNotInstalled {
		t.Fatalf("confirmed uninstall: %q %v, want %q", reason, err, uninstall.ReasonNotInstalled)
	}
	e.advance(2 * 24 * time.Hour)
	if pg := e.postEvent(uninstallForm(p, appToken, false)); pg.status != http.StatusOK {
		t.Fatalf("late uninstall without CLEAN: %d %q", pg.status, pg.body)
	}
	e.erased(row)
}

// The attacker of an uninstall without CLEAN: an employee who has seen the
// application token sends it while the portal's payment has lapsed (or its
// refresh token outlived its idle days, or an update reopened the
// installer). Bitrix24 refuses the tokens as it would after a removal, so
// the portal stops, but it keeps its tokens and nothing is erased; when the
// lapse ends, the end of the recheck finds the app working and the portal
// installed again with its syncs, no reinstall needed.
func TestForgedUninstallWithoutCleanOfALapsedPortalStopsNothingForGood(t *testing.T) {
	t.Parallel()
	for i, c := range lapseCases(func(p *b24sim.Portal) { p.FinishInstall(context.Background()) }) {
		e := newB24Env(t)
		ctx := context.Background()
		p, row, appToken := e.lapsedPortal(int64(60+i), c.lapse)
		if pg := e.postEvent(uninstallForm(p, appToken, false)); pg.status != http.StatusOK || pg.body != "ok\n" {
			t.Fatalf("%s: forged uninstall without CLEAN: %d %q", c.name, pg.status, pg.body)
		}
		if e.portal(p.MemberID()).Installed() {
			t.Fatalf("%s: the uninstall taken on refused tokens was not acted on", c.name)
		}
		if e.count(`SELECT count(*) FROM portals WHERE id = $1 AND uninstall_recheck AND refresh_token IS NOT NULL`, row.ID) != 1 {
			t.Fatalf("%s: the tokens to ask Bitrix24 again with were dropped: the syncs stop for good", c.name)
		}
		var args []byte
		if err := e.pool.QueryRow(ctx, `SELECT args FROM river_job WHERE kind = 'uninstall_erase' AND state = 'scheduled'
			AND (args->>'portal_id')::bigint = $1 AND scheduled_at > now() + interval '7 days'`, row.ID).Scan(&args); err != nil {
			t.Fatalf("%s: no end of the recheck scheduled days ahead: %v", c.name, err)
		}
		var a jobs.UninstallEraseArgs
		if err := json.Unmarshal(args, &a); err != nil {
			t.Fatal(err)
		}
		if !a.Recheck || !a.Keep {
			t.Fatalf("%s: the end of the recheck is %+v, want one that keeps the data", c.name, a)
		}
		c.mend(p)
		w := &jobs.UninstallEraseWorker{Pool: e.pool, Clients: e.checkClients(), Log: slog.New(slog.DiscardHandler)}
		if err := w.Work(ctx, &river.Job[jobs.UninstallEraseArgs]{Args: a}); err != nil {
			t.Fatal(err)
		}
		if !e.portal(p.MemberID()).Installed() {
			t.Fatalf("%s: the portal whose app works again stays uninstalled", c.name)
		}
		e.intact(p, row, appToken)
	}
}

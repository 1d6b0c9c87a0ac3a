package main

// The whole journey in a real browser: a Bitrix24 admin installs the app from
// the (simulated) portal page, fills the settings in the iframe, sends the
// activation request; an iSpring manager activates the portal in the
// console; the admin presses Sync now and watches the result arrive in the
// status panel; the employees are in Learn; the admin uninstalls with
// CLEAN and the portal's data is gone. Screenshots of each step go to
// artifacts/walkthrough/.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/browsertest"
	"b24learn/internal/config"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/manager"
	"b24learn/internal/pgtest"
	"b24learn/internal/secret"
	"b24learn/internal/syncer"
	"b24learn/internal/uninstall"
)

type walk struct {
	t       *testing.T
	ctx     context.Context
	appURL  string
	pool    *pgxpool.Pool
	shotDir string
	shots   int
	browser *browsertest.Browser
}

func TestWalkthroughInBrowser(t *testing.T) {
	if _, err := os.Stat(browsertest.ChromiumPath); err != nil {
		t.Skipf("Chromium is not installed at %s (apt-get install chromium; .ci/run installs it): walk-through skipped", browsertest.ChromiumPath)
	}
	start := time.Now()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// iSpring Learn: one account.
	const learnEmail, learnPassword = "admin@learn.walk", "learn-walk-password"
	ls := learnsim.New(learnsim.Options{Seed: 5, Mount: learnsim.MountAccountHost}) // the API under the account URL's /api/v2
	lsrv := httptest.NewServer(ls.Handler())
	t.Cleanup(lsrv.Close)
	if _, err := ls.AddAccount(learnsim.AccountOptions{URL: lsrv.URL, Email: learnEmail, Password: learnPassword, RootName: "Walk Co"}); err != nil {
		t.Fatal(err)
	}

	// Bitrix24: the customer's portal (not installed yet) and iSpring's CRM.
	addr := freeAddr(t)
	appURL := "http://" + addr
	bs := b24sim.Start(b24sim.Options{AppURL: appURL, Rate: -1})
	t.Cleanup(bs.Close)
	portal := bs.AddPortal(b24sim.PortalOptions{Lang: "ru", Org: b24sim.GenerateOrg(21, 90, 9)})
	crm := bs.AddPortal(b24sim.PortalOptions{WebhookCode: "walkthrough"})

	// The app, in process, as `serve` runs it.
	env := map[string]string{
		"DATABASE_URL": dbURL, "HTTP_ADDR": addr, "PUBLIC_URL": appURL,
		"B24_CLIENT_ID": bs.ClientID(), "B24_CLIENT_SECRET": bs.ClientSecret(), "B24_OAUTH_URL": bs.URL,
		"SECRET_KEYS": testKey, "LEARN_ALLOW_PRIVATE_HOSTS": "true", "B24_ALLOW_PRIVATE_HOSTS": "true", "LEAD_WEBHOOK_URL": crm.WebhookURL(),
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logw := &syncWriter{w: &logs}
	// Debug level: everything the app would ever log is checked for secrets.
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- serve(sctx, cfg, log, serveOptions{noMigrate: true, ready: func(string) { close(ready) }})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-served:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	const managerEmail, managerPassword = "manager@ispring.walk", "walk-manager-password"
	if _, err := manager.CreateManager(ctx, pool, manager.DefaultHasher(), managerEmail, managerPassword); err != nil {
		t.Fatal(err)
	}

	w := newWalk(t, appURL, pool)
	t.Logf("setup %s", time.Since(start).Round(time.Millisecond))

	// 1. Install from the portal page: the installer runs in the iframe,
	// calls installFinish, and the portal reopens the app: the settings.
	w.run(chromedp.Navigate(portal.PageURL()))
	w.waitTop("the portal page", `document.querySelector('form[action$="/install"] button')`)
	w.screenshot("portal-before-install")
	w.top(`document.querySelector('form[action$="/install"] button').click()`)
	w.waitApp("the settings page after installFinish", `document.querySelector('#settings-form') && document.querySelector('#tree-inner .tree-row')`)
	if !portal.Installed() {
		t.Fatal("b24sim did not see installFinish")
	}
	w.screenshot("settings-opened")

	// 2. Settings: Learn account, run times, toggles, two departments with
	// one sub-department left out.
	depts := portal.Departments()
	root := depts[0].ID
	var picked []b24sim.Department
	for _, d := range depts {
		if d.Parent == root && len(picked) < 2 {
			picked = append(picked, d)
		}
	}
	var excluded *b24sim.Department
	for _, d := range depts {
		if len(picked) > 0 && d.Parent == picked[0].ID {
			excluded = &d
			break
		}
	}
	if len(picked) < 2 {
		t.Fatalf("the generated org has fewer than two top-level departments: %+v", depts)
	}
	firstRun := time.Now().UTC().Add(6 * time.Hour).Format("15:04") // no scheduled run during the test
	w.app(fmt.Sprintf(`(() => {
		const set = (id, v) => { const e = document.getElementById(id); e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); };
		set('learn_url', %q); set('learn_email', %q); set('learn_password', %q);
		set('first_run', %q); set('second_run', '');
		const cb = (id, on) => { const e = document.getElementById(id); if (e.checked !== on) e.click(); };
		cb('send_login_email', true); cb('heads_as_managers', true); cb('parent_heads_as_supervisors', false);
		document.querySelector('[data-tree="none"]').click();
		return true;
	})()`, lsrv.URL, learnEmail, learnPassword, firstRun), nil)
	for _, d := range picked {
		w.tickDept(d)
	}
	if excluded != nil {
		w.tickDept(*excluded)
	}
	w.app(`(() => { const s = document.getElementById('tree-search'); s.value = ''; s.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, nil)
	w.app(`document.getElementById('save-btn').click()`, nil)
	w.waitApp("the save result", `!document.getElementById('form-result').hidden`)
	var saved struct {
		OK   bool   `json:"ok"`
		Text string `json:"text"`
	}
	w.app(`({ok: document.getElementById('form-result').classList.contains('ok'), text: document.getElementById('form-result').textContent})`, &saved)
	if !saved.OK {
		t.Fatalf("saving the settings failed: %s", saved.Text)
	}
	w.screenshot("settings-saved")
	// The save-time Learn check, like every outgoing call, is in the
	// portal's call log (written in the background within a second or so).
	checkDeadline := time.Now().Add(10 * time.Second)
	for {
		var learnCalls int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM call_log c JOIN portals p ON p.id = c.portal_id
			WHERE p.member_id = $1 AND c.service = 'learn'`, portal.MemberID()).Scan(&learnCalls); err != nil {
			t.Fatal(err)
		}
		if learnCalls > 0 {
			break
		}
		if time.Now().After(checkDeadline) {
			t.Fatal("the Learn connection check is not in the call log")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 3. The activation request, prefilled with the admin's name.
	var prefilled string
	w.app(`document.querySelector('#activation-form [name=name]').value`, &prefilled)
	if strings.TrimSpace(prefilled) == "" {
		t.Error("the activation form is not prefilled with the admin's name")
	}
	w.app(`(() => {
		const f = document.getElementById('activation-form');
		f.querySelector('[name=name]').value = 'Анна Смирнова';
		f.querySelector('[name=email]').value = 'anna@customer.example';
		f.querySelector('[name=phone]').value = '+7 912 345-67-89';
		f.querySelector('button[type=submit]').click();
		return true;
	})()`, nil)
	w.waitApp("the activation confirmation", `document.querySelector('[data-testid="activation-sent"]') &&
		document.querySelector('#activation-state[data-state="requested"]')`)
	w.screenshot("activation-sent")

	// 4. The manager signs in, finds the request, opens the portal, activates.
	w.run(chromedp.Navigate(appURL + "/manager"))
	w.waitTop("the sign-in form", `document.querySelector('form[action="/manager/signin"] #email')`)
	w.top(fmt.Sprintf(`(() => { document.getElementById('email').value = %q; document.getElementById('password').value = %q;
		document.querySelector('form[action="/manager/signin"] button[type=submit]').click(); return true; })()`, managerEmail, managerPassword))
	w.waitTop("the requests list", `document.querySelector('[data-testid="requests"] tr[data-request-id]')`)
	var row string
	w.evalTop(`document.querySelector('[data-testid="requests"] tr[data-request-id]').textContent`, &row)
	if !strings.Contains(row, portal.Domain()) || !strings.Contains(row, "Анна Смирнова") || !strings.Contains(row, "anna@customer.example") {
		t.Errorf("the request row lacks the portal or the contact: %q", row)
	}
	w.screenshot("manager-requests")
	w.top(`document.querySelector('[data-testid="requests"] tr[data-request-id] a[href^="/manager/portals/"]').click()`)
	w.waitTop("the portal page of the console", `document.querySelector('button[name="state"][value="active"]')`)
	w.top(`(() => { document.getElementById('note').value = 'walk-through: customer called'; document.querySelector('button[name="state"][value="active"]').click(); return true; })()`)
	w.waitTop("the portal activated", `document.querySelector('[data-testid="activation-state"]') && document.querySelector('[data-testid="activation-state"]').textContent.trim() === 'active'`)
	w.screenshot("manager-portal-activated")

	// 5. Back in Bitrix24: the app shows the integration active. Preview:
	// what the first sync would do, shown in the status panel.
	w.run(chromedp.Navigate(portal.PageURL()))
	w.waitApp("the app, activated", `document.querySelector('#activation-state[data-state="active"]') && !document.querySelector('[data-action="sync"]').disabled`)
	w.app(`document.querySelector('[data-action="preview"]').click()`, nil)
	w.waitApp("the preview in the status panel", `!document.getElementById('preview-box').hidden && document.querySelector('#preview-body li')`)
	w.screenshot("preview")

	// 6. Sync now: the status panel follows the run to its end without a reload.
	w.app(`(() => {
		// The panel is replaced while the run goes on: watch the app for it.
		const seen = () => { const box = document.getElementById('job-state'); if (box && !box.hidden && box.textContent) document.documentElement.dataset.sawJob = box.textContent; };
		new MutationObserver(seen).observe(document.getElementById('app'), {attributes: true, childList: true, characterData: true, subtree: true});
		document.querySelector('[data-action="sync"]').click();
		return true;
	})()`, nil)
	w.waitApp("the finished run in the status panel", `(() => {
		const r = document.getElementById('last-run');
		return r && r.dataset.status && r.dataset.status !== 'running' && document.getElementById('job-state').hidden;
	})()`)
	var panel struct {
		Status  string `json:"status"`
		Counts  string `json:"counts"`
		SawJob  string `json:"sawJob"`
		Runs    int    `json:"runs"`
		Preview bool   `json:"preview"` // still shown after a newer sync
		Stale   bool   `json:"stale"`   // "sync started" still shown
	}
	w.app(`({status: document.getElementById('last-run').dataset.status, counts: document.querySelector('#last-run .s-counts').textContent,
		sawJob: document.documentElement.dataset.sawJob || '', stale: !document.getElementById('action-result').hidden, runs: document.querySelectorAll('#runs-box tbody tr').length,
		preview: !document.getElementById('preview-box').hidden})`, &panel)
	t.Logf("status panel: %+v", panel)
	if (panel.Status != syncer.RunSucceeded && panel.Status != syncer.RunPartial) || !strings.Contains(panel.Counts, "создано пользователей: ") ||
		!strings.Contains(panel.Counts, "создано подразделений: ") || panel.SawJob == "" || panel.Runs != 2 || panel.Preview || panel.Stale {
		t.Errorf("the status panel after Sync now: %+v", panel)
	}
	w.screenshot("synced")
	if rows, err := pool.Query(ctx, `SELECT kind, b24_id, reason FROM sync_run_items WHERE status IN ('refused', 'failed')`); err == nil {
		for rows.Next() {
			var kind, reason string
			var id int64
			if rows.Scan(&kind, &id, &reason) == nil {
				t.Logf("not applied: %s %d: %s", kind, id, reason)
			}
		}
		rows.Close()
	}

	// 7. Learn holds the chosen departments and their employees.
	inScope := checkWalkLearn(t, ls, lsrv.URL, portal, picked, excluded)

	// The activation request also reached iSpring's CRM as a lead.
	deadline := time.Now().Add(10 * time.Second)
	for len(crm.Leads()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(crm.Leads()); n != 1 {
		t.Errorf("iSpring's CRM got %d leads, want 1", n)
	} else if c := fmt.Sprint(crm.Leads()[0].Fields["COMMENTS"]); !regexp.MustCompile(fmt.Sprintf(`Employees in scope:\s+%d\n`, inScope)).MatchString(c) {
		t.Errorf("the lead does not say the %d employees in scope:\n%s", inScope, c)
	}

	// 8. Uninstall with CLEAN from the portal page: the portal's data is
	// erased once the erase's settling time has passed.
	var portalID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM portals WHERE member_id = $1`, portal.MemberID()).Scan(&portalID); err != nil {
		t.Fatal(err)
	}
	// The secrets the app holds, to look for in its log afterwards.
	kr, _ := secret.NewKeyring(testKey)
	secrets := []string{learnPassword, managerPassword, portal.ApplicationToken()}
	var access, refresh []byte
	if err := pool.QueryRow(ctx, `SELECT access_token, refresh_token FROM portals WHERE id = $1`, portalID).Scan(&access, &refresh); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]byte{access, refresh} {
		p, err := kr.DecryptString(c)
		if err != nil || p == "" {
			t.Fatalf("stored token does not open: %v", err)
		}
		secrets = append(secrets, p)
	}
	w.top(`document.querySelector('form[action$="/uninstall"] input[name="clean"][value="1"]').form.querySelector('button').click()`)
	w.waitTop("the portal page after uninstall", `document.querySelector('form[action$="/install"] button')`)
	w.screenshot("uninstalled")
	// The erase waits uninstall.SettleDelay (an uninstall without CLEAN
	// coming in meanwhile would drop it), or uninstall.EraseDelay when
	// Bitrix24's answer could also be a lapsed app's; the job is brought
	// forward here.
	var reason string
	if err := pool.QueryRow(ctx, `SELECT reason FROM uninstall_events WHERE portal_id = $1 AND state = 'confirmed'`, portalID).Scan(&reason); err != nil {
		t.Fatalf("no confirmed uninstall: %v", err)
	}
	wantDelay := uninstall.SettleDelay
	if v, _ := uninstall.Classify(bitrix24.AppInfo{Installed: true}, &bitrix24.APIError{Code: reason}); v == uninstall.TokensRefused {
		wantDelay = uninstall.EraseDelay
	}
	var eraseIn time.Duration
	if err := pool.QueryRow(ctx, `SELECT extract(epoch FROM scheduled_at - now())::bigint * 1000000000 FROM river_job
		WHERE kind = 'uninstall_erase' AND state = 'scheduled' AND (args->>'portal_id')::bigint = $1`, portalID).Scan(&eraseIn); err != nil {
		t.Fatalf("no erase scheduled after uninstall with CLEAN: %v", err)
	}
	if eraseIn < wantDelay-time.Minute || eraseIn > wantDelay {
		t.Errorf("erase scheduled in %v, want %v (Bitrix24 answered %s)", eraseIn, wantDelay, reason)
	}
	if _, err := pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() WHERE kind = 'uninstall_erase' AND state = 'scheduled'`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM portal_settings WHERE portal_id = $1`, portalID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	var state string
	var tokens, settings, mappings, runs, requests int
	err = pool.QueryRow(ctx, `SELECT install_state,
		(access_token IS NOT NULL)::int + (refresh_token IS NOT NULL)::int + (application_token IS NOT NULL)::int,
		(SELECT count(*) FROM portal_settings WHERE portal_id = $1), (SELECT count(*) FROM sync_mappings WHERE portal_id = $1),
		(SELECT count(*) FROM sync_runs WHERE portal_id = $1), (SELECT count(*) FROM activation_requests WHERE portal_id = $1)
		FROM portals WHERE id = $1`, portalID).Scan(&state, &tokens, &settings, &mappings, &runs, &requests)
	if err != nil {
		t.Fatal(err)
	}
	if state != "uninstalled" || tokens != 0 || settings != 0 || mappings != 0 || runs != 0 || requests != 0 {
		t.Errorf("after uninstall with CLEAN: state %s, %d tokens, %d settings, %d mappings, %d runs, %d requests left",
			state, tokens, settings, mappings, runs, requests)
	}
	// iSpring's own record of the managers' actions on the portal stays.
	var audit int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM manager_audit WHERE portal_id = $1 AND action = 'activate'`, portalID).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if audit != 1 {
		t.Errorf("the managers' audit trail lost the activation (%d rows)", audit)
	}

	if errs := w.errors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
	logged := logw.String()
	if len(logged) == 0 {
		t.Error("the app logged nothing at debug level: the secrets check would prove nothing")
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logged, sec) {
			t.Errorf("the app's log contains a secret (%d characters)", len(sec))
		}
	}
	t.Logf("walk-through %s, %d screenshots in artifacts/walkthrough/", time.Since(start).Round(time.Millisecond), w.shots)
}

func newWalk(t *testing.T, appURL string, pool *pgxpool.Pool) *walk {
	t.Helper()
	w := &walk{t: t, appURL: appURL, pool: pool, shotDir: filepath.Join("..", "..", "artifacts", "walkthrough")}
	if err := os.RemoveAll(w.shotDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.browser = browsertest.Start(t, "ru-RU", 2*time.Minute)
	w.ctx = w.browser.Ctx
	return w
}

func (w *walk) run(steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, steps...); err != nil {
		w.t.Fatal(err)
	}
}

func (w *walk) errors() []string { return w.browser.JSErrors() }

// evalIn evaluates expr in the top page (frame "") or in the app's iframe.
func (w *walk) evalIn(inApp bool, expr string, out any) error {
	if inApp {
		return browsertest.EvalInFrame(w.ctx, func(url string) bool { return strings.HasPrefix(url, w.appURL+"/b24/") }, expr, out)
	}
	raw, err := chromedp.Run(w.ctx, chromedp.Evaluate[[]byte](expr, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func (w *walk) app(expr string, out any) {
	w.t.Helper()
	if err := w.evalIn(true, expr, out); err != nil {
		w.t.Fatalf("in the app: %s: %v", expr, err)
	}
}

func (w *walk) top(expr string) {
	w.t.Helper()
	if err := w.evalIn(false, expr, nil); err != nil {
		w.t.Fatalf("%s: %v", expr, err)
	}
}

func (w *walk) evalTop(expr string, out any) {
	w.t.Helper()
	if err := w.evalIn(false, expr, out); err != nil {
		w.t.Fatalf("%s: %v", expr, err)
	}
}

// waitFor polls a boolean expression until it holds; navigation in between
// makes single evaluations fail, which only means "not yet".
func (w *walk) waitFor(inApp bool, what, expr string) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		err := w.evalIn(inApp, "!!("+expr+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			w.screenshot("timeout")
			w.t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *walk) waitApp(what, expr string) { w.t.Helper(); w.waitFor(true, what, expr) }
func (w *walk) waitTop(what, expr string) { w.t.Helper(); w.waitFor(false, what, expr) }

// tickDept finds a department in the picker by searching its name and
// clicks the checkbox of the row with its id.
func (w *walk) tickDept(d b24sim.Department) {
	w.t.Helper()
	name, _ := json.Marshal(d.Name)
	var ok bool
	w.app(fmt.Sprintf(`(() => {
		const s = document.getElementById('tree-search');
		s.value = %s;
		s.dispatchEvent(new Event('input', {bubbles: true}));
		const k = JSON.parse(document.getElementById('tree-data').textContent).i.indexOf(%d);
		const row = document.querySelector('#tree-inner .tree-row[data-i="' + k + '"]');
		if (!row) return false;
		row.querySelector('.tree-cb').click();
		return true;
	})()`, name, d.ID), &ok)
	if !ok {
		w.t.Fatalf("department %d %q not found in the picker", d.ID, d.Name)
	}
}

// screenshot saves the browser window; the app's frame is first sized to
// its content, as BX24.fitWindow does in Bitrix24.
func (w *walk) screenshot(name string) {
	w.t.Helper()
	var h int
	if w.evalIn(true, `document.documentElement.scrollHeight`, &h) == nil && h > 0 {
		_ = w.evalIn(false, fmt.Sprintf(`(() => { const f = document.getElementById('appframe'); if (f) f.style.height = '%dpx'; return true; })()`, h+4), nil)
		time.Sleep(150 * time.Millisecond)
	}
	buf, err := chromedp.Run(w.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		w.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	w.shots++
	file := fmt.Sprintf("%02d-%s.png", w.shots, name)
	if err := os.WriteFile(filepath.Join(w.shotDir, file), buf, 0o644); err != nil {
		w.t.Fatal(err)
	}
	// The README's pictures: B24LEARN_DOC_SCREENSHOTS=1 go test -run Walkthrough ./cmd/b24learn
	if doc, ok := docScreenshots[name]; ok && os.Getenv("B24LEARN_DOC_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, doc), buf, 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
}

// docScreenshots are the walk-through's steps shown in the README.
var docScreenshots = map[string]string{
	"synced":                   "settings-ru-1280.png",
	"manager-requests":         "console-requests.png",
	"manager-portal-activated": "console-portal.png",
}

// checkWalkLearn compares the Learn account with the selection: the picked
// subtrees without the excluded one, each department once under its parent
// (a picked department under the Learn root), and every active employee with
// an e-mail in scope exactly once, active, in the first in-scope department.
// checkWalkLearn checks the Learn account against the portal and the picked
// departments, and returns how many employees the selection covers (those
// without an e-mail included: Learn refuses them, but they are in scope).
func checkWalkLearn(t *testing.T, ls *learnsim.Sim, accountURL string, portal *b24sim.Portal, picked []b24sim.Department, excluded *b24sim.Department) int {
	t.Helper()
	st, err := ls.Snapshot(accountURL)
	if err != nil {
		t.Fatal(err)
	}
	depts := portal.Departments()
	parent := map[int64]int64{}
	for _, d := range depts {
		parent[d.ID] = d.Parent
	}
	mark := map[int64]int{}
	for _, d := range picked {
		mark[d.ID] = 1
	}
	if excluded != nil {
		mark[excluded.ID] = -1
	}
	inScope := func(id int64) bool {
		for a := id; a != 0; a = parent[a] {
			if m := mark[a]; m != 0 {
				return m == 1
			}
		}
		return false
	}
	member := portal.MemberID()
	byCode := map[string]learnsim.Department{}
	for _, d := range st.Departments {
		if d.Code != "" {
			byCode[d.Code] = d
		}
	}
	learnDept := map[int64]string{}
	want := 0
	for _, d := range depts {
		dep, ok := byCode[syncer.DepartmentCode(member, d.ID)]
		if !inScope(d.ID) {
			if ok {
				t.Errorf("department %d %q is out of scope but in Learn", d.ID, d.Name)
			}
			continue
		}
		want++
		if !ok {
			t.Errorf("department %d %q missing in Learn", d.ID, d.Name)
			continue
		}
		learnDept[d.ID] = dep.ID
		if dep.Name != d.Name {
			t.Errorf("department %d named %q in Learn, want %q", d.ID, dep.Name, d.Name)
		}
	}
	for _, d := range depts {
		id, ok := learnDept[d.ID]
		if !ok {
			continue
		}
		wantParent := st.RootID
		if inScope(d.Parent) {
			wantParent = learnDept[d.Parent]
		}
		if dep := byCode[syncer.DepartmentCode(member, d.ID)]; dep.ParentID != wantParent {
			t.Errorf("department %q (%s) under %s, want %s", d.Name, id, dep.ParentID, wantParent)
		}
	}
	if len(byCode) != want {
		t.Errorf("Learn has %d synced departments, want %d", len(byCode), want)
	}
	users := map[string]learnsim.User{}
	for _, u := range st.Users {
		if u.ID != st.OwnerID {
			users[strings.ToLower(u.Fields["login"])] = u
		}
	}
	wantUsers, covered := 0, 0
	for _, e := range portal.Users() {
		if !e.Active || e.Extranet {
			continue
		}
		first := int64(0)
		for _, d := range e.Departments {
			if inScope(d) {
				first = d
				break
			}
		}
		if first != 0 {
			covered++
		}
		if e.Email == "" {
			continue
		}
		if first == 0 {
			if _, ok := users[strings.ToLower(e.Email)]; ok {
				t.Errorf("employee %s is out of scope but in Learn", e.Email)
			}
			continue
		}
		wantUsers++
		u, ok := users[strings.ToLower(e.Email)]
		if !ok {
			t.Errorf("employee %d %s missing in Learn", e.ID, e.Email)
			continue
		}
		if u.Status != 1 || u.DepartmentID != learnDept[first] {
			t.Errorf("employee %s: status %d in %s, want 1 in %s", e.Email, u.Status, u.DepartmentID, learnDept[first])
		}
	}
	if len(users) != wantUsers || wantUsers == 0 {
		t.Errorf("Learn has %d users besides the owner, want %d", len(users), wantUsers)
	}
	t.Logf("Learn: %d departments and %d users synced", len(byCode), len(users))
	return covered
}

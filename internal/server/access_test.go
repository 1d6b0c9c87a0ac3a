package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/metrics"
	"b24learn/internal/syncer"
)

// A portal user who is not an admin plays the attacker: they may see that
// syncs run, but not the Learn account, nor the reports and errors that
// name employees and their e-mails.
func TestNonAdminSeesNoAccountOrPersonalData(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()
	p := e.addPortal("pd", "en")
	adminSess, adminTok := e.session(p, 1, true, "en")
	userSess, userTok := e.session(p, 7, false, "en")
	if r, _ := e.save(adminTok, validForm()); r.status != http.StatusOK { // acme.ispringlearn.ru, admin@acme.ru
		t.Fatal(r.body)
	}
	const employee = "ann.lee@acme.ru"
	rs := syncer.NewStore(e.pool)
	run := func(trigger syncer.Trigger, status, errText string) int64 {
		t.Helper()
		id, err := rs.StartRun(ctx, p.ID, trigger)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.RecordItems(ctx, p.ID, id, []syncer.RunItem{{Kind: syncer.KindUser, B24ID: 9, Action: syncer.ActionCreate,
			After: map[string]string{"email": employee, "login": employee}, Status: syncer.ItemPlanned}}); err != nil {
			t.Fatal(err)
		}
		if err := rs.FinishRun(ctx, p.ID, id, status, map[string]int{"user.create": 1}, errText, nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	syncRun := run(syncer.TriggerManual, syncer.RunFailed, "learn: user "+employee+" refused by https://acme.ispringlearn.ru")
	run(syncer.TriggerPreview, syncer.RunPreviewed, "") // newest: the panel shows its rows
	e.exec(`UPDATE portals SET needs_attention = true, last_sync_error = $2 WHERE id = $1`,
		p.ID, "learn: https://acme.ispringlearn.ru refused "+employee)
	secrets := []string{employee, "acme.ispringlearn.ru", "admin@acme.ru"}

	// The admin sees all of it (so the checks below are not vacuous).
	for _, path := range []string{"/app/runs/" + strconv.FormatInt(syncRun, 10), "/app/runs/" + strconv.FormatInt(syncRun, 10) + "/csv"} {
		if r := e.do(http.MethodGet, path, adminTok, nil); r.status != http.StatusOK || !strings.Contains(r.body, employee) {
			t.Errorf("admin GET %s: %d %.200s", path, r.status, r.body)
		}
	}
	if r := e.do(http.MethodGet, "/app/status", adminTok, nil); !strings.Contains(r.body, employee) || !strings.Contains(r.body, "acme.ispringlearn.ru") {
		t.Errorf("admin status lacks the preview rows or the error: %.300s", r.body)
	}
	if body := e.page(p, adminSess, adminTok); !strings.Contains(body, `value="https://acme.ispringlearn.ru"`) ||
		!strings.Contains(body, `value="admin@acme.ru"`) || !strings.Contains(body, `data-csv="`) {
		t.Error("the admin's page lacks the account or the report links")
	}

	// The non-admin: reports and CSVs refused, whatever the run id.
	for _, path := range []string{"/app/runs/" + strconv.FormatInt(syncRun, 10), "/app/runs/" + strconv.FormatInt(syncRun, 10) + "/csv",
		"/app/runs/999999", "/app/runs/999999/csv"} {
		if r := e.do(http.MethodGet, path, userTok, nil); r.status != http.StatusForbidden || strings.Contains(r.body, employee) {
			t.Errorf("non-admin GET %s: %d %.200s, want 403", path, r.status, r.body)
		}
	}
	// The polled status panel still reports the runs, without names,
	// e-mails, the Learn address or report links.
	st, v := e.panel(userTok)
	if st != http.StatusOK || v.rows() != 2 || v.attr("last-run", "data-status") != syncer.RunFailed || v.shown("attention-note") == "" {
		t.Fatalf("non-admin status: %d %.1000s", st, v.body)
	}
	if strings.Contains(v.body, `data-report="`) || strings.Contains(v.body, `data-csv="`) || !v.hidden("preview-box") {
		t.Errorf("non-admin status offers reports or preview rows: %.1000s", v.body)
	}
	body := e.page(p, userSess, userTok)
	for _, s := range secrets {
		if strings.Contains(v.body, s) {
			t.Errorf("non-admin status panel contains %q: %s", s, v.body)
		}
		if strings.Contains(body, s) {
			t.Errorf("non-admin page contains %q", s)
		}
	}
	for _, link := range []string{`data-report="`, `data-csv="`} {
		if strings.Contains(body, link) {
			t.Errorf("non-admin page has report links (%s)", link)
		}
	}
	if !strings.Contains(body, "Syncs keep failing") || !strings.Contains(body, `id="learn_url" name="learn_url" value=""`) ||
		!strings.Contains(body, `id="learn_email" name="learn_email" value=""`) {
		t.Error("the read-only page lost the failure note or shows account fields filled in")
	}
}

// A session minted before an uninstall, or before a reinstall (even one
// whose uninstall event never arrived), is refused afterwards; the demoted
// admin's older session loses its rights once Bitrix24 has said so.
func TestSessionsEndAtReinstallAndDemotion(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	p := e.addPortal(11)
	e.install(p)
	adminID := p.AdminID()
	old := e.open(p, adminID).session()
	oldUser := e.open(p, p.NonAdminID()).session()
	if pg, st := e.state(old); pg.status != http.StatusOK || !st.Admin {
		t.Fatalf("fresh admin session: %d %+v", pg.status, st)
	}

	// An install POST while the app counts as installed: a reinstall whose
	// uninstall event was lost looks just like this to the app.
	_, q, body, err := p.FrameRequest(adminID)
	if err != nil {
		t.Fatal(err)
	}
	if pg := e.post("/b24/install", q, body); pg.status != http.StatusOK {
		t.Fatalf("installer: %d %s", pg.status, pg.body)
	}
	for name, tok := range map[string]string{"admin": old, "user": oldUser} {
		if pg, _ := e.state(tok); pg.status != http.StatusUnauthorized {
			t.Errorf("%s session from before the reinstall: %d, want 401", name, pg.status)
		}
	}
	cur := e.open(p, adminID).session()
	if pg, st := e.state(cur); pg.status != http.StatusOK || !st.Admin {
		t.Fatalf("session after reinstall: %d %+v", pg.status, st)
	}

	// Uninstall, then reinstall: the session from before stays refused.
	p.Uninstall(ctx, false)
	e.install(p)
	if pg, _ := e.state(cur); pg.status != http.StatusUnauthorized {
		t.Errorf("session from before uninstall and reinstall: %d, want 401", pg.status)
	}

	// Demotion: the admin keeps an old tab open, is demoted in Bitrix24 and
	// opens the app again; the old tab's token is no longer an admin's.
	tab := e.open(p, adminID).session()
	if err := p.UpdateUser(adminID, func(u *b24sim.User) { u.Admin = false }); err != nil {
		t.Fatal(err)
	}
	if pg := e.open(p, adminID); pg.status != http.StatusOK || !strings.Contains(pg.body, `data-admin="false"`) {
		t.Fatalf("demoted admin's open: %d", pg.status)
	}
	if pg, st := e.state(tab); pg.status != http.StatusOK || st.Admin {
		t.Errorf("demoted admin's old session: %d %+v, want read-only", pg.status, st)
	}
	req, _ := http.NewRequest(http.MethodPost, e.app.URL+"/app/preview", nil)
	req.Header.Set("X-Session", tab)
	resp, err := http.DefaultClient.Do(req)
	if pg := readPage(t, resp, err); pg.status != http.StatusForbidden {
		t.Errorf("demoted admin's old session POST /app/preview: %d, want 403", pg.status)
	}
	// Promoted again, the next open gives admin rights back.
	if err := p.UpdateUser(adminID, func(u *b24sim.User) { u.Admin = true }); err != nil {
		t.Fatal(err)
	}
	if _, st := e.state(e.open(p, adminID).session()); !st.Admin {
		t.Error("a promoted admin's new session is not an admin's")
	}
}

// Without script the activation form's answer replaces the page inside the
// Bitrix24 iframe: it must be framable by the portal, not 'none'.
func TestActivationPageIsFramedByThePortal(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	p := e.addPortal(12)
	e.install(p)
	tok := e.open(p, p.AdminID()).session()
	form := url.Values{"session": {tok}, "name": {"Anna Schmidt"}, "email": {"anna@example.com"}, "phone": {"+7 912 345-67-89"}}
	pg := e.post("/app/activation", nil, form)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "<html") {
		t.Fatalf("activation page: %d %.300s", pg.status, pg.body)
	}
	checkFrameHeaders(t, pg, p)
}

// /metrics on the public address: 404 without the token, with a wrong one,
// and when no token is configured; 200 only with the right bearer token.
func TestPublicMetricsNeedTheToken(t *testing.T) {
	t.Parallel()
	const token = "metrics-token-0123456789"
	for _, c := range []struct {
		configured, auth string
		want             int
	}{
		{"", "", http.StatusNotFound},
		{"", "Bearer ", http.StatusNotFound},
		{"", "Bearer " + token, http.StatusNotFound},
		{token, "", http.StatusNotFound},
		{token, "Bearer wrong", http.StatusNotFound},
		{token, "Bearer " + token[:len(token)-1], http.StatusNotFound},
		{token, "bearer " + token, http.StatusNotFound},
		{token, token, http.StatusNotFound},
		{token, "Bearer " + token, http.StatusOK},
	} {
		cfg := &config.Config{MetricsToken: c.configured}
		h := New(Deps{Log: slog.New(slog.DiscardHandler), Config: cfg, Metrics: metrics.New(), Clients: testClients(cfg, nil)})
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != c.want {
			t.Errorf("token %q, Authorization %q: %d, want %d", c.configured, c.auth, rec.Code, c.want)
		}
		if got := strings.Contains(string(body), "go_goroutines"); got != (c.want == http.StatusOK) {
			t.Errorf("token %q, Authorization %q: metrics in the body = %v", c.configured, c.auth, got)
		}
	}
}

// An admin demoted (or dismissed) in Bitrix24 keeps their open tab: its
// session still says admin for its two hours. What it reads that names
// employees, the run reports and CSVs, the employee search and person view,
// and the panel's preview rows, is refused until Bitrix24 says again, on the
// user's own token, that they are an admin.
func TestDemotedAdminsOpenTabReadsNoPersonalData(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()
	p := e.addPortal("demoted-reads", "en")
	_, adminTok := e.session(p, 1, true, "en")
	if r, _ := e.save(adminTok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	const employee = "ann.lee@acme.ru"
	rs := syncer.NewStore(e.pool)
	var runID int64
	for _, trigger := range []syncer.Trigger{syncer.TriggerManual, syncer.TriggerPreview} {
		id, err := rs.StartRun(ctx, p.ID, trigger)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.RecordItems(ctx, p.ID, id, []syncer.RunItem{{Kind: syncer.KindUser, B24ID: 9, Action: syncer.ActionCreate,
			After: map[string]string{"email": employee, "login": employee}, Status: syncer.ItemPlanned}}); err != nil {
			t.Fatal(err)
		}
		status := syncer.RunSucceeded
		if trigger == syncer.TriggerPreview {
			status = syncer.RunPreviewed
		} else {
			runID = id
		}
		if err := rs.FinishRun(ctx, p.ID, id, status, map[string]int{"user.create": 1}, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	run := "/app/runs/" + strconv.FormatInt(runID, 10)
	reads := []string{run, run + "/csv", "/app/people?q=" + url.QueryEscape("Lee"), "/app/people/9"}

	// The session says admin; Bitrix24 now says the user is not one.
	_, tab := func() (Session, string) {
		sess, tok, err := e.s.newSession(p, 5, true, "en", fakeAuth(5, false))
		if err != nil {
			t.Fatal(err)
		}
		return sess, tok
	}()
	st, v := e.panel(tab)
	if st != http.StatusOK || strings.Contains(v.body, employee) || !v.hidden("preview-box") ||
		strings.Contains(v.body, `data-csv="`) {
		t.Errorf("demoted admin's status panel: %d, shows preview rows or report links: %.1000s", st, v.body)
	}
	for _, path := range reads {
		if r := e.do(http.MethodGet, path, tab, nil); r.status != http.StatusForbidden || strings.Contains(r.body, employee) {
			t.Errorf("demoted admin's tab GET %s: %d %.200s, want 403", path, r.status, r.body)
		}
	}
	// The admin still proven reads the same report (so the refusals above
	// are not vacuous).
	if r := e.do(http.MethodGet, run+"/csv", adminTok, nil); r.status != http.StatusOK || !strings.Contains(r.body, employee) {
		t.Errorf("admin GET %s/csv: %d %.200s", run, r.status, r.body)
	}
}

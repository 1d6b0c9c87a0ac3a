package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/manager"
	"b24learn/internal/syncer"
)

// opsFixture gives a portal a failed run, River jobs and call log entries
// whose texts carry the marker, so a page can be checked for whose rows it
// shows; hostile is what an attacker-controlled error or name might hold.
func (e *consoleEnv) opsFixture(portalID int64, marker, hostile string) {
	e.t.Helper()
	ctx := context.Background()
	st := syncer.NewStore(e.pool)
	runID, err := st.StartRun(ctx, portalID, syncer.TriggerScheduled)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := st.FinishRun(ctx, portalID, runID, syncer.RunFailed, map[string]int{"user.create": 3, "department.move": 1},
		"run-"+marker+" "+hostile, nil); err != nil {
		e.t.Fatal(err)
	}
	args := `{"portal_id": ` + strconv.FormatInt(portalID, 10) + `}`
	jobErr := `{"at": "2026-01-02T03:04:05Z", "attempt": 1, "error": ` + strconv.Quote("job-"+marker+" "+hostile) + `}`
	for _, q := range []string{
		`INSERT INTO river_job (args, kind, max_attempts, state, attempt, attempted_at, errors, finalized_at)
		 VALUES ($1, 'sync_scheduled', 6, 'discarded', 6, now(), ARRAY[$2::jsonb], now())`,
		`INSERT INTO river_job (args, kind, max_attempts, state, attempt, attempted_at, errors)
		 VALUES ($1, 'sync', 6, 'retryable', 1, now(), ARRAY[$2::jsonb])`,
		`INSERT INTO river_job (args, kind, max_attempts, state) VALUES ($1, 'sync_preview', 3, 'available')`,
	} {
		var a []any
		a = append(a, args)
		if strings.Contains(q, "$2") {
			a = append(a, jobErr)
		}
		if _, err := e.pool.Exec(ctx, q, a...); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO call_log (portal_id, at, service, method, status, duration_ms, error_code)
		VALUES ($1, now(), 'bitrix24', $2, 503, 1234, $3), ($1, now(), 'learn', 'GET /user', 0, 7, 'transport_error')`,
		portalID, "user.get-"+marker, hostile); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET needs_attention = true, sync_failures = 3, last_sync_error = $2 WHERE id = $1`,
		portalID, "last-"+marker+" "+hostile); err != nil {
		e.t.Fatal(err)
	}
}

func TestConsoleOperatorPages(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	const hostile = `<img src=x onerror=alert(1)>`
	a, b := e.portal("a.bitrix24.com"), e.portal("b.bitrix24.com")
	quiet := e.portal("quiet.bitrix24.com")
	e.opsFixture(a, "AAA", hostile)
	e.opsFixture(b, "BBB", hostile)
	// Jobs of no portal (the dispatcher) appear only in River UI.
	if _, err := e.pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, state) VALUES ('{}', 'dispatch', 1, 'available'), ('{}', 'dispatch', 1, 'available')`); err != nil {
		t.Fatal(err)
	}

	signedOut := e.browser("10.0.1.1")
	for _, path := range []string{"/manager/river/", "/manager/river", "/manager/portals/" + strconv.FormatInt(a, 10)} {
		if rec := signedOut.do("GET", path, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
			t.Fatalf("%s signed out: %d %q", path, rec.Code, rec.Header().Get("Location"))
		}
	}

	br := e.browser("10.0.1.2")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	escaped := func(name, body string) {
		t.Helper()
		if strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s: hostile string not escaped", name)
		}
	}

	rec := br.do("GET", "/manager/portals/"+strconv.FormatInt(a, 10), nil)
	page := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("portal page: %d\n%s", rec.Code, page)
	}
	escaped("portal page", page)
	for _, want := range []string{"run-AAA", "job-AAA", "user.get-AAA", "last-AAA", `data-testid="last-error"`,
		"Needs attention.", "3 failed sync attempts in a row.", "department.move 1 · user.create 3",
		"sync_scheduled", "discarded", "6 / 6", "sync_preview", "GET /user", "transport_error", "no answer", "1.2 s", "503"} {
		if !strings.Contains(page, want) {
			t.Errorf("portal page lacks %q", want)
		}
	}
	if strings.Contains(page, "BBB") {
		t.Error("portal page shows another portal's rows")
	}
	if strings.Contains(page, ">dispatch<") {
		t.Error("portal page shows jobs of no portal")
	}
	if n := strings.Count(page, "data-job-id="); n != 3 {
		t.Errorf("portal page shows %d jobs, want 3", n)
	}

	rec = br.do("GET", "/manager/portals/"+strconv.FormatInt(quiet, 10), nil)
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "Syncs healthy") ||
		strings.Contains(body, "AAA") || strings.Contains(body, "BBB") || strings.Contains(body, "data-job-id=") {
		t.Fatalf("quiet portal page: %d\n%s", rec.Code, body)
	}

	// The console-wide job list is River UI's (TestRiverUIInBrowser).
	if !strings.Contains(page, `href="/manager/river/"`) {
		t.Error("portal page has no link to River UI")
	}
	// In Russian the jobs' kinds and states are Russian words; River's
	// codes stay beside them for River UI.
	csrf := csrfOf(t, page)
	if rec := br.do("POST", "/manager/lang", url.Values{"lang": {"ru"}, "csrf": {csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("switch to Russian: %d", rec.Code)
	}
	ru := br.do("GET", "/manager/portals/"+strconv.FormatInt(a, 10), nil).Body.String()
	for _, want := range []string{"Плановая синхронизация", "ошибка, попытки исчерпаны", `data-state="discarded"`, "<code class=\"muted\">sync_scheduled</code>"} {
		if !strings.Contains(ru, want) {
			t.Errorf("Russian portal page lacks %q", want)
		}
	}
	if strings.Contains(ru, ">discarded<") {
		t.Error("Russian portal page shows River's state code as the job's state")
	}
}

// River UI lets any manager cancel, delete or retry any portal's jobs and
// pause queues. Like activating a portal, each such change must leave a line
// in the console's audit trail naming the manager and what was asked, or a
// cancelled sync or a deleted uninstall check has no trace of who did it.
func TestRiverUIChangesAreAudited(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	pid := e.portal("audited.bitrix24.com")
	var jobID int64
	if err := e.pool.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, state, scheduled_at)
		VALUES ($1, 'sync', 3, 'scheduled', now() + interval '1 hour') RETURNING id`,
		`{"portal_id": `+strconv.FormatInt(pid, 10)+`}`).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	br := e.browser("10.0.2.7")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}

	req := httptest.NewRequest(http.MethodPost, "/manager/river/api/jobs/cancel",
		strings.NewReader(`{"ids":["`+strconv.FormatInt(jobID, 10)+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.RemoteAddr = br.ip + ":40000"
	for _, c := range br.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("cancel through River UI: %d %s", rec.Code, rec.Body.String())
	}
	var state string
	if err := e.pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state); err != nil || state != "cancelled" {
		t.Fatalf("job state %q (%v), want cancelled", state, err)
	}

	entries, err := manager.ListAudit(ctx, e.pool, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.ManagerEmail == "olga@ispring.example" && en.IP == br.ip && strings.Contains(en.Note, "/api/jobs/cancel") &&
			strings.Contains(en.Note, strconv.FormatInt(jobID, 10)) {
			return
		}
	}
	t.Fatalf("no audit line for the cancel of job %d; trail: %+v", jobID, entries)
}

// A River UI request too large to audit is refused in the console's
// language, like the console's own answers.
func TestRiverUITooLargeInConsoleLanguage(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "pavel@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	br := e.browser("10.0.2.8")
	if rec := br.signIn("pavel@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodPost, "/manager/river/api/jobs/cancel",
		strings.NewReader(`{"ids":["`+strings.Repeat("1", maxBodyBytes)+`"]}`))
	req.ContentLength = -1 // sent chunked: only reading the body finds its size
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Accept-Language", "ru")
	req.RemoteAddr = br.ip + ":40000"
	for _, c := range br.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	want := i18n.T(i18n.RU, "mgr.err_body_too_large")
	if want == "mgr.err_body_too_large" {
		t.Fatal("the catalogue lacks mgr.err_body_too_large")
	}
	if rec.Code != http.StatusRequestEntityTooLarge || strings.TrimSpace(rec.Body.String()) != want {
		t.Fatalf("too large a River UI request: %d %q, want 413 %q", rec.Code, rec.Body.String(), want)
	}
}

// A job its worker cancelled with a reason (Learn refused the password)
// is a failed job: the portal list shows it with its portal and reason,
// and the portal's page marks it failed. A job cancelled from outside,
// with no reason, is not listed.
func TestConsoleListsJobsCancelledWithAReason(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	a := e.portal("a.bitrix24.com")
	args := `{"portal_id": ` + strconv.FormatInt(a, 10) + `}`
	var refused int64
	if err := e.pool.QueryRow(ctx, `INSERT INTO river_job (args, kind, max_attempts, state, attempt, attempted_at, errors, finalized_at)
		VALUES ($1, 'sync', 6, 'cancelled', 1, now(), ARRAY['{"at": "2026-01-02T03:04:05Z", "attempt": 1,
		"error": "JobCancelError: learn: wrong email or password (status 401)"}'::jsonb], now()) RETURNING id`, args).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, state, finalized_at)
		VALUES ($1, 'sync_preview', 1, 'cancelled', now())`, args); err != nil {
		t.Fatal(err)
	}
	br := e.browser("10.0.1.2")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	rec := br.do("GET", "/manager/portals", nil)
	list := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(list, "Failed jobs") {
		t.Fatalf("portal list: %d\n%s", rec.Code, list)
	}
	row := `data-job-id="` + strconv.FormatInt(refused, 10) + `"`
	if strings.Count(list, "data-job-id=") != 1 || !strings.Contains(list, row) ||
		!strings.Contains(list, "wrong email or password") || !strings.Contains(list, `>a.bitrix24.com</a>`) ||
		!strings.Contains(list, `class="badge failed" title="cancelled"`) {
		t.Fatalf("portal list's failed jobs: want only the refused sync, marked failed, with its portal and reason\n%s", list)
	}
	page := br.do("GET", "/manager/portals/"+strconv.FormatInt(a, 10), nil).Body.String()
	if i := strings.Index(page, row); i < 0 || !strings.Contains(page[i:], `class="badge failed" title="cancelled"`) {
		t.Fatalf("portal page does not mark the refused sync failed\n%s", page)
	}
}

// Portals uninstalled on refused tokens, whose tokens are kept while
// Bitrix24 is asked hourly, say so on the portal list and page, with the
// day the recheck ends: a CLEAN one's erase, or the end of the asking for
// one that keeps its data. A plain uninstalled portal says nothing of it.
func TestConsoleShowsPortalsInUninstallRecheck(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	clean, kept, gone := e.portal("clean.bitrix24.com"), e.portal("kept.bitrix24.com"), e.portal("gone.bitrix24.com")
	for _, p := range []struct {
		id             int64
		recheck, clean bool
	}{{clean, true, true}, {kept, true, false}, {gone, false, true}} {
		if _, err := e.pool.Exec(ctx, `UPDATE portals SET install_state = 'uninstalled', uninstalled_at = '2026-03-01T10:00:00Z',
			uninstall_recheck = $2, uninstall_clean = $3 WHERE id = $1`, p.id, p.recheck, p.clean); err != nil {
			t.Fatal(err)
		}
	}
	br := e.browser("10.0.1.2")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	list := br.do("GET", "/manager/portals", nil).Body.String()
	if n := strings.Count(list, "uninstall rechecked until 2026-03-31"); n != 2 {
		t.Errorf("portal list shows %d portals in recheck, want 2\n%s", n, list)
	}
	for id, want := range map[int64]string{
		clean: "its data is erased on 2026-03-31",
		kept:  "otherwise on 2026-03-31 (UTC) the app stops asking and keeps the data",
	} {
		if page := br.do("GET", "/manager/portals/"+strconv.FormatInt(id, 10), nil).Body.String(); !strings.Contains(page, want) {
			t.Errorf("portal %d's page lacks %q", id, want)
		}
	}
	if page := br.do("GET", "/manager/portals/"+strconv.FormatInt(gone, 10), nil).Body.String(); strings.Contains(page, `data-testid="recheck"`) {
		t.Error("a portal not in recheck shows a recheck")
	}
}

// The failed jobs are read from River's table; when that read fails, the
// portal list a manager activates portals from still shows, and says the
// failed jobs could not be read rather than that none failed.
func TestPortalListShowsWhenFailedJobsCannotBeRead(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "olga@ispring.example", "operator password"); err != nil {
		t.Fatal(err)
	}
	a := e.portal("a.bitrix24.com")
	if _, err := e.pool.Exec(ctx, `ALTER TABLE river_job RENAME TO river_job_away`); err != nil {
		t.Fatal(err)
	}
	br := e.browser("10.0.1.2")
	if rec := br.signIn("olga@ispring.example", "operator password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	rec := br.do("GET", "/manager/portals", nil)
	list := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(list, "a.bitrix24.com") {
		t.Fatalf("portal list without River's table: %d, want 200 with the portal\n%s", rec.Code, list)
	}
	if !strings.Contains(list, `data-testid="failed-jobs-unread"`) || strings.Contains(list, `data-testid="no-failed-jobs"`) {
		t.Fatalf("portal list says nothing of the unread failed jobs\n%s", list)
	}
	rec = br.do("GET", "/manager/portals/"+strconv.FormatInt(a, 10), nil)
	if page := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(page, `data-testid="jobs-unread"`) {
		t.Fatalf("portal page without River's table: %d, want 200 saying its jobs are unread\n%s", rec.Code, page)
	}
}

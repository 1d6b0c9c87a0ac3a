package server

import (
	"context"
	"encoding/json"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/i18n"
	"b24learn/internal/jobs"
	"b24learn/internal/metrics"
	"b24learn/internal/pgtest"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// peopleEnv is the app's handlers over a private database, with Bitrix24
// answered by b24sim through the real clients.
type peopleEnv struct {
	*settingsEnv
	sim    *b24sim.Server
	bp     *b24sim.Portal
	portal store.Portal
}

func newPeopleEnv(t testing.TB, org b24sim.Org) *peopleEnv {
	t.Helper()
	pool := pgtest.NewPool(t)
	kr := newTestKeyring(t)
	sim := b24sim.Start(b24sim.Options{AppURL: "http://127.0.0.1:1", Rate: -1})
	t.Cleanup(sim.Close)
	rc := apptest.Inserter(t, pool)
	cfg := &config.Config{B24OAuthURLs: []string{sim.URL}, B24ClientID: sim.ClientID(), B24ClientSecret: sim.ClientSecret(),
		Keyring: kr, B24AllowPrivateHosts: true,
		// A bucket that never waits: Bitrix24's pace is not the server's time.
		B24RateLimit: 1e6, B24Burst: 1e6}
	e := &settingsEnv{t: t, pool: pool, kr: kr}
	e.s = newServer(Deps{Log: slog.New(slog.DiscardHandler), Config: cfg, Pool: pool, River: rc, Metrics: metrics.New(),
		Clients: testClients(cfg, pool)})
	e.s.profiles = fakeProfiles{} // sessions here are minted without an open
	e.h = e.s.routes()
	bp := sim.AddPortal(b24sim.PortalOptions{Org: org})
	p := apptest.InstallPortal(t, pool, kr, bp)
	apptest.Configure(t, pool, kr, p.ID, apptest.Settings{LearnURL: "https://acme.ispringlearn.test", LearnEmail: "admin@acme.test",
		LearnPassword: "pw", FirstRun: "06:00", Selected: []int64{bp.Departments()[0].ID}}, true)
	return &peopleEnv{settingsEnv: e, sim: sim, bp: bp, portal: p}
}

// employee is an active employee with an e-mail, not the admin.
func (e *peopleEnv) employee() b24sim.User {
	e.t.Helper()
	for _, u := range e.bp.Users() {
		if u.Active && !u.Extranet && !u.Admin && u.Email != "" {
			return u
		}
	}
	e.t.Fatal("no employee")
	return b24sim.User{}
}

func jsonMessage(t *testing.T, r resp) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", r.status, r.body, err)
	}
	return m.Message
}

// The people routes are for admins: a user's session gets 403 on each.
func TestPeopleRoutesAdminsOnly(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(5, 20, 3))
	u := e.employee()
	_, tok := e.session(e.portal, e.bp.NonAdminID(), false, "en")
	id := strconv.FormatInt(u.ID, 10)
	for _, r := range []resp{
		e.do(http.MethodGet, "/app/people?q="+url.QueryEscape(u.LastName), tok, nil),
		e.do(http.MethodGet, "/app/people/"+id, tok, nil),
		e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {id}}),
	} {
		if r.status != http.StatusForbidden {
			t.Errorf("non-admin got %d %q, want 403", r.status, r.body)
		}
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync_person'`); n != 0 {
		t.Errorf("%d sync_person jobs queued by a non-admin", n)
	}
}

// Bad input gets a clear answer in the session's language: a short search
// and a bad user id 422, an unknown person or job 404.
func TestPeopleBadInput(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(6, 20, 3))
	u := e.employee()
	for _, lang := range []i18n.Lang{i18n.RU, i18n.EN} {
		_, tok := e.session(e.portal, e.bp.AdminID(), true, string(lang))
		cases := []struct {
			name   string
			r      resp
			status int
			key    string
		}{
			{"short search", e.do(http.MethodGet, "/app/people?q=a", tok, nil), 422, "msg.search_short"},
			{"long search", e.do(http.MethodGet, "/app/people?q="+strings.Repeat("я", 101), tok, nil), 422, "msg.search_long"},
			{"word id", e.do(http.MethodGet, "/app/people/abc", tok, nil), 422, "msg.bad_user_id"},
			{"zero id", e.do(http.MethodGet, "/app/people/0", tok, nil), 422, "msg.bad_user_id"},
			{"negative id", e.do(http.MethodGet, "/app/people/-4", tok, nil), 422, "msg.bad_user_id"},
			{"provision without id", e.do(http.MethodPost, "/app/provision", tok, url.Values{}), 422, "msg.bad_user_id"},
			{"provision bad id", e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {"1.5"}}), 422, "msg.bad_user_id"},
			{"unknown person", e.do(http.MethodGet, "/app/people/987654", tok, nil), 404, "msg.no_such_person"},
			{"unknown job", e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(u.ID, 10)+"?job=987654", tok, nil), 404, "msg.no_such_job"},
		}
		for _, c := range cases {
			if c.r.status != c.status {
				t.Errorf("%s %s: %d %q, want %d", lang, c.name, c.r.status, c.r.body, c.status)
				continue
			}
			want := i18n.T(lang, c.key)
			if c.key == "msg.search_long" {
				want = i18n.T(lang, c.key, maxSearch)
			}
			if got := jsonMessage(t, c.r); got != want {
				t.Errorf("%s %s: message %q, want %q", lang, c.name, got, want)
			}
		}
	}
}

// The search lists the employee with their verdict in words and escapes
// what Bitrix24 gives; the person view shows the verdict; Sync this
// employee queues one job and answers with its id.
func TestPeopleSearchPersonProvision(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(7, 30, 3))
	u := e.employee()
	if err := e.bp.UpdateUser(u.ID, func(x *b24sim.User) { x.LastName = "Zed<script>alert(1)</script>" }); err != nil {
		t.Fatal(err)
	}
	_, tok := e.session(e.portal, e.bp.AdminID(), true, "en")
	r := e.do(http.MethodGet, "/app/people?q="+url.QueryEscape("Zed<script>"), tok, nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("search: %d %q", r.status, r.body)
	}
	if strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "Zed&lt;script&gt;") {
		t.Errorf("search answer does not escape the name: %s", r.body)
	}
	if !strings.Contains(r.body, `data-person="`+strconv.FormatInt(u.ID, 10)+`"`) {
		t.Errorf("search answer lacks the employee %d: %s", u.ID, r.body)
	}
	r = e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(u.ID, 10), tok, nil)
	if r.status != http.StatusOK || strings.Contains(r.body, "<script>alert") {
		t.Fatalf("person: %d %q", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {strconv.FormatInt(u.ID, 10)}})
	if r.status != http.StatusAccepted {
		t.Fatalf("provision: %d %q", r.status, r.body)
	}
	var ans struct {
		JobID int64 `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || ans.JobID == 0 {
		t.Fatalf("provision answer %q", r.body)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync_person' AND id = $1 AND (args->>'user_id')::bigint = $2`, ans.JobID, u.ID); n != 1 {
		t.Errorf("%d sync_person jobs for the answer's id", n)
	}
	r = e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(u.ID, 10)+"?job="+strconv.FormatInt(ans.JobID, 10), tok, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-state="waiting"`) || !strings.Contains(r.body, `data-poll="1000"`) {
		t.Errorf("person with the queued job: %d %s", r.status, r.body)
	}
	// Another person's view does not show this job.
	r = e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(e.bp.AdminID(), 10)+"?job="+strconv.FormatInt(ans.JobID, 10), tok, nil)
	if r.status != http.StatusNotFound {
		t.Errorf("the job through another person: %d", r.status)
	}
}

// The person view lists every action runs took on the person, newest
// first: three runs, three rows, with before → after.
func TestPersonHistoryAcrossThreeRuns(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(8, 20, 3))
	u := e.employee()
	ctx := context.Background()
	ss := syncer.NewStore(e.pool)
	steps := []struct {
		trigger syncer.Trigger
		action  syncer.Action
		before  map[string]string
		after   map[string]string
	}{
		{syncer.TriggerScheduled, syncer.ActionCreate, nil, map[string]string{"email": u.Email, "job_title": "Tester"}},
		{syncer.TriggerManual, syncer.ActionUpdate, map[string]string{"job_title": "Tester"}, map[string]string{"job_title": "Chief tester"}},
		{syncer.TriggerOnDemand, syncer.ActionDeactivate, map[string]string{"status": "active"}, map[string]string{"status": "inactive"}},
	}
	var runs []int64
	for _, s := range steps {
		id, err := ss.StartRun(ctx, e.portal.ID, s.trigger)
		if err != nil {
			t.Fatal(err)
		}
		if err := ss.RecordItems(ctx, e.portal.ID, id, []syncer.RunItem{{Kind: syncer.KindUser, B24ID: u.ID, LearnID: "L1",
			Action: s.action, Before: s.before, After: s.after, Status: syncer.ItemApplied}}); err != nil {
			t.Fatal(err)
		}
		if err := ss.FinishRun(ctx, e.portal.ID, id, syncer.RunSucceeded, nil, "", nil); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, id)
	}
	_, tok := e.session(e.portal, e.bp.AdminID(), true, "ru")
	r := e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(u.ID, 10), tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("person: %d %q", r.status, r.body)
	}
	var order []int
	for i := len(runs) - 1; i >= 0; i-- {
		order = append(order, strings.Index(r.body, `data-run="`+strconv.FormatInt(runs[i], 10)+`"`))
	}
	if order[0] < 0 || order[1] <= order[0] || order[2] <= order[1] {
		t.Fatalf("history rows at %v, want the three runs newest first: %s", order, r.body)
	}
	for _, want := range []string{"должность: Tester → Chief tester", "статус: active → inactive", i18n.T(i18n.RU, "trig_on_demand"),
		i18n.T(i18n.RU, "do_deactivate")} {
		if !strings.Contains(r.body, want) {
			t.Errorf("person view lacks %q", want)
		}
	}
}

// BenchmarkPeopleSearch10000: GET /app/people over a 10,000-employee
// portal whose every employee is mapped and reported by a run, Bitrix24
// answered live by b24sim on loopback (its filtering of 10,000 users is in
// the figure, so the server's own share is below it).
func BenchmarkPeopleSearch10000(b *testing.B) {
	e := newPeopleEnv(b, b24sim.GenerateOrg(10, 10000, 300))
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id)
		SELECT $1, 'user', g, 'L' || g FROM generate_series(1, 10100) g`, e.portal.ID); err != nil {
		b.Fatal(err)
	}
	ss := syncer.NewStore(e.pool)
	run, err := ss.StartRun(ctx, e.portal.ID, syncer.TriggerScheduled)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO sync_run_items (run_id, portal_id, kind, b24_id, learn_id, action, reason, status)
		SELECT $1, $2, 'user', g, 'L' || g, 'create', '', 'applied' FROM generate_series(1, 10100) g`, run, e.portal.ID); err != nil {
		b.Fatal(err)
	}
	if err := ss.FinishRun(ctx, e.portal.ID, run, syncer.RunSucceeded, nil, "", nil); err != nil {
		b.Fatal(err)
	}
	u := e.employee()
	q := u.LastName
	if len([]rune(q)) > 4 {
		q = string([]rune(q)[:4])
	}
	_, tok := e.session(e.portal, e.bp.AdminID(), true, "en")
	e.bp.ResetCounters()
	var rows int
	b.ResetTimer()
	for b.Loop() {
		r := e.do(http.MethodGet, "/app/people?q="+url.QueryEscape(q), tok, nil)
		if r.status != http.StatusOK {
			b.Fatalf("%d %s", r.status, r.body)
		}
		rows = strings.Count(r.body, "data-person=")
	}
	b.StopTimer()
	b.ReportMetric(float64(rows), "people")
	b.ReportMetric(float64(e.bp.TotalRequests())/float64(b.N), "b24-requests/op")
}

// "Sync this employee" is unique per person only: a portal gets at most
// provisionMaxQueued unfinished ones, and the next person is refused with
// no job queued.
func TestProvisionCapsQueuedJobs(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(9, 10, 2))
	_, tok := e.session(e.portal, e.bp.AdminID(), true, "ru")
	for i := range provisionMaxQueued {
		r := e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {strconv.Itoa(100000 + i)}})
		if r.status != http.StatusAccepted {
			t.Fatalf("provision %d: %d %q", i+1, r.status, r.body)
		}
	}
	r := e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {"100099"}})
	if r.status != http.StatusConflict {
		t.Fatalf("provision past the cap: %d %q", r.status, r.body)
	}
	if want := msgProvisionBusy.in(i18n.RU); !strings.Contains(r.body, want) {
		t.Errorf("refusal %q lacks %q", r.body, want)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync_person'`); n != provisionMaxQueued {
		t.Errorf("%d sync_person jobs, want %d", n, provisionMaxQueued)
	}
}

// The people search and a person's view carry employees' names and
// e-mails: like every answer under /app, no cache may keep them for
// whoever asks the same address next.
func TestAppAnswersNotStored(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(9, 20, 3))
	u := e.employee()
	_, admin := e.session(e.portal, e.bp.AdminID(), true, "en")
	_, user := e.session(e.portal, e.bp.NonAdminID(), false, "en")
	id := strconv.FormatInt(u.ID, 10)
	for _, c := range []struct {
		name string
		r    resp
	}{
		{"search", e.do(http.MethodGet, "/app/people?q="+url.QueryEscape(u.LastName), admin, nil)},
		{"person", e.do(http.MethodGet, "/app/people/"+id, admin, nil)},
		{"state", e.do(http.MethodGet, "/app/state", admin, nil)},
		{"status", e.do(http.MethodGet, "/app/status", user, nil)},
		{"refused search", e.do(http.MethodGet, "/app/people?q="+url.QueryEscape(u.LastName), user, nil)},
		{"no session", e.do(http.MethodGet, "/app/people/"+id, "", nil)},
	} {
		if got := c.r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", c.name, c.r.status, got)
		}
	}
}

// The queued cap alone lets an admin keep Learn busy without end: queue
// five, wait for them, queue five more. A portal gets provisionBudget jobs
// a window, finished ones included, then a refusal in its language and no
// job; once its jobs are older than the window it gets more.
func TestProvisionHourlyBudget(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(9, 10, 2))
	_, tok := e.session(e.portal, e.bp.AdminID(), true, "ru")
	provision := func(id int) resp {
		return e.do(http.MethodPost, "/app/provision", tok, url.Values{"user_id": {strconv.Itoa(id)}})
	}
	// The attacker queues, waits for the jobs to finish (which the queued
	// cap would have them do), queues again: the jobs of the hour so far
	// are put in the queue directly, past the /app request limits.
	for i := range provisionBudget.Max - 1 {
		if _, err := e.s.river.Insert(context.Background(), jobs.ProvisionArgs{PortalID: e.portal.ID, UserID: int64(100000 + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	done := `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = 'sync_person'`
	e.exec(done)
	if r := provision(100999); r.status != http.StatusAccepted {
		t.Fatalf("last provision of the budget: %d %q", r.status, r.body)
	}
	e.exec(done)
	r := provision(199999)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("provision past the budget: %d %q", r.status, r.body)
	}
	if want := msgProvisionSpent.in(i18n.RU); !strings.Contains(r.body, want) {
		t.Errorf("refusal %q lacks %q", r.body, want)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync_person'`); n != provisionBudget.Max {
		t.Errorf("%d sync_person jobs, want %d", n, provisionBudget.Max)
	}
	e.exec(`UPDATE river_job SET created_at = now() - make_interval(secs => $1) WHERE kind = 'sync_person'`,
		(provisionBudget.Window + time.Minute).Seconds())
	if r := provision(199999); r.status != http.StatusAccepted {
		t.Fatalf("provision once the window passed: %d %q", r.status, r.body)
	}
}

// A person's history names their department as the admin knows it: a
// Learn department by the portal's mapping and a department the same run
// creates by its Bitrix24 id, both by Bitrix24's name; one Bitrix24 no
// longer lists reads "department #id". The internal "b24:" form never shows.
func TestPersonHistoryNamesDepartments(t *testing.T) {
	t.Parallel()
	e := newPeopleEnv(t, b24sim.GenerateOrg(11, 20, 4))
	u := e.employee()
	ctx := context.Background()
	ds := e.bp.Departments()
	from, to := ds[1], ds[2]
	if _, err := e.pool.Exec(ctx, `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id) VALUES ($1, 'department', $2, 'LD-from')`,
		e.portal.ID, from.ID); err != nil {
		t.Fatal(err)
	}
	ss := syncer.NewStore(e.pool)
	for _, it := range []syncer.RunItem{
		{Action: syncer.ActionMove, Before: map[string]string{"department": "LD-from"}, After: map[string]string{"department": "b24:" + strconv.FormatInt(to.ID, 10)}},
		{Action: syncer.ActionCreate, After: map[string]string{"department": "b24:987654"}},
	} {
		id, err := ss.StartRun(ctx, e.portal.ID, syncer.TriggerScheduled)
		if err != nil {
			t.Fatal(err)
		}
		it.Kind, it.B24ID, it.LearnID, it.Status = syncer.KindUser, u.ID, "L1", syncer.ItemApplied
		if err := ss.RecordItems(ctx, e.portal.ID, id, []syncer.RunItem{it}); err != nil {
			t.Fatal(err)
		}
		if err := ss.FinishRun(ctx, e.portal.ID, id, syncer.RunSucceeded, nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	for lang, want := range map[string][]string{
		"ru": {"подразделение: " + from.Name + " → " + to.Name, "подразделение:  → подразделение #987654"},
		"en": {"department: " + from.Name + " → " + to.Name, "department:  → department #987654"},
	} {
		_, tok := e.session(e.portal, e.bp.AdminID(), true, lang)
		r := e.do(http.MethodGet, "/app/people/"+strconv.FormatInt(u.ID, 10), tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("person: %d %q", r.status, r.body)
		}
		for _, w := range want {
			if !strings.Contains(r.body, html.EscapeString(w)) {
				t.Errorf("%s: person view lacks %q: %s", lang, w, r.body)
			}
		}
		if strings.Contains(r.body, "b24:") || strings.Contains(r.body, "LD-from") {
			t.Errorf("%s: person view shows a department's internal key: %s", lang, r.body)
		}
	}
}

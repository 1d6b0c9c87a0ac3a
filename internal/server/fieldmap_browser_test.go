package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5/pgxpool"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/schedule"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
)

// The field mapping end to end, in the browser, against b24sim (with the
// user.userfield scope and a portal field) and a learnsim account with two
// custom fields, one required: the admin maps WORK_POSITION to job_title
// and the portal's UF field to a custom field; Preview lists the updates,
// Sync now writes them into Learn, the next run writes nothing, and the
// required field left unmapped is refused next to it.
func TestFieldMappingInBrowser(t *testing.T) {
	ctx := context.Background()
	b := newBrowserEnvWith(t, browserOptions{learnSeed: 5, scope: "user_basic,department,user.userfield",
		learnExtraFields: []string{"shoe_size", "employee_id"}, learnRequiredFields: []string{"first_name", "last_name", "employee_id"}})
	pool, kr, lsim := b.e.pool, b.e.kr, b.lsim
	sy := b.startJobs(pool, time.Minute)

	p := b.installPortal("en", b24sim.GenerateOrg(21, 12, 3))
	shoe := p.AddUserField(b24sim.UserField{FieldName: "SHOE", Type: "string", Label: "Shoe size"})
	tabNo := p.AddUserField(b24sim.UserField{FieldName: "TABNO", Type: "string", Label: "Personnel number"})
	position := map[int64]string{}
	for _, u := range p.Users() {
		position[u.ID] = u.WorkPosition
		if err := p.UpdateUser(u.ID, func(u *b24sim.User) {
			u.UF = map[string]any{shoe: fmt.Sprint(36 + u.ID%10), tabNo: fmt.Sprintf("T-%03d", u.ID)}
		}); err != nil {
			t.Fatal(err)
		}
	}
	portalID := b.portalID(p)
	if _, err := pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, portalID); err != nil {
		t.Fatal(err)
	}
	// Saved before: no job title and no shoe size sent, the required
	// personnel number mapped; the first sync creates everyone so.
	runs, err := schedule.Parse("03:00", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Save(ctx, pool, kr, portalID, p.AdminID(), func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password = b.learnURL, learnEmail, learnPassword
		s.Schedule = runs
		s.Departments = settings.Scope{Selected: []int64{1}, Excluded: []int64{}}
		s.FieldMap = map[string]string{"job_title": "", "employee_id": tabNo}
	}); err != nil {
		t.Fatal(err)
	}
	if rep, err := sy.Run(ctx, portalID, syncer.TriggerManual); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("first sync: %s %v", rep.Status, rep.Counts)
		for _, st := range rep.Plan.Refused {
			t.Logf("refused %d: %s", st.B24ID, st.Reason)
		}
	}
	learnUsers := func() map[string]learnsim.User {
		st, err := lsim.Snapshot(b.learnURL)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]learnsim.User{}
		for _, u := range st.Users {
			if code := u.Fields["employee_id"]; code != "" {
				out[code] = u
			}
		}
		return out
	}
	before := learnUsers()
	if len(before) == 0 {
		t.Fatal("the first sync created no users")
	}
	for code, u := range before {
		if u.Fields["job_title"] != "" || u.Fields["shoe_size"] != "" {
			t.Fatalf("user %s created with unmapped fields: %v", code, u.Fields)
		}
	}

	b.openApp(p)
	b.waitFor("the field mapping", `document.getElementById('field_map.job_title') && document.getElementById('field_map.shoe_size')`)
	// The page carries the choices once; every list holds them all, and the
	// saved choice stays selected.
	var lists struct {
		Sizes    []int
		Employee string
	}
	b.mustEval(`({sizes: Array.from(document.querySelectorAll('select[data-map]')).map(s => s.options.length),
		employee: document.getElementById('field_map.employee_id').value})`, &lists)
	if want := 1 + len(mustSources(t, b)); len(lists.Sizes) == 0 || lists.Employee != tabNo {
		t.Fatalf("lists %+v: want the saved %s selected", lists, tabNo)
	} else {
		for _, n := range lists.Sizes {
			if n != want {
				t.Fatalf("list sizes %v, want %d each (none and every choice)", lists.Sizes, want)
			}
		}
	}
	var got []string
	b.mustEval(`Array.from(document.querySelectorAll('#field-map tr[data-field]')).map(r => r.dataset.field + (r.querySelector('.mark') ? '*' : ''))`, &got)
	if s := strings.Join(got, " "); !strings.Contains(s, "field_map.employee_id*") || !strings.Contains(s, "field_map.shoe_size") ||
		!strings.Contains(s, "field_map.login*") {
		t.Fatalf("mapping rows %q: want login and employee_id marked required and the custom fields listed", got)
	}
	choose := func(learnField, code string) {
		b.mustEval(fmt.Sprintf(`(() => { const s = document.getElementById('field_map.%s'); s.value = %q;
			return s.value === %q; })()`, learnField, code, code), nil)
	}
	choose("job_title", "WORK_POSITION")
	choose("shoe_size", shoe)
	if ok, text := b.save(); !ok {
		t.Fatalf("save refused: %s", text)
	}
	st, err := settings.Load(ctx, pool, nil, portalID)
	if err != nil || st.FieldMap["job_title"] != "WORK_POSITION" || st.FieldMap["shoe_size"] != shoe || st.FieldMap["employee_id"] != tabNo {
		t.Fatalf("stored map %v, %v", st.FieldMap, err)
	}

	// Preview lists the field updates and writes nothing.
	lsim.ResetCounts()
	b.mustEval(`(() => { document.querySelector('[data-action=preview]').click(); return true; })()`, nil)
	b.waitFor("the preview's updates", `document.querySelector('#preview-body .s-preview-list')`)
	var preview string
	b.mustEval(`document.getElementById('preview-body').textContent`, &preview)
	if !strings.Contains(preview, "position:  → CEO") || !strings.Contains(preview, "shoe_size") {
		t.Fatalf("preview does not list the field updates: %s", preview)
	}
	if c := lsim.Counts(b.learnURL); c.Writes != 0 {
		t.Fatalf("preview wrote %d times to Learn", c.Writes)
	}

	// Sync now writes them.
	syncNow := func() {
		// Only a job or run newer than the click counts: the previous
		// run's job may still read "running" while River records its
		// completion, and would pass for a click that went nowhere.
		var n int
		var lastJob int64
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_runs WHERE portal_id = $1 AND trigger = 'manual'),
			(SELECT coalesce(max(id), 0) FROM river_job)`, portalID).Scan(&n, &lastJob); err != nil {
			t.Fatal(err)
		}
		// The panel the page polls may be replaced between finding the
		// button and clicking it (a click on the old one goes nowhere): click
		// until the sync job is queued.
		deadline := time.Now().Add(90 * time.Second)
		for queued := false; !queued; {
			b.waitFor("Sync now enabled", `document.querySelector('[data-action=sync]') && !document.querySelector('[data-action=sync]').disabled`)
			b.mustEval(`(() => { document.querySelector('[data-action=sync]').click(); return true; })()`, nil)
			for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait) && !queued; time.Sleep(100 * time.Millisecond) {
				if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM river_job WHERE kind = 'sync' AND id > $3)
					OR (SELECT count(*) FROM sync_runs WHERE portal_id = $1 AND trigger = 'manual') > $2`, portalID, n, lastJob).Scan(&queued); err != nil {
					t.Fatal(err)
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("Sync now queued no sync")
			}
		}
		for {
			var done int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE portal_id = $1 AND trigger = 'manual' AND status <> 'running'`,
				portalID).Scan(&done); err != nil {
				t.Fatal(err)
			}
			if done > n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Sync now did not finish: %s", syncJobs(t, pool))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	syncNow()
	after := learnUsers()
	for _, u := range p.Users() {
		lu, ok := after[fmt.Sprintf("T-%03d", u.ID)]
		if !ok {
			continue // not synced (no e-mail, dismissed, extranet)
		}
		if lu.Fields["job_title"] != strings.TrimSpace(position[u.ID]) || lu.Fields["shoe_size"] != fmt.Sprint(36+u.ID%10) {
			t.Errorf("Learn user of %d: job_title %q shoe_size %q, want %q and %d", u.ID, lu.Fields["job_title"],
				lu.Fields["shoe_size"], position[u.ID], 36+u.ID%10)
		}
	}

	// The next run writes nothing.
	lsim.ResetCounts()
	b.run(chromedp.Reload())
	b.waitFor("the page again", `document.getElementById('field_map.job_title')`)
	syncNow()
	if c := lsim.Counts(b.learnURL); c.Writes != 0 {
		t.Fatalf("the run after writes %d times: %v", c.Writes, c.ByRoute)
	}

	// A required field left unmapped is refused, the message next to it.
	choose("employee_id", "")
	if ok, _ := b.save(); ok {
		t.Fatal("a required Learn field without a source was saved")
	}
	var msg string
	b.mustEval(`document.querySelector('[data-error-for="field_map.employee_id"]').textContent`, &msg)
	if want := i18n.T(i18n.EN, "fieldmap.required"); msg != want {
		t.Fatalf("message next to employee_id %q, want %q", msg, want)
	}
	if st, _ := settings.Load(ctx, pool, nil, portalID); st.FieldMap["employee_id"] != tabNo {
		t.Fatalf("the refused save changed the map: %v", st.FieldMap)
	}
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}

// mustSources reads the choices the page carries once (fieldmap-sources).
func mustSources(t *testing.T, b *browserEnv) []map[string]string {
	t.Helper()
	var src []map[string]string
	b.mustEval(`JSON.parse(document.getElementById('fieldmap-sources').textContent)`, &src)
	if len(src) < 10 {
		t.Fatalf("the page carries %d choices: %v", len(src), src)
	}
	return src
}

// syncJobs describes the queue's sync jobs and runs for a failure message.
func syncJobs(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(format('%s %s attempt %s at %s errors %s',
		kind, state, attempt, scheduled_at, errors::text), '; '), '') FROM river_job`).Scan(&out)
	if err != nil {
		return err.Error()
	}
	var runs string
	err = pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(format('%s %s %s', trigger, status, started_at), '; '), '') FROM sync_runs`).Scan(&runs)
	if err != nil {
		return err.Error()
	}
	return "jobs: " + out + " runs: " + runs
}

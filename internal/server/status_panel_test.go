package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

// pagePanelHTML cuts the status panel out of the settings page: from its
// section to the section's end (the panel holds no other section).
func pagePanelHTML(t *testing.T, page string) string {
	t.Helper()
	i := strings.Index(page, `<section class="card s-status" id="status"`)
	if i < 0 {
		t.Fatal("the page has no status panel")
	}
	j := strings.Index(page[i:], "</section>")
	if j < 0 {
		t.Fatal("the status panel does not end")
	}
	return page[i : i+j+len("</section>")]
}

// The page and GET /app/status render the panel with one component from one
// view model: for the same state and session they are the same bytes.
func TestStatusPanelSameOnPageAndPoll(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()
	// A fixed clock: the next runs and "due within a minute" depend on it.
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	e.s.now = func() time.Time { return now }
	p := e.addPortal("same", "ru")
	adminSess, adminTok := e.session(p, 1, true, "ru")
	userSess, userTok := e.session(p, 2, false, "en")
	rs := syncer.NewStore(e.pool)

	// check compares the two for both sessions; want says the state is
	// really on the admin's panel, so the comparison is not of empty panels.
	check := func(state string, want func(d panelDoc) bool) {
		t.Helper()
		if _, d := e.panel(adminTok); !want(d) {
			t.Fatalf("%s: the panel does not show it: %s", state, d.body)
		}
		for _, s := range []struct {
			sess  Session
			token string
		}{{adminSess, adminTok}, {userSess, userTok}} {
			// The page gets the portal as the middleware read it.
			p, err := store.GetPortal(ctx, e.pool, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			page := pagePanelHTML(t, e.page(p, s.sess, s.token))
			st, polled := e.panel(s.token)
			if st != http.StatusOK {
				t.Fatalf("%s: GET /app/status %d", state, st)
			}
			if polled.body != page {
				t.Errorf("%s (admin %v): the polled panel differs from the page's\npage:   %s\npolled: %s", state, s.sess.Admin, page, polled.body)
			}
		}
	}
	check("fresh portal", func(d panelDoc) bool { return d.rows() == 0 && d.poll() == 0 })

	if r, _ := e.save(adminTok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	e.exec(`UPDATE portals SET activation_state = 'active', needs_attention = true, last_sync_error = 'learn: <b>no</b>' WHERE id = $1`, p.ID)
	held, err := rs.StartRun(ctx, p.ID, syncer.TriggerScheduled)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, held, syncer.RunHeld, map[string]int{"user.held": 2, "user.waiting": 3}, "", []int64{7, 8}); err != nil {
		t.Fatal(err)
	}
	if r := e.do(http.MethodPost, "/app/sync", adminTok, url.Values{}); r.status != http.StatusAccepted {
		t.Fatalf("sync: %d %s", r.status, r.body)
	}
	check("held run, queued sync, failing syncs", func(d panelDoc) bool {
		return d.text("held-users") == "2" && d.shown("attention-note") != "" && d.shown("licence-note") != "" && d.poll() == 2000
	})

	e.exec(`UPDATE river_job SET state = 'running', attempted_at = now(), attempt = 1 WHERE kind = 'sync'`)
	run, err := rs.StartRun(ctx, p.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.RecordItems(ctx, p.ID, run, []syncer.RunItem{
		{Kind: syncer.KindUser, B24ID: 10, Action: syncer.ActionCreate, Status: syncer.ItemApplied},
		{Kind: syncer.KindUser, B24ID: 11, Action: syncer.ActionCreate, Status: syncer.ItemRefused, Reason: syncer.Reasons{{Code: syncer.ReasonLicence}}},
	}); err != nil {
		t.Fatal(err)
	}
	check("running sync", func(d panelDoc) bool {
		return strings.Contains(d.shown("job-state"), "создано пользователей: 1")
	})

	if err := rs.FinishRun(ctx, p.ID, run, syncer.RunFailed, map[string]int{"user.create": 1, "user.refused": 1}, "learn refused", nil); err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = 'sync'`)
	pv, err := rs.StartRun(ctx, p.ID, syncer.TriggerPreview)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.RecordItems(ctx, p.ID, pv, []syncer.RunItem{
		{Kind: syncer.KindUser, B24ID: 12, Action: syncer.ActionUpdate, Before: map[string]string{"first_name": "Ann"},
			After: map[string]string{"first_name": "Anna"}, Status: syncer.ItemPlanned},
		{Kind: syncer.KindDepartment, B24ID: 3, Action: syncer.ActionCreate, After: map[string]string{"name": "<i>Sales</i>"}, Status: syncer.ItemPlanned},
	}); err != nil {
		t.Fatal(err)
	}
	if err := rs.FinishRun(ctx, p.ID, pv, syncer.RunPreviewed, map[string]int{"user.update": 1, "department.create": 1}, "", nil); err != nil {
		t.Fatal(err)
	}
	check("failed sync, newer preview", func(d panelDoc) bool {
		return !d.hidden("preview-box") && strings.Contains(d.text("preview-body"), "имя: Ann → Anna") && d.rows() == 3
	})
}

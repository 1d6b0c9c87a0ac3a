package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"b24learn/internal/syncer"
)

// TestApproveNamesTheHeldRunShown: the admin approves the held run the
// panel shows, and the job names it, so a job that starts after another
// run was held (a scheduled run, with more people gone) still approves only
// the one the admin saw. A click from a page showing an older run than the
// newest held one is refused; the newer run gets a job of its own.
func TestApproveNamesTheHeldRunShown(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("approve", "en")
	_, tok := e.session(p, 1, true, "en")
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET activation_state = 'active' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.save(tok, validForm()); r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	rs := syncer.NewStore(e.pool)
	held := func(ids ...int64) int64 {
		t.Helper()
		run, err := rs.StartRun(ctx, p.ID, syncer.TriggerScheduled)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.FinishRun(ctx, p.ID, run, syncer.RunHeld, map[string]int{"user.held": len(ids)}, "", ids); err != nil {
			t.Fatal(err)
		}
		return run
	}
	shown := held(9, 10)
	approve := func(run int64) resp {
		return e.do(http.MethodPost, "/app/approve", tok, url.Values{"run": {strconv.FormatInt(run, 10)}})
	}
	approvals := func(run int64) int {
		return e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync' AND args->>'trigger' = 'approved'
			AND (args->>'held_run')::bigint = $1`, run)
	}
	if r := approve(shown); r.status != http.StatusAccepted || approvals(shown) != 1 {
		t.Fatalf("approving the held run shown: %d %s; %d jobs name it", r.status, r.body, approvals(shown))
	}
	// Before that job starts, a scheduled run holds more people.
	newer := held(9, 10, 11, 12, 13)
	// A page still showing the older run cannot approve the newer one.
	if r := approve(shown); r.status != http.StatusConflict || !strings.Contains(r.body, "Another run is waiting") {
		t.Errorf("approving run %d while run %d waits: %d %s", shown, newer, r.status, r.body)
	}
	if n := e.count(`SELECT count(*) FROM river_job WHERE kind = 'sync'`); n != 1 {
		t.Fatalf("%d sync jobs, want the one approval", n)
	}
	// The newer run, once seen, is approved by a job of its own.
	if r := approve(newer); r.status != http.StatusAccepted || approvals(newer) != 1 {
		t.Fatalf("approving the newest held run: %d %s; %d jobs name it", r.status, r.body, approvals(newer))
	}
	if r := approve(newer); r.status != http.StatusAccepted || approvals(newer) != 1 {
		t.Errorf("approving it twice: %d %s; %d jobs name it", r.status, r.body, approvals(newer))
	}
}

package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/pgtest"
	"b24learn/internal/syncer"
)

// An admin searches a fired employee, opens them, presses "Sync this
// employee" and sees the run's deactivation step applied; learnsim has the
// Learn user deactivated.
func TestSyncThisEmployeeInBrowser(t *testing.T) {
	b := newBrowserEnv(t)
	ctx := context.Background()
	p := b.installPortal("en", b24sim.GenerateOrg(9, 40, 4))
	portalID := b.portalID(p)
	apptest.Configure(t, b.e.pool, b.e.kr, portalID, apptest.Settings{LearnURL: b.learnURL, LearnEmail: learnEmail,
		LearnPassword: learnPassword, FirstRun: "06:00", Selected: []int64{p.Departments()[0].ID}}, true)

	// A process working the jobs the page queues.
	sy := b.startJobs(pgtest.Reopen(t, b.e.pool), time.Hour)

	if _, err := sy.Run(ctx, portalID, syncer.TriggerManual); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	var fired b24sim.User
	for _, u := range p.Users() {
		if u.Active && !u.Admin && !u.Extranet && u.Email != "" && u.ID != p.NonAdminID() {
			fired = u
		}
	}
	learnUser := func() (id string, status int) {
		st, err := b.lsim.Snapshot(b.learnURL)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range st.Users {
			if u.Fields["email"] == fired.Email {
				return u.ID, u.Status
			}
		}
		return "", 0
	}
	if id, st := learnUser(); id == "" || st != 1 {
		t.Fatalf("Learn user of %s after the first sync: %q status %d", fired.Email, id, st)
	}
	if err := p.FireUser(fired.ID); err != nil {
		t.Fatal(err)
	}

	b.openApp(p)
	b.waitFor("the People section", `document.getElementById('people-search')`)
	b.mustEval(fmt.Sprintf(`(() => { document.getElementById('people-q').value = %q;
		document.getElementById('people-search').requestSubmit(); return true; })()`, fired.Email), nil)
	sel := fmt.Sprintf(`[data-person="%d"]`, fired.ID)
	b.waitFor("the fired employee in the results", `document.querySelector('`+sel+`')`)
	b.mustEval(`(() => { document.querySelector('`+sel+`').click(); return true; })()`, nil)
	b.waitFor("the person view", fmt.Sprintf(`document.querySelector('#person-box[data-person-id="%d"] [data-provision]')`, fired.ID))
	var why string
	b.mustEval(`document.getElementById('person-why').dataset.why`, &why)
	if why != syncer.WhyDismissed {
		t.Errorf("verdict %q, want %q", why, syncer.WhyDismissed)
	}
	b.mustEval(`(() => { document.querySelector('[data-provision]').click(); return true; })()`, nil)
	b.waitFor("the run's deactivation step applied",
		`document.querySelector('#person-job[data-state="done"] #person-steps li[data-step-action="deactivate"][data-step-status="applied"]')`)
	b.screenshot("people-sync-employee-en.png")
	if _, st := learnUser(); st == 1 {
		t.Errorf("the Learn user of %s is still active", fired.Email)
	}
	b.waitFor("the on-demand run in the run list", `document.getElementById('runs-box').textContent.includes('on demand')`)
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}

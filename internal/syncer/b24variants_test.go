package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/connect"
	"b24learn/internal/learn/learnsim"
)

// b24Variant is one way Bitrix24 may behave where no source settles it
// (docs/bitrix24-api.md, "Unsettled behaviour"), or a limit it may put on
// reading the org.
type b24Variant struct {
	name string
	opts b24sim.Options
	// portal sets the portal's own switches before every run.
	portal func(p *b24sim.Portal)
	// throttled: the variant is about rate limits, and proves nothing
	// unless some request was refused.
	throttled bool
}

// b24Variants are b24sim's Unsettled choices and the older switches that
// touch reading the org: the invited-users filter (docs/bitrix24-api.md,
// "Invited users") and a full bucket whose refused requests count or not
// ("Request rate"). EnumListOmitted is left out: it changes what a list
// field's value reads as, so a field mapping of one differs by design.
// AfterUninstall has a test of its own (TestSyncAfterUninstall); Legacy
// changes only the frame POST and ONAPPINSTALL.
func b24Variants() []b24Variant {
	var vs []b24Variant
	for _, v := range b24sim.Variants() {
		vs = append(vs, b24Variant{name: v.Name, opts: b24sim.Options{Unsettled: v.Unsettled}})
	}
	full := func(countRefused bool) func(p *b24sim.Portal) {
		return func(p *b24sim.Portal) {
			p.SetRateLimit(20, 2)
			p.SetCountRefused(countRefused)
			p.FillBucket()
		}
	}
	return append(vs,
		b24Variant{name: "invited filter ignored", opts: b24sim.Options{InvitedFilter: b24sim.InvitedFilterIgnored}},
		b24Variant{name: "invited filter refused", opts: b24sim.Options{InvitedFilter: b24sim.InvitedFilterRefused}},
		b24Variant{name: "bucket full", portal: full(false), throttled: true},
		b24Variant{name: "bucket full, refused requests count", portal: full(true), throttled: true},
		b24Variant{name: "all flipped, invited filter ignored, refused requests count",
			opts:   b24sim.Options{InvitedFilter: b24sim.InvitedFilterIgnored, Unsettled: allFlipped()},
			portal: full(true), throttled: true},
	)
}

// allFlipped is b24sim's variant with every switch off its default.
func allFlipped() b24sim.Unsettled {
	for _, v := range b24sim.Variants() {
		if v.Name == "all flipped" {
			return v.Unsettled
		}
	}
	panic("b24sim has no variant \"all flipped\"")
}

// variantMember is every variant portal's member_id, so that department
// codes read the same in each variant's Learn account.
const variantMember = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// TestSyncAgainstB24Variants runs a first sync, a changed org (a user moved,
// one fired, an extranet user added, a department renamed), an on-demand
// run of the extranet user and an unchanged run against every b24Variant,
// each on an expired access token that the stored-token source
// (internal/connect) refreshes: every variant must leave the same Learn
// account and reports, no extranet user in it, and an unchanged run that
// writes nothing.
func TestSyncAgainstB24Variants(t *testing.T) {
	t.Parallel()
	vs := b24Variants()
	outcome := make([]string, len(vs))
	t.Run("variants", func(t *testing.T) {
		for i, v := range vs {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				outcome[i] = syncVariant(t, v)
			})
		}
	})
	if t.Failed() {
		return
	}
	base := -1 // the first variant run (-run may pick some)
	for i, v := range vs {
		switch {
		case outcome[i] == "":
		case base < 0:
			base = i
		case outcome[i] != outcome[base]:
			t.Errorf("%q ends differently from %q:\n%s", v.name, vs[base].name, lineDiff(outcome[base], outcome[i]))
		}
	}
}

// syncVariant runs the steps against v and returns what Learn holds at the
// end, with the counts of each run.
func syncVariant(t *testing.T, v b24Variant) string {
	e, p, portalID := variantEnv(t, v.opts, b24sim.PortalOptions{})

	var out strings.Builder
	run := func(step string) *Report {
		t.Helper()
		if v.portal != nil {
			v.portal(p)
		}
		p.ExpireTokens()
		before := e.bsrv.Refreshes()
		rep := e.run(portalID, TriggerManual)
		if rep.Status != RunSucceeded && rep.Status != RunPartial { // Partial: users without e-mail
			t.Fatalf("%s: run %s: %v", step, rep.Status, rep.Counts)
		}
		if n := e.bsrv.Refreshes() - before; n != 1 {
			t.Errorf("%s: %d token refreshes, want 1", step, n)
		}
		st := e.state()
		checkPortal(t, st, p, st.RootID)
		noExtranet(t, st, p)
		fmt.Fprintf(&out, "%s: %s\n", step, variantCounts(rep.Counts))
		return rep
	}

	run("first")
	mover := syncedUser(p)
	if err := p.MoveUser(mover.ID, otherDepartment(p, mover.Departments[0])); err != nil {
		t.Fatal(err)
	}
	if err := p.FireUser(syncedUser(p, mover.ID).ID); err != nil {
		t.Fatal(err)
	}
	partner := p.AddUser(b24sim.User{Active: true, Extranet: true, Name: "Pat", LastName: "Partner", Email: "pat@partner.test"})
	if err := p.RenameDepartment(3, "Отдел качества"); err != nil {
		t.Fatal(err)
	}
	run("changed")

	// An admin asks to sync the extranet user now: read by id, without the
	// full run's USER_TYPE filter, so their row's missing department is
	// read as it comes.
	p.ExpireTokens()
	rep, err := e.syncer.RunPerson(context.Background(), portalID, partner)
	if err != nil {
		t.Fatalf("run the extranet user: %v", err)
	}
	if rep.Writes != 0 {
		t.Errorf("running the extranet user wrote %d times: %v", rep.Writes, rep.Counts)
	}
	noExtranet(t, e.state(), p)
	fmt.Fprintf(&out, "extranet user on demand: %s\n", variantCounts(rep.Counts))
	// The people page's verdict on them, from the same read.
	c, err := e.newB24(context.Background(), portalID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadPerson(context.Background(), c, partner)
	if err != nil {
		t.Fatalf("read the extranet user: %v", err)
	}
	if v := Why(d, Options{MemberID: variantMember, Selection: Selection{Selected: []int64{1}}}, nil, nil, partner); v.Code != WhyExtranet {
		t.Errorf("the extranet user's verdict: %+v, want %s", v, WhyExtranet)
	}

	lapses(t, e, p, portalID)

	e.lsim.ResetCounts()
	rep = run("unchanged")
	if c := e.lsim.Counts(simAccount); c.Writes != 0 || rep.Writes != 0 {
		t.Errorf("the unchanged run wrote %d times (report %d): %v", c.Writes, rep.Writes, c.ByRoute)
	}
	if v.throttled && p.Throttled() == 0 {
		t.Error("no request was refused: the variant proves nothing")
	}
	out.WriteString(learnSummary(e.state()))
	return out.String()
}

// variantEnv is a simEnv whose one portal was installed as the app does
// (tokens stored encrypted) and whose runs get a client on those tokens.
func variantEnv(t *testing.T, opts b24sim.Options, po b24sim.PortalOptions) (*simEnv, *b24sim.Portal, int64) {
	t.Helper()
	e := newSimEnv(t, simOpts{b24: opts})
	kr := apptest.Keyring(t)
	po.Org, po.MemberID = b24sim.GenerateOrg(21, 50, 7), variantMember
	p := e.bsrv.AddPortal(po)
	row := apptest.InstallPortal(t, e.pool, kr, p)
	p.FinishInstall(context.Background())
	oauth := &bitrix24.OAuth{URL: e.bsrv.URL, ClientID: e.bsrv.ClientID(), ClientSecret: e.bsrv.ClientSecret()}
	// As connect builds the client for a run, with quicker rate-limit
	// retries and no pacing of its own, so that the portal's bucket refuses.
	e.newB24 = func(ctx context.Context, portalID int64) (Bitrix24, error) {
		return bitrix24.New(bitrix24.Config{Endpoint: p.ClientEndpoint(),
			Tokens:    &connect.Tokens{Pool: e.pool, Keyring: kr, OAuth: oauth, PortalID: portalID},
			Limiter:   bitrix24.NewLimiter(0, 1),
			RetryWait: 10 * time.Millisecond, MaxRetryWait: 200 * time.Millisecond}), nil
	}
	e.mu.Lock()
	e.settings[row.ID] = Settings{MemberID: p.MemberID(), Domain: p.Domain(), LearnURL: simAccount, LearnEmail: simEmail,
		LearnPassword: simPassword, Selection: Selection{Selected: []int64{1}}, HeadsAsManagers: true, ParentHeadsAsSupervisors: true}
	e.mu.Unlock()
	return e, p, row.ID
}

// TestSyncAfterUninstall runs a sync after the app was uninstalled, before
// the event arrived, against each answer the dead installation's tokens
// may get (b24sim.AfterUninstall): the run fails with an error that keeps
// what Bitrix24 said (the sync job stops the portal on it), Learn is left
// as it was, and the next run asks the OAuth server nothing.
func TestSyncAfterUninstall(t *testing.T) {
	t.Parallel()
	for _, a := range b24sim.AfterUninstalls {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			e, p, portalID := variantEnv(t, b24sim.Options{}, b24sim.PortalOptions{AfterUninstall: a})
			e.run(portalID, TriggerManual)
			before := learnSummary(e.state())
			p.Uninstall(context.Background(), false)
			e.lsim.ResetCounts()
			for i := range 2 {
				calls := e.bsrv.OAuthCalls("")
				rep, err := e.syncer.Run(context.Background(), portalID, TriggerManual)
				switch {
				case err == nil:
					t.Errorf("run %d after the uninstall: %s %v, want an error", i, rep.Status, rep.Counts)
				case a != b24sim.GonePortalNotFound && !bitrix24.IsPermanentAuthError(err) && !errors.Is(err, bitrix24.ErrNeedsReconnect):
					// The sync job stops the portal on these alone
					// (internal/jobs/sync.go, recordFailure).
					t.Errorf("run %d after the uninstall: %v, want an error that stops the portal", i, err)
				}
				if n := e.bsrv.OAuthCalls("") - calls; i > 0 && n != 0 {
					t.Errorf("run %d asked the OAuth server %d times", i, n)
				}
			}
			if c := e.lsim.Counts(simAccount); c.Writes != 0 {
				t.Errorf("%d Learn writes after the uninstall: %v", c.Writes, c.ByRoute)
			}
			if after := learnSummary(e.state()); after != before {
				t.Errorf("the uninstall changed Learn:\n%s", lineDiff(before, after))
			}
		})
	}
}

// lapses lets the app's tokens lapse each way Bitrix24 has (the refresh
// token idle too long, the app unpaid): whatever status and wording the
// refusal has, the run fails asking for an admin, and Learn is left as it
// was (a failed read is never "everyone left"). Each time the tokens then
// work again and the flag is cleared, as an admin's visit would.
func lapses(t *testing.T, e *simEnv, p *b24sim.Portal, portalID int64) {
	t.Helper()
	ctx := context.Background()
	before := learnSummary(e.state())
	for _, l := range []b24sim.Lapse{b24sim.LapseRefreshExpired, b24sim.LapseUnpaid} {
		p.SetLapse(l)
		p.ExpireTokens()
		e.lsim.ResetCounts()
		_, err := e.syncer.Run(ctx, portalID, TriggerManual)
		if !errors.Is(err, bitrix24.ErrNeedsReconnect) {
			t.Errorf("lapse %d: run ended %v, want %v", l, err, bitrix24.ErrNeedsReconnect)
		}
		if c := e.lsim.Counts(simAccount); c.Writes != 0 {
			t.Errorf("lapse %d: %d Learn writes: %v", l, c.Writes, c.ByRoute)
		}
		if after := learnSummary(e.state()); after != before {
			t.Errorf("lapse %d changed Learn:\n%s", l, lineDiff(before, after))
		}
		p.SetLapse(b24sim.LapseNone)
		if _, err := e.pool.Exec(ctx, `UPDATE portals SET needs_reconnect = false WHERE id = $1`, portalID); err != nil {
			t.Fatal(err)
		}
	}
}

// otherDepartment is a department of p other than not.
func otherDepartment(p *b24sim.Portal, not int64) int64 {
	for _, d := range p.Departments() {
		if d.ID != not && d.ID != 1 {
			return d.ID
		}
	}
	panic("no other department")
}

// noExtranet fails when an extranet user of p is in Learn.
func noExtranet(t *testing.T, st learnsim.State, p *b24sim.Portal) {
	t.Helper()
	n := 0
	for _, u := range p.Users() {
		if !u.Extranet {
			continue
		}
		n++
		if lu, ok := learnUserByLogin(st, u.Email); ok {
			t.Errorf("extranet user %d (%s) is in Learn: %+v", u.ID, u.Email, lu)
		}
	}
	if n == 0 {
		t.Fatal("the org has no extranet user: the check proves nothing")
	}
}

// variantCounts are a report's counts but those of the invited-users notice,
// which says which variant it is by design, and the timing of the Learn
// writes (learn.parallel_*, learn.throttled).
func variantCounts(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if !strings.Contains(k, "invited") && !strings.HasPrefix(k, "notice") && !strings.HasPrefix(k, "learn.") {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	return strings.Join(parts, " ")
}

// learnSummary is a Learn account by its codes and logins, not by the ids
// Learn chose: each department's name, parent and two managers, each
// user's profile, department and status, one line each, sorted.
func learnSummary(st learnsim.State) string {
	code := map[string]string{st.RootID: "root"}
	for _, d := range st.Departments {
		if d.ID != st.RootID {
			code[d.ID] = d.Code
		}
	}
	login := map[string]string{}
	for _, u := range st.Users {
		login[u.ID] = u.Fields["login"]
	}
	var lines []string
	for _, d := range st.Departments {
		lines = append(lines, fmt.Sprintf("department %s %q under %s, supervisor %s %s, manager %s %s", code[d.ID], d.Name, code[d.ParentID],
			d.Subordination.Type, login[d.Subordination.SupervisorID], d.CoSubordination.Type, login[d.CoSubordination.SupervisorID]))
	}
	for _, u := range st.Users {
		if u.ID == st.OwnerID {
			continue
		}
		f := u.Fields
		lines = append(lines, fmt.Sprintf("user %s %q %q %q %q %q in %s status %d, supervisor %s %s, manager %s %s", f["login"], f["email"],
			f["first_name"], f["last_name"], f["job_title"], f["phone"], code[u.DepartmentID], u.Status,
			u.Subordination.Type, login[u.Subordination.SupervisorID], u.CoSubordination.Type, login[u.CoSubordination.SupervisorID]))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// lineDiff lists the lines only one of a and b has.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

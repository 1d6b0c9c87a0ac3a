package syncer

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// An employee fired in Bitrix24 is deactivated by an on-demand run for
// them alone: three Bitrix24 requests at most, and Learn writes only to
// their user, while another fired employee waits for the next full run.
func TestRunPersonDeactivatesOne(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 300, 30))
	e.run(portalID, TriggerScheduled)
	u := syncedUser(p)
	v := syncedUser(p, u.ID)
	for _, id := range []int64{u.ID, v.ID} {
		if err := p.FireUser(id); err != nil {
			t.Fatal(err)
		}
	}
	lu, lv := e.learnUser(u.Email), e.learnUser(v.Email)
	stBefore := map[string]learnsim.User{}
	for _, x := range e.state().Users {
		stBefore[x.ID] = x
	}
	p.ResetCounters()
	e.lsim.ResetCounts()

	rep := runPersonOK(t, e, portalID, u.ID)
	if n := p.TotalRequests(); n > 3 {
		t.Errorf("%d Bitrix24 requests (%v), want at most 3", n, p.Requests())
	}
	if c := e.lsim.Counts(simAccount); c.Writes != 1 || rep.Writes != 1 {
		t.Errorf("%d Learn writes %v (report %v), want the one deactivation", c.Writes, c.ByRoute, rep.Counts)
	}
	after := e.state()
	for _, x := range after.Users {
		if x.ID == lu.ID {
			continue
		}
		if y, ok := stBefore[x.ID]; !ok || y.Status != x.Status || y.DepartmentID != x.DepartmentID ||
			!maps.Equal(y.Fields, x.Fields) || y.Subordination != x.Subordination || y.CoSubordination != x.CoSubordination {
			t.Errorf("Learn user %s changed: %+v -> %+v", x.ID, y, x)
		}
	}
	if got := e.learnUser(u.Email); got.Status != StatusInactive {
		t.Errorf("person's Learn status %d, want %d", got.Status, StatusInactive)
	}
	if got := e.learnUser(v.Email); got.Status != StatusActive || got.ID != lv.ID {
		t.Errorf("the other fired employee was touched: status %d", got.Status)
	}
	run, err := e.syncer.store.Run(context.Background(), portalID, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Trigger != TriggerOnDemand {
		t.Errorf("run trigger %q, want %q", run.Trigger, TriggerOnDemand)
	}
	items := e.runItems(portalID, rep.RunID)
	if len(items) != 1 || items[0].B24ID != u.ID || items[0].Action != ActionDeactivate || items[0].Status != ItemApplied {
		t.Errorf("run items %+v, want one applied deactivation of %d", items, u.ID)
	}
}

// A new hire is created on demand with their department; nothing else.
func TestRunPersonCreatesNewHire(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(5, 120, 20))
	e.run(portalID, TriggerScheduled)
	dept := p.AddDepartment("Новый отдел", 2, 0)
	id := p.AddUser(b24sim.User{Active: true, Name: "Neu", LastName: "Mitarbeiter", Email: "neu@example.com", Departments: []int64{dept}})
	other := p.AddUser(b24sim.User{Active: true, Name: "Zweite", LastName: "Person", Email: "zweite@example.com", Departments: []int64{dept}})
	e.lsim.ResetCounts()
	p.ResetCounters()
	rep, err := e.syncer.RunPerson(context.Background(), portalID, id)
	if err != nil {
		t.Fatalf("run person: %v", err)
	}
	// The person, the departments, the heads, whether the person is
	// invited (a new hire is created only once they accepted) and whether
	// another employee has their address (refuseSharedEmail).
	if n := p.TotalRequests(); n > 5 {
		t.Errorf("%d Bitrix24 requests, want at most 5", n)
	}
	c := e.lsim.Counts(simAccount)
	if c.ByRoute["POST /department"] != 1 || c.ByRoute["POST /user"] != 1 {
		t.Errorf("writes %v (report %v), want one department and one user created", c.ByRoute, rep.Counts)
	}
	if u := e.learnUser("neu@example.com"); u.Status != StatusActive {
		t.Errorf("new hire status %d", u.Status)
	}
	if _, ok := e.state().UserByLogin("zweite@example.com"); ok || other == 0 {
		t.Error("the other new hire was created too")
	}
}

// RunPerson takes the portal's sync lock: while a run holds it, it is
// refused with ErrBusy (the job snoozes), and a full run is refused while
// it holds it.
func TestRunPersonHoldsTheLock(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 60, 8))
	conn, err := e.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1, $2::int)`, LockKey, portalID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.syncer.RunPerson(context.Background(), portalID, syncedUser(p).ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("run person under a held lock: %v, want ErrBusy", err)
	}
}

// "Sync this employee" follows the portal's field mapping like a full run:
// the mapped field gets the employee's new value, and fields the mapping
// leaves out keep what Learn has (the fixed mapping would overwrite them).
func TestRunPersonFollowsFieldMap(t *testing.T) {
	t.Parallel()
	e, portalID, p, u := cityMappedPortal(t)
	before := e.learnUser(u.Email)
	if got := before.Fields["user_defined_field1"]; got != "Казань" {
		t.Fatalf("mapped field %q after the full run, want Казань", got)
	}

	if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.PersonalCity = "Самара"; x.WorkPosition = "Не для Learn" }); err != nil {
		t.Fatal(err)
	}
	e.lsim.ResetCounts()
	runPersonOK(t, e, portalID, u.ID)
	after := e.learnUser(u.Email)
	if got := after.Fields["user_defined_field1"]; got != "Самара" {
		t.Errorf("mapped field %q after the person run, want Самара", got)
	}
	if after.Fields["job_title"] != before.Fields["job_title"] {
		t.Errorf("unmapped job title %q -> %q, want it kept", before.Fields["job_title"], after.Fields["job_title"])
	}
	if c := e.lsim.Counts(simAccount); c.Writes != 1 {
		t.Errorf("%d Learn writes %v, want the one update", c.Writes, c.ByRoute)
	}
}

// runPersonOK runs an on-demand sync of one employee and fails the test
// unless it succeeds.
func runPersonOK(t *testing.T, e *simEnv, portalID, b24ID int64) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := e.syncer.RunPerson(ctx, portalID, b24ID)
	if err != nil {
		t.Fatalf("run person: %v", err)
	}
	if rep.Status != RunSucceeded {
		t.Fatalf("status %s, counts %v", rep.Status, rep.Counts)
	}
	return rep
}

// "Sync this employee" finds a Learn user whose e-mail Learn holds in the
// Bitrix24 letter case (added by hand or by another connector), also on a
// Learn whose user filters match letter case (learnsim.Unsettled.ExactFilters):
// it links the user instead of creating a duplicate Learn refuses.
func TestRunPersonFindsUserInItsLetterCase(t *testing.T) {
	t.Parallel()
	for _, exact := range []bool{false, true} {
		t.Run(map[bool]string{false: "filters ignore case", true: "exact filters"}[exact], func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{ExactFilters: exact}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(3, 40, 6))
			e.run(portalID, TriggerScheduled)
			const mail = "Klaus.Weber@Example.com"
			id := p.AddUser(b24sim.User{Active: true, Name: "Klaus", LastName: "Weber", Email: mail, Departments: []int64{2}})
			lid, err := e.lsim.SeedUser(simAccount, e.state().RootID, map[string]string{"login": mail, "email": mail,
				"first_name": "Klaus", "last_name": "Weber"}, StatusActive)
			if err != nil {
				t.Fatal(err)
			}
			e.lsim.ResetCounts()
			rep := runPersonOK(t, e, portalID, id)
			if c := e.lsim.Counts(simAccount); c.ByRoute["POST /user"] != 0 {
				t.Errorf("exact %v: a user was created (%v, report %v)", exact, c.ByRoute, rep.Counts)
			}
			items := e.runItems(portalID, rep.RunID)
			if len(items) == 0 || items[0].LearnID != lid || items[0].Status != ItemApplied {
				t.Errorf("exact %v: run items %+v, want Learn user %s linked", exact, items, lid)
			}
		})
	}
}

// An employee who types a colleague's e-mail into their own Bitrix24
// profile, and whom an admin then syncs on demand, is refused as a full run
// refuses them: the colleague's Learn user (their learning history, also
// when they have left and it is deactivated) is linked to the colleague,
// and "Sync this employee" must not adopt it (rename it, move it,
// reactivate it, link it to the attacker) because the one-person read left
// the colleague's mapping out.
func TestRunPersonLeavesAColleaguesLearnUserAlone(t *testing.T) {
	t.Parallel()
	for _, left := range []bool{false, true} {
		t.Run(map[bool]string{false: "colleague", true: "former colleague"}[left], func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{})
			portalID, p := e.addPortal(b24sim.GenerateOrg(3, 60, 8))
			e.run(portalID, TriggerScheduled)
			v := syncedUser(p)
			if left {
				if err := p.FireUser(v.ID); err != nil {
					t.Fatal(err)
				}
				e.run(portalID, TriggerScheduled)
			}
			before := e.learnUser(v.Email)
			a := p.AddUser(b24sim.User{Active: true, Name: "Mallory", LastName: "Attacker", Email: v.Email, Departments: v.Departments})

			rep, err := e.syncer.RunPerson(context.Background(), portalID, a)
			if err != nil {
				t.Fatalf("run person: %v", err)
			}
			after := e.learnUser(v.Email)
			if after.ID != before.ID || !maps.Equal(after.Fields, before.Fields) || after.DepartmentID != before.DepartmentID ||
				after.Status != before.Status {
				t.Errorf("colleague's Learn user changed by the attacker's run: %+v -> %+v", before, after)
			}
			ms, err := e.syncer.store.Mappings(context.Background(), portalID)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.Kind == KindUser && m.B24ID == a {
					t.Errorf("attacker %d linked to Learn user %s (colleague's is %s)", a, m.LearnID, before.ID)
				}
			}
			items := e.runItems(portalID, rep.RunID)
			if len(items) != 1 || items[0].B24ID != a || items[0].Status != ItemRefused {
				t.Errorf("run items %+v, want the attacker refused", items)
			}
		})
	}
}

// An employee who types a colleague's address into their own profile before
// the colleague was ever synced, and whom an admin then syncs on demand, is
// refused (email_shared naming the colleague) instead of taking the address
// in Learn: the colleague's next full run creates the colleague.
func TestRunPersonRefusesAColleaguesUnsyncedAddress(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 60, 8))
	e.run(portalID, TriggerScheduled)
	v := syncedUser(p)
	const email = "new.colleague@example.com"
	c := p.AddUser(b24sim.User{Active: true, Name: "Nina", LastName: "Colleague", Email: email, Departments: v.Departments})
	a := p.AddUser(b24sim.User{Active: true, Name: "Mallory", LastName: "Attacker", Email: email, Departments: v.Departments})

	rep, err := e.syncer.RunPerson(context.Background(), portalID, a)
	if err != nil {
		t.Fatalf("run person: %v", err)
	}
	if u, ok := e.state().UserByLogin(email); ok {
		t.Fatalf("the attacker's run created Learn user %+v with the colleague's address", u)
	}
	items := e.runItems(portalID, rep.RunID)
	if len(items) != 1 || items[0].B24ID != a || items[0].Status != ItemRefused || len(items[0].Reason) == 0 ||
		items[0].Reason[0].Code != ReasonEmailShared || !slices.Contains(items[0].Reason[0].Args, strconv.FormatInt(c, 10)) {
		t.Fatalf("run items %+v, want the attacker refused: e-mail shared with %d", items, c)
	}

	e.run(portalID, TriggerScheduled)
	ms, err := e.syncer.store.Mappings(context.Background(), portalID)
	if err != nil {
		t.Fatal(err)
	}
	lu := e.learnUser(email)
	linked := false
	for _, m := range ms {
		if m.Kind == KindUser && m.B24ID == c && m.LearnID == lu.ID {
			linked = true
		}
		if m.Kind == KindUser && m.B24ID == a {
			t.Errorf("attacker %d linked to Learn user %s", a, m.LearnID)
		}
	}
	if !linked {
		t.Errorf("the colleague %d is not linked to Learn user %s after the full run", c, lu.ID)
	}
}

// A full run and one-person runs give a shared address to the same
// employee: of those the full run syncs, the lowest id. A receptionist who
// shares office@ with an account outside the selected departments is
// created either way; of two selected employees sharing team@, the lower id
// is created and the higher refused (email_shared naming the lower) either
// way.
func TestSharedEmailOwnerSameInFullAndPersonRuns(t *testing.T) {
	t.Parallel()
	type people struct{ outside, receptionist, low, high int64 }
	setup := func(t *testing.T) (*simEnv, int64, people) {
		t.Helper()
		e := newSimEnv(t, simOpts{})
		portalID, p := e.addPortal(b24sim.GenerateOrg(3, 20, 4))
		in := p.AddDepartment("Front desk", 1, 0)
		out := p.AddDepartment("Elsewhere", 1, 0)
		e.setSettings(portalID, func(s *Settings) { s.Selection = Selection{Selected: []int64{in}} })
		e.run(portalID, TriggerScheduled)
		var ps people
		ps.outside = p.AddUser(b24sim.User{Active: true, Name: "Otto", LastName: "Outside", Email: "office@example.com", Departments: []int64{out}})
		ps.receptionist = p.AddUser(b24sim.User{Active: true, Name: "Rita", LastName: "Reception", Email: "office@example.com", Departments: []int64{in}})
		ps.low = p.AddUser(b24sim.User{Active: true, Name: "Lena", LastName: "Low", Email: "team@example.com", Departments: []int64{in}})
		ps.high = p.AddUser(b24sim.User{Active: true, Name: "Hugo", LastName: "High", Email: "team@example.com", Departments: []int64{in}})
		return e, portalID, ps
	}
	// outcome is "created" for an employee linked to a Learn user, else
	// the reason of their refusal in the runs.
	outcome := func(e *simEnv, portalID int64, runs []int64, ids ...int64) map[int64]string {
		t.Helper()
		got := map[int64]string{}
		for _, run := range runs {
			for _, it := range e.runItems(portalID, run) {
				if it.Status == ItemRefused && len(it.Reason) > 0 {
					got[it.B24ID] = "refused " + string(it.Reason[0].Code) + " " + strings.Join(it.Reason[0].Args, " ")
				}
			}
		}
		ms, err := e.syncer.store.Mappings(context.Background(), portalID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Kind == KindUser {
				got[m.B24ID] = "created"
			}
		}
		out := map[int64]string{}
		for _, id := range ids {
			out[id] = got[id]
		}
		return out
	}

	full, fullPortal, ps := setup(t)
	rep := full.run(fullPortal, TriggerScheduled)
	byFull := outcome(full, fullPortal, []int64{rep.RunID}, ps.receptionist, ps.low, ps.high)

	one, onePortal, ps2 := setup(t)
	if ps2 != ps {
		t.Fatalf("the two portals' ids differ: %+v, %+v", ps, ps2)
	}
	var runs []int64
	for _, id := range []int64{ps.high, ps.receptionist, ps.low} {
		rep, err := one.syncer.RunPerson(context.Background(), onePortal, id)
		if err != nil {
			t.Fatalf("run person %d: %v", id, err)
		}
		runs = append(runs, rep.RunID)
	}
	byPerson := outcome(one, onePortal, runs, ps.receptionist, ps.low, ps.high)

	want := map[int64]string{ps.receptionist: "created", ps.low: "created",
		ps.high: "refused " + string(ReasonEmailShared) + " team@example.com " + strconv.FormatInt(ps.low, 10)}
	if !maps.Equal(byFull, want) {
		t.Errorf("full run: %v, want %v", byFull, want)
	}
	if !maps.Equal(byPerson, want) {
		t.Errorf("one-person runs: %v, want %v (full run: %v)", byPerson, want, byFull)
	}
}

// One Learn account fed by two portals: a Learn user portal A owns is not
// portal B's to take, whichever run of B meets it. An employee of B who
// puts the address of A's employee into their Bitrix24 profile (anyone can;
// here in capitals, after a space) and is synced on demand gets the full
// run's answer: a conflict naming
// A's portal, no write to the user, no mapping, the owner unchanged. Both
// runs go through the one guard (Actual.Foreign, foreignUser, claim).
func TestRunPersonRefusesToAdoptAColleaguesLearnUser(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	ctx := context.Background()
	idA, pA := e.addPortal(planOrg(81, 20))
	idB, pB := e.addPortal(planOrg(82, 5))
	e.run(idA, TriggerScheduled)
	e.run(idB, TriggerScheduled)
	victim := syncedUser(pA)
	before := e.learnUser(victim.Email)
	owner := func() int64 {
		t.Helper()
		var p int64
		if err := e.pool.QueryRow(ctx, `SELECT portal_id FROM learn_user_owners WHERE learn_account = $1 AND learn_id = $2`,
			AccountKey(simAccount), before.ID).Scan(&p); err != nil {
			t.Fatalf("owner of %s: %v", before.ID, err)
		}
		return p
	}
	if owner() != idA {
		t.Fatalf("set-up: A's employee's Learn user is not owned by A")
	}
	var domainA string
	if err := e.pool.QueryRow(ctx, `SELECT domain FROM portals WHERE id = $1`, idA).Scan(&domainA); err != nil {
		t.Fatal(err)
	}
	intruder := pB.AddUser(b24sim.User{Active: true, Name: "Mallory", LastName: "Intruder", WorkPosition: "Takeover",
		Email: " " + strings.ToUpper(victim.Email), Departments: []int64{1}})

	untouched := func(run string) {
		t.Helper()
		u := e.learnUser(victim.Email)
		if u.ID != before.ID || u.Status != before.Status || u.DepartmentID != before.DepartmentID || !maps.Equal(u.Fields, before.Fields) {
			t.Errorf("%s: A's Learn user was written: %+v -> %+v", run, before, u)
		}
		if p := owner(); p != idA {
			t.Errorf("%s: A's Learn user is now owned by portal %d", run, p)
		}
		ms, err := e.syncer.store.Mappings(ctx, idB)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Kind == KindUser && (m.LearnID == before.ID || m.B24ID == intruder) {
				t.Errorf("%s: portal B mapped %+v", run, m)
			}
		}
	}
	row := func(run string, rep *Report) RunItem {
		t.Helper()
		var got []RunItem
		for _, it := range e.runItems(idB, rep.RunID) {
			if it.Kind == KindUser && it.B24ID == intruder {
				got = append(got, it)
			}
		}
		if len(got) != 1 || got[0].Status != ItemConflict || got[0].Action != ActionConflict ||
			got[0].After["owner"] != domainA || got[0].LearnID != "" && got[0].LearnID != before.ID {
			t.Fatalf("%s: rows of B's employee with A's address %+v, want one conflict naming %s", run, got, domainA)
		}
		return got[0]
	}

	writes := e.writes()
	rep, err := e.syncer.RunPerson(ctx, idB, intruder)
	if err != nil {
		t.Fatalf("run person: %v", err)
	}
	if rep.Status != RunPartial {
		t.Errorf("one-person run status %s, want %s", rep.Status, RunPartial)
	}
	if n := e.writes() - writes; n != 0 {
		t.Errorf("one-person run: %d Learn writes, want none", n)
	}
	onDemand := row("one-person run", rep)
	untouched("one-person run")

	full := row("full run", e.run(idB, TriggerScheduled))
	untouched("full run")
	if onDemand.Reason.String() != full.Reason.String() {
		t.Errorf("reasons differ: one-person run %s, full run %s", onDemand.Reason, full.Reason)
	}
}

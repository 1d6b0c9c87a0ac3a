package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// syncedUser picks an active, single-department employee with an e-mail who
// heads nothing.
func syncedUser(p *b24sim.Portal, skip ...int64) b24sim.User {
	headsOf := map[int64]bool{}
	for _, d := range p.Departments() {
		headsOf[d.Head] = true
	}
	for _, u := range p.Users() {
		if u.Active && !u.Extranet && u.Email != "" && len(u.Departments) == 1 && !headsOf[u.ID] && !slices.Contains(skip, u.ID) && u.ID != 1 {
			return u
		}
	}
	panic("no suitable user")
}

func TestSyncChanges(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 300, 30))
	e.run(portalID, TriggerScheduled)
	st := e.state()
	checkPortal(t, st, p, st.RootID)

	u := syncedUser(p)
	other := int64(2)
	if u.Departments[0] == other {
		other = 3
	}
	// A department that is not an ancestor of 12, to move 12 under.
	ancestors := map[int64]bool{}
	depts := map[int64]b24sim.Department{}
	for _, d := range p.Departments() {
		depts[d.ID] = d
	}
	for d := int64(12); d != 0; d = depts[d].Parent {
		ancestors[d] = true
	}
	var newParent int64
	for _, d := range p.Departments() {
		isDesc := false
		for x := d.ID; x != 0; x = depts[x].Parent {
			isDesc = isDesc || x == 12
		}
		if !ancestors[d.ID] && !isDesc {
			newParent = d.ID
			break
		}
	}

	steps := []struct {
		name   string
		change func() error
		route  string
	}{
		{"RenameDepartment", func() error { return p.RenameDepartment(5, "Отдел продаж №2") }, "POST /department/{id}"},
		{"MoveUser", func() error { return p.MoveUser(u.ID, other) }, "POST /department/{id}/user/move"},
		{"Fire", func() error { return p.FireUser(u.ID) }, "POST /user/{id}/status"},
		{"Rehire", func() error { return p.RehireUser(u.ID) }, "POST /user/{id}/status"},
		{"DepartmentMoved", func() error { return p.MoveDepartment(12, newParent) }, "POST /department/{id}"},
		{"Renamed", func() error {
			return p.UpdateUser(u.ID, func(x *b24sim.User) { x.LastName = "Иванова-Петрова" })
		}, "POST /user/{id}"},
		{"NewHire", func() error {
			p.AddUser(b24sim.User{Active: true, Name: "Neu", LastName: "Mitarbeiter", Email: "neu@example.com", Departments: []int64{4}})
			return nil
		}, "POST /user"},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// The preview shows the one change and writes nothing.
		e.lsim.ResetCounts()
		prev := e.run(portalID, TriggerPreview)
		if c := e.lsim.Counts(simAccount); c.Writes != 0 || prev.Plan.Writes() != 1 {
			t.Fatalf("%s: preview wrote %d, planned %d", s.name, c.Writes, prev.Plan.Writes())
		}
		rep := e.run(portalID, TriggerManual)
		c := e.lsim.Counts(simAccount)
		if c.Writes != 1 || c.ByRoute[s.route] != 1 {
			t.Fatalf("%s: %d writes %v (report %v), want one %s", s.name, c.Writes, c.ByRoute, rep.Counts, s.route)
		}
		checkPortal(t, e.state(), p, e.state().RootID)
	}
	st = e.state()
	var got learnsim.User
	for _, x := range st.Users {
		if strings.EqualFold(x.Fields["login"], u.Email) {
			got = x
		}
	}
	if got.Fields["last_name"] != "Иванова-Петрова" || got.Status != StatusActive {
		t.Errorf("user after changes: %+v", got)
	}

	// The report of the last run names the object, before and after.
	runs, err := e.syncer.store.Runs(context.Background(), portalID, 1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v %v", runs, err)
	}
	items, err := e.syncer.store.RunItems(context.Background(), portalID, runs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range items {
		if it.Action == ActionCreate && it.Status == ItemApplied && it.After["email"] == "neu@example.com" && it.LearnID != "" {
			found = true
		}
	}
	if !found || runs[0].Counts["user.create"] != 1 {
		t.Errorf("report of the new hire missing: %+v %v", items, runs[0].Counts)
	}
}

// signature describes a Learn account independently of its ids.
func signature(st learnsim.State) []string {
	code := map[string]string{st.RootID: "ROOT"}
	for _, d := range st.Departments {
		if d.ID != st.RootID {
			code[d.ID] = d.Code
		}
	}
	login := map[string]string{}
	for _, u := range st.Users {
		login[u.ID] = strings.ToLower(u.Fields["login"])
	}
	sub := func(s learnsim.Subordination) string {
		if s.Type == SubManual {
			return "manual:" + login[s.SupervisorID]
		}
		return s.Type
	}
	var out []string
	for _, d := range st.Departments {
		out = append(out, fmt.Sprintf("D %s %q parent=%s sub=%s co=%s", code[d.ID], d.Name, code[d.ParentID], sub(d.Subordination), sub(d.CoSubordination)))
	}
	for _, u := range st.Users {
		out = append(out, fmt.Sprintf("U %s dept=%s status=%d %s %s %s sub=%s co=%s", login[u.ID], code[u.DepartmentID], u.Status,
			u.Fields["first_name"], u.Fields["last_name"], u.Fields["job_title"], sub(u.Subordination), sub(u.CoSubordination)))
	}
	slices.Sort(out)
	return out
}

func TestSyncKillPoints(t *testing.T) {
	t.Parallel()
	org := b24sim.GenerateOrg(11, 50, 8)
	toggles := func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true }

	// The uninterrupted run, for reference; its member id is reused so that
	// codes compare.
	ref := newSimEnv(t, simOpts{})
	var total atomic.Int64
	ref.wrap = func(l Learn) Learn { return &countingLearn{Learn: l, n: &total} }
	refID, refPortal := ref.addPortal(org)
	ref.setSettings(refID, toggles)
	ref.run(refID, TriggerScheduled)
	want := signature(ref.state())
	writes := total.Load()
	if writes < 20 {
		t.Fatalf("reference run made only %d writes", writes)
	}

	stride := max(1, writes/12)
	for k := int64(1); k <= writes; k += stride {
		t.Run(fmt.Sprintf("K%d", k), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{})
			id, _ := e.addPortal(org)
			e.setSettings(id, func(s *Settings) { toggles(s); s.MemberID = refPortal.MemberID() })
			e.killAfterWrite(id, k, false)
			e.run(id, TriggerScheduled)
			if got := signature(e.state()); !slices.Equal(got, want) {
				t.Fatalf("state after kill at %d differs:\n%s", k, diff(got, want))
			}
			before := e.writes()
			e.run(id, TriggerScheduled)
			if w := e.writes() - before; w != 0 {
				t.Fatalf("third run wrote %d times", w)
			}
			runs, _ := e.syncer.store.Runs(context.Background(), id, 5)
			if len(runs) != 3 || runs[2].Status != RunFailed {
				t.Fatalf("killed run not recorded as failed: %+v", runs)
			}
		})
	}
}

func diff(got, want []string) string {
	var b strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			b.WriteString("+ " + g + "\n")
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			b.WriteString("- " + w + "\n")
		}
	}
	return b.String()
}

// TestSyncLearnFaults runs syncs against injected 500s, refusals for load
// and lost answers, in each form a refusal for load may take
// (learnsim.Throttle), and checks they end with the org in Learn and a
// repeat that writes nothing.
func TestSyncLearnFaults(t *testing.T) {
	t.Parallel()
	for name, th := range map[string]learnsim.Throttle{"429 seconds": learnsim.ThrottleSeconds,
		"429 no Retry-After": learnsim.ThrottleNoHeader, "429 date": learnsim.ThrottleDate, "503": learnsim.Throttle503} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			syncLearnFaults(t, th)
		})
	}
}

func syncLearnFaults(t *testing.T, th learnsim.Throttle) {
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{Throttle: th},
		Faults: learnsim.Faults{ErrorRate: 0.05, RateLimitRate: 0.05, AfterWriteErrorRate: 0.02}}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(5, 300, 30))
	e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers = true })
	for i := 0; i < 3; i++ {
		if _, err := e.syncer.Run(context.Background(), portalID, TriggerScheduled); err != nil {
			t.Logf("run %d: %v", i, err)
		}
	}
	st := e.state()
	checkPortal(t, st, p, st.RootID)
	if c := e.lsim.Counts(simAccount); c.Faults == 0 {
		t.Fatal("no faults injected")
	}
	e.lsim.SetFaults(learnsim.Faults{})
	before := e.writes()
	e.run(portalID, TriggerScheduled)
	if w := e.writes() - before; w != 0 {
		t.Fatalf("run after faults wrote %d times", w)
	}
}

func TestSyncBadCredentials(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, _ := e.addPortal(b24sim.GenerateOrg(2, 40, 5))
	e.setSettings(portalID, func(s *Settings) { s.LearnPassword = "wrong" })
	rep, err := e.syncer.Run(context.Background(), portalID, TriggerManual)
	if !errors.Is(err, learn.ErrBadCredentials) {
		t.Fatalf("err %v, want bad credentials", err)
	}
	if c := e.lsim.Counts(simAccount); c.Writes != 0 || c.Reads != 0 {
		t.Fatalf("calls after bad credentials: %+v", c)
	}
	if n := e.portals[portalID].TotalRequests(); n > 2 { // install only
		t.Errorf("bitrix24 read %d times despite bad Learn credentials", n)
	}
	run, _ := e.syncer.store.Run(context.Background(), portalID, rep.RunID)
	if run.Status != RunFailed || !strings.Contains(run.Error, "wrong email or password") {
		t.Fatalf("run %+v", run)
	}
}

// emptyB24 answers with no employees at all, or with an error.
type emptyB24 struct {
	Bitrix24
	err error
}

func (b emptyB24) Users(ctx context.Context, f map[string]any) ([]bitrix24.User, error) {
	return nil, b.err
}

func TestSyncEmptyBitrix24NeverDeactivates(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(4, 60, 6))
	e.run(portalID, TriggerScheduled)
	real := e.b24[portalID]
	for _, tc := range []struct {
		name string
		b    Bitrix24
		want error
	}{
		{"Empty", emptyB24{Bitrix24: real}, ErrEmptyRead},
		{"Failed", emptyB24{Bitrix24: real, err: errors.New("QUERY_LIMIT_EXCEEDED forever")}, nil},
	} {
		e.mu.Lock()
		e.b24[portalID] = tc.b
		e.mu.Unlock()
		before := e.writes()
		_, err := e.syncer.Run(context.Background(), portalID, TriggerScheduled)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		if w := e.writes() - before; w != 0 {
			t.Fatalf("%s: %d writes", tc.name, w)
		}
	}
	st := e.state()
	checkPortal(t, st, p, st.RootID)
}

func TestSyncSafeguard(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(31, 200, 10))
	e.run(portalID, TriggerScheduled)
	ex := expected(p)
	// Bitrix24 suddenly shows 30 % of the synced employees as gone.
	fired := fireSynced(t, p, ex)
	before := e.writes()
	rep := e.run(portalID, TriggerScheduled)
	if rep.Status != RunHeld || rep.Counts["user.held"] != len(fired) || e.writes() != before {
		t.Fatalf("status %s counts %v writes %d", rep.Status, rep.Counts, e.writes()-before)
	}
	held, err := e.syncer.store.LatestHeld(context.Background(), portalID)
	if err != nil || held == nil || len(held.Held) != len(fired) {
		t.Fatalf("held run %+v %v", held, err)
	}
	// A scheduled run keeps holding; the admin's approval applies them.
	if rep := e.run(portalID, TriggerScheduled); rep.Status != RunHeld {
		t.Fatalf("second scheduled run %s", rep.Status)
	}
	rep = e.run(portalID, TriggerApproved)
	if rep.Counts["user.deactivate"] != len(fired) || rep.Status == RunHeld {
		t.Fatalf("approved run: %s %v", rep.Status, rep.Counts)
	}
	if held, _ := e.syncer.store.LatestHeld(context.Background(), portalID); held != nil {
		t.Fatalf("still held after approval: %+v", held)
	}
	st := e.state()
	checkPortal(t, st, p, st.RootID)
}

// TestSyncApprovalCoversOnlyTheRunApproved: the admin approves the held run
// the page showed; before the approved run starts (it waits while another
// sync of the portal runs), a scheduled run is held with more people gone.
// The approval deactivates only the people of the run the admin saw.
func TestSyncApprovalCoversOnlyTheRunApproved(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(33, 200, 10))
	e.run(portalID, TriggerScheduled)
	ex := expected(p)
	fired := fireSynced(t, p, ex)
	if rep := e.run(portalID, TriggerScheduled); rep.Status != RunHeld {
		t.Fatalf("first held run: %s %v", rep.Status, rep.Counts)
	}
	shown, err := e.syncer.store.LatestHeld(context.Background(), portalID)
	if err != nil || shown == nil {
		t.Fatalf("held run %+v %v", shown, err)
	}
	// More people leave; the next scheduled run holds them all.
	seen := map[int64]bool{}
	for _, id := range fired {
		seen[id] = true
	}
	var more []int64
	for _, u := range p.Users() {
		if _, ok := ex.users[strings.ToLower(u.Email)]; ok && u.ID != 1 && !seen[u.ID] && len(more) < len(fired) {
			more = append(more, u.ID)
			if err := p.FireUser(u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep := e.run(portalID, TriggerScheduled); rep.Status != RunHeld || rep.Counts["user.held"] != len(fired)+len(more) {
		t.Fatalf("second held run: %s %v", rep.Status, rep.Counts)
	}
	rep, err := e.syncer.RunApproved(context.Background(), portalID, shown.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts["user.deactivate"] != len(fired) {
		t.Fatalf("the approval of run %d deactivated %d people, want the %d it held: %v",
			shown.ID, rep.Counts["user.deactivate"], len(fired), rep.Counts)
	}
	status := map[string]int{}
	for _, u := range e.state().Users {
		status[u.ID] = u.Status
	}
	for _, id := range more {
		m, err := e.syncer.store.PersonMapping(context.Background(), portalID, id)
		if err != nil || m == nil {
			t.Fatalf("mapping of %d: %+v %v", id, m, err)
		}
		if status[m.LearnID] != StatusActive {
			t.Errorf("user %d, not in the approved run, has status %d in Learn", id, status[m.LearnID])
		}
	}
	// Those still wait for an approval of their own.
	if held, _ := e.syncer.store.LatestHeld(context.Background(), portalID); held == nil || len(held.Held) != len(more) {
		t.Fatalf("held after the approval: %+v", held)
	}
}

func TestSyncTwoPortals(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	orgA := b24sim.GenerateOrg(21, 200, 20)
	orgB := b24sim.GenerateOrg(22, 120, 12)
	orgB.Name = "Beta"
	orgB.Departments[0].Name = "Beta LLC"
	for i := range orgB.Users {
		orgB.Users[i].Email = strings.Replace(orgB.Users[i].Email, "@example.com", "@beta.test", 1)
	}
	idA, pA := e.addPortal(orgA)
	e.setSettings(idA, func(s *Settings) { s.HeadsAsManagers = true })
	e.run(idA, TriggerScheduled)
	usersA := len(expected(pA).users)

	idB, pB := e.addPortal(orgB)
	e.run(idB, TriggerScheduled)
	rep := e.run(idA, TriggerScheduled) // A moves into its own child
	if rep.Counts["department.create"] != 1 || rep.Counts["user.create"] != 0 {
		t.Fatalf("portal A's move: %v", rep.Counts)
	}
	st := e.state()
	var children []string
	for _, d := range st.Departments {
		if d.ParentID == st.RootID {
			children = append(children, d.Code)
		}
	}
	slices.Sort(children)
	want := []string{DepartmentCode(pA.MemberID(), 1), DepartmentCode(pB.MemberID(), 1)}
	slices.Sort(want)
	if !slices.Equal(children, want) {
		t.Fatalf("root children %v, want %v", children, want)
	}
	idsA := checkPortal(t, st, pA, "")
	checkPortal(t, st, pB, "")
	rootA, _ := st.Department(idsA[1])
	if rootA.Name != "Acme Corp" {
		t.Errorf("portal A root %+v", rootA)
	}
	inRoot, active := 0, 0
	for _, u := range st.Users {
		if u.DepartmentID == st.RootID {
			inRoot++
		}
		if u.Status == StatusActive {
			active++
		}
	}
	if inRoot != 1 || active != usersA+len(expected(pB).users)+1 {
		t.Errorf("users in the org root %d (want the owner only), active %d", inRoot, active)
	}
	e.stable(idA, idB)
}

func TestDBSettings(t *testing.T) {
	t.Parallel()
	kr := apptest.Keyring(t)
	e := newSimEnv(t, simOpts{})
	id := mustPortal(t, e.pool, "dbsettings")
	src := DBSettings{Pool: e.pool, Keyring: kr}
	if _, err := src.Settings(context.Background(), id); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("unconfigured: %v", err)
	}
	_, err := settings.Save(context.Background(), e.pool, kr, id, 1, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.Password, s.HeadsAsManagers = "https://x.ispringlearn.ru", "a@x.ru", "pa55", true
		s.Departments = settings.Scope{Selected: []int64{1}, Excluded: []int64{7}}
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := src.Settings(context.Background(), id)
	if err != nil || s.LearnPassword != "pa55" || s.MemberID != "dbsettings" || !s.HeadsAsManagers ||
		!slices.Equal(s.Selection.Excluded, []int64{7}) || !s.SendLoginEmail {
		t.Fatalf("settings %+v %v", s, err)
	}
}

func TestSyncRefusals(t *testing.T) {
	t.Parallel()
	// Learn requires a phone, and the plan allows 30 active users.
	e := newSimEnv(t, simOpts{account: learnsim.AccountOptions{MaxActiveUsers: 30,
		RequiredFields: []string{"login", "first_name", "last_name", "phone"}}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(9, 120, 6))
	rep := e.run(portalID, TriggerScheduled)
	if rep.Status != RunPartial || rep.Counts["user.refused"] == 0 || rep.Counts["user.create"] == 0 {
		t.Fatalf("status %s counts %v", rep.Status, rep.Counts)
	}
	items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, it := range items {
		if it.Status == ItemRefused {
			switch {
			case it.Reason.Has(ReasonNoEmail):
				reasons["email"]++
			case strings.Contains(strings.ToLower(it.Reason.String()), "phone"):
				reasons["phone"]++
			default:
				reasons[it.Reason.String()]++
			}
		}
	}
	if reasons["email"] == 0 || reasons["phone"] == 0 || len(reasons) != 2 {
		t.Fatalf("refusal reasons %v", reasons)
	}
	st := e.state()
	active, inactive := 0, 0
	for _, u := range st.Users {
		if u.Status == StatusActive {
			active++
		} else {
			inactive++
		}
		if u.Fields["phone"] == "" && u.ID != st.OwnerID {
			t.Errorf("user %s created without the required phone", u.ID)
		}
	}
	if active != 30 || inactive == 0 {
		t.Fatalf("active %d inactive %d, want the plan's 30 and the rest inactive", active, inactive)
	}
	// The next run reports each user the plan leaves inactive as waiting for
	// a licence, without trying to activate them again, and still finishes.
	rep = e.run(portalID, TriggerScheduled)
	items, _ = e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
	limit := 0
	for _, it := range items {
		if it.Action == ActionReactivate && it.Status == ItemWaiting && (it.Reason.Has(ReasonLicence) || it.Reason.Has(ReasonLicenceRefused)) {
			limit++
		}
	}
	if limit != inactive || rep.Status != RunPartial || rep.Counts["user.reactivate"] != 0 {
		t.Fatalf("waiting for a licence %d, want %d (status %s, counts %v)", limit, inactive, rep.Status, rep.Counts)
	}
	_ = p
}

// fireSynced fires 30 % of the synced employees (never user 1, the admin)
// in Bitrix24: more than the safeguard lets a run deactivate at once.
func fireSynced(t *testing.T, p *b24sim.Portal, ex expectation) []int64 {
	t.Helper()
	var fired []int64
	for _, u := range p.Users() {
		if _, ok := ex.users[strings.ToLower(u.Email)]; ok && u.ID != 1 && len(fired) < len(ex.users)*3/10 {
			fired = append(fired, u.ID)
			if err := p.FireUser(u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fired
}

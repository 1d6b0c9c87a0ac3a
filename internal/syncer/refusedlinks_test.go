package syncer

import (
	"slices"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// TestSyncRefusedLinksRemembered: Learn refuses every department's and
// user's links. The first run reports them refused, the unchanged run after
// writes nothing and reports them remembered, and a new head in Bitrix24
// sends the links that changed.
func TestSyncRefusedLinksRemembered(t *testing.T) {
	t.Parallel()
	refuse := learnsim.Faults{Refuse: []string{"POST /user/{id}/subordination", "POST /department/{id}/subordination"}}
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Faults: refuse}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(11, 60, 8))
	e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })

	first := e.run(portalID, TriggerManual)
	root := e.state().RootID
	type obj struct {
		kind Kind
		id   int64
	}
	refused := map[obj]bool{}
	for _, it := range e.runItems(portalID, first.RunID) {
		if it.Action == ActionSupervisor && it.LearnID != root {
			if it.Status != ItemRefused {
				t.Errorf("links reported %+v, want refused", it)
			}
			refused[obj{it.Kind, it.B24ID}] = true
		}
	}
	kinds := map[Kind]int{}
	for o := range refused {
		kinds[o.kind]++
	}
	if kinds[KindDepartment] == 0 || kinds[KindUser] == 0 {
		t.Fatalf("first run refused links of %v: the test checks nothing", kinds)
	}

	e.lsim.ResetCounts()
	again := e.run(portalID, TriggerManual)
	if c := e.lsim.Counts(simAccount); c.Writes != 0 || again.Writes != 0 {
		t.Errorf("the unchanged run wrote %d times: %v", c.Writes, c.ByRoute)
	}
	remembered := map[obj]bool{}
	for _, it := range e.runItems(portalID, again.RunID) {
		switch {
		case it.Action == ActionSupervisor:
			t.Errorf("the unchanged run reported links again: %+v", it)
		case it.Action == ActionRefuse && it.Reason.Has(ReasonRemembered) && it.After["co_subordination"] != "":
			if it.Status != ItemRefused || !it.Reason.Has(ReasonLearn) {
				t.Errorf("remembered links reported %+v", it)
			}
			remembered[obj{it.Kind, it.B24ID}] = true
		}
	}
	if len(remembered) != len(refused) {
		t.Errorf("the unchanged run reported %d links remembered, want the %d refused", len(remembered), len(refused))
	}
	for o := range refused {
		if !remembered[o] {
			t.Errorf("%s %d refused and not reported remembered", o.kind, o.id)
		}
	}
	if again.Counts["department.refused"] < kinds[KindDepartment] {
		t.Errorf("counts %v, want %d departments refused", again.Counts, kinds[KindDepartment])
	}

	// Learn takes links again and a department gets a new head: its links
	// and its new head's go out; links that stay the same do not.
	e.lsim.SetFaults(learnsim.Faults{})
	var dept b24sim.Department
	var head b24sim.User
	for _, d := range p.Departments() {
		if u, ok := memberOf(p, d.ID); ok && d.ID != 1 && d.Head != 0 && refused[obj{KindDepartment, d.ID}] {
			dept, head = d, u
			break
		}
	}
	if dept.ID == 0 {
		t.Fatal("no headed department below the root with a member to head it")
	}
	if err := p.SetHead(dept.ID, head.ID); err != nil {
		t.Fatal(err)
	}
	e.lsim.ResetCounts()
	third := e.run(portalID, TriggerManual)
	st := e.state()
	lu, ok := st.UserByLogin(head.Email)
	if !ok {
		t.Fatalf("new head %d not in Learn", head.ID)
	}
	ids := checkPortal(t, st, p, st.RootID)
	if d, _ := st.Department(ids[dept.ID]); d.CoSubordination != (learnsim.Subordination{Type: SubManual, SupervisorID: lu.ID}) {
		t.Errorf("department %d's functional manager %+v, want its new head %s", dept.ID, d.CoSubordination, lu.ID)
	}
	sent, still := map[obj]bool{}, 0
	for _, it := range e.runItems(portalID, third.RunID) {
		switch {
		case it.Action == ActionSupervisor && it.Status == ItemApplied:
			sent[obj{it.Kind, it.B24ID}] = true
		case it.Action == ActionRefuse && it.Reason.Has(ReasonRemembered) && it.After["co_subordination"] != "":
			still++
		}
	}
	if !sent[obj{KindDepartment, dept.ID}] || !sent[obj{KindUser, head.ID}] {
		t.Errorf("after the new head sent %v, want department %d and user %d", sent, dept.ID, head.ID)
	}
	if still == 0 || len(sent) >= len(refused) {
		t.Errorf("after the new head %d links sent and %d remembered, of %d refused", len(sent), still, len(refused))
	}
}

// memberOf is a synced user of department id alone who heads none.
func memberOf(p *b24sim.Portal, id int64) (b24sim.User, bool) {
	heads := map[int64]bool{}
	for _, d := range p.Departments() {
		heads[d.Head] = true
	}
	for _, u := range p.Users() {
		if u.Active && !u.Extranet && u.Email != "" && !heads[u.ID] && slices.Equal(u.Departments, []int64{id}) {
			return u, true
		}
	}
	return b24sim.User{}, false
}

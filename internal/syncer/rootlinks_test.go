package syncer

import (
	"fmt"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// TestSyncRootLinksAsRead syncs against each way Learn may show its root's
// links when they name nobody (docs/learn-api.md, "Unsettled behaviour"):
// no_supervisor, inherit, or no key at all all mean "no manager". Crossed
// with parent heads as supervisors on and off and with the root having a
// head or none: the run goes through, the root's links are sent only when a
// head is to be set on it, nothing about them is reported refused, and the
// unchanged run after writes nothing.
func TestSyncRootLinksAsRead(t *testing.T) {
	t.Parallel()
	for _, rl := range []struct {
		name string
		rl   learnsim.RootLinks
	}{
		{"no_supervisor", learnsim.RootLinksNoSupervisor},
		{"inherit", learnsim.RootLinksInherit},
		{"absent", learnsim.RootLinksAbsent},
	} {
		for _, supervisors := range []bool{false, true} {
			for _, rootHead := range []bool{true, false} {
				name := fmt.Sprintf("%s/supervisors %v/root head %v", rl.name, supervisors, rootHead)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					syncRootLinksAsRead(t, rl.rl, supervisors, rootHead)
				})
			}
		}
	}
}

func syncRootLinksAsRead(t *testing.T, rl learnsim.RootLinks, supervisors, rootHead bool) {
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{RootLinks: rl}}})
	org := b24sim.GenerateOrg(11, 60, 8)
	portalID, p := e.addPortal(org)
	if !rootHead {
		if err := p.SetHead(1, 0); err != nil {
			t.Fatal(err)
		}
	}
	e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, supervisors })

	first := e.run(portalID, TriggerManual)
	if first.Status != RunSucceeded && first.Status != RunPartial { // partial: the generated org has people Learn cannot take
		t.Fatalf("first run: %s", first.Status)
	}
	st := e.state()
	ids := checkPortal(t, st, p, st.RootID)
	head := rootHeadID(st, p)
	if supervisors {
		head = checkDeptLinks(t, st, p, ids)
	}
	if (head != "") != rootHead {
		t.Fatalf("the root's synced head %q: the test checks nothing", head)
	}
	root, _ := st.Department(st.RootID)
	want := learnsim.Subordination{Type: SubNone}
	if rootHead {
		want = learnsim.Subordination{Type: SubManual, SupervisorID: head}
	}
	if root.CoSubordination != want || root.Subordination.Type == SubManual {
		t.Errorf("root's links %+v / %+v, want none / %+v", root.Subordination, root.CoSubordination, want)
	}
	meant := 0
	if rootHead {
		meant = 1 // its head as its functional manager
	}
	if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != meant {
		t.Errorf("first run sent the root's links %d times, want %d", n, meant)
	}
	for _, it := range e.runItems(portalID, first.RunID) {
		if it.Kind == KindDepartment && it.LearnID == st.RootID && it.Status != ItemApplied {
			t.Errorf("first run reported the root: %+v", it)
		}
	}

	e.lsim.ResetCounts()
	again := e.run(portalID, TriggerManual)
	if again.Status != RunSucceeded && again.Status != RunPartial {
		t.Fatalf("second run: %s", again.Status)
	}
	if c := e.lsim.Counts(simAccount); c.Writes != 0 || again.Writes != 0 {
		t.Errorf("the unchanged run wrote %d times: %v", c.Writes, c.ByRoute)
	}
	if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != 0 {
		t.Errorf("the unchanged run sent the root's links %d times", n)
	}
	for _, it := range e.runItems(portalID, again.RunID) {
		if it.Kind == KindDepartment && it.Action == ActionSupervisor {
			t.Errorf("the unchanged run reported the root's links: %+v", it)
		}
	}
}

// rootHeadID is the Learn id of the head of portal p's root ("" when it has
// none in Learn).
func rootHeadID(st learnsim.State, p *b24sim.Portal) string {
	for _, d := range p.Departments() {
		if d.ID != 1 || d.Head == 0 {
			continue
		}
		for _, u := range p.Users() {
			if u.ID != d.Head || u.Email == "" {
				continue
			}
			if lu, ok := st.UserByLogin(strings.ToLower(u.Email)); ok {
				return lu.ID
			}
		}
	}
	return ""
}

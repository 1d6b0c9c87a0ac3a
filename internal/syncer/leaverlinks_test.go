package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// A department head who leaves Bitrix24 is deactivated in Learn. What Learn
// then does with the links that name them is not known (learnsim's
// Unsettled.LeaverLinks: kept, or turned into no_supervisor or inherit):
// whichever it is, the run leaves no link naming an inactive user, and a
// repeat writes nothing.
func TestSyncHeadLeavesAgainstLeaverLinks(t *testing.T) {
	t.Parallel()
	for _, v := range []struct {
		name  string
		links learnsim.LeaverLinks
	}{{"kept", learnsim.LeaverLinksKept}, {"no_supervisor", learnsim.LeaverLinksNoSupervisor}, {"inherit", learnsim.LeaverLinksInherit}} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{LeaverLinks: v.links}}})
			org := b24sim.Org{Name: "Leavers", Departments: []b24sim.Department{{ID: 1, Name: "Root", Head: 10},
				{ID: 2, Name: "Sales", Parent: 1, Head: 11}, {ID: 3, Name: "Deals", Parent: 2, Head: 12}}}
			for _, u := range []struct {
				id, dept int64
				name     string
			}{{10, 1, "ceo"}, {11, 2, "sales.head"}, {12, 3, "deals.head"}, {13, 2, "seller"}, {14, 3, "dealer"}} {
				org.Users = append(org.Users, b24sim.User{ID: u.id, Active: true, Name: u.name, LastName: "X",
					Email: u.name + "@example.com", Departments: []int64{u.dept}})
			}
			portalID, p := e.addPortal(org)
			e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })
			if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
				t.Fatalf("first run %s %v", rep.Status, rep.Counts)
			}
			st := e.state()
			ids := checkPortal(t, st, p, st.RootID)
			head, _ := st.UserByLogin("sales.head@example.com")
			if sales, _ := st.Department(ids[2]); sales.CoSubordination != (learnsim.Subordination{Type: "manual", SupervisorID: head.ID}) {
				t.Fatalf("Sales' functional manager after the first run: %+v, want %s", sales.CoSubordination, head.ID)
			}
			// Sales' head leaves and stays its head in Bitrix24, as dismissed heads do.
			if err := p.FireUser(11); err != nil {
				t.Fatal(err)
			}
			if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
				t.Fatalf("second run %s %v", rep.Status, rep.Counts)
			}
			st = e.state()
			checkPortal(t, st, p, st.RootID)
			head, _ = st.UserByLogin("sales.head@example.com")
			if head.Status == StatusActive {
				t.Fatal("the head who left is active in Learn")
			}
			for _, d := range st.Departments {
				for _, l := range []learnsim.Subordination{d.Subordination, d.CoSubordination} {
					if l.Type == "manual" && l.SupervisorID == head.ID {
						t.Errorf("department %s keeps the leaver as its manager: %+v", d.Name, l)
					}
				}
			}
			for _, u := range st.Users {
				for _, l := range []learnsim.Subordination{u.Subordination, u.CoSubordination} {
					if u.Status == StatusActive && l.Type == "manual" && l.SupervisorID == head.ID {
						t.Errorf("user %s keeps the leaver as their supervisor: %+v", u.Fields["login"], l)
					}
				}
			}
			e.lsim.ResetCounts()
			rep := e.run(portalID, TriggerManual)
			if c := e.lsim.Counts(simAccount); c.Writes != 0 {
				t.Errorf("a repeat wrote %d times: %v (report %v)", c.Writes, c.ByRoute, rep.Counts)
			}
		})
	}
}

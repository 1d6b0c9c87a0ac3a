package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// linksOrg is Root (head 10) > Sales (head 11) > Deals (head 12), and
// Support (head 13) under Root; 14 and 15 work in Deals and Sales.
func linksOrg() b24sim.Org {
	org := b24sim.Org{Name: "Links", Departments: []b24sim.Department{{ID: 1, Name: "Root", Head: 10},
		{ID: 2, Name: "Sales", Parent: 1, Head: 11}, {ID: 3, Name: "Deals", Parent: 2, Head: 12}, {ID: 4, Name: "Support", Parent: 1, Head: 13}}}
	for _, u := range []struct {
		id, dept int64
		name     string
	}{{10, 1, "ceo"}, {11, 2, "sales.head"}, {12, 3, "deals.head"}, {13, 4, "support.head"}, {14, 3, "dealer"}, {15, 2, "seller"}} {
		org.Users = append(org.Users, b24sim.User{ID: u.id, Active: true, Name: u.name, LastName: "X",
			Email: u.name + "@example.com", Departments: []int64{u.dept}})
	}
	return org
}

// TestSyncSendsBackListedLinks: a department link the sync does not manage
// is sent back as the run's listing showed it, without reading the
// department (or any user) again, and a supervisor a Learn admin set stays,
// whatever Learn does with a link a request leaves out.
func TestSyncSendsBackListedLinks(t *testing.T) {
	t.Parallel()
	for _, toggle := range []string{"heads", "parent heads"} {
		for name, o := range map[string]learnsim.OmittedLink{"kept": learnsim.OmittedLinkKept, "reset": learnsim.OmittedLinkReset} {
			t.Run(toggle+"/"+name, func(t *testing.T) {
				t.Parallel()
				heads := toggle == "heads"
				e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{OmittedLink: o}}})
				portalID, p := e.addPortal(linksOrg())
				e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = heads, !heads })
				if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
					t.Fatalf("first run %s %v", rep.Status, rep.Counts)
				}
				st := e.state()
				ids := checkPortal(t, st, p, st.RootID)
				// The admin sets the link the sync leaves alone on Deals; in
				// Bitrix24 the head whose change moves the other one changes.
				if err := e.lsim.SetSupervisor(simAccount, ids[3], st.OwnerID, !heads); err != nil {
					t.Fatal(err)
				}
				newHead, dept := int64(14), int64(3) // Deals' functional manager
				if !heads {
					newHead, dept = 15, 2 // Sales' head: Deals' supervisor
				}
				if err := p.SetHead(dept, newHead); err != nil {
					t.Fatal(err)
				}
				e.lsim.ResetCounts()
				if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
					t.Fatalf("second run %s %v", rep.Status, rep.Counts)
				}
				c := e.lsim.Counts(simAccount)
				if c.ByRoute["POST /department/{id}/subordination"] == 0 {
					t.Fatalf("no department's links were written: %v", c.ByRoute)
				}
				for _, r := range []string{"GET /department/{id}", "GET /user/{id}", "GET /user/{id}/v2"} {
					if n := c.ByRoute[r]; n != 0 {
						t.Errorf("%s %d times: the run listed them already (%v)", r, n, c.ByRoute)
					}
				}

				st = e.state()
				head, _ := st.UserByLogin(map[int64]string{14: "dealer@example.com", 15: "seller@example.com"}[newHead])
				d, _ := st.Department(ids[3])
				admin, managed := d.Subordination, d.CoSubordination
				if !heads {
					admin, managed = managed, admin
				}
				if want := (learnsim.Subordination{Type: "manual", SupervisorID: st.OwnerID}); admin != want {
					t.Errorf("Deals' link the admin set is %+v, want %+v kept", admin, want)
				}
				if want := (learnsim.Subordination{Type: "manual", SupervisorID: head.ID}); head.ID == "" || managed != want {
					t.Errorf("Deals' managed link is %+v, want the new head %+v", managed, want)
				}
			})
		}
	}
}

// TestSyncLinkNamesALeaverItDeactivates: the link sent back names a user the
// same run deactivates, so the listing no longer shows what Learn holds
// (Learn may turn such links into no_supervisor): the department is read
// first, as before, and keeps what Learn made of the link.
func TestSyncLinkNamesALeaverItDeactivates(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{OmittedLink: learnsim.OmittedLinkReset,
		LeaverLinks: learnsim.LeaverLinksNoSupervisor}}})
	portalID, p := e.addPortal(linksOrg())
	e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers = true })
	if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
		t.Fatalf("first run %s %v", rep.Status, rep.Counts)
	}
	st := e.state()
	ids := checkPortal(t, st, p, st.RootID)
	seller, _ := st.UserByLogin("seller@example.com")
	if err := e.lsim.SetSupervisor(simAccount, ids[3], seller.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := p.FireUser(15); err != nil {
		t.Fatal(err)
	}
	if err := p.SetHead(3, 14); err != nil {
		t.Fatal(err)
	}
	if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
		t.Fatalf("second run %s %v", rep.Status, rep.Counts)
	}
	st = e.state()
	dealer, _ := st.UserByLogin("dealer@example.com")
	d, _ := st.Department(ids[3])
	if want := (learnsim.Subordination{Type: "no_supervisor"}); d.Subordination != want {
		t.Errorf("Deals' supervisor is %+v, want %+v (what Learn made of the leaver's link)", d.Subordination, want)
	}
	if want := (learnsim.Subordination{Type: "manual", SupervisorID: dealer.ID}); dealer.ID == "" || d.CoSubordination != want {
		t.Errorf("Deals' functional manager is %+v, want %+v", d.CoSubordination, want)
	}
}

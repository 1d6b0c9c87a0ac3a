package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// Bitrix24 lets sibling departments share a name, and two portals' roots
// share the Learn root of an account they feed. Whether Learn refuses such
// namesakes is not known: against each answer every department gets
// written, under the Bitrix24 name where Learn takes it and otherwise under
// one with the department's id (or the portal's address for its root), and
// a repeat writes nothing.
func TestNamesakeDepartmentsWhateverLearnAllows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		rule  learnsim.Clash
		clash bool
	}{
		{"allowed", learnsim.ClashAllowed, false},
		{"refused 400", learnsim.Clash400, true},
		{"refused 409", learnsim.Clash409, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 3, Unsettled: learnsim.Unsettled{SiblingNames: c.rule}}})
			orgA := b24sim.GenerateOrg(11, 30, 4)
			for i := 1; i <= 2; i++ { // departments 2 and 3: "Sales", both under the root
				orgA.Departments[i].Name, orgA.Departments[i].Parent = "Sales", 1
			}
			orgB := b24sim.GenerateOrg(12, 20, 3) // its root is "Acme Corp" too
			for i := range orgB.Users {
				if orgB.Users[i].Email != "" {
					orgB.Users[i].Email = "b." + orgB.Users[i].Email
				}
			}
			idA, pA := e.addPortal(orgA)
			e.run(idA, TriggerManual)
			idB, pB := e.addPortal(orgB)
			e.run(idB, TriggerManual)
			e.run(idA, TriggerManual) // A's root moves under the account's root, beside B's

			named := func(p *b24sim.Portal, id int64) string {
				t.Helper()
				for _, d := range e.state().Departments {
					if d.Code == DepartmentCode(p.MemberID(), id) {
						return d.Name
					}
				}
				t.Fatalf("department %d of %s not in Learn", id, p.Domain())
				return ""
			}
			// The two creates go out at once: whichever Learn takes first
			// keeps the plain name, the other gets its own id.
			got2, got3 := named(pA, 2), named(pA, 3)
			switch {
			case !c.clash && (got2 != "Sales" || got3 != "Sales"):
				t.Errorf("the two Sales departments are %q and %q in Learn, want both Sales", got2, got3)
			case c.clash && !(got2 == "Sales" && got3 == "Sales (3)" || got2 == "Sales (2)" && got3 == "Sales"):
				t.Errorf("the two Sales departments are %q and %q in Learn, want Sales and Sales (3), or Sales (2) and Sales", got2, got3)
			}
			wantRootA := "Acme Corp"
			if c.clash {
				wantRootA = "Acme Corp (" + pA.Domain() + ")"
			}
			if got := named(pA, 1); got != wantRootA {
				t.Errorf("portal A's root is %q, want %q", got, wantRootA)
			}
			if got := named(pB, 1); got != "Acme Corp" {
				t.Errorf("portal B's root is %q, want Acme Corp", got)
			}
			for _, u := range pA.Users() {
				if u.Active && u.Email != "" && len(u.Departments) == 1 && (u.Departments[0] == 2 || u.Departments[0] == 3) {
					lu, ok := e.state().UserByLogin(u.Email)
					if !ok {
						t.Fatalf("user %d of department %d not in Learn", u.ID, u.Departments[0])
					}
					if d, _ := e.state().Department(lu.DepartmentID); d.Code != DepartmentCode(pA.MemberID(), u.Departments[0]) {
						t.Errorf("user %d in %q (%s), want department %d", u.ID, d.Name, d.Code, u.Departments[0])
					}
				}
			}

			for _, id := range []int64{idA, idB} {
				before := e.writes()
				if rep := e.run(id, TriggerManual); rep.Counts["department.refused"]+rep.Counts["department.failed"] != 0 {
					t.Errorf("portal %d: repeat %v", id, rep.Counts)
				}
				if w := e.writes() - before; w != 0 {
					t.Errorf("portal %d: a repeat wrote %d times", id, w)
				}
			}

			// A Bitrix24 rename is written under the new name, which clashes with nothing.
			if err := pA.RenameDepartment(3, "Sales North"); err != nil {
				t.Fatal(err)
			}
			e.run(idA, TriggerManual)
			if got := named(pA, 3); got != "Sales North" {
				t.Errorf("renamed department is %q, want Sales North", got)
			}
		})
	}
}

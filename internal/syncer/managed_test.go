package syncer

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// A department removed in Bitrix24 whose Learn copy a Learn department
// administrator manages (a delete Learn refuses, with 400 or 409) is left in
// Learn like any department that leaves the scope (package doc): the run
// sends no delete, applies the other changes and succeeds, and the next run
// has nothing to do.
func TestSyncLeavesManagedDepartment(t *testing.T) {
	t.Parallel()
	for _, conflict := range []bool{false, true} {
		t.Run(fmt.Sprintf("RefusedDelete409=%v", conflict), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{RefusedDelete409: conflict}}})
			org := b24sim.Org{Name: "Managed", Departments: []b24sim.Department{{ID: 1, Name: "Root"},
				{ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "Support", Parent: 1}, {ID: 4, Name: "Returns", Parent: 3}}}
			for i := range 6 {
				id := int64(100 + i)
				org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "User", LastName: fmt.Sprint(id),
					Email: fmt.Sprintf("u%d@example.com", id), Departments: []int64{2 + int64(i%3)}})
			}
			portalID, p := e.addPortal(org)
			if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
				t.Fatalf("first run %s", rep.Status)
			}
			ids := checkPortal(t, e.state(), p, e.state().RootID)
			returns := ids[4]

			// A Learn department administrator manages the Learn copy of Returns.
			admin, err := e.lsim.SeedUser(simAccount, e.state().RootID,
				map[string]string{"login": "returns.admin@example.com", "first_name": "Dept", "last_name": "Admin"}, StatusActive)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.lsim.SetRole(simAccount, admin, "department_administrator"); err != nil {
				t.Fatal(err)
			}
			if err := e.lsim.SetManaged(simAccount, admin, returns); err != nil {
				t.Fatal(err)
			}

			// Bitrix24 removes Returns (its people move to Support first) and
			// renames Sales.
			for _, u := range p.Users() {
				if slices.Contains(u.Departments, 4) {
					if err := p.MoveUser(u.ID, 3); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := p.RemoveDepartment(4); err != nil {
				t.Fatal(err)
			}
			if err := p.RenameDepartment(2, "Sales EMEA"); err != nil {
				t.Fatal(err)
			}

			e.lsim.ResetCounts()
			rep := e.run(portalID, TriggerManual)
			c := e.lsim.Counts(simAccount)
			if rep.Status != RunSucceeded {
				t.Fatalf("run %s, counts %v", rep.Status, rep.Counts)
			}
			if c.ByRoute["DELETE /department/{id}"] != 0 || c.ByRoute["POST /department/{id}"] != 1 || c.ByRoute["POST /department/{id}/user/move"] == 0 {
				t.Fatalf("Learn calls %v", c.ByRoute)
			}
			checkPortal(t, e.state(), p, e.state().RootID) // Sales renamed, Returns' people in Support
			st := e.state()
			if d, ok := st.Department(returns); !ok || d.Name != "Returns" || d.ParentID != ids[3] {
				t.Fatalf("Returns in Learn after the run: %+v %v", d, ok)
			}
			for _, u := range st.Users {
				if u.ID == admin && !slices.Equal(u.ManagedDepartments, []string{returns}) {
					t.Fatalf("the department administrator manages %v", u.ManagedDepartments)
				}
			}
			items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if it.Status != ItemApplied || it.LearnID == returns {
					t.Errorf("run item %+v", it)
				}
			}

			// The next run has nothing to do and still leaves Returns alone.
			e.lsim.ResetCounts()
			if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded || rep.Writes != 0 {
				t.Fatalf("second run %s with %d writes, counts %v", rep.Status, rep.Writes, rep.Counts)
			}
			if c := e.lsim.Counts(simAccount); c.Writes != 0 {
				t.Fatalf("second run's Learn calls %v", c.ByRoute)
			}
			if _, ok := e.state().Department(returns); !ok {
				t.Fatal("Returns deleted on the second run")
			}
		})
	}
}

package syncer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// With a Learn department administrator's credentials, Learn refuses with
// 403 the writes outside the departments it manages (docs/learn-api.md,
// "Whose credentials"). The run reports those objects refused and applies
// the rest; it does not stop and tell the admin the account has no API.
func TestSyncWithDepartmentAdministratorCredentials(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{}})
	portalID, p, ids := deptAdminSetup(t, e)
	// One change within its reach (a new Support team and someone in it),
	// one beyond (Sales renamed).
	team := p.AddDepartment("Support L2", 3, 0)
	newbie := p.AddUser(b24sim.User{Active: true, Name: "New", LastName: "Hire", Email: "new.hire@example.com", Departments: []int64{team}})
	if err := p.RenameDepartment(2, "Sales EMEA"); err != nil {
		t.Fatal(err)
	}

	rep := e.run(portalID, TriggerManual)
	if rep.Status != RunPartial {
		t.Fatalf("run %s, counts %v", rep.Status, rep.Counts)
	}
	st := e.state()
	if d, ok := st.Department(ids[2]); !ok || d.Name != "Sales" {
		t.Fatalf("Sales in Learn: %+v %v", d, ok)
	}
	u, ok := st.UserByLogin("new.hire@example.com")
	if d, in := st.Department(u.DepartmentID); !ok || !in || d.Name != "Support L2" || d.ParentID != ids[3] {
		t.Fatalf("the new hire in Learn: %+v %v, in %+v", u, ok, d)
	}
	items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	refused, applied := 0, 0
	for _, it := range items {
		switch {
		case it.Status == ItemRefused && it.B24ID == 2:
			refused++
		case it.Status == ItemApplied && (it.B24ID == team || it.B24ID == newbie):
			applied++
		default:
			t.Errorf("run item %+v", it)
		}
	}
	if refused != 1 || applied != 2 {
		t.Fatalf("%d refused, %d applied items", refused, applied)
	}
}

// Whether a department administrator's reads show the whole account is not
// known (learnsim's Unsettled.ScopedReads). When they show only its
// departments, the listing has no root: the run must not take one of them
// for the account's root and hang the portal (renamed) under it, but stop
// and say the credentials do not show the account, writing nothing.
func TestSyncWithScopedReads(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{ScopedReads: true}}})
	portalID, p, ids := deptAdminSetup(t, e)
	if err := p.RenameDepartment(1, "Scoped Inc"); err != nil {
		t.Fatal(err)
	}
	before := e.state()
	e.lsim.ResetCounts()
	_, err := e.syncer.Run(context.Background(), portalID, TriggerManual)
	if c := e.lsim.Counts(simAccount); c.Writes != 0 {
		t.Errorf("the run wrote %d times: %v", c.Writes, c.ByRoute)
	}
	if !errors.Is(err, ErrLearnRootHidden) {
		t.Fatalf("run: %v, want ErrLearnRootHidden", err)
	}
	if key, _ := RunErrorKey(err.Error()); key != "run_err_learn_root_hidden" {
		t.Errorf("run error %q reads as %q", err, key)
	}
	if d, _ := e.state().Department(ids[3]); d.Name != "Support" || len(e.state().Users) != len(before.Users) {
		t.Fatalf("Learn changed: Support is %+v", d)
	}
}

// deptAdminSetup syncs a portal of Root, Sales and Support with the owner's
// credentials, then makes them those of a department administrator of
// Support's Learn copy; it returns the Learn IDs by Bitrix24 ID.
func deptAdminSetup(t *testing.T, e *simEnv) (int64, *b24sim.Portal, map[int64]string) {
	t.Helper()
	org := b24sim.Org{Name: "Scoped", Departments: []b24sim.Department{{ID: 1, Name: "Root"},
		{ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "Support", Parent: 1}}}
	for i := range 4 {
		id := int64(100 + i)
		org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "User", LastName: fmt.Sprint(id),
			Email: fmt.Sprintf("u%d@example.com", id), Departments: []int64{2 + int64(i%2)}})
	}
	portalID, p := e.addPortal(org)
	if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
		t.Fatalf("first run %s", rep.Status)
	}
	ids := checkPortal(t, e.state(), p, e.state().RootID)

	// From now on the credentials are those of Support's administrator.
	admin, err := e.lsim.SeedUser(simAccount, ids[3],
		map[string]string{"login": "support.admin@example.com", "first_name": "Dept", "last_name": "Admin"}, StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{e.lsim.SetRole(simAccount, admin, "department_administrator"),
		e.lsim.SetManaged(simAccount, admin, ids[3]), e.lsim.SetCaller(simAccount, admin)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return portalID, p, ids
}

package learnsim

import "testing"

// A department administrator cannot change a supervisor an account
// administrator set manually (Learn's "how to assign a supervisor" pages):
// the write is refused with 403, the status of a missing permission. One
// that sends the link as it stands changes nothing and goes through, and
// links the department administrator set itself stay its to change.
func TestDeptAdminCannotChangeAdminsManualLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, AccountOptions{})
	sales := e.createDept("Sales", e.root, "")
	head := e.createUser(sales, "head@acme.ru", nil)
	deputy := e.createUser(sales, "deputy@acme.ru", nil)
	clerk := e.createUser(sales, "clerk@acme.ru", nil)
	admin := newManager(e, "department_administrator", []string{sales})

	// The owner's credentials set the functional manager and a user's supervisor by hand.
	byAdmin := map[string]any{"coSubordination": map[string]string{"subordinationType": "manual", "supervisorId": head}}
	e.must(204, "POST", "/department/"+sales+"/subordination", byAdmin)
	userLink := map[string]any{"subordination": map[string]string{"subordinationType": "manual", "supervisorId": head}}
	e.must(204, "POST", "/user/"+clerk+"/subordination", userLink)

	if err := e.sim.SetCaller(e.acct, admin); err != nil {
		t.Fatal(err)
	}
	e.must(403, "POST", "/department/"+sales+"/subordination",
		map[string]any{"coSubordination": map[string]string{"subordinationType": "no_supervisor"}})
	e.must(403, "POST", "/department/"+sales+"/subordination",
		map[string]any{"coSubordination": map[string]string{"subordinationType": "manual", "supervisorId": deputy}})
	e.must(403, "POST", "/user/"+clerk+"/subordination",
		map[string]any{"subordination": map[string]string{"subordinationType": "inherit"}})
	if d, _ := e.state().Department(sales); d.CoSubordination.SupervisorID != head {
		t.Fatalf("a refused write changed the link: %+v", d.CoSubordination)
	}

	// The link as it stands is no change.
	e.must(204, "POST", "/department/"+sales+"/subordination", byAdmin)
	e.must(204, "POST", "/user/"+clerk+"/subordination", userLink)

	// A link the department administrator sets is its own to change again.
	e.must(204, "POST", "/department/"+sales+"/subordination",
		map[string]any{"subordination": map[string]string{"subordinationType": "manual", "supervisorId": deputy}})
	e.must(204, "POST", "/department/"+sales+"/subordination",
		map[string]any{"subordination": map[string]string{"subordinationType": "no_supervisor"}})

	// Back with the owner's credentials, any link may change.
	if err := e.sim.SetCaller(e.acct, e.state().OwnerID); err != nil {
		t.Fatal(err)
	}
	e.must(204, "POST", "/department/"+sales+"/subordination",
		map[string]any{"coSubordination": map[string]string{"subordinationType": "no_supervisor"}})
}

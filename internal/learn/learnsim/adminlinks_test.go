package learnsim

import (
	"net/http"
	"testing"
)

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

// Who may add whom (Learn's "Adding users"): a department administrator
// adds course authors and learners to its departments, a custom role
// learners only; any other role is refused with 403.
func TestCustomRoleAddsOnlyLearners(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"department_administrator", "custom"} {
		e := newEnv(t, AccountOptions{})
		sales := e.createDept("Sales", e.root, "")
		caller, err := e.sim.SeedUser(e.acct, sales, map[string]string{"login": "c@acme.ru", "first_name": "C", "last_name": "R"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetRole(e.acct, caller, role); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetManaged(e.acct, caller, sales); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetCaller(e.acct, caller); err != nil {
			t.Fatal(err)
		}
		author := http.StatusCreated
		if role == "custom" {
			author = http.StatusForbidden
		}
		body := func(login, newRole string) map[string]any {
			return map[string]any{"departmentId": sales, "role": newRole, "sendLoginEmail": false,
				"fields": map[string]string{"login": login, "first_name": "F", "last_name": "L"}}
		}
		e.must(http.StatusCreated, "POST", "/user", body("learner@acme.ru", "learner"))
		e.must(author, "POST", "/user", body("author@acme.ru", "publisher"))
		e.must(author, "POST", "/user", body("author2@acme.ru", "course_authors"))
		learner := e.createUser(sales, "l2@acme.ru", nil)
		e.must(map[int]int{http.StatusCreated: http.StatusOK, http.StatusForbidden: http.StatusForbidden}[author],
			"POST", "/user/"+learner, map[string]any{"role": "publisher", "fields": map[string]string{"login": "l2@acme.ru"}})
	}
}

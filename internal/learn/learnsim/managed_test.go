package learnsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// A department a department administrator, author or custom role manages
// cannot be deleted (the docs' "Deleting a department"); the refusal is the
// one of the other refused deletes, 400 or, with RefusedDelete409, 409.
func TestManagedDepartmentDelete(t *testing.T) {
	t.Parallel()
	for _, conflict := range []bool{false, true} {
		refused := http.StatusBadRequest
		if conflict {
			refused = http.StatusConflict
		}
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{RefusedDelete409: conflict}}, AccountOptions{})
		sales := e.createDept("Sales", e.root, "")
		emea := e.createDept("EMEA", sales, "")
		apac := e.createDept("APAC", e.root, "")

		// Created through the API with its departments, as the OAS's list.
		admin := newManager(e, "department_administrator", []string{emea})
		e.must(refused, "DELETE", "/department/"+emea, nil)
		if got := managedOf(e, admin); !slices.Equal(got, []string{emea}) {
			t.Fatalf("manageableDepartmentIds read back %v, want [%s]", got, emea)
		}
		if x := e.must(200, "GET", "/user/"+admin, nil, "Accept", "application/xml"); !strings.Contains(x, "<manageableDepartmentIds><id>"+emea+"</id></manageableDepartmentIds>") {
			t.Fatalf("XML user: %s", x)
		}

		// A move keeps the department managed: its ID is the same.
		e.must(204, "POST", "/department/"+emea, map[string]string{"parentDepartmentId": apac})
		e.must(refused, "DELETE", "/department/"+emea, nil)

		// Losing the role drops the departments: the delete goes through.
		e.must(200, "POST", "/user/"+admin, map[string]any{"role": "learner", "fields": map[string]string{"login": "mgr-department_administrator@acme.ru"}})
		if got := managedOf(e, admin); got != nil {
			t.Fatalf("a learner still manages %v", got)
		}
		e.must(204, "DELETE", "/department/"+emea, nil)

		// The seeding hook, with a custom role; a comma string is taken too.
		seeded, err := e.sim.SeedUser(e.acct, e.root, map[string]string{"login": "c@acme.ru", "first_name": "C", "last_name": "R"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetManaged(e.acct, seeded, apac); err == nil {
			t.Fatal("SetManaged took a learner")
		}
		if err := e.sim.SetRole(e.acct, seeded, "custom"); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetManaged(e.acct, seeded, apac); err != nil {
			t.Fatal(err)
		}
		e.must(refused, "DELETE", "/department/"+apac, nil)
		author := newManager(e, "publisher", nil)
		e.must(200, "POST", "/user/"+author, map[string]any{"manageableDepartmentIds": sales + ", " + apac,
			"fields": map[string]string{"login": "mgr-publisher@acme.ru"}})
		if st, _ := e.state().UserByLogin("mgr-publisher@acme.ru"); !slices.Equal(st.ManagedDepartments, sortedIDs(sales, apac)) {
			t.Fatalf("publisher manages %v", st.ManagedDepartments)
		}
		e.must(refused, "DELETE", "/department/"+sales, nil)

		// A deleted manager manages nothing any more.
		e.must(204, "DELETE", "/user/"+seeded, nil)
		e.must(200, "POST", "/user/"+author, map[string]any{"manageableDepartmentIds": []string{},
			"fields": map[string]string{"login": "mgr-publisher@acme.ru"}})
		e.must(204, "DELETE", "/department/"+apac, nil)
		e.must(204, "DELETE", "/department/"+sales, nil)

		// In XML, the ArrayOfIds is <id> elements.
		xmlAdmin := e.must(201, "POST", "/user", `<request><departmentId>`+e.root+`</departmentId><role>department_administrator</role>`+
			`<fields><login>x@acme.ru</login><first_name>X</first_name><last_name>M</last_name></fields><sendLoginEmail>false</sendLoginEmail>`+
			`<manageableDepartmentIds><id>`+e.root+`</id></manageableDepartmentIds></request>`)
		if st, _ := e.state().UserByLogin("x@acme.ru"); !slices.Equal(st.ManagedDepartments, []string{e.root}) {
			t.Fatalf("XML create %s: manages %v", xmlAdmin, st.ManagedDepartments)
		}

		// The documented requirement, and unknown departments.
		f := map[string]string{"login": "y@acme.ru", "first_name": "Y", "last_name": "Y"}
		e.must(400, "POST", "/user", map[string]any{"departmentId": e.root, "fields": f, "role": "department_administrator", "sendLoginEmail": false})
		e.must(400, "POST", "/user", map[string]any{"departmentId": e.root, "fields": f, "role": "custom", "sendLoginEmail": false,
			"manageableDepartmentIds": []string{"no-such-department"}})
	}
}

// newManager creates a user of role in the root through the API, with
// manageableDepartmentIds when ids is not nil.
func newManager(e *env, role string, ids []string) string {
	e.t.Helper()
	body := map[string]any{"departmentId": e.root, "role": role, "sendLoginEmail": false,
		"fields": map[string]string{"login": "mgr-" + role + "@acme.ru", "first_name": "M", "last_name": "G"}}
	if ids != nil {
		body["manageableDepartmentIds"] = ids
	}
	var id string
	if err := json.Unmarshal([]byte(e.must(201, "POST", "/user", body)), &id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// managedOf reads a user's manageableDepartmentIds from GET /user/{id}.
func managedOf(e *env, id string) []string {
	e.t.Helper()
	var u struct {
		Response struct {
			Manages []string `json:"manageableDepartmentIds"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(e.must(200, "GET", "/user/"+id, nil)), &u); err != nil {
		e.t.Fatal(err)
	}
	return u.Response.Manages
}

func sortedIDs(ids ...string) []string { slices.Sort(ids); return ids }

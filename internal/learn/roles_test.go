package learn

import (
	"encoding/json"
	"encoding/xml"
	"testing"
)

// Administers decides whether the sync may link a Learn user to an
// employee by e-mail and move its login. Learn lets a user hold a second role
// beside learner (userRoles) and manage departments, which role alone may
// not show: each of them counts, and a shape the client cannot read counts
// as administering rather than failing the listing.
func TestUserAdministers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, json string
		want       bool
	}{
		{"Learner", `{"userId":"u","role":"learner","userRoles":[]}`, false},
		{"NoRole", `{"userId":"u"}`, false},
		{"EUSupervisor", `{"userId":"u","role":"supervisors"}`, false},
		{"Administrator", `{"userId":"u","role":"administrator"}`, true},
		{"EUAccountAdministrator", `{"userId":"u","role":"account_administrators"}`, true},
		{"UnknownRole", `{"userId":"u","role":"auditor"}`, true},
		{"SecondRole", `{"userId":"u","role":"learner","userRoles":[{"roleId":"r","roleType":"learner"},{"roleId":"d","roleType":"department_administrator","manageableDepartmentIds":[]}]}`, true},
		{"LearnerInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleId":"r","roleType":"learner","manageableDepartmentIds":[]}]}`, false},
		{"ManagesDepartments", `{"userId":"u","role":"learner","manageableDepartmentIds":["d1"]}`, true},
		{"ManagesInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleId":"c","manageableDepartmentIds":["d1"]}]}`, true},
		{"ManageableAsText", `{"userId":"u","role":"learner","manageableDepartmentIds":"d1, d2"}`, true},
		{"ManageableEmpty", `{"userId":"u","role":"learner","manageableDepartmentIds":null}`, false},
		{"UserRolesUnreadable", `{"userId":"u","role":"learner","userRoles":{"0":"x"}}`, true},
		{"ManageableUnreadable", `{"userId":"u","role":"learner","manageableDepartmentIds":{"id":"d1"}}`, true},
	} {
		var u User
		if err := json.Unmarshal([]byte(c.json), &u); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if u.ID != "u" || u.Administers() != c.want {
			t.Errorf("%s: %+v administers %v, want %v", c.name, u, u.Administers(), c.want)
		}
	}
}

func TestUserAdministersXML(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, xml string
		want      bool
	}{
		{"Learner", `<userProfile><userId>u</userId><role>learner</role><userRoles/></userProfile>`, false},
		{"SecondRole", `<userProfile><userId>u</userId><role>learner</role><userRoles><userRole><roleType>publisher</roleType></userRole></userRoles></userProfile>`, true},
		{"Manages", `<userProfile><userId>u</userId><role>learner</role><manageableDepartmentIds><id>d1</id></manageableDepartmentIds></userProfile>`, true},
		{"ManagesNone", `<userProfile><userId>u</userId><role>learner</role><manageableDepartmentIds/></userProfile>`, false},
	} {
		var u User
		if err := xml.Unmarshal([]byte(c.xml), &u); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if u.ID != "u" || u.Administers() != c.want {
			t.Errorf("%s: %+v administers %v, want %v", c.name, u, u.Administers(), c.want)
		}
	}
}

// Limited decides whether the sync may run with a user's credentials: a
// department administrator's, a custom role's or any with departments to
// manage reach only part of the account. The two role vocabularies conflict
// and a role may show only in userRoles. A role not known, or none, is not
// taken as limited: how Learn shows the owner is not documented.
func TestUserLimited(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, json string
		want       bool
	}{
		{"OASAdministrator", `{"userId":"u","role":"administrator"}`, false},
		{"EUAccountAdministrators", `{"userId":"u","role":"account_administrators"}`, false},
		{"Owner", `{"userId":"u","role":"Account Owner"}`, false},
		{"AdministratorInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleType":"learner"},{"roleType":"administrator","manageableDepartmentIds":[]}]}`, false},
		{"DepartmentAdministrator", `{"userId":"u","role":"department_administrator"}`, true},
		{"EUDepartmentAdministrators", `{"userId":"u","role":"department_administrators","manageableDepartmentIds":["d1"]}`, true},
		{"DepartmentAdministratorInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleType":"learner"},{"roleType":"department_administrator","manageableDepartmentIds":["d1"]}]}`, true},
		{"Custom", `{"userId":"u","role":"custom"}`, true},
		{"Learner", `{"userId":"u","role":"learner"}`, false},
		{"NoRole", `{"userId":"u"}`, false},
		{"UnknownRole", `{"userId":"u","role":"auditor"}`, false},
		{"AdministratorAndSupervisor", `{"userId":"u","role":"administrator","userRoles":[{"roleType":"supervisor"}]}`, false},
		{"AdministratorLimitedToDepartments", `{"userId":"u","role":"administrator","manageableDepartmentIds":["d1"]}`, true},
		{"AdministratorAndCustom", `{"userId":"u","role":"administrator","userRoles":[{"roleType":"custom"}]}`, true},
		{"UserRolesUnreadable", `{"userId":"u","role":"administrator","userRoles":{"0":"x"}}`, false},
	} {
		var u User
		if err := json.Unmarshal([]byte(c.json), &u); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if u.Limited() != c.want {
			t.Errorf("%s: %+v limited %v, want %v", c.name, u, u.Limited(), c.want)
		}
	}
}

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

// AccountAdmin decides whether the sync may run with a user's credentials:
// only an owner's or account administrator's reach the whole account. The
// two role vocabularies conflict and a role may show only in userRoles;
// any department administrator, custom role, unknown role or department
// limit makes the credentials limited.
func TestUserAccountAdmin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, json string
		want       bool
	}{
		{"OASAdministrator", `{"userId":"u","role":"administrator"}`, true},
		{"EUAccountAdministrators", `{"userId":"u","role":"account_administrators"}`, true},
		{"Owner", `{"userId":"u","role":"Account Owner"}`, true},
		{"AdministratorInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleType":"learner"},{"roleType":"administrator","manageableDepartmentIds":[]}]}`, true},
		{"DepartmentAdministrator", `{"userId":"u","role":"department_administrator"}`, false},
		{"EUDepartmentAdministrators", `{"userId":"u","role":"department_administrators","manageableDepartmentIds":["d1"]}`, false},
		{"DepartmentAdministratorInUserRoles", `{"userId":"u","role":"learner","userRoles":[{"roleType":"learner"},{"roleType":"department_administrator","manageableDepartmentIds":["d1"]}]}`, false},
		{"Custom", `{"userId":"u","role":"custom"}`, false},
		{"Learner", `{"userId":"u","role":"learner"}`, false},
		{"NoRole", `{"userId":"u"}`, false},
		{"UnknownRole", `{"userId":"u","role":"auditor"}`, false},
		{"AdministratorLimitedToDepartments", `{"userId":"u","role":"administrator","manageableDepartmentIds":["d1"]}`, false},
		{"AdministratorAndCustom", `{"userId":"u","role":"administrator","userRoles":[{"roleType":"custom"}]}`, false},
		{"UserRolesUnreadable", `{"userId":"u","role":"administrator","userRoles":{"0":"x"}}`, false},
	} {
		var u User
		if err := json.Unmarshal([]byte(c.json), &u); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if u.AccountAdmin() != c.want {
			t.Errorf("%s: %+v account admin %v, want %v", c.name, u, u.AccountAdmin(), c.want)
		}
	}
}

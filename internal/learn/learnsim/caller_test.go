package learnsim

import (
	"net/http"
	"testing"
)

// An account administrator's credentials write anything but the owner; a
// learner's reach nothing, reads included (docs/learn-api.md, "Whose
// credentials").
func TestCallerRights(t *testing.T) {
	t.Parallel()
	e := newEnv(t, AccountOptions{})
	adm, err := e.sim.SeedUser(e.acct, e.root, map[string]string{"login": "adm", "first_name": "A", "last_name": "D"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.sim.SeedUser(e.acct, e.root, map[string]string{"login": "other", "first_name": "O", "last_name": "T"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.sim.Snapshot(e.acct)
	owner, _ := st.UserByLogin(email)
	for _, err := range []error{e.sim.SetRole(e.acct, adm, "administrator"), e.sim.SetCaller(e.acct, adm)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.must(http.StatusOK, "POST", "/user/"+other+"/status", map[string]any{"status": 3})
	e.must(http.StatusForbidden, "POST", "/user/"+owner.ID+"/status", map[string]any{"status": 1})
	e.must(http.StatusForbidden, "POST", "/users/deactivate", map[string]any{"userIds": []string{other, owner.ID}})
	e.must(http.StatusOK, "GET", "/departments", nil)

	if err := e.sim.SetRole(e.acct, adm, "learner"); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusForbidden, "GET", "/departments", nil)
	e.must(http.StatusForbidden, "POST", "/department", map[string]any{"name": "X", "parentDepartmentId": e.root})
}

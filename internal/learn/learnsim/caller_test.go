package learnsim

import (
	"net/http"
	"strings"
	"testing"
)

// An account administrator's credentials write anything but the owner
// (whose deactivation Learn refuses anyway); a
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
	// Deactivating the owner meets the owner's own rule, whoever asks.
	e.must(http.StatusBadRequest, "POST", "/users/deactivate", map[string]any{"userIds": []string{other, owner.ID}})
	e.must(http.StatusForbidden, "POST", "/user/"+owner.ID, map[string]any{"fields": map[string]string{"login": email, "first_name": "X"}})
	e.must(http.StatusOK, "GET", "/departments", nil)

	if err := e.sim.SetRole(e.acct, adm, "learner"); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusForbidden, "GET", "/departments", nil)
	e.must(http.StatusForbidden, "POST", "/department", map[string]any{"name": "X", "parentDepartmentId": e.root})
}

// Under ScopedReads a department administrator's listing shows the parent
// of its top department as ScopedParent says, in JSON and XML; the
// caller's own login signs in.
func TestScopedParent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p          ScopedParent
		json, xml  string // what the top department's parent reads as
		jsonAbsent bool
	}{
		{ScopedParentID, `"parentDepartmentId":"ROOT"`, `<parentDepartmentId>ROOT</parentDepartmentId>`, false},
		{ScopedParentNull, `"parentDepartmentId":null`, `<parentDepartmentId></parentDepartmentId>`, false},
		{ScopedParentAbsent, ``, ``, true},
	} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{ScopedReads: true, ScopedParent: c.p}}, AccountOptions{})
		sales := e.createDept("Sales", e.root, "")
		team := e.createDept("Team", sales, "")
		da, err := e.sim.SeedUser(e.acct, sales, map[string]string{"login": "da@acme.test", "first_name": "D", "last_name": "A"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{e.sim.SetRole(e.acct, da, "department_administrator"), e.sim.SetManaged(e.acct, da, sales), e.sim.SetCaller(e.acct, da)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		as := []string{"X-Auth-Email", "DA@acme.test"}
		js := e.must(http.StatusOK, "GET", "/department", nil, as...)
		xs := e.must(http.StatusOK, "GET", "/department", nil, append(as, "Accept", "application/xml")...)
		for _, body := range []string{js, xs} {
			if !strings.Contains(body, sales) || !strings.Contains(body, team) {
				t.Fatalf("%d: listing %s", c.p, body)
			}
		}
		wantJSON, wantXML := strings.ReplaceAll(c.json, "ROOT", e.root), strings.ReplaceAll(c.xml, "ROOT", e.root)
		if !c.jsonAbsent && (!strings.Contains(js, wantJSON) || !strings.Contains(xs, wantXML)) {
			t.Errorf("%d: want %s / %s in\n%s\n%s", c.p, wantJSON, wantXML, js, xs)
		}
		// The top department's parent, and only its: Team still names Sales.
		if n := strings.Count(js, "parentDepartmentId"); c.jsonAbsent && n != 1 || !c.jsonAbsent && n != 2 {
			t.Errorf("%d: %d parents in %s", c.p, n, js)
		}
		if n := strings.Count(xs, "<parentDepartmentId>"); c.jsonAbsent && n != 1 || !c.jsonAbsent && n != 2 {
			t.Errorf("%d: %d parents in %s", c.p, n, xs)
		}
	}
}

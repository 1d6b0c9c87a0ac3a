package b24sim_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
)

// userGetRows asks the simulator's handler for user.get with params and
// returns the rows by ID.
func userGetRows(tb testing.TB, sim *b24sim.Sim, tok b24sim.Token, params map[string]any) map[string]map[string]any {
	tb.Helper()
	params["auth"] = tok.AccessToken
	body, _ := json.Marshal(params)
	req := httptest.NewRequest("POST", tok.ClientEndpoint+"user.get", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	var pg struct {
		Result []map[string]any `json:"result"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &pg); err != nil || rec.Code != 200 {
		tb.Fatalf("user.get %v: %d %v: %s", params, rec.Code, err, rec.Body.Bytes())
	}
	out := map[string]map[string]any{}
	for _, r := range pg.Result {
		out[str(r["ID"])] = r
	}
	return out
}

// Bitrix24 derives USER_TYPE from the user: one that is no bot, e-mail or
// other external user is "extranet" when UF_DEPARTMENT is empty, else
// "employee"; and an intranet caller without ADMIN_MODE sees only users who
// have a department. So a user the simulator holds without departments and
// without the Extranet flag (AddUser, UpdateUser) reads as an extranet user,
// never as an employee with no department, which Bitrix24 never sends.
func TestUserWithoutDepartmentIsExtranet(t *testing.T) {
	t.Parallel()
	sim := b24sim.New(b24sim.Options{Rate: -1})
	p := sim.AddPortal(b24sim.PortalOptions{Domain: "acme.bitrix24.com", Org: b24sim.GenerateOrg(3, 10, 2)})
	tok := p.Install()
	lone := p.AddUser(b24sim.User{Active: true, Name: "Lone", LastName: "Nodept", Email: "lone@example.com"})
	moved := p.NonAdminID()
	if err := p.UpdateUser(moved, func(u *b24sim.User) { u.Departments = nil }); err != nil {
		t.Fatal(err)
	}
	id := func(n int64) string { return strconvFormat(n) }

	all := userGetRows(t, sim, tok, map[string]any{"ADMIN_MODE": true})
	for _, n := range []int64{lone, moved} {
		row := all[id(n)]
		if row == nil {
			t.Fatalf("user %d missing with ADMIN_MODE: %v", n, all)
		}
		if row["USER_TYPE"] != "extranet" {
			t.Errorf("user %d without departments: USER_TYPE %v, want extranet", n, row["USER_TYPE"])
		}
	}
	employees := userGetRows(t, sim, tok, map[string]any{"ADMIN_MODE": true, "FILTER": map[string]any{"USER_TYPE": "employee"}})
	if employees[id(lone)] != nil || employees[id(moved)] != nil || len(employees) == 0 {
		t.Errorf("USER_TYPE employee filter answered users without departments: %v", employees)
	}
	plain := userGetRows(t, sim, tok, map[string]any{})
	if plain[id(lone)] != nil || plain[id(moved)] != nil || len(plain) == 0 {
		t.Errorf("without ADMIN_MODE the users without departments are visible: %d rows", len(plain))
	}
}

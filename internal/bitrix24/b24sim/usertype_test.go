package b24sim_test

import (
	"encoding/json"
	"io"
	"net/http"
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

// Until installFinish, Bitrix24 opens the installer for admins only; an
// ordinary user sees its notice that the app is not fully installed, and
// the app receives no frame POST from them.
func TestInstallerOpensForAdminsOnly(t *testing.T) {
	t.Parallel()
	app, appSrv := startApp(t)
	sim := b24sim.Start(b24sim.Options{AppURL: appSrv.URL, Rate: -1})
	defer sim.Close()
	p := sim.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(5, 10, 2)})
	ctx := t.Context()
	p.Install()
	if resp, err := p.Open(ctx, nil, p.NonAdminID()); err == nil {
		resp.Body.Close()
		t.Errorf("a non-admin's open during the install reached the app: %d", resp.StatusCode)
	}
	resp, err := http.Get(p.PageURL() + "?user=" + strconvFormat(p.NonAdminID()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "appform") || !strings.Contains(string(page), "not fully installed") {
		t.Errorf("portal page for a non-admin during the install:\n%s", page)
	}
	app.mu.Lock()
	n := len(app.frames)
	app.mu.Unlock()
	if n != 0 {
		t.Fatalf("the app received %d frame POSTs from a non-admin", n)
	}
	// The admin still gets the installer, and after installFinish everyone the app.
	if resp, err := p.Open(ctx, nil, p.AdminID()); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	p.FinishInstall(ctx)
	if resp, err := p.Open(ctx, nil, p.NonAdminID()); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.frames) != 2 || app.frames[0].URL.Path != "/b24/install" || app.frames[1].URL.Path != "/b24/app" {
		t.Errorf("frames %d, want the admin's installer and the non-admin's app page", len(app.frames))
	}
}

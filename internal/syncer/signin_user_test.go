package syncer

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// No employee may take over a Learn user with rights over others: the user
// the app signs in as (the account's administrator), or any administrator,
// department administrator, publisher or custom role. An employee who puts
// such an address in their Bitrix24 profile (or an invited user who has it)
// must not get it linked: the run would rename and move the user, and later
// write the employee's next address into its login and e-mail (a password
// reset then hands them the rights) or deactivate it when they leave (for
// the sign-in user, every sync then fails to sign in). The employee is
// refused with the reason; the user is not written to, whatever the employee
// does next. Learn may show a role beside learner only in userRoles
// (learnsim.UserRolesSecond): the rule holds there too.
func TestSyncNeverTakesOverAnAdministrator(t *testing.T) {
	t.Parallel()
	type admin struct {
		role  string
		shown learnsim.UserRoles
	}
	cases := []admin{{}}
	for _, role := range []string{"administrator", "department_administrator", "account_administrators", "custom"} {
		cases = append(cases, admin{role, learnsim.UserRolesInRole}, admin{role, learnsim.UserRolesSecond})
	}
	for _, c := range cases {
		role := c.role
		name, reason := fmt.Sprintf("%s/shown %d", role, c.shown), ReasonLearnAdmin
		if role == "" {
			name, reason = "sign-in user", ReasonSignIn
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{UserRoles: c.shown}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 40, 4))
			st := e.state()
			id, addr := st.OwnerID, simEmail
			if role != "" {
				addr = "hr.admin@acme.test"
				var err error
				id, err = e.lsim.SeedUser(simAccount, st.RootID, map[string]string{"login": addr, "email": addr, "first_name": "Hanna", "last_name": "Admin"}, 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.lsim.SetRole(simAccount, id, role); err != nil {
					t.Fatal(err)
				}
			}
			was := e.learnUserByID(id)
			same := func(when string) {
				t.Helper()
				e.untouched(id, was, when+": the administrator")
			}
			mallory := syncedUser(p)
			if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) {
				u.Email, u.Name, u.LastName = " "+strings.ToUpper(addr), "Mallory", "Intruder"
			}); err != nil {
				t.Fatal(err)
			}
			rep := e.run(portalID, TriggerScheduled)
			same("first run")
			refused := false
			for _, it := range e.items(portalID, rep.RunID) {
				if it.B24ID == mallory.ID && it.Kind == KindUser {
					if it.Status != ItemRefused || !it.Reason.Has(reason) {
						t.Fatalf("the employee with the administrator's address: %s %s %q", it.Action, it.Status, it.Reason)
					}
					refused = true
				}
			}
			if !refused {
				t.Fatal("the employee with the administrator's address is not in the report")
			}
			// Her own address back, then fired: still nothing written to
			// the administrator.
			if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) { u.Email = "mallory@evil.example" }); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerScheduled)
			same("after the employee's address changed back")
			if err := p.FireUser(mallory.ID); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerScheduled)
			same("after the employee was fired")
		})
	}
}

// A mapping from before the rule that links an employee to the Learn user
// the run signs in as is not followed: the employee is refused, and when
// they leave the sign-in user is not deactivated.
func TestPlanSignInUserLinkedBefore(t *testing.T) {
	t.Parallel()
	a := emptyLearn()
	a.Users = []LearnUser{{ID: "boss", DepartmentID: "root", Status: StatusActive,
		Profile: Profile{Login: "learn-admin@acme.test", Email: "learn-admin@acme.test", FirstName: "Learn", LastName: "Admin"}}}
	a.Mappings = []Mapping{{Kind: KindUser, B24ID: 21, LearnID: "boss"}}
	o := opts()
	o.SignInLogin = " Learn-Admin@acme.test"
	d := org()
	for i := range d.Employees {
		if d.Employees[i].ID == 21 {
			d.Employees[i].Email = "learn-admin@acme.test"
		}
	}
	touches := func(p *Plan) []string {
		var out []string
		for _, s := range append(slices.Clone(p.Steps), p.Waiting...) {
			if s.LearnID == "boss" || s.B24ID == 21 {
				out = append(out, fmt.Sprintf("%s:%d:%s", s.Action, s.B24ID, s.LearnID))
			}
		}
		return out
	}
	p := mustPlan(t, Input{Options: o, Desired: d, Actual: a})
	if got := touches(p); len(got) != 0 {
		t.Fatalf("steps on the sign-in user or its employee: %v", got)
	}
	refused := false
	for _, s := range p.Refused {
		refused = refused || (s.B24ID == 21 && s.Reason.Has(ReasonSignIn))
	}
	if !refused {
		t.Fatalf("employee 21 not refused: %+v", p.Refused)
	}
	for i := range d.Employees {
		if d.Employees[i].ID == 21 {
			d.Employees[i].Active = false
		}
	}
	if got := touches(mustPlan(t, Input{Options: o, Desired: d, Actual: a})); len(got) != 0 {
		t.Fatalf("steps after the employee left: %v", got)
	}
}

// A learner the app created and a Learn admin then promoted stays linked to
// its employee (name and department follow Bitrix24, and it is deactivated
// when they leave), but its login and e-mail are Learn's from then on: an
// address typed in Bitrix24 never moves the login of a user with rights.
func TestPromotedUserKeepsItsLogin(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(13, 40, 4))
	e.run(portalID, TriggerScheduled)
	emp := syncedUser(p)
	lu := e.learnUser(normEmail(emp.Email))
	if err := e.lsim.SetRole(simAccount, lu.ID, "department_administrator"); err != nil {
		t.Fatal(err)
	}
	if err := p.UpdateUser(emp.ID, func(u *b24sim.User) { u.Email, u.LastName = "elsewhere@evil.example", "Renamed" }); err != nil {
		t.Fatal(err)
	}
	e.run(portalID, TriggerScheduled)
	now := e.learnUser(lu.Fields["login"])
	if now.ID != lu.ID || now.Fields["email"] != lu.Fields["email"] {
		t.Fatalf("the promoted user's login or e-mail moved: %v, was %v", now.Fields, lu.Fields)
	}
	if now.Fields["last_name"] != "Renamed" {
		t.Fatalf("the promoted user no longer follows Bitrix24: last name %q", now.Fields["last_name"])
	}
	if err := p.FireUser(emp.ID); err != nil {
		t.Fatal(err)
	}
	e.run(portalID, TriggerScheduled)
	if st := e.learnUser(lu.Fields["login"]).Status; st == 1 {
		t.Fatal("the promoted user is still active after the employee left")
	}
}

// Nor may an employee take over an ordinary Learn user no employee is
// linked to yet (a learner added in Learn by hand, a contractor, someone of
// a department outside the selection). Linking by address is wanted (a
// company that used Learn before gets no duplicates), so Mallory, with
// Vera's address in her Bitrix24 profile, is linked to Vera's Learn user;
// but an adopted user keeps Learn's login and e-mail while linked, so
// Mallory's own address put back is never written into Vera's login (a
// password reset would then hand her the account).
func TestSyncNeverTakesOverAnAdoptedUser(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(11, 40, 4))
	victim := "vera.learner@acme.test"
	id, err := e.lsim.SeedUser(simAccount, e.state().RootID, map[string]string{"login": victim, "email": victim,
		"first_name": "Vera", "last_name": "Learner"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	was := e.learnUser(victim)
	mallory := syncedUser(p)
	if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) { u.Email = strings.ToUpper(victim) }); err != nil {
		t.Fatal(err)
	}
	e.run(portalID, TriggerScheduled)
	linked := e.learnUser(victim)
	if linked.ID != id || linked.Fields["last_name"] != mallory.LastName {
		t.Fatalf("Vera's Learn user is not linked to the employee with her address: %+v", linked)
	}
	if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) { u.Email, u.LastName = "mallory@evil.example", "Intruder" }); err != nil {
		t.Fatal(err)
	}
	e.run(portalID, TriggerScheduled)
	now := e.learnUser(victim)
	if now.ID != id || now.Fields["login"] != was.Fields["login"] || now.Fields["email"] != was.Fields["email"] {
		t.Fatalf("Vera's Learn user now signs in as %q (e-mail %q): a password reset hands it to Mallory",
			now.Fields["login"], now.Fields["email"])
	}
	if now.Fields["last_name"] != "Intruder" {
		t.Fatalf("the adopted user no longer follows Bitrix24: last name %q", now.Fields["last_name"])
	}
}

// A user the app created is its employee's: when their Bitrix24 e-mail
// changes, the Learn login and e-mail follow (the adopted rule above does
// not reach it).
func TestCreatedUserLoginFollowsItsEmail(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(17, 40, 4))
	e.run(portalID, TriggerScheduled)
	emp := syncedUser(p)
	lu := e.learnUser(normEmail(emp.Email))
	if err := p.UpdateUser(emp.ID, func(u *b24sim.User) { u.Email = "Married.Name@acme.test" }); err != nil {
		t.Fatal(err)
	}
	e.run(portalID, TriggerScheduled)
	now := e.learnUser("married.name@acme.test")
	if now.ID != lu.ID || normEmail(now.Fields["login"]) != "married.name@acme.test" ||
		normEmail(now.Fields["email"]) != "married.name@acme.test" {
		t.Fatalf("the created user's login did not follow the e-mail: %v, was %v", now.Fields, lu.Fields)
	}
}

// The account administrator the app signs in as may head a department in
// Learn, set by hand there: Learn then gives them its Supervisor role,
// which a read may show with the departments supervised. That is no
// limited role: every run goes on, and no employee takes the user over
// (docs/learn-api.md, "Roles").
func TestSyncSignInUserSupervises(t *testing.T) {
	t.Parallel()
	for _, shown := range []learnsim.SupervisorRole{learnsim.SupervisorRoleHidden, learnsim.SupervisorRoleInRole,
		learnsim.SupervisorRoleListed, learnsim.SupervisorRoleScoped} {
		t.Run(fmt.Sprintf("shown %d", shown), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{SupervisorRole: shown}}})
			st := e.state()
			hr, err := e.lsim.SeedDepartment(simAccount, "HR", st.RootID, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.lsim.SetSupervisor(simAccount, hr, st.OwnerID, false); err != nil {
				t.Fatal(err)
			}
			portalID, p := e.addPortal(b24sim.GenerateOrg(12, 30, 4))
			e.run(portalID, TriggerScheduled)
			checkPortal(t, e.state(), p, st.RootID)
			e.lsim.ResetCounts()
			rep := e.run(portalID, TriggerManual)
			if c := e.lsim.Counts(simAccount); c.Writes != 0 {
				t.Errorf("a repeat wrote %d times: %v (report %v)", c.Writes, c.ByRoute, rep.Counts)
			}
		})
	}
}

package syncer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// The Learn user the app signs in with is the account's administrator, not
// an employee to sync. An ordinary employee who puts that address in their
// Bitrix24 profile (or an invited user who has it) must not get it linked:
// the run would rename and move the administrator, and later write the
// employee's next address into its login and e-mail (a password reset then
// hands them the Learn account) or deactivate it when they leave (every
// sync then fails to sign in). The employee is refused with the reason;
// the administrator is not written to, whatever the employee does next.
func TestSyncNeverTakesOverTheSignInUser(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	portalID, p := e.addPortal(b24sim.GenerateOrg(11, 40, 4))
	mallory := syncedUser(p)
	if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) {
		u.Email, u.Name, u.LastName = " "+strings.ToUpper(simEmail), "Mallory", "Intruder"
	}); err != nil {
		t.Fatal(err)
	}
	owner := func() learnsim.User {
		t.Helper()
		st := e.state()
		for _, u := range st.Users {
			if u.ID == st.OwnerID {
				return u
			}
		}
		t.Fatal("no account owner in Learn")
		return learnsim.User{}
	}
	was := owner()
	same := func(when string) {
		t.Helper()
		now := owner()
		if !maps.Equal(now.Fields, was.Fields) || now.DepartmentID != was.DepartmentID || now.Status != was.Status {
			t.Fatalf("%s: the sign-in user became %+v, was %+v", when, now, was)
		}
	}

	rep := e.run(portalID, TriggerScheduled)
	same("first run")
	items, err := e.syncer.store.RunItems(context.Background(), portalID, rep.RunID)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, it := range items {
		if it.B24ID == mallory.ID && it.Kind == KindUser {
			if it.Status != ItemRefused || !it.Reason.Has(ReasonSignIn) {
				t.Fatalf("the employee with the administrator's address: %s %s %q", it.Action, it.Status, it.Reason)
			}
			refused = true
		}
	}
	if !refused {
		t.Fatal("the employee with the administrator's address is not in the report")
	}

	// Her own address back, then fired: still nothing written to the
	// administrator.
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

// Any Learn user with rights over others (an account or department
// administrator, a publisher, a custom role) is guarded the same way: an
// employee who puts its address into their Bitrix24 profile is refused, and
// nothing is written to it when the employee changes the address back or
// leaves. Without the rule the run linked it, then wrote the employee's own
// address into its login: a password reset away from its rights.
func TestSyncNeverTakesOverALearnAdministrator(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"administrator", "department_administrator", "account_administrators", "custom"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{})
			portalID, p := e.addPortal(b24sim.GenerateOrg(12, 40, 4))
			root := e.state().RootID
			const addr = "hr.admin@acme.test"
			id, err := e.lsim.SeedUser(simAccount, root, map[string]string{"login": addr, "email": addr, "first_name": "Hanna", "last_name": "Admin"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.lsim.SetRole(simAccount, id, role); err != nil {
				t.Fatal(err)
			}
			admin := func() learnsim.User {
				t.Helper()
				for _, u := range e.state().Users {
					if u.ID == id {
						return u
					}
				}
				t.Fatal("the administrator is gone")
				return learnsim.User{}
			}
			was := admin()
			same := func(when string) {
				t.Helper()
				now := admin()
				if !maps.Equal(now.Fields, was.Fields) || now.DepartmentID != was.DepartmentID || now.Status != was.Status {
					t.Fatalf("%s: the administrator became %+v, was %+v", when, now, was)
				}
			}
			mallory := syncedUser(p)
			if err := p.UpdateUser(mallory.ID, func(u *b24sim.User) { u.Email, u.Name = strings.ToUpper(addr), "Mallory" }); err != nil {
				t.Fatal(err)
			}
			rep := e.run(portalID, TriggerScheduled)
			same("first run")
			refused := false
			for _, it := range e.items(portalID, rep.RunID) {
				if it.B24ID == mallory.ID && it.Kind == KindUser {
					if it.Status != ItemRefused || !it.Reason.Has(ReasonLearnAdmin) {
						t.Fatalf("the employee with the administrator's address: %s %s %q", it.Action, it.Status, it.Reason)
					}
					refused = true
				}
			}
			if !refused {
				t.Fatal("the employee with the administrator's address is not in the report")
			}
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

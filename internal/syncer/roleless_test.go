package syncer

import (
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// roleVariants are the variants whose user reads show no role at all, and
// the default, which shows them.
func roleVariants() (hidden []learnsim.Variant, shown learnsim.Variant) {
	for _, v := range learnsim.Variants() {
		switch {
		case v.Unsettled.HidesRoles():
			hidden = append(hidden, v)
		case v.Name == "default":
			shown = v
		}
	}
	return hidden, shown
}

// signInAsSecondAdmin makes the portal's runs sign in as a second account
// administrator, so that the owner is not the sign-in user.
func signInAsSecondAdmin(t *testing.T, e *simEnv, portalID int64) {
	t.Helper()
	const login = "second.admin@example.com"
	admin, err := e.lsim.SeedUser(simAccount, e.state().RootID, map[string]string{"login": login, "email": login, "first_name": "Second", "last_name": "Admin"}, StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{e.lsim.SetRole(simAccount, admin, "administrator"), e.lsim.SetCaller(simAccount, admin)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.setSettings(portalID, func(s *Settings) { s.LearnEmail = login })
}

// When Learn's reads show no role (NoRoleReads, EmptyUserRoles), an
// administrator and the account owner read like learners. An employee who
// puts such a user's address in their profile must not get it linked: the
// run would rename, move and, when they leave, deactivate it. Nothing else
// Learn answers tells the roles apart, so no Learn user the app did not
// create is linked by address while its role is unknown, a learner's
// included: the employee is refused with a reason, and the user is never
// written to. Where the role shows, a learner is linked as before.
func TestSyncRoleHiddenNeverAdopts(t *testing.T) {
	t.Parallel()
	hidden, shown := roleVariants()
	type tc struct {
		v    learnsim.Variant
		role string // "owner" for the account owner
	}
	var cases []tc
	for _, v := range hidden {
		for _, role := range []string{"owner", "administrator", "learner"} {
			cases = append(cases, tc{v, role})
		}
	}
	cases = append(cases, tc{shown, "learner"})
	for _, c := range cases {
		t.Run(c.v.Name+"/"+c.role, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: c.v.Unsettled}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 30, 3))
			signInAsSecondAdmin(t, e, portalID)
			st := e.state()
			id, addr := st.OwnerID, simEmail
			if c.role != "owner" {
				addr = "hanna@acme.test"
				var err error
				id, err = e.lsim.SeedUser(simAccount, st.RootID, map[string]string{"login": addr, "email": addr, "first_name": "Hanna", "last_name": "Existing"}, StatusActive)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.lsim.SetRole(simAccount, id, c.role); err != nil {
					t.Fatal(err)
				}
			}
			was := e.learnUserByID(id)
			emp := syncedUser(p)
			if err := p.UpdateUser(emp.ID, func(u *b24sim.User) {
				u.Email, u.Name, u.LastName = strings.ToUpper(addr), "Mallory", "Intruder"
			}); err != nil {
				t.Fatal(err)
			}
			rep := e.run(portalID, TriggerScheduled)
			var got *RunItem
			for _, it := range e.items(portalID, rep.RunID) {
				if it.B24ID == emp.ID && it.Kind == KindUser {
					got = &it
				}
			}
			if !c.v.Unsettled.HidesRoles() {
				// Shown a learner: linked, renamed as in Bitrix24.
				if now := e.learnUserByID(id); now.Fields["last_name"] != "Intruder" {
					t.Fatalf("the learner was not linked: %+v (item %+v)", now, got)
				}
				return
			}
			if got == nil || got.Status != ItemRefused || !got.Reason.Has(ReasonLearnRoleUnknown) {
				t.Fatalf("the employee with the address of a user whose role is hidden: %+v", got)
			}
			e.untouched(id, was, "first run: the "+c.role)
			if err := p.FireUser(emp.ID); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerScheduled)
			e.untouched(id, was, "after the employee was fired: the "+c.role)
		})
	}
}

// A user the app created and the Learn owner later made an administrator:
// where reads hide roles it still reads like a learner. Its employee's new
// address in Bitrix24 (theirs to change, or a Bitrix24 admin's) must not
// become its login and e-mail, or a password reset would hand over an
// account administrator; where roles show, Administers already keeps them.
func TestSyncRoleHiddenKeepsACreatedUsersLogin(t *testing.T) {
	t.Parallel()
	hidden, shown := roleVariants()
	for _, v := range append(hidden, shown) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: v.Unsettled}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 30, 3))
			signInAsSecondAdmin(t, e, portalID)
			emp := syncedUser(p)
			e.run(portalID, TriggerScheduled)
			var created learnsim.User
			for _, u := range e.state().Users {
				if strings.EqualFold(u.Fields["email"], emp.Email) {
					created = u
				}
			}
			if created.ID == "" {
				t.Fatalf("the first run created no Learn user for %s", emp.Email)
			}
			if err := e.lsim.SetRole(simAccount, created.ID, "administrator"); err != nil {
				t.Fatal(err)
			}
			if err := p.UpdateUser(emp.ID, func(u *b24sim.User) { u.Email = "mallory@evil.test" }); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerScheduled)
			for _, u := range e.state().Users {
				if u.ID == created.ID && (u.Fields["login"] != created.Fields["login"] || u.Fields["email"] != created.Fields["email"]) {
					t.Fatalf("the administrator's login and e-mail became %q, %q; were %q, %q",
						u.Fields["login"], u.Fields["email"], created.Fields["login"], created.Fields["email"])
				}
			}
		})
	}
}

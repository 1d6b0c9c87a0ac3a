package syncer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// The sync needs an account administrator's credentials (signin.go). With a
// department administrator's or a custom role's, whatever Learn's reads
// show (the whole account, or only the caller's departments with their top
// department's parent as its ID, null or absent: learnsim's ScopedReads and
// ScopedParent), a run and an on-demand sync stop before writing anything
// and say so; a listing that shows the top department parentless would
// otherwise have it renamed and the portal hung under it. Under scoped
// reads a caller outside its own departments does not see itself: that
// stops the run too. An account administrator who is not the owner syncs.
func TestSyncWithLimitedCredentials(t *testing.T) {
	t.Parallel()
	type tc struct {
		scoped  bool
		parent  learnsim.ScopedParent
		role    string
		shown   learnsim.UserRoles
		outside bool // the caller sits in the root, outside what it manages
	}
	var cases []tc
	roles := []string{"department_administrator", "custom", "department_administrators"}
	for i, scoped := range []bool{false, true} {
		for j, parent := range []learnsim.ScopedParent{learnsim.ScopedParentID, learnsim.ScopedParentNull, learnsim.ScopedParentAbsent} {
			n := i*3 + j
			cases = append(cases, tc{scoped: scoped, parent: parent, role: roles[n%len(roles)], shown: learnsim.UserRoles(n % 2), outside: n == 4})
		}
	}
	cases = append(cases, tc{scoped: true, parent: learnsim.ScopedParentAbsent, role: "administrator"},
		tc{scoped: true, parent: learnsim.ScopedParentNull, role: "administrator", shown: learnsim.UserRolesSecond})
	for _, c := range cases {
		t.Run(fmt.Sprintf("scoped %v parent %d %s shown %d outside %v", c.scoped, c.parent, c.role, c.shown, c.outside), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{ScopedReads: c.scoped, ScopedParent: c.parent, UserRoles: c.shown}}})
			portalID, p, ids := limitedSetup(t, e, c.role, c.outside)
			// Changes a run would write: the root renamed, a team and a
			// hire inside Support, Sales renamed.
			if err := p.RenameDepartment(1, "Scoped Inc"); err != nil {
				t.Fatal(err)
			}
			team := p.AddDepartment("Support L2", 3, 0)
			newbie := p.AddUser(b24sim.User{Active: true, Name: "New", LastName: "Hire", Email: "new.hire@example.com", Departments: []int64{team}})
			if err := p.RenameDepartment(2, "Sales EMEA"); err != nil {
				t.Fatal(err)
			}
			before := e.state()
			e.lsim.ResetCounts()
			_, err := e.syncer.Run(context.Background(), portalID, TriggerManual)
			_, personErr := e.syncer.RunPerson(context.Background(), portalID, newbie)
			if c.role == "administrator" {
				if err != nil || personErr != nil {
					t.Fatalf("an account administrator's run: %v, on demand: %v", err, personErr)
				}
				st := e.state()
				if d, _ := st.Department(ids[2]); d.Name != "Sales EMEA" {
					t.Fatalf("Sales in Learn: %+v", d)
				}
				if _, ok := st.UserByLogin("new.hire@example.com"); !ok {
					t.Fatal("the new hire is not in Learn")
				}
				return
			}
			if w := e.lsim.Counts(simAccount); w.Writes != 0 {
				t.Errorf("wrote %d times: %v", w.Writes, w.ByRoute)
			}
			for _, err := range []error{err, personErr} {
				if !errors.Is(err, ErrLearnNotAccountAdmin) {
					t.Fatalf("run: %v, want ErrLearnNotAccountAdmin", err)
				}
				if key, _ := RunErrorKey(err.Error()); key != "run_err_learn_not_account_admin" {
					t.Errorf("run error %q reads as %q", err, key)
				}
			}
			if after := e.state(); !reflect.DeepEqual(after, before) {
				t.Fatalf("Learn changed:\n%+v\nwas\n%+v", after, before)
			}
		})
	}
}

// limitedSetup syncs a portal of Root, Sales and Support with the owner's
// credentials, then makes them those of a user with role (in Support, or
// with outside in Learn's root) who manages Support's Learn copy; it
// returns the Learn IDs by Bitrix24 ID.
func limitedSetup(t *testing.T, e *simEnv, role string, outside bool) (int64, *b24sim.Portal, map[int64]string) {
	t.Helper()
	org := b24sim.Org{Name: "Scoped", Departments: []b24sim.Department{{ID: 1, Name: "Root"},
		{ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "Support", Parent: 1}}}
	for i := range 4 {
		id := int64(100 + i)
		org.Users = append(org.Users, b24sim.User{ID: id, Active: true, Name: "User", LastName: fmt.Sprint(id),
			Email: fmt.Sprintf("u%d@example.com", id), Departments: []int64{2 + int64(i%2)}})
	}
	portalID, p := e.addPortal(org)
	if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
		t.Fatalf("first run %s", rep.Status)
	}
	ids := checkPortal(t, e.state(), p, e.state().RootID)

	// From now on the credentials are the user's.
	home := ids[3]
	if outside {
		home = e.state().RootID
	}
	const login = "Support.Admin@example.com"
	caller, err := e.lsim.SeedUser(simAccount, home,
		map[string]string{"login": login, "first_name": "Dept", "last_name": "Admin"}, StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.lsim.SetRole(simAccount, caller, role); err != nil {
		t.Fatal(err)
	}
	if role != "administrator" {
		if err := e.lsim.SetManaged(simAccount, caller, ids[3]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.lsim.SetCaller(simAccount, caller); err != nil {
		t.Fatal(err)
	}
	e.setSettings(portalID, func(s *Settings) { s.LearnEmail = "support.admin@example.com" })
	return portalID, p, ids
}

// How Learn shows the owner's role is not documented: as an administrator,
// in a spelling of its own, or not at all. None of these is a limited role:
// the owner's runs and on-demand syncs go on.
func TestOwnerWhateverRoleLearnShows(t *testing.T) {
	t.Parallel()
	for _, role := range []string{"administrator", "account_owner", "Owner", learnsim.OwnerRoleNone, "learner"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{account: learnsim.AccountOptions{OwnerRole: role}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 6, 2))
			if _, err := e.syncer.Run(context.Background(), portalID, TriggerManual); err != nil {
				t.Fatalf("the owner's run: %v", err)
			}
			renameAndSyncOne(t, e, portalID, p)
		})
	}
}

// An on-demand sync reads only the users it needs, by filters that may
// match letter case (learnsim's ExactFilters), while the settings carry
// the sign-in login in another case than Learn holds it. Not found by the
// filters, the credentials' user is looked for in the whole list, as a
// full run finds it, rather than taken for a narrower role's.
func TestOnDemandFindsTheSignInUserWhateverTheCase(t *testing.T) {
	t.Parallel()
	for _, exact := range []bool{false, true} {
		t.Run(fmt.Sprintf("exact filters %v", exact), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{ExactFilters: exact}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 6, 2))
			e.run(portalID, TriggerManual)
			const login = "Second.Admin@Acme.test"
			admin, err := e.lsim.SeedUser(simAccount, e.state().RootID,
				map[string]string{"login": login, "first_name": "Second", "last_name": "Admin"}, StatusActive)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{e.lsim.SetRole(simAccount, admin, "administrator"), e.lsim.SetCaller(simAccount, admin)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			e.setSettings(portalID, func(s *Settings) { s.LearnEmail = strings.ToUpper(login) })
			renameAndSyncOne(t, e, portalID, p)
		})
	}
}

// renameAndSyncOne renames a synced employee and syncs them alone: no
// address is new, so the on-demand sync reads no more users than it needs.
func renameAndSyncOne(t *testing.T, e *simEnv, portalID int64, p *b24sim.Portal) {
	t.Helper()
	var who b24sim.User
	for _, u := range p.Users() {
		if u.Active && u.Email != "" {
			who = u
		}
	}
	if err := p.UpdateUser(who.ID, func(u *b24sim.User) { u.LastName = "Renamed" }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.syncer.RunPerson(context.Background(), portalID, who.ID); err != nil {
		t.Fatalf("the on-demand sync: %v", err)
	}
	if u, _ := e.state().UserByLogin(strings.ToLower(who.Email)); u.Fields["last_name"] != "Renamed" {
		t.Fatalf("the renamed employee in Learn: %+v", u)
	}
}

package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// The account owner cannot be deactivated, and Learn refuses it (with 400,
// or 403). Where a read shows the owner as a learner (learnsim's
// OwnerRole), an employee with the owner's address is linked to them like
// any learner (a read without a role links no one: TestSyncRoleHiddenNeverAdopts);
// when the employee leaves, the refused deactivation is reported on that
// person, and the run goes on: the other leaver is deactivated.
func TestSyncOwnerDeactivationRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		owner string
		u     learnsim.Unsettled
	}{
		{"owner shown as a learner", "learner", learnsim.Unsettled{}},
		{"owner shown as a learner, 403", "learner", learnsim.Unsettled{RefusedDelete403: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: c.u}, account: learnsim.AccountOptions{OwnerRole: c.owner}})
			st := e.state()
			// The run signs in as a second administrator.
			const login = "second.admin@example.com"
			admin, err := e.lsim.SeedUser(simAccount, st.RootID, map[string]string{"login": login, "email": login, "first_name": "Second", "last_name": "Admin"}, StatusActive)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{e.lsim.SetRole(simAccount, admin, "administrator"), e.lsim.SetCaller(simAccount, admin)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			portalID, p := e.addPortal(b24sim.GenerateOrg(23, 20, 3))
			e.setSettings(portalID, func(s *Settings) { s.LearnEmail = login })
			boss := syncedUser(p)
			// The owner's profile as it is, so that linking writes nothing
			// (the second administrator may not write the owner).
			if err := p.UpdateUser(boss.ID, func(u *b24sim.User) {
				u.Email, u.Name, u.LastName, u.SecondName, u.Departments = simEmail, "Account", "Owner", "", []int64{1}
				u.WorkPosition, u.PersonalMobile, u.WorkPhone = "", "", ""
			}); err != nil {
				t.Fatal(err)
			}
			other := syncedUser(p, boss.ID)
			if rep := e.run(portalID, TriggerManual); rep.Status == RunFailed {
				t.Fatalf("first run: %+v", rep)
			}
			otherLearn := e.learnUser(other.Email)
			for _, id := range []int64{boss.ID, other.ID} {
				if err := p.FireUser(id); err != nil {
					t.Fatal(err)
				}
			}
			rep := e.run(portalID, TriggerManual)
			if rep.Status == RunFailed {
				t.Fatalf("the run failed: %+v", rep)
			}
			reported := false
			for _, it := range e.items(portalID, rep.RunID) {
				if it.B24ID == boss.ID && it.Kind == KindUser {
					reported = true
					if it.Status != ItemRefused || !it.Reason.Has(ReasonLearn) {
						t.Errorf("the owner's employee: %s %s %q", it.Action, it.Status, it.Reason)
					}
				}
			}
			for _, u := range e.state().Users {
				if u.ID == st.OwnerID && u.Status != StatusActive {
					t.Fatalf("the owner has status %d", u.Status)
				}
				if u.ID == otherLearn.ID && u.Status == StatusActive {
					t.Error("the other leaver is still active")
				}
			}
			if !reported {
				t.Error("the employee linked to the owner is not in the report")
			}
		})
	}
}

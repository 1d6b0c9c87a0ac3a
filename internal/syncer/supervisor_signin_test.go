package syncer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// Credentials whose user only supervises a department (Learn's automatic
// Supervisor role) are no account administrator's: where Learn lets them
// read the account (learnsim's SupervisorReads), a run and an on-demand
// sync stop before writing, with ErrLearnNotAccountAdmin, wherever a read
// shows the role.
func TestSyncOnlySupervisorCredentials(t *testing.T) {
	t.Parallel()
	for _, shown := range []learnsim.SupervisorRole{learnsim.SupervisorRoleInRole, learnsim.SupervisorRoleListed, learnsim.SupervisorRoleScoped} {
		t.Run(fmt.Sprintf("shown %d", shown), func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{SupervisorReads: true, SupervisorRole: shown}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(21, 20, 3))
			if rep := e.run(portalID, TriggerManual); rep.Status != RunSucceeded {
				t.Fatalf("the owner's run: %s", rep.Status)
			}
			st := e.state()
			var dept string
			for _, d := range st.Departments {
				if d.ID != st.RootID {
					dept = d.ID
					break
				}
			}
			const login = "team.head@example.com"
			head, err := e.lsim.SeedUser(simAccount, dept, map[string]string{"login": login, "email": login, "first_name": "Team", "last_name": "Head"}, StatusActive)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{e.lsim.SetSupervisor(simAccount, dept, head, false), e.lsim.SetCaller(simAccount, head)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			e.setSettings(portalID, func(s *Settings) { s.LearnEmail = login })
			if err := p.RenameDepartment(1, "Renamed Inc"); err != nil {
				t.Fatal(err)
			}
			who := syncedUser(p)
			if err := p.UpdateUser(who.ID, func(u *b24sim.User) { u.LastName = "Renamed" }); err != nil {
				t.Fatal(err)
			}
			before := e.state()
			e.lsim.ResetCounts()
			_, runErr := e.syncer.Run(context.Background(), portalID, TriggerManual)
			_, personErr := e.syncer.RunPerson(context.Background(), portalID, who.ID)
			for _, err := range []error{runErr, personErr} {
				if !errors.Is(err, ErrLearnNotAccountAdmin) {
					t.Fatalf("run: %v, want ErrLearnNotAccountAdmin", err)
				}
			}
			if w := e.lsim.Counts(simAccount); w.Writes != 0 {
				t.Errorf("wrote %d times: %v", w.Writes, w.ByRoute)
			}
			if after := e.state(); !reflect.DeepEqual(after, before) {
				t.Fatalf("Learn changed:\n%+v\nwas\n%+v", after, before)
			}
		})
	}
}

package syncer

import (
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// TestSyncKeepsTheLinkItDoesNotManage: with only "heads become functional
// managers" on, a supervisor a Learn admin gave a department stays when the
// sync changes the department's functional manager, whatever Learn does
// with a link a request leaves out (docs/learn-api.md, "Unsettled behaviour").
func TestSyncKeepsTheLinkItDoesNotManage(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]learnsim.OmittedLink{"kept": learnsim.OmittedLinkKept, "reset": learnsim.OmittedLinkReset} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 3, Unsettled: learnsim.Unsettled{OmittedLink: o}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(3, 40, 6))
			e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers = true })
			e.run(portalID, TriggerManual)
			st := e.state()
			ids := checkPortal(t, st, p, st.RootID)

			var dept b24sim.Department
			for _, d := range p.Departments() {
				if d.ID != 1 {
					dept = d
					break
				}
			}
			ex := expected(p)
			var head b24sim.User
			for _, u := range p.Users() {
				if _, synced := ex.users[strings.ToLower(u.Email)]; synced && u.ID != dept.Head && u.ID != 1 {
					head = u
					break
				}
			}
			if dept.ID == 0 || head.ID == 0 {
				t.Fatalf("no department %d or head %d to test with", dept.ID, head.ID)
			}
			if err := e.lsim.SetSupervisor(simAccount, ids[dept.ID], st.OwnerID, false); err != nil {
				t.Fatal(err)
			}
			if err := p.SetHead(dept.ID, head.ID); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerManual)

			st = e.state()
			lh, _ := st.UserByLogin(head.Email)
			d, _ := st.Department(ids[dept.ID])
			if want := (learnsim.Subordination{Type: "manual", SupervisorID: st.OwnerID}); d.Subordination != want {
				t.Errorf("the department's supervisor is %+v, want the admin's %+v kept", d.Subordination, want)
			}
			if want := (learnsim.Subordination{Type: "manual", SupervisorID: lh.ID}); lh.ID == "" || d.CoSubordination != want {
				t.Errorf("the department's functional manager is %+v, want the new head %+v", d.CoSubordination, want)
			}
		})
	}
}

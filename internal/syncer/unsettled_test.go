package syncer

import (
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// TestSyncAgainstUnsettled runs a full sync, changes and a repeat against every
// choice learnsim offers where Learn's behaviour is not known: each must end
// with the portal's org in Learn and a repeat that writes nothing.
func TestSyncAgainstUnsettled(t *testing.T) {
	t.Parallel()
	for _, v := range learnsim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 9, Unsettled: v.Unsettled}, lenient: true})
			portalID, p := e.addPortal(b24sim.GenerateOrg(4, 40, 6))
			check := func() {
				t.Helper()
				if v.Unsettled.Codes == learnsim.CodesKept {
					checkPortal(t, e.state(), p, e.state().RootID)
				} else {
					// Cut codes may clash, and a Learn that refuses a code
					// used twice then gets the department without one.
					e.checkPortalMapped(portalID, p, func(code, got string) bool {
						return got == v.Unsettled.KeptCode(code) || got == "" && v.Unsettled.UniqueCodes != learnsim.ClashAllowed
					})
				}
			}
			e.run(portalID, TriggerManual)
			check()
			// The portal does not send login details, whatever Learn's default.
			for _, lu := range e.state().Users {
				if lu.LoginEmails != 0 {
					t.Errorf("user %s got %d sign-in e-mails, and the portal sends none", lu.Fields["login"], lu.LoginEmails)
				}
			}

			u := syncedUser(p)
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.LastName = "Иванова-Петрова" }); err != nil {
				t.Fatal(err)
			}
			if err := p.RenameDepartment(2, "Отдел продаж №2"); err != nil {
				t.Fatal(err)
			}
			if err := p.FireUser(syncedUser(p, u.ID).ID); err != nil {
				t.Fatal(err)
			}
			e.run(portalID, TriggerManual)
			check()
			if got, ok := e.state().UserByLogin(u.Email); !ok || got.Fields["last_name"] != "Иванова-Петрова" {
				t.Errorf("updated user: %+v", got)
			}

			e.lsim.ResetCounts()
			rep := e.run(portalID, TriggerManual)
			if c := e.lsim.Counts(simAccount); c.Writes != 0 {
				t.Errorf("a repeat wrote %d times: %v (report %v)", c.Writes, c.ByRoute, rep.Counts)
			}
		})
	}
}

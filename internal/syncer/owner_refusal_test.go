package syncer

import (
	"context"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// The account owner cannot be deactivated, and Learn refuses it (with 400,
// or 403). An employee may be linked to the owner: where a read shows the
// owner as a learner (learnsim's OwnerRole), or by a mapping from before
// the app stopped linking users whose role a read hides (NoRoleReads,
// EmptyUserRoles). When the employee leaves, the refused deactivation is
// reported on that person, with what the admin can do, and the run goes
// on: the other leaver is deactivated. Later runs do not send it again,
// nor report it again, until the admin presses Sync now (a manual run) or
// the person comes back; after that, their next leave is sent.
func TestSyncOwnerDeactivationRefused(t *testing.T) {
	t.Parallel()
	for _, v := range learnsim.Variants() {
		if v.Name != "default" && !v.Unsettled.HidesRoles() && !v.Unsettled.RefusedDelete403 {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			hidden := v.Unsettled.HidesRoles()
			ownerRole := "learner"
			if hidden {
				ownerRole = ""
			}
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: v.Unsettled}, account: learnsim.AccountOptions{OwnerRole: ownerRole}})
			st := e.state()
			portalID, p := e.addPortal(b24sim.GenerateOrg(23, 20, 3))
			signInAsSecondAdmin(t, e, portalID)
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
			if rep := e.run(portalID, TriggerScheduled); rep.Status == RunFailed {
				t.Fatalf("first run: %+v", rep)
			}
			if hidden {
				// Linked by an earlier version, which took a user without a
				// role for a learner.
				if _, err := e.pool.Exec(context.Background(), `INSERT INTO sync_mappings (portal_id, kind, b24_id, learn_id, fingerprint, adopted)
					VALUES ($1, 'user', $2, $3, '', true)`, portalID, boss.ID, st.OwnerID); err != nil {
					t.Fatal(err)
				}
				e.run(portalID, TriggerScheduled)
			}
			otherLearn := e.learnUser(other.Email)
			for _, id := range []int64{boss.ID, other.ID} {
				if err := p.FireUser(id); err != nil {
					t.Fatal(err)
				}
			}
			// run runs a sync and returns the owner's employee's item, and
			// how many deactivations it sent.
			run := func(trigger Trigger) (*RunItem, int64) {
				t.Helper()
				e.lsim.ResetCounts()
				rep := e.run(portalID, trigger)
				if rep.Status == RunFailed {
					t.Fatalf("the run failed: %+v", rep)
				}
				c := e.lsim.Counts(simAccount)
				var got *RunItem
				for _, it := range e.items(portalID, rep.RunID) {
					if it.B24ID == boss.ID && it.Kind == KindUser {
						got = &it
					}
				}
				return got, c.ByRoute["POST /user/{id}/status"] + c.ByRoute["POST /users/deactivate"]
			}
			refused := func(when string, it *RunItem) {
				t.Helper()
				if it == nil || it.Status != ItemRefused || !it.Reason.Has(ReasonLearn) || !it.Reason.Has(ReasonLeaveRefused) {
					t.Fatalf("%s: the owner's employee: %+v", when, it)
				}
			}
			it, _ := run(TriggerScheduled)
			refused("the leave", it)
			for _, u := range e.state().Users {
				if u.ID == st.OwnerID && u.Status != StatusActive {
					t.Fatalf("the owner has status %d", u.Status)
				}
				if u.ID == otherLearn.ID && u.Status == StatusActive {
					t.Error("the other leaver is still active")
				}
			}
			// Remembered: not sent, nor reported, again.
			for i := range 2 {
				if it, sent := run(TriggerScheduled); it != nil || sent != 0 {
					t.Fatalf("scheduled run %d after the refusal: item %+v, %d deactivations sent", i+1, it, sent)
				}
			}
			// The admin's Sync now asks again.
			if it, sent := run(TriggerManual); sent == 0 {
				t.Fatalf("Sync now did not ask again: %+v", it)
			} else {
				refused("Sync now", it)
			}
			if it, sent := run(TriggerScheduled); it != nil || sent != 0 {
				t.Fatalf("the run after Sync now: item %+v, %d deactivations sent", it, sent)
			}
			// Back, then gone again: the leave is sent again.
			if err := p.RehireUser(boss.ID); err != nil {
				t.Fatal(err)
			}
			if it, sent := run(TriggerScheduled); sent != 0 {
				t.Fatalf("the return: item %+v, %d deactivations sent", it, sent)
			}
			if err := p.FireUser(boss.ID); err != nil {
				t.Fatal(err)
			}
			it, sent := run(TriggerScheduled)
			if sent == 0 {
				t.Fatalf("the leave after the return was not sent: %+v", it)
			}
			refused("the leave after the return", it)
			// A week on, the refusal has expired like any other: the leave
			// is asked again (the credentials may have changed since).
			if _, err := e.pool.Exec(context.Background(), `UPDATE sync_refusals SET refused_at = refused_at - $2::interval
				WHERE portal_id = $1`, portalID, refusalTTL); err != nil {
				t.Fatal(err)
			}
			if it, sent := run(TriggerScheduled); sent == 0 {
				t.Fatalf("the leave refused a week ago was not asked again: %+v", it)
			} else {
				refused("a week after the refusal", it)
			}
		})
	}
}

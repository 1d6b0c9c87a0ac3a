package syncer

import (
	"context"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// invitedOrg is a small org: the root (head 1), Sales (head 3) and Support
// (head 4); users 3 (Sales' head) and 5 are invited and have not accepted.
func invitedOrg() b24sim.Org {
	reg := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	u := func(id int64, name, email string, dept int64) b24sim.User {
		return b24sim.User{ID: id, Active: true, Name: name, LastName: "Test", Email: email, Departments: []int64{dept},
			DateRegister: reg, LastLogin: reg.Add(time.Hour)}
	}
	org := b24sim.Org{Name: "Acme", Departments: []b24sim.Department{
		{ID: 1, Name: "Acme", Head: 1}, {ID: 2, Name: "Sales", Parent: 1, Head: 3}, {ID: 3, Name: "Support", Parent: 1, Head: 4},
	}, Users: []b24sim.User{
		u(1, "Anna", "anna@acme.test", 1), u(2, "Boris", "boris@acme.test", 2), u(3, "Vera", "vera@acme.test", 2),
		u(4, "Gleb", "gleb@acme.test", 3), u(5, "Dana", "dana@acme.test", 3),
	}}
	org.Users[0].Admin = true
	for _, i := range []int{2, 4} {
		org.Users[i].Invited, org.Users[i].LastLogin = true, time.Time{}
	}
	return org
}

// learnUserByLogin finds a Learn user of the snapshot by login.
func learnUserByLogin(st learnsim.State, login string) (learnsim.User, bool) {
	for _, u := range st.Users {
		if u.Fields["login"] == login {
			return u, true
		}
	}
	return learnsim.User{}, false
}

// learnDeptByCode finds a Learn department of the snapshot by code.
func learnDeptByCode(st learnsim.State, code string) learnsim.Department {
	for _, d := range st.Departments {
		if d.Code == code {
			return d
		}
	}
	return learnsim.Department{}
}

func (e *simEnv) items(portalID, runID int64) []RunItem {
	e.t.Helper()
	items, err := e.syncer.store.RunItems(context.Background(), portalID, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

// TestInvitedWaitUntilAccepted: with a filter that works, an invited
// employee is not created (the preview and the report list them as waiting
// for their invitation), an invited head is no one's manager, and a run
// with nothing changed writes nothing; once they accept, the next run
// creates them and makes the head the manager. A user already in Learn who
// is invited again stays as they are (active, a head still the manager).
func TestInvitedWaitUntilAccepted(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(invitedOrg())
	e.setSettings(id, func(s *Settings) { s.HeadsAsManagers = true })

	prev := e.run(id, TriggerPreview)
	if n := prev.Counts["user.invited"]; n != 2 {
		t.Errorf("preview counts %v: want 2 invited", prev.Counts)
	}
	rep := e.run(id, TriggerManual)
	if rep.Counts["user.invited"] != 2 || rep.Counts["user.create"] != 3 {
		t.Errorf("first run counts %v: want 3 created, 2 invited", rep.Counts)
	}
	waiting := map[int64]bool{}
	for _, it := range e.items(id, rep.RunID) {
		switch it.Status {
		case ItemInvited:
			waiting[it.B24ID] = it.Action == ActionInvited && it.After["email"] != ""
		case ItemNotice:
			t.Errorf("a notice though the filter worked: %+v", it)
		}
	}
	if !waiting[3] || !waiting[5] || len(waiting) != 2 {
		t.Errorf("report lists as invited %v, want 3 and 5", waiting)
	}
	st := e.state()
	for _, login := range []string{"vera@acme.test", "dana@acme.test"} {
		if _, ok := learnUserByLogin(st, login); ok {
			t.Errorf("invited %s was created in Learn", login)
		}
	}
	anna, _ := learnUserByLogin(st, "anna@acme.test")
	sales := learnDeptByCode(st, DepartmentCode(p.MemberID(), 2))
	if sales.CoSubordination.SupervisorID != anna.ID {
		t.Errorf("Sales' manager %+v, want the next head up (Anna %s), not the invited head", sales.CoSubordination, anna.ID)
	}
	p.ResetCounters()
	if again := e.run(id, TriggerManual); again.Writes != 0 || again.Counts["user.invited"] != 2 {
		t.Errorf("unchanged run: %d writes, counts %v", again.Writes, again.Counts)
	}
	// The question rides in the read's one batch.
	if n, c := p.TotalRequests(), p.Commands(); n != 1 || c["user.search"] != 1 {
		t.Errorf("unchanged run: %d Bitrix24 requests (%v), want 1 with one user.search", n, c)
	}

	for _, uid := range []int64{3, 5} {
		if err := p.AcceptInvitation(uid); err != nil {
			t.Fatal(err)
		}
	}
	for _, uid := range []int64{2, 4} { // Boris and Support's head Gleb are in Learn already
		if err := p.Reinvite(uid); err != nil {
			t.Fatal(err)
		}
	}
	rep = e.run(id, TriggerManual)
	if rep.Counts["user.create"] != 2 || rep.Counts["user.deactivate"] != 0 {
		t.Errorf("after accepting: counts %v, want 2 created, none deactivated", rep.Counts)
	}
	st = e.state()
	vera, ok := learnUserByLogin(st, "vera@acme.test")
	if _, dana := learnUserByLogin(st, "dana@acme.test"); !ok || !dana || vera.Status != StatusActive {
		t.Fatalf("accepted users not created: vera %v, dana %v", ok, dana)
	}
	if sales = learnDeptByCode(st, DepartmentCode(p.MemberID(), 2)); sales.CoSubordination.SupervisorID != vera.ID {
		t.Errorf("Sales' manager %+v, want Vera %s once she accepted", sales.CoSubordination, vera.ID)
	}
	if boris, _ := learnUserByLogin(st, "boris@acme.test"); boris.Status != StatusActive {
		t.Errorf("Boris, invited again, has status %d in Learn", boris.Status)
	}
	// The signal only holds back a creation: Gleb, in Learn, stays Support's manager.
	gleb, _ := learnUserByLogin(st, "gleb@acme.test")
	if support := learnDeptByCode(st, DepartmentCode(p.MemberID(), 3)); gleb.Status != StatusActive || support.CoSubordination.SupervisorID != gleb.ID {
		t.Errorf("Gleb, invited again: status %d, Support's manager %+v", gleb.Status, support.CoSubordination)
	}
	checkPortal(t, st, p, st.RootID)
}

// TestInvitedNotToldApart: when user.search ignores or refuses the filter,
// everyone syncs as before (the invited too) and the report says so in one
// row.
func TestInvitedNotToldApart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		mode b24sim.InvitedFilter
		why  string // the reason's argument: the code the pages say in their language
	}{{"Ignored", b24sim.InvitedFilterIgnored, "ignored"}, {"Refused", b24sim.InvitedFilterRefused, "refused"}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{b24: b24sim.Options{InvitedFilter: c.mode}})
			id, p := e.addPortal(invitedOrg())
			e.setSettings(id, func(s *Settings) { s.HeadsAsManagers = true })
			for _, trigger := range []Trigger{TriggerPreview, TriggerManual} {
				rep := e.run(id, trigger)
				notices := 0
				for _, it := range e.items(id, rep.RunID) {
					switch it.Status {
					case ItemNotice:
						notices++
						if it.Action != ActionInvitedUnknown || !it.Reason.Has(ReasonInvitedUnknown) {
							t.Errorf("notice %+v", it)
						}
						// Bitrix24's detail ("500 of 600 users", an error
						// text) is not part of it: the code alone has a
						// sentence in each language.
						if why := it.Reason.arg(ReasonInvitedUnknown); why != c.why {
							t.Errorf("%s: the notice's reason says %q, want %q", trigger, why, c.why)
						}
					case ItemInvited:
						t.Errorf("%s: user %d listed as invited though the filter did not work", trigger, it.B24ID)
					}
				}
				if notices != 1 {
					t.Errorf("%s: %d notices, want 1", trigger, notices)
				}
			}
			st := e.state()
			checkPortal(t, st, p, st.RootID)
			vera, ok := learnUserByLogin(st, "vera@acme.test")
			if sales := learnDeptByCode(st, DepartmentCode(p.MemberID(), 2)); !ok || sales.CoSubordination.SupervisorID != vera.ID {
				t.Errorf("Sales' manager %+v, want its head Vera (%v)", sales.CoSubordination, ok)
			}
		})
	}
}

// TestRunPersonWaitsForTheInvitation: "Sync this employee" holds back an
// invited employee's creation like a full run (no licence, no login e-mail
// before they accept), and creates them once they have accepted; where
// Bitrix24 cannot tell the invited apart, the person syncs as in a full run.
func TestRunPersonWaitsForTheInvitation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	id, p := e.addPortal(invitedOrg())
	rep, err := e.syncer.RunPerson(ctx, id, 5)
	if err != nil {
		t.Fatalf("run person: %v", err)
	}
	if _, ok := learnUserByLogin(e.state(), "dana@acme.test"); ok {
		t.Errorf("invited Dana was created in Learn (counts %v)", rep.Counts)
	}
	if rep.Counts["user.invited"] != 1 {
		t.Errorf("counts %v: want Dana reported as waiting for her invitation", rep.Counts)
	}
	if err := p.AcceptInvitation(5); err != nil {
		t.Fatal(err)
	}
	if rep, err = e.syncer.RunPerson(ctx, id, 5); err != nil {
		t.Fatalf("run person after accepting: %v", err)
	}
	if u, ok := learnUserByLogin(e.state(), "dana@acme.test"); !ok || u.Status != StatusActive {
		t.Errorf("Dana not created once she accepted (counts %v)", rep.Counts)
	}

	ign := newSimEnv(t, simOpts{b24: b24sim.Options{InvitedFilter: b24sim.InvitedFilterIgnored}})
	id, _ = ign.addPortal(invitedOrg())
	if rep, err = ign.syncer.RunPerson(ctx, id, 5); err != nil {
		t.Fatalf("run person, filter ignored: %v", err)
	}
	if _, ok := learnUserByLogin(ign.state(), "dana@acme.test"); !ok {
		t.Errorf("filter ignored: Dana not created (counts %v)", rep.Counts)
	}
	notices := 0
	for _, it := range ign.items(id, rep.RunID) {
		if it.Action == ActionInvitedUnknown && it.Reason.arg(ReasonInvitedUnknown) == "ignored" {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("filter ignored: %d report rows saying the invited could not be told apart, want 1", notices)
	}
}

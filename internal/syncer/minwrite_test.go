package syncer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// updateModes are the user-update behaviours Learn may have (learnsim's
// switches); the writes must be right against each.
var updateModes = []learnsim.Unsettled{{}, {RefuseEmptyUpdate: true}, {UserUpdate204: true}}

func modeName(m learnsim.Unsettled) string {
	return fmt.Sprintf("RefuseEmptyUpdate=%v,UserUpdate204=%v", m.RefuseEmptyUpdate, m.UserUpdate204)
}

// minEnv is a synced org of 300 employees on a simulator with the modes m.
func minEnv(t *testing.T, m learnsim.Unsettled) (*simEnv, int64, *b24sim.Portal) {
	t.Helper()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: m}})
	portalID, p := e.addPortal(b24sim.GenerateOrg(3, 300, 30))
	e.run(portalID, TriggerScheduled)
	return e, portalID, p
}

func (e *simEnv) learnUser(login string) learnsim.User {
	e.t.Helper()
	u, ok := e.state().UserByLogin(strings.ToLower(login))
	if !ok {
		e.t.Fatalf("no Learn user %s", login)
	}
	return u
}

// runQuiet runs a sync and then checks that a second run writes nothing.
func (e *simEnv) runThenQuiet(portalID int64) (*Report, []learnsim.Sent) {
	e.t.Helper()
	e.lsim.ResetCounts()
	rep := e.run(portalID, TriggerManual)
	sent := e.lsim.Sent(simAccount)
	e.lsim.ResetCounts()
	again := e.run(portalID, TriggerManual)
	if c := e.lsim.Counts(simAccount); c.Writes != 0 || again.Writes != 0 {
		e.t.Errorf("the unchanged run after wrote %d times: %v", c.Writes, c.ByRoute)
	}
	return rep, sent
}

func (e *simEnv) runItems(portalID, runID int64) []RunItem {
	e.t.Helper()
	items, err := e.syncer.store.RunItems(context.Background(), portalID, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

func TestSyncMoveUsesMoveEndpoint(t *testing.T) {
	t.Parallel()
	for _, m := range updateModes {
		t.Run(modeName(m), func(t *testing.T) {
			t.Parallel()
			e, portalID, p := minEnv(t, m)
			u := syncedUser(p)
			to := int64(2)
			if u.Departments[0] == to {
				to = 3
			}
			if err := p.MoveUser(u.ID, to); err != nil {
				t.Fatal(err)
			}
			_, sent := e.runThenQuiet(portalID)
			lu := e.learnUser(u.Email)
			if len(sent) != 1 || sent[0].Route != "POST /department/{id}/user/move" || sent[0].ID != lu.DepartmentID ||
				!slices.Equal(sent[0].UserIDs, []string{lu.ID}) || sent[0].Status != 204 {
				t.Fatalf("one employee moved: sent %+v, want one move of %s", sent, lu.ID)
			}
			checkPortal(t, e.state(), p, e.state().RootID)

			// Three employees moved to one department: one call with the three.
			var moved []string
			for len(moved) < 3 {
				v := syncedUser(p, usersIn(p, to)...)
				if err := p.MoveUser(v.ID, to); err != nil {
					t.Fatal(err)
				}
				moved = append(moved, e.learnUser(v.Email).ID)
			}
			_, sent = e.runThenQuiet(portalID)
			if len(sent) != 1 || sent[0].Route != "POST /department/{id}/user/move" || len(sent[0].UserIDs) != 3 {
				t.Fatalf("three employees moved to one department: sent %+v", sent)
			}
			for _, id := range moved {
				if !slices.Contains(sent[0].UserIDs, id) {
					t.Errorf("move call %v lacks %s", sent[0].UserIDs, id)
				}
			}
			checkPortal(t, e.state(), p, e.state().RootID)
		})
	}
}

// usersIn lists the Bitrix24 users of department d.
func usersIn(p *b24sim.Portal, d int64) []int64 {
	var out []int64
	for _, u := range p.Users() {
		if slices.Contains(u.Departments, d) {
			out = append(out, u.ID)
		}
	}
	return out
}

func TestSyncUpdateSendsOnlyChangedFields(t *testing.T) {
	t.Parallel()
	for _, m := range updateModes {
		t.Run(modeName(m), func(t *testing.T) {
			t.Parallel()
			e, portalID, p := minEnv(t, m)
			u := syncedUser(p)
			before := e.learnUser(u.Email)
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.LastName = "Иванова-Петрова" }); err != nil {
				t.Fatal(err)
			}
			_, sent := e.runThenQuiet(portalID)
			if len(sent) != 1 || sent[0].Route != "POST /user/{id}" || sent[0].ID != before.ID ||
				!slices.Equal(sent[0].Keys, []string{"fields.last_name", "fields.login"}) {
				t.Fatalf("last name changed: sent %+v, want last_name and login only", sent)
			}
			after := e.learnUser(u.Email)
			if after.Fields["last_name"] != "Иванова-Петрова" || after.Fields["login"] != before.Fields["login"] ||
				after.Fields["first_name"] != before.Fields["first_name"] || after.DepartmentID != before.DepartmentID {
				t.Errorf("after the update %+v, before %+v", after, before)
			}

			// A field and the department at once: one update carrying both.
			to := int64(2)
			if u.Departments[0] == to {
				to = 3
			}
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.WorkPosition = "Старший менеджер"; x.Departments = []int64{to} }); err != nil {
				t.Fatal(err)
			}
			_, sent = e.runThenQuiet(portalID)
			if len(sent) != 1 || sent[0].Route != "POST /user/{id}" ||
				!slices.Equal(sent[0].Keys, []string{"departmentId", "fields.job_title", "fields.login"}) {
				t.Fatalf("job title and department changed: sent %+v", sent)
			}
			checkPortal(t, e.state(), p, e.state().RootID)

			// A department rename sends the name alone.
			if err := p.RenameDepartment(5, "Отдел продаж №2"); err != nil {
				t.Fatal(err)
			}
			_, sent = e.runThenQuiet(portalID)
			if len(sent) != 1 || sent[0].Route != "POST /department/{id}" || !slices.Equal(sent[0].Keys, []string{"name"}) {
				t.Fatalf("department renamed: sent %+v", sent)
			}
		})
	}
}

func TestSyncClearedField(t *testing.T) {
	t.Parallel()
	for _, m := range updateModes {
		t.Run(modeName(m), func(t *testing.T) {
			t.Parallel()
			e, portalID, p := minEnv(t, m)
			// Two employees with a job title lose it in Bitrix24.
			var users []b24sim.User
			for len(users) < 2 {
				var skip []int64
				for _, x := range users {
					skip = append(skip, x.ID)
				}
				for {
					u := syncedUser(p, skip...)
					if u.WorkPosition != "" {
						users = append(users, u)
						break
					}
					skip = append(skip, u.ID)
				}
			}
			for _, u := range users {
				if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.WorkPosition = "" }); err != nil {
					t.Fatal(err)
				}
			}
			rep, sent := e.runThenQuiet(portalID)
			items := e.runItems(portalID, rep.RunID)
			for _, u := range users {
				lu := e.learnUser(u.Email)
				var row *RunItem
				for i := range items {
					if items[i].LearnID == lu.ID {
						row = &items[i]
					}
				}
				if row == nil {
					t.Fatalf("no report row for %s: %+v", u.Email, items)
				}
				if !m.RefuseEmptyUpdate {
					if lu.Fields["job_title"] != "" || row.Action != ActionUpdate || len(row.Reason) != 0 {
						t.Errorf("job title not cleared: %v, row %+v", lu.Fields, row)
					}
					continue
				}
				if lu.Fields["job_title"] != u.WorkPosition {
					t.Errorf("job title %q, want Learn's %q kept", lu.Fields["job_title"], u.WorkPosition)
				}
				if row.Reason.String() != "not_cleared(job_title)" || row.Action != ActionLink {
					t.Errorf("report row %+v", row)
				}
			}
			// Learn writes: one update per user when empty clears; when
			// Learn refuses, one refused try for the whole run and nothing else.
			want := []int{200, 200}
			if m.UserUpdate204 {
				want = []int{204, 204}
			}
			if m.RefuseEmptyUpdate {
				want = []int{400}
			}
			var got []int
			for _, s := range sent {
				got = append(got, s.Status)
				if s.Route != "POST /user/{id}" || !slices.Equal(s.Keys, []string{"fields.job_title", "fields.login"}) {
					t.Errorf("sent %+v", s)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("answers %v, want %v: %+v", got, want, sent)
			}

			// A required field (first name) is never cleared, whatever the mode.
			u := users[0]
			if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.Name = "" }); err != nil {
				t.Fatal(err)
			}
			was := e.learnUser(u.Email).Fields["first_name"]
			rep, sent = e.runThenQuiet(portalID)
			if got := e.learnUser(u.Email).Fields["first_name"]; got != was || was == "" {
				t.Errorf("first name %q, want %q kept", got, was)
			}
			found := false
			for _, it := range e.runItems(portalID, rep.RunID) {
				found = found || it.Reason.arg(ReasonNotCleared) == "first_name"
			}
			if !found {
				t.Errorf("no report row for the first name")
			}
			for _, s := range sent {
				if s.Status < 400 {
					t.Errorf("a write went through: %+v", s)
				}
			}
		})
	}
}

// TestSyncMoveWithRefusedEmptyKeepsLogin: an employee who moves and loses a
// field, on a Learn that refuses the empty value and wants the login in
// every user update (learnsim.Unsettled.UpdateNeedsLogin), is moved by the
// repeat without the empty value, which still carries the login.
func TestSyncMoveWithRefusedEmptyKeepsLogin(t *testing.T) {
	t.Parallel()
	e, portalID, p := minEnv(t, learnsim.Unsettled{RefuseEmptyUpdate: true, UpdateNeedsLogin: true})
	var u b24sim.User
	for skip := []int64{}; ; {
		u = syncedUser(p, skip...)
		if u.WorkPosition != "" {
			break
		}
		skip = append(skip, u.ID)
	}
	to := int64(2)
	if u.Departments[0] == to {
		to = 3
	}
	was := e.learnUser(u.Email)
	if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.WorkPosition = ""; x.Departments = []int64{to} }); err != nil {
		t.Fatal(err)
	}
	_, sent := e.runThenQuiet(portalID)
	var got []string
	for _, s := range sent {
		got = append(got, fmt.Sprint(s.Status, s.Keys))
	}
	want := []string{"400 [departmentId fields.job_title fields.login]", "200 [departmentId fields.login]"}
	if !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
	lu := e.learnUser(u.Email)
	if lu.DepartmentID == was.DepartmentID || lu.Fields["job_title"] != was.Fields["job_title"] {
		t.Errorf("Learn user %+v, was %+v: want moved with the job title kept", lu, was)
	}
	checkPortal(t, e.state(), p, e.state().RootID)
}

package learnsim

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// withModes is newEnv on a simulator with the given update modes.
func withModes(t *testing.T, m Unsettled) *env {
	t.Helper()
	s := New(Options{Seed: 1, Unsettled: m})
	root, err := s.AddAccount(AccountOptions{URL: acct, Email: email, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, sim: s, srv: srv, root: root, acct: acct}
}

func TestUserMoveEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, AccountOptions{})
	sales := e.createDept("Sales", e.root, "s")
	a := e.createUser(e.root, "a@x.ru", nil)
	b := e.createUser(e.root, "b@x.ru", nil)

	// Unknown department: 404; a batch naming an unknown user is refused whole.
	e.must(404, "POST", "/department/nope/user/move", map[string]any{"userIds": []string{a}})
	e.must(404, "POST", "/department/"+sales+"/user/move", map[string]any{"userIds": []string{a, "nobody"}})
	e.must(400, "POST", "/department/"+sales+"/user/move", map[string]any{"userIds": []string{}})
	for _, u := range e.state().Users {
		if u.DepartmentID != e.root {
			t.Fatalf("a refused move moved %s", u.Fields["login"])
		}
	}
	e.sim.ResetCounts()
	e.must(204, "POST", "/department/"+sales+"/user/move", map[string]any{"userIds": []string{a, b}})
	st := e.state()
	for _, u := range st.Users {
		if u.ID != st.OwnerID && u.DepartmentID != sales {
			t.Errorf("%s in %s after the move, want %s", u.Fields["login"], u.DepartmentID, sales)
		}
	}
	sent := e.sim.Sent(acct)
	if len(sent) != 1 || sent[0].Route != "POST /department/{id}/user/move" || sent[0].ID != sales ||
		!slices.Equal(sent[0].UserIDs, []string{a, b}) || !slices.Equal(sent[0].Keys, []string{"userIds"}) || sent[0].Status != 204 {
		t.Errorf("sent %+v", sent)
	}
}

func TestUpdateRecordsKeysAndEmptyValues(t *testing.T) {
	t.Parallel()
	for _, m := range []Unsettled{{}, {RefuseEmptyUpdate: true}, {UserUpdate204: true}} {
		e := withModes(t, m)
		id := e.createUser(e.root, "ivan@x.ru", map[string]string{"job_title": "Boss", "phone": "+100"})
		okStatus := 200
		if m.UserUpdate204 {
			okStatus = 204
		}
		e.must(okStatus, "POST", "/user/"+id, map[string]any{"fields": map[string]string{"login": "ivan@x.ru", "last_name": "New"}})
		// Required fields are never taken empty.
		e.must(400, "POST", "/user/"+id, map[string]any{"fields": map[string]string{"login": "ivan@x.ru", "first_name": ""}})
		// An optional one clears, or is refused with nothing changed.
		clear := map[string]any{"fields": map[string]string{"login": "ivan@x.ru", "job_title": "", "phone": "+200"}}
		u, _ := e.state().UserByLogin("ivan@x.ru")
		if m.RefuseEmptyUpdate {
			e.must(400, "POST", "/user/"+id, clear)
			u, _ = e.state().UserByLogin("ivan@x.ru")
			if u.Fields["job_title"] != "Boss" || u.Fields["phone"] != "+100" {
				t.Errorf("%+v: refused update changed %v", m, u.Fields)
			}
		} else {
			e.must(okStatus, "POST", "/user/"+id, clear)
			u, _ = e.state().UserByLogin("ivan@x.ru")
			if u.Fields["job_title"] != "" || u.Fields["phone"] != "+200" {
				t.Errorf("%+v: after clearing %v", m, u.Fields)
			}
		}
		if u.Fields["last_name"] != "New" || u.Fields["first_name"] != "F" {
			t.Errorf("%+v: fields %v", m, u.Fields)
		}
		sent := e.sim.Sent(acct)
		if len(sent) != 3 || !slices.Equal(sent[0].Keys, []string{"fields.last_name", "fields.login"}) || sent[0].Status != okStatus ||
			sent[1].Status != 400 || !slices.Equal(sent[2].Keys, []string{"fields.job_title", "fields.login", "fields.phone"}) {
			t.Errorf("%+v: sent %+v", m, sent)
		}
		e.sim.ResetCounts()
		e.must(204, "POST", "/department/"+e.root, map[string]any{"name": "Root"})
		if sent := e.sim.Sent(acct); len(sent) != 1 || !slices.Equal(sent[0].Keys, []string{"name"}) {
			t.Errorf("department update sent %+v", sent)
		}
	}
}

package syncer

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
)

// TestSyncRootLinksUnsettled syncs with heads as managers and supervisors
// against each answer Learn may give to the links of its root department
// (docs/learn-api.md, "Unsettled behaviour"): the run goes through, every
// other department gets its managers, a refused or unkept root link is
// reported once, and the unchanged run after sends the root nothing.
func TestSyncRootLinksUnsettled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rs   learnsim.RootSubordination
	}{
		{"kept", learnsim.RootSubKept},
		{"refused 400", learnsim.RootSub400},
		{"refused 403", learnsim.RootSub403},
		{"refused 409", learnsim.RootSub409},
		{"ignored", learnsim.RootSubIgnored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{RootSubordination: tc.rs}}})
			portalID, p := e.addPortal(b24sim.GenerateOrg(11, 60, 8))
			e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })

			e.lsim.ResetCounts()
			first := e.run(portalID, TriggerManual)
			st := e.state()
			ids := checkPortal(t, st, p, st.RootID)
			rootHead := checkDeptLinks(t, st, p, ids)
			if rootHead == "" {
				t.Fatal("the generated root department has no synced head: the test checks nothing")
			}
			root, _ := st.Department(st.RootID)
			kept := root.CoSubordination == learnsim.Subordination{Type: SubManual, SupervisorID: rootHead}
			if kept != (tc.rs == learnsim.RootSubKept) {
				t.Errorf("root's functional manager %+v (head %s)", root.CoSubordination, rootHead)
			}
			if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != 1 {
				t.Errorf("first run sent the root's links %d times, want 1", n)
			}
			items := e.runItems(portalID, first.RunID)
			var reported []RunItem
			for _, it := range items {
				if it.Kind == KindDepartment && it.Action == ActionSupervisor && it.LearnID == st.RootID && it.Status != ItemApplied {
					reported = append(reported, it)
				}
			}
			if tc.rs == learnsim.RootSubKept {
				if len(reported) != 0 {
					t.Errorf("root's links reported as not set: %+v", reported)
				}
			} else if len(reported) != 1 || reported[0].Status != ItemRefused || !(reported[0].Reason.Has(ReasonRootRefused) || reported[0].Reason.Has(ReasonRootUnkept) || reported[0].Reason.Has(ReasonRootUnread)) {
				t.Errorf("root's links reported %+v, want one refused item", reported)
			}

			e.lsim.ResetCounts()
			again := e.run(portalID, TriggerManual)
			if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != 0 {
				t.Errorf("the unchanged run sent the root's links %d times", n)
			}
			if c := e.lsim.Counts(simAccount); c.Writes != 0 || again.Writes != 0 {
				t.Errorf("the unchanged run wrote %d times: %v", c.Writes, c.ByRoute)
			}
			for _, it := range e.runItems(portalID, again.RunID) {
				if it.Kind == KindDepartment && it.Action == ActionSupervisor {
					t.Errorf("the unchanged run reported the root's links again: %+v", it)
				}
			}
			checkDeptLinks(t, e.state(), p, ids)

			// A new head of the root is wanted links of its own: sent once
			// more, and a refusal reported once more.
			if err := p.SetHead(1, syncedUser(p).ID); err != nil {
				t.Fatal(err)
			}
			e.lsim.ResetCounts()
			third := e.run(portalID, TriggerManual)
			if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != 1 {
				t.Errorf("after the root's head changed the root's links went out %d times, want 1", n)
			}
			refused := 0
			for _, it := range e.runItems(portalID, third.RunID) {
				if it.Kind == KindDepartment && it.Action == ActionSupervisor && it.LearnID == st.RootID && it.Status == ItemRefused {
					refused++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[tc.rs == learnsim.RootSubKept]; refused != want {
				t.Errorf("after the root's head changed the root's links were reported refused %d times, want %d", refused, want)
			}
			checkDeptLinks(t, e.state(), p, ids)
			e.lsim.ResetCounts()
			e.run(portalID, TriggerManual)
			if n := rootLinkCalls(e.lsim.Sent(simAccount), st.RootID); n != 0 {
				t.Errorf("the unchanged run after the new head sent the root's links %d times", n)
			}
		})
	}
}

// rootLinkCalls counts the link requests sent for department root.
func rootLinkCalls(sent []learnsim.Sent, root string) int {
	n := 0
	for _, s := range sent {
		if s.Route == "POST /department/{id}/subordination" && s.ID == root {
			n++
		}
	}
	return n
}

// checkDeptLinks checks that every department but the root has its head (or
// the next head up) as functional manager and its parent's as supervisor,
// and returns the Learn id of the root's head ("" for none synced).
func checkDeptLinks(t *testing.T, st learnsim.State, p *b24sim.Portal, ids map[int64]string) string {
	t.Helper()
	byLogin := map[string]string{}
	for _, u := range st.Users {
		byLogin[strings.ToLower(u.Fields["login"])] = u.ID
	}
	learnUser := map[int64]string{}
	for _, u := range p.Users() {
		if id, ok := byLogin[strings.ToLower(u.Email)]; ok && u.Email != "" && u.Active && !u.Extranet {
			learnUser[u.ID] = id
		}
	}
	depts := map[int64]b24sim.Department{}
	for _, d := range p.Departments() {
		depts[d.ID] = d
	}
	headUp := func(d int64) string {
		for ; d != 0; d = depts[d].Parent {
			if id, ok := learnUser[depts[d].Head]; ok {
				return id
			}
		}
		return ""
	}
	set := 0
	for _, d := range depts {
		if d.Parent == 0 {
			continue
		}
		ld, _ := st.Department(ids[d.ID])
		if want := headUp(d.ID); want != "" {
			set++
			if ld.CoSubordination != (learnsim.Subordination{Type: SubManual, SupervisorID: want}) {
				t.Errorf("department %d functional manager %+v, want %s", d.ID, ld.CoSubordination, want)
			}
		}
		if want := headUp(d.Parent); want != "" && ld.Subordination != (learnsim.Subordination{Type: SubManual, SupervisorID: want}) {
			t.Errorf("department %d supervisor %+v, want %s", d.ID, ld.Subordination, want)
		}
	}
	if set == 0 {
		t.Error("no department but the root has a head: the test checks nothing")
	}
	return learnUser[depts[1].Head]
}

// A Learn that takes the root's managers with a 204 and ignores them, and
// answers 403 when the root is read back (a 403 about the root, like one on
// its links): the run must not fail on it, every run after, after writing the
// same links again each time.
func TestSyncRootLinksReadBackRefused(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{RootSubordination: learnsim.RootSubIgnored}}})
	root := e.state().RootID
	inner := e.lsrv.Config.Handler
	e.lsrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/department/"+root) {
			http.Error(w, `{"code":403,"message":"Access denied"}`, http.StatusForbidden)
			return
		}
		inner.ServeHTTP(w, r)
	})
	portalID, _ := e.addPortal(b24sim.GenerateOrg(11, 60, 8))
	e.setSettings(portalID, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })
	for i := range 2 {
		e.lsim.ResetCounts()
		rep, err := e.syncer.Run(context.Background(), portalID, TriggerManual)
		// Partial: the generated org has people Learn cannot take.
		if err != nil || rep.Status != RunSucceeded && rep.Status != RunPartial {
			status := ""
			if rep != nil {
				status = rep.Status
			}
			t.Fatalf("run %d with the root's read back refused: %q %v", i+1, status, err)
		}
		if n, want := rootLinkCalls(e.lsim.Sent(simAccount), root), 1-i; n != want {
			t.Errorf("run %d sent the root's links %d times, want %d", i+1, n, want)
		}
		for _, it := range e.runItems(portalID, rep.RunID) {
			if it.Kind == KindDepartment && it.Status != ItemApplied {
				t.Errorf("run %d: %+v", i+1, it)
			}
		}
	}
}

// TestRootLinksRefusalStaysWithTheLearnRoot: the managers Learn refused on
// its root are not sent again, but once a second portal shares the account
// the first portal's root is a department of its own, which takes them:
// they are sent there. The refusal, kept by Bitrix24 id, held them back.
func TestRootLinksRefusalStaysWithTheLearnRoot(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Seed: 5, Unsettled: learnsim.Unsettled{RootSubordination: learnsim.RootSub400}}})
	idA, pA := e.addPortal(b24sim.GenerateOrg(11, 60, 8))
	e.setSettings(idA, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })
	e.run(idA, TriggerManual)
	st := e.state()
	ids := checkPortal(t, st, pA, st.RootID)
	rootHead := checkDeptLinks(t, st, pA, ids)
	if root, _ := st.Department(st.RootID); rootHead == "" || root.CoSubordination.Type == SubManual {
		t.Fatalf("root head %q, the Learn root's manager %+v: the test checks nothing", rootHead, root.CoSubordination)
	}
	orgB := b24sim.GenerateOrg(12, 20, 3)
	for i := range orgB.Users {
		if orgB.Users[i].Email != "" {
			orgB.Users[i].Email = "b." + orgB.Users[i].Email
		}
	}
	idB, _ := e.addPortal(orgB)
	e.run(idB, TriggerManual)
	e.run(idA, TriggerManual) // A's root moves under the account's root
	e.run(idA, TriggerManual)
	var own []learnsim.Department
	for _, d := range e.state().Departments {
		if d.Code == DepartmentCode(pA.MemberID(), 1) {
			own = append(own, d)
		}
	}
	if len(own) != 1 || own[0].ID == st.RootID {
		t.Fatalf("portal A's root in Learn: %+v", own)
	}
	want := learnsim.Subordination{Type: SubManual, SupervisorID: rootHead}
	if own[0].CoSubordination != want {
		t.Fatalf("portal A's own root's manager %+v, want %+v", own[0].CoSubordination, want)
	}
	// A Learn admin clears it: the next run sets it again.
	lc, err := learn.New(learn.Credentials{AccountURL: simAccount, Email: simEmail, Password: simPassword},
		learn.Options{BaseURL: e.lsrv.URL, AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.SetDepartmentSubordination(context.Background(), own[0].ID, nil, &learn.Subordination{Type: SubInherit}, nil); err != nil {
		t.Fatal(err)
	}
	e.run(idA, TriggerManual)
	if d, _ := e.state().Department(own[0].ID); d.CoSubordination != want {
		t.Errorf("after an admin cleared it, portal A's own root's manager is %+v, want %+v", d.CoSubordination, want)
	}
}

package syncer

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

var codesChoices = []struct {
	name  string
	codes learnsim.Codes
}{
	{"Kept", learnsim.CodesKept},
	{"Cut", learnsim.CodesCut},
	{"RefusedLong", learnsim.CodesRefusedLong},
	{"RefusedChars", learnsim.CodesRefusedChars},
}

// checkNoDuplicates checks that the portal's org is in Learn once, each
// department found by the portal's mapping, and that Learn holds no
// department besides the root and the portal's.
func (e *simEnv) checkNoDuplicates(portalID int64, p *b24sim.Portal, u learnsim.Unsettled) {
	e.t.Helper()
	e.checkPortalMapped(portalID, p, func(code, got string) bool {
		return got == u.KeptCode(code) || got == "" && u.UniqueCodes != learnsim.ClashAllowed
	})
	if got, want := len(e.state().Departments), len(expected(p).depts); got != want {
		e.t.Errorf("Learn has %d departments, want %d (the portal's, its root being Learn's)", got, want)
	}
}

// rerunSettles runs the portal again after a broken run: its org is then
// in Learn once (checkNoDuplicates), and a run after that writes nothing.
func (e *simEnv) rerunSettles(portalID int64, p *b24sim.Portal, u learnsim.Unsettled) {
	e.t.Helper()
	e.run(portalID, TriggerScheduled)
	e.checkNoDuplicates(portalID, p, u)
	e.stable(portalID)
}

// A run killed right after a department create, before its mapping is
// recorded, and run again: on a Learn that cuts or refuses the app's codes
// the department cannot be found by its code, and must not be made twice
// (docs/learn-api.md, "Department codes").
func TestSyncKilledAfterDepartmentCreateWithoutCodes(t *testing.T) {
	t.Parallel()
	org := b24sim.GenerateOrg(3, 30, 6)
	for _, c := range codesChoices {
		for _, k := range []int64{2, 3, 5} {
			t.Run(fmt.Sprintf("%s/K%d", c.name, k), func(t *testing.T) {
				t.Parallel()
				u := learnsim.Unsettled{Codes: c.codes}
				e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: u}, lenient: true})
				id, p := e.addPortal(org)
				e.killAfterWrite(id, k, true)
				e.rerunSettles(id, p, u)
			})
		}
	}
}

// Department mapping rows lost after a full run (as a killed run or a lost
// create answer leaves them) are found again and restored, whatever Learn
// did with the codes, without a department made twice.
func TestSyncLostDepartmentMappingsWithoutCodes(t *testing.T) {
	t.Parallel()
	org := b24sim.GenerateOrg(3, 30, 6)
	for _, c := range codesChoices {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := learnsim.Unsettled{Codes: c.codes}
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: u}, lenient: true})
			id, p := e.addPortal(org)
			e.run(id, TriggerScheduled)
			e.checkNoDuplicates(id, p, u)
			tag, err := e.pool.Exec(context.Background(), `DELETE FROM sync_mappings
				WHERE portal_id = $1 AND kind = 'department' AND b24_id IN (2, 4, 5)`, id)
			if err != nil || tag.RowsAffected() == 0 {
				t.Fatalf("lose mappings: %v (%d rows)", err, tag.RowsAffected())
			}
			e.rerunSettles(id, p, u)
		})
	}
}

// Two portals sharing an account whose Learn refuses the codes: each
// portal's own root department sits under the Learn root, both named
// "Acme Corp", neither with a code. When the first portal loses the
// mapping of its root, it finds its own again, never the other portal's,
// which that portal's mapping names.
func TestSyncLostRootMappingBesideAnotherPortalsNamesake(t *testing.T) {
	t.Parallel()
	u := learnsim.Unsettled{Codes: learnsim.CodesRefusedChars}
	e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: u}, lenient: true})
	idB, _ := e.addPortal(flatOrg("Acme Corp", "beta.test", 5))
	e.run(idB, TriggerScheduled)
	idA, pA := e.addPortal(b24sim.GenerateOrg(3, 30, 6))
	e.run(idA, TriggerScheduled)
	e.run(idB, TriggerScheduled)
	mapped := func(portalID, b24 int64) string {
		t.Helper()
		ms, err := NewStore(e.pool).Mappings(context.Background(), portalID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Kind == KindDepartment && m.B24ID == b24 {
				return m.LearnID
			}
		}
		return ""
	}
	rootA, rootB := mapped(idA, 1), mapped(idB, 1)
	st := e.state()
	a, _ := st.Department(rootA)
	b, _ := st.Department(rootB)
	if rootA == "" || rootB == "" || a.Name != pA.Departments()[0].Name || b.Name != a.Name ||
		a.ParentID != st.RootID || b.ParentID != st.RootID || a.Code != "" || b.Code != "" {
		t.Fatalf("portal roots side by side without codes: A %+v, B %+v", a, b)
	}
	n := len(st.Departments)

	// B's settings name the account (as typed, with a trailing slash).
	e.saveRow(idB, func(s *settings.Settings) { s.LearnURL, s.LearnEmail = simAccount+"/", "b.admin@beta.test" })
	if _, err := e.pool.Exec(context.Background(), `DELETE FROM sync_mappings
		WHERE portal_id = $1 AND kind = 'department' AND b24_id = 1`, idA); err != nil {
		t.Fatal(err)
	}
	e.run(idA, TriggerScheduled)
	if got := mapped(idA, 1); got != rootA {
		t.Errorf("portal A's root is %q, want its own %s (B's is %s)", got, rootA, rootB)
	}
	if got := len(e.state().Departments); got != n {
		t.Errorf("Learn has %d departments, had %d", got, n)
	}
	if got := mapped(idB, 1); got != rootB {
		t.Errorf("portal B's root is %q, want %s", got, rootB)
	}
}

// A department create whose answer is lost, on a Learn that does not keep
// the code: the client cannot find it by its code and fails the step
// (learn.ErrMaybeCreated) rather than make it twice. The next run finds it
// without its code and records its mapping.
func TestSyncLostCreateAnswerWithoutCodes(t *testing.T) {
	t.Parallel()
	for name, u := range map[string]learnsim.Unsettled{
		"Cut":          {Codes: learnsim.CodesCut, UniqueCodes: learnsim.Clash400},
		"RefusedLong":  {Codes: learnsim.CodesRefusedLong},
		"RefusedChars": {Codes: learnsim.CodesRefusedChars},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: u}, lenient: true})
			var lost atomic.Int32
			h := e.lsim.Handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/department" {
					h.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code < 300 && lost.Add(1) == 1 {
					http.Error(w, "bad gateway", http.StatusBadGateway) // made, the answer lost
					return
				}
				maps.Copy(w.Header(), rec.Header())
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
			}))
			t.Cleanup(srv.Close)
			e.lsrv = srv
			id, p := e.addPortal(b24sim.GenerateOrg(3, 30, 6))
			if rep := e.run(id, TriggerScheduled); rep.Status == RunSucceeded || lost.Load() == 0 {
				t.Fatalf("no create answer lost (%d): %s %v %+v", lost.Load(), rep.Status, rep.Counts, e.state().Departments)
			}
			e.rerunSettles(id, p, u)
		})
	}
}

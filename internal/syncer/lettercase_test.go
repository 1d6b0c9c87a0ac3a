package syncer

import (
	"fmt"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
)

// usersAt are the Learn users whose login or e-mail is addr, letter case aside.
func usersAt(st learnsim.State, addr string) []string {
	var ids []string
	for _, u := range st.Users {
		if strings.EqualFold(u.Fields["login"], addr) || strings.EqualFold(u.Fields["email"], addr) {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// A Bitrix24 e-mail that differs only in letter case from a Learn user's is
// that user: linked, never created a second time, whether Learn takes the
// other case as a duplicate or as a new person, and whether its filters
// match letter case. Full runs settle and then write nothing; "Sync this
// employee" links too, even to an address held in a third form the
// filtered reads cannot ask for.
func TestLetterCaseNeverDuplicates(t *testing.T) {
	t.Parallel()
	for _, sensitive := range []bool{false, true} {
		for _, exact := range []bool{false, true} {
			un := learnsim.Unsettled{CaseSensitiveUnique: sensitive, ExactFilters: exact}
			t.Run(fmt.Sprintf("case-sensitive %v, exact filters %v", sensitive, exact), func(t *testing.T) {
				t.Parallel()
				e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: un}})
				portalID, p := e.addPortal(b24sim.GenerateOrg(3, 40, 6))
				const olga, olgaLearn = "Olga.Ivanova@Example.com", "olga.ivanova@example.com"
				p.AddUser(b24sim.User{Active: true, Name: "Olga", LastName: "Ivanova", Email: olga, Departments: []int64{2}})
				olgaID, err := e.lsim.SeedUser(simAccount, e.state().RootID, map[string]string{"login": olgaLearn, "email": olgaLearn,
					"first_name": "Olga", "last_name": "Ivanova"}, StatusActive)
				if err != nil {
					t.Fatal(err)
				}
				rep := e.run(portalID, TriggerScheduled)
				if rep.Status != RunSucceeded {
					t.Fatalf("first run %s, counts %v", rep.Status, rep.Counts)
				}
				if ids := usersAt(e.state(), olga); len(ids) != 1 || ids[0] != olgaID {
					t.Errorf("Learn users at %s: %v, want only %s", olga, ids, olgaID)
				}
				for _, it := range e.runItems(portalID, rep.RunID) {
					if it.LearnID == olgaID && it.Status != ItemApplied {
						t.Errorf("Olga's row %+v, want applied", it)
					}
				}
				e.stable(portalID)

				// "Sync this employee" for a new hire whose address Learn
				// holds in a third letter case.
				const klaus, klausLearn = "Klaus.Weber@Example.com", "KLAUS.WEBER@example.com"
				id := p.AddUser(b24sim.User{Active: true, Name: "Klaus", LastName: "Weber", Email: klaus, Departments: []int64{2}})
				klausID, err := e.lsim.SeedUser(simAccount, e.state().RootID, map[string]string{"login": klausLearn, "email": klausLearn,
					"first_name": "Klaus", "last_name": "Weber"}, StatusActive)
				if err != nil {
					t.Fatal(err)
				}
				e.lsim.ResetCounts()
				prep := runPersonOK(t, e, portalID, id)
				if c := e.lsim.Counts(simAccount); c.ByRoute["POST /user"] != 0 {
					t.Errorf("a user was created (%v, report %v)", c.ByRoute, prep.Counts)
				}
				if ids := usersAt(e.state(), klaus); len(ids) != 1 || ids[0] != klausID {
					t.Errorf("Learn users at %s: %v, want only %s", klaus, ids, klausID)
				}
				items := e.runItems(portalID, prep.RunID)
				if len(items) == 0 || items[0].LearnID != klausID || items[0].Status != ItemApplied {
					t.Errorf("run items %+v, want Learn user %s linked", items, klausID)
				}
				e.stable(portalID)
			})
		}
	}
}

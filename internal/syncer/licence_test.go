package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/pgtest"
)

// planOrg is an org of n active employees, each with an e-mail, in a few
// departments.
func planOrg(seed int64, n int) b24sim.Org {
	org := b24sim.GenerateOrg(seed, n, 6)
	for i := range org.Users {
		u := &org.Users[i]
		u.Active, u.Extranet = true, false
		if u.Email == "" {
			u.Email = fmt.Sprintf("user%d@example.com", u.ID)
		}
		if len(u.Departments) == 0 {
			u.Departments = []int64{1}
		}
	}
	return org
}

// fakeClock is the syncer's clock in a test.
type fakeClock struct{ at atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.at.Load()) }
func (c *fakeClock) add(d time.Duration) { c.at.Add(int64(d)) }

func learnStatuses(st learnsim.State) (active, inactive int) {
	for _, u := range st.Users {
		if u.ID == st.OwnerID {
			continue
		}
		if u.Status == StatusActive {
			active++
		} else {
			inactive++
		}
	}
	return active, inactive
}

func itemsWith(t testing.TB, e *simEnv, portalID, runID int64, status string) []RunItem {
	t.Helper()
	items, err := e.syncer.store.RunItems(context.Background(), portalID, runID)
	if err != nil {
		t.Fatal(err)
	}
	var out []RunItem
	for _, it := range items {
		if it.Status == status {
			out = append(out, it)
		}
	}
	return out
}

// Past the plan Learn creates users inactive. They wait for a licence: later
// runs do not write their status until seats come free (Learn's active count
// went down) or a day passed. Whether Learn refuses an activation past the
// plan or answers OK and leaves the user inactive is not settled: both pass.
func TestSyncPlanLimit(t *testing.T) {
	for _, silent := range []bool{false, true} {
		t.Run(fmt.Sprintf("silent=%v", silent), func(t *testing.T) {
			t.Parallel()
			// The account owner holds one of the 51 seats: 50 are left for the portal.
			e := newSimEnv(t, simOpts{account: learnsim.AccountOptions{MaxActiveUsers: 51, SilentPlanLimit: silent}})
			clock := &fakeClock{}
			clock.at.Store(time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC).UnixNano())
			e.syncer.cfg.Now = clock.now
			portalID, p := e.addPortal(planOrg(41, 120))

			rep := e.run(portalID, TriggerScheduled)
			if rep.Status != RunSucceeded || rep.Counts["user.create"] != 120 || rep.Counts["user.waiting"] != 70 {
				t.Fatalf("first run: status %s counts %v", rep.Status, rep.Counts)
			}
			if a, i := learnStatuses(e.state()); a != 50 || i != 70 {
				t.Fatalf("after the first run %d active, %d inactive; want 50 and 70", a, i)
			}
			if w := itemsWith(t, e, portalID, rep.RunID, ItemWaiting); len(w) != 70 || !w[0].Reason.Has(ReasonLicence) {
				t.Fatalf("first report: %d rows waiting for a licence, want 70", len(w))
			}

			// Unchanged: no status writes, no writes at all; still 70 waiting.
			before := e.lsim.Counts(simAccount)
			rep = e.run(portalID, TriggerScheduled)
			after := e.lsim.Counts(simAccount)
			if w := after.Writes - before.Writes; w != 0 {
				t.Fatalf("unchanged run made %d Learn writes: %v", w, after.ByRoute)
			}
			if rep.Status != RunSucceeded || rep.Counts["user.waiting"] != 70 || rep.Counts["user.reactivate"] != 0 {
				t.Fatalf("unchanged run: status %s counts %v", rep.Status, rep.Counts)
			}

			// Five employees leave: the run deactivates them, which frees five
			// seats; the next run sees Learn's active count lower and gives
			// them to the five who waited longest.
			st := e.state()
			left := 0
			for _, u := range p.Users() {
				lu, ok := st.UserByLogin(u.Email)
				if left < 5 && ok && lu.Status == StatusActive {
					if err := p.UpdateUser(u.ID, func(x *b24sim.User) { x.Active = false }); err != nil {
						t.Fatal(err)
					}
					left++
				}
			}
			rep = e.run(portalID, TriggerScheduled)
			if rep.Counts["user.deactivate"] != 5 || rep.Counts["user.reactivate"] != 0 {
				t.Fatalf("run with five leaving: counts %v", rep.Counts)
			}
			before = e.lsim.Counts(simAccount)
			rep = e.run(portalID, TriggerScheduled)
			after = e.lsim.Counts(simAccount)
			if rep.Counts["user.reactivate"] != 5 || rep.Counts["user.waiting"] != 65 || after.Writes-before.Writes != 5 {
				t.Fatalf("run after seats came free: counts %v, %d writes", rep.Counts, after.Writes-before.Writes)
			}
			if a, i := learnStatuses(e.state()); a != 50 || i != 70 {
				t.Fatalf("after the free seats were used %d active, %d inactive; want 50 and 70 (65 waiting, 5 left)", a, i)
			}

			// The customer buys licences: within a day nothing is tried, the
			// next day's run activates everyone waiting.
			if err := e.lsim.SetMaxActiveUsers(simAccount, 500); err != nil {
				t.Fatal(err)
			}
			clock.add(2 * time.Hour)
			if rep = e.run(portalID, TriggerScheduled); rep.Counts["user.reactivate"] != 0 || rep.Counts["user.waiting"] != 65 {
				t.Fatalf("run two hours later: counts %v", rep.Counts)
			}
			clock.add(LicenceRetryEvery)
			rep = e.run(portalID, TriggerScheduled)
			if rep.Status != RunSucceeded || rep.Counts["user.reactivate"] != 65 || rep.Counts["user.waiting"] != 0 {
				t.Fatalf("run a day later: status %s counts %v", rep.Status, rep.Counts)
			}
			if a, i := learnStatuses(e.state()); a != 115 || i != 5 {
				t.Fatalf("after the plan grew %d active, %d inactive; want 115 and the 5 who left", a, i)
			}
			waits, err := e.syncer.store.LicenceWaits(context.Background(), portalID)
			if err != nil || len(waits) != 0 {
				t.Fatalf("still waiting %v (%v)", waits, err)
			}
			before = e.lsim.Counts(simAccount)
			e.run(portalID, TriggerScheduled)
			if w := e.lsim.Counts(simAccount).Writes - before.Writes; w != 0 {
				t.Fatalf("stable run after the plan grew: %d writes", w)
			}
		})
	}
}

func portalDomain(t testing.TB, e *simEnv, id int64) string {
	t.Helper()
	var d string
	if err := e.pool.QueryRow(context.Background(), `SELECT domain FROM portals WHERE id = $1`, id).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// An employee with the same e-mail in two portals of one Learn account
// belongs to the portal that synced it first; the other portal never moves,
// updates, deactivates or reactivates it, and each of its runs reports the
// conflict naming the owner.
func TestSyncSharedEmployeeOwnedByFirstPortal(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	orgA := planOrg(51, 40)
	orgB := planOrg(52, 30)
	orgB.Departments[0].Name = "Beta LLC"
	for i := range orgB.Users {
		orgB.Users[i].Email = strings.Replace(orgB.Users[i].Email, "@example.com", "@beta.test", 1)
	}
	idA, pA := e.addPortal(orgA)
	shared := syncedUser(pA)
	idB, pB := e.addPortal(orgB)
	other := syncedUser(pB)
	// In B the same person has another department, name and job title.
	if err := pB.UpdateUser(other.ID, func(u *b24sim.User) {
		u.Email = strings.ToUpper(shared.Email)
		u.Name, u.LastName, u.WorkPosition = "Other", "Person", "Elsewhere"
		u.Departments = []int64{2}
	}); err != nil {
		t.Fatal(err)
	}
	domainA, domainB := portalDomain(t, e, idA), portalDomain(t, e, idB)

	placement := func() learnsim.User {
		t.Helper()
		u, ok := e.state().UserByLogin(shared.Email)
		if !ok {
			t.Fatalf("no Learn user %s", shared.Email)
		}
		return u
	}
	e.run(idA, TriggerScheduled)
	want := placement()
	if want.Status != StatusActive || want.Fields["first_name"] != shared.Name {
		t.Fatalf("portal A created %+v", want)
	}

	// The owner's runs may move or change the user (portal A moves into its
	// own child department once B appears); B's runs must not.
	check := func(round int, id int64, rep *Report) {
		t.Helper()
		got := placement()
		if id == idA {
			want = got
		}
		if got.DepartmentID != want.DepartmentID || got.Status != want.Status || got.Fields["first_name"] != want.Fields["first_name"] ||
			got.Fields["job_title"] != want.Fields["job_title"] || got.Fields["last_name"] != want.Fields["last_name"] {
			t.Fatalf("round %d: Learn user %s changed from %+v to %+v", round, shared.Email, want, got)
		}
		conflicts := itemsWith(t, e, id, rep.RunID, ItemConflict)
		if id == idB {
			if len(conflicts) != 1 || conflicts[0].B24ID != other.ID || conflicts[0].LearnID != want.ID ||
				conflicts[0].Reason.arg(ReasonForeign) == "" || !strings.Contains(conflicts[0].Reason.String(), domainA) || rep.Counts["user.conflict"] != 1 {
				t.Fatalf("round %d: portal B's conflicts %+v counts %v", round, conflicts, rep.Counts)
			}
			return
		}
		if round > 0 && (len(conflicts) != 1 || conflicts[0].B24ID != shared.ID || conflicts[0].Reason.arg(ReasonContested) != domainB) {
			t.Fatalf("round %d: portal A's report on its contested user %+v", round, conflicts)
		}
	}
	check(0, idA, &Report{})
	// Three rounds in alternating order; in the last, A's employee gets a new
	// job title, which A applies.
	order := [][2]int64{{idB, idA}, {idA, idB}, {idB, idA}}
	for round, ids := range order {
		if round == 2 {
			if err := pA.UpdateUser(shared.ID, func(u *b24sim.User) { u.WorkPosition = "Lead" }); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range ids {
			rep := e.run(id, TriggerScheduled)
			check(round+1, id, rep)
			if id == idA && round == 2 && want.Fields["job_title"] != "Lead" {
				t.Fatalf("owner's change not applied: %+v", want)
			}
		}
	}
	// Ownership is recorded for A only.
	var owner int64
	if err := e.pool.QueryRow(context.Background(), `SELECT portal_id FROM learn_user_owners WHERE learn_id = $1`, want.ID).
		Scan(&owner); err != nil || owner != idA {
		t.Fatalf("owner %d (%v), want portal A %d", owner, err, idA)
	}
}

// Claims of one Learn user by two portals at once, from separate
// connections, have exactly one winner; every loser is told its domain.
func TestClaimRace(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	s := NewStore(pool)
	p1, p2 := mustPortal(t, pool, "race-one"), mustPortal(t, pool, "race-two")
	ctx := context.Background()
	for round := range 20 {
		learnID := fmt.Sprintf("user-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Claim(ctx, "acme.ispringlearn.test", learnID, []int64{p1, p2}[i%2])
			}()
		}
		wg.Wait()
		var owner int64
		if err := pool.QueryRow(ctx, `SELECT portal_id FROM learn_user_owners WHERE learn_account = $1 AND learn_id = $2`,
			"acme.ispringlearn.test", learnID).Scan(&owner); err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			mine := []int64{p1, p2}[i%2]
			var other *ErrOwnedElsewhere
			switch {
			case mine == owner && err != nil:
				t.Fatalf("round %d: owner's claim failed: %v", round, err)
			case mine != owner && (!errors.As(err, &other) || !strings.HasPrefix(other.Domain, "race-")):
				t.Fatalf("round %d: loser's claim answered %v", round, err)
			}
		}
	}
	if AccountKey(" HTTPS://Acme.ispringlearn.test/ ") != "acme.ispringlearn.test" {
		t.Fatal("account key")
	}
}

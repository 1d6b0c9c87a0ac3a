package syncer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// flatOrg is a portal whose whole staff sits in its root department (a small
// company): its runs give Learn no department with a code of its own.
func flatOrg(name, domain string, n int) b24sim.Org {
	org := b24sim.Org{Name: name, Departments: []b24sim.Department{{ID: 1, Name: name, Head: 1}}}
	for i := 1; i <= n; i++ {
		org.Users = append(org.Users, b24sim.User{ID: int64(i), Active: true, Name: fmt.Sprintf("User%d", i),
			LastName: name, Email: fmt.Sprintf("user%d@%s", i, domain), Departments: []int64{1}})
	}
	return org
}

// Two portals sharing a Learn account, each with only its root department:
// no department code tells the second that the account is shared, but the
// users the first owns do. The second must not take the Learn root as its
// own (rename it, put its staff there, make its head the manager of the
// whole account, the first portal's people included): it gets a child of
// its own, and so does the first on its next run.
func TestSyncSecondFlatPortalKeepsOffTheLearnRoot(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	idB, pB := e.addPortal(flatOrg("Beta LLC", "beta.test", 5))
	e.setSettings(idB, func(s *Settings) { s.HeadsAsManagers = true })
	e.run(idB, TriggerScheduled)
	st := e.state()
	root, _ := st.Department(st.RootID)
	if root.Name != "Beta LLC" {
		t.Fatalf("portal B alone: Learn root %+v", root)
	}
	headB, _ := st.UserByLogin("user1@beta.test")

	idA, pA := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.setSettings(idA, func(s *Settings) { s.HeadsAsManagers = true })
	e.run(idA, TriggerScheduled)
	st = e.state()
	root, _ = st.Department(st.RootID)
	headA, ok := st.UserByLogin("user1@acme.test")
	if !ok {
		t.Fatal("portal A's head not created")
	}
	if root.Name != "Beta LLC" || root.CoSubordination.SupervisorID == headA.ID || root.Subordination.SupervisorID == headA.ID {
		t.Fatalf("portal A took the Learn root: %+v (A's head %s)", root, headA.ID)
	}
	own := st.DepartmentsByCode(DepartmentCode(pA.MemberID(), 1))
	if len(own) != 1 || own[0].ParentID != st.RootID {
		t.Fatalf("portal A's own root department: %+v", own)
	}
	for _, u := range st.Users {
		if u.ID != st.OwnerID && strings.HasSuffix(u.Fields["login"], "@acme.test") && u.DepartmentID != own[0].ID {
			t.Errorf("portal A's user %s in %s, not in A's own department", u.Fields["login"], u.DepartmentID)
		}
	}

	// B's next run sees A's users and moves into a child of its own too.
	e.run(idB, TriggerScheduled)
	st = e.state()
	ownB := st.DepartmentsByCode(DepartmentCode(pB.MemberID(), 1))
	if len(ownB) != 1 || ownB[0].ParentID != st.RootID {
		t.Fatalf("portal B's own root department: %+v", ownB)
	}
	if u, _ := st.UserByLogin("user2@beta.test"); u.DepartmentID != ownB[0].ID {
		t.Errorf("portal B's user in %s, not in B's own department %s", u.DepartmentID, ownB[0].ID)
	}
	if ownB[0].CoSubordination.SupervisorID != headB.ID {
		t.Errorf("portal B's head is not its own department's manager: %+v", ownB[0])
	}
	e.stable(idA, idB)
}

// An employee whose address is that of a Learn user another portal owns is
// reported as a conflict, and the row tells this portal's admin no more
// than they gave: the owner portal and the address, never the other
// portal's person (name, job title, phone, mapped fields, department, or a
// login that differs from the address). Anyone can put any address in a
// Bitrix24 profile, so the row would otherwise read out another tenant's
// people one address at a time.
func TestConflictRowShowsNothingOfTheOtherPortalsUser(t *testing.T) {
	t.Parallel()
	a := emptyLearn()
	a.Departments = append(a.Departments, LearnDepartment{ID: "beta-finance", Name: "Finance", ParentID: "root", Code: "0123456789abcdef0123456789abcdef:7"})
	secret := Profile{Login: "bianca.private", Email: "seller@acme.test", FirstName: "Bianca", LastName: "Hidden",
		JobTitle: "Chief Financial Officer", Phone: "+1 555 0100", Extra: map[string]string{"birthdate": "1980-02-03"}}
	a.Users = []LearnUser{{ID: "b21", DepartmentID: "beta-finance", Status: StatusActive, Profile: secret}}
	a.Foreign = map[string]string{"b21": "beta.bitrix24.test"}
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	var rows []RunItem
	for _, st := range p.Refused {
		if st.B24ID == 21 {
			rows = append(rows, itemOf(st, refusedStatus(st)))
		}
	}
	if len(rows) != 1 || rows[0].Status != ItemConflict || rows[0].Reason.arg(ReasonForeign) == "" ||
		!strings.Contains(rows[0].Reason.String(), "beta.bitrix24.test") || rows[0].After["owner"] != "beta.bitrix24.test" {
		t.Fatalf("the employee with another portal's user's address: %+v", rows)
	}
	leaked := []string{secret.Login, secret.FirstName, secret.LastName, secret.JobTitle, secret.Phone, secret.Extra["birthdate"], "beta-finance"}
	show := fmt.Sprintf("%v %v %s", rows[0].Before, rows[0].After, rows[0].Reason)
	for _, s := range leaked {
		if strings.Contains(show, s) {
			t.Errorf("the conflict row shows %q of the other portal's user: %s", s, show)
		}
	}
	for _, st := range p.Steps {
		if st.LearnID == "b21" {
			t.Errorf("a step on the other portal's user: %+v", st)
		}
	}
}

// claimOnFirstDepartment makes another portal the owner of a Learn user
// right before the run's first write: as when the two portals' runs meet.
type claimOnFirstDepartment struct {
	Learn
	once  sync.Once
	claim func()
}

func (c *claimOnFirstDepartment) CreateDepartment(ctx context.Context, d learn.NewDepartment) (string, error) {
	c.once.Do(c.claim)
	return c.Learn.CreateDepartment(ctx, d)
}

// A Learn user another portal claims between this run's read and its write
// is left alone and reported as a conflict; the row does not show the
// other portal's user as this run read it.
func TestClaimedMeanwhileRowShowsNothingOfTheOtherPortalsUser(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	idA, pA := e.addPortal(planOrg(61, 20))
	idB, _ := e.addPortal(planOrg(62, 5))
	victim := syncedUser(pA)
	st := e.state()
	secret := map[string]string{"login": strings.ToLower(victim.Email), "email": strings.ToLower(victim.Email),
		"first_name": "Bianca", "last_name": "Hidden", "job_title": "Chief Financial Officer", "phone": "+1 555 0100"}
	lid, err := e.lsim.SeedUser(simAccount, st.RootID, secret, StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	e.wrap = func(l Learn) Learn {
		return &claimOnFirstDepartment{Learn: l, claim: func() {
			if _, err := e.pool.Exec(context.Background(), `INSERT INTO learn_user_owners (learn_account, learn_id, portal_id) VALUES ($1, $2, $3)`,
				AccountKey(simAccount), lid, idB); err != nil {
				t.Error(err)
			}
		}}
	}
	rep := e.run(idA, TriggerScheduled)
	e.wrap = nil
	var row *RunItem
	for _, it := range e.items(idA, rep.RunID) {
		if it.B24ID == victim.ID && it.Kind == KindUser {
			row = &it
		}
	}
	if row == nil || row.Status != ItemConflict {
		t.Fatalf("the employee whose Learn user was claimed meanwhile: %+v", row)
	}
	show := fmt.Sprintf("%v %v %s", row.Before, row.After, row.Reason)
	for _, k := range []string{"first_name", "last_name", "job_title", "phone"} {
		if strings.Contains(show, secret[k]) {
			t.Errorf("the conflict row shows %q of the other portal's user: %s", secret[k], show)
		}
	}
	if u, _ := e.state().UserByLogin(victim.Email); u.Fields["first_name"] != "Bianca" || u.DepartmentID != st.RootID {
		t.Errorf("the other portal's user was written: %+v", u)
	}
}

// The Learn user another portal of the account signs in with is no
// employee's of this portal either, even where Learn does not show it as an
// administrator: an employee who puts its address in their Bitrix24
// profile is refused, and the user is never renamed, moved or deactivated
// (that portal's runs would then fail to sign in).
func TestSyncLeavesAnotherPortalsSignInUser(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	idA, pA := e.addPortal(planOrg(71, 20))
	idB, _ := e.addPortal(planOrg(72, 5))
	const addr = "b.admin@beta.test"
	e.saveRow(idB, func(s *settings.Settings) { s.LearnURL, s.LearnEmail = simAccount+"/", strings.ToUpper(addr) })
	st := e.state()
	id, err := e.lsim.SeedUser(simAccount, st.RootID, map[string]string{"login": addr, "email": addr, "first_name": "Beta", "last_name": "Admin"}, StatusActive)
	if err != nil {
		t.Fatal(err)
	}
	was := e.learnUserByID(id)
	mallory := syncedUser(pA)
	if err := pA.UpdateUser(mallory.ID, func(u *b24sim.User) { u.Email, u.Name, u.LastName = " B.Admin@Beta.test", "Mallory", "Intruder" }); err != nil {
		t.Fatal(err)
	}
	rep := e.run(idA, TriggerScheduled)
	refused := false
	for _, it := range e.items(idA, rep.RunID) {
		if it.B24ID == mallory.ID && it.Kind == KindUser {
			refused = it.Status == ItemRefused && it.Reason.Has(ReasonSignIn)
		}
	}
	if !refused {
		t.Errorf("the employee with portal B's sign-in address is not refused")
	}
	if err := pA.FireUser(mallory.ID); err != nil {
		t.Fatal(err)
	}
	e.run(idA, TriggerScheduled)
	e.untouched(id, was, "portal B's sign-in user")
}

// A portal that joins an account where another portal, alone before, made
// its head the Learn root's manager keeps its people out from under that
// head, whatever its own toggles say: its own root department does not
// inherit a manager another portal owns.
func TestSyncJoiningPortalDoesNotInheritAnotherPortalsManager(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	idB, _ := e.addPortal(flatOrg("Beta LLC", "beta.test", 5))
	e.setSettings(idB, func(s *Settings) { s.HeadsAsManagers, s.ParentHeadsAsSupervisors = true, true })
	e.run(idB, TriggerScheduled)
	st := e.state()
	headB, _ := st.UserByLogin("user1@beta.test")
	if root, _ := st.Department(st.RootID); root.CoSubordination.SupervisorID != headB.ID {
		t.Fatalf("portal B alone: Learn root %+v", root)
	}

	idA, pA := e.addPortal(flatOrg("Acme Corp", "acme.test", 4)) // both toggles off
	e.run(idA, TriggerScheduled)
	st = e.state()
	own := st.DepartmentsByCode(DepartmentCode(pA.MemberID(), 1))
	if len(own) != 1 {
		t.Fatalf("portal A's own root department: %+v", own)
	}
	root, _ := st.Department(st.RootID)
	for name, l := range map[string][2]learnsim.Subordination{
		"subordination":    {own[0].Subordination, root.Subordination},
		"co_subordination": {own[0].CoSubordination, root.CoSubordination},
	} {
		mine, above := l[0], l[1]
		inherits := mine.Type == "" || mine.Type == SubInherit
		if mine.SupervisorID == headB.ID || inherits && above.SupervisorID == headB.ID {
			t.Errorf("portal A's people get portal B's head through %s: A's root %+v, Learn root %+v", name, mine, above)
		}
	}
	e.stable(idA)
}

// Another portal's sign-in counts when its Learn address is the same
// account written another way, and not when it only contains the account's
// host (a look-alike on someone else's domain).
func TestOtherSignInsMatchTheAccountOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	idA, _ := e.addPortal(planOrg(81, 3))
	idB, _ := e.addPortal(planOrg(82, 3))
	idC, _ := e.addPortal(planOrg(83, 3))
	for id, row := range map[int64][2]string{
		idB: {" HTTPS://Acme.ispringlearn.ru/ ", "b.admin@beta.test"},
		idC: {"https://acme.ispringlearn.ru.evil.example", "c.admin@gamma.test"},
	} {
		e.saveRow(id, func(s *settings.Settings) { s.LearnURL, s.LearnEmail = row[0], row[1] })
	}
	got, err := e.syncer.store.OtherSignIns(ctx, AccountKey("https://acme.ispringlearn.ru"), idA)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "b.admin@beta.test" {
		t.Errorf("other sign-ins %v, want only portal B's", got)
	}
}

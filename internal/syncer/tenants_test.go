package syncer

import (
	"fmt"
	"strings"
	"testing"

	"b24learn/internal/bitrix24/b24sim"
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
	for _, id := range []int64{idA, idB} {
		before := e.writes()
		e.run(id, TriggerScheduled)
		if w := e.writes() - before; w != 0 {
			t.Errorf("portal %d: %d writes when stable", id, w)
		}
	}
}

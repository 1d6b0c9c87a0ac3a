package learn

import (
	"context"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// TestSubordinationSendsListedLinks: a one-sided subordination request with
// the links the caller listed sends the other link back as listed, without
// reading the object, even where Learn resets a link left out; a listing
// that left that link out is read over, and a listed manager Learn refuses
// (one who left since) makes the request go as asked.
func TestSubordinationSendsListedLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newSimEnv(t, learnsim.Options{Seed: 3, Unsettled: learnsim.Unsettled{OmittedLink: learnsim.OmittedLinkReset}}, learnsim.AccountOptions{})
	c := env.client(t, Credentials{})
	dept, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := c.FindUserByLogin(ctx, testEmail)
	if err != nil {
		t.Fatal(err)
	}
	user, err := c.CreateUser(ctx, NewUser{DepartmentID: dept, Fields: Fields{FieldLogin: "u@acme.ru", FieldFirstName: "U", FieldLastName: "U"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDepartmentSubordination(ctx, dept, Manual(owner.ID), &Subordination{Type: SubordinationInherit}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserSubordination(ctx, user, &Subordination{Type: SubordinationInherit}, Manual(owner.ID), nil); err != nil {
		t.Fatal(err)
	}
	reads := func() int64 {
		by := env.sim.Counts(testAccount).ByRoute
		return by["GET /department/{id}"] + by["GET /user/{id}"] + by["GET /user/{id}/v2"]
	}
	env.sim.ResetCounts()
	if err := c.SetDepartmentSubordination(ctx, dept, nil, Manual(user), &Links{Subordination: Manual(owner.ID)}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserSubordination(ctx, user, &Subordination{Type: SubordinationNoSupervisor}, nil, &Links{CoSubordination: Manual(owner.ID)}); err != nil {
		t.Fatal(err)
	}
	if n := reads(); n != 0 {
		t.Errorf("%d single reads with the links listed, want none", n)
	}
	if d, err := c.GetDepartment(ctx, dept); err != nil || !d.Subordination.Equal(Manual(owner.ID)) || !d.CoSubordination.Equal(Manual(user)) {
		t.Errorf("department: %v %+v %+v", err, d.Subordination, d.CoSubordination)
	}
	if u, err := c.GetUser(ctx, user); err != nil || u.Subordination.Type != SubordinationNoSupervisor || !u.CoSubordination.Equal(Manual(owner.ID)) {
		t.Errorf("user: %v %+v %+v", err, u.Subordination, u.CoSubordination)
	}

	// A listing without the link the request leaves out: read first.
	env.sim.ResetCounts()
	if err := c.SetDepartmentSubordination(ctx, dept, nil, Manual(owner.ID), &Links{CoSubordination: Manual(user)}); err != nil {
		t.Fatal(err)
	}
	if n := reads(); n != 1 {
		t.Errorf("%d single reads with the supervisor not listed, want 1", n)
	}
	if d, err := c.GetDepartment(ctx, dept); err != nil || !d.Subordination.Equal(Manual(owner.ID)) || !d.CoSubordination.Equal(Manual(owner.ID)) {
		t.Errorf("department after a read: %v %+v %+v", err, d.Subordination, d.CoSubordination)
	}

	// A listed manager who has left since: refused, then sent as asked.
	if err := c.SetUserStatus(ctx, user, StatusInactive); err != nil {
		t.Fatal(err)
	}
	env.sim.ResetCounts()
	if err := c.SetDepartmentSubordination(ctx, dept, &Subordination{Type: SubordinationNoSupervisor}, nil, &Links{CoSubordination: Manual(user)}); err != nil {
		t.Fatalf("set the supervisor beside a listed manager who left: %v", err)
	}
	if by := env.sim.Counts(testAccount).ByRoute; by["POST /department/{id}/subordination"] != 2 || reads() != 0 {
		t.Errorf("requests %v, want the refused one with the leaver and its repeat, no read", by)
	}
	if d, err := c.GetDepartment(ctx, dept); err != nil || d.Subordination.Type != SubordinationNoSupervisor {
		t.Errorf("department after the repeat: %v %+v", err, d.Subordination)
	}
}

package learn

import (
	"context"
	"errors"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// A department administrator's credentials reach the API, but Learn
// refuses with 403 a write outside the departments it manages
// (docs/learn-api.md, "Whose credentials"). Such a 403 is a refusal of that
// object, not an account without the REST API: the client must tell them
// apart, or a sync would stop on the first department out of reach and
// tell the admin the plan has no API.
func TestWriteOutOfReachIsNoAccountRefusal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newSimEnv(t, learnsim.Options{}, learnsim.AccountOptions{})
	c := env.client(t, Credentials{})
	sales, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
	if err != nil {
		t.Fatal(err)
	}
	adm, err := c.CreateUser(ctx, NewUser{DepartmentID: sales, Fields: Fields{FieldLogin: "dadm", FieldFirstName: "D", FieldLastName: "A"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.sim.SetRole(testAccount, adm, "department_administrator"); err != nil {
		t.Fatal(err)
	}
	if err := env.sim.SetManaged(testAccount, adm, sales); err != nil {
		t.Fatal(err)
	}
	if err := env.sim.SetCaller(testAccount, adm); err != nil {
		t.Fatal(err)
	}

	// Reads and writes inside its departments go through.
	if _, err := c.ListDepartments(ctx); err != nil {
		t.Fatalf("list: %v", err)
	}
	team, err := c.CreateDepartment(ctx, NewDepartment{Name: "Team", ParentID: sales})
	if err != nil {
		t.Fatalf("create inside: %v", err)
	}
	if _, err := c.CreateUser(ctx, NewUser{DepartmentID: team, Fields: Fields{FieldLogin: "in", FieldFirstName: "I", FieldLastName: "N"}}); err != nil {
		t.Fatalf("create user inside: %v", err)
	}
	// Outside them: refused, and told apart from an account without the API.
	_, err = c.CreateDepartment(ctx, NewDepartment{Name: "Ops", ParentID: env.root})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || !errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrNoAPIAccess) {
		t.Fatalf("create outside: %v, want a 403 ErrPermissionDenied, not ErrNoAPIAccess", err)
	}
	_, err = c.CreateUser(ctx, NewUser{DepartmentID: env.root, Fields: Fields{FieldLogin: "out", FieldFirstName: "O", FieldLastName: "U"}})
	if !errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrNoAPIAccess) || errors.Is(err, ErrMaybeCreated) {
		t.Fatalf("create user outside: %v, want ErrPermissionDenied", err)
	}
	if err := c.MoveDepartments(ctx, env.root, []string{team}); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("move out: %v, want ErrPermissionDenied", err)
	}
	if st, _ := env.sim.Snapshot(testAccount); len(st.Departments) != 3 || len(st.Users) != 3 {
		t.Fatalf("refused writes changed the account: %d departments, %d users", len(st.Departments), len(st.Users))
	}

	// A caller without API rights is refused everything, reads first: that
	// is the account-wide answer.
	if err := env.sim.SetRole(testAccount, adm, "learner"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDepartments(ctx); !errors.Is(err, ErrNoAPIAccess) {
		t.Fatalf("list as a learner: %v, want ErrNoAPIAccess", err)
	}
}

package learn

import "testing"

// OnlySupervises tells a user whose only right is Learn's automatic
// Supervisor role, wherever a read shows it, from an administrator who
// also supervises, and takes a read with no role, or an empty one, for no
// supervisor (the owner's profile may read so).
func TestUserOnlySupervises(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		u    User
		want bool
	}{
		{"role supervisor", User{Role: "supervisor"}, true},
		{"EU role list", User{Role: " Supervisors "}, true},
		{"learner listed as supervisor", User{Role: "learner", RoleTypes: []string{"learner", "supervisor"}}, true},
		{"learner", User{Role: "learner"}, false},
		{"no role", User{}, false},
		{"no role, listed as supervisor", User{RoleTypes: []string{"supervisor"}}, false},
		{"administrator who supervises", User{Role: "administrator", RoleTypes: []string{"administrator", "supervisor"}}, false},
		{"learner, second role administrator, supervises", User{Role: "learner", RoleTypes: []string{"learner", "administrator", "supervisor"}}, false},
		{"department administrator who supervises", User{Role: "learner", RoleTypes: []string{"department_administrator", "supervisor"}, Manageable: []string{"d"}}, false},
		{"unknown role beside", User{Role: "supervisor", RoleTypes: []string{"?"}}, false},
	} {
		if got := tc.u.OnlySupervises(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A read that shows the Supervisor role with the departments supervised
// (as role, or in userRoles) reads them as supervised, not managed: the
// user still only supervises.
func TestUserOnlySupervisesFromWire(t *testing.T) {
	t.Parallel()
	for _, raw := range []userWire{
		{Role: "supervisor", Manageable: idList{"d1"}},
		{Role: "learner", UserRoles: userRoles{{RoleType: "learner"}, {RoleType: "supervisor", Manageable: idList{"d1"}}}},
	} {
		if u := raw.user(); !u.OnlySupervises() || u.Limited() {
			t.Errorf("%+v: OnlySupervises %v, Limited %v", raw, u.OnlySupervises(), u.Limited())
		}
	}
}

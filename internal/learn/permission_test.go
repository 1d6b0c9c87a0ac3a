package learn

import (
	"context"
	"errors"
	"fmt"
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

// The settings' check refuses a department administrator's or a custom
// role's credentials (CheckNotAccountAdmin): the sync would take the top
// department they show for the account's root. An account administrator's
// and the owner's pass, wherever Learn shows the role and whatever the
// reads show.
func TestCheckRefusesLimitedRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, scoped := range []bool{false, true} {
		for _, shown := range []learnsim.UserRoles{learnsim.UserRolesInRole, learnsim.UserRolesSecond} {
			for _, role := range []string{"department_administrator", "custom", "administrator", ""} {
				env := newSimEnv(t, learnsim.Options{Unsettled: learnsim.Unsettled{ScopedReads: scoped, UserRoles: shown}}, learnsim.AccountOptions{})
				c := env.client(t, Credentials{})
				sales, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
				if err != nil {
					t.Fatal(err)
				}
				creds := Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}
				if role != "" {
					id, err := c.CreateUser(ctx, NewUser{DepartmentID: sales, Fields: Fields{FieldLogin: "Sales.Admin@acme.ru", FieldEmail: "sales.admin@acme.ru", FieldFirstName: "S", FieldLastName: "A"}})
					if err != nil {
						t.Fatal(err)
					}
					if err := env.sim.SetRole(testAccount, id, role); err != nil {
						t.Fatal(err)
					}
					if role != "administrator" {
						if err := env.sim.SetManaged(testAccount, id, sales); err != nil {
							t.Fatal(err)
						}
					}
					if err := env.sim.SetCaller(testAccount, id); err != nil {
						t.Fatal(err)
					}
					creds.Email = "sales.admin@acme.ru"
				}
				err = CheckConnection(ctx, creds, Options{BaseURL: env.srv.URL, AllowHTTP: true})
				name := fmt.Sprintf("scoped %v, shown %d, role %q", scoped, shown, role)
				if role == "administrator" || role == "" {
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
					continue
				}
				var ce *CheckError
				if !errors.As(err, &ce) || ce.Code != CheckNotAccountAdmin {
					t.Errorf("%s: %v, want %s", name, err, CheckNotAccountAdmin)
				}
			}
		}
	}
}

// A user Learn shows only as a supervisor (the role it gives a department's
// manager) is no account administrator: the settings' check refuses such
// credentials as it refuses a department administrator's, wherever a read
// shows the role. Where Learn refuses such credentials the API outright,
// the check says so instead. The owner who supervises a department passes.
func TestCheckRefusesOnlySupervisor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, reads := range []bool{true, false} {
		for _, shown := range []learnsim.SupervisorRole{learnsim.SupervisorRoleInRole, learnsim.SupervisorRoleListed, learnsim.SupervisorRoleScoped} {
			for _, who := range []string{"supervisor", "owner"} {
				name := fmt.Sprintf("reads %v, shown %d, %s", reads, shown, who)
				env := newSimEnv(t, learnsim.Options{Unsettled: learnsim.Unsettled{SupervisorReads: reads, SupervisorRole: shown}}, learnsim.AccountOptions{})
				c := env.client(t, Credentials{})
				sales, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
				if err != nil {
					t.Fatal(err)
				}
				creds := Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}
				head := env.state(t).OwnerID
				if who == "supervisor" {
					head, err = c.CreateUser(ctx, NewUser{DepartmentID: sales, Fields: Fields{FieldLogin: "head@acme.ru", FieldEmail: "head@acme.ru", FieldFirstName: "H", FieldLastName: "S"}})
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := env.sim.SetSupervisor(testAccount, sales, head, false); err != nil {
					t.Fatal(err)
				}
				if who == "supervisor" {
					if err := env.sim.SetCaller(testAccount, head); err != nil {
						t.Fatal(err)
					}
					creds.Email = "head@acme.ru"
				}
				err = CheckConnection(ctx, creds, Options{BaseURL: env.srv.URL, AllowHTTP: true})
				var ce *CheckError
				switch {
				case who == "owner":
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
				case !reads:
					if !errors.As(err, &ce) || ce.Code != CheckNoAPIAccess {
						t.Errorf("%s: %v, want %s", name, err, CheckNoAPIAccess)
					}
				case !errors.As(err, &ce) || ce.Code != CheckNotAccountAdmin || !errors.Is(err, ErrNotAccountAdmin):
					t.Errorf("%s: %v, want %s and ErrNotAccountAdmin", name, err, CheckNotAccountAdmin)
				}
			}
		}
	}
}

// Where Learn's reads show no role (NoRoleReads, EmptyUserRoles) and lets a
// mere supervisor's credentials read (SupervisorReads), no read tells such a
// user from an account administrator, or the owner. The settings' check then
// cannot refuse them, but it does not pass silently either: it passes with
// the warning CheckUnconfirmedAdmin, for the supervisor and the
// administrator alike. So it does for a supervisor whose read shows a
// learner. An administrator whose role shows passes without it.
func TestCheckWarnsWhenRightsUnconfirmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type tc struct {
		name string
		u    learnsim.Unsettled
		who  string
		warn bool
	}
	var cases []tc
	for _, v := range learnsim.Variants() {
		if !v.Unsettled.HidesRoles() {
			continue
		}
		u := v.Unsettled
		u.SupervisorReads = true
		for _, who := range []string{"supervisor", "administrator", "owner"} {
			cases = append(cases, tc{v.Name + ", supervisors read", u, who, true})
		}
	}
	cases = append(cases, tc{"roles shown, supervisors read", learnsim.Unsettled{SupervisorReads: true}, "supervisor", true},
		tc{"roles shown", learnsim.Unsettled{}, "administrator", false}, tc{"roles shown", learnsim.Unsettled{}, "owner", false})
	for _, c := range cases {
		name := c.name + ", " + c.who
		env := newSimEnv(t, learnsim.Options{Unsettled: c.u}, learnsim.AccountOptions{})
		cl := env.client(t, Credentials{})
		sales, err := cl.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
		if err != nil {
			t.Fatal(err)
		}
		creds := Credentials{AccountURL: testAccount, Email: testEmail, Password: testPassword}
		if c.who != "owner" {
			id, err := cl.CreateUser(ctx, NewUser{DepartmentID: sales, Fields: Fields{FieldLogin: "head@acme.ru", FieldEmail: "head@acme.ru", FieldFirstName: "H", FieldLastName: "S"}})
			if err != nil {
				t.Fatal(err)
			}
			if c.who == "supervisor" {
				err = env.sim.SetSupervisor(testAccount, sales, id, false)
			} else {
				err = env.sim.SetRole(testAccount, id, c.who)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := env.sim.SetCaller(testAccount, id); err != nil {
				t.Fatal(err)
			}
			creds.Email = "head@acme.ru"
		}
		got, err := Check(ctx, creds, Options{BaseURL: env.srv.URL, AllowHTTP: true})
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case c.warn && got.Warning != CheckUnconfirmedAdmin:
			t.Errorf("%s: passed with warning %q, want %s", name, got.Warning, CheckUnconfirmedAdmin)
		case !c.warn && got.Warning != "":
			t.Errorf("%s: warning %q, want none", name, got.Warning)
		case got.APIURL != env.srv.URL:
			t.Errorf("%s: API at %q", name, got.APIURL)
		}
	}
}

package learn

import (
	"context"
	"errors"
	"slices"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// TestClientAgainstUnsettled runs the client against every choice learnsim
// offers where Learn's behaviour is not known (docs/learn-api.md, "Unsettled
// behaviour"): the client must work the same against each.
func TestClientAgainstUnsettled(t *testing.T) {
	t.Parallel()
	for _, v := range learnsim.Variants() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newSimEnv(t, learnsim.Options{Seed: 7, Unsettled: v.Unsettled}, learnsim.AccountOptions{
				ExtraFields: []string{"user_defined_field1"}, FieldTypes: map[string]string{"user_defined_field1": "birthdate"}})
			c := env.client(t, Credentials{})

			depts, err := c.ListDepartments(ctx)
			if err != nil || len(depts) != 1 || depts[0].ID != env.root || depts[0].ParentID != "" {
				t.Fatalf("list: %v %+v", err, depts)
			}
			if root, err := c.GetDepartment(ctx, env.root); err != nil || root.ID != env.root || root.ParentID != "" {
				t.Fatalf("get root: %v %+v", err, root)
			}
			id, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root, Code: "b24-m-2"})
			if err != nil {
				t.Fatal(err)
			}
			if d, err := c.GetDepartment(ctx, id); err != nil || d.ID != id || d.Name != "Sales" || d.ParentID != env.root || d.Code != "b24-m-2" {
				t.Fatalf("get: %v %+v", err, d)
			}
			// A code that contains the one looked up is not a match, however
			// Learn filters; a code used twice is refused or kept.
			if _, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales 20", ParentID: env.root, Code: "B24-M-20"}); err != nil {
				t.Fatal(err)
			}
			if found, err := c.FindDepartmentsByCode(ctx, "b24-m-2"); err != nil || len(found) != 1 || found[0].ID != id {
				t.Fatalf("find: %v %+v", err, found)
			}
			// A 400 may be about the code's form as well (docs/learn-api.md,
			// "Department codes"): the department is made without it.
			other, err := c.CreateDepartment(ctx, NewDepartment{Name: "Other", ParentID: env.root, Code: "b24-m-2"})
			if v.Unsettled.UniqueCodes == learnsim.ClashAllowed && err != nil ||
				v.Unsettled.UniqueCodes == learnsim.Clash400 && err != nil ||
				v.Unsettled.UniqueCodes == learnsim.Clash409 && !errors.Is(err, ErrDuplicate) {
				t.Errorf("a code used twice: %v", err)
			}
			if v.Unsettled.UniqueCodes == learnsim.Clash400 {
				if d, err := c.GetDepartment(ctx, other); err != nil || d.Code != "" {
					t.Errorf("a code used twice, refused with 400: %v %+v, want a department without a code", err, d)
				}
			}
			if err := c.UpdateDepartment(ctx, id, DepartmentUpdate{Name: "Sales EMEA"}); err != nil {
				t.Fatal(err)
			}
			sub, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sub", ParentID: env.root})
			if err != nil {
				t.Fatal(err)
			}

			defs, err := c.ProfileFields(ctx)
			if err != nil || !slices.Equal(requiredFields(defs), []string{FieldLogin, FieldFirstName, FieldLastName}) {
				t.Fatalf("profile fields: %v %+v", err, defs)
			}
			nu := NewUser{DepartmentID: id, Fields: Fields{FieldLogin: "ivan@acme.ru", FieldEmail: "ivan@acme.ru",
				FieldFirstName: "Иван", FieldLastName: "Петров"}}
			uid, err := c.CreateUser(ctx, nu)
			if err != nil {
				t.Fatal(err)
			}
			if u, err := c.GetUser(ctx, uid); err != nil || u.ID != uid || u.DepartmentID != id || u.Login() != "ivan@acme.ru" || u.Status != StatusActive {
				t.Fatalf("get user %s: %v %+v", uid, err, u)
			}
			// A password goes out only where Learn wants one; else the
			// account's invitation sets it.
			if st, err := env.sim.Snapshot(testAccount); err != nil {
				t.Fatal(err)
			} else if got, _ := st.UserByLogin("ivan@acme.ru"); got.HasPassword != v.Unsettled.PasswordRequired {
				t.Errorf("created with a password: %v, want %v", got.HasPassword, v.Unsettled.PasswordRequired)
			}
			// A duplicate is a refusal of that one user either way: 409
			// reads as ErrDuplicate, a 400 as the validation error it is.
			var ve *ValidationError
			if _, err := c.CreateUser(ctx, nu); v.Unsettled.Duplicate400 && !errors.As(err, &ve) || !v.Unsettled.Duplicate400 && !errors.Is(err, ErrDuplicate) {
				t.Errorf("duplicate: %v", err)
			}
			invite := nu
			invite.Fields = Fields{FieldLogin: "a@acme.ru", FieldFirstName: "A", FieldLastName: "B"}
			invite.SendLoginEmail = true
			if _, err := c.CreateUser(ctx, invite); !errors.As(err, &ve) {
				t.Errorf("sendLoginEmail without invitationMessage: %v", err)
			}
			if _, err := c.CreateUser(ctx, NewUser{DepartmentID: id, Fields: Fields{FieldLogin: "b@acme.ru", FieldFirstName: "B"}}); !errors.As(err, &ve) {
				t.Errorf("missing last_name: %v", err)
			}
			// A date goes out as YYYY-MM-DD (docs/learn-api.md, "Profile
			// fields"); an account that wants another form refuses it as a
			// validation error, which the run reports for that employee.
			born := nu
			born.Fields = Fields{FieldLogin: "d@acme.ru", FieldFirstName: "D", FieldLastName: "D", "user_defined_field1": "1990-05-01"}
			_, err = c.CreateUser(ctx, born)
			if v.Unsettled.DateFormat == learnsim.DateISO && err != nil {
				t.Errorf("birth date: %v", err)
			}
			if v.Unsettled.DateFormat != learnsim.DateISO && (!errors.As(err, &ve) || errors.Is(err, ErrDuplicate)) {
				t.Errorf("birth date in another format: %v, want a validation error", err)
			}
			// An unknown department in the body is a 400 or, not settled, a
			// 404: a refusal of that one user either way.
			_, err = c.CreateUser(ctx, NewUser{DepartmentID: "nope", Fields: Fields{FieldLogin: "c@acme.ru", FieldFirstName: "C", FieldLastName: "C"}})
			if v.Unsettled.UnknownRef404 && !errors.Is(err, ErrNotFound) || !v.Unsettled.UnknownRef404 && !errors.As(err, &ve) {
				t.Errorf("unknown department: %v", err)
			}

			if err := c.UpdateUser(ctx, uid, UserUpdate{Fields: Fields{FieldLogin: "ivan@acme.ru", FieldJobTitle: "Менеджер"}}); err != nil {
				t.Fatal(err)
			}
			// An address another user has is refused on update with 400 or,
			// not settled, 409: a refusal of that one user either way.
			petr := nu
			petr.Fields = Fields{FieldLogin: "petr@acme.ru", FieldEmail: "petr@acme.ru", FieldFirstName: "Пётр", FieldLastName: "Петров"}
			if _, err := c.CreateUser(ctx, petr); err != nil {
				t.Fatal(err)
			}
			err = c.UpdateUser(ctx, uid, UserUpdate{Fields: Fields{FieldLogin: "ivan@acme.ru", FieldEmail: "petr@acme.ru"}})
			if v.Unsettled.UpdateDuplicate409 && !errors.Is(err, ErrDuplicate) || !v.Unsettled.UpdateDuplicate409 && (!errors.As(err, &ve) || errors.Is(err, ErrDuplicate)) {
				t.Errorf("update to a taken e-mail: %v", err)
			}
			// A department's managers hold the Supervisor role Learn gives
			// them, however a read shows it: it is no right over others, and
			// credentials whose user manages a department are still an
			// account administrator's (docs/learn-api.md, "Roles").
			owner, err := c.FindUserByLogin(ctx, testEmail)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetDepartmentSubordination(ctx, sub, &Subordination{Type: SubordinationManual, SupervisorID: owner.ID},
				&Subordination{Type: SubordinationManual, SupervisorID: uid}, nil); err != nil {
				t.Fatal(err)
			}
			// A link left out of a request stays as it was, whatever Learn
			// does with an omitted one (docs/learn-api.md, "Unsettled behaviour").
			if err := c.SetDepartmentSubordination(ctx, sub, nil, &Subordination{Type: SubordinationManual, SupervisorID: uid}, nil); err != nil {
				t.Fatal(err)
			}
			if d, err := c.GetDepartment(ctx, sub); err != nil || !d.Subordination.Equal(Manual(owner.ID)) || !d.CoSubordination.Equal(Manual(uid)) {
				t.Errorf("after setting only the functional manager: %v %+v %+v, want the supervisor kept", err, d.Subordination, d.CoSubordination)
			}
			if u, err := c.GetUser(ctx, uid); err != nil || u.Administers() || u.Limited() {
				t.Errorf("a department's functional manager reads back: %v %+v, want one without rights over others", err, u)
			}
			if all, err := c.AllUsers(ctx, UserFilter{}); err != nil {
				t.Fatal(err)
			} else {
				for _, u := range all {
					if u.ID == uid && (u.Administers() || u.Limited()) ||
						u.ID == owner.ID && (!u.Administers() && !v.Unsettled.HidesRoles() || u.Limited() || u.OnlySupervises()) {
						t.Errorf("listed: %+v administers %v, limited %v", u, u.Administers(), u.Limited())
					}
				}
			}
			// The owner's rights show only where its role does.
			if warning, ce := c.checkRole(ctx, env.srv.URL); ce != nil {
				t.Errorf("check of credentials whose user is a department's supervisor: %v", ce)
			} else if (warning == CheckUnconfirmedAdmin) != v.Unsettled.HidesRoles() {
				t.Errorf("check of the owner's credentials: warning %q with roles hidden %v", warning, v.Unsettled.HidesRoles())
			}
			if err := c.SetUserStatus(ctx, uid, StatusTerminated); err != nil {
				t.Fatal(err)
			}
			if u, err := c.GetUser(ctx, uid); err != nil || u.Fields[FieldJobTitle] != "Менеджер" || u.Status != StatusTerminated {
				t.Fatalf("after update: %v %+v", err, u)
			}
			if err := c.SetUserStatus(ctx, uid, 2); !errors.As(err, &ve) {
				t.Errorf("status 2: %v", err)
			}
			if err := c.SetUserSubordination(ctx, uid, &Subordination{Type: SubordinationInherit}, Manual(owner.ID), nil); err != nil {
				t.Fatal(err)
			}
			if err := c.SetUserSubordination(ctx, uid, &Subordination{Type: SubordinationNoSupervisor}, nil, nil); err != nil {
				t.Fatal(err)
			}
			if u, err := c.GetUser(ctx, uid); err != nil || !u.Subordination.Equal(&Subordination{Type: SubordinationNoSupervisor}) ||
				!u.CoSubordination.Equal(Manual(owner.ID)) {
				t.Errorf("after setting only the supervisor: %v %+v %+v, want the functional manager kept", err, u.Subordination, u.CoSubordination)
			}

			// A department a department administrator manages (docs/learn-api.md,
			// "Deleting a department").
			managed, err := c.CreateDepartment(ctx, NewDepartment{Name: "Managed", ParentID: env.root})
			if err != nil {
				t.Fatal(err)
			}
			if err := env.sim.SetRole(testAccount, uid, "department_administrator"); err != nil {
				t.Fatal(err)
			}
			if err := env.sim.SetManaged(testAccount, uid, managed); err != nil {
				t.Fatal(err)
			}
			// Read as one with rights over others, wherever the variant shows
			// the role; a read that shows none reads as a learner's.
			if u, err := c.GetUser(ctx, uid); v.Unsettled.HidesRoles() && (err != nil || u.Administers() || u.Limited() || u.OnlySupervises()) ||
				!v.Unsettled.HidesRoles() && (err != nil || !u.Administers() || !slices.Contains(u.Manageable, managed)) {
				t.Fatalf("a user who manages a department reads back: %v %+v", err, u)
			}
			// An unknown ID is ErrNotFound on a 404, a validation error on a
			// 400 (the OAS lists no 404 there): a refusal either way.
			_, err = c.GetDepartment(ctx, "nope")
			if v.Unsettled.UnknownID400 && (!errors.As(err, &ve) || errors.Is(err, ErrNotFound)) || !v.Unsettled.UnknownID400 && !errors.Is(err, ErrNotFound) {
				t.Errorf("unknown department: %v", err)
			}
			if err := c.SetUserStatus(ctx, "nope", StatusInactive); v.Unsettled.UnknownID400 && !errors.As(err, &ve) || !v.Unsettled.UnknownID400 && !errors.Is(err, ErrNotFound) {
				t.Errorf("status of an unknown user: %v", err)
			}
			bad := env.client(t, Credentials{AccountURL: testAccount, Email: testEmail, Password: "wrong"})
			if _, err := bad.ListDepartments(ctx); !errors.Is(err, ErrBadCredentials) {
				t.Errorf("bad credentials: %v", err)
			}
		})
	}
}

// requiredFields returns the names of the fields Learn requires on create (country
// excepted, per the docs).
func requiredFields(defs []FieldInfo) []string {
	var out []string
	for _, d := range defs {
		if d.Required && d.Type != FieldCountry {
			out = append(out, d.Name)
		}
	}
	return out
}

// TestSubordinationKeepsALeaversLink: a link a request leaves out is sent
// back as read; when it names a manager who has left since, whom Learn
// keeps there but takes from no request, the request goes once more without
// it, and both links end as asked.
func TestSubordinationKeepsALeaversLink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newSimEnv(t, learnsim.Options{Seed: 3}, learnsim.AccountOptions{})
	c := env.client(t, Credentials{})
	dept, err := c.CreateDepartment(ctx, NewDepartment{Name: "Sales", ParentID: env.root})
	if err != nil {
		t.Fatal(err)
	}
	left, err := c.CreateUser(ctx, NewUser{DepartmentID: dept, Fields: Fields{FieldLogin: "left@acme.ru", FieldFirstName: "L", FieldLastName: "L"}})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := c.FindUserByLogin(ctx, testEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDepartmentSubordination(ctx, dept, Manual(left), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserSubordination(ctx, owner.ID, &Subordination{Type: SubordinationInherit}, Manual(left), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUserStatus(ctx, left, StatusInactive); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDepartmentSubordination(ctx, dept, nil, Manual(owner.ID), nil); err != nil {
		t.Fatalf("set the functional manager beside a supervisor who left: %v", err)
	}
	if d, err := c.GetDepartment(ctx, dept); err != nil || !d.Subordination.Equal(Manual(left)) || !d.CoSubordination.Equal(Manual(owner.ID)) {
		t.Errorf("department: %v %+v %+v", err, d.Subordination, d.CoSubordination)
	}
	if n := env.sim.Counts(testAccount).ByRoute["POST /department/{id}/subordination"]; n != 3 {
		t.Errorf("%d department subordination requests, want 3 (one, then the refused one with the leaver and its repeat)", n)
	}
	if err := c.SetUserSubordination(ctx, owner.ID, &Subordination{Type: SubordinationNoSupervisor}, nil, nil); err != nil {
		t.Fatalf("set the supervisor beside a functional manager who left: %v", err)
	}
	if u, err := c.GetUser(ctx, owner.ID); err != nil || u.Subordination.Type != SubordinationNoSupervisor || !u.CoSubordination.Equal(Manual(left)) {
		t.Errorf("user: %v %+v %+v", err, u.Subordination, u.CoSubordination)
	}
}

package learnsim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Subordination as stored: Type is manual, inherit or no_supervisor.
type Subordination struct {
	Type         string
	SupervisorID string
}

// Department in a Snapshot.
type Department struct {
	ID, Name, ParentID, Code string
	Subordination            Subordination
	CoSubordination          Subordination
}

// User in a Snapshot. Fields are keyed by lowercase name.
type User struct {
	ID, DepartmentID string
	Status           int // 1, 3 or 5 (as stored, not as v1 reads show it)
	Role             string
	Fields           map[string]string
	Subordination    Subordination
	CoSubordination  Subordination
	Added            time.Time
	LoginEmails      int  // sign-in e-mails the account would have sent
	HasPassword      bool // a password was set on create (the password itself stays inside)
	// ManagedDepartments are the user's manageableDepartmentIds, sorted.
	ManagedDepartments []string
}

// State is a copy of one account's data, in creation order.
type State struct {
	AccountURL  string
	RootID      string
	OwnerID     string // the account owner, a user in the root created with the account
	Departments []Department
	Users       []User
}

// Department returns the department with id.
func (st State) Department(id string) (Department, bool) {
	for _, d := range st.Departments {
		if d.ID == id {
			return d, true
		}
	}
	return Department{}, false
}

// DepartmentsByCode returns the departments with the given code.
func (st State) DepartmentsByCode(code string) []Department {
	var out []Department
	for _, d := range st.Departments {
		if d.Code == code {
			out = append(out, d)
		}
	}
	return out
}

// UserByLogin returns the user with the login (case-insensitive).
func (st State) UserByLogin(login string) (User, bool) {
	for _, u := range st.Users {
		if strings.EqualFold(u.Fields["login"], login) {
			return u, true
		}
	}
	return User{}, false
}

// Snapshot copies the state of the account at accountURL.
func (s *Sim) Snapshot(accountURL string) (State, error) {
	a := s.account(accountURL)
	if a == nil {
		return State{}, fmt.Errorf("snapshot: no account %s", accountURL)
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	st := State{AccountURL: a.opts.URL, RootID: a.rootID, OwnerID: a.ownerID,
		Departments: make([]Department, 0, len(a.depts)), Users: make([]User, 0, len(a.users))}
	for _, id := range a.deptOrder {
		if d := a.depts[id]; d != nil {
			st.Departments = append(st.Departments, Department{ID: d.ID, Name: d.Name, ParentID: d.ParentID, Code: d.Code,
				Subordination: Subordination(d.Sub), CoSubordination: Subordination(d.CoSub)})
		}
	}
	for _, id := range a.userOrder {
		if u := a.users[id]; u != nil {
			st.Users = append(st.Users, User{ID: u.ID, DepartmentID: u.DeptID, Status: u.Status, Role: u.Role,
				Fields: maps.Clone(u.Fields), Subordination: Subordination(u.Sub), CoSubordination: Subordination(u.CoSub),
				Added: u.Added, LoginEmails: u.LoginEmails, HasPassword: u.Password != "",
				ManagedDepartments: slices.Clone(u.Manages)})
		}
	}
	return st, nil
}

// SeedDepartment creates a department directly (no call counted), with the API's
// rules, for tests that need a pre-existing Learn tree.
func (s *Sim) SeedDepartment(accountURL, name, parentID, code string) (string, error) {
	var id string
	err := s.edit("seed department", accountURL, func(a *account) error {
		d, err := a.createDept(name, parentID, code)
		if err != nil {
			return err
		}
		id = d.ID
		return nil
	})
	return id, err
}

// SeedUser creates a user directly (no call counted), with the API's rules, and
// sets its status; fields use lowercase names.
func (s *Sim) SeedUser(accountURL, departmentID string, fields map[string]string, status int) (string, error) {
	var id string
	err := s.edit("seed user", accountURL, func(a *account) error {
		u, err := a.createUser(newUserReq{DeptID: departmentID, Fields: maps.Clone(fields),
			CaseSensitive: s.opts.Unsettled.CaseSensitiveUnique})
		if err != nil {
			return err
		}
		if status != 0 && status != u.Status {
			if err := a.setStatus([]string{u.ID}, status, s.opts.Unsettled); err != nil {
				return fmt.Errorf("status: %w", err)
			}
			u.LoginEmails = 0
		}
		id = u.ID
		return nil
	})
	return id, err
}

// SetRole gives a user a role, as an administrator does in Learn's own
// pages (no call counted): one of the roles the API names.
func (s *Sim) SetRole(accountURL, userID, role string) error {
	return s.edit("set role", accountURL, func(a *account) error {
		u := a.users[userID]
		if u == nil {
			return fmt.Errorf("no user %s", userID)
		}
		if !roles[role] {
			return fmt.Errorf("unknown role %q", role)
		}
		u.Role = role
		u.Manages = keptManaged(role, u.Manages) // a role that manages none drops them
		return nil
	})
}

// SetManaged makes a user with a role that manages departments (a
// department administrator, publisher or custom role; see SetRole) manage
// deptIDs, replacing the ones it had, as an administrator does in Learn's
// own pages (no call counted). Learn refuses to delete a managed department.
func (s *Sim) SetManaged(accountURL, userID string, deptIDs ...string) error {
	return s.edit("set managed", accountURL, func(a *account) error {
		u := a.users[userID]
		if u == nil {
			return fmt.Errorf("no user %s", userID)
		}
		if !managesDepts(u.Role) {
			return fmt.Errorf("role %q manages no departments", u.Role)
		}
		if err := a.checkManaged(u.Role, deptIDs); err != nil {
			return err
		}
		u.Manages = keptManaged(u.Role, deptIDs)
		return nil
	})
}

// SetSupervisor names an active user as a department's supervisor (or,
// functional, its functional manager), as an administrator does in Learn's
// own pages (no call counted).
func (s *Sim) SetSupervisor(accountURL, deptID, userID string, functional bool) error {
	return s.edit("set supervisor", accountURL, func(a *account) error {
		d := a.depts[deptID]
		if d == nil {
			return fmt.Errorf("no department %s", deptID)
		}
		link := sub{Type: "manual", SupervisorID: userID}
		if err := a.checkSub(&link, ""); err != nil {
			return fmt.Errorf("%s", err.msg)
		}
		if functional {
			d.CoSub = link
		} else {
			d.Sub = link
		}
		delete(a.deptAdminLinks, linkKey("department", deptID, functional)) // an administrator's now
		return nil
	})
}

// DeleteUser deletes a user, as an administrator does in Learn's own
// pages (no call counted).
func (s *Sim) DeleteUser(accountURL, userID string) error {
	return s.edit("delete user", accountURL, func(a *account) error {
		if err := a.deleteUser(userID, s.opts.Unsettled); err != nil {
			return fmt.Errorf("%s", err.msg)
		}
		s.opts.Unsettled.leaverLinks(a, userID)
		return nil
	})
}

// Accounts lists the account URLs in the order they were added.
func (s *Sim) Accounts() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.accounts[k].opts.URL)
	}
	return out
}

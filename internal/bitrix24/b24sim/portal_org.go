package b24sim

// The portal's org as tests read and change it: departments, users and user fields.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Departments and Users return copies of the portal's data.
func (p *Portal) Departments() []Department {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	out := make([]Department, 0, len(p.depts))
	for _, d := range p.depts {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Department) int { return int(a.ID - b.ID) })
	return out
}

func (p *Portal) Users() []User {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	out := make([]User, 0, len(p.users))
	for _, u := range p.users {
		c := *u
		c.Departments = slices.Clone(u.Departments)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b User) int { return int(a.ID - b.ID) })
	return out
}

// RenameDepartment, MoveDepartment and SetHead change a department.
func (p *Portal) RenameDepartment(id int64, name string) error {
	return p.withDept(id, func(d *Department) { d.Name = name })
}

func (p *Portal) MoveDepartment(id, parent int64) error {
	p.sim.mu.Lock()
	_, ok := p.depts[parent]
	p.sim.mu.Unlock()
	if !ok {
		return fmt.Errorf("no department %d", parent)
	}
	return p.withDept(id, func(d *Department) { d.Parent = parent })
}

func (p *Portal) SetHead(id, userID int64) error {
	return p.withDept(id, func(d *Department) { d.Head = userID })
}

// RemoveDepartment deletes a department, as an administrator does in
// Bitrix24. It must have no subdepartments and no users (tests move them out
// first; what Bitrix24 does with them is not modelled).
func (p *Portal) RemoveDepartment(id int64) error {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if _, ok := p.depts[id]; !ok {
		return fmt.Errorf("no department %d", id)
	}
	for _, d := range p.depts {
		if d.Parent == id {
			return fmt.Errorf("department %d has subdepartment %d", id, d.ID)
		}
	}
	for _, u := range p.users {
		if slices.Contains(u.Departments, id) {
			return fmt.Errorf("department %d has user %d", id, u.ID)
		}
	}
	delete(p.depts, id)
	p.deptsChanged()
	return nil
}

// withDept changes department id; any change may move it in the tree
// order (its parent, SORT) and a rename or a new head shows in its row
// anyway, so every change drops the cached order.
func (p *Portal) withDept(id int64, f func(*Department)) error {
	return withEntry(p, p.depts, id, "department", func(d *Department) {
		f(d)
		p.deptsChanged()
	})
}

// withEntry applies f to entry id of table under the simulator's lock.
func withEntry[T any](p *Portal, table map[int64]*T, id int64, what string, f func(*T)) error {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	e, ok := table[id]
	if !ok {
		return fmt.Errorf("no %s %d", what, id)
	}
	f(e)
	return nil
}

// AddUserField adds a custom user field; its name gets the UF_USR_ prefix
// when it lacks it, as user.userfield.add does. It returns the full name.
func (p *Portal) AddUserField(f UserField) string {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if !strings.HasPrefix(f.FieldName, "UF_USR_") {
		f.FieldName = "UF_USR_" + strings.TrimPrefix(f.FieldName, "UF_")
	}
	f.ID = int64(100 + len(p.userFields))
	p.userFields = append(p.userFields, f)
	return f.FieldName
}

// AddDepartment adds a department and returns its ID.
func (p *Portal) AddDepartment(name string, parent, head int64) int64 {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	p.nextDID++
	p.depts[p.nextDID] = &Department{ID: p.nextDID, Name: name, Parent: parent, Head: head, Sort: 500}
	p.deptsChanged()
	return p.nextDID
}

// FireUser, RehireUser and MoveUser change a user.
func (p *Portal) FireUser(id int64) error { return p.withUser(id, func(u *User) { u.Active = false }) }

func (p *Portal) RehireUser(id int64) error { return p.withUser(id, func(u *User) { u.Active = true }) }

func (p *Portal) MoveUser(id int64, depts ...int64) error {
	return p.withUser(id, func(u *User) { u.Departments = slices.Clone(depts); u.Extranet = len(depts) == 0 })
}

// InviteUser adds u as invited to the portal and not accepted yet: active,
// never signed in (docs/bitrix24-api.md, "Invited users"). It returns the ID.
func (p *Portal) InviteUser(u User) int64 {
	u.Active, u.Invited, u.LastLogin = true, true, time.Time{}
	return p.AddUser(u)
}

// Reinvite sends an existing user an invitation again: their row stays as
// it is (a user who signed in before keeps LAST_LOGIN) and gets a code.
func (p *Portal) Reinvite(id int64) error {
	return p.withUser(id, func(u *User) { u.Invited = true })
}

// AcceptInvitation is the invited user joining: the code is cleared and
// they have signed in.
func (p *Portal) AcceptInvitation(id int64) error {
	return p.withUser(id, func(u *User) {
		u.Invited = false
		u.LastLogin = time.Now().UTC().Truncate(time.Second)
	})
}

// UpdateUser applies f to a copy-free pointer under the lock.
func (p *Portal) UpdateUser(id int64, f func(*User)) error { return p.withUser(id, f) }

func (p *Portal) withUser(id int64, f func(*User)) error {
	return withEntry(p, p.users, id, "user", f)
}

// AddUser adds a user (ID assigned when 0) and returns the ID.
func (p *Portal) AddUser(u User) int64 {
	p.sim.mu.Lock()
	defer p.sim.mu.Unlock()
	if u.ID == 0 {
		p.nextUID++
		u.ID = p.nextUID
	}
	p.nextUID = max(p.nextUID, u.ID)
	if u.DateRegister.IsZero() {
		u.DateRegister = time.Now().UTC().Truncate(time.Second)
	}
	u.Departments = slices.Clone(u.Departments)
	p.users[u.ID] = &u
	return u.ID
}

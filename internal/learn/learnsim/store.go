package learnsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// apiErr is a refusal with its HTTP status and message (the ErrorResponse body).
type apiErr struct {
	status int
	msg    string
}

func (e *apiErr) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errf(status int, format string, args ...any) *apiErr {
	return &apiErr{status: status, msg: fmt.Sprintf(format, args...)}
}

// sub is a stored subordination.
type sub struct {
	Type         string
	SupervisorID string
}

type dept struct {
	ID, Name, ParentID, Code string
	Sub, CoSub               sub
}

type user struct {
	ID, DeptID  string
	Status      int
	Role        string
	Fields      map[string]string
	Sub, CoSub  sub
	Added       time.Time
	LoginEmails int // sign-in e-mails sent (create with sendLoginEmail, activation)
	Password    string
}

// fieldDef is a profile field definition.
type fieldDef struct {
	ID, Name, Label, Type string
	Unique, Required      bool
	Order                 int
}

// account is one Learn account's state. All access holds mu.
type account struct {
	mu   sync.RWMutex
	opts AccountOptions
	key  string
	rng  *rand.Rand
	now  func() time.Time

	rootID, ownerID string

	depts      map[string]*dept
	deptOrder  []string // creation order; deleted IDs stay (tombstones) so page tokens remain valid
	deptPos    map[string]int
	childCount map[string]int
	deptUsers  map[string]int

	users     map[string]*user
	userOrder []string
	userPos   map[string]int
	byLogin   map[string]string // lowercase login → id
	byEmail   map[string]string // lowercase email → id
	active    int

	fields      []fieldDef
	fieldByName map[string]*fieldDef

	cnt  counters
	sent sentLog
}

var defaultFieldDefs = []fieldDef{
	{Name: "login", Label: "Login", Type: "login", Unique: true, Required: true},
	{Name: "email", Label: "Email", Type: "email", Unique: true},
	{Name: "first_name", Label: "First Name", Type: "first_name", Required: true},
	{Name: "last_name", Label: "Last Name", Type: "last_name", Required: true},
	{Name: "job_title", Label: "Job Title", Type: "job_title"},
	{Name: "phone", Label: "Phone", Type: "phone"},
	{Name: "country", Label: "Country", Type: "country"},
}

func newAccount(key string, o AccountOptions, seed uint64, now func() time.Time) *account {
	a := &account{
		opts: o, key: key, now: now,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		depts: map[string]*dept{}, deptPos: map[string]int{}, childCount: map[string]int{}, deptUsers: map[string]int{},
		users: map[string]*user{}, userPos: map[string]int{}, byLogin: map[string]string{}, byEmail: map[string]string{},
		fieldByName: map[string]*fieldDef{},
	}
	defs := slices.Clone(defaultFieldDefs)
	for _, name := range o.ExtraFields {
		defs = append(defs, fieldDef{Name: strings.ToLower(name), Label: name, Type: "string"})
	}
	if o.RequiredFields != nil {
		req := map[string]bool{"login": true}
		for _, n := range o.RequiredFields {
			req[strings.ToLower(n)] = true
		}
		for i := range defs {
			defs[i].Required = req[defs[i].Name]
		}
	}
	for i := range defs {
		if t, ok := o.FieldTypes[defs[i].Name]; ok {
			defs[i].Type = t
		}
		defs[i].ID = a.newID()
		defs[i].Order = i + 1
	}
	a.fields = defs
	for i := range a.fields {
		a.fieldByName[a.fields[i].Name] = &a.fields[i]
	}
	root := &dept{ID: a.newID(), Name: o.RootName, Sub: sub{Type: "no_supervisor"}, CoSub: sub{Type: "no_supervisor"}}
	a.rootID = root.ID
	a.putDept(root)
	owner := &user{ID: a.newID(), DeptID: root.ID, Status: 1, Role: "administrator", Added: now(),
		Fields: map[string]string{"login": o.Email, "first_name": "Account", "last_name": "Owner"},
		Sub:    sub{Type: "inherit"}, CoSub: sub{Type: "inherit"}}
	if strings.Contains(o.Email, "@") {
		owner.Fields["email"] = o.Email
	}
	a.ownerID = owner.ID
	a.putUser(owner)
	return a
}

// newID returns a v1-style UUID (time-based look, random content, deterministic per seed).
func (a *account) newID() string {
	hi, lo := a.rng.Uint64(), a.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-11e9-%04x-%012x", uint32(hi>>32), uint16(hi>>16), uint16(lo>>48)&0x3fff|0x8000, lo&0xffffffffffff)
}

func (a *account) putDept(d *dept) {
	a.depts[d.ID] = d
	a.deptPos[d.ID] = len(a.deptOrder)
	a.deptOrder = append(a.deptOrder, d.ID)
	if d.ParentID != "" {
		a.childCount[d.ParentID]++
	}
}

func (a *account) putUser(u *user) {
	a.users[u.ID] = u
	a.userPos[u.ID] = len(a.userOrder)
	a.userOrder = append(a.userOrder, u.ID)
	a.deptUsers[u.DeptID]++
	if l := strings.ToLower(u.Fields["login"]); l != "" {
		a.byLogin[l] = u.ID
	}
	if e := strings.ToLower(u.Fields["email"]); e != "" {
		a.byEmail[e] = u.ID
	}
	if u.Status == 1 {
		a.active++
	}
}

// --- departments ---

func (a *account) createDept(name, parentID, code string) (*dept, *apiErr) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, errf(400, "Parameter name is required")
	case len(name) > 255:
		return nil, errf(400, "Parameter name is too long")
	case parentID == "":
		return nil, errf(400, "Parameter parentDepartmentId is required")
	case a.depts[parentID] == nil:
		return nil, errf(400, "Department %s not found", parentID)
	}
	d := &dept{ID: a.newID(), Name: name, ParentID: parentID, Code: code,
		Sub: sub{Type: "inherit"}, CoSub: sub{Type: "inherit"}}
	a.putDept(d)
	return d, nil
}

func (a *account) updateDept(id string, name, parentID, code *string) *apiErr {
	d := a.depts[id]
	if d == nil {
		return errf(404, "Department %s not found", id)
	}
	if name != nil {
		n := strings.TrimSpace(*name)
		if n == "" {
			return errf(400, "Parameter name must not be empty")
		}
		d.Name = n
	}
	if code != nil {
		d.Code = *code
	}
	if parentID != nil && *parentID != d.ParentID {
		if err := a.moveDept(d, *parentID); err != nil {
			return err
		}
	}
	return nil
}

func (a *account) moveDept(d *dept, parentID string) *apiErr {
	if d.ID == a.rootID {
		return errf(400, "The root department cannot be moved")
	}
	if a.depts[parentID] == nil {
		return errf(404, "Department %s not found", parentID)
	}
	for p := parentID; p != ""; p = a.depts[p].ParentID {
		if p == d.ID {
			return errf(400, "Department %s cannot be moved into its own subdepartment", d.ID)
		}
	}
	a.childCount[d.ParentID]--
	d.ParentID = parentID
	a.childCount[parentID]++
	return nil
}

func (a *account) deleteDept(id string) *apiErr {
	d := a.depts[id]
	switch {
	case d == nil:
		return errf(404, "Department %s not found", id)
	case id == a.rootID:
		return errf(400, "The root department cannot be deleted")
	case a.deptUsers[id] > 0:
		return errf(400, "The department contains users and cannot be deleted")
	case a.childCount[id] > 0:
		return errf(400, "The department contains subdepartments and cannot be deleted")
	}
	delete(a.depts, id)
	a.childCount[d.ParentID]--
	delete(a.childCount, id)
	delete(a.deptUsers, id)
	return nil
}

func (a *account) checkSub(s *sub, selfUserID string) *apiErr {
	switch s.Type {
	case "manual":
		if s.SupervisorID == "" {
			return errf(400, "Parameter supervisorId is required for manual subordination")
		}
		sup := a.users[s.SupervisorID]
		if sup == nil {
			return errf(400, "Supervisor %s not found", s.SupervisorID)
		}
		if s.SupervisorID == selfUserID {
			return errf(400, "A user cannot be their own supervisor")
		}
		if sup.Status != 1 {
			// The docs: administrators "can assign any active user".
			return errf(400, "Supervisor %s is not an active user", s.SupervisorID)
		}
	case "inherit", "no_supervisor":
		s.SupervisorID = ""
	default:
		return errf(400, "Invalid subordinationType %q", s.Type)
	}
	return nil
}

func (a *account) setDeptSub(id string, s, co *sub) *apiErr {
	d := a.depts[id]
	if d == nil {
		return errf(404, "Department %s not found", id)
	}
	if s == nil && co == nil {
		return errf(400, "Parameter subordination or coSubordination is required")
	}
	for _, x := range []*sub{s, co} {
		if x != nil {
			if err := a.checkSub(x, ""); err != nil {
				return err
			}
		}
	}
	if s != nil {
		d.Sub = *s
	}
	if co != nil {
		d.CoSub = *co
	}
	return nil
}

// --- users ---

var roles = map[string]bool{
	"learner": true, "administrator": true, "department_administrator": true, "publisher": true, "custom": true,
	// EU docs' names, tolerated (docs/learn-api.md, "Roles")
	"learners": true, "account_administrators": true, "department_administrators": true, "course_authors": true, "supervisor": true,
}

// checkFields validates names, types (dates in format dates) and uniqueness of fields written to user id ("" on create).
func (a *account) checkFields(id string, f map[string]string, create bool, dates DateFormat) *apiErr {
	for name, v := range f {
		def := a.fieldByName[name]
		if def == nil {
			return errf(400, "Unknown profile field %s", name)
		}
		if def.Required && def.Type != "country" && strings.TrimSpace(v) == "" {
			return errf(400, "Field %s is required", name)
		}
		if err := checkType(def, v, dates); err != nil {
			return err
		}
	}
	if create {
		for _, def := range a.fields {
			if def.Required && def.Type != "country" && strings.TrimSpace(f[def.Name]) == "" {
				return errf(400, "Field %s is required", def.Name)
			}
		}
	}
	for _, k := range []struct {
		name  string
		index map[string]string
	}{{"login", a.byLogin}, {"email", a.byEmail}} {
		v := strings.ToLower(strings.TrimSpace(f[k.name]))
		if v == "" {
			continue
		}
		if other, ok := k.index[v]; ok && other != id {
			if create {
				return errf(409, "User with the same %s is already registered", k.name)
			}
			return errf(400, "Invalid value %s. Field %s must be unique.", f[k.name], k.name)
		}
	}
	return nil
}

type newUserReq struct {
	DeptID            string
	Fields            map[string]string
	Password          string
	Role              string
	SendLoginEmail    bool
	InvitationMessage string
	Dates             DateFormat // the form date fields take
}

func (a *account) createUser(r newUserReq) (*user, *apiErr) {
	if r.DeptID == "" {
		return nil, errf(400, "Parameter departmentId is required")
	}
	if a.depts[r.DeptID] == nil {
		return nil, errf(400, "Department %s not found", r.DeptID)
	}
	if r.Fields == nil || strings.TrimSpace(r.Fields["login"]) == "" {
		return nil, errf(400, "Field login is required")
	}
	if err := a.checkFields("", r.Fields, true, r.Dates); err != nil {
		return nil, err
	}
	if r.Role == "" {
		r.Role = "learner"
	}
	if !roles[r.Role] {
		return nil, errf(400, "Invalid role %q", r.Role)
	}
	if r.SendLoginEmail && strings.TrimSpace(r.InvitationMessage) == "" {
		return nil, errf(400, "Parameter invitationMessage is required when sendLoginEmail is true")
	}
	u := &user{ID: a.newID(), DeptID: r.DeptID, Status: 1, Role: r.Role, Fields: r.Fields, Password: r.Password,
		Added: a.now(), Sub: sub{Type: "inherit"}, CoSub: sub{Type: "inherit"}}
	for k, v := range u.Fields {
		u.Fields[k] = strings.TrimSpace(v)
	}
	if a.opts.MaxActiveUsers > 0 && a.active >= a.opts.MaxActiveUsers {
		u.Status = 3 // plan limit: new users become inactive
	}
	if r.SendLoginEmail {
		u.LoginEmails++
	}
	a.putUser(u)
	return u, nil
}

// updateUser applies a user update; un.RefuseEmptyUpdate refuses an empty
// value of an optional field instead of clearing it, un.DateFormat is the
// form date fields take.
func (a *account) updateUser(id string, deptID *string, fields map[string]string, role *string, un Unsettled) *apiErr {
	u := a.users[id]
	if u == nil {
		return errf(404, "User %s not found", id)
	}
	if deptID != nil && *deptID != "" && a.depts[*deptID] == nil {
		return errf(400, "Department %s not found", *deptID)
	}
	if len(fields) > 0 && strings.TrimSpace(fields["login"]) == "" {
		// The docs list login as "required (as part of fields)" on update.
		return errf(400, "Field login is required")
	}
	if err := a.checkFields(id, fields, false, un.DateFormat); err != nil {
		return err
	}
	if un.RefuseEmptyUpdate {
		for name, v := range fields {
			if strings.TrimSpace(v) == "" {
				return errf(400, "Field %s must not be empty", name)
			}
		}
	}
	if role != nil && *role != "" {
		if !roles[*role] {
			return errf(400, "Invalid role %q", *role)
		}
		if id == a.ownerID && *role != u.Role {
			return errf(400, "The account owner's role cannot be changed")
		}
		u.Role = *role
	}
	for k, v := range fields {
		v = strings.TrimSpace(v)
		old := strings.ToLower(u.Fields[k])
		switch k {
		case "login":
			delete(a.byLogin, old)
			if v != "" {
				a.byLogin[strings.ToLower(v)] = id
			}
		case "email":
			delete(a.byEmail, old)
			if v != "" {
				a.byEmail[strings.ToLower(v)] = id
			}
		}
		u.Fields[k] = v
	}
	if deptID != nil && *deptID != "" && *deptID != u.DeptID {
		a.deptUsers[u.DeptID]--
		u.DeptID = *deptID
		a.deptUsers[u.DeptID]++
	}
	return nil
}

// checkMove validates a move into department to before anything changes:
// the department, the list (param names it in the refusal), and each of its
// IDs (kind names them).
func (a *account) checkMove(to, param, kind string, ids []string, exists func(id string) bool) *apiErr {
	if a.depts[to] == nil {
		return errf(404, "Department %s not found", to)
	}
	if len(ids) == 0 {
		return errf(400, "Parameter %s is required", param)
	}
	for _, id := range ids {
		if !exists(id) {
			return errf(404, "%s %s not found", kind, id)
		}
	}
	return nil
}

func (a *account) moveUsers(deptID string, ids []string) *apiErr {
	if err := a.checkMove(deptID, "userIds", "User", ids, func(id string) bool { return a.users[id] != nil }); err != nil {
		return err
	}
	for _, id := range ids {
		u := a.users[id]
		a.deptUsers[u.DeptID]--
		u.DeptID = deptID
		a.deptUsers[deptID]++
	}
	return nil
}

func (a *account) moveDepts(parentID string, ids []string) *apiErr {
	if err := a.checkMove(parentID, "departmentIds", "Department", ids, func(id string) bool { return a.depts[id] != nil }); err != nil {
		return err
	}
	for _, id := range ids {
		if err := a.moveDept(a.depts[id], parentID); err != nil {
			return err
		}
	}
	return nil
}

// setStatus validates all first so a bulk call is all-or-nothing.
func (a *account) setStatus(ids []string, status int) *apiErr {
	if status != 1 && status != 3 && status != 5 {
		return errf(400, "Invalid status %d", status)
	}
	if len(ids) == 0 {
		return errf(400, "Parameter userIds is required")
	}
	activating := 0
	for _, id := range ids {
		u := a.users[id]
		if u == nil {
			return errf(404, "User %s not found", id)
		}
		if id == a.ownerID && status != 1 {
			return errf(400, "The account owner cannot be deactivated")
		}
		if status == 1 && u.Status != 1 {
			activating++
		}
	}
	limited := status == 1 && a.opts.MaxActiveUsers > 0 && a.active+activating > a.opts.MaxActiveUsers
	if limited && !a.opts.SilentPlanLimit {
		return errf(400, "The number of active users exceeds the limit of your plan")
	}
	for _, id := range ids {
		u := a.users[id]
		if u.Status == status {
			continue
		}
		if limited && a.active >= a.opts.MaxActiveUsers {
			continue // silently left inactive
		}
		if u.Status == 1 {
			a.active--
		}
		if status == 1 {
			a.active++
			u.LoginEmails++ // activation via API e-mails the sign-in details
		}
		u.Status = status
	}
	return nil
}

func (a *account) setUserSub(id string, s, co *sub) *apiErr {
	u := a.users[id]
	if u == nil {
		return errf(404, "User %s not found", id)
	}
	if s == nil {
		return errf(400, "Parameter subordination is required")
	}
	for _, x := range []*sub{s, co} {
		if x != nil {
			if err := a.checkSub(x, id); err != nil {
				return err
			}
		}
	}
	u.Sub = *s
	if co != nil {
		u.CoSub = *co
	}
	return nil
}

func (a *account) deleteUser(id string) *apiErr {
	u := a.users[id]
	if u == nil {
		return errf(404, "User %s not found", id)
	}
	if id == a.ownerID {
		return errf(400, "The account owner cannot be deleted")
	}
	delete(a.users, id)
	delete(a.byLogin, strings.ToLower(u.Fields["login"]))
	delete(a.byEmail, strings.ToLower(u.Fields["email"]))
	a.deptUsers[u.DeptID]--
	if u.Status == 1 {
		a.active--
	}
	return nil
}

// userQuery filters user lists.
type userQuery struct {
	depts, logins, emails, ids []string
}

func (q userQuery) indexed() bool { return len(q.logins)+len(q.emails)+len(q.ids) > 0 }

// matchUsers returns the IDs matching q in creation order, starting at position
// from, at most limit of them (limit <= 0: all), and the ID of the next match.
func (a *account) matchUsers(q userQuery, from, limit int) (ids []string, next string) {
	deptOK := func(u *user) bool { return len(q.depts) == 0 || slices.Contains(q.depts, u.DeptID) }
	var candidates []string
	if q.indexed() {
		// Use the indexes, not a scan: each filter kind narrows the set.
		set := map[string]int{}
		kinds := 0
		add := func(vals []string, look func(string) string) {
			if len(vals) == 0 {
				return
			}
			kinds++
			seen := map[string]bool{}
			for _, v := range vals {
				if id := look(v); id != "" && !seen[id] {
					seen[id] = true
					set[id]++
				}
			}
		}
		add(q.logins, func(v string) string { return a.byLogin[strings.ToLower(v)] })
		add(q.emails, func(v string) string { return a.byEmail[strings.ToLower(v)] })
		add(q.ids, func(v string) string {
			if a.users[v] != nil {
				return v
			}
			return ""
		})
		for id, n := range set {
			if n == kinds && a.userPos[id] >= from {
				candidates = append(candidates, id)
			}
		}
		slices.SortFunc(candidates, func(x, y string) int { return a.userPos[x] - a.userPos[y] })
		for i, id := range candidates {
			if !deptOK(a.users[id]) {
				continue
			}
			if limit > 0 && len(ids) == limit {
				for _, rest := range candidates[i:] {
					if deptOK(a.users[rest]) {
						return ids, rest
					}
				}
				return ids, ""
			}
			ids = append(ids, id)
		}
		return ids, ""
	}
	for _, id := range a.userOrder[min(from, len(a.userOrder)):] {
		u := a.users[id]
		if u == nil || !deptOK(u) {
			continue
		}
		if limit > 0 && len(ids) == limit {
			return ids, id
		}
		ids = append(ids, id)
	}
	return ids, ""
}

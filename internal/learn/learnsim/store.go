package learnsim

import (
	"cmp"
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
	// ref: the refusal is of an unknown department a request's body names
	// (Unsettled.UnknownRef404).
	ref bool
	// taken: the refusal is of a user update's login or e-mail that
	// another user has (Unsettled.UpdateDuplicate409).
	taken bool
}

// unknownDept refuses an unknown department a request's body names: 400
// by default, 404 under Unsettled.UnknownRef404.
func unknownDept(id string) *apiErr {
	e := errf(400, "Department %s not found", id)
	e.ref = true
	return e
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
	Manages     []string // manageableDepartmentIds; only a role that managesDepts keeps any
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
	// callerID is the user whose credentials the requests carry (SetCaller); "" is the owner.
	callerID string
	// deptAdminLinks holds the links (linkKey) a department administrator
	// set; any other manual link an administrator set (see guardLinks).
	deptAdminLinks map[string]bool

	depts      map[string]*dept
	deptOrder  []string // creation order; deleted IDs stay (tombstones) so page tokens remain valid
	deptPos    map[string]int
	childCount map[string]int
	deptUsers  map[string]int

	users     map[string]*user
	userOrder []string
	userPos   map[string]int
	byLogin   addrIndex
	byEmail   addrIndex
	active    int

	fields      []fieldDef
	fieldByName map[string]*fieldDef

	cnt    counters
	sent   sentLog
	strays strayLog
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
		users: map[string]*user{}, userPos: map[string]int{}, byLogin: addrIndex{}, byEmail: addrIndex{},
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
	role := cmp.Or(o.OwnerRole, "administrator")
	if role == OwnerRoleNone {
		role = ""
	}
	owner := &user{ID: a.newID(), DeptID: root.ID, Status: 1, Role: role, Added: now(),
		Fields: map[string]string{"login": cmp.Or(o.Login, o.Email), "first_name": "Account", "last_name": "Owner"},
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
	a.byLogin.add(u.Fields["login"], u.ID)
	a.byEmail.add(u.Fields["email"], u.ID)
	if u.Status == 1 {
		a.active++
	}
}

func (a *account) createDept(name, parentID, code string) (*dept, *apiErr) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, errf(400, "Parameter name is required")
	case parentID == "":
		return nil, errf(400, "Parameter parentDepartmentId is required")
	case a.depts[parentID] == nil:
		return nil, unknownDept(parentID)
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
		return unknownDept(parentID)
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
	case a.managedBy(id) != "":
		return errf(400, "The department is managed by a department administrator or author and cannot be deleted")
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
	if err := a.guardLinks("department", id, [2]sub{d.Sub, d.CoSub}, [2]*sub{s, co}); err != nil {
		return err
	}
	if s != nil {
		d.Sub = *s
	}
	if co != nil {
		d.CoSub = *co
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

// moveDepts moves ids under parentID; param names the list in a refusal.
func (a *account) moveDepts(parentID, param string, ids []string) *apiErr {
	if err := a.checkMove(parentID, param, "Department", ids, func(id string) bool { return a.depts[id] != nil }); err != nil {
		return err
	}
	for _, id := range ids {
		if err := a.moveDept(a.depts[id], parentID); err != nil {
			return err
		}
	}
	return nil
}

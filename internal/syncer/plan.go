package syncer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"b24learn/internal/fieldmap"
)

// Action is what a step does.
type Action string

const (
	ActionCreate     Action = "create"
	ActionUpdate     Action = "update"
	ActionMove       Action = "move"
	ActionDeactivate Action = "deactivate"
	ActionReactivate Action = "reactivate"
	ActionSupervisor Action = "set_supervisor"
	// ActionLink records a mapping without writing to Learn: an object found
	// by code or e-mail that already looks right, or a new fingerprint.
	ActionLink Action = "link"
	// ActionRefuse is never applied; it reports an object that cannot sync.
	ActionRefuse Action = "refuse"
	// ActionConflict is never applied; it reports an employee whose Learn
	// user (same e-mail or login) another portal owns.
	ActionConflict Action = "conflict"
)

// foreignOwner marks, in builder.claimed, a Learn user another portal owns.
const foreignOwner int64 = -1

// Stage orders steps: departments (by tree level) before users, users before
// deactivations, everything before supervisors.
type Stage int

const (
	StageDepartments Stage = iota + 1
	StageUsers
	StageDeactivations
	StageSupervisors
)

// Errors that stop a run before anything is planned.
var (
	ErrNothingSelected = errors.New("no departments selected")
	ErrEmptyRead       = errors.New("bitrix24 returned no departments or no active employees")
	ErrNoLearnRoot     = errors.New("learn account has no root department")
)

// DeptSpec is the wanted state of a department. The parent is a Learn id
// when known at plan time, otherwise the Bitrix24 id of a department created
// earlier in the same run.
type DeptSpec struct {
	Name          string
	Code          string
	ParentLearnID string
	ParentB24     int64
}

// UserSpec is the wanted state of a user; the department is referenced like
// a DeptSpec parent.
type UserSpec struct {
	Login     string
	Email     string
	FirstName string
	LastName  string
	JobTitle  string
	Phone     string
	// Extra are the mapped profile fields beyond the ones above, by Learn
	// name; nil with the fixed mapping.
	Extra          map[string]string
	DeptLearnID    string
	DeptB24        int64
	SendLoginEmail bool
}

// SubTarget is a wanted subordination; a manual one names the supervisor by
// Bitrix24 id and, when already known, by Learn id.
type SubTarget struct {
	Type              string
	SupervisorB24     int64
	SupervisorLearnID string
}

// SubSpec is the wanted pair of manager links; nil leaves a link untouched.
type SubSpec struct {
	Sub   *SubTarget
	CoSub *SubTarget
}

// Step is one planned change. LearnID is the target when it exists already;
// for objects created in the same run it is empty and B24ID resolves it.
type Step struct {
	Stage   Stage
	Level   int
	Kind    Kind
	Action  Action
	B24ID   int64
	LearnID string
	Dept    *DeptSpec
	User    *UserSpec
	Status  int
	Sub     *SubSpec
	Before  map[string]string
	After   map[string]string
	// Changed names what an update or move writes, and nothing else is
	// sent: for a user the profile fields (as Learn names them) and
	// "department", for a department "name", "code" and "parent".
	Changed     []string
	Fingerprint string
	Reason      string
	Held        bool
}

// after is the state the step leaves: After, or for a user create, built
// from its spec when asked (the report row is written once; 100,000 creates
// need not each hold a map of their fields until then).
func (s *Step) after() map[string]string {
	if s.After == nil && s.Kind == KindUser && s.Action == ActionCreate && s.User != nil {
		return specState(s.User, StatusActive)
	}
	return s.After
}

// Layout says how the portal's tree sits in the Learn account.
type Layout struct {
	Multi       bool   // several portals share the account
	LearnRootID string // the account's root department
	RootB24     int64  // the Bitrix24 root department
	RootCode    string // code of the portal's own root department (multi)
}

// Plan is the ordered list of changes for one run.
type Plan struct {
	Layout  Layout
	Steps   []Step // applied in order (see Stage, Level)
	Refused []Step // reported only
	// Waiting are reactivations not tried in this run: the users wait for a
	// licence (the plan's active users are used up). Reported only.
	Waiting []Step
	// Learn ids known at plan time, by Bitrix24 id.
	DeptIDs map[int64]string
	UserIDs map[int64]string
	// Safeguard figures.
	SyncedUsers   int
	Deactivations int
	Held          int
}

// Counts gives the number of steps per "kind.action", held and refused ones
// under their own keys.
func (p *Plan) Counts() map[string]int {
	c := map[string]int{}
	for _, s := range p.Steps {
		if s.Held {
			c[string(s.Kind)+".held"]++
			continue
		}
		c[string(s.Kind)+"."+string(s.Action)]++
	}
	for _, s := range p.Refused {
		if s.Action == ActionConflict {
			c[string(s.Kind)+".conflict"]++
			continue
		}
		c[string(s.Kind)+".refused"]++
	}
	for _, s := range p.Waiting {
		c[string(s.Kind)+".waiting"]++
	}
	return c
}

// Writes is the number of steps that would write to Learn.
func (p *Plan) Writes() int {
	n := 0
	for _, s := range p.Steps {
		if !s.Held && s.Action != ActionLink {
			n++
		}
	}
	return n
}

// DepartmentCode is the stable code of a synced department.
func DepartmentCode(memberID string, b24ID int64) string {
	return memberID + ":" + strconv.FormatInt(b24ID, 10)
}

// parseCode splits a department code made by DepartmentCode.
func parseCode(code string) (member string, id int64, ok bool) {
	i := strings.LastIndexByte(code, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(code[i+1:], 10, 64)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return code[:i], n, true
}

// looksLikeMemberID tells another portal's code ("<member_id>:<id>", the
// member_id being 32 hex digits on Bitrix24) from codes a Learn admin chose,
// such as "HR:12", which must not switch the account to the shared layout.
func looksLikeMemberID(s string) bool {
	if len(s) < 16 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0x1f})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// builder holds the indexes of one BuildPlan call.
type builder struct {
	in   Input
	o    Options
	plan *Plan

	depts    map[int64]*Department
	rootB24  int64
	incl     map[int64]bool
	excl     map[int64]bool
	scopeMem map[int64]bool
	desired  []int64 // in-scope departments plus the root, by level then id
	level    map[int64]int

	learnDepts map[string]*LearnDepartment
	deptByCode map[string][]*LearnDepartment
	learnUsers map[string]*LearnUser
	byLogin    map[string]*LearnUser
	byEmail    map[string]*LearnUser
	deptMap    map[int64]Mapping
	userMap    map[int64]Mapping

	employees map[int64]*Employee
	users     []*Employee     // in-scope active employees that sync, by id
	userDept  map[int64]int64 // b24 user -> b24 department it sits in
	synced    map[int64]bool  // users that will exist in Learn
	claimed   map[string]int64
}

// BuildPlan computes the steps that make Learn match Bitrix24. It is pure: it
// reads only its input.
func BuildPlan(in Input) (*Plan, error) {
	o := in.Options
	if o.MemberID == "" {
		return nil, errors.New("plan: member id is empty")
	}
	if len(o.Selection.Selected) == 0 {
		return nil, ErrNothingSelected
	}
	if len(in.Desired.Departments) == 0 {
		return nil, ErrEmptyRead
	}
	active := 0
	for _, e := range in.Desired.Employees {
		if e.Active && e.UserType == "employee" {
			active++
		}
	}
	if active == 0 && o.Person == 0 {
		return nil, ErrEmptyRead
	}
	if o.Safeguard == (Safeguard{}) {
		o.Safeguard = DefaultSafeguard
	}
	b := &builder{in: in, o: o, plan: &Plan{DeptIDs: map[int64]string{}, UserIDs: map[int64]string{}}}
	b.index()
	if err := b.layout(); err != nil {
		return nil, err
	}
	b.departments()
	b.usersStep()
	b.deactivations()
	b.supervisors()
	slices.SortStableFunc(b.plan.Steps, func(x, y Step) int {
		if x.Stage != y.Stage {
			return int(x.Stage) - int(y.Stage)
		}
		if x.Level != y.Level {
			return x.Level - y.Level
		}
		if x.Kind != y.Kind {
			return strings.Compare(string(x.Kind), string(y.Kind))
		}
		if x.B24ID != y.B24ID {
			if x.B24ID < y.B24ID {
				return -1
			}
			return 1
		}
		return 0
	})
	return b.plan, nil
}

func (b *builder) index() {
	b.depts = make(map[int64]*Department, len(b.in.Desired.Departments))
	for i := range b.in.Desired.Departments {
		d := &b.in.Desired.Departments[i]
		b.depts[d.ID] = d
	}
	for _, d := range b.in.Desired.Departments {
		if _, ok := b.depts[d.Parent]; d.Parent == 0 || !ok {
			if b.rootB24 == 0 || d.ID < b.rootB24 {
				b.rootB24 = d.ID
			}
		}
	}
	b.incl = map[int64]bool{}
	b.excl = map[int64]bool{}
	for _, id := range b.o.Selection.Selected {
		b.incl[id] = true
	}
	for _, id := range b.o.Selection.Excluded {
		b.excl[id] = true
	}
	b.scopeMem = map[int64]bool{}

	b.learnDepts = map[string]*LearnDepartment{}
	b.deptByCode = map[string][]*LearnDepartment{}
	for i := range b.in.Actual.Departments {
		d := &b.in.Actual.Departments[i]
		b.learnDepts[d.ID] = d
		if d.Code != "" {
			b.deptByCode[d.Code] = append(b.deptByCode[d.Code], d)
		}
	}
	for _, l := range b.deptByCode {
		slices.SortFunc(l, func(x, y *LearnDepartment) int { return strings.Compare(x.ID, y.ID) })
	}
	b.learnUsers = map[string]*LearnUser{}
	b.byLogin = map[string]*LearnUser{}
	b.byEmail = map[string]*LearnUser{}
	for i := range b.in.Actual.Users {
		u := &b.in.Actual.Users[i]
		b.learnUsers[u.ID] = u
		if l := normEmail(u.Login); l != "" {
			b.byLogin[l] = u
		}
		if e := normEmail(u.Email); e != "" {
			b.byEmail[e] = u
		}
	}
	b.deptMap = map[int64]Mapping{}
	b.userMap = map[int64]Mapping{}
	b.claimed = map[string]int64{}
	for _, m := range b.in.Actual.Mappings {
		switch m.Kind {
		case KindDepartment:
			b.deptMap[m.B24ID] = m
		case KindUser:
			b.userMap[m.B24ID] = m
			if _, ok := b.learnUsers[m.LearnID]; ok {
				b.claimed[m.LearnID] = m.B24ID
			}
		}
	}
	// Another portal's users are taken even when this portal's mapping
	// points at them (a mapping from before ownership was recorded).
	for id := range b.in.Actual.Foreign {
		if _, ok := b.learnUsers[id]; ok {
			b.claimed[id] = foreignOwner
		}
	}
	b.employees = map[int64]*Employee{}
	for i := range b.in.Desired.Employees {
		e := &b.in.Desired.Employees[i]
		b.employees[e.ID] = e
	}
}

// parentOf is the Bitrix24 parent, the root for orphans, 0 above the root.
func (b *builder) parentOf(id int64) int64 {
	if id == b.rootB24 {
		return 0
	}
	d, ok := b.depts[id]
	if !ok {
		return 0
	}
	if _, ok := b.depts[d.Parent]; ok && d.Parent != id {
		return d.Parent
	}
	return b.rootB24
}

// inScope: the nearest selected-or-excluded mark on the way up decides.
func (b *builder) inScope(id int64) bool {
	if v, ok := b.scopeMem[id]; ok {
		return v
	}
	var v bool
	var path []int64
	for x, n := id, 0; x != 0 && n <= len(b.depts); x, n = b.parentOf(x), n+1 {
		if r, ok := b.scopeMem[x]; ok {
			v = r
			break
		}
		path = append(path, x)
		if b.excl[x] {
			v = false
			break
		}
		if b.incl[x] {
			v = true
			break
		}
	}
	for _, x := range path {
		b.scopeMem[x] = v
	}
	return v
}

// desiredParent is the Bitrix24 department a desired department hangs under
// in Learn: its parent when in scope, else the portal's root.
func (b *builder) desiredParent(id int64) int64 {
	p := b.parentOf(id)
	if p != 0 && b.inScope(p) {
		return p
	}
	return b.rootB24
}

func (b *builder) layout() error {
	var roots []*LearnDepartment
	for i := range b.in.Actual.Departments {
		d := &b.in.Actual.Departments[i]
		if _, ok := b.learnDepts[d.ParentID]; d.ParentID == "" || !ok {
			roots = append(roots, d)
		}
	}
	if len(roots) == 0 {
		return ErrNoLearnRoot
	}
	slices.SortFunc(roots, func(x, y *LearnDepartment) int {
		// A true root (no parent at all) wins over an orphan.
		if (x.ParentID == "") != (y.ParentID == "") {
			if x.ParentID == "" {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	l := Layout{LearnRootID: roots[0].ID, RootB24: b.rootB24, RootCode: DepartmentCode(b.o.MemberID, b.rootB24)}
	l.Multi = b.o.SharedAccount
	for _, d := range b.in.Actual.Departments {
		if d.ID == l.LearnRootID {
			continue
		}
		if d.Code == l.RootCode {
			l.Multi = true // sticky: once moved to its own child, stay there
		}
		if m, _, ok := parseCode(d.Code); ok && m != b.o.MemberID && looksLikeMemberID(m) {
			l.Multi = true
		}
	}
	b.plan.Layout = l

	// Desired departments with their Learn tree level.
	b.level = map[int64]int{b.rootB24: 0}
	b.desired = append(b.desired, b.rootB24)
	var lvl func(id int64, depth int) int
	lvl = func(id int64, depth int) int {
		if v, ok := b.level[id]; ok {
			return v
		}
		if depth > len(b.depts) {
			return 1
		}
		v := lvl(b.desiredParent(id), depth+1) + 1
		b.level[id] = v
		return v
	}
	for _, d := range b.in.Desired.Departments {
		if d.ID != b.rootB24 && b.inScope(d.ID) {
			lvl(d.ID, 0)
			b.desired = append(b.desired, d.ID)
		}
	}
	slices.SortFunc(b.desired, func(x, y int64) int {
		if b.level[x] != b.level[y] {
			return b.level[x] - b.level[y]
		}
		return cmpInt(x, y)
	})
	return nil
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// resolveDept finds the Learn department standing for a desired one: by
// mapping, else by code; never the same Learn department twice.
func (b *builder) resolveDept(id int64, used map[string]bool) *LearnDepartment {
	l := b.plan.Layout
	if id == b.rootB24 && !l.Multi {
		return b.learnDepts[l.LearnRootID]
	}
	if m, ok := b.deptMap[id]; ok {
		if d, ok := b.learnDepts[m.LearnID]; ok && d.ID != l.LearnRootID && !used[d.ID] {
			return d
		}
	}
	for _, d := range b.deptByCode[DepartmentCode(b.o.MemberID, id)] {
		if d.ID != l.LearnRootID && !used[d.ID] {
			return d
		}
	}
	return nil
}

func deptName(d *Department) string {
	if n := strings.TrimSpace(d.Name); n != "" {
		return n
	}
	return "Department " + strconv.FormatInt(d.ID, 10)
}

func (b *builder) departments() {
	l := b.plan.Layout
	used := map[string]bool{l.LearnRootID: true}
	for _, id := range b.desired {
		d := b.depts[id]
		want := DeptSpec{Name: deptName(d), Code: DepartmentCode(b.o.MemberID, id)}
		isLearnRoot := id == b.rootB24 && !l.Multi
		switch {
		case isLearnRoot:
			want.Code = "" // the account's root is not the portal's to label
		case id == b.rootB24:
			want.ParentLearnID = l.LearnRootID
		default:
			p := b.desiredParent(id)
			if pid, ok := b.plan.DeptIDs[p]; ok {
				want.ParentLearnID = pid
			} else {
				want.ParentB24 = p
			}
		}
		fp := fingerprint(want.Name)
		after := map[string]string{"name": want.Name, "code": want.Code, "parent": parentLabel(want)}
		ld := b.resolveDept(id, used)
		if ld == nil {
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageDepartments, Level: b.level[id], Kind: KindDepartment, Action: ActionCreate,
				B24ID: id, Dept: &want, After: after, Fingerprint: fp,
			})
			continue
		}
		used[ld.ID] = true
		b.plan.DeptIDs[id] = ld.ID
		m, mapped := b.deptMap[id]
		stored := ""
		if mapped && m.LearnID == ld.ID {
			stored = m.Fingerprint
		}
		rename := ld.Name != want.Name && stored != fp
		move := !isLearnRoot && (want.ParentLearnID == "" || want.ParentLearnID != ld.ParentID)
		recode := !isLearnRoot && ld.Code != want.Code
		before := map[string]string{"name": ld.Name, "code": ld.Code, "parent": ld.ParentID}
		if !rename {
			want.Name = ld.Name
			after["name"] = ld.Name
		}
		if isLearnRoot {
			want.Code = ld.Code
		}
		switch {
		case rename || move || recode:
			act := ActionUpdate
			if move {
				act = ActionMove
			}
			var changed []string
			for _, c := range []struct {
				name string
				on   bool
			}{{"name", rename}, {"code", recode}, {"parent", move}} {
				if c.on {
					changed = append(changed, c.name)
				}
			}
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageDepartments, Level: b.level[id], Kind: KindDepartment, Action: act,
				B24ID: id, LearnID: ld.ID, Dept: &want, Before: before, After: after, Changed: changed, Fingerprint: fp,
			})
		case stored != fp || !mapped || m.LearnID != ld.ID:
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageDepartments, Level: b.level[id], Kind: KindDepartment, Action: ActionLink,
				B24ID: id, LearnID: ld.ID, Before: before, After: before, Fingerprint: fp,
			})
		}
	}
}

func parentLabel(s DeptSpec) string {
	if s.ParentLearnID != "" {
		return s.ParentLearnID
	}
	if s.ParentB24 != 0 {
		return "b24:" + strconv.FormatInt(s.ParentB24, 10)
	}
	return ""
}

// userDepartment is the first in-scope department in UF_DEPARTMENT, or 0.
func (b *builder) userDepartment(e *Employee) int64 {
	for _, d := range e.Departments {
		if _, ok := b.depts[d]; ok && b.inScope(d) {
			return d
		}
	}
	return 0
}

// userFingerprint covers the fields of the fixed mapping, then the extra
// ones in name order: with the fixed mapping it is what it always was.
func userFingerprint(s *UserSpec) string {
	parts := []string{s.Email, s.FirstName, s.LastName, s.JobTitle, s.Phone}
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		parts = append(parts, k+"="+s.Extra[k])
	}
	return fingerprint(parts...)
}

func userState(u *LearnUser) map[string]string {
	m := map[string]string{
		"login": u.Login, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName,
		"job_title": u.JobTitle, "phone": u.Phone, "department": u.DepartmentID, "status": strconv.Itoa(u.Status),
	}
	maps.Copy(m, u.Extra)
	return m
}

func specState(s *UserSpec, status int) map[string]string {
	dept := s.DeptLearnID
	if dept == "" {
		dept = "b24:" + strconv.FormatInt(s.DeptB24, 10)
	}
	m := map[string]string{
		"login": s.Login, "email": s.Email, "first_name": s.FirstName, "last_name": s.LastName,
		"job_title": s.JobTitle, "phone": s.Phone, "department": dept, "status": strconv.Itoa(status),
	}
	maps.Copy(m, s.Extra)
	return m
}

// userFieldNames are the profile fields the syncer writes, as Learn names
// them, in the order of specFields and learnFields.
var userFieldNames = [...]string{"login", "email", "first_name", "last_name", "job_title", "phone"}

func specFields(s *UserSpec) [len(userFieldNames)]*string {
	return [...]*string{&s.Login, &s.Email, &s.FirstName, &s.LastName, &s.JobTitle, &s.Phone}
}

func learnFields(u *LearnUser) [len(userFieldNames)]string {
	return [...]string{u.Login, u.Email, u.FirstName, u.LastName, u.JobTitle, u.Phone}
}

// field is a wanted user's value of a field named as in userFieldNames or
// in Extra.
func (s *UserSpec) field(name string) (string, bool) {
	for i, p := range specFields(s) {
		if userFieldNames[i] == name {
			return *p, true
		}
	}
	v, ok := s.Extra[name]
	return v, ok
}

// changedFields names the fields where want differs from Learn's user
// (login and e-mail regardless of case) and gives every other field of want
// Learn's value, so that an update never rewrites what it does not change.
func changedFields(u *LearnUser, want *UserSpec) []string {
	var out []string
	have := learnFields(u)
	for i, p := range specFields(want) {
		same := *p == have[i]
		if i < 2 {
			same = normEmail(*p) == normEmail(have[i])
		}
		if same {
			*p = have[i]
			continue
		}
		out = append(out, userFieldNames[i])
	}
	for _, k := range slices.Sorted(maps.Keys(want.Extra)) {
		if want.Extra[k] == u.Extra[k] {
			continue
		}
		out = append(out, k)
	}
	return out
}

// learnValues builds a user's Learn profile fields (beyond login and
// e-mail) from the Bitrix24 user e in department dept and the field
// mapping: the one place where the mapping is applied, for creates and
// updates alike. Unmapped fields are absent; a value that does not convert
// (not a date for a date source) is absent too, never sent malformed.
func (b *builder) learnValues(e *Employee, dept int64) map[string]string {
	m := b.o.FieldMap
	if m == nil {
		m = fieldmap.Default()
	}
	out := make(map[string]string, len(m))
	for learnName, code := range m {
		var raw string
		switch code {
		case "NAME":
			raw = e.FirstName
		case "LAST_NAME":
			raw = e.LastName
		case "WORK_POSITION":
			raw = e.JobTitle
		case fieldmap.Phone:
			raw = e.Phone
		case fieldmap.DepartmentName:
			if d := b.depts[dept]; d != nil {
				raw = deptName(d)
			}
		default:
			raw = e.Values[code]
		}
		if v, ok := fieldmap.Value(code, raw); ok {
			out[learnName] = v
		}
	}
	return out
}

// mappedSpec fills want's profile fields from learnValues; the fields of
// the fixed set the mapping leaves out are returned in unmanaged.
func (b *builder) mappedSpec(want *UserSpec, e *Employee, dept int64) (unmanaged []string) {
	vals := b.learnValues(e, dept)
	for i, p := range specFields(want) {
		name := userFieldNames[i]
		if name == "login" || name == "email" {
			continue
		}
		v, ok := vals[name]
		if !ok && b.o.FieldMap != nil {
			if _, mapped := b.o.FieldMap[name]; !mapped {
				unmanaged = append(unmanaged, name)
			}
		}
		*p = v
		delete(vals, name)
	}
	for name := range vals {
		if b.o.FieldMap == nil {
			break
		}
		if _, ok := b.o.FieldMap[name]; ok {
			if want.Extra == nil {
				want.Extra = map[string]string{}
			}
			want.Extra[name] = vals[name]
		}
	}
	// Mapped extra fields whose value did not convert stay empty, so the
	// plan compares them (clearing is Learn's to take or refuse).
	for name := range b.o.FieldMap {
		if _, fixed := want.field(name); !fixed && !fieldmap.Fixed(name) {
			if want.Extra == nil {
				want.Extra = map[string]string{}
			}
			want.Extra[name] = ""
		}
	}
	return unmanaged
}

func (b *builder) usersStep() {
	b.userDept = map[int64]int64{}
	b.synced = map[int64]bool{}
	for i := range b.in.Desired.Employees {
		e := &b.in.Desired.Employees[i]
		if !e.Active || e.UserType != "employee" {
			continue
		}
		if d := b.userDepartment(e); d != 0 {
			b.users = append(b.users, e)
			b.userDept[e.ID] = d
		}
	}
	slices.SortFunc(b.users, func(x, y *Employee) int { return cmpInt(x.ID, y.ID) })

	emailOwner := map[string]int64{}
	for _, e := range b.users {
		d := b.userDept[e.ID]
		email := normEmail(e.Email)
		want := UserSpec{Login: email, Email: email, SendLoginEmail: b.o.SendLoginEmail}
		unmanaged := b.mappedSpec(&want, e, d)
		if id, ok := b.plan.DeptIDs[d]; ok {
			want.DeptLearnID = id
		} else {
			want.DeptB24 = d
		}
		lu := b.resolveUser(e.ID, email)
		if lu == nil {
			if f := b.foreignUser(email); f != nil {
				b.conflict(e.ID, f)
				continue
			}
		}
		if email != "" {
			if owner, dup := emailOwner[email]; dup && (lu == nil || b.claimed[lu.ID] != e.ID) {
				b.refuse(e.ID, fmt.Sprintf("e-mail %s is also used by Bitrix24 user %d", email, owner))
				continue
			}
			emailOwner[email] = e.ID
		}
		if lu == nil {
			if email == "" {
				b.refuse(e.ID, "no e-mail in Bitrix24: Learn needs it as the login")
				continue
			}
			if owner := b.emailTaken(email); owner != 0 {
				b.refuse(e.ID, fmt.Sprintf("e-mail %s belongs in Learn to the user synced from Bitrix24 user %d", email, owner))
				continue
			}
			b.synced[e.ID] = true
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Kind: KindUser, Action: ActionCreate, B24ID: e.ID,
				User: &want, Fingerprint: userFingerprint(&want), // After: see Step.after
			})
			continue
		}
		b.synced[e.ID] = true
		b.claimed[lu.ID] = e.ID
		b.plan.UserIDs[e.ID] = lu.ID
		if email == "" { // e-mail removed in Bitrix24: keep Learn's login and e-mail
			want.Login, want.Email = lu.Login, lu.Email
		} else if normEmail(lu.Login) != normEmail(lu.Email) && lu.Login != "" {
			want.Login = lu.Login // a login the Learn admin chose stays
		}
		fp := userFingerprint(&want)
		// A fixed field the mapping leaves out keeps Learn's value.
		for _, name := range unmanaged {
			for i, p := range specFields(&want) {
				if userFieldNames[i] == name {
					*p = learnFields(lu)[i]
				}
			}
		}
		m, mapped := b.userMap[e.ID]
		stored := ""
		if mapped && m.LearnID == lu.ID {
			stored = m.Fingerprint
		}
		n := len(b.plan.Steps)
		var changed []string
		if stored != fp {
			changed = changedFields(lu, &want)
		}
		fields := len(changed) > 0
		move := want.DeptLearnID == "" || want.DeptLearnID != lu.DepartmentID
		if !fields {
			want.Login, want.Email, want.FirstName, want.LastName = lu.Login, lu.Email, lu.FirstName, lu.LastName
			want.JobTitle, want.Phone = lu.JobTitle, lu.Phone
			for k := range want.Extra {
				want.Extra[k] = lu.Extra[k]
			}
		}
		if fields || move {
			// A move alone goes through Learn's move endpoint (batched by
			// department); with changed fields it rides on the update.
			act := ActionUpdate
			if !fields {
				act = ActionMove
			}
			if move {
				changed = append(changed, "department")
			}
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Kind: KindUser, Action: act, B24ID: e.ID, LearnID: lu.ID,
				User: &want, Before: userState(lu), After: specState(&want, lu.Status), Changed: changed, Fingerprint: fp,
			})
		}
		if lu.Status != StatusActive && mapped && m.LearnID == lu.ID && m.LicenceWait && !b.o.RetryLicence[e.ID] {
			b.plan.Waiting = append(b.plan.Waiting, Step{
				Stage: StageUsers, Level: 1, Kind: KindUser, Action: ActionReactivate, B24ID: e.ID, LearnID: lu.ID,
				Status: StatusActive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
				After: map[string]string{"status": strconv.Itoa(lu.Status)}, Fingerprint: fp, Reason: reasonLicence,
			})
		} else if lu.Status != StatusActive {
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Level: 1, Kind: KindUser, Action: ActionReactivate, B24ID: e.ID, LearnID: lu.ID,
				Status: StatusActive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
				After: map[string]string{"status": "1"}, Fingerprint: fp, Reason: "active in Bitrix24 again",
			})
		}
		if len(b.plan.Steps) == n && (stored != fp || !mapped || m.LearnID != lu.ID) {
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Kind: KindUser, Action: ActionLink, B24ID: e.ID, LearnID: lu.ID,
				Before: userState(lu), After: userState(lu), Fingerprint: fp,
			})
		}
	}
}

// resolveUser: the mapped Learn user, else an unclaimed one whose login or
// e-mail is the employee's e-mail.
func (b *builder) resolveUser(id int64, email string) *LearnUser {
	if m, ok := b.userMap[id]; ok {
		if u, ok := b.learnUsers[m.LearnID]; ok && b.claimed[u.ID] == id {
			return u
		}
	}
	if email == "" {
		return nil
	}
	for _, u := range []*LearnUser{b.byLogin[email], b.byEmail[email]} {
		if u == nil {
			continue
		}
		if owner, ok := b.claimed[u.ID]; ok && owner != id {
			continue
		}
		return u
	}
	return nil
}

// reasonLicence explains a user left inactive by Learn's plan limit.
const reasonLicence = "waiting for a licence: the Learn plan's active users are used up"

// foreignUser is the Learn user another portal owns whose login or e-mail is
// this e-mail, or nil.
func (b *builder) foreignUser(email string) *LearnUser {
	if email == "" {
		return nil
	}
	for _, u := range []*LearnUser{b.byLogin[email], b.byEmail[email]} {
		if u != nil && b.claimed[u.ID] == foreignOwner {
			return u
		}
	}
	return nil
}

// conflict reports an employee whose Learn user another portal owns; the
// owner's domain is in the reason and in After["owner"].
func (b *builder) conflict(id int64, u *LearnUser) {
	owner := b.in.Actual.Foreign[u.ID]
	b.plan.Refused = append(b.plan.Refused, Step{
		Stage: StageUsers, Kind: KindUser, Action: ActionConflict, B24ID: id, LearnID: u.ID,
		Before: userState(u), After: map[string]string{"owner": owner},
		Reason: fmt.Sprintf("Learn user %s belongs to portal %s, which synced it first; this portal leaves it alone", u.Login, owner),
	})
}

// emailTaken names the Bitrix24 user whose Learn user has this login or
// e-mail, or 0.
func (b *builder) emailTaken(email string) int64 {
	for _, u := range []*LearnUser{b.byLogin[email], b.byEmail[email]} {
		if u != nil {
			if owner, ok := b.claimed[u.ID]; ok {
				return owner
			}
		}
	}
	return 0
}

func (b *builder) refuse(id int64, reason string) {
	b.plan.Refused = append(b.plan.Refused, Step{
		Stage: StageUsers, Kind: KindUser, Action: ActionRefuse, B24ID: id, Reason: reason,
	})
}

func (b *builder) leaveReason(id int64) string {
	e, ok := b.employees[id]
	switch {
	case !ok:
		return "no longer in Bitrix24"
	case !e.Active:
		return "dismissed in Bitrix24"
	case e.UserType != "employee":
		return "not an employee in Bitrix24 (" + e.UserType + ")"
	}
	return "not in a selected department"
}

func (b *builder) deactivations() {
	ids := make([]int64, 0, len(b.userMap))
	for id := range b.userMap {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var steps []Step
	for _, id := range ids {
		m := b.userMap[id]
		lu, ok := b.learnUsers[m.LearnID]
		if !ok || b.claimed[lu.ID] != id {
			continue
		}
		if lu.Status == StatusActive {
			b.plan.SyncedUsers++
		}
		if _, stays := b.userDept[id]; stays {
			continue
		}
		if lu.Status != StatusActive {
			continue
		}
		steps = append(steps, Step{
			Stage: StageDeactivations, Kind: KindUser, Action: ActionDeactivate, B24ID: id, LearnID: lu.ID,
			Status: StatusInactive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
			After: map[string]string{"status": "3"}, Fingerprint: m.Fingerprint, Reason: b.leaveReason(id),
		})
	}
	unapproved := 0
	for _, s := range steps {
		if !b.o.Approved[s.B24ID] {
			unapproved++
		}
	}
	b.plan.Deactivations = len(steps)
	sg := b.o.Safeguard
	limit := sg.Percent / 100 * float64(b.plan.SyncedUsers)
	if unapproved >= sg.MinCount && float64(unapproved) > limit {
		for i := range steps {
			if !b.o.Approved[steps[i].B24ID] {
				steps[i].Held = true
				steps[i].Reason += "; held: waiting for approval"
				b.plan.Held++
			}
		}
	}
	b.plan.Steps = append(b.plan.Steps, steps...)
}

// headUp is the first head of start or its ancestors that syncs and is not
// skip; 0 when there is none.
func (b *builder) headUp(start, skip int64) int64 {
	for x, n := start, 0; x != 0 && n <= len(b.depts); x, n = b.parentOf(x), n+1 {
		if h := b.depts[x].Head; h != 0 && h != skip && b.synced[h] {
			return h
		}
	}
	return 0
}

func (b *builder) target(h int64) *SubTarget {
	if h == 0 {
		return &SubTarget{Type: SubNone}
	}
	return &SubTarget{Type: SubManual, SupervisorB24: h, SupervisorLearnID: b.plan.UserIDs[h]}
}

// differs reports whether an actual link must change to become want.
func differs(actual Subordination, want *SubTarget) bool {
	if want == nil {
		return false
	}
	t := actual.Type
	if t == "" {
		t = SubInherit
	}
	if t != want.Type {
		return true
	}
	return want.Type == SubManual && (want.SupervisorLearnID == "" || want.SupervisorLearnID != actual.SupervisorID)
}

func subLabel(t *SubTarget) string {
	if t == nil {
		return ""
	}
	if t.Type != SubManual {
		return t.Type
	}
	if t.SupervisorLearnID != "" {
		return "manual:" + t.SupervisorLearnID
	}
	return "manual:b24:" + strconv.FormatInt(t.SupervisorB24, 10)
}

func actualLabel(s Subordination) string {
	if s.Type == SubManual {
		return "manual:" + s.SupervisorID
	}
	if s.Type == "" {
		return SubInherit
	}
	return s.Type
}

func (b *builder) supervisors() {
	if !b.o.HeadsAsManagers && !b.o.ParentHeadsAsSupervisors {
		return
	}
	for _, id := range b.desired {
		want := &SubSpec{}
		if b.o.HeadsAsManagers {
			want.CoSub = b.target(b.headUp(id, 0))
		}
		if b.o.ParentHeadsAsSupervisors {
			want.Sub = b.target(b.headUp(b.parentOf(id), 0))
		}
		lid, exists := b.plan.DeptIDs[id]
		var ld *LearnDepartment
		if exists {
			ld = b.learnDepts[lid]
			if !differs(ld.Subordination, want.Sub) && !differs(ld.CoSubordination, want.CoSub) {
				continue
			}
		}
		s := Step{
			Stage: StageSupervisors, Kind: KindDepartment, Action: ActionSupervisor, B24ID: id, LearnID: lid,
			Sub: want, After: map[string]string{"subordination": subLabel(want.Sub), "co_subordination": subLabel(want.CoSub)},
		}
		if ld != nil {
			s.Before = map[string]string{"subordination": actualLabel(ld.Subordination), "co_subordination": actualLabel(ld.CoSubordination)}
		}
		b.plan.Steps = append(b.plan.Steps, s)
	}
	inherit := func() *SubTarget { return &SubTarget{Type: SubInherit} }
	keep := func(s Subordination) *SubTarget {
		if s.Type == "" {
			return inherit()
		}
		return &SubTarget{Type: s.Type, SupervisorLearnID: s.SupervisorID}
	}
	for _, e := range b.users {
		if !b.synced[e.ID] {
			continue
		}
		d := b.userDept[e.ID]
		var lu *LearnUser
		lid, exists := b.plan.UserIDs[e.ID]
		if exists {
			lu = b.learnUsers[lid]
		}
		want := &SubSpec{Sub: inherit(), CoSub: inherit()}
		if lu != nil {
			want.Sub, want.CoSub = keep(lu.Subordination), keep(lu.CoSubordination)
		}
		if b.o.HeadsAsManagers {
			want.CoSub = inherit()
			if b.headUp(d, 0) == e.ID { // the head of their own department
				want.CoSub = b.target(b.headUp(d, e.ID))
			}
		}
		if b.o.ParentHeadsAsSupervisors {
			want.Sub = inherit()
			if p := b.parentOf(d); b.headUp(p, 0) == e.ID {
				want.Sub = b.target(b.headUp(p, e.ID))
			}
		}
		if lu != nil {
			if !differs(lu.Subordination, want.Sub) && !differs(lu.CoSubordination, want.CoSub) {
				continue
			}
		} else if want.Sub.Type == SubInherit && want.CoSub.Type == SubInherit {
			continue // a new user starts with inherit
		}
		s := Step{
			Stage: StageSupervisors, Kind: KindUser, Action: ActionSupervisor, B24ID: e.ID, LearnID: lid,
			Sub: want, After: map[string]string{"subordination": subLabel(want.Sub), "co_subordination": subLabel(want.CoSub)},
		}
		if lu != nil {
			s.Before = map[string]string{"subordination": actualLabel(lu.Subordination), "co_subordination": actualLabel(lu.CoSubordination)}
		}
		b.plan.Steps = append(b.plan.Steps, s)
	}
}

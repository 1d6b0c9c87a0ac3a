package syncer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
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
	// ActionInvited is never applied; it reports an employee not created in
	// Learn because their Bitrix24 invitation is not accepted yet.
	ActionInvited Action = "invited"
	// ActionInvitedUnknown is never applied; the one row of a run whose
	// Bitrix24 read could not tell invited users apart.
	ActionInvitedUnknown Action = "invited_unknown"
)

// foreignOwner marks, in builder.claimedBy, a Learn user another portal owns.
const foreignOwner int64 = -1

// signInOwner marks, in builder.claimedBy, the Learn user the run signs in
// as (Options.SignInLogin).
const signInOwner int64 = -2

// adminOwner marks, in builder.claimedBy, a Learn user with rights over
// others (LearnUser.Administers) that no employee is linked to yet.
const adminOwner int64 = -3

// roleUnknownOwner marks, in builder.claimedBy, a Learn user whose read
// shows no role (LearnUser.RoleUnknown) that no employee is linked to yet.
const roleUnknownOwner int64 = -4

// Stage orders steps: departments (by tree level) before users, users before
// deactivations, everything before supervisors.
type Stage uint8

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
	// ErrLearnRootHidden: Learn listed departments but none without a
	// parent, so the credentials do not see the whole account (a
	// department administrator's; docs/learn-api.md, "Whose credentials").
	ErrLearnRootHidden = errors.New("learn lists no root department: the credentials do not see the whole account")
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
	Profile
	DeptLearnID string
	DeptB24     int64
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
	// Listed are the object's links as the plan's listing showed them, for
	// a spec that leaves one out: that one is sent back as listed (Learn
	// may reset a link a request leaves out). Nil when the client must
	// read the object first (builder.listed).
	Listed *Managers
}

// Step is one planned change. LearnID is the target when it exists already;
// for objects created in the same run it is empty and B24ID resolves it.
//
// Stage, Held, Adopted and Level share the first 8 bytes (a first sync at
// 100,000 holds as many steps from the plan to the end of the writes).
type Step struct {
	Stage Stage
	Held  bool
	// Adopted: a user step's Learn user was in Learn before the app linked
	// it (Mapping.Adopted); the mapping the step writes says so when it
	// makes the link.
	Adopted bool
	Level   int32
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
	Reason      Reasons
}

// fingerprint is the step's Fingerprint, or for a user create, computed
// from its spec when asked (as after): 100,000 creates need not each hold it
// from the plan to their record.
func (s *Step) fingerprint() string {
	if s.Fingerprint == "" && s.Kind == KindUser && s.Action == ActionCreate && s.User != nil {
		return userFingerprint(s.User)
	}
	return s.Fingerprint
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
	Layout Layout
	// SendLoginEmail: Learn mails the users this plan creates their
	// sign-in details (the portal's option, the same for every create).
	SendLoginEmail bool
	Steps          []Step // applied in order (see Stage, Level)
	Refused        []Step // reported only
	// Waiting are reactivations not tried in this run: the users wait for a
	// licence (the plan's active users are used up). Reported only.
	Waiting []Step
	// Invited are the employees not created because their Bitrix24
	// invitation is not accepted yet (ActionInvited). Reported only.
	Invited []Step
	// Returned are the Bitrix24 users whose deactivation Learn refused in an
	// earlier run (PartStatus) and who are synced again: the run forgets
	// that refusal, so that their next leave is sent.
	Returned []int64
	// InvitedUnknown is Desired.InvitedUnknown: the report's one row on it.
	InvitedUnknown string
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
	if len(p.Invited) > 0 {
		c["user."+ItemInvited] = len(p.Invited)
	}
	return c
}

// learnUsers are the Learn users the plan's steps name, each once: those
// the applier claims before it writes.
func (p *Plan) learnUsers() []string {
	var ids []string
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.Kind == KindUser && s.LearnID != "" && !seen[s.LearnID] {
			seen[s.LearnID] = true
			ids = append(ids, s.LearnID)
		}
	}
	return ids
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

// dropSpecs lets go of the user specs of the steps that were not held,
// once they are written and recorded.
func (p *Plan) dropSpecs() {
	for i := range p.Steps {
		if !p.Steps[i].Held {
			p.Steps[i].User = nil
		}
	}
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

	depts   map[int64]*Department
	rootB24 int64
	// cut are the departments parentOf puts under the root although their
	// parent is listed: the lowest id of each cycle of parents (cutCycles).
	cut      map[int64]bool
	incl     map[int64]bool
	excl     map[int64]bool
	scopeMem map[int64]bool
	// defaultMap is the fixed field mapping when the portal has none.
	defaultMap map[string]string
	desired    []int64 // in-scope departments plus the root, by level then id
	level      map[int64]int

	learnDepts map[string]*LearnDepartment
	deptByCode map[string][]*LearnDepartment
	deptMap    map[int64]*Mapping // into in.Actual.Mappings, not copies
	deptMapped map[string]int64   // Learn department id → the Bitrix24 one its mapping names
	refusals   map[refusalKey]*Refusal
	// sent are the departments whose create a run sent and did not
	// record (a mapping row without a Learn id).
	sent map[int64]bool
	// seen and byParent are codeless's, made when it is first asked.
	seen     *codesSeen
	byParent map[string][]*LearnDepartment

	// The per-user lookups, one entry per user each: positions sorted by
	// key (plan_index.go) and lists by position.
	learnByID    sortedIndex[string] // Learn users by id
	learnByLogin sortedIndex[string] // by normalized login
	learnByEmail sortedIndex[string] // by normalized e-mail
	claimedBy    []int64             // per Learn user: the Bitrix24 user it stands for, foreignOwner, signInOwner, adminOwner, roleUnknownOwner, 0
	userMaps     sortedIndex[int64]  // user mappings by Bitrix24 id
	mapLearn     []int32             // per mapping: the position of its Learn user, -1
	emps         sortedIndex[int64]  // employees by id
	empDept      []int64             // per employee: the department they sit in in Learn, 0 when they do not sync
	empSynced    []bool              // per employee: will exist in Learn
	empLearn     []int32             // per employee: the position of the Learn user they sync to, -1

	users  []*Employee       // in-scope active employees that sync, by id
	heads  map[int64]headRef // headAt, once asked
	headed map[int64]int     // departments by head, once headUp skips one
	// walked counts the departments the heads' walks look at (a test holds
	// it linear in the org).
	walked int
	// leaving are the Learn users the plan deactivates, made when
	// builder.listed first asks.
	leaving map[string]bool
}

// BuildPlan computes the steps that make Learn match Bitrix24. It is pure: it
// reads only its input.
func BuildPlan(in Input) (*Plan, error) {
	b, err := build(in)
	if err != nil {
		return nil, err
	}
	return b.plan, nil
}

// build is BuildPlan, giving the builder (tests count its work).
func build(in Input) (*builder, error) {
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
	b := &builder{in: in, o: o, plan: &Plan{SendLoginEmail: o.SendLoginEmail, DeptIDs: map[int64]string{}, UserIDs: map[int64]string{},
		InvitedUnknown: in.Desired.InvitedUnknown}}
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
			return int(x.Level) - int(y.Level)
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
	return b, nil
}

func (b *builder) index() {
	b.depts = make(map[int64]*Department, len(b.in.Desired.Departments))
	for i := range b.in.Desired.Departments {
		d := &b.in.Desired.Departments[i]
		b.depts[d.ID] = d
	}
	rooted := false
	for _, d := range b.in.Desired.Departments {
		if _, ok := b.depts[d.Parent]; d.Parent == 0 || !ok {
			rooted = true
			if b.rootB24 == 0 || d.ID < b.rootB24 {
				b.rootB24 = d.ID
			}
		}
	}
	if !rooted {
		// Every department has a parent among them: the portal's answers
		// made the tree a cycle (an on-premise portal's owner writes
		// them). The lowest id stands in for the root, which parentOf
		// puts above nothing, so the cycle is cut there; without a root
		// the plan looked up a department that is not there.
		for i, d := range b.in.Desired.Departments {
			if i == 0 || d.ID < b.rootB24 {
				b.rootB24 = d.ID
			}
		}
	}
	b.cutCycles()
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
	us := b.in.Actual.Users
	b.learnByID = indexBy(len(us), func(i int) string { return us[i].ID }, nil)
	login := normKey(len(us), func(i int) string { return us[i].Login })
	b.learnByLogin = indexBy(len(us), login, func(i int) bool { return login(i) != "" })
	email := normKey(len(us), func(i int) string { return us[i].Email })
	b.learnByEmail = indexBy(len(us), email, func(i int) bool { return email(i) != "" })
	b.claimedBy = make([]int64, len(us))
	b.deptMap = map[int64]*Mapping{}
	b.deptMapped = map[string]int64{}
	b.sent = map[int64]bool{}
	b.refusals = make(map[refusalKey]*Refusal, len(b.in.Actual.Refusals))
	for i := range b.in.Actual.Refusals {
		f := &b.in.Actual.Refusals[i]
		b.refusals[refusalKey{f.Kind, f.B24ID, f.Part}] = f
	}
	ms := b.in.Actual.Mappings
	b.userMaps = indexBy(len(ms), func(i int) int64 { return ms[i].B24ID }, func(i int) bool { return ms[i].Kind == KindUser })
	b.mapLearn = make([]int32, len(ms))
	for i := range ms {
		m := &ms[i]
		b.mapLearn[i] = -1
		switch m.Kind {
		case KindDepartment:
			if m.LearnID == "" {
				// A create sent whose answer was never recorded
				// (Store.departmentSent): no mapping, but a hint.
				b.sent[m.B24ID] = true
				continue
			}
			b.deptMap[m.B24ID] = m
			b.deptMapped[m.LearnID] = m.B24ID
		case KindUser:
			if u := b.learnUser(m.LearnID); u >= 0 {
				b.mapLearn[i] = int32(u)
				b.claimedBy[u] = m.B24ID
			}
		}
	}
	// Another portal's users are taken even when this portal's mapping
	// points at them (a mapping from before ownership was recorded).
	for id := range b.in.Actual.Foreign {
		if u := b.learnUser(id); u >= 0 {
			b.claimedBy[u] = foreignOwner
		}
	}
	// The user the run signs in as belongs to the account, even where a
	// mapping from before this rule points at it.
	for _, login := range append([]string{b.o.SignInLogin}, b.o.OtherSignIns...) {
		if login = normEmail(login); login == "" {
			continue
		}
		for _, u := range b.byAddress(login) {
			if u >= 0 {
				b.claimedBy[u] = signInOwner
			}
		}
	}
	// Nor is an administrator linked by address: the address is the
	// employee's to change, and the run writes a linked user's next address
	// into its login (a password reset would then hand over the rights).
	// One an employee is already linked to (a learner the Learn admin
	// promoted) stays theirs, its address left alone (see buildUsers).
	for u := range b.in.Actual.Users {
		if b.in.Actual.Users[u].Administers && b.claimedBy[u] == 0 {
			b.claimedBy[u] = adminOwner
		}
		// Nor one whose read shows no role: it may be an administrator or
		// the owner, and nothing else Learn answers tells (the role keys
		// are not settled). Only a user the app created, or linked while
		// it read as a learner, stays linked.
		if b.in.Actual.Users[u].RoleUnknown && b.claimedBy[u] == 0 {
			b.claimedBy[u] = roleUnknownOwner
		}
	}
	es := b.in.Desired.Employees
	b.emps = indexBy(len(es), func(i int) int64 { return es[i].ID }, nil)
	b.empDept = make([]int64, len(es))
	b.empSynced = make([]bool, len(es))
	b.empLearn = slices.Repeat([]int32{-1}, len(es))
}

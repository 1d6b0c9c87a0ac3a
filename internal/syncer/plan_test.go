package syncer

import (
	"b24learn/internal/bitrix24"

	"errors"
	"fmt"
	"slices"
	"testing"
)

const (
	member  = "a223c6b3710f85df22e9377d6c4f7553"
	member2 = "0b8c9e7d41f2a6b35c0d9e8f7a6b5c4d"
)

// org is a small portal:
//
//	1 Acme (head 10)
//	├── 2 Sales (head 20)
//	│   └── 3 Sales EU (head 30)
//	└── 4 IT (no head)
//	    └── 5 Support (head 50)
func org() Desired {
	return Desired{
		Departments: []Department{
			{ID: 1, Name: "Acme", Head: 10},
			{ID: 2, Name: "Sales", Parent: 1, Head: 20},
			{ID: 3, Name: "Sales EU", Parent: 2, Head: 30},
			{ID: 4, Name: "IT", Parent: 1},
			{ID: 5, Name: "Support", Parent: 4, Head: 50},
		},
		Employees: []Employee{
			emp(10, "ceo@acme.test", 1),
			emp(20, "sales@acme.test", 2),
			emp(21, "seller@acme.test", 2),
			emp(30, "eu@acme.test", 3, 2),
			emp(50, "support@acme.test", 5),
			emp(51, "helper@acme.test", 99, 5, 4), // 99 does not exist
			{ID: 31, Active: false, UserType: "employee", Email: "gone@acme.test", Departments: []int64{3}},
			{ID: 40, Active: true, UserType: "extranet", Email: "partner@other.test"},
			emp(41, "", 2),
			emp(42, "SELLER@acme.test", 4),
		},
	}
}

func emp(id int64, email string, depts ...int64) Employee {
	return Employee{
		ID: id, Active: true, UserType: "employee", Email: email, Departments: depts,
		FirstName: fmt.Sprintf("First%d", id), LastName: fmt.Sprintf("Last%d", id), JobTitle: "Staff",
	}
}

func opts() Options {
	return Options{MemberID: member, Selection: Selection{Selected: []int64{1}}}
}

func emptyLearn() Actual {
	return Actual{Departments: []LearnDepartment{{ID: "root", Name: "Learn account"}}}
}

// simulate applies a plan to an in-memory Learn and mapping, the way Apply
// does against the real client.
func simulate(t *testing.T, p *Plan, a Actual) Actual {
	t.Helper()
	depts := map[string]*LearnDepartment{}
	var order []string
	for _, d := range a.Departments {
		d := d
		depts[d.ID] = &d
		order = append(order, d.ID)
	}
	users := map[string]*LearnUser{}
	var uorder []string
	for _, u := range a.Users {
		u := u
		users[u.ID] = &u
		uorder = append(uorder, u.ID)
	}
	maps := map[string]Mapping{}
	for _, m := range a.Mappings {
		maps[fmt.Sprint(m.Kind, m.B24ID)] = m
	}
	deptIDs := map[int64]string{}
	for k, v := range p.DeptIDs {
		deptIDs[k] = v
	}
	userIDs := map[int64]string{}
	for k, v := range p.UserIDs {
		userIDs[k] = v
	}
	ref := func(learnID string, b24 int64) string {
		if learnID != "" {
			return learnID
		}
		id, ok := deptIDs[b24]
		if !ok {
			t.Fatalf("department %d referenced before it exists", b24)
		}
		return id
	}
	subOf := func(s *SubTarget, cur Subordination) Subordination {
		if s == nil {
			return cur
		}
		if s.Type != SubManual {
			return Subordination{Type: s.Type}
		}
		id := s.SupervisorLearnID
		if id == "" {
			id = userIDs[s.SupervisorB24]
		}
		if id == "" {
			t.Fatalf("supervisor %d unknown", s.SupervisorB24)
		}
		return Subordination{Type: SubManual, SupervisorID: id}
	}
	for _, s := range p.Steps {
		if s.Held {
			continue
		}
		id := s.LearnID
		switch {
		case s.Kind == KindDepartment && s.Action == ActionCreate:
			id = fmt.Sprintf("d%d", s.B24ID)
			depts[id] = &LearnDepartment{ID: id, Name: s.Dept.Name, Code: s.Dept.Code, ParentID: ref(s.Dept.ParentLearnID, s.Dept.ParentB24),
				Subordination: Subordination{Type: SubInherit}, CoSubordination: Subordination{Type: SubInherit}}
			order = append(order, id)
			deptIDs[s.B24ID] = id
		case s.Kind == KindDepartment && (s.Action == ActionUpdate || s.Action == ActionMove):
			d := depts[id]
			d.Name, d.Code = s.Dept.Name, s.Dept.Code
			if s.Dept.ParentLearnID != "" || s.Dept.ParentB24 != 0 {
				d.ParentID = ref(s.Dept.ParentLearnID, s.Dept.ParentB24)
			}
		case s.Kind == KindDepartment && s.Action == ActionSupervisor:
			if id == "" {
				id = deptIDs[s.B24ID]
			}
			d := depts[id]
			d.Subordination, d.CoSubordination = subOf(s.Sub.Sub, d.Subordination), subOf(s.Sub.CoSub, d.CoSubordination)
		case s.Kind == KindUser && s.Action == ActionCreate:
			id = fmt.Sprintf("u%d", s.B24ID)
			u := s.User
			p := u.Profile
			p.Extra = nil // a copy of its own below
			users[id] = &LearnUser{ID: id, DepartmentID: ref(u.DeptLearnID, u.DeptB24), Status: 1, Profile: p,
				Managers: &Managers{Subordination: Subordination{Type: SubInherit}, CoSubordination: Subordination{Type: SubInherit}}}
			for k, v := range u.Extra {
				if users[id].Extra == nil {
					users[id].Extra = map[string]string{}
				}
				users[id].Extra[k] = v
			}
			uorder = append(uorder, id)
			userIDs[s.B24ID] = id
		case s.Kind == KindUser && (s.Action == ActionUpdate || s.Action == ActionMove):
			lu, w := users[id], s.User
			have := lu.fields()
			for i, p := range w.fields() {
				*have[i] = *p
			}
			lu.DepartmentID = ref(w.DeptLearnID, w.DeptB24)
			for k, v := range w.Extra {
				if lu.Extra == nil {
					lu.Extra = map[string]string{}
				}
				lu.Extra[k] = v
			}
		case s.Kind == KindUser && (s.Action == ActionReactivate || s.Action == ActionDeactivate):
			users[id].Status = s.Status
		case s.Kind == KindUser && s.Action == ActionSupervisor:
			if id == "" {
				id = userIDs[s.B24ID]
			}
			u := users[id]
			l := u.Links()
			u.Managers = &Managers{Subordination: subOf(s.Sub.Sub, l.Subordination), CoSubordination: subOf(s.Sub.CoSub, l.CoSubordination)}
		}
		if s.Action == ActionSupervisor {
			continue
		}
		if id == "" {
			t.Fatalf("step without target: %+v", s)
		}
		key := fmt.Sprint(s.Kind, s.B24ID)
		m := maps[key]
		fp := s.fingerprint()
		if s.Action == ActionDeactivate {
			fp = m.Fingerprint
		}
		// As upsertMapping: how the link was made changes only with it.
		adopted := s.Adopted && s.Action != ActionCreate
		if m.LearnID == id {
			adopted = m.Adopted
		}
		maps[key] = Mapping{Kind: s.Kind, B24ID: s.B24ID, LearnID: id, Fingerprint: fp, Adopted: adopted}
	}
	var out Actual
	for _, id := range order {
		out.Departments = append(out.Departments, *depts[id])
	}
	for _, id := range uorder {
		out.Users = append(out.Users, *users[id])
	}
	for _, m := range maps {
		out.Mappings = append(out.Mappings, m)
	}
	slices.SortFunc(out.Mappings, func(x, y Mapping) int { return cmpInt(x.B24ID, y.B24ID) })
	return out
}

func mustPlan(t *testing.T, in Input) *Plan {
	t.Helper()
	p, err := BuildPlan(in)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// converge plans and applies once, then checks that the next plan is empty.
func converge(t *testing.T, o Options, d Desired, a Actual) Actual {
	t.Helper()
	a = simulate(t, mustPlan(t, Input{Options: o, Desired: d, Actual: a}), a)
	if p := mustPlan(t, Input{Options: o, Desired: d, Actual: a}); len(p.Steps) != 0 {
		t.Fatalf("second plan not empty: %s", describe(p.Steps))
	}
	return a
}

func describe(steps []Step) string {
	s := ""
	for _, st := range steps {
		s += fmt.Sprintf("\n  %s.%s b24=%d learn=%s held=%v %s", st.Kind, st.Action, st.B24ID, st.LearnID, st.Held, st.Reason)
	}
	return s
}

func find(a Actual, kind Kind, b24 int64) string {
	for _, m := range a.Mappings {
		if m.Kind == kind && m.B24ID == b24 {
			return m.LearnID
		}
	}
	return ""
}

func dept(a Actual, id string) LearnDepartment {
	for _, d := range a.Departments {
		if d.ID == id {
			return d
		}
	}
	return LearnDepartment{}
}

func user(a Actual, id string) LearnUser {
	for _, u := range a.Users {
		if u.ID == id {
			return u
		}
	}
	return LearnUser{}
}

func actions(steps []Step) []string {
	var out []string
	for _, s := range steps {
		a := fmt.Sprintf("%s.%s:%d", s.Kind, s.Action, s.B24ID)
		if s.Held {
			a += ":held"
		}
		out = append(out, a)
	}
	return out
}

func TestPlanInitialSync(t *testing.T) {
	t.Parallel()
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: emptyLearn()})
	want := []string{
		"department.update:1", // the Learn root takes the company's name
		"department.create:2", "department.create:4",
		"department.create:3", "department.create:5",
		"user.create:10", "user.create:20", "user.create:21", "user.create:30", "user.create:50", "user.create:51",
	}
	if got := actions(p.Steps); !slices.Equal(got, want) {
		t.Fatalf("steps:\n got %v\nwant %v", got, want)
	}
	var refused []string
	for _, r := range p.Refused {
		refused = append(refused, fmt.Sprintf("%d: %s", r.B24ID, r.Reason))
		// The report says who it is.
		if r.After["first_name"] != fmt.Sprintf("First%d", r.B24ID) || r.After["last_name"] != fmt.Sprintf("Last%d", r.B24ID) {
			t.Errorf("refused %d carries no name: %v", r.B24ID, r.After)
		}
	}
	wantRefused := []string{
		"41: no_email",
		"42: email_shared(seller@acme.test, 21)",
	}
	if !slices.Equal(refused, wantRefused) {
		t.Fatalf("refused:\n got %v\nwant %v", refused, wantRefused)
	}
	for _, s := range p.Steps {
		if s.Kind == KindDepartment && s.Action == ActionCreate && s.Dept.Code != DepartmentCode(member, s.B24ID) {
			t.Errorf("department %d code %q", s.B24ID, s.Dept.Code)
		}
	}

	a := converge(t, opts(), org(), emptyLearn())
	if got := dept(a, "root").Name; got != "Acme" {
		t.Errorf("root name %q", got)
	}
	if got := dept(a, find(a, KindDepartment, 3)).ParentID; got != find(a, KindDepartment, 2) {
		t.Errorf("Sales EU under %q", got)
	}
	if got := user(a, find(a, KindUser, 10)).DepartmentID; got != "root" {
		t.Errorf("CEO in %q, want the Learn root", got)
	}
	// First in-scope department of UF_DEPARTMENT wins; unknown ids are skipped.
	if got := user(a, find(a, KindUser, 30)).DepartmentID; got != find(a, KindDepartment, 3) {
		t.Errorf("user 30 in %q", got)
	}
	if got := user(a, find(a, KindUser, 51)).DepartmentID; got != find(a, KindDepartment, 5) {
		t.Errorf("user 51 in %q", got)
	}
	u := user(a, find(a, KindUser, 20))
	if u.Login != "sales@acme.test" || u.Email != "sales@acme.test" || u.FirstName != "First20" || u.JobTitle != "Staff" {
		t.Errorf("user 20 = %+v", u)
	}
	for _, id := range []int64{31, 40, 41, 42} {
		if find(a, KindUser, id) != "" {
			t.Errorf("user %d synced", id)
		}
	}
}

func TestPlanSelection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		sel        Selection
		wantDepts  []int64 // created departments
		underRoot  []int64 // those that hang directly under the Learn root
		wantUsers  []int64
		deptOfUser map[int64]int64
	}{
		{
			name: "Subtree", sel: Selection{Selected: []int64{2}},
			wantDepts: []int64{2, 3}, underRoot: []int64{2},
			wantUsers: []int64{20, 21, 30}, deptOfUser: map[int64]int64{30: 3},
		},
		{
			name: "ExcludedSubtree", sel: Selection{Selected: []int64{1}, Excluded: []int64{2}},
			wantDepts: []int64{4, 5}, underRoot: []int64{4},
			wantUsers: []int64{10, 42, 50, 51},
		},
		{
			name: "ReselectedInsideExcluded", sel: Selection{Selected: []int64{1, 3}, Excluded: []int64{2}},
			wantDepts: []int64{3, 4, 5}, underRoot: []int64{3, 4},
			wantUsers: []int64{10, 30, 42, 50, 51}, deptOfUser: map[int64]int64{30: 3},
		},
		{
			name: "ExcludeWinsOverSelectOnSameID", sel: Selection{Selected: []int64{4}, Excluded: []int64{4}},
			wantDepts: nil, wantUsers: nil,
		},
		{
			name: "MultiDepartmentFallsToNextInScope", sel: Selection{Selected: []int64{2}, Excluded: []int64{3}},
			wantDepts: []int64{2}, underRoot: []int64{2},
			wantUsers: []int64{20, 21, 30}, deptOfUser: map[int64]int64{30: 2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			o.Selection = tc.sel
			p := mustPlan(t, Input{Options: o, Desired: org(), Actual: emptyLearn()})
			var depts, users []int64
			for _, s := range p.Steps {
				if s.Action == ActionCreate && s.Kind == KindDepartment {
					depts = append(depts, s.B24ID)
					if slices.Contains(tc.underRoot, s.B24ID) != (s.Dept.ParentLearnID == "root") {
						t.Errorf("department %d parent %q/%d", s.B24ID, s.Dept.ParentLearnID, s.Dept.ParentB24)
					}
				}
				if s.Action == ActionCreate && s.Kind == KindUser {
					users = append(users, s.B24ID)
					if want, ok := tc.deptOfUser[s.B24ID]; ok && s.User.DeptB24 != want {
						t.Errorf("user %d in %d, want %d", s.B24ID, s.User.DeptB24, want)
					}
				}
			}
			slices.Sort(depts)
			slices.Sort(users)
			if !slices.Equal(depts, tc.wantDepts) || !slices.Equal(users, tc.wantUsers) {
				t.Fatalf("departments %v users %v, want %v %v", depts, users, tc.wantDepts, tc.wantUsers)
			}
		})
	}
}

func TestPlanChanges(t *testing.T) {
	t.Parallel()
	base := converge(t, opts(), org(), emptyLearn())
	cases := []struct {
		name   string
		change func(d *Desired)
		want   []string
	}{
		{"RenameDepartment", func(d *Desired) { d.Departments[2].Name = "Sales Europe" }, []string{"department.update:3"}},
		{"NewSubDepartmentOfSelected", func(d *Desired) {
			d.Departments = append(d.Departments, Department{ID: 6, Name: "Night shift", Parent: 5})
		}, []string{"department.create:6"}},
		{"DepartmentMovedUnderAnother", func(d *Desired) { d.Departments[4].Parent = 2 }, []string{"department.move:5"}},
		{"UserMovedBetweenDepartments", func(d *Desired) { d.Employees[2].Departments = []int64{4} }, []string{"user.move:21"}},
		{"UserRenamed", func(d *Desired) { d.Employees[2].LastName = "Married" }, []string{"user.update:21"}},
		{"UserFired", func(d *Desired) { d.Employees[2].Active = false }, []string{"user.deactivate:21"}},
		{"UserDeleted", func(d *Desired) { d.Employees = slices.Delete(d.Employees, 2, 3) }, []string{"user.deactivate:21"}},
		{"UserBecameExtranet", func(d *Desired) { d.Employees[2].UserType = "extranet" }, []string{"user.deactivate:21"}},
		{"UserLeftScope", func(d *Desired) { d.Employees[2].Departments = []int64{99} }, []string{"user.deactivate:21"}},
		{"NewHire", func(d *Desired) { d.Employees = append(d.Employees, emp(60, "new@acme.test", 4)) }, []string{"user.create:60"}},
		{"EmailRemovedKeepsLogin", func(d *Desired) { d.Employees[2].Email = "" }, nil},
		{"HeadChangeWithoutToggles", func(d *Desired) { d.Departments[1].Head = 21 }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := org()
			tc.change(&d)
			p := mustPlan(t, Input{Options: opts(), Desired: d, Actual: base})
			if got := actions(p.Steps); !slices.Equal(got, tc.want) {
				t.Fatalf("steps %v, want %v%s", got, tc.want, describe(p.Steps))
			}
			converge(t, opts(), d, base)
		})
	}
}

func TestPlanRehire(t *testing.T) {
	t.Parallel()
	a := converge(t, opts(), org(), emptyLearn())
	fired := org()
	fired.Employees[2].Active = false
	a = converge(t, opts(), fired, a)
	if got := user(a, find(a, KindUser, 21)).Status; got != StatusInactive {
		t.Fatalf("fired user status %d", got)
	}
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	if got, want := actions(p.Steps), []string{"user.reactivate:21"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	a = converge(t, opts(), org(), a)
	if got := user(a, find(a, KindUser, 21)).Status; got != StatusActive {
		t.Fatalf("re-hired user status %d", got)
	}
}

func TestPlanMatchesExistingUsers(t *testing.T) {
	t.Parallel()
	a := emptyLearn()
	a.Users = []LearnUser{
		// Same login, already right except department: linked and moved.
		{ID: "x10", DepartmentID: "root", Status: 1, Profile: Profile{Login: "CEO@acme.test", Email: "ceo@acme.test", FirstName: "First10", LastName: "Last10", JobTitle: "Staff"}},
		// Matched by e-mail with an admin-chosen login, stale name: updated, login kept.
		{ID: "x20", DepartmentID: "root", Status: 3, Profile: Profile{Login: "jsmith", Email: "sales@acme.test", FirstName: "Old"}},
	}
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	var got []string
	for _, s := range p.Steps {
		if s.Kind == KindUser && (s.B24ID == 10 || s.B24ID == 20) {
			got = append(got, fmt.Sprintf("%s:%d:%s", s.Action, s.B24ID, s.LearnID))
		}
	}
	want := []string{"link:10:x10", "update:20:x20", "reactivate:20:x20"}
	if !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for _, s := range p.Steps {
		if s.Action == ActionUpdate && s.B24ID == 20 && s.User.Login != "jsmith" {
			t.Errorf("login changed to %q", s.User.Login)
		}
	}
	a = converge(t, opts(), org(), a)
	if len(a.Users) != 6 {
		t.Errorf("users %d, want 6 (no duplicate)", len(a.Users))
	}
}

// A Learn user found by address is adopted, and its mapping says so: from
// then on an e-mail change in Bitrix24 leaves its login and e-mail to Learn,
// while a user the plan created follows it. A mapping from before the
// adopted flag reads as created: its login follows, as it always did.
func TestPlanAdoptedUserKeepsItsAddress(t *testing.T) {
	t.Parallel()
	a := emptyLearn()
	a.Users = []LearnUser{{ID: "x20", DepartmentID: "root", Status: StatusActive,
		Profile: Profile{Login: "sales@acme.test", Email: "sales@acme.test", FirstName: "Old"}}}
	a = converge(t, opts(), org(), a)
	created := find(a, KindUser, 50)
	for _, m := range a.Mappings {
		if m.Kind == KindUser && (m.B24ID == 20) != m.Adopted {
			t.Fatalf("mapping of %d: adopted %v", m.B24ID, m.Adopted)
		}
	}
	d := org()
	for i := range d.Employees {
		switch d.Employees[i].ID {
		case 20:
			d.Employees[i].Email, d.Employees[i].LastName = "mallory@evil.example", "Renamed"
		case 50:
			d.Employees[i].Email = "support-new@acme.test"
		}
	}
	b := converge(t, opts(), d, a)
	if u := user(b, "x20"); u.Login != "sales@acme.test" || u.Email != "sales@acme.test" || u.LastName != "Renamed" {
		t.Errorf("adopted user %+v, want Learn's address and the new last name", u.Profile)
	}
	if u := user(b, created); u.Login != "support-new@acme.test" || u.Email != "support-new@acme.test" {
		t.Errorf("created user %+v, want the new address", u.Profile)
	}
	for i := range a.Mappings {
		a.Mappings[i].Adopted = false
	}
	if u := user(converge(t, opts(), d, a), "x20"); u.Login != "mallory@evil.example" {
		t.Errorf("user of a mapping from before the flag: login %q, want it to follow the e-mail", u.Login)
	}
}

func TestPlanLostMappingMatchesByCode(t *testing.T) {
	t.Parallel()
	a := converge(t, opts(), org(), emptyLearn())
	// The crash window: Learn has everything, the mapping rows are gone.
	a.Mappings = nil
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	for _, s := range p.Steps {
		if s.Action != ActionLink {
			t.Errorf("step %s.%s:%d, want only links", s.Kind, s.Action, s.B24ID)
		}
	}
	if p.Writes() != 0 {
		t.Errorf("writes %d", p.Writes())
	}
	b := converge(t, opts(), org(), a)
	if len(b.Departments) != len(a.Departments) || len(b.Users) != len(a.Users) {
		t.Errorf("duplicates: %d/%d departments, %d/%d users", len(b.Departments), len(a.Departments), len(b.Users), len(a.Users))
	}
}

func TestPlanFingerprintToleratesLearnEdits(t *testing.T) {
	t.Parallel()
	a := converge(t, opts(), org(), emptyLearn())
	// A Learn admin renames a department and a user: not fought back while
	// Bitrix24 stays the same; structure is always restored.
	for i := range a.Departments {
		if a.Departments[i].ID == find(a, KindDepartment, 2) {
			a.Departments[i].Name = "Vertrieb"
		}
	}
	for i := range a.Users {
		if a.Users[i].ID == find(a, KindUser, 20) {
			a.Users[i].JobTitle = "Boss"
			a.Users[i].DepartmentID = "root"
		}
	}
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	if got, want := actions(p.Steps), []string{"user.move:20"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
}

func TestPlanSupervisors(t *testing.T) {
	t.Parallel()
	o := opts()
	o.HeadsAsManagers = true
	o.ParentHeadsAsSupervisors = true
	a := converge(t, o, org(), emptyLearn())
	uid := func(b24 int64) string { return find(a, KindUser, b24) }
	did := func(b24 int64) LearnDepartment { return dept(a, find(a, KindDepartment, b24)) }
	manual := func(b24 int64) Subordination { return Subordination{Type: SubManual, SupervisorID: uid(b24)} }
	none := Subordination{Type: SubNone}
	inherit := Subordination{Type: SubInherit}
	checks := []struct {
		name      string
		got       LearnDepartment
		sub, co   Subordination
		gotU      *LearnUser
		usub, uco Subordination
	}{
		{name: "Root", got: dept(a, "root"), sub: none, co: manual(10)},
		{name: "Sales", got: did(2), sub: manual(10), co: manual(20)},
		{name: "SalesEU", got: did(3), sub: manual(20), co: manual(30)},
		{name: "ITWithoutHead", got: did(4), sub: manual(10), co: manual(10)},
		{name: "Support", got: did(5), sub: manual(10), co: manual(50)},
	}
	for _, c := range checks {
		if c.got.Subordination != c.sub || c.got.CoSubordination != c.co {
			t.Errorf("%s: sub %+v co %+v, want %+v %+v", c.name, c.got.Subordination, c.got.CoSubordination, c.sub, c.co)
		}
	}
	users := []struct {
		b24     int64
		sub, co Subordination
	}{
		{10, inherit, none},       // the CEO heads the root: nobody above
		{20, inherit, manual(10)}, // heads Sales: the next head up
		{21, inherit, inherit},    // ordinary member
		{30, inherit, manual(20)}, // heads Sales EU
		{50, inherit, manual(10)}, // IT has no head: the root's
		{51, inherit, inherit},    // member of Support
	}
	for _, c := range users {
		u := user(a, uid(c.b24))
		if l := u.Links(); l.Subordination != c.sub || l.CoSubordination != c.co {
			t.Errorf("user %d: sub %+v co %+v, want %+v %+v", c.b24, l.Subordination, l.CoSubordination, c.sub, c.co)
		}
	}

	// A head change touches exactly the department and the two heads.
	d := org()
	d.Departments[2].Head = 21 // Sales EU now headed by 21, who sits in Sales
	p := mustPlan(t, Input{Options: o, Desired: d, Actual: a})
	if got, want := actions(p.Steps), []string{"department.set_supervisor:3", "user.set_supervisor:30"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	converge(t, o, d, a)

	// One person heading a department and its parent is never their own supervisor.
	d = org()
	d.Departments[2].Head = 20
	d.Employees[1].Departments = []int64{3}
	b := converge(t, o, d, a)
	u := user(b, uid(20))
	if l := u.Links(); l.Subordination != manual(10) || l.CoSubordination != manual(10) {
		t.Errorf("double head: sub %+v co %+v", l.Subordination, l.CoSubordination)
	}
}

func TestPlanSafeguard(t *testing.T) {
	t.Parallel()
	big := func(n int) Desired {
		d := Desired{Departments: []Department{{ID: 1, Name: "Root"}}}
		for i := 1; i <= n; i++ {
			d.Employees = append(d.Employees, emp(int64(i), fmt.Sprintf("u%d@x.test", i), 1))
		}
		return d
	}
	fire := func(d Desired, n int) Desired {
		for i := 0; i < n; i++ {
			d.Employees[i].Active = false
		}
		return d
	}
	a := converge(t, opts(), big(100), emptyLearn())
	cases := []struct {
		name     string
		fired    int
		sg       Safeguard
		approved map[int64]bool
		held     int
		applied  int
	}{
		{name: "ThirtyPercentHeld", fired: 30, held: 30},
		{name: "TenPercentPasses", fired: 10, applied: 10},
		{name: "ElevenPercentHeld", fired: 11, held: 11},
		{name: "BelowMinimumPasses", fired: 9, sg: Safeguard{Percent: 1, MinCount: 10}, applied: 9},
		{name: "Configurable", fired: 30, sg: Safeguard{Percent: 50, MinCount: 10}, applied: 30},
		{name: "ApprovedApplied", fired: 30, approved: map[int64]bool{}, applied: 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts()
			o.Safeguard = tc.sg
			if tc.approved != nil {
				o.Approved = map[int64]bool{}
				for i := 1; i <= tc.fired; i++ {
					o.Approved[int64(i)] = true
				}
			}
			p := mustPlan(t, Input{Options: o, Desired: fire(big(100), tc.fired), Actual: a})
			held, applied := 0, 0
			for _, s := range p.Steps {
				if s.Action != ActionDeactivate {
					t.Fatalf("unexpected step %s.%s", s.Kind, s.Action)
				}
				if s.Held {
					held++
				} else {
					applied++
				}
			}
			if held != tc.held || applied != tc.applied || p.SyncedUsers != 100 {
				t.Fatalf("held %d applied %d synced %d, want %d %d 100", held, applied, p.SyncedUsers, tc.held, tc.applied)
			}
		})
	}
}

func TestPlanRefusesEmptyRead(t *testing.T) {
	t.Parallel()
	a := converge(t, opts(), org(), emptyLearn())
	cases := []struct {
		name string
		d    Desired
		o    Options
		want error
	}{
		{"NoDepartments", Desired{Employees: org().Employees}, opts(), ErrEmptyRead},
		{"NoEmployees", Desired{Departments: org().Departments}, opts(), ErrEmptyRead},
		{"OnlyFired", Desired{Departments: org().Departments, Employees: []Employee{{ID: 1, UserType: "employee"}}}, opts(), ErrEmptyRead},
		{"NothingSelected", org(), Options{MemberID: member}, ErrNothingSelected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := BuildPlan(Input{Options: tc.o, Desired: tc.d, Actual: a}); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPlanAdminCodesKeepSingleLayout(t *testing.T) {
	t.Parallel()
	a := emptyLearn()
	a.Departments = append(a.Departments, LearnDepartment{ID: "hr", Name: "HR", ParentID: "root", Code: "HR:12"})
	p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a})
	if p.Layout.Multi {
		t.Fatal("a Learn admin's code switched to the shared layout")
	}
	a.Departments = append(a.Departments, LearnDepartment{ID: "x", Name: "X", ParentID: "root", Code: member2 + ":3"})
	if p := mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a}); !p.Layout.Multi {
		t.Fatal("another portal's department not seen")
	}
}

func TestPlanSecondPortal(t *testing.T) {
	t.Parallel()
	// Portal 1 alone: its root is the Learn root.
	a := converge(t, opts(), org(), emptyLearn())
	users1 := len(a.Users)

	// Portal 2 arrives: it sees portal 1's codes and builds its own child.
	o2 := Options{MemberID: member2, Selection: Selection{Selected: []int64{1}}}
	d2 := Desired{
		Departments: []Department{{ID: 1, Name: "Beta"}, {ID: 2, Name: "Ops", Parent: 1}},
		Employees:   []Employee{emp(7, "ops@beta.test", 2), emp(8, "boss@beta.test", 1)},
	}
	a2 := Actual{Departments: a.Departments, Users: a.Users}
	p := mustPlan(t, Input{Options: o2, Desired: d2, Actual: a2})
	if !p.Layout.Multi {
		t.Fatal("portal 2 does not see the shared account")
	}
	a2 = converge(t, o2, d2, a2)
	beta := dept(a2, find(a2, KindDepartment, 1))
	if beta.ParentID != "root" || beta.Code != member2+":1" || beta.Name != "Beta" {
		t.Fatalf("portal 2 root %+v", beta)
	}
	if got := user(a2, find(a2, KindUser, 8)).DepartmentID; got != beta.ID {
		t.Errorf("portal 2 root user in %q", got)
	}

	// Portal 1's next run moves its tree into its own child.
	a1 := Actual{Departments: a2.Departments, Users: a2.Users, Mappings: a.Mappings}
	p = mustPlan(t, Input{Options: opts(), Desired: org(), Actual: a1})
	if got, want := actions(p.Steps), []string{
		"department.create:1", "department.move:2", "department.move:4", "user.move:10",
	}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	a1 = converge(t, opts(), org(), a1)
	acme := dept(a1, find(a1, KindDepartment, 1))
	if acme.ParentID != "root" || acme.Code != member+":1" || acme.ID == "root" {
		t.Fatalf("portal 1 root %+v", acme)
	}
	if got := user(a1, find(a1, KindUser, 10)).DepartmentID; got != acme.ID {
		t.Errorf("CEO in %q", got)
	}
	active := 0
	for _, u := range a1.Users {
		if u.Status == StatusActive {
			active++
		}
	}
	if len(a1.Users) != users1+2 || active != len(a1.Users) {
		t.Errorf("users %d active %d, want %d all active", len(a1.Users), active, users1+2)
	}
	// Portal 2 is stable after portal 1 moved.
	converge(t, o2, d2, Actual{Departments: a1.Departments, Users: a1.Users, Mappings: a2.Mappings})
}

func TestScope(t *testing.T) {
	ds := []bitrix24.Department{{ID: 1, Name: "Root"}, {ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "East", Parent: 2},
		{ID: 4, Name: "West", Parent: 2}, {ID: 5, Name: "IT", Parent: 1}}
	us := []bitrix24.User{
		{ID: 10, Active: true, UserType: "employee", Departments: []int64{3}},
		{ID: 11, Active: true, UserType: "employee", Departments: []int64{4}},    // excluded subtree
		{ID: 12, Active: false, UserType: "employee", Departments: []int64{3}},   // fired
		{ID: 13, Active: true, UserType: "extranet", Departments: []int64{3}},    // extranet
		{ID: 14, Active: true, UserType: "employee", Departments: []int64{5, 2}}, // second department in scope
		{ID: 15, Active: true, UserType: "employee", Departments: []int64{5}},
	}
	depts, emps := Scope(ds, us, Selection{Selected: []int64{2}, Excluded: []int64{4}})
	if depts != 2 || emps != 2 {
		t.Fatalf("Scope = %d departments, %d employees; want 2 (Sales, East) and 2 (10, 14)", depts, emps)
	}
	if depts, emps := Scope(ds, us, Selection{}); depts != 0 || emps != 0 {
		t.Fatalf("empty selection: %d, %d", depts, emps)
	}
}

// TestPlanRootLinksUnkept: links Learn did not keep on its root are not
// planned again while they stay the wanted ones; new ones are.
func TestPlanRootLinksUnkept(t *testing.T) {
	t.Parallel()
	o := opts()
	o.HeadsAsManagers = true
	o.ParentHeadsAsSupervisors = true
	a := converge(t, o, org(), emptyLearn())
	for i := range a.Departments {
		if a.Departments[i].ID == "root" {
			a.Departments[i].CoSubordination = Subordination{Type: SubNone} // Learn kept the root as it was
		}
	}
	p := mustPlan(t, Input{Options: o, Desired: org(), Actual: a})
	if got, want := actions(p.Steps), []string{"department.set_supervisor:1"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	a.Refusals = []Refusal{{Kind: KindDepartment, B24ID: 1, Part: PartLinks, Fingerprint: linksKey(p.Steps[0].Sub)}}
	if p := mustPlan(t, Input{Options: o, Desired: org(), Actual: a}); len(p.Steps) != 0 {
		t.Fatalf("links not kept planned again: %s", describe(p.Steps))
	}
	d := org()
	d.Departments[0].Head = 21
	p = mustPlan(t, Input{Options: o, Desired: d, Actual: a})
	if !slices.Contains(actions(p.Steps), "department.set_supervisor:1") {
		t.Fatalf("a new head of the root not planned: %s", describe(p.Steps))
	}
}

// TestPlanRefusedLinks: a department's or a user's links Learn refused are
// not planned again while they stay the wanted ones for the same Learn
// object, and are reported as remembered; new wanted links are planned.
func TestPlanRefusedLinks(t *testing.T) {
	t.Parallel()
	o := opts()
	o.HeadsAsManagers = true
	o.ParentHeadsAsSupervisors = true
	a := converge(t, o, org(), emptyLearn())
	sales, eu := find(a, KindDepartment, 2), find(a, KindUser, 30)
	for i := range a.Departments {
		if a.Departments[i].ID == sales { // Learn refused Sales' links
			a.Departments[i].Subordination, a.Departments[i].CoSubordination = Subordination{}, Subordination{}
		}
	}
	for i := range a.Users {
		if a.Users[i].ID == eu { // and the Sales EU head's
			a.Users[i].Managers = &Managers{Subordination: Subordination{Type: SubInherit}, CoSubordination: Subordination{Type: SubInherit}}
		}
	}
	p := mustPlan(t, Input{Options: o, Desired: org(), Actual: a})
	if got, want := actions(p.Steps), []string{"department.set_supervisor:2", "user.set_supervisor:30"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	refused := p.Steps
	for _, s := range refused {
		a.Refusals = append(a.Refusals, Refusal{Kind: s.Kind, B24ID: s.B24ID, Part: PartLinks,
			Fingerprint: linksKeyAt(s.LearnID, s.Sub), Reason: because(ReasonLearn, "refused")})
	}
	p = mustPlan(t, Input{Options: o, Desired: org(), Actual: a})
	if len(p.Steps) != 0 {
		t.Fatalf("refused links planned again: %s", describe(p.Steps))
	}
	var links []Step
	for _, s := range p.Refused {
		if s.Stage == StageSupervisors {
			links = append(links, s)
		}
	}
	if got, want := actions(links), []string{"department.refuse:2", "user.refuse:30"}; !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
	for _, s := range links {
		if !s.Reason.Has(ReasonRemembered) || !s.Reason.Has(ReasonLearn) || s.After["co_subordination"] == "" {
			t.Errorf("%s.%s:%d reported %+v, want remembered with Learn's reason and the wanted links", s.Kind, s.Action, s.B24ID, s)
		}
	}
	if c := p.Counts(); c["department.refused"] != 1 {
		t.Errorf("counts %v", c)
	}

	// Another Learn object for Sales (made anew) is asked again.
	b := a
	b.Refusals = []Refusal{{Kind: KindDepartment, B24ID: 2, Part: PartLinks, Fingerprint: linksKeyAt("elsewhere", refused[0].Sub)}}
	if got := actions(mustPlan(t, Input{Options: o, Desired: org(), Actual: b}).Steps); !slices.Contains(got, "department.set_supervisor:2") {
		t.Errorf("links refused for another Learn department not planned: %v", got)
	}

	// A new head of Sales: its links and the Sales EU head's change and go out.
	d := org()
	d.Departments[1].Head = 21
	p = mustPlan(t, Input{Options: o, Desired: d, Actual: a})
	if got := actions(p.Steps); !slices.Contains(got, "user.set_supervisor:30") || !slices.Contains(got, "department.set_supervisor:2") {
		t.Errorf("after a new head steps %v, want Sales' links and user 30's", got)
	}
}

// TestPlanRefusedKeptLinks: a user's links kept from Learn name their
// supervisor by Learn id, so a refusal of one such link does not hold for
// another.
func TestPlanRefusedKeptLinks(t *testing.T) {
	t.Parallel()
	o := opts()
	o.HeadsAsManagers = true // subordination is Learn's, kept as it is
	a := converge(t, o, org(), emptyLearn())
	seller := find(a, KindUser, 21)
	set := func(sup string) {
		for i := range a.Users {
			if a.Users[i].ID == seller {
				a.Users[i].Managers = &Managers{Subordination: Subordination{Type: SubManual, SupervisorID: sup},
					CoSubordination: Subordination{Type: SubNone}} // not inherit: planned
			}
		}
	}
	set(find(a, KindUser, 10))
	p := mustPlan(t, Input{Options: o, Desired: org(), Actual: a})
	if got, want := actions(p.Steps), []string{"user.set_supervisor:21"}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	a.Refusals = []Refusal{{Kind: KindUser, B24ID: 21, Part: PartLinks, Fingerprint: linksKeyAt(seller, p.Steps[0].Sub)}}
	if p := mustPlan(t, Input{Options: o, Desired: org(), Actual: a}); len(p.Steps) != 0 {
		t.Fatalf("refused links planned again: %s", describe(p.Steps))
	}
	set(find(a, KindUser, 20)) // a Learn admin named another supervisor
	if got, want := actions(mustPlan(t, Input{Options: o, Desired: org(), Actual: a}).Steps), []string{"user.set_supervisor:21"}; !slices.Equal(got, want) {
		t.Fatalf("links with another kept supervisor: steps %v, want %v", got, want)
	}
}

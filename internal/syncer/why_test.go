package syncer

import (
	"fmt"
	"slices"
	"testing"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
)

// Why gives each employee of an org the reason the plan itself would act
// on: the same builder rules, one case per reason.
func TestWhyReasons(t *testing.T) {
	t.Parallel()
	d := Desired{
		Departments: []Department{
			{ID: 1, Name: "Root"}, {ID: 2, Name: "Sales", Parent: 1}, {ID: 3, Name: "Closed", Parent: 2},
			{ID: 4, Name: "Other", Parent: 1},
		},
		Employees: []Employee{
			{ID: 10, Active: true, UserType: "employee", Email: "a@x.test", Departments: []int64{2}},
			{ID: 11, Active: false, UserType: "employee", Email: "b@x.test", Departments: []int64{2}},
			{ID: 12, Active: true, UserType: "extranet", Email: "c@x.test", Departments: []int64{2}},
			{ID: 13, Active: true, UserType: "employee", Email: "d@x.test", Departments: []int64{4}},
			{ID: 14, Active: true, UserType: "employee", Email: "e@x.test", Departments: []int64{3}},
			{ID: 15, Active: true, UserType: "employee", Departments: []int64{2}},
			{ID: 16, Active: true, UserType: "employee", Email: "g@x.test", Departments: []int64{2}},
			{ID: 17, Active: true, UserType: "employee", Email: "h@x.test", Departments: []int64{2}},
			{ID: 18, Active: true, UserType: "employee", Email: "i@x.test", Departments: []int64{2}},
			{ID: 19, Active: true, UserType: "employee", Departments: []int64{2}},
			{ID: 20, Active: true, UserType: "employee", Email: "j@x.test", Departments: []int64{2}},
		},
	}
	o := Options{MemberID: "m", Selection: Selection{Selected: []int64{2}, Excluded: []int64{3}}}
	cases := []struct {
		id     int64
		mapped *Mapping
		last   *RunItem
		want   string
		dept   int64
	}{
		{id: 10, want: WhyInScope, dept: 2},
		{id: 11, want: WhyDismissed},
		{id: 12, want: WhyExtranet},
		{id: 13, want: WhyNotSelected},
		{id: 14, want: WhyExcluded, dept: 3},
		{id: 15, want: WhyNoEmail, dept: 2},
		{id: 16, mapped: &Mapping{Kind: KindUser, B24ID: 16, LearnID: "u16", LicenceWait: true}, want: WhyLicence, dept: 2},
		{id: 17, last: &RunItem{Action: ActionConflict, Status: ItemConflict, After: map[string]string{"owner": "other.bitrix24.test"}}, want: WhyForeign, dept: 2},
		{id: 18, last: &RunItem{Action: ActionCreate, Status: ItemFailed, Reason: because(ReasonLearn, "learn refused: job_title too long")}, want: WhyRefused, dept: 2},
		{id: 19, mapped: &Mapping{Kind: KindUser, B24ID: 19, LearnID: "u19"}, want: WhyInScope, dept: 2}, // linked: keeps Learn's login
		{id: 20, last: &RunItem{Action: ActionInvited, Status: ItemInvited, Reason: because(ReasonInvited)}, want: WhyInvited, dept: 2},
		{id: 20, mapped: &Mapping{Kind: KindUser, B24ID: 20, LearnID: "u20"}, last: &RunItem{Action: ActionInvited, Status: ItemInvited},
			want: WhyInScope, dept: 2}, // created since (Sync this employee): in Learn
		{id: 99, want: WhyNotInBitrix24},
	}
	for _, c := range cases {
		v := Why(d, o, c.mapped, c.last, c.id)
		if v.Code != c.want || v.Department != c.dept {
			t.Errorf("user %d: %+v, want %s in department %d", c.id, v, c.want, c.dept)
		}
	}
	if v := Why(d, o, nil, &RunItem{Status: ItemFailed, Reason: because(ReasonLearn, "x")}, 18); v.Detail.String() != "learn(x)" {
		t.Errorf("refusal detail %q, want Learn's reason", v.Detail)
	}
}

// whyOrg is a generated org with a selected subtree (sel) and, inside it, an
// excluded one (excl); a few users are moved so that every scope case
// occurs: one only in the excluded subtree, one in it and in scope too, one
// in it and outside the selection.
func whyOrg(t *testing.T) (org b24sim.Org, sel, excl int64) {
	t.Helper()
	org = b24sim.GenerateOrg(15, 400, 30)
	children := map[int64][]int64{}
	for _, d := range org.Departments {
		if d.Parent != 0 {
			children[d.Parent] = append(children[d.Parent], d.ID)
		}
	}
	var size func(int64) int
	size = func(id int64) int {
		n := 1
		for _, c := range children[id] {
			n += size(c)
		}
		return n
	}
	// The largest subtree below the root, and in it the smallest subtree
	// that has departments below it: most of the selection stays in scope
	// and the exclusion covers descendants too.
	for _, c := range children[1] {
		if sel == 0 || size(c) > size(sel) {
			sel = c
		}
	}
	for _, c := range children[sel] {
		if len(children[c]) > 0 && (excl == 0 || size(c) < size(excl)) {
			excl = c
		}
	}
	if excl == 0 {
		t.Fatal("generated org has no subtree three levels deep")
	}
	var plain []int
	for i, u := range org.Users {
		if u.Active && !u.Extranet && !u.Admin && u.Email != "" {
			plain = append(plain, i)
		}
	}
	n := len(plain)
	org.Users[plain[n-1]].Departments = []int64{excl}
	org.Users[plain[n-2]].Departments = []int64{excl, sel}
	org.Users[plain[n-3]].Departments = []int64{excl, 1}
	return org, sel, excl
}

// desiredOf converts a simulated org the way a read does: through the
// client's types, user types as the simulator sends them.
func desiredOf(org b24sim.Org) Desired {
	ds := make([]bitrix24.Department, 0, len(org.Departments))
	for _, d := range org.Departments {
		ds = append(ds, bitrix24.Department{ID: d.ID, Name: d.Name, Parent: d.Parent, Head: d.Head, Sort: d.Sort})
	}
	us := make([]bitrix24.User, 0, len(org.Users))
	for _, u := range org.Users {
		typ := "employee"
		if u.Extranet {
			typ = "extranet"
		}
		us = append(us, bitrix24.User{ID: u.ID, Active: u.Active, Name: u.Name, LastName: u.LastName,
			Email: u.Email, WorkPosition: u.WorkPosition, PersonalMobile: u.PersonalMobile, WorkPhone: u.WorkPhone,
			Departments: u.Departments, UserType: typ})
	}
	return fromBitrix24(ds, us)
}

// Over a generated org with an excluded subtree and a partly synced Learn,
// Why agrees with BuildPlan for every employee: the plan creates, updates or
// links exactly those the scope rules let in; each of the others gets the
// reason their data gives, and a deactivation's reason says the same; the
// plan's refusals, conflicts and licence waits, recorded as a run records
// them, and Learn's refusals from the last run are the reasons Why gives.
func TestWhyGeneratedOrg(t *testing.T) {
	t.Parallel()
	org, sel, excl := whyOrg(t)
	d := desiredOf(org)
	o := Options{MemberID: member, Selection: Selection{Selected: []int64{sel}, Excluded: []int64{excl}}}

	// The test's own reading of the selection: under sel and not under excl.
	parent := map[int64]int64{}
	for _, x := range org.Departments {
		parent[x.ID] = x.Parent
	}
	under := func(id, top int64) bool {
		if _, ok := parent[id]; !ok {
			return false
		}
		for x := id; x != 0; x = parent[x] {
			if x == top {
				return true
			}
		}
		return false
	}
	// dataReason is why the employee's data keeps them out, "" when it
	// does not.
	dataReason := func(e Employee) string {
		switch {
		case !e.Active:
			return WhyDismissed
		case e.UserType != "employee":
			return WhyExtranet
		}
		excluded := false
		for _, x := range e.Departments {
			if under(x, sel) && !under(x, excl) {
				return ""
			}
			excluded = excluded || under(x, excl)
		}
		if excluded {
			return WhyExcluded
		}
		return WhyNotSelected
	}

	// Learn, partly synced. Roles go to the in-scope employees in id order;
	// the rest are in Learn (mapped), in Learn by e-mail only (linked), or
	// not yet there (created).
	a := emptyLearn()
	a.Foreign = map[string]string{}
	mapped := map[int64]*Mapping{}
	addLearn := func(id int64, login string, status int, m *Mapping) {
		lid := fmt.Sprintf("L%d", id)
		a.Users = append(a.Users, LearnUser{ID: lid, DepartmentID: "root", Status: status,
			Profile: Profile{Login: login, Email: login, FirstName: "Old", LastName: "Name"}})
		if m != nil {
			m.Kind, m.B24ID, m.LearnID = KindUser, id, lid
			a.Mappings = append(a.Mappings, *m)
			mapped[id] = m
		}
	}
	const foreignOwner = "other.bitrix24.test"
	learnRefused := map[int64]bool{}
	var inScope int
	firstOut := map[string]int{}
	for i := range d.Employees {
		e := &d.Employees[i]
		email := normEmail(e.Email)
		if r := dataReason(*e); r != "" {
			// The first two of each out-of-scope kind were synced before:
			// the plan deactivates them.
			if firstOut[r] < 2 {
				firstOut[r]++
				addLearn(e.ID, fmt.Sprintf("gone%d@example.com", e.ID), StatusActive, &Mapping{})
			}
			continue
		}
		k := inScope
		inScope++
		switch {
		case k < 2: // waiting for a licence
			if email == "" {
				email = fmt.Sprintf("wait%d@example.com", e.ID)
				e.Email = email
			}
			addLearn(e.ID, email, StatusInactive, &Mapping{LicenceWait: true})
		case k < 4: // another portal synced their Learn user first
			if email == "" {
				email = fmt.Sprintf("foreign%d@example.com", e.ID)
				e.Email = email
			}
			addLearn(e.ID, email, StatusActive, nil)
			a.Foreign[fmt.Sprintf("L%d", e.ID)] = foreignOwner
		case k < 6: // Learn refused their create in the last run
			if email == "" {
				e.Email = fmt.Sprintf("refused%d@example.com", e.ID)
			}
			learnRefused[e.ID] = true
		case k == 6: // no e-mail, never synced
			e.Email = ""
		case k == 7: // e-mail removed since the sync: keeps Learn's login
			e.Email = ""
			addLearn(e.ID, "chosen.login@example.com", StatusActive, &Mapping{})
		case email == "":
		case k%3 == 0:
			addLearn(e.ID, email, StatusActive, &Mapping{})
		case k%3 == 1:
			addLearn(e.ID, email, StatusActive, nil)
		}
	}
	if inScope < 20 {
		t.Fatalf("only %d employees in scope", inScope)
	}
	// A synced user since deleted in Bitrix24.
	gone := org.Users[len(org.Users)-1].ID + 1000
	addLearn(gone, "deleted@example.com", StatusActive, &Mapping{})

	p, err := BuildPlan(Input{Options: o, Desired: d, Actual: a})
	if err != nil {
		t.Fatal(err)
	}
	learnDept := map[string]int64{}
	for b24, lid := range p.DeptIDs {
		learnDept[lid] = b24
	}
	// What the plan does with each user, and the department it puts them in.
	type planned struct {
		acts   bool   // creates, updates, moves or links them, or keeps them
		code   string // the Why code the plan's own outcome means
		dept   int64
		leaves string // a deactivation's reason code
	}
	byUser := map[int64]*planned{}
	of := func(id int64) *planned {
		if byUser[id] == nil {
			byUser[id] = &planned{}
		}
		return byUser[id]
	}
	lasts := map[int64]*RunItem{}
	for _, st := range p.Steps {
		if st.Kind != KindUser {
			continue
		}
		x := of(st.B24ID)
		if st.Action == ActionDeactivate {
			x.leaves = st.Reason[0].Code
			continue
		}
		x.acts, x.code = true, WhyInScope
		if st.User != nil {
			x.dept = st.User.DeptB24
			if x.dept == 0 {
				x.dept = learnDept[st.User.DeptLearnID]
			}
		}
		if st.Action == ActionCreate && learnRefused[st.B24ID] {
			it := itemOf(st, ItemRefused)
			it.Reason = because(ReasonLearn, "Learn: job_title is too long")
			lasts[st.B24ID] = &it
			x.code = WhyRefused
		}
	}
	for id := range p.UserIDs {
		if x := of(id); !x.acts {
			x.acts, x.code = true, WhyInScope
		}
	}
	for _, st := range p.Waiting {
		it := itemOf(st, ItemWaiting)
		lasts[st.B24ID] = &it
		x := of(st.B24ID)
		x.acts, x.code = true, WhyLicence
	}
	for _, st := range p.Refused {
		it := itemOf(st, refusedStatus(st))
		lasts[st.B24ID] = &it
		x := of(st.B24ID)
		x.acts, x.code = true, WhyRefused
		switch {
		case st.Action == ActionConflict:
			x.code = WhyForeign
		case st.Reason.Has(ReasonNoEmail):
			x.code = WhyNoEmail
		}
	}

	leaveCode := map[string][]string{
		ReasonDismissed:   {WhyDismissed},
		ReasonNotEmployee: {WhyExtranet},
		ReasonNotSelected: {WhyNotSelected, WhyExcluded},
		ReasonGone:        {WhyNotInBitrix24},
	}
	seen := map[string]int{}
	ids := []int64{gone}
	for _, e := range d.Employees {
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		e := Employee{ID: id}
		for _, x := range d.Employees {
			if x.ID == id {
				e = x
			}
		}
		x := of(id)
		v := Why(d, o, mapped[id], lasts[id], id)
		seen[v.Code]++
		want := x.code
		if !x.acts {
			want = dataReason(e)
			if id == gone {
				want = WhyNotInBitrix24
			}
			if want == "" {
				t.Errorf("user %d: in scope by the selection, but the plan does not sync them", id)
				continue
			}
		} else if r := dataReason(e); r != "" {
			t.Errorf("user %d: the plan syncs them, but their data says %s", id, r)
		}
		if v.Code != want {
			t.Errorf("user %d (%+v): Why says %s (department %d), want %s", id, e, v.Code, v.Department, want)
			continue
		}
		switch {
		case v.Code == WhyExcluded && v.Department != excl:
			t.Errorf("user %d: excluded by department %d, want %d", id, v.Department, excl)
		case x.dept != 0 && v.Department != x.dept:
			t.Errorf("user %d: Why puts them in department %d, the plan in %d", id, v.Department, x.dept)
		case v.Code == WhyForeign && v.Detail.arg(ReasonOwnedBy) != foreignOwner:
			t.Errorf("user %d: foreign owner %q, want %q", id, v.Detail, foreignOwner)
		case v.Code == WhyRefused && lasts[id] != nil && v.Detail.String() != lasts[id].Reason.String():
			t.Errorf("user %d: refusal detail %q, want the run's reason %q", id, v.Detail, lasts[id].Reason)
		}
		if x.leaves != "" {
			ok := false
			for prefix, codes := range leaveCode {
				ok = ok || x.leaves == prefix && slices.Contains(codes, v.Code)
			}
			if !ok {
				t.Errorf("user %d: deactivated because %q, Why says %s", id, x.leaves, v.Code)
			}
		}
	}
	for _, c := range []string{WhyInScope, WhyNotInBitrix24, WhyDismissed, WhyExtranet, WhyNotSelected, WhyExcluded,
		WhyNoEmail, WhyLicence, WhyForeign, WhyRefused} {
		if seen[c] == 0 {
			t.Errorf("no employee of the generated org gets %s (%v)", c, seen)
		}
	}
	t.Logf("verdicts over %d users: %v", len(ids), seen)
}

// The plan's department steps: the scope, the layout in Learn, creates, updates, moves and links.

package syncer

import (
	"slices"
	"strconv"
	"strings"
)

// parentOf is the Bitrix24 parent, the root for orphans, 0 above the root.
func (b *builder) parentOf(id int64) int64 {
	if id == b.rootB24 {
		return 0
	}
	d, ok := b.depts[id]
	if !ok {
		return 0
	}
	if b.cut[id] {
		return b.rootB24
	}
	if _, ok := b.depts[d.Parent]; ok && d.Parent != id {
		return d.Parent
	}
	return b.rootB24
}

// cutCycles finds the cycles of parents that do not pass the root (a
// portal's answers may hold one beside a true root: two departments each
// the other's parent) and cuts each at its lowest id, which parentOf then
// hangs under the root, as the rootless listing's cycle is cut at the
// root. Uncut, the plan created each department of the cycle under
// another, and the writes waited for each other: every run failed.
func (b *builder) cutCycles() {
	b.cut = map[int64]bool{}
	const onWalk, done = 1, 2
	state := make(map[int64]uint8, len(b.depts))
	var path []int64
	for _, d := range b.in.Desired.Departments {
		path = path[:0]
		x := d.ID
		for x != 0 && state[x] == 0 {
			state[x] = onWalk
			path = append(path, x)
			x = b.parentOf(x)
		}
		if x != 0 && state[x] == onWalk {
			// The walk came back to a department of its own: a cycle.
			b.cut[slices.Min(path[slices.Index(path, x):])] = true
		}
		for _, y := range path {
			state[y] = done
		}
	}
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
	// The root is the department without a parent (the client reads every
	// form Learn gives the root's parent as none). A department whose
	// parent is not listed is no root: a listing of only those is one the
	// credentials cut short (a department administrator's), and taking one
	// for the root would rename it and hang the portal under it.
	var roots []*LearnDepartment
	for i := range b.in.Actual.Departments {
		if d := &b.in.Actual.Departments[i]; d.ParentID == "" {
			roots = append(roots, d)
		}
	}
	switch {
	case len(roots) == 0 && len(b.in.Actual.Departments) > 0:
		return ErrLearnRootHidden
	case len(roots) == 0:
		return ErrNoLearnRoot
	}
	slices.SortFunc(roots, func(x, y *LearnDepartment) int { return strings.Compare(x.ID, y.ID) })
	l := Layout{LearnRootID: roots[0].ID, RootB24: b.rootB24, RootCode: DepartmentCode(b.o.MemberID, b.rootB24)}
	// Users another portal owns say the account is shared even when no
	// department of theirs has a code (a portal whose staff all sit in its
	// root): the Learn root is then no portal's to rename or to give a
	// manager over everyone.
	l.Multi = b.o.SharedAccount || len(b.in.Actual.Foreign) > 0
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
// mapping, else by code; never the same Learn department twice, nor by code
// one that another department's mapping names.
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
	// A department another one's mapping names is that one's, whatever its
	// code: a Learn that cuts codes gives "<member>:40" the code of 4
	// (docs/learn-api.md, "Department codes").
	for _, d := range b.deptByCode[DepartmentCode(b.o.MemberID, id)] {
		if other, ok := b.deptMapped[d.ID]; ok && other != id {
			continue
		}
		if d.ID != l.LearnRootID && !used[d.ID] {
			return d
		}
	}
	return nil
}

func deptName(d *Department) string {
	if n := strings.TrimSpace(d.Name); n != "" {
		return fitText(n, maxTextRunes)
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
		codeless := false
		if ld == nil {
			var n int
			if ld, n = b.codeless(id, want, used); n > 1 {
				// Two may be ours: taking either may take a Learn admin's
				// or another portal's, and making a third may be a
				// duplicate. Nothing is written until one is told apart.
				b.plan.Refused = append(b.plan.Refused, Step{Stage: StageDepartments, Kind: KindDepartment,
					Action: ActionRefuse, B24ID: id, After: after, Reason: because(ReasonCodeless, strconv.Itoa(n))})
				continue
			}
			codeless = ld != nil
		}
		if ld == nil {
			if why, ok := b.refused(KindDepartment, id, PartValues, fp); ok {
				b.plan.Refused = append(b.plan.Refused, Step{Stage: StageDepartments, Kind: KindDepartment,
					Action: ActionRefuse, B24ID: id, After: after, Reason: why})
				continue
			}
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageDepartments, Level: int32(b.level[id]), Kind: KindDepartment, Action: ActionCreate,
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
		if codeless {
			// Found by the name sent (or its tagged form) and a code Learn
			// cut or dropped: as its lost mapping would have it.
			stored = fp
		}
		rename := ld.Name != want.Name && stored != fp
		if why, ok := b.refused(KindDepartment, id, PartValues, fp); ok && rename {
			// Learn keeps the old name; the other changes record the
			// fingerprint they found, so the next run reports it again.
			b.plan.Refused = append(b.plan.Refused, Step{Stage: StageDepartments, Kind: KindDepartment,
				Action: ActionRefuse, B24ID: id, LearnID: ld.ID, After: after, Reason: why})
			rename, fp = false, stored
		}
		move := !isLearnRoot && (want.ParentLearnID == "" || want.ParentLearnID != ld.ParentID)
		// A code Learn cut or refused when this mapping was written reads
		// as a prefix of ours, or none: sending it again would change
		// nothing (docs/learn-api.md, "Department codes").
		keptCut := (codeless || mapped && m.LearnID == ld.ID) && stored == fp && strings.HasPrefix(want.Code, ld.Code)
		recode := !isLearnRoot && ld.Code != want.Code && !keptCut
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
				Stage: StageDepartments, Level: int32(b.level[id]), Kind: KindDepartment, Action: act,
				B24ID: id, LearnID: ld.ID, Dept: &want, Before: before, After: after, Changed: changed, Fingerprint: fp,
			})
		case stored != fp || !mapped || m.LearnID != ld.ID:
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageDepartments, Level: int32(b.level[id]), Kind: KindDepartment, Action: ActionLink,
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

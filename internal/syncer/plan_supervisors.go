// The plan's last stage: the supervisors (subordination) of departments and users in Learn.

package syncer

import "strconv"

// headUp is the first head of start or its ancestors that syncs and is not
// skip; 0 when there is none. The org's shape is the portal's to choose (a
// chain of 100,000 departments), so each department is walked once
// (headAt) and skip costs a step per department skip heads on the way.
func (b *builder) headUp(start, skip int64) int64 {
	r := b.headAt(start)
	for hops := 0; r.head != 0 && r.head == skip; hops++ {
		if b.headed == nil {
			b.headed = map[int64]int{}
			for _, d := range b.depts {
				b.headed[d.Head]++
			}
		}
		// More hops than departments skip heads: the parents go round a
		// cycle that only skip heads, where the walk finds nobody.
		if hops >= b.headed[skip] {
			return 0
		}
		r = b.headAt(b.parentOf(r.dept))
	}
	return r.head
}

// headRef is the first head that syncs at or above a department and the
// department they head; open marks a department whose walk is under way.
type headRef struct {
	head, dept int64
	open       bool
}

// headAt is the first head that syncs of start or its ancestors, each
// department's answer kept (the synced users are final by this last stage).
func (b *builder) headAt(start int64) headRef {
	if b.heads == nil {
		b.heads = map[int64]headRef{}
	}
	var r headRef
	var path []int64 // the departments whose answer is r
	for x := start; x != 0; x = b.parentOf(x) {
		b.walked++
		if c, ok := b.heads[x]; ok {
			if !c.open {
				r = c
			} // else round a cycle without a head that syncs: none
			break
		}
		if d, ok := b.depts[x]; ok && d.Head != 0 && b.synced(d.Head) {
			r = headRef{head: d.Head, dept: x}
			b.heads[x] = r
			break
		}
		b.heads[x] = headRef{open: true}
		path = append(path, x)
	}
	for _, x := range path {
		b.heads[x] = r
	}
	return r
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

// readLinks are Learn department d's links as the plan compares them; the
// Learn root's pass through rootLink.
func (b *builder) readLinks(d *LearnDepartment) (sub, co Subordination) {
	sub, co = d.Subordination, d.CoSubordination
	if d.ID == b.plan.Layout.LearnRootID {
		sub, co = rootLink(sub), rootLink(co)
	}
	return sub, co
}

// rootLink is a link of the Learn root as read: how Learn shows the root's
// lack of a manager is not known (no_supervisor, inherit, or no link at
// all; docs/learn-api.md, "Unsettled behaviour"), and the root inherits
// from nothing, so each is no manager, never a change to send.
func rootLink(s Subordination) Subordination {
	if s.Type == "" || s.Type == SubInherit {
		return Subordination{Type: SubNone}
	}
	return s
}

// learnRoot says whether Bitrix24 department id is the Learn account's root
// (one portal) and mapped to it.
func (b *builder) learnRoot(id int64) bool {
	l := b.plan.Layout
	m := b.deptMap[id]
	return id == b.rootB24 && !l.Multi && m != nil && m.LearnID == l.LearnRootID
}

// linksKey names wanted links by Bitrix24 ids, so that the key stays the same
// once a supervisor created in one run has a Learn id in the next; a
// supervisor the links keep from Learn (no Bitrix24 id) by its Learn id.
func linksKey(s *SubSpec) string {
	key := func(t *SubTarget) string {
		switch {
		case t == nil:
			return "-"
		case t.Type == SubManual && t.SupervisorB24 == 0:
			return "manual:learn:" + t.SupervisorLearnID
		case t.Type == SubManual:
			return "manual:b24:" + strconv.FormatInt(t.SupervisorB24, 10)
		}
		return t.Type
	}
	return fingerprint(key(s.Sub), key(s.CoSub))
}

// linksKeyAt is the key of links s wanted for Learn object lid, a department
// or user other than the Learn root (whose key is linksKey): a refusal is
// Learn's about that object, so one made anew is asked again, and so is the
// Bitrix24 root once it has a department of its own (another portal joined
// the account).
func linksKeyAt(lid string, s *SubSpec) string {
	return fingerprint(lid, linksKey(s))
}

// refusedLinks reports step s, the links of an existing department or user
// other than the Learn root, when Learn refused the same links for the same
// object in an earlier run: not sent again.
func (b *builder) refusedLinks(s Step) bool {
	why, ok := b.refused(s.Kind, s.B24ID, PartLinks, linksKeyAt(s.LearnID, s.Sub))
	if ok {
		b.plan.Refused = append(b.plan.Refused, Step{Stage: StageSupervisors, Kind: s.Kind, Action: ActionRefuse,
			B24ID: s.B24ID, LearnID: s.LearnID, Before: s.Before, After: s.After, Reason: why})
	}
	return ok
}

// cutForeignManagers sets to no manager each link of want left unmanaged
// (its toggle off) on the portal's own root department in a shared account
// when the Learn root's link names a user another portal owns: the
// department would inherit it, and that portal's head would manage this
// portal's people (a head it made the Learn root's manager while alone). A
// manager the Learn admin gave the root is inherited as before.
func (b *builder) cutForeignManagers(id int64, want *SubSpec) {
	l := b.plan.Layout
	root := b.learnDepts[l.LearnRootID]
	if !l.Multi || id != b.rootB24 || root == nil {
		return
	}
	foreign := func(s Subordination) bool {
		_, ok := b.in.Actual.Foreign[s.SupervisorID]
		return s.Type == SubManual && ok
	}
	if want.Sub == nil && foreign(root.Subordination) {
		want.Sub = &SubTarget{Type: SubNone}
	}
	if want.CoSub == nil && foreign(root.CoSubordination) {
		want.CoSub = &SubTarget{Type: SubNone}
	}
}

func (b *builder) supervisors() {
	toggles := b.o.HeadsAsManagers || b.o.ParentHeadsAsSupervisors
	if !toggles && !b.plan.Layout.Multi {
		return
	}
	for _, id := range b.desired {
		if !toggles && id != b.rootB24 {
			continue
		}
		want := &SubSpec{}
		if b.o.HeadsAsManagers {
			want.CoSub = b.target(b.headUp(id, 0))
		}
		if b.o.ParentHeadsAsSupervisors {
			want.Sub = b.target(b.headUp(b.parentOf(id), 0))
		}
		b.cutForeignManagers(id, want)
		if want.Sub == nil && want.CoSub == nil {
			continue
		}
		lid, exists := b.plan.DeptIDs[id]
		var ld *LearnDepartment
		var sub, co Subordination
		if exists {
			ld = b.learnDepts[lid]
		}
		if ld != nil { // nil: a department this run creates
			sub, co = b.readLinks(ld)
			if !differs(sub, want.Sub) && !differs(co, want.CoSub) {
				continue
			}
			// The Learn root's refusal stays with it (linksKey), not with
			// the Bitrix24 root once that has a department of its own
			// (another portal joined the account; linksKeyAt).
			if _, ok := b.refused(KindDepartment, id, PartLinks, linksKey(want)); ok && b.learnRoot(id) {
				continue // Learn did not keep these on its root; reported then
			}
		}
		s := Step{
			Stage: StageSupervisors, Kind: KindDepartment, Action: ActionSupervisor, B24ID: id, LearnID: lid,
			Sub: want, After: map[string]string{"subordination": subLabel(want.Sub), "co_subordination": subLabel(want.CoSub)},
		}
		if ld != nil {
			want.Listed = b.listed(Managers{Subordination: ld.Subordination, CoSubordination: ld.CoSubordination}, want)
			s.Before = map[string]string{"subordination": actualLabel(sub), "co_subordination": actualLabel(co)}
			if !b.learnRoot(id) && b.refusedLinks(s) {
				continue
			}
		}
		b.plan.Steps = append(b.plan.Steps, s)
	}
	if !toggles {
		return
	}
	inherit := func() *SubTarget { return &SubTarget{Type: SubInherit} }
	keep := func(s Subordination) *SubTarget {
		if s.Type == "" {
			return inherit()
		}
		return &SubTarget{Type: s.Type, SupervisorLearnID: s.SupervisorID}
	}
	for _, e := range b.users {
		i := b.emps.find(e.ID)
		if !b.empSynced[i] {
			continue
		}
		d := b.empDept[i]
		lid := b.plan.UserIDs[e.ID]
		lu := b.lu(int(b.empLearn[i])) // the user of lid
		want := &SubSpec{Sub: inherit(), CoSub: inherit()}
		if lu != nil {
			l := lu.Links()
			want.Sub, want.CoSub = keep(l.Subordination), keep(l.CoSubordination)
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
			if l := lu.Links(); !differs(l.Subordination, want.Sub) && !differs(l.CoSubordination, want.CoSub) {
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
			l := lu.Links()
			want.Listed = b.listed(l, want)
			s.Before = map[string]string{"subordination": actualLabel(l.Subordination), "co_subordination": actualLabel(l.CoSubordination)}
			if b.refusedLinks(s) {
				continue
			}
		}
		b.plan.Steps = append(b.plan.Steps, s)
	}
}

// listed are the links l of an object as listed, for a step that sets want:
// the client sends a link want leaves out back as listed, without reading
// the object first. Nil when want sets both, or when the link left out names
// a user this run deactivates before it sets links (StageDeactivations):
// Learn may change such a link then (docs/learn-api.md, "Unsettled
// behaviour"), and only a read shows what it made of it.
func (b *builder) listed(l Managers, want *SubSpec) *Managers {
	stale := func(s Subordination, left bool) bool {
		if !left || s.Type != SubManual {
			return false
		}
		if b.leaving == nil {
			b.leaving = map[string]bool{}
			for _, st := range b.plan.Steps {
				if st.Action == ActionDeactivate {
					b.leaving[st.LearnID] = true
				}
			}
		}
		return b.leaving[s.SupervisorID]
	}
	if want.Sub != nil && want.CoSub != nil || stale(l.Subordination, want.Sub == nil) || stale(l.CoSubordination, want.CoSub == nil) {
		return nil
	}
	return &l
}

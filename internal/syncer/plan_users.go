// The plan's user steps (create, update, move, reactivate, refuse) and the deactivations.

package syncer

import (
	"maps"
	"slices"
	"strconv"

	"b24learn/internal/fieldmap"
)

// syncDepartment is the department the full run syncs e in: 0 for an
// employee it leaves out (dismissed, extranet, in no selected department).
func (b *builder) syncDepartment(e *Employee) int64 {
	if !e.Active || e.UserType != "employee" {
		return 0
	}
	return b.userDepartment(e)
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

// userFieldNames are the fixed profile fields, as Learn names them, in the
// order of Profile.fields.
var userFieldNames = [...]string{"login", "email", "first_name", "last_name", "job_title", "phone"}

func (p *Profile) fields() [len(userFieldNames)]*string {
	return [...]*string{&p.Login, &p.Email, &p.FirstName, &p.LastName, &p.JobTitle, &p.Phone}
}

// state is the profile with the department and status, as a step's Before
// or After shows a user.
func (p *Profile) state(dept string, status int) map[string]string {
	m := make(map[string]string, len(userFieldNames)+2+len(p.Extra))
	for i, f := range p.fields() {
		m[userFieldNames[i]] = *f
	}
	m["department"], m["status"] = dept, strconv.Itoa(status)
	maps.Copy(m, p.Extra)
	return m
}

func userState(u *LearnUser) map[string]string { return u.state(u.DepartmentID, u.Status) }

// specState names a department created in the same run by its Bitrix24 id.
func specState(s *UserSpec, status int) map[string]string {
	dept := s.DeptLearnID
	if dept == "" {
		dept = "b24:" + strconv.FormatInt(s.DeptB24, 10)
	}
	return s.state(dept, status)
}

// field is a profile's value of a field named as in userFieldNames or in
// Extra.
func (p *Profile) field(name string) (string, bool) {
	for i, f := range p.fields() {
		if userFieldNames[i] == name {
			return *f, true
		}
	}
	v, ok := p.Extra[name]
	return v, ok
}

// changedFields names the fields where want differs from Learn's user
// (login and e-mail regardless of case) and gives every other field of want
// Learn's value, so that an update never rewrites what it does not change.
func changedFields(u *LearnUser, want *UserSpec) []string {
	var out []string
	have := u.fields()
	for i, p := range want.fields() {
		same := *p == *have[i]
		if i < 2 {
			same = normEmail(*p) == normEmail(*have[i])
		}
		if same {
			*p = *have[i]
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

// learnValue is a user's Learn value of the Bitrix24 field code, from the
// Bitrix24 user e in department dept: the one place where the field
// mapping is applied, for creates and updates alike. A value that does not
// convert (not a date for a date source) is not ok, never sent malformed.
func (b *builder) learnValue(e *Employee, dept int64, code string) (string, bool) {
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
	v, ok := fieldmap.Value(code, raw)
	return fitText(v, maxTextRunes), ok
}

// mappedSpec fills want's profile fields (beyond login and e-mail) through
// the field mapping (learnValue); unmapped fields and values that do not
// convert stay empty. The fields of the fixed set the mapping leaves out
// are returned in unmanaged. No map of values is built per user: at
// 100,000 employees that was most of what the plan allocated.
func (b *builder) mappedSpec(want *UserSpec, e *Employee, dept int64) (unmanaged []string) {
	m := b.o.FieldMap
	if m == nil {
		if b.defaultMap == nil {
			b.defaultMap = fieldmap.Default()
		}
		m = b.defaultMap
	}
	for i, p := range want.fields() {
		name := userFieldNames[i]
		if name == "login" || name == "email" {
			continue
		}
		code, mapped := m[name]
		v, ok := "", false
		if mapped {
			v, ok = b.learnValue(e, dept, code)
		}
		if !ok {
			v = ""
		}
		if !ok && !mapped && b.o.FieldMap != nil {
			unmanaged = append(unmanaged, name)
		}
		*p = v
	}
	for name, code := range b.o.FieldMap {
		if slices.Contains(userFieldNames[2:], name) {
			continue // set above
		}
		if v, ok := b.learnValue(e, dept, code); ok {
			if want.Extra == nil {
				want.Extra = map[string]string{}
			}
			want.Extra[name] = v
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

// kept is a step's copy of the user spec: the spec of an employee whose
// Learn user needs no step stays on the stack (100,000 of 128 bytes in a
// run that changes nothing).
func kept(want UserSpec) *UserSpec { return &want }

func (b *builder) usersStep() {
	for i := range b.in.Desired.Employees {
		e := &b.in.Desired.Employees[i]
		if d := b.syncDepartment(e); d != 0 {
			b.users = append(b.users, e)
			b.empDept[i] = d
		}
	}
	slices.SortFunc(b.users, func(x, y *Employee) int { return cmpInt(x.ID, y.ID) })
	// Room for the steps at once: a user with an e-mail and no mapping is
	// mostly a create (in a first sync every one is), and the manager links
	// of the departments and their heads follow; a list grown step by step
	// holds a quarter more than it needs, and every copy on the way.
	unmapped := 0
	for _, e := range b.users {
		if b.userMapping(e.ID) == nil && normEmail(e.Email) != "" {
			unmapped++
		}
	}
	if unmapped > 0 {
		b.plan.Steps = slices.Grow(b.plan.Steps, unmapped+2*len(b.desired))
	}

	// Only an e-mail two of them share can be refused as taken.
	owners := emailOwners(b.users)
	for _, e := range b.users {
		d, _ := b.userDept(e.ID)
		email := normEmail(e.Email)
		want := UserSpec{Profile: Profile{Login: email, Email: email}}
		unmanaged := b.mappedSpec(&want, e, d)
		if id, ok := b.plan.DeptIDs[d]; ok {
			want.DeptLearnID = id
		} else {
			want.DeptB24 = d
		}
		li := b.resolveUser(e.ID, email)
		lu := b.lu(li)
		if lu == nil {
			if b.heldAs(email, signInOwner) {
				b.refuse(e.ID, because(ReasonSignIn))
				continue
			}
			if b.heldAs(email, adminOwner) {
				b.refuse(e.ID, because(ReasonLearnAdmin))
				continue
			}
			if b.heldAs(email, roleUnknownOwner) {
				b.refuse(e.ID, because(ReasonLearnRoleUnknown))
				continue
			}
			if f := b.foreignUser(email); f != nil {
				b.conflict(e.ID, email, f)
				continue
			}
		}
		if owner, shared := owners[email]; shared && owner != e.ID && (lu == nil || b.claimedBy[li] != e.ID) {
			b.refuse(e.ID, because(ReasonEmailShared, email, strconv.FormatInt(owner, 10)))
			continue
		}
		if lu == nil {
			if e.Invited {
				// Not created (no licence taken, no login e-mail) until
				// they accept; a user already in Learn syncs as before.
				b.plan.Invited = append(b.plan.Invited, Step{Stage: StageUsers, Kind: KindUser, Action: ActionInvited,
					B24ID: e.ID, After: map[string]string{"first_name": want.FirstName, "last_name": want.LastName, "email": want.Email},
					Reason: because(ReasonInvited)})
				continue
			}
			if email == "" {
				b.refuse(e.ID, because(ReasonNoEmail))
				continue
			}
			if owner := b.emailTaken(email); owner != 0 {
				b.refuse(e.ID, because(ReasonEmailOwned, email, strconv.FormatInt(owner, 10)))
				continue
			}
			if why, ok := b.refused(KindUser, e.ID, PartValues, userFingerprint(&want)); ok {
				b.refuse(e.ID, why)
				continue
			}
			b.setSynced(e.ID)
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Kind: KindUser, Action: ActionCreate, B24ID: e.ID,
				User: kept(want), // Fingerprint and After: see Step.fingerprint, Step.after
			})
			continue
		}
		b.setSynced(e.ID)
		b.claimedBy[li] = e.ID
		b.empLearn[b.emps.find(e.ID)] = int32(li)
		b.plan.UserIDs[e.ID] = lu.ID
		m := b.userMapping(e.ID)
		mapped := m != nil
		// Not linked to this employee yet: found in Learn by address, so
		// adopted (a user the app creates is linked as it is made).
		adopted := !mapped || m.LearnID != lu.ID || m.Adopted
		if email == "" || lu.Administers || lu.RoleUnknown || adopted {
			// E-mail removed in Bitrix24, a user with rights over others
			// in Learn (or whose read hides whether it has them), or one
			// the app adopted rather than created (maybe someone else's):
			// keep Learn's login and e-mail. The address
			// is the employee's to change, and one written into the login
			// would let them reset the password.
			want.Login, want.Email = lu.Login, lu.Email
		} else if normEmail(lu.Login) != normEmail(lu.Email) && lu.Login != "" {
			want.Login = lu.Login // a login the Learn admin chose stays
		}
		fp := userFingerprint(&want)
		// A fixed field the mapping leaves out keeps Learn's value.
		have := lu.fields()
		for i, p := range want.fields() {
			if slices.Contains(unmanaged, userFieldNames[i]) {
				*p = *have[i]
			}
		}
		stored := ""
		if mapped && m.LearnID == lu.ID {
			stored = m.Fingerprint
		}
		if why, ok := b.refused(KindUser, e.ID, PartValues, fp); ok && stored != fp {
			// Learn keeps its values; the steps below record the
			// fingerprint they found, so the next run reports it again.
			b.plan.Refused = append(b.plan.Refused, Step{Stage: StageUsers, Kind: KindUser, Action: ActionRefuse,
				B24ID: e.ID, LearnID: lu.ID, Reason: why})
			fp = stored
		}
		n := len(b.plan.Steps)
		var changed []string
		if stored != fp {
			changed = changedFields(lu, &want)
		}
		fields := len(changed) > 0
		move := want.DeptLearnID == "" || want.DeptLearnID != lu.DepartmentID
		if !fields { // the step carries Learn's values
			for i, p := range want.fields() {
				*p = *have[i]
			}
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
				Stage: StageUsers, Adopted: adopted, Kind: KindUser, Action: act, B24ID: e.ID, LearnID: lu.ID,
				User: kept(want), Before: userState(lu), After: specState(&want, lu.Status), Changed: changed, Fingerprint: fp,
			})
		}
		if lu.Status != StatusActive && mapped && m.LearnID == lu.ID && m.LicenceWait && !b.o.RetryLicence[e.ID] {
			b.plan.Waiting = append(b.plan.Waiting, Step{
				Stage: StageUsers, Level: 1, Kind: KindUser, Action: ActionReactivate, B24ID: e.ID, LearnID: lu.ID,
				Status: StatusActive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
				After: map[string]string{"status": strconv.Itoa(lu.Status)}, Fingerprint: fp, Reason: because(ReasonLicence),
			})
		} else if lu.Status != StatusActive {
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Adopted: adopted, Level: 1, Kind: KindUser, Action: ActionReactivate, B24ID: e.ID, LearnID: lu.ID,
				Status: StatusActive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
				After: map[string]string{"status": "1"}, Fingerprint: fp, Reason: because(ReasonActiveAgain),
			})
		}
		if len(b.plan.Steps) == n && (stored != fp || !mapped || m.LearnID != lu.ID) {
			b.plan.Steps = append(b.plan.Steps, Step{
				Stage: StageUsers, Adopted: adopted, Kind: KindUser, Action: ActionLink, B24ID: e.ID, LearnID: lu.ID,
				Before: userState(lu), After: userState(lu), Fingerprint: fp,
			})
		}
	}
}

// emailOwners maps each normalized e-mail two or more of users share to
// its owner, the lowest id: the only one of them who may take it in Learn.
// users are employees the full run syncs (syncDepartment); the full run
// asks it of all of them and a one-person run of the person and the sharers
// Bitrix24 names (refuseSharedEmail), so both give an address to the same
// employee.
func emailOwners(users []*Employee) map[string]int64 {
	key := normKey(len(users), func(i int) string { return users[i].Email })
	idx := indexBy(len(users), key, func(i int) bool { return key(i) != "" })
	out := map[string]int64{}
	for j := 1; j < len(idx.pos); j++ {
		x, y := int(idx.pos[j-1]), int(idx.pos[j])
		if k := key(y); k == key(x) {
			owner := min(users[x].ID, users[y].ID)
			if o, ok := out[k]; ok {
				owner = min(owner, o)
			}
			out[k] = owner
		}
	}
	return out
}

// resolveUser: the position of the mapped Learn user, else of an unclaimed
// one whose login or e-mail is the employee's e-mail; -1 for none.
func (b *builder) resolveUser(id int64, email string) int {
	if mi := b.userMaps.find(id); mi >= 0 {
		if u := int(b.mapLearn[mi]); u >= 0 && b.claimedBy[u] == id {
			return u
		}
	}
	if email == "" {
		return -1
	}
	for _, u := range b.byAddress(email) {
		if u < 0 {
			continue
		}
		if owner := b.claimedBy[u]; owner != 0 && owner != id {
			continue
		}
		return u
	}
	return -1
}

// byAddress are the positions of the Learn users whose login, and whose
// e-mail, is email (normalized); -1 for none.
func (b *builder) byAddress(email string) [2]int {
	return [2]int{b.learnByLogin.find(email), b.learnByEmail.find(email)}
}

// heldAs says whether email is the login or e-mail of a Learn user claimed
// by owner: signInOwner (the user the run signs in as), adminOwner or
// roleUnknownOwner.
func (b *builder) heldAs(email string, owner int64) bool {
	if email == "" {
		return false
	}
	for _, u := range b.byAddress(email) {
		if u >= 0 && b.claimedBy[u] == owner {
			return true
		}
	}
	return false
}

// foreignUser is the Learn user another portal owns whose login or e-mail is
// this e-mail, or nil.
func (b *builder) foreignUser(email string) *LearnUser {
	if email == "" {
		return nil
	}
	for _, u := range b.byAddress(email) {
		if u >= 0 && b.claimedBy[u] == foreignOwner {
			return b.lu(u)
		}
	}
	return nil
}

// conflict reports an employee whose Learn user another portal owns; the
// owner's domain is in the reason and in After["owner"]. The row names the
// Learn user by the employee's own address and carries the employee's
// names, never the other portal's user: any address can be typed into a
// Bitrix24 profile, and this portal's report must not read out another
// tenant's people.
func (b *builder) conflict(id int64, email string, u *LearnUser) {
	owner := b.in.Actual.Foreign[u.ID]
	after := map[string]string{"owner": owner}
	if e, ok := b.employee(id); ok && (e.FirstName != "" || e.LastName != "") {
		after["first_name"], after["last_name"] = e.FirstName, e.LastName
	}
	b.plan.Refused = append(b.plan.Refused, Step{
		Stage: StageUsers, Kind: KindUser, Action: ActionConflict, B24ID: id, LearnID: u.ID,
		After: after, Reason: because(ReasonForeign, email, owner),
	})
}

// emailTaken names the Bitrix24 user whose Learn user has this login or
// e-mail, or 0.
func (b *builder) emailTaken(email string) int64 {
	for _, u := range b.byAddress(email) {
		if u >= 0 && b.claimedBy[u] != 0 {
			return b.claimedBy[u]
		}
	}
	return 0
}

// refuse reports employee id as not synced, for reason; the row carries
// their name so the report says who it is.
func (b *builder) refuse(id int64, reason Reasons) {
	var after map[string]string
	if e, ok := b.employee(id); ok && (e.FirstName != "" || e.LastName != "") {
		after = map[string]string{"first_name": e.FirstName, "last_name": e.LastName}
	}
	b.plan.Refused = append(b.plan.Refused, Step{
		Stage: StageUsers, Kind: KindUser, Action: ActionRefuse, B24ID: id, After: after, Reason: reason,
	})
}

func (b *builder) leaveReason(id int64) Reasons {
	e, ok := b.employee(id)
	switch {
	case !ok:
		return because(ReasonGone)
	case !e.Active:
		return because(ReasonDismissed)
	case e.UserType != "employee":
		return because(ReasonNotEmployee, e.UserType)
	}
	return because(ReasonNotSelected)
}

func (b *builder) deactivations() {
	var steps []Step
	b.userMaps.each(func(mi int) {
		m := &b.in.Actual.Mappings[mi]
		id := m.B24ID
		u := int(b.mapLearn[mi])
		if u < 0 || b.claimedBy[u] != id {
			return
		}
		lu := b.lu(u)
		if lu.Status == StatusActive {
			b.plan.SyncedUsers++
		}
		_, refused := b.refused(KindUser, id, PartStatus, lu.ID)
		if _, stays := b.userDept(id); stays {
			if refused {
				b.plan.Returned = append(b.plan.Returned, id)
			}
			return
		}
		if lu.Status != StatusActive {
			return
		}
		if refused && !b.o.RetryLeaves {
			return // reported once, in the run Learn refused it
		}
		steps = append(steps, Step{
			Stage: StageDeactivations, Kind: KindUser, Action: ActionDeactivate, B24ID: id, LearnID: lu.ID,
			Status: StatusInactive, Before: map[string]string{"status": strconv.Itoa(lu.Status)},
			After: map[string]string{"status": "3"}, Fingerprint: m.Fingerprint, Reason: b.leaveReason(id),
		})
	})
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
				steps[i].Reason = steps[i].Reason.and(because(ReasonHeld))
				b.plan.Held++
			}
		}
	}
	b.plan.Steps = append(b.plan.Steps, steps...)
}

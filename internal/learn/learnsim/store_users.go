package learnsim

// An account's users: field checks, create, update, moves, status,
// subordination, delete and the queries of the user lists.

import (
	"slices"
	"strings"
)

var roles = map[string]bool{
	"learner": true, "administrator": true, "department_administrator": true, "publisher": true, "custom": true,
	// EU docs' names, tolerated (docs/learn-api.md, "Roles")
	"learners": true, "account_administrators": true, "department_administrators": true, "course_authors": true, "supervisor": true,
}

// managesDepts says whether role administers departments of its own (its
// manageableDepartmentIds): a department administrator, a publisher (course
// author) or a custom role, in either list of names. An administrator
// manages all of them, a learner none.
func managesDepts(role string) bool {
	switch role {
	case "department_administrator", "department_administrators", "publisher", "course_authors", "custom":
		return true
	}
	return false
}

// needsManaged says whether role must name its departments: the docs make
// manageableDepartmentIds required for department administrators and custom roles.
func needsManaged(role string) bool {
	return role != "publisher" && role != "course_authors" && managesDepts(role)
}

// checkManaged validates the departments a user of role is to manage: each
// must exist, and a role that needs them must have at least one.
func (a *account) checkManaged(role string, ids []string) *apiErr {
	if needsManaged(role) && len(ids) == 0 {
		return errf(400, "Parameter manageableDepartmentIds is required for role %s", role)
	}
	for _, id := range ids {
		if a.depts[id] == nil {
			return errf(400, "Department %s not found", id)
		}
	}
	return nil
}

// keptManaged is what a user of role keeps of ids: a role that manages no
// departments keeps none (docs/learn-api.md, "Deleting a department").
func keptManaged(role string, ids []string) []string {
	if !managesDepts(role) {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(ids)))
}

// managedBy returns a user who manages department id ("" for none).
func (a *account) managedBy(id string) string {
	for _, uid := range a.userOrder {
		if u := a.users[uid]; u != nil && managesDepts(u.Role) && slices.Contains(u.Manages, id) {
			return uid
		}
	}
	return ""
}

// checkFields validates names, types (dates in format dates) and uniqueness of fields written to user id ("" on create);
// caseSensitive: a login or e-mail is taken only as written (Unsettled.CaseSensitiveUnique).
func (a *account) checkFields(id string, f map[string]string, create bool, dates DateFormat, caseSensitive bool) *apiErr {
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
		index addrIndex
	}{{"login", a.byLogin}, {"email", a.byEmail}} {
		v := strings.TrimSpace(f[k.name])
		if v == "" {
			continue
		}
		if slices.ContainsFunc(k.index.find(a.users, k.name, v, caseSensitive), func(o string) bool { return o != id }) {
			if create {
				return errf(409, "User with the same %s is already registered", k.name)
			}
			e := errf(400, "Invalid value %s. Field %s must be unique.", f[k.name], k.name)
			e.taken = true
			return e
		}
	}
	return nil
}

type newUserReq struct {
	DeptID            string
	Fields            map[string]string
	Password          string
	Role              string
	Manages           []string // manageableDepartmentIds
	SendLoginEmail    bool
	InvitationMessage string
	RoleID            string // required with role custom
	// SendLoginSMS takes an InvitationSMSMessage, as SendLoginEmail an
	// InvitationMessage.
	SendLoginSMS         bool
	InvitationSMSMessage string
	// InvitationDefault: SendLoginEmail is the default, not asked for, so
	// no invitationMessage is required.
	InvitationDefault bool
	Dates             DateFormat // the form date fields take
	PasswordRequired  bool       // Unsettled.PasswordRequired
	CaseSensitive     bool       // Unsettled.CaseSensitiveUnique
}

func (a *account) createUser(r newUserReq) (*user, *apiErr) {
	if r.DeptID == "" {
		return nil, errf(400, "Parameter departmentId is required")
	}
	if a.depts[r.DeptID] == nil {
		return nil, unknownDept(r.DeptID)
	}
	if r.Fields == nil || strings.TrimSpace(r.Fields["login"]) == "" {
		return nil, errf(400, "Field login is required")
	}
	if err := a.checkFields("", r.Fields, true, r.Dates, r.CaseSensitive); err != nil {
		return nil, err
	}
	if r.Role == "" {
		r.Role = "learner"
	}
	if !roles[r.Role] {
		return nil, errf(400, "Invalid role %q", r.Role)
	}
	if r.Role == "custom" && strings.TrimSpace(r.RoleID) == "" {
		return nil, errf(400, "Parameter roleId is required for role custom")
	}
	if err := a.checkManaged(r.Role, r.Manages); err != nil {
		return nil, err
	}
	if r.SendLoginEmail && !r.InvitationDefault && strings.TrimSpace(r.InvitationMessage) == "" {
		return nil, errf(400, "Parameter invitationMessage is required when sendLoginEmail is true")
	}
	if r.SendLoginSMS && strings.TrimSpace(r.InvitationSMSMessage) == "" {
		return nil, errf(400, "Parameter invitationSMSMessage is required when sendLoginSMS is true")
	}
	if r.PasswordRequired && r.Password == "" {
		return nil, errf(400, "Parameter password is required")
	}
	u := &user{ID: a.newID(), DeptID: r.DeptID, Status: 1, Role: r.Role, Fields: r.Fields, Password: r.Password,
		Added: a.now(), Sub: sub{Type: "inherit"}, CoSub: sub{Type: "inherit"}, Manages: keptManaged(r.Role, r.Manages)}
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
// form date fields take. manages is nil when the update does not name the
// user's departments.
func (a *account) updateUser(id string, deptID *string, fields map[string]string, role *string, manages *[]string, un Unsettled) *apiErr {
	u := a.users[id]
	if u == nil {
		return errf(404, "User %s not found", id)
	}
	if deptID != nil && *deptID != "" && a.depts[*deptID] == nil {
		return unknownDept(*deptID)
	}
	if (len(fields) > 0 || un.UpdateNeedsLogin) && strings.TrimSpace(fields["login"]) == "" {
		// The docs list login as "required (as part of fields)" on update;
		// whether an update without fields is refused too is not settled.
		return errf(400, "Field login is required")
	}
	if err := a.checkFields(id, fields, false, un.DateFormat, un.CaseSensitiveUnique); err != nil {
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
	}
	newRole, newManages := u.Role, u.Manages
	if role != nil && *role != "" {
		newRole = *role
	}
	if manages != nil {
		newManages = *manages
	}
	if role != nil || manages != nil {
		if err := a.checkManaged(newRole, newManages); err != nil {
			return err
		}
	}
	u.Role, u.Manages = newRole, keptManaged(newRole, newManages)
	for k, v := range fields {
		v = strings.TrimSpace(v)
		switch k {
		case "login":
			a.byLogin.remove(u.Fields[k], id)
			a.byLogin.add(v, id)
		case "email":
			a.byEmail.remove(u.Fields[k], id)
			a.byEmail.add(v, id)
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

// setStatus validates all first so a bulk call is all-or-nothing.
func (a *account) setStatus(ids []string, status int, un Unsettled) *apiErr {
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
			return un.ownerRefusal("deactivated")
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
	if err := a.guardLinks("user", id, [2]sub{u.Sub, u.CoSub}, [2]*sub{s, co}); err != nil {
		return err
	}
	u.Sub = *s
	if co != nil {
		u.CoSub = *co
	}
	return nil
}

func (a *account) deleteUser(id string, un Unsettled) *apiErr {
	u := a.users[id]
	if u == nil {
		return errf(404, "User %s not found", id)
	}
	if id == a.ownerID {
		return un.ownerRefusal("deleted")
	}
	delete(a.users, id)
	a.byLogin.remove(u.Fields["login"], id)
	a.byEmail.remove(u.Fields["email"], id)
	a.deptUsers[u.DeptID]--
	if u.Status == 1 {
		a.active--
	}
	return nil
}

// userQuery filters user lists. exact: logins and e-mails match with their
// letter case (Unsettled.ExactFilters).
type userQuery struct {
	depts, logins, emails, ids []string
	exact                      bool
	seen                       func(deptID string) bool // the caller's reach (Unsettled.ScopedReads); nil: all
}

func (q userQuery) indexed() bool { return len(q.logins)+len(q.emails)+len(q.ids) > 0 }

// matchUsers returns the IDs matching q in creation order, starting at position
// from, at most limit of them (limit <= 0: all), and the ID of the next match.
func (a *account) matchUsers(q userQuery, from, limit int) (ids []string, next string) {
	deptOK := func(u *user) bool {
		return (len(q.depts) == 0 || slices.Contains(q.depts, u.DeptID)) && (q.seen == nil || q.seen(u.DeptID))
	}
	var candidates []string
	if q.indexed() {
		// Use the indexes, not a scan: each filter kind narrows the set.
		set := map[string]int{}
		kinds := 0
		add := func(vals []string, look func(string) []string) {
			if len(vals) == 0 {
				return
			}
			kinds++
			seen := map[string]bool{}
			for _, v := range vals {
				for _, id := range look(v) {
					if !seen[id] {
						seen[id] = true
						set[id]++
					}
				}
			}
		}
		byField := func(index addrIndex, field string) func(string) []string {
			return func(v string) []string { return index.find(a.users, field, v, q.exact) }
		}
		add(q.logins, byField(a.byLogin, "login"))
		add(q.emails, byField(a.byEmail, "email"))
		add(q.ids, func(v string) []string {
			if a.users[v] != nil {
				return []string{v}
			}
			return nil
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

package learnsim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The rights of the user whose credentials a request carries
// (docs/learn-api.md, "Whose credentials"). By default that is the account
// owner, who may do anything; SetCaller makes it another user, whose role
// then decides what its writes may touch. A write it may not make is
// refused with 403, as Learn refuses a permission the caller lacks.

// SetCaller makes the account's credentials those of userID (the owner
// by default): an administrator may write anything but the owner; a
// department administrator or custom role (SetRole, SetManaged) only
// departments in the subtrees it manages, the users in them, and learners
// or course authors as new users; any other role nothing through the API,
// reads included. The user's login or e-mail then signs in with the
// account's password (the owner's too, as before).
// No call is counted.
func (s *Sim) SetCaller(accountURL, userID string) error {
	return s.edit("set caller", accountURL, func(a *account) error {
		if a.users[userID] == nil {
			return fmt.Errorf("no user %s", userID)
		}
		a.callerID = userID
		return nil
	})
}

// callerSignsIn says whether name is the login or e-mail of SetCaller's
// user, which sign in with the account's password: the sync tells whose
// credentials it holds by the user they name. (The owner's keep working,
// standing for the caller, as before.)
func (a *account) callerSignsIn(name string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	u := a.users[a.callerID]
	return a.callerID != "" && u != nil && name != "" &&
		(strings.EqualFold(name, u.Fields["login"]) || strings.EqualFold(name, u.Fields["email"]))
}

// callerKind is what the caller's role lets it do.
type callerKind int

const (
	callerOwner     callerKind = iota // everything
	callerAdmin                       // everything but the owner
	callerDeptAdmin                   // its departments' subtrees
	callerNone                        // no API access
)

// caller is the kind of the account's caller; a.mu held.
func (a *account) caller() callerKind {
	if a.callerID == "" || a.callerID == a.ownerID {
		return callerOwner
	}
	u := a.users[a.callerID]
	switch {
	case u == nil:
		return callerNone
	case u.Role == "administrator" || u.Role == "account_administrators":
		return callerAdmin
	case u.Role == "department_administrator" || u.Role == "department_administrators" || u.Role == "custom":
		// A custom role's rights are the account's to define; it is taken
		// as reaching the departments it manages, as a department
		// administrator does.
		return callerDeptAdmin
	}
	return callerNone
}

// deniedRead refuses any call of a caller whose role has no API access
// (the API's department and user routes name the owner, administrators,
// department administrators and custom roles); a.mu held.
func (a *account) deniedRead(r *http.Request) *apiErr {
	if a.caller() == callerNone && !(unsettledFrom(r).SupervisorReads && a.supervises(a.callerID)) {
		return errf(http.StatusForbidden, "Permission denied")
	}
	return nil
}

// supervises says whether user id holds Learn's Supervisor role: given by
// hand (the EU docs' role list), or by a department's manual link naming
// it; a.mu held.
func (a *account) supervises(id string) bool {
	if u := a.users[id]; u != nil && (u.Role == "supervisor" || u.Role == "supervisors") {
		return true
	}
	for _, d := range a.depts {
		if d == nil {
			continue
		}
		for _, s := range []sub{d.Sub, d.CoSub} {
			if s.Type == "manual" && s.SupervisorID == id {
				return true
			}
		}
	}
	return false
}

// inScope says whether department id is one the caller manages or lies
// under one; a.mu held.
func (a *account) inScope(id string) bool {
	manages := a.users[a.callerID].Manages
	for seen := 0; id != "" && seen <= len(a.depts); seen++ {
		for _, m := range manages {
			if m == id {
				return true
			}
		}
		d := a.depts[id]
		if d == nil {
			return false
		}
		id = d.ParentID
	}
	return false
}

// permits refuses with 403 a write of route r (body decoded) the caller may
// not make. Unknown objects pass: the route answers them as usual. a.mu held.
func (a *account) permits(r *http.Request, body map[string]any) *apiErr {
	kind := a.caller()
	if kind == callerOwner {
		return nil
	}
	denied := errf(http.StatusForbidden, "Permission denied")
	if kind == callerNone {
		return denied
	}
	id := r.PathValue("id")
	var userIDs []string
	switch r.Pattern {
	case "POST /user/{id}", "DELETE /user/{id}", "POST /user/{id}/status", "POST /user/{id}/subordination":
		userIDs = []string{id}
	case "POST /users/activate", "POST /users/deactivate", "POST /users/terminate", "POST /department/{id}/user/move":
		userIDs = idsParam(r, body, "userIds", "X-User-Ids")
	}
	if kind == callerAdmin {
		if leaving(r, body) {
			return nil // the owner's own rule answers (Unsettled.RefusedDelete403)
		}
		for _, u := range userIDs {
			if u == a.ownerID {
				return denied
			}
		}
		return nil
	}
	// A department administrator.
	var depts []string // departments the write touches
	switch r.Pattern {
	case "POST /department":
		p, _ := bodyOrHeader(r, body, "parentDepartmentId", "X-Parent-Department-Id")
		depts = append(depts, p)
	case "POST /department/{id}", "DELETE /department/{id}", deptSubRoute, "POST /department/{id}/user/move":
		depts = append(depts, id)
	case "POST /department/{id}/department/move":
		depts = append(depts, id)
		depts = append(depts, getStrs(body, "departmentIds")...)
		depts = append(depts, getStrs(body, "departmnetIds")...)
	case "POST /user":
		d, _ := bodyOrHeader(r, body, "departmentId", "X-Department-Id")
		depts = append(depts, d)
		if role, _ := bodyOrHeader(r, body, "role", "X-Role"); !a.mayGive(role) {
			return denied
		}
	}
	if p, ok := getStr(body, "parentDepartmentId"); ok && r.Pattern == "POST /department/{id}" {
		depts = append(depts, p)
	}
	if strings.HasPrefix(r.Pattern, "POST /user/{id}") && r.Pattern != "POST /user/{id}/subordination" {
		if d, ok := getStr(body, "departmentId"); ok {
			depts = append(depts, d)
		}
		if role, ok := getStr(body, "role"); ok && !a.mayGive(role) {
			return denied
		}
	}
	for _, u := range userIDs {
		if x := a.users[u]; x != nil {
			if u == a.callerID && r.Pattern == "POST /user/{id}/subordination" {
				return denied // not themselves
			}
			depts = append(depts, x.DeptID)
		}
	}
	// Supervisors: only users of the departments it manages, not itself.
	if r.Pattern == deptSubRoute || r.Pattern == "POST /user/{id}/subordination" {
		for _, k := range []string{"subordination", "coSubordination"} {
			if sb, _ := getSub(body, k); sb != nil && sb.SupervisorID != "" {
				if sb.SupervisorID == a.callerID {
					return denied
				}
				if x := a.users[sb.SupervisorID]; x != nil {
					depts = append(depts, x.DeptID)
				}
			}
		}
	}
	for _, d := range depts {
		if d != "" && a.depts[d] != nil && !a.inScope(d) {
			return denied
		}
	}
	return nil
}

// mayGive says whether the caller, a department administrator or a custom
// role, may give a user role ("" is Learn's default, a learner): a
// department administrator learners and course authors, a custom role
// learners only (Learn's "Adding users"); a.mu held.
func (a *account) mayGive(role string) bool {
	switch role {
	case "", "learner", "learners":
		return true
	case "publisher", "course_authors":
		return a.users[a.callerID].Role != "custom"
	}
	return false
}

// readScope is the departments a read shows the caller: nil (all) unless
// Unsettled.ScopedReads limits a department administrator to its reach;
// a.mu held.
func (a *account) readScope(r *http.Request) func(deptID string) bool {
	if !unsettledFrom(r).ScopedReads || a.caller() != callerDeptAdmin {
		return nil
	}
	return a.inScope
}

// seesAll is readScope as a test that is true for every department when
// the caller sees them all.
func (a *account) seesAll(r *http.Request) func(deptID string) bool {
	if f := a.readScope(r); f != nil {
		return f
	}
	return func(string) bool { return true }
}

// leaving says whether a write deactivates, terminates or deletes users:
// the owner cannot be, and Learn's answer to that does not depend on who
// asks.
func leaving(r *http.Request, body map[string]any) bool {
	switch r.Pattern {
	case "DELETE /user/{id}", "POST /users/deactivate", "POST /users/terminate":
		return true
	case "POST /user/{id}/status":
		st, has := getInt(body, "status")
		if !has {
			st, _ = strconv.Atoi(r.Header.Get("X-Status"))
		}
		return st != 1
	}
	return false
}

// linkKey names a department's or user's (kind) supervisor link, or its
// functional manager's (co), in account.deptAdminLinks.
func linkKey(kind, id string, co bool) string {
	if co {
		return kind + "/" + id + "/coSubordination"
	}
	return kind + "/" + id + "/subordination"
}

// guardLinks applies Learn's rule that a department administrator cannot
// change a supervisor an account administrator set manually: such a
// write of the links next (subordination, coSubordination; nil leaves
// one as it is) over cur is refused with 403. Sending a link as it stands
// changes nothing. A write that goes through records who set its links.
// a.mu held.
func (a *account) guardLinks(kind, id string, cur [2]sub, next [2]*sub) *apiErr {
	deptAdmin := a.caller() == callerDeptAdmin
	for i, n := range next {
		key := linkKey(kind, id, i == 1)
		if deptAdmin && n != nil && *n != cur[i] && cur[i].Type == "manual" && !a.deptAdminLinks[key] {
			return errf(http.StatusForbidden, "Permission denied")
		}
	}
	for i, n := range next {
		key := linkKey(kind, id, i == 1)
		switch {
		case n == nil || deptAdmin && *n == cur[i]:
		case deptAdmin:
			if a.deptAdminLinks == nil {
				a.deptAdminLinks = map[string]bool{}
			}
			a.deptAdminLinks[key] = true
		default:
			delete(a.deptAdminLinks, key)
		}
	}
	return nil
}

package learnsim

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/v3/token", s.handleToken)
	m.HandleFunc("GET /_sim/{$}", s.handleIndexPage)
	m.HandleFunc("GET /_sim/account", s.handleAccountPage)

	m.HandleFunc("GET /department", s.api(inspect(noBody, listDepartmentsAll)))
	m.HandleFunc("GET /departments", s.api(inspect(noBody, listDepartmentsPaged)))
	m.HandleFunc("GET /department/{id}", s.api(inspect(noBody, getDepartment)))
	m.HandleFunc("POST /department", s.api(mutate(readBody, createDepartment)))
	m.HandleFunc("POST /department/{id}", s.api(mutate(readBody, updateDepartment)))
	m.HandleFunc("DELETE /department/{id}", s.api(mutate(noBody, deleteDepartment)))
	m.HandleFunc(deptSubRoute, s.api(mutate(readBody, setSubordination(setDeptSub))))
	m.HandleFunc("POST /department/{id}/user/move", s.api(mutate(readBody, moveUsers)))
	m.HandleFunc("POST /department/{id}/department/move", s.api(mutate(readBody, moveDepartments)))

	m.HandleFunc("GET /user", s.api(inspect(noBody, listUsersAll(false))))
	m.HandleFunc("GET /user/v2", s.api(inspect(noBody, listUsersAll(true))))
	m.HandleFunc("GET /users", s.api(inspect(bodyOnPost, listUsersPaged(false))))
	m.HandleFunc("GET /users/v2", s.api(inspect(bodyOnPost, listUsersPaged(true))))
	m.HandleFunc("POST /users/v2", s.api(inspect(bodyOnPost, listUsersPaged(true))))
	m.HandleFunc("GET /user/{id}", s.api(inspect(noBody, getUser(false))))
	m.HandleFunc("GET /user/{id}/v2", s.api(inspect(noBody, getUser(true))))
	m.HandleFunc("POST /user", s.api(mutate(readBody, createUser)))
	m.HandleFunc("POST /user/{id}", s.api(mutate(readBody, updateUser)))
	m.HandleFunc("DELETE /user/{id}", s.api(mutate(noBody, deleteUser)))
	m.HandleFunc("POST /user/{id}/status", s.api(mutate(readBody, userStatus)))
	m.HandleFunc("POST /users/activate", s.api(mutate(readBody, bulkStatus(1))))
	m.HandleFunc("POST /users/deactivate", s.api(mutate(readBody, bulkStatus(3))))
	m.HandleFunc("POST /users/terminate", s.api(mutate(readBody, bulkStatus(5))))
	m.HandleFunc("POST /user/{id}/subordination", s.api(mutate(readBody, setSubordination(setUserSub))))
	m.HandleFunc("GET /user/profile/fields", s.api(inspect(noBody, profileFields)))
	m.HandleFunc("POST /users/find_existing", s.api(inspect(readBody, findExisting)))
	s.mux = m
}

// --- departments ---

func listDepartmentsAll(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	code, filter := r.URL.Query()["code"]
	seen := a.seesAll(r)
	out := []deptOut{}
	for _, id := range a.deptOrder {
		if d := a.depts[id]; d != nil && (!filter || unsettledFrom(r).codeMatches(d.Code, code[0])) && seen(id) {
			out = append(out, a.outDept(r, d))
		}
	}
	return found(map[string]any{"departments": out}, response(out)), nil
}

// pageParams reads pageSize (default 1000, the documented one, and at most
// Unsettled.MaxPageSize, 1000 unless set) and pageToken (base64 of the
// first ID of the page) and returns the start position in order.
func pageParams(r *http.Request, body map[string]any, pos map[string]int) (size, from int, err *apiErr) {
	q := r.URL.Query()
	sz, tok := q.Get("pageSize"), q.Get("pageToken")
	if body != nil {
		if v, ok := getStr(body, "pageSize"); ok && sz == "" {
			sz = v
		}
		if v, ok := getStr(body, "pageToken"); ok && tok == "" {
			tok = v
		}
	}
	limit := 1000
	if m := unsettledFrom(r).MaxPageSize; m > 0 {
		limit = m
	}
	size = limit
	if sz != "" {
		n, e := strconv.Atoi(sz)
		if e != nil || n <= 0 {
			return 0, 0, errf(400, "Invalid pageSize")
		}
		size = min(n, limit)
	}
	if tok != "" {
		raw, e := base64.StdEncoding.DecodeString(tok)
		id, after := strings.CutPrefix(string(raw), afterPrefix)
		p, found := pos[id]
		if e != nil || !found {
			return 0, 0, errf(400, "Invalid pageToken")
		}
		from = p
		if after {
			from++
		}
	}
	return size, from, nil
}

func pageToken(id string) string {
	if id == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(id))
}

func listDepartmentsPaged(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	size, from, err := pageParams(r, nil, a.deptPos)
	if err != nil {
		return nil, err
	}
	out := []deptOut{}
	next := ""
	seen := a.seesAll(r)
	for _, id := range a.deptOrder[from:] {
		d := a.depts[id]
		if d == nil || !seen(id) {
			continue
		}
		if len(out) == size {
			next = id
			break
		}
		out = append(out, a.outDept(r, d))
	}
	if next == "" && len(out) > 0 {
		next = unsettledFrom(r).lastOf(len(out), size, out[len(out)-1].ID)
	}
	return page(r, "departments", out, next), nil
}

func getDepartment(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	d := a.depts[r.PathValue("id")]
	if d == nil {
		return nil, errf(404, "Department %s not found", r.PathValue("id"))
	}
	return one(r, a, d.ID, a.outDept(r, d))
}

// bodyOrHeader reads a body parameter, falling back to its X-… header form.
func bodyOrHeader(r *http.Request, body map[string]any, key, header string) (string, bool) {
	if v, ok := getStr(body, key); ok {
		return v, true
	}
	if v := r.Header.Get(header); v != "" {
		return v, true
	}
	return "", false
}

func createDepartment(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	name, _ := bodyOrHeader(r, body, "name", "X-Name")
	parent, _ := bodyOrHeader(r, body, "parentDepartmentId", "X-Parent-Department-Id")
	code, _ := bodyOrHeader(r, body, "code", "X-Code")
	name, err := unsettledFrom(r).fitValue("name", name)
	if err != nil {
		return nil, err
	}
	if code, err = unsettledFrom(r).fitCode(code); err != nil {
		return nil, err
	}
	if err := unsettledFrom(r).refuseSiblingName(a, parent, name, ""); err != nil {
		return nil, err
	}
	if err := unsettledFrom(r).refuseCode(a, code, ""); err != nil {
		return nil, err
	}
	d, err := a.createDept(name, parent, code)
	if err != nil {
		return nil, err
	}
	out := a.outDept(r, d)
	return created(d.ID, out), nil
}

func optStr(m map[string]any, key string) *string {
	if v, ok := getStr(m, key); ok {
		return &v
	}
	return nil
}

func updateDepartment(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	name, parent := optStr(body, "name"), optStr(body, "parentDepartmentId")
	if name != nil {
		n, err := unsettledFrom(r).fitValue("name", *name)
		if err != nil {
			a.logSent(r, body, nil, nil, http.StatusNoContent, err)
			return noContent, err
		}
		name = &n
	}
	if d := a.depts[r.PathValue("id")]; d != nil && (name != nil || parent != nil) {
		n, p := d.Name, d.ParentID
		if name != nil {
			n = *name
		}
		if parent != nil {
			p = *parent
		}
		if err := unsettledFrom(r).refuseSiblingName(a, p, n, d.ID); err != nil {
			return noContent, err
		}
	}
	code := optStr(body, "code")
	if code != nil {
		c, err := unsettledFrom(r).fitCode(*code)
		if err != nil {
			a.logSent(r, body, nil, nil, http.StatusNoContent, err)
			return noContent, err
		}
		code = &c
	}
	if code != nil && a.depts[r.PathValue("id")] != nil {
		if err := unsettledFrom(r).refuseCode(a, *code, r.PathValue("id")); err != nil {
			a.logSent(r, body, nil, nil, http.StatusNoContent, err)
			return noContent, err
		}
	}
	err := a.updateDept(r.PathValue("id"), name, parent, code)
	a.logSent(r, body, nil, nil, http.StatusNoContent, err)
	return noContent, err
}

func deleteDepartment(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	err := a.deleteDept(r.PathValue("id"))
	if err != nil && err.status == http.StatusBadRequest && unsettledFrom(r).RefusedDelete409 {
		err = &apiErr{status: http.StatusConflict, msg: err.msg}
	}
	return noContent, err
}

// setSubordination reads a subordination/coSubordination body and applies
// it to the department or user in the path with set.
func setSubordination(set func(r *http.Request, a *account, id string, sb, co *sub) *apiErr) step {
	return func(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
		sb, err := getSub(body, "subordination")
		if err != nil {
			return nil, err
		}
		co, err := getSub(body, "coSubordination")
		if err != nil {
			return nil, err
		}
		err = set(r, a, r.PathValue("id"), sb, co)
		if r.Pattern == deptSubRoute {
			a.logSent(r, body, nil, nil, http.StatusNoContent, err)
		}
		return noContent, err
	}
}

// deptSubRoute is the route of a department's links, which Sim.Sent logs.
const deptSubRoute = "POST /department/{id}/subordination"

// setDeptSub sets a department's links; the root's answer depends on
// Unsettled.RootSubordination.
func setDeptSub(r *http.Request, a *account, id string, sb, co *sub) *apiErr {
	if a.depts[id] != nil {
		// Validated first, so that a bad request reads the same on the root.
		for _, x := range []*sub{sb, co} {
			if x != nil {
				if err := a.checkSub(x, ""); err != nil {
					return err
				}
			}
		}
		if skip, err := unsettledFrom(r).rootSub(a, id, sb, co); skip || err != nil {
			return err
		}
		if sb != nil || co != nil {
			sb, co = unsettledFrom(r).fillOmitted(sb, co, id == a.rootID)
		}
	}
	return a.setDeptSub(id, sb, co)
}

func setUserSub(r *http.Request, a *account, id string, sb, co *sub) *apiErr {
	if sb != nil {
		_, co = unsettledFrom(r).fillOmitted(sb, co, false)
	}
	return a.setUserSub(id, sb, co)
}

func idsParam(r *http.Request, body map[string]any, key, header string) []string {
	ids := getStrs(body, key)
	if len(ids) == 0 && header != "" {
		for _, v := range strings.Split(r.Header.Get(header), ",") {
			if v = strings.TrimSpace(v); v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

func moveUsers(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	ids := idsParam(r, body, "userIds", "X-User-Ids")
	apply, after := unsettledFrom(r).bulkUsers(a, ids)
	var err *apiErr
	switch {
	case len(apply) > 0 || len(ids) == 0:
		err = a.moveUsers(r.PathValue("id"), apply)
	case a.depts[r.PathValue("id")] == nil:
		err = errf(http.StatusNotFound, "Department %s not found", r.PathValue("id"))
	}
	if err == nil {
		err = after
	}
	a.logSent(r, body, nil, ids, http.StatusNoContent, err)
	return noContent, err
}

func moveDepartments(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	var ids []string
	for _, k := range unsettledFrom(r).moveKeys() {
		if ids = getStrs(body, k); len(ids) > 0 {
			break
		}
	}
	for _, id := range ids {
		if d := a.depts[id]; d != nil {
			if err := unsettledFrom(r).refuseSiblingName(a, r.PathValue("id"), d.Name, d.ID); err != nil {
				return noContent, err
			}
		}
	}
	return noContent, a.moveDepts(r.PathValue("id"), unsettledFrom(r).moveKeys()[0], ids)
}

// --- users ---

func userQueryFrom(r *http.Request, body map[string]any) userQuery {
	q := r.URL.Query()
	get := func(name string) []string {
		v := append(q[name+"[]"], q[name]...)
		if body != nil {
			v = append(v, getStrs(body, name)...)
		}
		return v
	}
	return userQuery{depts: get("departments"), logins: get("logins"), emails: get("emails"), ids: get("userIds"),
		exact: unsettledFrom(r).ExactFilters}
}

// usersSeen is userQueryFrom with the caller's reach.
func (a *account) usersSeen(r *http.Request, body map[string]any) userQuery {
	q := userQueryFrom(r, body)
	q.seen = a.readScope(r)
	return q
}

func listUsersAll(v2 bool) step {
	return func(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
		ids, _ := a.matchUsers(a.usersSeen(r, nil), 0, 0)
		out := a.outUsers(ids, v2, unsettledFrom(r))
		return found(out, response(out)), nil
	}
}

func listUsersPaged(v2 bool) step {
	return func(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
		size, from, err := pageParams(r, body, a.userPos)
		if err != nil {
			return nil, err
		}
		ids, next := a.matchUsers(a.usersSeen(r, body), from, size)
		out := a.outUsers(ids, v2, unsettledFrom(r))
		if next == "" && len(ids) > 0 {
			next = unsettledFrom(r).lastOf(len(ids), size, ids[len(ids)-1])
		}
		return page(r, "userProfiles", out, next), nil
	}
}

func getUser(v2 bool) step {
	return func(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
		u := a.users[r.PathValue("id")]
		if u == nil {
			return nil, errf(404, "User %s not found", r.PathValue("id"))
		}
		return one(r, a, u.DeptID, a.outUser(u, v2, unsettledFrom(r), a.supervised(unsettledFrom(r))[u.ID]))
	}
}

func createUser(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	req := newUserReq{}
	req.DeptID, _ = bodyOrHeader(r, body, "departmentId", "X-Department-Id")
	var ferr *apiErr
	if req.Fields, _, ferr = unsettledFrom(r).userFields(body); ferr != nil {
		return nil, ferr
	}
	req.Password, _ = getStr(body, "password")
	req.Role, _ = bodyOrHeader(r, body, "role", "X-Role")
	req.Manages, _ = manageableIDs(r, body)
	send, sent := bodyOrHeader(r, body, "sendLoginEmail", "X-Send-Login-Email")
	req.SendLoginEmail, _ = strconv.ParseBool(strings.TrimSpace(send))
	if !sent && unsettledFrom(r).LoginEmailByDefault {
		req.SendLoginEmail, req.InvitationDefault = true, true
	}
	req.InvitationMessage, _ = getStr(body, "invitationMessage")
	req.RoleID, _ = bodyOrHeader(r, body, "roleId", "X-Role-Id")
	sms, _ := bodyOrHeader(r, body, "sendLoginSMS", "X-Send-Login-SMS")
	req.SendLoginSMS, _ = strconv.ParseBool(strings.TrimSpace(sms))
	req.InvitationSMSMessage, _ = bodyOrHeader(r, body, "invitationSMSMessage", "X-Invitation-SMS-Message")
	req.Dates = unsettledFrom(r).DateFormat
	req.PasswordRequired = unsettledFrom(r).PasswordRequired
	req.CaseSensitive = unsettledFrom(r).CaseSensitiveUnique
	if err := unsettledFrom(r).fitFields(a, req.Fields); err != nil {
		return nil, err
	}
	u, err := a.createUser(req)
	if err != nil && err.status == http.StatusConflict && unsettledFrom(r).Duplicate400 {
		err = &apiErr{status: http.StatusBadRequest, msg: err.msg}
	}
	if err != nil {
		return nil, err
	}
	out := a.outUser(u, true, unsettledFrom(r), nil)
	return created(out.ID, out), nil
}

func updateUser(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	fields, _, err := unsettledFrom(r).userFields(body)
	if err == nil {
		err = unsettledFrom(r).fitFields(a, fields)
	}
	if err == nil {
		var manages *[]string
		if ids, sent := manageableIDs(r, body); sent {
			manages = &ids
		}
		err = a.updateUser(r.PathValue("id"), optStr(body, "departmentId"), fields, optStr(body, "role"), manages, unsettledFrom(r))
	}
	reply, status := ok, http.StatusOK
	if unsettledFrom(r).UserUpdate204 {
		reply, status = noContent, http.StatusNoContent
	}
	a.logSent(r, body, fields, nil, status, err)
	return reply, err
}

// manageableIDs reads manageableDepartmentIds (the OAS's ArrayOfIds: a JSON
// list, or XML <id> elements) or the create's X-Manageable-Department-Ids
// header; a comma-separated string is taken too. sent says whether the
// request named them at all (an empty list clears them on update).
func manageableIDs(r *http.Request, body map[string]any) (ids []string, sent bool) {
	const key = "manageableDepartmentIds"
	raw, sent := body[key]
	vals := flatStrs(raw)
	if !sent {
		if h := r.Header.Get("X-Manageable-Department-Ids"); h != "" {
			vals, sent = []string{h}, true
		}
	}
	for _, v := range vals {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids, sent
}

func deleteUser(r *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	id := r.PathValue("id")
	err := a.deleteUser(id, unsettledFrom(r))
	if err == nil {
		unsettledFrom(r).leaverLinks(a, id)
	}
	return noContent, err
}

func userStatus(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	st, has := getInt(body, "status")
	if !has {
		if v, e := strconv.Atoi(r.Header.Get("X-Status")); e == nil {
			st, has = v, true
		}
	}
	if !has {
		return nil, errf(400, "Parameter status is required")
	}
	id := r.PathValue("id")
	if a.users[id] == nil {
		return nil, errf(404, "User %s not found", id)
	}
	err := a.setStatus([]string{id}, st, unsettledFrom(r))
	if err == nil && st != 1 {
		unsettledFrom(r).leaverLinks(a, id)
	}
	return ok, err
}

func bulkStatus(status int) step {
	return func(r *http.Request, a *account, body map[string]any) (answer, *apiErr) {
		ids := idsParam(r, body, "userIds", "X-User-Ids")
		apply, after := unsettledFrom(r).bulkUsers(a, ids)
		var err *apiErr
		if len(apply) > 0 || len(ids) == 0 {
			err = a.setStatus(apply, status, unsettledFrom(r))
		}
		if err == nil && status != 1 {
			unsettledFrom(r).leaverLinks(a, apply...)
		}
		if err == nil {
			err = after
		}
		return ok, err
	}
}

type fieldInfoOut struct {
	XMLName  xml.Name          `json:"-" xml:"userFieldInfo"`
	ID       string            `json:"userFieldInfoId" xml:"userFieldInfoId"`
	Name     string            `json:"name" xml:"name"`
	Label    string            `json:"label" xml:"label"`
	Type     string            `json:"type" xml:"type"`
	Unique   int               `json:"isUnique" xml:"isUnique"`
	Required int               `json:"isRequired" xml:"isRequired"`
	Order    int               `json:"orderPriority" xml:"orderPriority"`
	Values   map[string]string `json:"values" xml:"-"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func profileFields(_ *http.Request, a *account, _ map[string]any) (answer, *apiErr) {
	out := make([]fieldInfoOut, 0, len(a.fields))
	for _, f := range a.fields {
		out = append(out, fieldInfoOut{ID: f.ID, Name: f.Name, Label: f.Label, Type: f.Type,
			Unique: b2i(f.Unique), Required: b2i(f.Required), Order: f.Order, Values: map[string]string{}})
	}
	return found(out, response(out)), nil
}

type xmlIDList struct {
	XMLName xml.Name `xml:"response"`
	IDs     []string `xml:"userId"`
}

func findExisting(_ *http.Request, a *account, body map[string]any) (answer, *apiErr) {
	out := []string{}
	for _, id := range getStrs(body, "userIds") {
		if a.users[id] != nil {
			out = append(out, id)
		}
	}
	return found(out, xmlIDList{IDs: out}), nil
}

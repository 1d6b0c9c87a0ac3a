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

	m.HandleFunc("GET /department", s.api(s.listDepartmentsAll))
	m.HandleFunc("GET /departments", s.api(s.listDepartmentsPaged))
	m.HandleFunc("GET /department/{id}", s.api(s.getDepartment))
	m.HandleFunc("POST /department", s.api(s.createDepartment))
	m.HandleFunc("POST /department/{id}", s.api(s.updateDepartment))
	m.HandleFunc("DELETE /department/{id}", s.api(s.deleteDepartment))
	m.HandleFunc("POST /department/{id}/subordination", s.api(s.departmentSubordination))
	m.HandleFunc("POST /department/{id}/user/move", s.api(s.moveUsers))
	m.HandleFunc("POST /department/{id}/department/move", s.api(s.moveDepartments))

	m.HandleFunc("GET /user", s.api(s.listUsersAll(false)))
	m.HandleFunc("GET /user/v2", s.api(s.listUsersAll(true)))
	m.HandleFunc("GET /users", s.api(s.listUsersPaged(false)))
	m.HandleFunc("GET /users/v2", s.api(s.listUsersPaged(true)))
	m.HandleFunc("POST /users/v2", s.api(s.listUsersPaged(true)))
	m.HandleFunc("GET /user/{id}", s.api(s.getUser(false)))
	m.HandleFunc("GET /user/{id}/v2", s.api(s.getUser(true)))
	m.HandleFunc("POST /user", s.api(s.createUser))
	m.HandleFunc("POST /user/{id}", s.api(s.updateUser))
	m.HandleFunc("DELETE /user/{id}", s.api(s.deleteUser))
	m.HandleFunc("POST /user/{id}/status", s.api(s.userStatus))
	m.HandleFunc("POST /users/activate", s.api(s.bulkStatus(1)))
	m.HandleFunc("POST /users/deactivate", s.api(s.bulkStatus(3)))
	m.HandleFunc("POST /users/terminate", s.api(s.bulkStatus(5)))
	m.HandleFunc("POST /user/{id}/subordination", s.api(s.userSubordination))
	m.HandleFunc("GET /user/profile/fields", s.api(s.profileFields))
	m.HandleFunc("POST /users/find_existing", s.api(s.findExisting))
	s.mux = m
}

func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

// ok answers 200 with an empty body (user update and status, per the OAS).
func ok(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }

// --- departments ---

type xmlDeptList struct {
	XMLName     xml.Name  `xml:"response"`
	Departments []deptOut `xml:"department"`
}

type xmlDeptPage struct {
	XMLName       xml.Name  `xml:"response"`
	Departments   []deptOut `xml:"departments>department"`
	NextPageToken string    `xml:"nextPageToken,omitempty"`
}

func (s *Sim) listDepartmentsAll(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	code, filter := r.URL.Query()["code"]
	a.mu.RLock()
	out := []deptOut{}
	for _, id := range a.deptOrder {
		if d := a.depts[id]; d != nil && (!filter || d.Code == code[0]) {
			out = append(out, a.outDept(r, d))
		}
	}
	a.mu.RUnlock()
	write(w, r, 200, map[string]any{"departments": out}, xmlDeptList{Departments: out})
}

// pageParams reads pageSize (default and maximum 1000) and pageToken (base64 of the
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
	size = 1000
	if sz != "" {
		n, e := strconv.Atoi(sz)
		if e != nil || n <= 0 {
			return 0, 0, errf(400, "Invalid pageSize")
		}
		size = min(n, 1000)
	}
	if tok != "" {
		raw, e := base64.StdEncoding.DecodeString(tok)
		p, found := pos[string(raw)]
		if e != nil || !found {
			return 0, 0, errf(400, "Invalid pageToken")
		}
		from = p
	}
	return size, from, nil
}

func pageToken(id string) string {
	if id == "" {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(id))
}

func (s *Sim) listDepartmentsPaged(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	a.mu.RLock()
	size, from, err := pageParams(r, nil, a.deptPos)
	if err != nil {
		a.mu.RUnlock()
		writeErr(w, r, err)
		return
	}
	out := []deptOut{}
	next := ""
	for _, id := range a.deptOrder[from:] {
		d := a.depts[id]
		if d == nil {
			continue
		}
		if len(out) == size {
			next = id
			break
		}
		out = append(out, a.outDept(r, d))
	}
	a.mu.RUnlock()
	body := map[string]any{"departments": out}
	if next != "" {
		body["nextPageToken"] = pageToken(next)
	}
	write(w, r, 200, body, xmlDeptPage{Departments: out, NextPageToken: pageToken(next)})
}

type xmlDept struct {
	XMLName xml.Name `xml:"response"`
	Dept    deptOut
}

func (s *Sim) getDepartment(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	a.mu.RLock()
	d := a.depts[r.PathValue("id")]
	var out deptOut
	if d != nil {
		out = a.outDept(r, d)
	}
	a.mu.RUnlock()
	if d == nil {
		writeErr(w, r, errf(404, "Department %s not found", r.PathValue("id")))
		return
	}
	write(w, r, 200, single(r, out), xmlDept{Dept: out})
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

func (s *Sim) createDepartment(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	name, _ := bodyOrHeader(r, body, "name", "X-Name")
	parent, _ := bodyOrHeader(r, body, "parentDepartmentId", "X-Parent-Department-Id")
	code, _ := bodyOrHeader(r, body, "code", "X-Code")
	a.mu.Lock()
	d, err := a.createDept(name, parent, code)
	var out deptOut
	if err == nil {
		out = a.outDept(r, d)
	}
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if returnObject(r) {
		write(w, r, 201, out, xmlDept{Dept: out})
		return
	}
	writeCreated(w, r, d.ID)
}

func optStr(m map[string]any, key string) *string {
	if v, ok := getStr(m, key); ok {
		return &v
	}
	return nil
}

func (s *Sim) updateDepartment(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.mu.Lock()
	err = a.updateDept(r.PathValue("id"), optStr(body, "name"), optStr(body, "parentDepartmentId"), optStr(body, "code"))
	a.mu.Unlock()
	sent := Sent{Route: r.Pattern, ID: r.PathValue("id"), Keys: bodyKeys(body, nil), Status: http.StatusNoContent}
	if err != nil {
		sent.Status = err.status
	}
	a.sent.add(sent)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

func (s *Sim) deleteDepartment(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	a.mu.Lock()
	err := a.deleteDept(r.PathValue("id"))
	a.mu.Unlock()
	if err != nil && err.status == http.StatusBadRequest && unsettledFrom(r).RefusedDelete409 {
		err = &apiErr{status: http.StatusConflict, msg: err.msg}
	}
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

func (s *Sim) departmentSubordination(w http.ResponseWriter, r *http.Request) {
	setSubordination(w, r, (*account).setDeptSub)
}

// setSubordination reads a subordination/coSubordination body and applies
// it to the department or user in the path with set.
func setSubordination(w http.ResponseWriter, r *http.Request, set func(a *account, id string, sb, co *sub) *apiErr) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	sb, err := getSub(body, "subordination")
	if err != nil {
		writeErr(w, r, err)
		return
	}
	co, err := getSub(body, "coSubordination")
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.mu.Lock()
	err = set(a, r.PathValue("id"), sb, co)
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

func idsParam(r *http.Request, body map[string]any, key, header string) []string {
	ids := getStrs(body, key)
	if len(ids) == 0 && key == "departmentIds" {
		ids = getStrs(body, "departmnetIds") // the OAS's spelling
	}
	if len(ids) == 0 && header != "" {
		for _, v := range strings.Split(r.Header.Get(header), ",") {
			if v = strings.TrimSpace(v); v != "" {
				ids = append(ids, v)
			}
		}
	}
	return ids
}

func (s *Sim) moveUsers(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	ids := idsParam(r, body, "userIds", "X-User-Ids")
	a.mu.Lock()
	err = a.moveUsers(r.PathValue("id"), ids)
	a.mu.Unlock()
	sent := Sent{Route: r.Pattern, ID: r.PathValue("id"), Keys: bodyKeys(body, nil), UserIDs: ids, Status: http.StatusNoContent}
	if err != nil {
		sent.Status = err.status
	}
	a.sent.add(sent)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

func (s *Sim) moveDepartments(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	a.mu.Lock()
	err = a.moveDepts(r.PathValue("id"), idsParam(r, body, "departmentIds", ""))
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

// --- users ---

type xmlUserList struct {
	XMLName xml.Name  `xml:"response"`
	Users   []userOut `xml:"userProfile"`
}

type xmlUserPage struct {
	XMLName       xml.Name  `xml:"response"`
	Users         []userOut `xml:"userProfiles>userProfile"`
	NextPageToken string    `xml:"nextPageToken,omitempty"`
}

func userQueryFrom(r *http.Request, body map[string]any) userQuery {
	q := r.URL.Query()
	get := func(name string) []string {
		v := append(q[name+"[]"], q[name]...)
		if body != nil {
			v = append(v, getStrs(body, name)...)
		}
		return v
	}
	return userQuery{depts: get("departments"), logins: get("logins"), emails: get("emails"), ids: get("userIds")}
}

func (s *Sim) listUsersAll(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := acctFrom(r)
		a.mu.RLock()
		ids, _ := a.matchUsers(userQueryFrom(r, nil), 0, 0)
		out := make([]userOut, 0, len(ids))
		for _, id := range ids {
			out = append(out, a.outUser(a.users[id], v2))
		}
		a.mu.RUnlock()
		write(w, r, 200, out, xmlUserList{Users: out})
	}
}

func (s *Sim) listUsersPaged(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := acctFrom(r)
		var body map[string]any
		if r.Method == http.MethodPost {
			var err *apiErr
			if body, err = readBody(r); err != nil {
				writeErr(w, r, err)
				return
			}
		}
		a.mu.RLock()
		size, from, err := pageParams(r, body, a.userPos)
		if err != nil {
			a.mu.RUnlock()
			writeErr(w, r, err)
			return
		}
		ids, next := a.matchUsers(userQueryFrom(r, body), from, size)
		out := make([]userOut, 0, len(ids))
		for _, id := range ids {
			out = append(out, a.outUser(a.users[id], v2))
		}
		a.mu.RUnlock()
		res := map[string]any{"userProfiles": out}
		if next != "" {
			res["nextPageToken"] = pageToken(next)
		}
		write(w, r, 200, res, xmlUserPage{Users: out, NextPageToken: pageToken(next)})
	}
}

type xmlUser struct {
	XMLName xml.Name `xml:"response"`
	User    userOut
}

func (s *Sim) getUser(v2 bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := acctFrom(r)
		a.mu.RLock()
		u := a.users[r.PathValue("id")]
		var out userOut
		if u != nil {
			out = a.outUser(u, v2)
		}
		a.mu.RUnlock()
		if u == nil {
			writeErr(w, r, errf(404, "User %s not found", r.PathValue("id")))
			return
		}
		write(w, r, 200, single(r, out), xmlUser{User: out})
	}
}

func (s *Sim) createUser(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	req := newUserReq{}
	req.DeptID, _ = bodyOrHeader(r, body, "departmentId", "X-Department-Id")
	req.Fields, _ = getFields(body, "fields")
	req.Password, _ = getStr(body, "password")
	req.Role, _ = bodyOrHeader(r, body, "role", "X-Role")
	send, _ := bodyOrHeader(r, body, "sendLoginEmail", "X-Send-Login-Email")
	req.SendLoginEmail, _ = strconv.ParseBool(strings.TrimSpace(send))
	req.InvitationMessage, _ = getStr(body, "invitationMessage")
	a.mu.Lock()
	u, err := a.createUser(req)
	var out userOut
	if err == nil {
		out = a.outUser(u, true)
	}
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if returnObject(r) {
		write(w, r, 201, out, xmlUser{User: out})
		return
	}
	writeCreated(w, r, out.ID)
}

func (s *Sim) updateUser(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	fields, _ := getFields(body, "fields")
	a.mu.Lock()
	err = a.updateUser(r.PathValue("id"), optStr(body, "departmentId"), fields, optStr(body, "role"), unsettledFrom(r).RefuseEmptyUpdate)
	a.mu.Unlock()
	sent := Sent{Route: r.Pattern, ID: r.PathValue("id"), Keys: bodyKeys(body, fields), Status: http.StatusOK}
	if unsettledFrom(r).UserUpdate204 {
		sent.Status = http.StatusNoContent
	}
	if err != nil {
		sent.Status = err.status
	}
	a.sent.add(sent)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	if unsettledFrom(r).UserUpdate204 {
		noContent(w)
		return
	}
	ok(w)
}

func (s *Sim) deleteUser(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	a.mu.Lock()
	err := a.deleteUser(r.PathValue("id"))
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	noContent(w)
}

func (s *Sim) userStatus(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	st, has := getInt(body, "status")
	if !has {
		if v, e := strconv.Atoi(r.Header.Get("X-Status")); e == nil {
			st, has = v, true
		}
	}
	if !has {
		writeErr(w, r, errf(400, "Parameter status is required"))
		return
	}
	id := r.PathValue("id")
	a.mu.Lock()
	if a.users[id] == nil {
		err = errf(404, "User %s not found", id)
	} else {
		err = a.setStatus([]string{id}, st)
	}
	a.mu.Unlock()
	if err != nil {
		writeErr(w, r, err)
		return
	}
	ok(w)
}

func (s *Sim) bulkStatus(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := acctFrom(r)
		body, err := readBody(r)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		a.mu.Lock()
		err = a.setStatus(idsParam(r, body, "userIds", "X-User-Ids"), status)
		a.mu.Unlock()
		if err != nil {
			writeErr(w, r, err)
			return
		}
		ok(w)
	}
}

func (s *Sim) userSubordination(w http.ResponseWriter, r *http.Request) {
	setSubordination(w, r, (*account).setUserSub)
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

type xmlFieldList struct {
	XMLName xml.Name       `xml:"response"`
	Fields  []fieldInfoOut `xml:"userFieldInfo"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Sim) profileFields(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	a.mu.RLock()
	out := make([]fieldInfoOut, 0, len(a.fields))
	for _, f := range a.fields {
		out = append(out, fieldInfoOut{ID: f.ID, Name: f.Name, Label: f.Label, Type: f.Type,
			Unique: b2i(f.Unique), Required: b2i(f.Required), Order: f.Order, Values: map[string]string{}})
	}
	a.mu.RUnlock()
	write(w, r, 200, out, xmlFieldList{Fields: out})
}

type xmlIDList struct {
	XMLName xml.Name `xml:"response"`
	IDs     []string `xml:"userId"`
}

func (s *Sim) findExisting(w http.ResponseWriter, r *http.Request) {
	a := acctFrom(r)
	body, err := readBody(r)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	out := []string{}
	a.mu.RLock()
	for _, id := range getStrs(body, "userIds") {
		if a.users[id] != nil {
			out = append(out, id)
		}
	}
	a.mu.RUnlock()
	write(w, r, 200, out, xmlIDList{IDs: out})
}

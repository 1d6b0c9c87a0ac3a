package b24sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// restErr is a REST error answer.
type restErr struct {
	status int
	code   string
	desc   string
}

// restOK is a REST success answer.
type restOK struct {
	result      any
	total, next *int
}

func intp(n int) *int { return &n }

// serveREST handles /rest/<method> and the inbound webhook /rest/<user>/<code>/<method>.
func (s *Sim) serveREST(w http.ResponseWriter, r *http.Request, p *Portal, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	method := strings.TrimSuffix(strings.ToLower(parts[len(parts)-1]), ".json")
	webhook := len(parts) == 3
	if len(parts) != 1 && !webhook {
		writeJSON(w, http.StatusNotFound, errBody("ERROR_METHOD_NOT_FOUND", "Method not found!"))
		return
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("INVALID_REQUEST", err.Error()))
		return
	}

	s.mu.Lock()
	p.requests[method]++
	latency := p.latency
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}

	s.mu.Lock()
	if e := p.admit(method); e != nil {
		s.mu.Unlock()
		writeJSON(w, e.status, errBody(e.code, e.desc))
		return
	}
	var userID int64
	if webhook {
		if p.webhook == "" || parts[1] != p.webhook {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, errBody("INVALID_CREDENTIALS", "Invalid request credentials"))
			return
		}
		userID, _ = strconv.ParseInt(parts[0], 10, 64)
	} else {
		var e *restErr
		userID, e = s.authenticate(p, method, authOf(r, params))
		if e != nil {
			s.mu.Unlock()
			writeJSON(w, e.status, errBody(e.code, e.desc))
			return
		}
	}
	var ok *restOK
	var e *restErr
	tb := timeBlock() // batch itself has no operating time
	if method == "batch" {
		ok, e = s.batch(p, userID, webhook, params)
	} else {
		ok, e = s.execTimed(p, userID, webhook, method, params)
		tb = s.methodTime(p, method)
	}
	s.mu.Unlock()
	if e != nil {
		writeJSON(w, e.status, errBody(e.code, e.desc))
		return
	}
	env := envelope(ok.result, ok.total, ok.next)
	env["time"] = tb
	writeJSON(w, http.StatusOK, env)
}

// admit applies injected faults and the leaky bucket (s.mu held).
func (p *Portal) admit(method string) *restErr {
	for i := range p.faults {
		f := p.faults[i]
		if f.Method == "" || strings.EqualFold(f.Method, method) {
			p.faults[i].Count--
			if p.faults[i].Count <= 0 {
				p.faults = slices.Delete(p.faults, i, i+1)
			}
			return &restErr{f.Status, f.Code, f.Description}
		}
	}
	if p.rate <= 0 {
		return nil
	}
	now := time.Now()
	if !p.last.IsZero() {
		p.level = max(0, p.level-now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	if p.level+1 > p.burst {
		p.throttle++
		return &restErr{http.StatusServiceUnavailable, "QUERY_LIMIT_EXCEEDED", "Too many requests"}
	}
	p.level++
	return nil
}

// authenticate checks an access token against the portal (s.mu held).
func (s *Sim) authenticate(p *Portal, method, token string) (int64, *restErr) {
	if token == "" {
		return 0, &restErr{http.StatusUnauthorized, "NO_AUTH_FOUND", "Wrong authorization data"}
	}
	at, ok := s.access[token]
	switch {
	case !ok || at.portal != p:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case at.gen != p.gen || !p.installed():
		return p.goneAnswer(at, method)
	case at.revoked:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case !s.now().Before(at.expires):
		return 0, &restErr{http.StatusUnauthorized, "expired_token", "The access token provided has expired"}
	}
	return at.userID, nil
}

// goneAnswer refuses a token of an uninstalled installation as the portal's
// AfterUninstall says (s.mu held). GoneNotInstalled lets app.info through so
// that it can report INSTALLED false.
func (p *Portal) goneAnswer(at *accessToken, method string) (int64, *restErr) {
	switch p.gone {
	case GoneInvalidToken, GonePaymentRequired:
		return 0, &restErr{http.StatusUnauthorized, "invalid_token", "The access token provided is invalid"}
	case GoneExpiredToken:
		return 0, &restErr{http.StatusUnauthorized, "expired_token", "The access token provided has expired"}
	case GonePortalNotFound:
		return 0, &restErr{http.StatusNotFound, "NOT_FOUND", "Portal not found"}
	case GoneNotInstalled:
		if method == "app.info" && !at.revoked && !p.installed() {
			return at.userID, nil
		}
	}
	return 0, &restErr{http.StatusUnauthorized, "APPLICATION_NOT_FOUND", "Application not found"}
}

// exec runs one method (s.mu held).
func (s *Sim) exec(p *Portal, userID int64, webhook bool, method string, params map[string]any) (*restOK, *restErr) {
	p.commands[method]++
	if webhook && method != "crm.lead.add" && method != "profile" {
		return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the webhook token"}
	}
	switch method {
	case "profile":
		u := p.users[userID]
		if u == nil {
			return nil, &restErr{http.StatusUnauthorized, "authorization_error", "Unable to authorize user"}
		}
		return &restOK{result: map[string]any{"ID": strconv.FormatInt(u.ID, 10), "ADMIN": u.Admin, "NAME": u.Name,
			"LAST_NAME": u.LastName, "PERSONAL_GENDER": "", "TIME_ZONE": ""}}, nil
	case "user.admin":
		u := p.users[userID]
		return &restOK{result: u != nil && u.Admin}, nil
	case "app.info":
		return &restOK{result: map[string]any{"ID": 5, "CODE": s.opts.AppCode, "VERSION": p.version, "STATUS": p.status,
			"INSTALLED": p.state == stateInstalled, "PAYMENT_EXPIRED": "N", "DAYS": nil, "LANGUAGE_ID": p.lang,
			"LICENSE": p.lang + "_ent250", "LICENSE_TYPE": "ent250", "LICENSE_FAMILY": "ent"}}, nil
	case "department.get":
		return p.departmentGet(params)
	case "user.get":
		return p.userGet(userID, params, hasScope(s.opts.Scope, "user.userfield"))
	case "user.userfield.list":
		// user.userfield.* need their own scope (docs/bitrix24-api.md, "Custom user fields").
		if !hasScope(s.opts.Scope, "user.userfield") {
			return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the access token"}
		}
		return p.userFieldList(params)
	case "event.bind":
		return p.eventBind(userID, params)
	case "event.unbind":
		ev, h := strings.ToUpper(str(params["event"])), str(params["handler"])
		n := 0
		p.bindings = slices.DeleteFunc(p.bindings, func(b binding) bool {
			del := b.event == ev && (h == "" || b.handler == h)
			if del {
				n++
			}
			return del
		})
		return &restOK{result: map[string]any{"count": n}}, nil
	case "event.get":
		rows := []any{}
		for _, b := range p.bindings {
			rows = append(rows, map[string]any{"event": b.event, "handler": b.handler, "auth_type": "0", "offline": 0})
		}
		return &restOK{result: rows}, nil
	case "crm.lead.add":
		if !webhook {
			return nil, &restErr{http.StatusUnauthorized, "insufficient_scope", "The request requires higher privileges than provided by the access token"}
		}
		fields, _ := params["fields"].(map[string]any)
		if len(fields) == 0 {
			return nil, &restErr{http.StatusBadRequest, "ERROR_CORE", "Fields are empty"}
		}
		p.leads = append(p.leads, Lead{Fields: fields, At: time.Now()})
		return &restOK{result: len(p.leads)}, nil
	case "batch":
		return nil, &restErr{http.StatusMethodNotAllowed, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"}
	}
	return nil, &restErr{http.StatusNotFound, "ERROR_METHOD_NOT_FOUND", "Method not found!"}
}

func (p *Portal) eventBind(userID int64, params map[string]any) (*restOK, *restErr) {
	ev, h := strings.ToUpper(str(params["event"])), str(params["handler"])
	if ev == "" || h == "" {
		return nil, &restErr{http.StatusBadRequest, "ERROR_ARGUMENT", "Event and handler are required"}
	}
	if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &restErr{http.StatusBadRequest, "ERROR_ARGUMENT", "Wrong handler URL"}
	}
	if u := p.users[userID]; u == nil || !u.Admin {
		return nil, &restErr{http.StatusForbidden, "ACCESS_DENIED", "Access denied! Admin permissions required"}
	}
	for _, b := range p.bindings {
		if b.event == ev && b.handler == h {
			// The code of this error is UNCONFIRMED; the text is from b24phpsdk#446.
			return nil, &restErr{http.StatusBadRequest, "ERROR_CORE", "Handler already binded"}
		}
	}
	p.nextBind++
	p.bindings = append(p.bindings, binding{id: p.nextBind, event: ev, handler: h})
	return &restOK{result: true}, nil
}

// --- lists ---------------------------------------------------------------

// page cuts n sorted rows by start as Bitrix24 does: 50 per page, total and
// next for start ≥ 0, neither (total 0) for start=-1. Only the page is rendered.
func page(n int, render func(i int) map[string]any, params map[string]any, emptyWithoutTotal bool) (*restOK, *restErr) {
	start := 0
	for _, k := range []string{"start", "START"} {
		if v, ok := params[k]; ok {
			start = int(num(v))
		}
	}
	rows := func(from, to int) []any {
		out := make([]any, 0, to-from)
		for i := from; i < to; i++ {
			out = append(out, render(i))
		}
		return out
	}
	if start < 0 {
		ok := &restOK{result: rows(0, min(n, pageSize)), total: intp(0)}
		if n == 0 && emptyWithoutTotal {
			ok.total = nil
		}
		return ok, nil
	}
	start = min(start, n)
	end := min(n, start+pageSize)
	ok := &restOK{result: rows(start, end), total: intp(n)}
	if end < n {
		ok.next = intp(end)
	}
	if n == 0 && emptyWithoutTotal {
		ok.total = nil // user.get's empty answer has no total (docs/bitrix24-api.md, "Answers")
	}
	return ok, nil
}

// upperKeys upper-cases the keys of a parameter map.
func upperKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.HasPrefix(k, "\x00") {
			out[strings.ToUpper(k)] = v
		}
	}
	return out
}

func (p *Portal) departmentGet(params map[string]any) (*restOK, *restErr) {
	q := upperKeys(params)
	sortBy, order := strings.ToUpper(str(q["SORT"])), strings.ToUpper(str(q["ORDER"]))
	filter := withoutControl(q)
	if f, ok := q["FILTER"].(map[string]any); ok {
		filter = upperKeys(f) // a FILTER array replaces the top-level filter keys
	}
	terms := parseFilter(filter)
	var ds []*Department
	for _, d := range p.depts {
		if deptMatches(d, terms) {
			ds = append(ds, d)
		}
	}
	switch sortBy {
	case "ID", "NAME", "SORT", "PARENT", "UF_HEAD":
		sort.Slice(ds, func(i, j int) bool {
			a, b := ds[i], ds[j]
			var less, eq bool
			switch sortBy {
			case "NAME":
				less, eq = a.Name < b.Name, a.Name == b.Name
			case "SORT":
				less, eq = a.Sort < b.Sort, a.Sort == b.Sort
			case "PARENT":
				less, eq = a.Parent < b.Parent, a.Parent == b.Parent
			case "UF_HEAD":
				less, eq = a.Head < b.Head, a.Head == b.Head
			default:
				eq = true
			}
			if eq {
				less = a.ID < b.ID
			}
			if order == "DESC" {
				return !less
			}
			return less
		})
	default:
		ds = p.treeOrder(ds) // LEFT_MARGIN order: parents before children
	}
	return page(len(ds), func(i int) map[string]any {
		d := ds[i]
		row := map[string]any{"ID": strconv.FormatInt(d.ID, 10), "NAME": d.Name, "SORT": d.Sort}
		if d.Parent != 0 { // null keys are left out
			row["PARENT"] = strconv.FormatInt(d.Parent, 10)
		}
		if d.Head != 0 {
			row["UF_HEAD"] = strconv.FormatInt(d.Head, 10)
		}
		return row
	}, params, false)
}

type term struct {
	op, field string
	v         any
}

func parseFilter(f map[string]any) []term {
	out := make([]term, 0, len(f))
	for k, v := range f {
		op, field := splitOp(k)
		out = append(out, term{op, field, v})
	}
	return out
}

func deptMatches(d *Department, terms []term) bool {
	for _, t := range terms {
		op, field, v := t.op, t.field, t.v
		if isEmpty(v) {
			continue
		}
		var have int64
		switch field {
		case "ID":
			have = d.ID
		case "PARENT":
			have = d.Parent
		case "UF_HEAD":
			have = d.Head
		case "SORT":
			have = int64(d.Sort)
		case "NAME":
			if (op == "" || op == "=") && d.Name != str(v) {
				return false
			}
			continue
		default:
			continue
		}
		if !cmpInt(op, have, v) {
			return false
		}
	}
	return true
}

// treeOrder sorts departments depth-first, siblings by SORT then ID.
func (p *Portal) treeOrder(ds []*Department) []*Department {
	in := map[int64]bool{}
	for _, d := range ds {
		in[d.ID] = true
	}
	kids := map[int64][]*Department{}
	var roots []*Department
	for _, d := range p.depts {
		if _, ok := p.depts[d.Parent]; ok && d.Parent != d.ID {
			kids[d.Parent] = append(kids[d.Parent], d)
		} else {
			roots = append(roots, d)
		}
	}
	bySort := func(l []*Department) {
		sort.Slice(l, func(i, j int) bool {
			if l[i].Sort != l[j].Sort {
				return l[i].Sort < l[j].Sort
			}
			return l[i].ID < l[j].ID
		})
	}
	var out []*Department
	seen := map[int64]bool{}
	var walk func(d *Department)
	walk = func(d *Department) {
		if seen[d.ID] {
			return
		}
		seen[d.ID] = true
		if in[d.ID] {
			out = append(out, d)
		}
		k := kids[d.ID]
		bySort(k)
		for _, c := range k {
			walk(c)
		}
	}
	bySort(roots)
	for _, r := range roots {
		walk(r)
	}
	return out
}

func hasScope(scopes, want string) bool {
	return slices.Contains(strings.Split(scopes, ","), want)
}

// userFieldList answers user.userfield.list: the portal's UF_USR_* fields,
// the labels as strings in the language filter LANG names, else per
// language.
func (p *Portal) userFieldList(params map[string]any) (*restOK, *restErr) {
	q := upperKeys(params)
	filter, _ := q["FILTER"].(map[string]any)
	lang := str(upperKeys(filter)["LANG"])
	yn := func(b bool) string {
		if b {
			return "Y"
		}
		return "N"
	}
	return page(len(p.userFields), func(i int) map[string]any {
		f := p.userFields[i]
		row := map[string]any{"ID": strconv.FormatInt(f.ID, 10), "ENTITY_ID": "USER", "FIELD_NAME": f.FieldName,
			"USER_TYPE_ID": f.Type, "XML_ID": nil, "SORT": "100", "MULTIPLE": yn(f.Multiple), "MANDATORY": yn(f.Mandatory),
			"SHOW_FILTER": "N", "SHOW_IN_LIST": "Y", "EDIT_IN_LIST": "Y", "IS_SEARCHABLE": "N", "SETTINGS": map[string]any{}}
		for _, k := range []string{"EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "LIST_FILTER_LABEL"} {
			if lang != "" {
				row[k] = f.Label
			} else {
				row[k] = map[string]any{"en": f.Label, "ru": f.Label}
			}
		}
		return row
	}, params, true)
}

func (p *Portal) userGet(callerID int64, params map[string]any, ufScope bool) (*restOK, *restErr) {
	q := upperKeys(params)
	sel := selected(q["SELECT"])
	sortBy, order := strings.ToUpper(str(q["SORT"])), strings.ToUpper(str(q["ORDER"]))
	if sortBy == "" || order == "" { // both are needed, else ID ASC
		sortBy, order = "ID", "ASC"
	}
	adminMode := truthyPHP(q["ADMIN_MODE"])
	filter := withoutControl(q)
	if f, ok := q["FILTER"].(map[string]any); ok {
		filter = upperKeys(f)
	}
	caller := p.users[callerID]
	terms := parseFilter(filter)
	// Without ADMIN_MODE an intranet caller sees only users with a department
	// (extranet group membership is not simulated).
	seesExtranet := adminMode && caller != nil && caller.Admin
	visible := func(u *User) bool { return (!u.Extranet || seesExtranet) && userMatches(u, terms) }
	var us []*User
	if sortBy == "ID" || (sortBy != "NAME" && sortBy != "LAST_NAME" && sortBy != "EMAIL") {
		// Walk IDs in order; start=-1 needs no count, so stop after one page.
		ids := p.sortedUserIDs()
		quick := num(params["start"]) < 0 || num(params["START"]) < 0
		for i := range ids {
			if order == "DESC" {
				i = len(ids) - 1 - i
			}
			if u := p.users[ids[i]]; visible(u) {
				us = append(us, u)
				if quick && len(us) == pageSize {
					break
				}
			}
		}
		return page(len(us), func(i int) map[string]any { return p.withUF(userRow(us[i]), us[i], sel, ufScope) }, params, true)
	}
	for _, u := range p.users {
		if visible(u) {
			us = append(us, u)
		}
	}
	key := func(u *User) string {
		switch sortBy {
		case "NAME":
			return u.Name
		case "LAST_NAME":
			return u.LastName
		}
		return u.Email
	}
	sort.Slice(us, func(i, j int) bool {
		a, b := us[i], us[j]
		less := a.ID < b.ID
		if ka, kb := key(a), key(b); ka != kb {
			less = ka < kb
		}
		if order == "DESC" {
			return !less
		}
		return less
	})
	return page(len(us), func(i int) map[string]any { return p.withUF(userRow(us[i]), us[i], sel, ufScope) }, params, true)
}

// birthday renders a YYYY-MM-DD birthday as user.get does: an ISO date.
func birthday(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return ""
	}
	return t.Format(isoOffset)
}

// userRow renders a user as user.get does with scope user_basic: ACTIVE is a
// boolean, IDs strings, UF_DEPARTMENT numbers, null fields left out.
func userRow(u *User) map[string]any {
	row := map[string]any{
		"ID": strconv.FormatInt(u.ID, 10), "ACTIVE": u.Active, "NAME": u.Name, "LAST_NAME": u.LastName,
		"TITLE": "", "PERSONAL_PHONE": "", "WORK_POSITION": u.WorkPosition, "IS_ONLINE": "N", "TIME_ZONE": "",
		"DATE_REGISTER": u.DateRegister.UTC().Format(isoOffset), "PERSONAL_BIRTHDAY": birthday(u.Birthday),
		"UF_EMPLOYMENT_DATE": "", "WORK_PHONE": u.WorkPhone,
	}
	switch {
	case u.SecondName != "":
		row["SECOND_NAME"] = u.SecondName
	case u.ID%2 == 1:
		row["SECOND_NAME"] = "" // an empty middle name comes as "" or (null) not at all
	}
	switch {
	case u.Email != "":
		row["EMAIL"] = u.Email
	case u.ID%2 == 0:
		row["EMAIL"] = "" // a missing e-mail comes both ways
	}
	if u.PersonalMobile != "" {
		row["PERSONAL_MOBILE"] = u.PersonalMobile
	}
	if u.PersonalCity != "" {
		row["PERSONAL_CITY"] = u.PersonalCity
	}
	if u.Extranet {
		row["USER_TYPE"] = "extranet"
		if u.ID%2 == 0 { // the empty shape is UNCONFIRMED: send both
			row["UF_DEPARTMENT"] = []int64{}
		}
	} else {
		row["USER_TYPE"] = "employee"
		row["UF_DEPARTMENT"] = append([]int64{}, u.Departments...)
	}
	return row
}

// selected lists user.get's select (nil: none given).
func selected(v any) []string {
	list := listOf(v)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, strings.ToUpper(str(x)))
	}
	return out
}

// withUF adds the portal's own UF fields the select names (or "UF_*"
// asks for) to row; without the user.userfield scope they are skipped, as
// unknown select entries are.
func (p *Portal) withUF(row map[string]any, u *User, sel []string, ufScope bool) map[string]any {
	if !ufScope || len(sel) == 0 {
		return row
	}
	for _, f := range p.userFields {
		if !slices.Contains(sel, f.FieldName) && !slices.Contains(sel, "UF_*") {
			continue
		}
		v, ok := u.UF[f.FieldName]
		switch {
		case !ok || v == nil:
			continue // null values are left out
		case f.Type == "date" || f.Type == "datetime":
			if d, err := time.Parse(time.DateOnly, str(v)); err == nil {
				v = d.Format(isoOffset)
			}
		}
		row[f.FieldName] = v
	}
	return row
}

func userMatches(u *User, terms []term) bool {
	for _, t := range terms {
		op, field, v := t.op, t.field, t.v
		switch field {
		case "ACTIVE": // implicit "=", PHP truthiness (docs/bitrix24-api.md, "user.get filters")
			if u.Active != truthyPHP(v) {
				return false
			}
			continue
		}
		if isEmpty(v) {
			continue // Bitrix24 skips empty filter values
		}
		switch field {
		case "ID":
			if !cmpInt(op, u.ID, v) {
				return false
			}
		case "USER_TYPE":
			t := "employee"
			if u.Extranet {
				t = "extranet"
			}
			if !strings.EqualFold(t, str(v)) {
				return false
			}
		case "UF_DEPARTMENT":
			hit := false
			for _, want := range listOf(v) {
				if slices.Contains(u.Departments, num(want)) {
					hit = true
				}
			}
			if hit == (op == "!") {
				return false
			}
		case "EMAIL", "NAME", "LAST_NAME":
			have := map[string]string{"EMAIL": u.Email, "NAME": u.Name, "LAST_NAME": u.LastName}[field]
			if op == "%" {
				if !strings.Contains(strings.ToLower(have), strings.ToLower(str(v))) {
					return false
				}
			} else if !strings.EqualFold(have, str(v)) {
				return false
			}
		}
	}
	return true
}

var opRe = regexp.MustCompile(`^(>=|<=|!=|!@|>|<|@|=|!|%)?(.*)$`)

func splitOp(k string) (string, string) {
	m := opRe.FindStringSubmatch(k)
	return m[1], m[2]
}

func cmpInt(op string, have int64, v any) bool {
	if op == "@" || op == "!@" || isList(v) {
		in := false
		for _, x := range listOf(v) {
			if num(x) == have {
				in = true
			}
		}
		return in != (op == "!@" || op == "!")
	}
	want := num(v)
	switch op {
	case ">":
		return have > want
	case ">=":
		return have >= want
	case "<":
		return have < want
	case "<=":
		return have <= want
	case "!", "!=":
		return have != want
	}
	return have == want
}

func isList(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// truthyPHP is `value && value !== 'N'`: "false" is true, "0" and "" are false.
func truthyPHP(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		f, _ := x.Float64()
		return f != 0
	case float64:
		return x != 0
	case string:
		return x != "" && x != "0" && x != "N"
	case nil:
		return false
	}
	return true
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "1"
		}
		return ""
	}
	return ""
}

func num(v any) int64 {
	s := strings.TrimSpace(str(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int64(f)
	}
	return 0
}

// --- batch ---------------------------------------------------------------

var refRe = regexp.MustCompile(`\$result\[([^\]]*)\]((?:\[[^\]]*\])*)`)

// batch runs up to 50 commands in body order, substituting $result[key][…]
// references with earlier results; an unresolved reference becomes "" (s.mu held).
func (s *Sim) batch(p *Portal, userID int64, webhook bool, params map[string]any) (*restOK, *restErr) {
	p.commands["batch"]++
	cmdTree, ok := params["cmd"]
	if !ok {
		return nil, &restErr{http.StatusBadRequest, "ERROR_BATCH_EMPTY", "Empty batch"}
	}
	keys, cmds := orderedCmds(cmdTree, params[cmdOrderKey])
	if len(keys) > maxBatch {
		return nil, &restErr{http.StatusBadRequest, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"}
	}
	halt := truthyPHP(params["halt"])
	results := map[string]any{} // for $result[…] references
	var res, errs, totals, nexts, times phpArray
	for _, k := range keys {
		method, query, _ := strings.Cut(cmds[k], "?")
		method = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(method)), ".json")
		sub, _, err := phpForm(query)
		if err != nil {
			errs.set(k, errBody("INVALID_REQUEST", "Bad command query"))
			continue
		}
		substitute(sub, results)
		var ok *restOK
		var e *restErr
		if method == "batch" {
			e = &restErr{http.StatusMethodNotAllowed, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"}
		} else {
			ok, e = s.execTimed(p, userID, webhook, method, sub)
		}
		if e != nil {
			errs.set(k, errBody(e.code, e.desc))
			if halt {
				break
			}
			continue
		}
		results[k] = ok.result
		res.set(k, ok.result)
		if ok.total != nil {
			totals.set(k, *ok.total)
		}
		if ok.next != nil {
			nexts.set(k, *ok.next)
		}
		times.set(k, s.methodTime(p, method))
	}
	return &restOK{result: map[string]any{
		"result": &res, "result_error": &errs, "result_total": &totals, "result_next": &nexts, "result_time": &times,
	}}, nil
}

// orderedCmds returns the batch commands and the order to run them in: a
// list in index order, an object in body order (order), keys missing from
// order after them.
func orderedCmds(tree, order any) ([]string, map[string]string) {
	cmds := map[string]string{}
	var keys []string
	switch t := tree.(type) {
	case map[string]any:
		for k, v := range t {
			cmds[k] = str(v)
		}
	case []any:
		for i, v := range t {
			k := strconv.Itoa(i)
			cmds[k] = str(v)
			keys = append(keys, k)
		}
		return keys, cmds
	}
	seen := map[string]bool{}
	if o, ok := order.([]string); ok {
		for _, k := range o {
			if _, ok := cmds[k]; ok && !seen[k] {
				keys = append(keys, k)
				seen[k] = true
			}
		}
	}
	var rest []string
	for k := range cmds {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...), cmds
}

func substitute(m map[string]any, results map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if strings.Contains(x, "$result[") {
				m[k] = refRe.ReplaceAllStringFunc(x, func(ref string) string {
					sm := refRe.FindStringSubmatch(ref)
					cur, ok := results[sm[1]]
					if !ok {
						return ""
					}
					for _, seg := range splitSegs(sm[2]) {
						cur = index(cur, seg)
					}
					return str(cur) // a scalar as text, anything else ""
				})
			}
		case map[string]any:
			substitute(x, results)
		}
	}
}

func splitSegs(s string) []string {
	var out []string
	for _, part := range strings.Split(s, "]") {
		if strings.HasPrefix(part, "[") {
			out = append(out, part[1:])
		}
	}
	return out
}

func index(v any, seg string) any {
	switch x := v.(type) {
	case map[string]any:
		return x[seg]
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(x) {
			return nil
		}
		return x[i]
	}
	return nil
}

// withoutControl drops the keys that steer a list call from the top-level filter.
func withoutControl(q map[string]any) map[string]any {
	out := make(map[string]any, len(q))
	for k, v := range q {
		switch k {
		case "SORT", "ORDER", "START", "AUTH", "ACCESS_TOKEN", "ADMIN_MODE", "SELECT", "FILTER", "IMAGE_RESIZE":
		default:
			out[k] = v
		}
	}
	return out
}

// sortedUserIDs returns user IDs ascending, cached until users are added (s.mu held).
func (p *Portal) sortedUserIDs() []int64 {
	if len(p.userIDs) != len(p.users) {
		p.userIDs = p.userIDs[:0]
		for id := range p.users {
			p.userIDs = append(p.userIDs, id)
		}
		slices.Sort(p.userIDs)
	}
	return p.userIDs
}

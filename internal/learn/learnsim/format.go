package learnsim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const maxBody = 16 << 20

// readBody parses a JSON or XML request body into a generic value: JSON as
// decoded (numbers as json.Number), XML as nested maps where a text-only element
// is a string and repeated elements become a []any. The root <request> is dropped.
func readBody(r *http.Request) (map[string]any, *apiErr) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errf(400, "Cannot read the request body")
	}
	if len(data) > maxBody {
		return nil, errf(413, "Request body too large")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return map[string]any{}, nil
	}
	ct := r.Header.Get("Content-Type")
	isXML := strings.Contains(ct, "xml") || (!strings.Contains(ct, "json") && data[0] == '<')
	if isXML {
		v, err := parseXML(data)
		if err != nil {
			return nil, errf(400, "Malformed XML: %v", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return map[string]any{}, nil
		}
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, errf(400, "Malformed JSON: %v", err)
	}
	return m, nil
}

func parseXML(data []byte) (any, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return xmlElement(dec, se)
		}
	}
}

// xmlElement reads the element started by se up to its end.
func xmlElement(dec *xml.Decoder, se xml.StartElement) (any, error) {
	var text strings.Builder
	var children map[string]any
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.StartElement:
			v, err := xmlElement(dec, t)
			if err != nil {
				return nil, err
			}
			if children == nil {
				children = map[string]any{}
			}
			name := t.Name.Local
			switch prev := children[name].(type) {
			case nil:
				children[name] = v
			case []any:
				children[name] = append(prev, v)
			default:
				children[name] = []any{prev, v}
			}
		case xml.EndElement:
			if children != nil {
				return children, nil
			}
			return strings.TrimSpace(text.String()), nil
		}
	}
}

// --- typed access to generic bodies ---

func getStr(m map[string]any, key string) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	case map[string]any:
		if len(t) == 0 {
			return "", true // <code/> parses as an empty element
		}
	}
	return fmt.Sprint(v), true
}

func getInt(m map[string]any, key string) (int, bool) {
	s, ok := getStr(m, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

// getStrs reads a list of IDs: a JSON array, one string, or an XML wrapper
// element whose children (any name) hold the values.
func getStrs(m map[string]any, key string) []string {
	return flatStrs(m[key])
}

func flatStrs(v any) []string {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		if t == "" {
			return nil
		}
		return []string{t}
	case []any:
		var out []string
		for _, e := range t {
			out = append(out, flatStrs(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range t {
			out = append(out, flatStrs(e)...)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// getFields reads a user's fields in any form seen in the wild: an object with
// lowercase keys, a list of {name, value}, or the XML <fields><field><name/><value/></field></fields>.
// Names are lowercased.
func getFields(m map[string]any, key string) (map[string]string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, false
	}
	out := map[string]string{}
	var fromList func(any)
	fromList = func(e any) {
		switch t := e.(type) {
		case []any:
			for _, x := range t {
				fromList(x)
			}
		case map[string]any:
			name, _ := getStr(t, "name")
			val, _ := getStr(t, "value")
			if name != "" {
				out[strings.ToLower(name)] = val
			}
		}
	}
	switch t := v.(type) {
	case []any:
		fromList(t)
	case map[string]any:
		if f, ok := t["field"]; ok && len(t) == 1 {
			fromList(f)
			break
		}
		for k := range t {
			s, _ := getStr(t, k)
			out[strings.ToLower(k)] = s
		}
	}
	return out, true
}

func getSub(m map[string]any, key string) (*sub, *apiErr) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, errf(400, "Parameter %s must be an object", key)
	}
	t, _ := getStr(o, "subordinationType")
	id, _ := getStr(o, "supervisorId")
	return &sub{Type: t, SupervisorID: id}, nil
}

// --- responses ---

// wantsJSON: an Accept naming JSON or XML is obeyed; without one the answer is
// XML, or JSON under Unsettled.JSONByDefault (which Learn does is unsettled).
func wantsJSON(r *http.Request) bool {
	acc := strings.ToLower(r.Header.Get("Accept"))
	switch {
	case strings.Contains(acc, "json"):
		return true
	case strings.Contains(acc, "xml"):
		return false
	}
	return unsettledFrom(r).JSONByDefault
}

// write sends v as JSON, or xmlV (which must marshal to a <response> root) as XML.
func write(w http.ResponseWriter, r *http.Request, status int, v, xmlV any) {
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(xmlV)
}

type xmlError struct {
	XMLName xml.Name `xml:"response"`
	Code    int      `xml:"code"`
	Message string   `xml:"message"`
}

func writeErr(w http.ResponseWriter, r *http.Request, e *apiErr) {
	msg := e.msg
	if unsettledFrom(r).TerseErrors {
		msg = http.StatusText(e.status)
	}
	if unsettledFrom(r).XMLErrors {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "application/xml")
	}
	write(w, r, e.status, map[string]any{"code": e.status, "message": msg}, xmlError{Code: e.status, Message: msg})
}

// xmlResponse is an XML answer: v inside the <response> root, each object
// named by its XMLName.
type xmlResponse[T any] struct {
	XMLName xml.Name `xml:"response"`
	V       T
}

func response[T any](v T) xmlResponse[T] { return xmlResponse[T]{V: v} }

// xmlPage is a page of a listing in XML: the items, then the next page's token.
type xmlPage[T any] struct {
	XMLName       xml.Name `xml:"response"`
	Items         xmlItems[T]
	NextPageToken tokenOut `xml:"nextPageToken"`
}

// xmlItems are a page's items inside an element named by XMLName.
type xmlItems[T any] struct {
	XMLName xml.Name
	Items   []T
}

type xmlID struct {
	XMLName xml.Name `xml:"response"`
	ID      string   `xml:",chardata"`
}

func writeCreated(w http.ResponseWriter, r *http.Request, id string) {
	write(w, r, http.StatusCreated, id, xmlID{ID: id})
}

// --- wire shapes ---

type subOut struct {
	Type         string `json:"subordinationType" xml:"subordinationType"`
	SupervisorID string `json:"supervisorId,omitempty" xml:"supervisorId,omitempty"`
}

func outSub(s sub) subOut { return subOut{Type: s.Type, SupervisorID: s.SupervisorID} }

type deptOut struct {
	XMLName  xml.Name  `json:"-" xml:"department"`
	ID       string    `json:"departmentId" xml:"departmentId"`
	Name     string    `json:"name" xml:"name"`
	ParentID parentOut `json:"parentDepartmentId,omitzero" xml:"parentDepartmentId"`
	Code     string    `json:"code,omitempty" xml:"code,omitempty"`
	Sub      *subOut   `json:"subordination,omitempty" xml:"subordination"`
	CoSub    *subOut   `json:"coSubordination,omitempty" xml:"coSubordination"`
}

func (a *account) outDept(r *http.Request, d *dept) deptOut {
	return deptOut{ID: d.ID, Name: d.Name, ParentID: a.parentOf(r, d), Code: d.Code,
		Sub: a.linkOf(r, d, d.Sub), CoSub: a.linkOf(r, d, d.CoSub)}
}

type fieldOut struct {
	Name  string `json:"name" xml:"name"`
	Value string `json:"value" xml:"value"`
}

type userOut struct {
	XMLName       xml.Name   `json:"-" xml:"userProfile"`
	ID            string     `json:"userId" xml:"userId"`
	Role          optText    `json:"role,omitzero" xml:"role"`
	RoleID        optText    `json:"roleId,omitzero" xml:"roleId"`
	DeptID        string     `json:"departmentId" xml:"departmentId"`
	Status        int        `json:"status" xml:"status"`
	Fields        []fieldOut `json:"fields" xml:"fields>field"`
	AddedDate     string     `json:"addedDate" xml:"addedDate"`
	LastLoginDate string     `json:"lastLoginDate" xml:"lastLoginDate"`
	UserRoles     []roleOut  `json:"userRoles,omitzero" xml:"-"` // nil only under NoRoleReads
	// In XML userRoles is left out while empty, as the samples show a learner.
	UserRolesXML *xmlRoles `json:"-" xml:"userRoles,omitempty"`
	// The user's managed departments, a list of IDs (the OAS's ArrayOfIds),
	// left out for a user who manages none, as the samples show a learner.
	Manages    []string `json:"manageableDepartmentIds,omitempty" xml:"-"`
	ManagesXML *xmlIDs  `json:"-" xml:"manageableDepartmentIds,omitempty"`
	Sub        subOut   `json:"subordination" xml:"subordination"`
	CoSub      subOut   `json:"coSubordination" xml:"coSubordination"`
}

// xmlRoles is userRoles in XML: one <userRole> element each.
type xmlRoles struct {
	Roles []roleOut `xml:"userRole"`
}

// roleOut is one of a user's userRoles.
type roleOut struct {
	RoleID     string   `json:"roleId" xml:"roleId"`
	RoleType   string   `json:"roleType" xml:"roleType"`
	Manageable []string `json:"manageableDepartmentIds" xml:"manageableDepartmentIds>id"`
}

// outUser renders the read side of the field quirk: UPPERCASE {name, value} pairs
// in the account's field order. v1 reads report status 5 as 3. Where a role
// other than learner shows depends on un.UserRoles, and the Supervisor role
// of one who supervises the departments sup on un.SupervisorRole.
func (a *account) outUser(u *user, v2 bool, un Unsettled, sup []string) userOut {
	st := u.Status
	if st == 5 && !v2 {
		st = 3
	}
	o := userOut{ID: u.ID, Role: text(u.Role), RoleID: text(roleID(u.Role)), DeptID: u.DeptID, Status: st,
		AddedDate: un.readDate(u.Added), UserRoles: []roleOut{},
		Sub: outSub(u.Sub), CoSub: outSub(u.CoSub), Fields: make([]fieldOut, 0, len(u.Fields))}
	for _, def := range a.fields {
		if v, ok := u.Fields[def.Name]; ok {
			o.Fields = append(o.Fields, fieldOut{Name: strings.ToUpper(def.Name), Value: v})
		}
	}
	if un.UserRoles == UserRolesSecond && u.Role != "learner" && u.Role != "learners" {
		o.Role, o.RoleID = text("learner"), text(roleID("learner"))
		o.UserRoles = []roleOut{{RoleID: o.RoleID.S, RoleType: "learner", Manageable: []string{}},
			{RoleID: roleID(u.Role), RoleType: u.Role, Manageable: append([]string{}, u.Manages...)}}
	} else if len(u.Manages) > 0 {
		o.Manages = slices.Clone(u.Manages)
	}
	if len(sup) > 0 {
		switch un.SupervisorRole {
		case SupervisorRoleInRole:
			if u.Role == "learner" || u.Role == "learners" {
				o.Role, o.RoleID = text("supervisor"), text(roleID("supervisor"))
				o.Manages = slices.Clone(sup)
			}
		case SupervisorRoleListed, SupervisorRoleScoped:
			if len(o.UserRoles) == 0 {
				o.UserRoles = []roleOut{{RoleID: o.RoleID.S, RoleType: o.Role.S, Manageable: slices.Clone(o.Manages)}}
			}
			r := roleOut{RoleID: roleID("supervisor"), RoleType: "supervisor", Manageable: []string{}}
			if un.SupervisorRole == SupervisorRoleScoped {
				r.Manageable = slices.Clone(sup)
			}
			o.UserRoles = append(o.UserRoles, r)
		}
	}
	o.Role.S = un.roleName(o.Role.S)
	for i := range o.UserRoles {
		o.UserRoles[i].RoleType = un.roleName(o.UserRoles[i].RoleType)
	}
	if un.HidesRoles() {
		o.Role, o.RoleID = optText{Absent: un.NoRoleReads}, optText{Absent: un.NoRoleReads}
		o.UserRoles, o.Manages = []roleOut{}, nil
		if un.NoRoleReads {
			o.UserRoles = nil
		}
	}
	if len(o.UserRoles) > 0 {
		o.UserRolesXML = &xmlRoles{Roles: o.UserRoles}
	}
	if len(o.Manages) > 0 {
		o.ManagesXML = &xmlIDs{IDs: o.Manages}
	}
	return o
}

// optText is a string on the wire that NoRoleReads may leave out.
type optText struct {
	S      string
	Absent bool
}

func text(s string) optText { return optText{S: s} }

func (t optText) IsZero() bool { return t.Absent }

func (t optText) MarshalJSON() ([]byte, error) { return json.Marshal(t.S) }

func (t optText) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if t.Absent {
		return nil
	}
	return e.EncodeElement(t.S, start)
}

// supervised maps each user a department's manual link names to those
// departments, in creation order; nil when un shows no Supervisor role.
func (a *account) supervised(un Unsettled) map[string][]string {
	if un.SupervisorRole == SupervisorRoleHidden {
		return nil
	}
	m := map[string][]string{}
	for _, id := range a.deptOrder {
		d := a.depts[id]
		if d == nil {
			continue // a deleted department's tombstone
		}
		for _, s := range []sub{d.Sub, d.CoSub} {
			if s.Type == "manual" && s.SupervisorID != "" && !slices.Contains(m[s.SupervisorID], id) {
				m[s.SupervisorID] = append(m[s.SupervisorID], id)
			}
		}
	}
	return m
}

// xmlIDs is an ArrayOfIds in XML: one <id> element each.
type xmlIDs struct {
	IDs []string `xml:"id"`
}

// outUsers renders the users ids names, in that order.
func (a *account) outUsers(ids []string, v2 bool, un Unsettled) []userOut {
	out := make([]userOut, 0, len(ids))
	sup := a.supervised(un)
	for _, id := range ids {
		out = append(out, a.outUser(a.users[id], v2, un, sup[id]))
	}
	return out
}

// roleID gives each role a fixed made-up ID.
func roleID(role string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(role); i++ {
		h = (h ^ uint32(role[i])) * 16777619
	}
	return fmt.Sprintf("%08x-0000-11e9-8000-000000000000", h)
}

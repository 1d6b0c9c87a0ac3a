package learn

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Subordination types of a department's or user's supervisor (subordination) and
// functional manager (coSubordination).
const (
	SubordinationManual       = "manual"        // SupervisorID holds a user ID
	SubordinationInherit      = "inherit"       // taken from the parent department
	SubordinationNoSupervisor = "no_supervisor" // nobody
)

// Subordination is the {subordinationType, supervisorId} pair Learn uses for both
// the supervisor and the functional manager.
type Subordination struct {
	Type         string `json:"subordinationType" xml:"subordinationType"`
	SupervisorID string `json:"supervisorId,omitempty" xml:"supervisorId,omitempty"`
}

// Manual returns a manual subordination pointing at supervisorID.
func Manual(supervisorID string) *Subordination {
	return &Subordination{Type: SubordinationManual, SupervisorID: supervisorID}
}

// Equal reports whether two subordinations mean the same; nil equals nil only.
func (s *Subordination) Equal(o *Subordination) bool {
	if s == nil || o == nil {
		return s == o
	}
	if s.Type != o.Type {
		return false
	}
	return s.Type != SubordinationManual || s.SupervisorID == o.SupervisorID
}

// Department is a Learn department as read back from the API.
type Department struct {
	ID              string         `json:"departmentId" xml:"departmentId"`
	Name            string         `json:"name" xml:"name"`
	ParentID        string         `json:"parentDepartmentId,omitempty" xml:"parentDepartmentId"` // empty on the account root
	Code            string         `json:"code,omitempty" xml:"code"`
	Subordination   *Subordination `json:"subordination,omitempty" xml:"subordination"`
	CoSubordination *Subordination `json:"coSubordination,omitempty" xml:"coSubordination"`
}

// nilUUID stands for "no ID" in some answers.
const nilUUID = "00000000-0000-0000-0000-000000000000"

// normalize makes the root's parent empty however Learn renders it: absent,
// null, "", the nil UUID or the root's own ID (docs/learn-api.md, "Unsettled
// behaviour").
func (d *Department) normalize() {
	d.ParentID = strings.TrimSpace(d.ParentID)
	if d.ParentID == nilUUID || d.ParentID == d.ID {
		d.ParentID = ""
	}
}

// departmentWire is Department without its decoders, so decoding it is the
// standard one.
type departmentWire Department

func (p departmentWire) department() Department {
	d := Department(p)
	d.normalize()
	return d
}

// UnmarshalJSON reads a department and normalises the root's parent.
func (d *Department) UnmarshalJSON(b []byte) error { return fromJSON(b, d, departmentWire.department) }

// UnmarshalXML reads a <department> element and normalises the root's parent.
func (d *Department) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	return fromXML(dec, start, d, departmentWire.department)
}

// fromJSON decodes b as the wire shape W and stores what conv makes of it in dst.
func fromJSON[W, T any](b []byte, dst *T, conv func(W) T) error {
	var w W
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*dst = conv(w)
	return nil
}

// fromXML is fromJSON for the element started by start.
func fromXML[W, T any](dec *xml.Decoder, start xml.StartElement, dst *T, conv func(W) T) error {
	var w W
	if err := dec.DecodeElement(&w, &start); err != nil {
		return err
	}
	*dst = conv(w)
	return nil
}

// NewDepartment is the body of a department create. ParentID is required by Learn.
// Code is the stable external key (the syncer uses it to find a department again
// after a lost answer, see CreateDepartment).
type NewDepartment struct {
	Name     string `json:"name"`
	ParentID string `json:"parentDepartmentId"`
	Code     string `json:"code,omitempty"`
}

// DepartmentUpdate changes a department; empty strings leave the value unchanged.
// A new ParentID moves the department.
type DepartmentUpdate struct {
	Name     string `json:"name,omitempty"`
	ParentID string `json:"parentDepartmentId,omitempty"`
	Code     string `json:"code,omitempty"`
}

// User statuses.
const (
	StatusActive     = 1
	StatusInactive   = 3
	StatusTerminated = 5 // "employment ended"; only the v2 reads report it (v1 says 3)
)

// Profile field names as written (lowercase). Reads are normalised to the same names.
const (
	FieldLogin     = "login"
	FieldEmail     = "email"
	FieldFirstName = "first_name"
	FieldLastName  = "last_name"
	FieldJobTitle  = "job_title"
	FieldPhone     = "phone"
	FieldCountry   = "country"
)

// Fields are a user's profile fields keyed by lowercase name ("login", "email",
// "first_name", "user_defined_field1", ...). Learn writes them as an object with
// lowercase keys and reads them back as a list of {name, value} with UPPERCASE names;
// UnmarshalJSON accepts both and lowercases the names.
type Fields map[string]string

// UnmarshalJSON reads either [{"name":"EMAIL","value":"..."}] or {"email":"..."}.
func (f *Fields) UnmarshalJSON(b []byte) error {
	out := Fields{}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
	case b[0] == '[':
		var list []struct {
			Name  string          `json:"name"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("fields list: %w", err)
		}
		for _, e := range list {
			out[strings.ToLower(e.Name)] = scalarString(e.Value)
		}
	case b[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("fields object: %w", err)
		}
		for k, v := range obj {
			out[strings.ToLower(k)] = scalarString(v)
		}
	default:
		return fmt.Errorf("fields: unexpected %.20q", b)
	}
	*f = out
	return nil
}

// UnmarshalXML reads the read form <fields><field><name>EMAIL</name><value>…</value></field>…</fields>
// and the write form <fields><email>…</email>…</fields>; names are lowercased.
func (f *Fields) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	out := Fields{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("fields: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "field" {
				var e struct {
					Name  string `xml:"name"`
					Value string `xml:"value"`
				}
				if err := dec.DecodeElement(&e, &t); err != nil {
					return fmt.Errorf("fields: %w", err)
				}
				out[strings.ToLower(strings.TrimSpace(e.Name))] = e.Value
				continue
			}
			var v string
			if err := dec.DecodeElement(&v, &t); err != nil {
				return fmt.Errorf("fields: %w", err)
			}
			out[strings.ToLower(t.Name.Local)] = v
		case xml.EndElement:
			*f = out
			return nil
		}
	}
}

// scalarString renders a JSON scalar as text ("" for null, objects kept raw).
func scalarString(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// flexInt accepts 1 and "1".
type flexInt int

func (n *flexInt) UnmarshalJSON(b []byte) error { return n.UnmarshalText(b) }

// UnmarshalText reads the XML element text (and the JSON forms, quotes trimmed).
func (n *flexInt) UnmarshalText(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("integer: %w", err)
	}
	*n = flexInt(v)
	return nil
}

// User is a Learn user as read back from the API (v2 reads, so Status can be 5).
type User struct {
	ID           string
	DepartmentID string
	Status       int
	Role         string
	// RoleTypes are the roleType of each of userRoles: Learn lets a user
	// hold a second role beside learner, which role may not show.
	RoleTypes []string
	// Manageable are the departments the user administers
	// (manageableDepartmentIds, also inside userRoles).
	Manageable      []string
	Fields          Fields // lowercase names
	Subordination   *Subordination
	CoSubordination *Subordination
	AddedDate       string
}

// Login returns the login field.
func (u User) Login() string { return u.Fields[FieldLogin] }

// Email returns the email field.
func (u User) Email() string { return u.Fields[FieldEmail] }

// Administers says whether the user has rights over other users or the
// account: a role beyond a learner's or a supervisor's, in role or in any of
// userRoles, or departments to manage. Learn's two published role lists
// differ (docs/learn-api.md, "Roles"), so a role in neither list counts as
// one that administers; no role read is a learner's.
func (u User) Administers() bool {
	if len(u.Manageable) > 0 || administers(u.Role) {
		return true
	}
	return slices.ContainsFunc(u.RoleTypes, administers)
}

// Limited says whether the user's role is known to reach only part of the
// account: departments to manage, or a department administrator's, a custom
// role's or an author's role named in role or in any of userRoles (Learn's
// two role lists spell them differently). Such credentials may show their
// top department with no parent, which the sync must not take for the
// account's root (docs/learn-api.md, "Whose credentials"). A role this
// client does not know, or none, is not taken as limited: Learn does not
// document how it shows the owner, and refusing the owner would stop every
// sync of the account.
func (u User) Limited() bool {
	return len(u.Manageable) > 0 || limitedRole(u.Role) || slices.ContainsFunc(u.RoleTypes, limitedRole)
}

// OnlySupervises says whether the user's only right beyond a learner's is
// the Supervisor role Learn gives a department's manager: a read shows that
// role (in role or in userRoles) and, beside it, nothing but learner, and
// no departments to manage. Such a user is no account administrator, and
// whether Learn lets its credentials read the account is not settled
// (docs/learn-api.md, "Whose credentials"). A read whose role is empty or
// left out shows too little: the owner's profile may read so.
func (u User) OnlySupervises() bool {
	if strings.TrimSpace(u.Role) == "" || len(u.Manageable) > 0 || u.Administers() {
		return false
	}
	return supervisorRole(u.Role) || slices.ContainsFunc(u.RoleTypes, supervisorRole)
}

// RoleShown says whether the read shows the user's role at all: a role, a
// roleType in userRoles, or departments to manage. Learn may leave the role
// keys out of a read or send them empty, and then an account administrator,
// the owner too, reads like a learner: a client that must not take one over
// treats such a user as possibly one (docs/learn-api.md, "Roles").
func (u User) RoleShown() bool {
	return strings.TrimSpace(u.Role) != "" || len(u.RoleTypes) > 0 || len(u.Manageable) > 0
}

func limitedRole(role string) bool {
	switch strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToLower(strings.TrimSpace(role))) {
	case "department_administrator", "department_administrators", "custom",
		"publisher", "publishers", "course_author", "course_authors":
		return true
	}
	return false
}

// SignsInWith says whether name, the login or e-mail credentials carry,
// is the user's (Learn signs in with either; letter case aside).
func (u User) SignsInWith(name string) bool {
	name = strings.TrimSpace(name)
	return name != "" && (strings.EqualFold(strings.TrimSpace(u.Login()), name) || strings.EqualFold(strings.TrimSpace(u.Email()), name))
}

// supervisorRole says whether role is the Supervisor role, in either of
// Learn's role lists.
func supervisorRole(role string) bool {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "supervisor", "supervisors":
		return true
	}
	return false
}

func administers(role string) bool {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "", "learner", "learners", "supervisor", "supervisors":
		return false
	}
	return true
}

// userWire is a userProfile as Learn sends it, in JSON or XML.
type userWire struct {
	UserID          string         `json:"userId" xml:"userId"`
	DepartmentID    string         `json:"departmentId" xml:"departmentId"`
	Status          flexInt        `json:"status" xml:"status"`
	Role            string         `json:"role" xml:"role"`
	UserRoles       userRoles      `json:"userRoles" xml:"userRoles>userRole"`
	Manageable      idList         `json:"manageableDepartmentIds" xml:"manageableDepartmentIds"`
	Fields          Fields         `json:"fields" xml:"fields"`
	Subordination   *Subordination `json:"subordination" xml:"subordination"`
	CoSubordination *Subordination `json:"coSubordination" xml:"coSubordination"`
	AddedDate       string         `json:"addedDate" xml:"addedDate"`
}

func (raw userWire) user() User {
	u := User{
		ID: raw.UserID, DepartmentID: raw.DepartmentID, Status: int(raw.Status), Role: raw.Role,
		Fields: raw.Fields, Subordination: raw.Subordination, CoSubordination: raw.CoSubordination,
		AddedDate: raw.AddedDate,
	}
	// The Supervisor role Learn gives a department's manager is no right
	// over others: departments shown with it are the ones supervised, not
	// managed (docs/learn-api.md, "Roles").
	if !supervisorRole(raw.Role) {
		u.Manageable = slices.Clone(raw.Manageable)
	}
	for _, r := range raw.UserRoles {
		if r.RoleType != "" {
			u.RoleTypes = append(u.RoleTypes, r.RoleType)
		}
		if !supervisorRole(r.RoleType) {
			u.Manageable = append(u.Manageable, r.Manageable...)
		}
	}
	if u.Fields == nil {
		u.Fields = Fields{}
	}
	return u
}

// unreadable stands for a role or an ID list in a shape the client does not
// know: it counts as one that administers, so that an unknown shape can only
// make the sync more careful, never fail the listing.
const unreadable = "?"

// userRoles are a user's userRoles.
type userRoles []userRole

// userRole is one of a user's userRoles.
type userRole struct {
	RoleType   string `json:"roleType" xml:"roleType"`
	Manageable idList `json:"manageableDepartmentIds" xml:"manageableDepartmentIds"`
}

func (r *userRoles) UnmarshalJSON(b []byte) error {
	var list []userRole
	if err := json.Unmarshal(b, &list); err != nil {
		*r = userRoles{{RoleType: unreadable}}
		return nil
	}
	*r = list
	return nil
}

// idList is a list of IDs: a JSON array (or a comma-separated string), or
// in XML the text of the element or of its children, whatever their names
// (Learn's XML for lists of IDs is not documented). Empty IDs are dropped.
type idList []string

func (l *idList) UnmarshalJSON(b []byte) error {
	var list []string
	var one string
	switch {
	case json.Unmarshal(b, &list) == nil:
	case json.Unmarshal(b, &one) == nil:
		list = strings.Split(one, ",")
	default:
		list = []string{unreadable}
	}
	*l = nil
	for _, id := range list {
		if id = strings.TrimSpace(id); id != "" {
			*l = append(*l, id)
		}
	}
	return nil
}

func (l *idList) UnmarshalXML(dec *xml.Decoder, _ xml.StartElement) error {
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if id := strings.TrimSpace(string(t)); id != "" {
				*l = append(*l, id)
			}
		}
	}
	return nil
}

// UnmarshalJSON reads a userProfile object.
func (u *User) UnmarshalJSON(b []byte) error { return fromJSON(b, u, userWire.user) }

// UnmarshalXML reads a <userProfile> element.
func (u *User) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	return fromXML(dec, start, u, userWire.user)
}

// NewUser is the body of a user create. Fields must hold "login"; every field the
// account marks required (see ProfileFields) must be present too.
type NewUser struct {
	DepartmentID      string `json:"departmentId"`
	Fields            Fields `json:"fields"`
	Password          string `json:"password,omitempty"`
	Role              string `json:"role,omitempty"` // default learner
	SendLoginEmail    bool   `json:"sendLoginEmail"` // always sent: the default changed between doc versions
	InvitationMessage string `json:"invitationMessage,omitempty"`
}

// UserUpdate changes a user. Only the given fields change; an empty DepartmentID
// leaves the department. Learn's docs call login "required as part of fields" on
// update, so Fields must include the user's "login", even when only the
// department changes.
type UserUpdate struct {
	DepartmentID string `json:"departmentId,omitempty"`
	Fields       Fields `json:"fields,omitempty"`
}

// FieldInfo is one profile field definition of the account.
type FieldInfo struct {
	ID       string
	Name     string // lowercase, as written in Fields
	Label    string
	Type     string // login, email, first_name, last_name, job_title, string, country, phone, birthdate
	Unique   bool
	Required bool
	Order    int
}

// fieldInfoWire is a userFieldInfo as Learn sends it, in JSON or XML.
type fieldInfoWire struct {
	ID       string  `json:"userFieldInfoId" xml:"userFieldInfoId"`
	Name     string  `json:"name" xml:"name"`
	Label    string  `json:"label" xml:"label"`
	Type     string  `json:"type" xml:"type"`
	Unique   flexInt `json:"isUnique" xml:"isUnique"`
	Required flexInt `json:"isRequired" xml:"isRequired"`
	Order    flexInt `json:"orderPriority" xml:"orderPriority"`
}

func (raw fieldInfoWire) fieldInfo() FieldInfo {
	return FieldInfo{ID: raw.ID, Name: strings.ToLower(raw.Name), Label: raw.Label, Type: raw.Type,
		Unique: raw.Unique != 0, Required: raw.Required != 0, Order: int(raw.Order)}
}

// UnmarshalJSON reads a userFieldInfo object.
func (fi *FieldInfo) UnmarshalJSON(b []byte) error { return fromJSON(b, fi, fieldInfoWire.fieldInfo) }

// UnmarshalXML reads a <userFieldInfo> element.
func (fi *FieldInfo) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	return fromXML(dec, start, fi, fieldInfoWire.fieldInfo)
}

// UserFilter narrows a user list; empty slices mean no filter.
type UserFilter struct {
	DepartmentIDs []string
	Logins        []string
	Emails        []string
	UserIDs       []string
}

// Every behaviour the references leave unsettled, with its switch, is in this
// one file on purpose: a reader checks the list against docs/learn-api.md in
// one place, and splitting it by topic would hide a missing switch.

package learnsim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Unsettled picks one plausible answer for each Learn behaviour that no source
// settles (docs/learn-api.md, "Unsettled behaviour"). The zero value is the
// simulator's default guess; tests run the client against the other choices
// too, so the client must not depend on any of them.
type Unsettled struct {
	// BareSingleObject answers GET /department/{id} and GET /user/{id}[/v2] in
	// JSON with the bare object instead of {"response": {…}}.
	BareSingleObject bool
	// UserUpdate204 answers POST /user/{id} with 204 instead of 200.
	UserUpdate204 bool
	// RefuseEmptyUpdate answers 400 to a user update that sends an empty
	// value for an optional profile field; by default the empty value clears
	// the field. (Required fields are refused empty either way.)
	RefuseEmptyUpdate bool
	// RefusedDelete409 refuses a department delete (root, users, managed, subdepartments)
	// with 409 instead of 400.
	RefusedDelete409 bool
	// TerseErrors sends only the HTTP status text as an error's message.
	TerseErrors bool
	// JSONByDefault answers JSON to a request without an Accept header (the
	// default guess is XML).
	JSONByDefault bool
	// RootParent is how the root department shows its (missing) parent.
	RootParent RootParent
	// ReturnObject is what a create does with X-Return-Object.
	ReturnObject ReturnObject
	// DateFormat is the only form a date profile field (type birthdate)
	// takes; any other value is refused with 400.
	DateFormat DateFormat
	// SiblingNames is whether two departments under one parent may share a
	// name (letter case aside).
	SiblingNames Clash
	// Duplicate400 refuses a user create whose login or e-mail is taken
	// with 400 instead of 409.
	Duplicate400 bool
	// UpdateDuplicate409 refuses a user update whose login or e-mail
	// another user has with 409 instead of 400: Learn's legacy docs say
	// 400 ("must be unique"), and a create so refused is 409.
	UpdateDuplicate409 bool
	// PasswordRequired refuses a user create without a password with 400;
	// by default the user is created without one (Learn's invitation sets it).
	PasswordRequired bool
	// RootSubordination is what POST /department/{root}/subordination does
	// (no source says whether the root takes a manual link).
	RootSubordination RootSubordination
	// UserRoles is where a read shows a role beside learner.
	UserRoles UserRoles
	// SupervisorRole is how a read shows the Supervisor role Learn gives
	// a user named as a department's supervisor or functional manager
	// (docs/learn-api.md, "Roles"): no source shows it on the wire.
	SupervisorRole SupervisorRole
	// RootLinks is how the root department's links read while it has no
	// manager (no_supervisor): no source shows the root's own links.
	RootLinks RootLinks
	// LongValues is what a department name or a user's text field longer
	// than ValueLimit runes does: kept (the default), cut, or refused.
	LongValues LongValues
	// ValueLimit is the limit LongValues applies, in runes; 0 is
	// DefaultValueLimit.
	ValueLimit int
	// UpdateNeedsLogin refuses with 400 a user update without fields.login
	// even when it sends no profile field (only a departmentId): Learn's
	// docs call login "required (as part of fields)" on update, while the
	// OAS makes fields optional. By default only an update that sends
	// fields must carry the login.
	UpdateNeedsLogin bool
	// UnknownID400 refuses an unknown department or user in the path with
	// 400 instead of 404 where the OAS lists no 404 (every route on
	// /department/{id} and /user/{id}); the move routes, whose OAS lists
	// 404, keep it.
	UnknownID400 bool
	// UnknownRef404 refuses an unknown department a body names (a user
	// create's or update's departmentId, a department create's or
	// update's parentDepartmentId) with 404 instead of 400: the OAS lists
	// no 404 there, and no source says which Learn answers.
	UnknownRef404 bool
	// BulkUnknown is what a call on a list of users (POST
	// /department/{id}/user/move, /users/activate, /users/deactivate,
	// /users/terminate) does when the list names a user Learn does not
	// have (deleted meanwhile): the OAS lists 404 for the move only.
	BulkUnknown BulkUnknown
	// LastPage is how a token-paged listing marks its last page.
	LastPage LastPage
	// CodeFilter is how GET /department?code= matches codes.
	CodeFilter CodeFilter
	// UniqueCodes is whether a department code may be used twice.
	UniqueCodes Clash
	// Codes is what a department code Learn might not take does (no
	// source gives its limits: docs/learn-api.md, "Department codes").
	Codes Codes
	// CodeLimit is Codes' limit in runes; 0 is DefaultCodeLimit.
	CodeLimit int
	// MoveKey is which spelling of the ID list POST
	// /department/{id}/department/move reads.
	MoveKey MoveKey
	// ExactFilters makes the logins[] and emails[] filters of the user
	// lists match with letter case; by default they ignore it, as the
	// uniqueness of logins and e-mails does.
	ExactFilters bool
	// CaseSensitiveUnique holds logins and e-mails unique only as written:
	// a create with Ivan@Acme.ru beside ivan@acme.ru makes a second user.
	// By default letter case is ignored and such a create is refused as a
	// duplicate; no source says which Learn does (docs/learn-api.md,
	// "Unsettled behaviour").
	CaseSensitiveUnique bool
	// StrictRequests refuses with 400, naming the parameter, a request
	// that strays from the API description (docs/learn-api.md, "Request
	// parameters"): a query parameter, a body key or a key of a user's
	// fields it does not list for the route, a value of another type, a
	// body on a route that takes none, or a body without a Content-Type
	// the route lists. By default such requests are read as well as they
	// can be, and unknown keys ignored.
	StrictRequests bool
	// Throttle is how Learn says "too many requests": no source shows
	// iSpring answering one at all (docs/learn-api.md, "Write
	// concurrency"), so the form of the injected refusals (Faults, and a
	// CapacityLayer's Capacity.Throttle) is not known either.
	Throttle Throttle
	// MaxPageSize is the most objects a token-paged listing sends per page
	// whatever pageSize asks (0: 1000). Only the default, 1000, is
	// documented, not a maximum (docs/learn-api.md, "Answers, statuses
	// and paging").
	MaxPageSize int
	// LoginEmailByDefault e-mails a user created without sendLoginEmail
	// their sign-in details: the current docs make false the default, an
	// older version of the same page true.
	LoginEmailByDefault bool
	// LeaverLinks is what becomes of the manual links (a department's or a
	// user's subordination or coSubordination) that name a user who is
	// deactivated, whose employment ends, or who is deleted: only active
	// users may be assigned, and no source says what happens to a link
	// once its supervisor stops being one.
	LeaverLinks LeaverLinks
	// ScopedReads shows a department administrator's credentials (or a
	// custom role's, Sim.SetCaller) only the departments it manages, their
	// subdepartments and their users, and refuses a single read of any
	// other with 403; by default its reads show the whole account. The
	// docs limit its writes to its departments and say nothing of reads.
	ScopedReads bool
	// ScopedParent is how such a scoped listing shows the parent of the
	// top departments the caller manages, a department it does not show.
	ScopedParent ScopedParent
	// HeaderAuthRetired refuses header auth (X-Auth-Email /
	// X-Auth-Password) with 401 and Learn's error body: only a token from
	// an API key is taken. No date for retiring it is announced
	// (docs/learn-api.md, "Authentication").
	HeaderAuthRetired bool
	// TokenForm is how Authorization must carry a token: the docs' sample
	// says "Bearer <token>", many samples and clients send it bare.
	TokenForm TokenForm
	// KeyRefusal is how the token endpoint refuses an unknown Client ID or
	// Secret: its status and body shape.
	KeyRefusal KeyRefusal
	// NoRoleReads leaves every role key out of a user read (role, roleId,
	// userRoles, manageableDepartmentIds): no sample shows an
	// administrator's or the owner's profile (docs/learn-api.md, "Roles").
	NoRoleReads bool
	// EmptyUserRoles sends those keys empty instead: role and roleId "",
	// userRoles [], no manageableDepartmentIds.
	EmptyUserRoles bool
	// RefusedDelete403 refuses a deactivation, termination or delete of the
	// account owner with 403 (a permission no one has) instead of 400: the
	// docs say only that the owner cannot be deactivated.
	RefusedDelete403 bool
	// SupervisorReads lets credentials whose user only supervises (Learn's
	// automatic Supervisor role) read the account through the API; their
	// writes are refused with 403. By default the API refuses them
	// everything, as any role the docs do not name among its callers.
	SupervisorReads bool
	// FieldsForm is which forms of a user write's fields Learn takes: the
	// API description writes an object of lowercase names, one public
	// client the {name, value} list reads show (docs/learn-api.md,
	// "Unsettled behaviour").
	FieldsForm FieldsForm
	// ReadDates is the form of a user read's addedDate: the API
	// description says only "datetime", the docs' sample has an offset.
	ReadDates ReadDates
	// XMLErrors answers every refusal in XML, whatever Accept asks: the API
	// description gives the error body in both formats, and no source
	// shows an error answered to a request for JSON.
	XMLErrors bool
	// OmittedLink is what a subordination request does with a link it
	// leaves out (a department's subordination or coSubordination, a
	// user's coSubordination): the API description makes them optional
	// and says nothing of what becomes of the one left out.
	OmittedLink OmittedLink
	// RoleNames is the list of role names a user read writes roles in:
	// the API description's (learner, administrator, …) or the EU docs'
	// (learners, account_administrators, …). The two lists conflict, and
	// no sample shows a read in the second (docs/learn-api.md, "Roles").
	RoleNames RoleNames
}

// RoleNames is a list of role names reads write roles in.
type RoleNames int

const (
	RoleNamesAsStored RoleNames = iota // as the role was given (the API description's names for the app's users)
	RoleNamesEU                        // the EU docs' names
)

// euRoleNames are the EU docs' names of the API description's roles; the
// rest (custom, supervisor) read the same in both.
var euRoleNames = map[string]string{
	"learner": "learners", "administrator": "account_administrators",
	"department_administrator": "department_administrators", "publisher": "course_authors",
}

// roleName is role as a read writes it.
func (u Unsettled) roleName(role string) string {
	if n, ok := euRoleNames[role]; ok && u.RoleNames == RoleNamesEU {
		return n
	}
	return role
}

// OmittedLink is the fate of a link a subordination request leaves out.
type OmittedLink int

const (
	OmittedLinkKept  OmittedLink = iota // left as it was
	OmittedLinkReset                    // set to what a new one starts with: inherit (the root's no_supervisor)
)

// fillOmitted gives the links a subordination request leaves out the value
// OmittedLink says, and leaves them nil where it keeps them; root says the
// request is on the account's root department.
func (u Unsettled) fillOmitted(sb, co *sub, root bool) (*sub, *sub) {
	if u.OmittedLink != OmittedLinkReset {
		return sb, co
	}
	fresh := sub{Type: "inherit"}
	if root {
		fresh.Type = "no_supervisor"
	}
	if sb == nil {
		sb = &fresh
	}
	if co == nil {
		c := fresh
		co = &c
	}
	return sb, co
}

// HidesRoles reports whether user reads show no role at all (NoRoleReads,
// EmptyUserRoles): a client then cannot tell an administrator from a
// learner, and tests that read a role back expect none.
func (u Unsettled) HidesRoles() bool { return u.NoRoleReads || u.EmptyUserRoles }

// ownerRefusal is the refusal of a deactivation or delete (what) of the
// account owner.
func (u Unsettled) ownerRefusal(what string) *apiErr {
	if u.RefusedDelete403 {
		return errf(http.StatusForbidden, "The account owner cannot be %s", what)
	}
	return errf(http.StatusBadRequest, "The account owner cannot be %s", what)
}

// ScopedParent is how a listing under ScopedReads renders the
// parentDepartmentId of a department whose parent the caller does not see:
// no source shows a department administrator's listing.
type ScopedParent int

const (
	ScopedParentID     ScopedParent = iota // the real parent's ID
	ScopedParentNull                       // JSON null, XML <parentDepartmentId/>, as the root under RootParentNull
	ScopedParentAbsent                     // no parentDepartmentId at all, as the root by default
)

// Throttle is the form of a refusal for load.
type Throttle int

const (
	ThrottleSeconds  Throttle = iota // 429 with Retry-After in seconds
	ThrottleNoHeader                 // 429 without Retry-After
	ThrottleDate                     // 429 with Retry-After as an HTTP date
	Throttle503                      // 503 with Retry-After in seconds
)

// writeThrottled refuses a request for load as t says, naming wait (whole
// seconds, rounded up) where the form has a Retry-After.
func (t Throttle) writeThrottled(w http.ResponseWriter, r *http.Request, wait time.Duration, now time.Time) {
	secs := int((wait + time.Second - 1) / time.Second)
	status := http.StatusTooManyRequests
	switch t {
	case ThrottleSeconds:
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	case ThrottleDate:
		// An HTTP date has whole seconds: the next one at or after the wait.
		at := now.Add(wait).UTC().Truncate(time.Second)
		if at.Before(now.Add(wait)) {
			at = at.Add(time.Second)
		}
		w.Header().Set("Retry-After", at.Format(http.TimeFormat))
	case Throttle503:
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeErr(w, r, errf(status, "Too many requests"))
}

// MoveKey is the key a department move reads its IDs from: the OAS names
// the property departmentIds but lists it as required under the misspelt
// departmnetIds, and no source says which the server reads.
type MoveKey int

const (
	MoveKeyEither   MoveKey = iota // departmentIds, else departmnetIds
	MoveKeyCorrect                 // departmentIds only
	MoveKeyMisspelt                // departmnetIds only
)

// moveKeys are the keys of the ID list a department move reads.
func (u Unsettled) moveKeys() []string {
	switch u.MoveKey {
	case MoveKeyCorrect:
		return []string{"departmentIds"}
	case MoveKeyMisspelt:
		return []string{"departmnetIds"}
	}
	return []string{"departmentIds", "departmnetIds"}
}

// CodeFilter is how GET /department?code= matches (not settled: the
// answer is a list, and no source says whether the match is exact).
type CodeFilter int

const (
	CodeFilterExact    CodeFilter = iota // the code as sent
	CodeFilterContains                   // codes containing it, letter case aside
	CodeFilterIgnored                    // the parameter is ignored: every department
)

// codeMatches reports whether a department of code c answers the filter f.
func (u Unsettled) codeMatches(c, f string) bool {
	switch u.CodeFilter {
	case CodeFilterContains:
		return strings.Contains(strings.ToLower(c), strings.ToLower(f))
	case CodeFilterIgnored:
		return true
	}
	return c == f
}

// Clash is what a department create, update or move does with a value
// another department has: a code, or a sibling's name (not settled).
type Clash int

const (
	ClashAllowed Clash = iota // allowed
	Clash400                  // refused with 400
	Clash409                  // refused with 409
)

// refuse is the refusal of a clash, said by format and args; nil when the
// switch allows it.
func (c Clash) refuse(format string, args ...any) *apiErr {
	if c == ClashAllowed {
		return nil
	}
	status := http.StatusBadRequest
	if c == Clash409 {
		status = http.StatusConflict
	}
	return errf(status, format, args...)
}

// refuseCode answers a department given code when another one (not
// except) has it and the switch refuses a code used twice.
func (u Unsettled) refuseCode(a *account, code, except string) *apiErr {
	if u.UniqueCodes == ClashAllowed || code == "" {
		return nil
	}
	for _, d := range a.depts {
		if d.Code == code && d.ID != except {
			return u.UniqueCodes.refuse("A department with the code %q already exists", code)
		}
	}
	return nil
}

// LastPage is how a listing says a page is its last: Learn's docs say a
// missing or empty nextPageToken, and a server that pages by token may also
// not know that a full page is the last.
type LastPage int

const (
	LastPageNoToken   LastPage = iota // no nextPageToken
	LastPageEmpty                     // "nextPageToken": "" (XML <nextPageToken></nextPageToken>)
	LastPageNull                      // "nextPageToken": null (XML: none)
	LastPageAfterFull                 // a full page carries a token even when nothing follows; the page it names is empty, with no token
)

// afterPrefix marks a page token that names the place after an ID (the
// empty page LastPageAfterFull leads to) rather than the ID a page starts at.
const afterPrefix = "after:"

// lastOf is the next page's start for a page that holds n of size objects,
// the last of them last, when nothing follows: none, or under
// LastPageAfterFull, for a full page, the place after last.
func (u Unsettled) lastOf(n, size int, last string) string {
	if u.LastPage == LastPageAfterFull && n == size && n > 0 {
		return afterPrefix + last
	}
	return ""
}

// tokenOut is a page's nextPageToken on the wire, which on the last page
// depends on LastPage. In XML a null token is left out.
type tokenOut struct{ nullable }

func (t tokenOut) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if !t.Present || t.Null {
		return nil
	}
	return e.EncodeElement(t.S, start)
}

// nextToken renders the token of the page starting at next ("": none).
func nextToken(r *http.Request, next string) tokenOut {
	if next != "" {
		return tokenOut{nullable{S: pageToken(next), Present: true}}
	}
	switch unsettledFrom(r).LastPage {
	case LastPageEmpty:
		return tokenOut{nullable{Present: true}}
	case LastPageNull:
		return tokenOut{nullable{Present: true, Null: true}}
	}
	return tokenOut{}
}

// notFound applies UnknownRef404, then UnknownID400, to a refusal of a
// request to route.
func (u Unsettled) notFound(route string, err *apiErr) *apiErr {
	if err != nil && err.taken && u.UpdateDuplicate409 {
		return &apiErr{status: http.StatusConflict, msg: err.msg}
	}
	if err != nil && err.ref && u.UnknownRef404 {
		return &apiErr{status: http.StatusNotFound, msg: err.msg}
	}
	if err != nil && err.ref {
		return err // a body's reference, not the path's
	}
	if !u.UnknownID400 || err == nil || err.status != http.StatusNotFound || strings.HasSuffix(route, "/move") {
		return err
	}
	return &apiErr{status: http.StatusBadRequest, msg: err.msg}
}

// RootSubordination is what a subordination request on the root department
// does. The refusals take a request that sets every link it names to
// no_supervisor (what the root starts with); anything else (manual,
// inherit) is refused with the sim's usual error body.
type RootSubordination int

const (
	// RootSubKept: the root keeps what it is sent, like any department.
	RootSubKept RootSubordination = iota
	// RootSub400: refused with 400, as an invalid parameter.
	RootSub400
	// RootSub403: refused with 403, as a permission the root does not give.
	RootSub403
	// RootSub409: refused with 409, as a conflict with the root's state.
	RootSub409
	// RootSubIgnored: answered 204 and nothing changes; the root keeps the
	// links it had (no_supervisor unless set before).
	RootSubIgnored
)

// rootSub answers a subordination request on department id before it is
// applied: skip says a 204 that changes nothing.
func (u Unsettled) rootSub(a *account, id string, sb, co *sub) (skip bool, err *apiErr) {
	if id != a.rootID || u.RootSubordination == RootSubKept {
		return false, nil
	}
	if u.RootSubordination == RootSubIgnored {
		return true, nil
	}
	for _, x := range []*sub{sb, co} {
		if x == nil || x.Type == "no_supervisor" {
			continue
		}
		switch u.RootSubordination {
		case RootSub403:
			return false, errf(http.StatusForbidden, "Access denied: the root department's supervisors cannot be changed")
		case RootSub409:
			return false, errf(http.StatusConflict, "The root department cannot have a supervisor")
		}
		return false, errf(http.StatusBadRequest, "The root department cannot have a supervisor")
	}
	return false, nil
}

// RootLinks is how a read shows a link of the root department that names
// nobody (no_supervisor, what the root starts with): the OAS requires both
// links on every department and lists manual, inherit and no_supervisor,
// but no source shows the root's. A manual link reads as any department's.
type RootLinks int

const (
	RootLinksNoSupervisor RootLinks = iota // subordinationType no_supervisor, as stored
	RootLinksInherit                       // subordinationType inherit (the root inherits from nothing)
	RootLinksAbsent                        // no subordination / coSubordination key at all
)

// linkOf is department d's link s on the wire (nil: left out), which for
// the root depends on RootLinks.
func (a *account) linkOf(r *http.Request, d *dept, s sub) *subOut {
	o := outSub(s)
	if d.ID != a.rootID || s.Type != "no_supervisor" {
		return &o
	}
	switch unsettledFrom(r).RootLinks {
	case RootLinksInherit:
		o.Type = "inherit"
	case RootLinksAbsent:
		return nil
	}
	return &o
}

// refuseSiblingName answers a department named name under parent when the
// switch refuses a sibling of the same name (except, the department itself).
func (u Unsettled) refuseSiblingName(a *account, parent, name, except string) *apiErr {
	if u.SiblingNames == ClashAllowed {
		return nil
	}
	name = strings.TrimSpace(name)
	for _, d := range a.depts {
		if d.ParentID == parent && d.ID != except && strings.EqualFold(d.Name, name) {
			return u.SiblingNames.refuse("A department named %q already exists in this department", name)
		}
	}
	return nil
}

// RootParent is how the root department's parentDepartmentId is rendered.
type RootParent int

const (
	RootParentAbsent  RootParent = iota // no parentDepartmentId at all
	RootParentNull                      // JSON null, XML <parentDepartmentId/>
	RootParentEmpty                     // "" (XML <parentDepartmentId/>)
	RootParentNilUUID                   // 00000000-0000-0000-0000-000000000000
	RootParentSelf                      // the root's own ID
)

// ReturnObject is what POST /department and POST /user answer.
type ReturnObject int

const (
	ReturnObjectWhenAsked ReturnObject = iota // the object with X-Return-Object: true, else the ID
	ReturnObjectIgnored                       // always the ID
	ReturnObjectAlways                        // always the object
)

// nilUUID is what some APIs put where no ID applies.
const nilUUID = "00000000-0000-0000-0000-000000000000"

type unsettledKey struct{}

// withUnsettled lets the writers of answers see the switches.
func (s *Sim) withUnsettled(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), unsettledKey{}, s.opts.Unsettled))
}

func unsettledFrom(r *http.Request) Unsettled {
	u, _ := r.Context().Value(unsettledKey{}).(Unsettled)
	return u
}

// single renders a single-object read: enveloped or bare.
func single(r *http.Request, v any) any {
	if unsettledFrom(r).BareSingleObject {
		return v
	}
	return map[string]any{"response": v}
}

// returnObject says whether a create answers the created object.
func returnObject(r *http.Request) bool {
	switch unsettledFrom(r).ReturnObject {
	case ReturnObjectIgnored:
		return false
	case ReturnObjectAlways:
		return true
	}
	return strings.EqualFold(r.Header.Get("X-Return-Object"), "true")
}

// parentOut is a department's parentDepartmentId on the wire, which for the
// root depends on RootParent, and for a department whose parent a scoped
// listing leaves out on ScopedParent. In XML a null parent is an empty
// element.
type parentOut struct{ nullable }

func (p parentOut) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if !p.Present {
		return nil
	}
	return e.EncodeElement(p.S, start)
}

// nullable is a string on the wire that may be left out (omitzero), null
// or a value; what a null one is in XML is the embedding type's.
type nullable struct {
	S       string
	Present bool
	Null    bool
}

func (n nullable) IsZero() bool { return !n.Present }

func (n nullable) MarshalJSON() ([]byte, error) {
	if n.Null {
		return []byte("null"), nil
	}
	return json.Marshal(n.S)
}

func (a *account) parentOf(r *http.Request, d *dept) parentOut {
	if d.ID != a.rootID {
		if seen := a.readScope(r); seen != nil && !seen(d.ParentID) {
			switch unsettledFrom(r).ScopedParent {
			case ScopedParentNull:
				return parentOut{nullable{Present: true, Null: true}}
			case ScopedParentAbsent:
				return parentOut{}
			}
		}
		return parentOut{nullable{S: d.ParentID, Present: d.ParentID != ""}}
	}
	switch unsettledFrom(r).RootParent {
	case RootParentNull:
		return parentOut{nullable{Present: true, Null: true}}
	case RootParentEmpty:
		return parentOut{nullable{Present: true}}
	case RootParentNilUUID:
		return parentOut{nullable{S: nilUUID, Present: true}}
	case RootParentSelf:
		return parentOut{nullable{S: d.ID, Present: true}}
	}
	return parentOut{}
}

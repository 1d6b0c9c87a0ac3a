package learnsim

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// BulkUnknown is what a call on a list of users does with an ID Learn does
// not have.
type BulkUnknown int

const (
	BulkUnknownRefused BulkUnknown = iota // 404, nothing applied
	BulkUnknownIgnored                    // the others applied, success
	BulkUnknownPartial                    // the others applied, then 404
)

// bulkUsers applies BulkUnknown to the users ids of a bulk call: the IDs
// to apply (all of them under BulkUnknownRefused, so the call refuses
// them), and the refusal to answer after applying them.
func (u Unsettled) bulkUsers(a *account, ids []string) (apply []string, after *apiErr) {
	if u.BulkUnknown == BulkUnknownRefused {
		return ids, nil
	}
	for _, id := range ids {
		if a.users[id] != nil {
			apply = append(apply, id)
		} else if after == nil && u.BulkUnknown == BulkUnknownPartial {
			after = errf(http.StatusNotFound, "User %s not found", id)
		}
	}
	return apply, after
}

// UserRoles is where a read shows a user's role other than learner. The
// OAS has both role and userRoles[] ({roleId, roleType,
// manageableDepartmentIds}), and a create may give "one or two roles, one of
// which is Learner"; no sample shows a user with two.
type UserRoles int

const (
	UserRolesInRole UserRoles = iota // role is the user's role; userRoles is empty
	// UserRolesSecond: role reads learner, and userRoles holds the learner
	// role and the other one, with its managed departments.
	UserRolesSecond
)

// SupervisorRole is how a read shows the Supervisor role of a user whom a
// department's manual subordination or coSubordination names. The UI gives
// that role automatically; the OAS has role, manageableDepartmentIds and
// userRoles[] ({roleId, roleType, manageableDepartmentIds}), and the EU
// role list has "supervisor", but no sample shows a supervisor's profile.
type SupervisorRole int

const (
	SupervisorRoleHidden SupervisorRole = iota // not shown: the profile reads as before
	// SupervisorRoleInRole: a learner's role reads supervisor, and
	// manageableDepartmentIds lists the departments it supervises.
	SupervisorRoleInRole
	// SupervisorRoleListed: userRoles lists the user's role and a
	// supervisor role with no departments.
	SupervisorRoleListed
	// SupervisorRoleScoped: userRoles lists the user's role and a
	// supervisor role whose manageableDepartmentIds are the departments
	// it supervises.
	SupervisorRoleScoped
)

// LongValues is what Learn does with a value longer than its limit.
type LongValues int

const (
	LongValuesKept    LongValues = iota // stored whole
	LongValuesCut                       // cut silently to the limit
	LongValuesRefused                   // refused with 400
)

// DefaultValueLimit is the limit of Unsettled.ValueLimit's zero value: 255
// runes, the common size of a name column, for department names and user
// text fields alike.
const DefaultValueLimit = 255

// longTextTypes are the profile field types LongValues applies to: free
// text. Login, e-mail, country and dates have forms of their own.
var longTextTypes = map[string]bool{"first_name": true, "last_name": true, "job_title": true, "phone": true, "string": true}

// fitValue applies LongValues to the value v of what (a parameter or field
// name): the value to store, or the refusal.
func (u Unsettled) fitValue(what, v string) (string, *apiErr) {
	limit := u.ValueLimit
	if limit <= 0 {
		limit = DefaultValueLimit
	}
	v = strings.TrimSpace(v)
	if u.LongValues == LongValuesKept || utf8.RuneCountInString(v) <= limit {
		return v, nil
	}
	if u.LongValues == LongValuesRefused {
		return "", errf(http.StatusBadRequest, "Field %s is too long: at most %d characters", what, limit)
	}
	n := 0
	for i := range v {
		if n == limit {
			return strings.TrimSpace(v[:i]), nil
		}
		n++
	}
	return v, nil
}

// fitFields applies LongValues to the text fields of a user create or
// update, in place.
func (u Unsettled) fitFields(a *account, f map[string]string) *apiErr {
	for name, v := range f {
		if def := a.fieldByName[name]; def == nil || !longTextTypes[def.Type] {
			continue
		}
		fit, err := u.fitValue(name, v)
		if err != nil {
			return err
		}
		f[name] = fit
	}
	return nil
}

// FieldsForm is which forms of a user create's or update's fields are
// taken: an object keyed by lowercase names, or a list of {name, value}
// (in XML <fields><field><name>…</name><value>…</value></field>…</fields>).
type FieldsForm int

const (
	FieldsEither      FieldsForm = iota // both
	FieldsListRefused                   // the object only; a list refused with 400
	FieldsListIgnored                   // the object only; a list read as no fields
)

// userFields reads a user write's fields from body as FieldsForm says;
// sent reports whether body has any.
func (u Unsettled) userFields(body map[string]any) (fields map[string]string, sent bool, err *apiErr) {
	fields, sent = getFields(body, "fields")
	if !sent || u.FieldsForm == FieldsEither || !fieldsListed(body["fields"]) {
		return fields, sent, nil
	}
	if u.FieldsForm == FieldsListRefused {
		return nil, true, errf(http.StatusBadRequest, "Parameter fields is invalid")
	}
	return nil, false, nil
}

// fieldsListed reports whether fields v is in the list form.
func fieldsListed(v any) bool {
	switch t := v.(type) {
	case []any:
		return true
	case map[string]any:
		_, ok := t["field"]
		return ok && len(t) == 1
	}
	return false
}

// ReadDates is the form of the datetimes a user read shows (addedDate).
type ReadDates int

const (
	ReadDatesOffset ReadDates = iota // 2024-03-01T10:00:00+00:00, as the docs' sample
	ReadDatesZulu                    // 2024-03-01T10:00:00Z
	ReadDatesSpace                   // 2024-03-01 10:00:00, in UTC
)

// readDate renders t as ReadDates says.
func (u Unsettled) readDate(t time.Time) string {
	switch u.ReadDates {
	case ReadDatesZulu:
		return t.UTC().Format(time.RFC3339)
	case ReadDatesSpace:
		return t.UTC().Format(time.DateTime)
	}
	return t.UTC().Format("2006-01-02T15:04:05-07:00")
}

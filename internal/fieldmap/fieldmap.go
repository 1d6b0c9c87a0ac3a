// Package fieldmap says which Bitrix24 user field fills which Learn profile
// field: the sources a portal offers, the fixed mapping every portal starts
// with, the check a mapping passes before it is saved, and the conversion of
// a Bitrix24 value into what Learn is sent. The settings page, the settings
// owner and the syncer share it; it imports nothing of the app.
package fieldmap

import (
	"maps"
	"regexp"
	"strings"
	"time"
)

// Kind is what a source's values are: text, or a date (converted to
// YYYY-MM-DD before it is sent).
type Kind string

const (
	Text Kind = "text"
	Date Kind = "date"
)

// Source is a Bitrix24 user field that can fill a Learn field.
type Source struct {
	Code  string // Bitrix24 field code, or one of the derived codes below
	Label string // the portal's label for a UF_* field; "" for standard ones (the page names those)
	Kind  Kind
}

// Derived sources: not Bitrix24 field codes, but values the app builds.
const (
	// Phone is the first non-empty of PERSONAL_MOBILE, WORK_PHONE and
	// PERSONAL_PHONE: what the fixed mapping sends as phone.
	Phone = "PHONE"
	// DepartmentName is the name of the user's department in Learn's tree.
	DepartmentName = "DEPARTMENT_NAME"
)

// Standard are the sources every portal has, in the order the page lists
// them. user.get returns all of them with the user_basic scope.
var Standard = []Source{
	{Code: "NAME", Kind: Text},
	{Code: "LAST_NAME", Kind: Text},
	{Code: "SECOND_NAME", Kind: Text},
	{Code: "WORK_POSITION", Kind: Text},
	{Code: Phone, Kind: Text},
	{Code: "PERSONAL_MOBILE", Kind: Text},
	{Code: "WORK_PHONE", Kind: Text},
	{Code: "PERSONAL_PHONE", Kind: Text},
	{Code: "PERSONAL_CITY", Kind: Text},
	{Code: "PERSONAL_BIRTHDAY", Kind: Date},
	{Code: "UF_EMPLOYMENT_DATE", Kind: Date},
	{Code: DepartmentName, Kind: Text},
}

// StandardCodes are the codes of Standard: user.get sends these without
// being asked, except the derived ones.
func isStandard(code string) (Source, bool) {
	for _, s := range Standard {
		if s.Code == code {
			return s, true
		}
	}
	return Source{}, false
}

// Learn fields the app fills itself: the login and e-mail are the user's
// Bitrix24 e-mail (the syncer's identity rules), never mapped.
const (
	LearnLogin = "login"
	LearnEmail = "email"
)

// Fixed reports whether the Learn field is filled by the app, not the map.
func Fixed(learnField string) bool { return learnField == LearnLogin || learnField == LearnEmail }

// Default is the fixed mapping of a portal that never changed it.
func Default() map[string]string {
	return map[string]string{"first_name": "NAME", "last_name": "LAST_NAME", "job_title": "WORK_POSITION", "phone": Phone}
}

// Effective is the mapping a run uses: the saved one, or Default when none
// is saved. Fields a saved map does not name keep their default (none for
// custom fields), so a field Learn adds later changes nothing by itself.
func Effective(saved map[string]string) map[string]string {
	out := Default()
	maps.Copy(out, saved)
	for k, v := range out {
		if v == "" || Fixed(k) {
			delete(out, k)
		}
	}
	return out
}

// Target is a Learn profile field as the check needs it.
type Target struct {
	Name     string // lowercase, as written
	Type     string // Learn's type: first_name, job_title, string, phone, birthdate, country, ...
	Required bool
}

// Problem codes of Check, one per Learn field; the page words them.
const (
	ProblemRequired      = "required"       // a required field has no source
	ProblemUnknownSource = "unknown_source" // the portal has no such Bitrix24 field
	ProblemNeedsDate     = "needs_date"     // a date field filled from text
	ProblemNotMappable   = "not_mappable"   // a field the app fills, or one Learn takes only as a code list
	ProblemUnknownField  = "unknown_field"  // the Learn account has no such field
)

// Check returns the problems of mapping m, by Learn field name: the fields
// of targets, the sources offered. An empty result means m can be saved.
func Check(targets []Target, sources []Source, m map[string]string) map[string]string {
	byCode := map[string]Source{}
	for _, s := range sources {
		byCode[s.Code] = s
	}
	known := map[string]bool{}
	out := map[string]string{}
	for _, t := range targets {
		known[t.Name] = true
		code, set := m[t.Name]
		if !set {
			code = Default()[t.Name]
		}
		if Fixed(t.Name) {
			if code != "" {
				out[t.Name] = ProblemNotMappable
			}
			continue
		}
		if code == "" {
			// Learn does not require a country (it has a default).
			if t.Required && t.Type != "country" {
				out[t.Name] = ProblemRequired
			}
			continue
		}
		src, ok := byCode[code]
		switch {
		case !ok:
			out[t.Name] = ProblemUnknownSource
		case t.Type == "country" || t.Type == "email" || t.Type == "login":
			out[t.Name] = ProblemNotMappable
		case t.Type == "birthdate" && src.Kind != Date:
			out[t.Name] = ProblemNeedsDate
		}
	}
	for name := range m {
		if !known[name] {
			out[name] = ProblemUnknownField
		}
	}
	return out
}

// UserField reports whether code is read from user.get as a UF_* field the
// run must ask for (UF_EMPLOYMENT_DATE comes unasked).
func UserField(code string) bool {
	_, std := isStandard(code)
	return strings.HasPrefix(code, "UF_") && !std
}

// restDateTime is how Bitrix24's REST renders a date or datetime value.
var restDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$`)

// Value converts a Bitrix24 value of source code to what Learn is sent:
// dates as YYYY-MM-DD, text trimmed. ok is false when a date source holds
// something that is not a date: the field is then left out, never sent
// malformed. UF_* values that are REST datetimes are dates too (a UF field
// of type date or datetime comes that way).
func Value(code, raw string) (v string, ok bool) {
	raw = strings.TrimSpace(raw)
	src, std := isStandard(code)
	isDate := std && src.Kind == Date
	if raw == "" {
		return "", true
	}
	if restDateTime.MatchString(raw) {
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return "", false
		}
		return t.Format(time.DateOnly), true
	}
	if !isDate {
		return raw, true
	}
	// A date as the portal's own format or plain ISO.
	for _, layout := range []string{time.DateOnly, "02.01.2006", "01/02/2006"} {
		if t, err := time.Parse(layout, raw); err == nil {
			return t.Format(time.DateOnly), true
		}
	}
	return "", false
}

// Fit checks mapping m against Learn's fields as they are at run time: an
// admin may have changed a field's type, or removed it, after the mapping
// was saved. It returns the part of m that still fits and, by Learn field
// name, the problem of each mapping left out. A UF_* source's kind is not
// known at run time; its values are converted by Value and a text one that
// reaches a date field is Learn's to refuse.
func Fit(targets []Target, m map[string]string) (fits map[string]string, left map[string]string) {
	byName := make(map[string]Target, len(targets))
	for _, t := range targets {
		byName[t.Name] = t
	}
	fits, left = map[string]string{}, map[string]string{}
	for name, code := range m {
		t, ok := byName[name]
		src, std := isStandard(code)
		switch {
		case !ok:
			left[name] = ProblemUnknownField
		case t.Type == "country" || t.Type == "email" || t.Type == "login":
			left[name] = ProblemNotMappable
		case t.Type == "birthdate" && std && src.Kind != Date:
			left[name] = ProblemNeedsDate
		default:
			fits[name] = code
		}
	}
	return fits, left
}

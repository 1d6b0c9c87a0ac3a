package learnsim

import (
	"bytes"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// kind is the type the API description gives a request parameter.
type kind int

const (
	kindString  kind = iota // a JSON string; in XML an element's text
	kindBool                // a JSON true/false; in XML the text true or false
	kindAny                 // any value (the status of POST /user/{id}/status)
	kindIDs                 // ArrayOfIds: a JSON list of strings; in XML <id> elements in the parameter's element
	kindStrings             // a JSON list of strings; in XML the parameter's element repeated
	kindFields              // a user's profile fields: an object of the account's field names to strings
	kindLink                // a Subordination object
	kindRoles               // a list of UserRole objects
)

// kindNames name a kind in refusals.
var kindNames = map[kind]string{kindString: "a string", kindBool: "a boolean", kindIDs: "a list of IDs",
	kindStrings: "a list of strings", kindFields: "an object of profile fields", kindLink: "a subordination object",
	kindRoles: "a list of roles"}

// rule is what the API description lists for one route: its query
// parameters, its body's top-level keys and their types, and the media
// types of the body (none: the route takes no body).
type rule struct {
	query []string
	body  map[string]kind
	media []string
}

var (
	jsonOrXML = []string{"application/json", "application/xml"}
	filters   = []string{"departments[]", "groups[]", "logins[]", "emails[]"}
	paging    = []string{"pageSize", "pageToken"}
	idsBody   = map[string]kind{"userIds": kindIDs}
	deptBody  = map[string]kind{"name": kindString, "parentDepartmentId": kindString, "code": kindString}
	linksBody = map[string]kind{"subordination": kindLink, "coSubordination": kindLink}
)

// strictRules are the parameters each route takes under
// Unsettled.StrictRequests, by the simulator's route pattern, as
// docs/learn-api.md, "Request parameters", lists them. A department move
// takes its list under both spellings the description uses (see MoveKey).
var strictRules = map[string]rule{
	"GET /department":                 {query: []string{"code"}},
	"GET /departments":                {query: paging},
	"GET /department/{id}":            {},
	"POST /department":                {body: deptBody, media: jsonOrXML},
	"POST /department/{id}":           {body: deptBody, media: jsonOrXML},
	"DELETE /department/{id}":         {},
	deptSubRoute:                      {body: linksBody, media: jsonOrXML},
	"POST /department/{id}/user/move": {body: idsBody, media: jsonOrXML},
	"POST /department/{id}/department/move": {body: map[string]kind{"departmentIds": kindIDs, "departmnetIds": kindIDs},
		media: jsonOrXML},

	"GET /user":     {query: filters},
	"GET /user/v2":  {query: filters},
	"GET /users":    {query: append(append([]string{}, paging...), filters...)},
	"GET /users/v2": {query: append(append([]string{"userIds[]"}, paging...), filters...)},
	"POST /users/v2": {body: map[string]kind{"groups": kindStrings, "departments": kindStrings, "logins": kindStrings,
		"emails": kindStrings, "userIds": kindStrings}, media: []string{"application/xml"}},
	"GET /user/{id}":    {},
	"GET /user/{id}/v2": {},
	"POST /user": {body: map[string]kind{"departmentId": kindString, "fields": kindFields, "password": kindString,
		"role": kindString, "roleId": kindString, "manageableDepartmentIds": kindIDs, "groupIds": kindIDs,
		"roles": kindRoles, "sendLoginEmail": kindBool, "invitationMessage": kindString, "sendLoginSMS": kindBool,
		"invitationSMSMessage": kindString}, media: jsonOrXML},
	"POST /user/{id}": {body: map[string]kind{"departmentId": kindString, "role": kindString, "roleId": kindString,
		"roles": kindRoles, "fields": kindFields, "groupIds": kindIDs, "manageableDepartmentIds": kindIDs}, media: jsonOrXML},
	"DELETE /user/{id}":             {},
	"POST /user/{id}/status":        {body: map[string]kind{"status": kindAny}, media: jsonOrXML},
	"POST /users/activate":          {body: idsBody, media: jsonOrXML},
	"POST /users/deactivate":        {body: idsBody, media: jsonOrXML},
	"POST /users/terminate":         {body: idsBody, media: jsonOrXML},
	"POST /user/{id}/subordination": {body: linksBody, media: jsonOrXML},
	"GET /user/profile/fields":      {},
	"POST /users/find_existing":     {body: idsBody, media: jsonOrXML},
}

// tokenForm is what POST /api/v3/token takes: a form of these keys.
var tokenForm = []string{"client_id", "client_secret", "grant_type"}

// linkKeys and roleKeys are the keys of a Subordination and a UserRole.
var (
	linkKeys = map[string]kind{"subordinationType": kindString, "supervisorId": kindString}
	roleKeys = map[string]kind{"roleId": kindString, "manageableDepartmentIds": kindIDs, "roleType": kindString}
)

// strictWire applies StrictRequests to what a request carries outside its
// parsed body: query parameters, a body where the route takes none, and the
// body's media type. It leaves r.Body readable again.
func strictWire(r *http.Request) *apiErr {
	ru, ok := strictRules[r.Pattern]
	if !ok {
		return errf(http.StatusInternalServerError, "learnsim: no strict rule for %s", r.Pattern)
	}
	if err := onlyQuery(r, ru.query); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errf(http.StatusBadRequest, "Cannot read the request body")
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if ru.media == nil {
		return errf(http.StatusBadRequest, "%s takes no request body", r.Method)
	}
	return mediaOf(r, ru.media)
}

// onlyQuery refuses a query parameter not in allowed.
func onlyQuery(r *http.Request, allowed []string) *apiErr {
	for _, name := range slices.Sorted(maps.Keys(r.URL.Query())) { // the first in order, so a refusal reads the same each time
		if !slices.Contains(allowed, name) {
			return errf(http.StatusBadRequest, "Unknown query parameter %s", name)
		}
	}
	return nil
}

// mediaOf refuses a body whose Content-Type is missing or not in allowed.
func mediaOf(r *http.Request, allowed []string) *apiErr {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return errf(http.StatusBadRequest, "Header Content-Type is required with a body (%s)", strings.Join(allowed, " or "))
	}
	if !slices.Contains(allowed, mt) {
		return errf(http.StatusBadRequest, "Content-Type %s is not accepted (%s)", mt, strings.Join(allowed, " or "))
	}
	return nil
}

// strictBody applies StrictRequests to a parsed body: every key must be one
// the route lists, with a value of its type. It runs under the account's
// lock, since a user's fields are the account's.
func strictBody(r *http.Request, a *account, body map[string]any) *apiErr {
	ru := strictRules[r.Pattern]
	c := checker{a: a, xml: isXMLBody(r)}
	return c.object("", body, ru.body)
}

// isXMLBody says whether the body was read as XML (see readBody); under
// StrictRequests a body always names its type.
func isXMLBody(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return strings.Contains(mt, "xml")
}

// checker checks values of a body as JSON or XML.
type checker struct {
	a   *account
	xml bool
}

// object checks the keys of m (at path, "" for the body) against keys.
func (c checker) object(path string, m map[string]any, keys map[string]kind) *apiErr {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, name := m[k], k
		if path != "" {
			name = path + "." + k
		}
		want, ok := keys[k]
		if !ok {
			return errf(http.StatusBadRequest, "Unknown parameter %s", name)
		}
		if !c.value(v, want) {
			return errf(http.StatusBadRequest, "Parameter %s must be %s", name, kindNames[want])
		}
		if err := c.nested(name, v, want); err != nil {
			return err
		}
	}
	return nil
}

// nested checks the keys inside an object-valued parameter.
func (c checker) nested(name string, v any, want kind) *apiErr {
	switch want {
	case kindLink:
		m, _ := v.(map[string]any)
		return c.object(name, m, linkKeys)
	case kindFields:
		m, _ := v.(map[string]any)
		fields := map[string]kind{}
		for n := range c.a.fieldByName {
			fields[n] = kindString
		}
		return c.object(name, m, fields)
	case kindRoles:
		for _, e := range c.roles(v) {
			if err := c.object(name, e, roleKeys); err != nil {
				return err
			}
		}
	}
	return nil
}

// value reports whether v has the type want.
func (c checker) value(v any, want kind) bool {
	if c.xml {
		return c.xmlValue(v, want)
	}
	switch want {
	case kindAny:
		return true
	case kindString:
		_, ok := v.(string)
		return ok
	case kindBool:
		_, ok := v.(bool)
		return ok
	case kindIDs, kindStrings:
		l, ok := v.([]any)
		for _, e := range l {
			if _, s := e.(string); !s {
				return false
			}
		}
		return ok
	case kindFields, kindLink:
		_, ok := v.(map[string]any)
		return ok
	case kindRoles:
		l, ok := v.([]any)
		for _, e := range l {
			if _, o := e.(map[string]any); !o {
				return false
			}
		}
		return ok
	}
	return false
}

// xmlValue is value for a body parsed from XML (see xmlElement): text is a
// string, an element with children a map, a repeated element a list.
func (c checker) xmlValue(v any, want kind) bool {
	s, text := v.(string)
	m, elem := v.(map[string]any)
	switch want {
	case kindAny:
		return true
	case kindString:
		return text
	case kindBool:
		return text && (s == "true" || s == "false")
	case kindIDs: // <userIds><id>…</id>…</userIds>, or empty
		if text {
			return s == ""
		}
		return elem && len(m) == 1 && textList(m["id"])
	case kindStrings:
		return textList(v)
	case kindFields, kindLink:
		return elem || text && s == ""
	case kindRoles: // <roles><userRole>…</userRole>…</roles>
		return elem && len(m) == 1 && m["userRole"] != nil
	}
	return false
}

// textList reports whether v is one text or a list of texts.
func textList(v any) bool {
	switch t := v.(type) {
	case string:
		return true
	case []any:
		for _, e := range t {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// roles returns the role objects of a roles parameter (already of its type).
func (c checker) roles(v any) []map[string]any {
	var list []any
	switch t := v.(type) {
	case []any:
		list = t
	case map[string]any: // XML
		if l, ok := t["userRole"].([]any); ok {
			list = l
		} else {
			list = []any{t["userRole"]}
		}
	}
	var out []map[string]any
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// strictToken applies StrictRequests to POST /api/v3/token: a form of the
// keys the description lists, nothing in the query.
func strictToken(r *http.Request) *apiErr {
	if err := onlyQuery(r, nil); err != nil {
		return err
	}
	if err := mediaOf(r, []string{"application/x-www-form-urlencoded"}); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(r.PostForm)) {
		if !slices.Contains(tokenForm, name) {
			return errf(http.StatusBadRequest, "Unknown parameter %s", name)
		}
	}
	return nil
}

// strayLog keeps the requests StrictRequests refused, so that a test can
// fail on one even where the app takes the refusal in its stride (a run
// reports a refused object and goes on).
type strayLog struct {
	mu   sync.Mutex
	list []string
}

func (l *strayLog) add(r *http.Request, err *apiErr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) >= sentLogMax {
		l.list = slices.Delete(l.list, 0, len(l.list)-sentLogMax+1)
	}
	l.list = append(l.list, r.Pattern+": "+err.msg)
}

// Strays returns the requests to the account at accountURL that
// StrictRequests refused, oldest first, as "METHOD /pattern: message"
// (ResetCounts keeps them; a refused token request names no account).
func (s *Sim) Strays(accountURL string) []string {
	a := s.account(accountURL)
	if a == nil {
		return nil
	}
	a.strays.mu.Lock()
	defer a.strays.mu.Unlock()
	return slices.Clone(a.strays.list)
}

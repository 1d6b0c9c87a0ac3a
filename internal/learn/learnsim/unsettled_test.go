package learnsim

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRefusals checks each refusal the API notes describe, as an ErrorResponse
// {code, message} with the HTTP status as code, in JSON and in XML.
func TestRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, AccountOptions{})
	dept := e.createDept("Sales", e.root, "c-1")
	u := e.createUser(dept, "a@acme.ru", nil)
	user := func(f map[string]string, extra map[string]any) map[string]any {
		m := map[string]any{"departmentId": dept, "fields": f, "sendLoginEmail": false}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	full := map[string]string{"login": "b@acme.ru", "first_name": "B", "last_name": "B"}
	for _, tc := range []struct {
		name         string
		status       int
		method, path string
		body         any
		hdr          []string
	}{
		{"no account header", 401, "GET", "/departments", nil, []string{"X-Auth-Account-Url", ""}},
		{"no email header", 401, "GET", "/departments", nil, []string{"X-Auth-Email", ""}},
		{"no password header", 401, "GET", "/departments", nil, []string{"X-Auth-Password", ""}},
		{"unknown token", 401, "GET", "/departments", nil, []string{"X-Auth-Account-Url", "", "Authorization", "Bearer nope"}},
		{"invitation missing", 400, "POST", "/user", user(full, map[string]any{"sendLoginEmail": true}), nil},
		{"no login", 400, "POST", "/user", user(map[string]string{"email": "c@acme.ru", "first_name": "C", "last_name": "C"}, nil), nil},
		{"required field missing", 400, "POST", "/user", user(map[string]string{"login": "c@acme.ru", "first_name": "C"}, nil), nil},
		{"duplicate login", 409, "POST", "/user", user(map[string]string{"login": "A@acme.ru", "first_name": "C", "last_name": "C"}, nil), nil},
		{"duplicate email", 409, "POST", "/user", user(map[string]string{"login": "c", "email": "a@acme.ru", "first_name": "C", "last_name": "C"}, nil), nil},
		{"unknown department", 400, "POST", "/user", map[string]any{"departmentId": "nope", "fields": full}, nil},
		{"unknown parent", 400, "POST", "/department", map[string]string{"name": "X", "parentDepartmentId": "nope"}, nil},
		{"delete the root", 400, "DELETE", "/department/" + e.root, nil, nil},
		{"delete with users", 400, "DELETE", "/department/" + dept, nil, nil},
		{"status 2", 400, "POST", "/user/" + u + "/status", map[string]int{"status": 2}, nil},
		{"bad page token", 400, "GET", "/users/v2?pageToken=bm9wZQ==", nil, nil},
	} {
		for _, accept := range []string{"application/json", "application/xml"} {
			hdr := append([]string{"Accept", accept}, tc.hdr...)
			got, b := e.call(tc.method, tc.path, tc.body, hdr...)
			if got != tc.status {
				t.Errorf("%s (%s): status %d, want %d: %s", tc.name, accept, got, tc.status, b)
				continue
			}
			want := `{"code":` + itoa(tc.status) + `,"message":`
			if accept == "application/xml" {
				want = "<response><code>" + itoa(tc.status) + "</code><message>"
			}
			if !strings.Contains(b, want) {
				t.Errorf("%s (%s): body %s, want an ErrorResponse", tc.name, accept, b)
			}
		}
	}
	// Nothing refused was stored.
	if st := e.state(); len(st.Users) != 2 || len(st.Departments) != 2 {
		t.Errorf("refused requests changed the account: %d users, %d departments", len(st.Users), len(st.Departments))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestUnsettledSwitches checks that each switch changes the answer it names.
func TestUnsettledSwitches(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, u Unsettled) (*env, string, string) {
		e := newEnv(t, AccountOptions{})
		dept := e.createDept("Sales", e.root, "c-1")
		user := e.createUser(dept, "a@acme.ru", nil)
		e.sim.opts.Unsettled = u // set before any request that sees it
		return e, dept, user
	}
	t.Run("defaults", func(t *testing.T) {
		e, dept, u := setup(t, Unsettled{})
		if b := e.must(200, "GET", "/department/"+dept, nil); !strings.HasPrefix(b, `{"response":{`) {
			t.Errorf("single object: %s", b)
		}
		e.must(200, "POST", "/user/"+u, map[string]any{"fields": map[string]string{"login": "a@acme.ru", "job_title": "X"}})
		if b := e.must(400, "DELETE", "/department/"+e.root, nil); !strings.Contains(b, "root") {
			t.Errorf("refusal: %s", b)
		}
		if b := e.must(200, "GET", "/department/"+e.root, nil, "Accept", ""); !strings.HasPrefix(b, "<?xml") || strings.Contains(b, "parentDepartmentId") {
			t.Errorf("no Accept: %s", b)
		}
		if b := e.must(201, "POST", "/department", map[string]string{"name": "A", "parentDepartmentId": e.root}); !strings.HasPrefix(b, `"`) {
			t.Errorf("create: %s", b)
		}
		if b := e.must(201, "POST", "/department", map[string]string{"name": "B", "parentDepartmentId": e.root}, "X-Return-Object", "true"); !strings.Contains(b, `"departmentId"`) {
			t.Errorf("create with X-Return-Object: %s", b)
		}
	})
	t.Run("flipped", func(t *testing.T) {
		e, dept, u := setup(t, Unsettled{BareSingleObject: true, UserUpdate204: true, RefusedDelete409: true, TerseErrors: true,
			JSONByDefault: true, RootParent: RootParentNull, ReturnObject: ReturnObjectIgnored})
		if b := e.must(200, "GET", "/department/"+dept, nil); !strings.HasPrefix(b, `{"departmentId"`) {
			t.Errorf("single object: %s", b)
		}
		e.must(204, "POST", "/user/"+u, map[string]any{"fields": map[string]string{"login": "a@acme.ru", "job_title": "X"}})
		if b := e.must(409, "DELETE", "/department/"+e.root, nil); !strings.Contains(b, `"message":"Conflict"`) {
			t.Errorf("refusal: %s", b)
		}
		if b := e.must(200, "GET", "/department/"+e.root, nil, "Accept", ""); !strings.Contains(b, `"parentDepartmentId":null`) {
			t.Errorf("no Accept: %s", b)
		}
		if b := e.must(201, "POST", "/department", map[string]string{"name": "B", "parentDepartmentId": e.root}, "X-Return-Object", "true"); !strings.HasPrefix(b, `"`) {
			t.Errorf("create with X-Return-Object ignored: %s", b)
		}
	})
	t.Run("password required", func(t *testing.T) {
		e, dept, u := setup(t, Unsettled{PasswordRequired: true})
		f := map[string]string{"login": "b@acme.ru", "first_name": "B", "last_name": "B"}
		if b := e.must(400, "POST", "/user", map[string]any{"departmentId": dept, "fields": f}); !strings.Contains(b, "password") {
			t.Errorf("refusal names no field: %s", b)
		}
		e.must(201, "POST", "/user", map[string]any{"departmentId": dept, "fields": f, "password": "Secret-1"})
		st := e.state()
		if got, _ := st.UserByLogin("b@acme.ru"); !got.HasPassword {
			t.Errorf("created with a password: %+v", got)
		}
		if seeded, _ := st.UserByLogin("a@acme.ru"); seeded.ID != u || seeded.HasPassword {
			t.Errorf("created without one: %+v", seeded)
		}
	})
	for rp, want := range map[RootParent]string{RootParentEmpty: `"parentDepartmentId":""`, RootParentNilUUID: nilUUID, RootParentSelf: "self"} {
		e, _, _ := setup(t, Unsettled{RootParent: rp, ReturnObject: ReturnObjectAlways})
		if want == "self" {
			want = `"parentDepartmentId":"` + e.root + `"`
		}
		if b := e.must(200, "GET", "/departments", nil); !strings.Contains(b, want) {
			t.Errorf("root parent %d: %s", rp, b)
		}
		if b := e.must(201, "POST", "/department", map[string]string{"name": "A", "parentDepartmentId": e.root}); !strings.Contains(b, `"departmentId"`) {
			t.Errorf("create with the object always: %s", b)
		}
	}
}

// TestRootSubordination checks each answer RootSubordination gives to the
// root's links: kept, refused with its status and an ErrorResponse (the
// root unchanged), or 204 with nothing changed; other departments keep
// theirs every time, and a request that asks the root for no supervisor is
// taken by every choice.
func TestRootSubordination(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		rs     RootSubordination
		status int
		kept   bool
	}{
		{"kept", RootSubKept, 204, true},
		{"refused 400", RootSub400, 400, false},
		{"refused 403", RootSub403, 403, false},
		{"refused 409", RootSub409, 409, false},
		{"ignored", RootSubIgnored, 204, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{RootSubordination: tc.rs}}, AccountOptions{})
			dept := e.createDept("Sales", e.root, "c-1")
			head := e.createUser(dept, "head@acme.ru", nil)
			links := map[string]any{
				"subordination":   map[string]string{"subordinationType": "no_supervisor"},
				"coSubordination": map[string]string{"subordinationType": "manual", "supervisorId": head},
			}
			for _, accept := range []string{"application/json", "application/xml"} {
				got, b := e.call("POST", "/department/"+e.root+"/subordination", links, "Accept", accept)
				if got != tc.status {
					t.Fatalf("%s: status %d, want %d: %s", accept, got, tc.status, b)
				}
				if tc.status != 204 {
					want := `{"code":` + itoa(tc.status) + `,"message":"`
					if accept == "application/xml" {
						want = "<response><code>" + itoa(tc.status) + "</code><message>"
					}
					if !strings.Contains(b, want) {
						t.Errorf("%s: body %s, want an ErrorResponse", accept, b)
					}
				}
			}
			root, _ := e.state().Department(e.root)
			if kept := root.CoSubordination == (Subordination{Type: "manual", SupervisorID: head}); kept != tc.kept {
				t.Errorf("root's functional manager %+v, kept %v, want %v", root.CoSubordination, kept, tc.kept)
			}
			if !tc.kept && root.Subordination.Type != "no_supervisor" && root.Subordination.Type != "" {
				t.Errorf("root's supervisor %+v, want none", root.Subordination)
			}
			e.must(204, "POST", "/department/"+dept+"/subordination", links)
			if d, _ := e.state().Department(dept); d.CoSubordination != (Subordination{Type: "manual", SupervisorID: head}) {
				t.Errorf("other department's functional manager %+v", d.CoSubordination)
			}
			e.must(204, "POST", "/department/"+e.root+"/subordination",
				map[string]any{"coSubordination": map[string]string{"subordinationType": "no_supervisor"}})
			// A bad request reads the same on the root as elsewhere.
			e.must(400, "POST", "/department/"+e.root+"/subordination",
				map[string]any{"coSubordination": map[string]string{"subordinationType": "manual"}})
			sent := e.sim.Sent(e.acct)
			if n := len(sent); n != 5 || sent[0].ID != e.root || sent[0].Route != "POST /department/{id}/subordination" || sent[0].Status != tc.status {
				t.Errorf("sent log: %+v", sent)
			}
		})
	}
}

// TestLongValues checks each LongValues choice on department creates and
// renames and on user creates and updates, counting runes, not bytes: a
// value within the limit is stored whole every time, a longer one is kept,
// cut to the limit or refused with 400 naming the problem.
func TestLongValues(t *testing.T) {
	t.Parallel()
	const limit = 10
	long := strings.TrimSpace(strings.Repeat("Отдел ", 4)) // 23 runes
	short := strings.Repeat("й", limit)                    // at the limit in runes, over it in bytes
	cut := strings.TrimSpace(long[:len("Отдел Отде")])     // its first 10 runes
	for _, tc := range []struct {
		lv   LongValues
		want string // the stored long value; "" for refused
	}{{LongValuesKept, long}, {LongValuesCut, cut}, {LongValuesRefused, ""}} {
		e := newEnv(t, AccountOptions{ExtraFields: []string{"USER_DEFINED_FIELD1"}})
		dept := e.createDept("Sales", e.root, "c-1")
		u := e.createUser(dept, "a@acme.ru", nil)
		e.sim.opts.Unsettled = Unsettled{LongValues: tc.lv, ValueLimit: limit}
		ok := func(status int) int {
			if tc.want == "" {
				return 400
			}
			return status
		}
		for _, c := range []struct {
			status       int
			method, path string
			body         any
		}{
			{ok(201), "POST", "/department", map[string]string{"name": long, "parentDepartmentId": e.root}},
			{ok(204), "POST", "/department/" + dept, map[string]string{"name": " " + long}},
			{ok(201), "POST", "/user", map[string]any{"departmentId": dept, "fields": map[string]string{"login": "b@acme.ru",
				"first_name": short, "last_name": long, "job_title": long, "user_defined_field1": long}}},
			{ok(200), "POST", "/user/" + u, map[string]any{"fields": map[string]string{"login": "a@acme.ru", "phone": long}}},
			{201, "POST", "/department", map[string]string{"name": short, "parentDepartmentId": e.root}},
		} {
			if b := e.must(c.status, c.method, c.path, c.body); c.status == 400 && !strings.Contains(b, "too long") {
				t.Errorf("%d %s %s: refusal %s", tc.lv, c.method, c.path, b)
			}
		}

		st := e.state()
		var names []string
		for _, d := range st.Departments {
			names = append(names, d.Name)
		}
		owner, _ := st.UserByLogin("a@acme.ru")
		created, found := st.UserByLogin("b@acme.ru")
		if tc.want == "" {
			if len(names) != 3 || names[1] != "Sales" || names[2] != short || found || owner.Fields["phone"] != "" {
				t.Errorf("refused, yet stored: %q, %+v, %+v", names, created, owner)
			}
			continue
		}
		if len(names) != 4 || names[1] != tc.want || names[2] != tc.want || names[3] != short {
			t.Errorf("%d: departments %q, want %q", tc.lv, names, tc.want)
		}
		for _, k := range []string{"last_name", "job_title", "user_defined_field1"} {
			if created.Fields[k] != tc.want {
				t.Errorf("%d: %s %q, want %q", tc.lv, k, created.Fields[k], tc.want)
			}
		}
		if created.Fields["first_name"] != short || owner.Fields["phone"] != tc.want {
			t.Errorf("%d: first name %q, phone %q", tc.lv, created.Fields["first_name"], owner.Fields["phone"])
		}
	}
}

// TestUpdateNeedsLogin checks UpdateNeedsLogin: a user update that sends no
// fields.login is refused even when it carries only a department, and one
// with the login goes through; by default only the first kind with fields
// is refused.
func TestUpdateNeedsLogin(t *testing.T) {
	t.Parallel()
	for _, strict := range []bool{false, true} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{UpdateNeedsLogin: strict}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "c-1")
		u := e.createUser(e.root, "a@acme.ru", nil)
		want := 200
		if strict {
			want = 400
		}
		if b := e.must(want, "POST", "/user/"+u, map[string]any{"departmentId": dept}); strict && !strings.Contains(b, "login") {
			t.Errorf("refusal names no field: %s", b)
		}
		e.must(400, "POST", "/user/"+u, map[string]any{"departmentId": dept, "fields": map[string]string{"job_title": "X"}})
		e.must(200, "POST", "/user/"+u, map[string]any{"departmentId": dept, "fields": map[string]string{"login": "a@acme.ru"}})
		if got, _ := e.state().UserByLogin("a@acme.ru"); got.DepartmentID != dept {
			t.Errorf("strict %v: department %s, want %s", strict, got.DepartmentID, dept)
		}
	}
}

// TestUnknownID400 checks UnknownID400: an unknown department or user in
// the path is refused with 404 by default and with 400 under the switch,
// as an ErrorResponse, except on the move routes, which answer 404 either way.
func TestUnknownID400(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{UnknownID400: on}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "c-1")
		want := 404
		if on {
			want = 400
		}
		for _, c := range []struct {
			status       int
			method, path string
			body         any
		}{
			{want, "GET", "/department/nope", nil},
			{want, "POST", "/department/nope", map[string]string{"name": "X"}},
			{want, "DELETE", "/department/nope", nil},
			{want, "POST", "/department/nope/subordination", map[string]any{"subordination": map[string]string{"subordinationType": "inherit"}}},
			{want, "GET", "/user/nope/v2", nil},
			{want, "POST", "/user/nope", map[string]any{"fields": map[string]string{"login": "x"}}},
			{want, "POST", "/user/nope/status", map[string]int{"status": 3}},
			{want, "POST", "/user/nope/subordination", map[string]any{"subordination": map[string]string{"subordinationType": "inherit"}}},
			{404, "POST", "/department/" + dept + "/user/move", map[string]any{"userIds": []string{"nope"}}},
			{404, "POST", "/department/nope/department/move", map[string]any{"departmentIds": []string{dept}}},
		} {
			if b := e.must(c.status, c.method, c.path, c.body); !strings.Contains(b, `"code":`+itoa(c.status)) || !strings.Contains(b, "nope") {
				t.Errorf("UnknownID400=%v %s %s: %s", on, c.method, c.path, b)
			}
		}
	}
}

// TestLastPage checks each LastPage choice on both paged listings, in JSON
// and XML: the last page has no token, an empty one or a null one, or, for
// a full last page, a token naming an empty page that has none.
func TestLastPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lp         LastPage
		json, xml  string // on the last page with objects
		emptyAfter bool
	}{
		{LastPageNoToken, "", "", false},
		{LastPageEmpty, `"nextPageToken":""`, "<nextPageToken></nextPageToken>", false},
		{LastPageNull, `"nextPageToken":null`, "", false},
		{LastPageAfterFull, `"nextPageToken":"`, "<nextPageToken>", true},
	} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{LastPage: tc.lp}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "c-1")
		e.createDept("HR", e.root, "c-2")
		e.createDept("IT", e.root, "c-3")
		for _, l := range []string{"a@x.ru", "b@x.ru", "c@x.ru"} {
			e.createUser(dept, l, nil)
		}
		for _, list := range []struct{ path, key string }{
			{"/departments?pageSize=2", "departments"},                     // root and 3: two full pages
			{"/users/v2?pageSize=2&departments[]=" + dept, "userProfiles"}, // 3: a full page and one of 1
		} {
			for _, accept := range []string{"application/json", "application/xml"} {
				var bodies []string
				tok := ""
				for len(bodies) < 5 {
					q := list.path
					if tok != "" {
						q += "&pageToken=" + url.QueryEscape(tok)
					}
					b := e.must(200, "GET", q, nil, "Accept", accept)
					bodies = append(bodies, b)
					var m map[string]any
					if accept == "application/json" {
						if err := json.Unmarshal([]byte(b), &m); err != nil {
							t.Fatal(err)
						}
						tok, _ = m["nextPageToken"].(string)
					} else {
						var x struct {
							Next string `xml:"nextPageToken"`
						}
						if err := xml.Unmarshal([]byte(b), &x); err != nil {
							t.Fatal(err)
						}
						tok = x.Next
					}
					if tok == "" {
						break
					}
				}
				n := 2
				full := list.key == "departments"
				if tc.emptyAfter && full {
					n = 3
				}
				if len(bodies) != n {
					t.Fatalf("%d %s %s: %d pages: %q", tc.lp, list.path, accept, len(bodies), bodies)
				}
				last := bodies[1]
				want := tc.json
				if accept != "application/json" {
					want = tc.xml
				}
				switch {
				case tc.emptyAfter && !full:
					if strings.Contains(last, "nextPageToken") {
						t.Errorf("%d %s %s: a page that is not full has a token: %s", tc.lp, list.path, accept, last)
					}
				case want == "":
					if strings.Contains(last, "nextPageToken") {
						t.Errorf("%d %s %s: last page %s, want no token", tc.lp, list.path, accept, last)
					}
				case !strings.Contains(last, want):
					t.Errorf("%d %s %s: last page %s, want %s", tc.lp, list.path, accept, last, want)
				}
				if n == 3 && (strings.Contains(bodies[2], "nextPageToken") || strings.Contains(bodies[2], "departmentId")) {
					t.Errorf("%d %s: page after the full last one: %s", tc.lp, accept, bodies[2])
				}
			}
		}
	}
}

// TestDepartmentCodes checks CodeFilter (how GET /department?code= matches)
// and UniqueCodes (a code used twice on create and on update).
func TestDepartmentCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cf   CodeFilter
		want int // departments found for "b24-m-2" among b24-m-2, B24-M-20, x and the root
	}{{CodeFilterExact, 1}, {CodeFilterContains, 2}, {CodeFilterIgnored, 4}} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{CodeFilter: tc.cf}}, AccountOptions{})
		e.createDept("A", e.root, "b24-m-2")
		e.createDept("B", e.root, "B24-M-20")
		e.createDept("C", e.root, "x")
		if b := e.must(200, "GET", "/department?code=b24-m-2", nil); strings.Count(b, `"departmentId"`) != tc.want {
			t.Errorf("code filter %d: %s, want %d departments", tc.cf, b, tc.want)
		}
	}
	for _, tc := range []struct {
		uc     Clash
		status int
	}{{ClashAllowed, 0}, {Clash400, 400}, {Clash409, 409}} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{UniqueCodes: tc.uc}}, AccountOptions{})
		a := e.createDept("A", e.root, "c-1")
		b := e.createDept("B", e.root, "c-2")
		create, update := 201, 204
		if tc.status != 0 {
			create, update = tc.status, tc.status
		}
		e.must(create, "POST", "/department", map[string]string{"name": "C", "parentDepartmentId": e.root, "code": "c-1"})
		e.must(update, "POST", "/department/"+b, map[string]string{"code": "c-1"})
		e.must(204, "POST", "/department/"+a, map[string]string{"code": "c-1", "name": "A2"}) // its own code
		e.must(201, "POST", "/department", map[string]string{"name": "D", "parentDepartmentId": e.root})
		e.must(201, "POST", "/department", map[string]string{"name": "E", "parentDepartmentId": e.root})
		want := 1
		if tc.status == 0 {
			want = 3 // A, C and B recoded
		}
		if n := len(e.state().DepartmentsByCode("c-1")); n != want {
			t.Errorf("unique codes %d: %d departments with c-1", tc.uc, n)
		}
	}
}

// TestMoveKey checks MoveKey: a department move reads its IDs under either
// spelling, only departmentIds, or only the OAS's departmnetIds, and a body
// without the key read is refused naming it.
func TestMoveKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mk                MoveKey
		correct, misspelt int
		name              string
	}{{MoveKeyEither, 204, 204, "departmentIds"}, {MoveKeyCorrect, 204, 400, "departmentIds"}, {MoveKeyMisspelt, 400, 204, "departmnetIds"}} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{MoveKey: tc.mk}}, AccountOptions{})
		a := e.createDept("A", e.root, "c-1")
		b := e.createDept("B", e.root, "c-2")
		if body := e.must(tc.correct, "POST", "/department/"+a+"/department/move", map[string]any{"departmentIds": []string{b}}); tc.correct == 400 && !strings.Contains(body, tc.name) {
			t.Errorf("%d: refusal %s names no %s", tc.mk, body, tc.name)
		}
		if body := e.must(tc.misspelt, "POST", "/department/"+e.root+"/department/move", map[string]any{"departmnetIds": []string{b}}); tc.misspelt == 400 && !strings.Contains(body, tc.name) {
			t.Errorf("%d: refusal %s names no %s", tc.mk, body, tc.name)
		}
		e.must(204, "POST", "/department/"+a+"/department/move", map[string]any{"departmentIds": []string{b}, "departmnetIds": []string{b}})
		if d, _ := e.state().Department(b); d.ParentID != a {
			t.Errorf("%d: B under %s, want %s", tc.mk, d.ParentID, a)
		}
	}
}

// TestExactFilters checks ExactFilters: the logins[] and emails[] filters
// ignore letter case by default and match it under the switch.
func TestExactFilters(t *testing.T) {
	t.Parallel()
	for _, exact := range []bool{false, true} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{ExactFilters: exact}}, AccountOptions{})
		e.createUser(e.root, "Klaus.Weber@Example.com", map[string]string{"email": "Klaus.Weber@Example.com"})
		for _, q := range []string{"logins[]=klaus.weber%40example.com", "emails[]=klaus.weber%40example.com"} {
			want := 1
			if exact {
				want = 0
			}
			if b := e.must(200, "GET", "/users/v2?"+q, nil); strings.Count(b, `"userId"`) != want {
				t.Errorf("exact %v, %s: %s", exact, q, b)
			}
		}
		for _, q := range []string{"logins[]=Klaus.Weber%40Example.com", "emails[]=Klaus.Weber%40Example.com"} {
			if b := e.must(200, "GET", "/users/v2?"+q, nil); strings.Count(b, `"userId"`) != 1 {
				t.Errorf("exact %v, %s: %s", exact, q, b)
			}
		}
	}
}

// TestRootLinks checks each RootLinks choice in every read that carries a
// department's links, in JSON and in XML: the root's link that names nobody
// reads no_supervisor, inherit or not at all; its manual link, and every
// other department's links, read as stored.
func TestRootLinks(t *testing.T) {
	t.Parallel()
	for rl, want := range map[RootLinks]string{RootLinksNoSupervisor: "no_supervisor", RootLinksInherit: "inherit", RootLinksAbsent: ""} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{RootLinks: rl}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "c-1")
		head := e.createUser(dept, "head@acme.ru", nil)
		e.must(204, "POST", "/department/"+e.root+"/subordination",
			map[string]any{"coSubordination": map[string]string{"subordinationType": "manual", "supervisorId": head}})
		for _, accept := range []string{"application/json", "application/xml"} {
			for _, path := range []string{"/department", "/departments", "/department/" + e.root, "/department/" + dept} {
				b := e.must(200, "GET", path, nil, "Accept", accept)
				var v any
				if accept == "application/json" {
					if err := json.Unmarshal([]byte(b), &v); err != nil {
						t.Fatal(err)
					}
				} else if x, err := parseXML([]byte(b)); err != nil {
					t.Fatal(err)
				} else {
					v = x
				}
				if root := findDept(v, e.root); root != nil {
					if got := linkType(root, "subordination"); got != want {
						t.Errorf("%d %s %s: root's subordination %q, want %q: %s", rl, accept, path, got, want, b)
					}
					if got := linkType(root, "coSubordination"); got != "manual" {
						t.Errorf("%d %s %s: root's coSubordination %q, want manual: %s", rl, accept, path, got, b)
					}
				} else if path != "/department/"+dept {
					t.Errorf("%d %s %s: no root in %s", rl, accept, path, b)
				}
				if d := findDept(v, dept); d != nil && (linkType(d, "subordination") != "inherit" || linkType(d, "coSubordination") != "inherit") {
					t.Errorf("%d %s %s: other department's links %v", rl, accept, path, d)
				}
			}
		}
	}
}

// findDept is the object of department id in a decoded answer, nil if none.
func findDept(v any, id string) map[string]any {
	switch t := v.(type) {
	case map[string]any:
		if s, _ := getStr(t, "departmentId"); s == id {
			return t
		}
		for _, x := range t {
			if d := findDept(x, id); d != nil {
				return d
			}
		}
	case []any:
		for _, x := range t {
			if d := findDept(x, id); d != nil {
				return d
			}
		}
	}
	return nil
}

// linkType is a department object's link key's subordinationType, "" when
// the key is missing.
func linkType(d map[string]any, key string) string {
	o, _ := d[key].(map[string]any)
	s, _ := getStr(o, "subordinationType")
	return s
}

// TestThrottle checks each form of a refusal for load as sent.
func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 500_000_000, time.UTC)
	for _, c := range []struct {
		th         Throttle
		status     int
		retryAfter string
	}{
		{ThrottleSeconds, http.StatusTooManyRequests, "2"},
		{ThrottleNoHeader, http.StatusTooManyRequests, ""},
		{ThrottleDate, http.StatusTooManyRequests, "Wed, 02 Dec 2026 10:00:02 GMT"},
		{Throttle503, http.StatusServiceUnavailable, "2"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/user", nil)
		r.Header.Set("Accept", "application/json")
		c.th.writeThrottled(w, r, 1500*time.Millisecond, now)
		if w.Code != c.status || w.Header().Get("Retry-After") != c.retryAfter || !strings.Contains(w.Body.String(), `"code":`) {
			t.Errorf("throttle %d: %d, Retry-After %q, body %s", c.th, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
}

// TestBulkUnknown checks each answer Unsettled.BulkUnknown gives a call on a
// list of users that names one Learn does not have.
func TestBulkUnknown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bu      BulkUnknown
		status  int
		applied bool
	}{{BulkUnknownRefused, 404, false}, {BulkUnknownIgnored, 200, true}, {BulkUnknownPartial, 404, true}} {
		e := newEnvWith(t, Options{Unsettled: Unsettled{BulkUnknown: tc.bu}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "")
		other := e.createDept("Support", e.root, "")
		u := e.createUser(dept, "a@acme.ru", nil)
		ids := map[string][]string{"userIds": {u, "nope"}}
		moveStatus := tc.status
		if moveStatus == 200 {
			moveStatus = 204
		}
		if got, b := e.call("POST", "/department/"+other+"/user/move", ids); got != moveStatus {
			t.Errorf("%d: move: %d %s, want %d", tc.bu, got, b, moveStatus)
		}
		if got, b := e.call("POST", "/users/deactivate", ids); got != tc.status {
			t.Errorf("%d: deactivate: %d %s, want %d", tc.bu, got, b, tc.status)
		}
		st := e.state()
		got, _ := st.UserByLogin("a@acme.ru")
		if moved := got.DepartmentID == other; moved != tc.applied || (got.Status == 3) != tc.applied {
			t.Errorf("%d: the known user: %+v, want applied %v", tc.bu, got, tc.applied)
		}
		if got, b := e.call("POST", "/department/nope/user/move", map[string][]string{"userIds": {"nope"}}); got != 404 {
			t.Errorf("%d: move into an unknown department: %d %s", tc.bu, got, b)
		}
	}
}

// TestRoleReads checks what NoRoleReads and EmptyUserRoles leave of a user
// read's roles, in JSON and XML: the keys gone, or there and empty.
func TestRoleReads(t *testing.T) {
	t.Parallel()
	keys := []string{"role", "roleId", "userRoles", "manageableDepartmentIds"}
	for _, tc := range []struct {
		name string
		u    Unsettled
		want string // what each key reads: "absent", "empty" or "shown"
	}{{"default", Unsettled{}, "shown"}, {"no role", Unsettled{NoRoleReads: true}, "absent"},
		{"empty roles", Unsettled{EmptyUserRoles: true}, "empty"}} {
		e := newEnvWith(t, Options{Unsettled: tc.u}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "")
		u := e.createUser(dept, "a@acme.ru", nil)
		if err := e.sim.SetRole(acct, u, "department_administrator"); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetManaged(acct, u, dept); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Response map[string]json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(e.must(200, "GET", "/user/"+u+"/v2", nil)), &got); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			raw, ok := got.Response[k]
			state := "shown"
			switch {
			case !ok:
				state = "absent"
			case string(raw) == `""` || string(raw) == `[]`:
				state = "empty"
			}
			if k == "manageableDepartmentIds" && tc.want == "empty" && state == "absent" {
				state = "empty" // left out when it lists none, as for a learner
			}
			if k == "userRoles" && tc.want == "shown" && state == "empty" {
				state = "shown" // the role is in role by default
			}
			if state != tc.want {
				t.Errorf("%s: %s is %s (%s), want %s", tc.name, k, state, raw, tc.want)
			}
		}
		x := e.must(200, "GET", "/user/"+u+"/v2", nil, "Accept", "application/xml")
		if has := strings.Contains(x, "<role>department_administrator</role>"); has != (tc.want == "shown") {
			t.Errorf("%s: XML role shown %v: %s", tc.name, has, x)
		}
		if has := strings.Contains(x, "<role"); has == (tc.want == "absent") {
			t.Errorf("%s: XML role key there %v: %s", tc.name, has, x)
		}
	}
}

// TestOwnerRefusal checks the status a deactivation, a termination or a
// delete of the account owner is refused with, and that the others of a
// bulk call stay as they were.
func TestOwnerRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		u      Unsettled
		status int
	}{{Unsettled{}, 400}, {Unsettled{RefusedDelete403: true}, 403}} {
		e := newEnvWith(t, Options{Unsettled: tc.u}, AccountOptions{})
		u := e.createUser(e.root, "a@acme.ru", nil)
		owner := e.state().OwnerID
		for _, c := range []struct{ method, path string }{{"POST", "/users/deactivate"}, {"POST", "/users/terminate"}, {"DELETE", "/user/" + owner}} {
			var body any
			if c.method == "POST" {
				body = map[string][]string{"userIds": {u, owner}}
			}
			if got, b := e.call(c.method, c.path, body); got != tc.status || !strings.Contains(b, "owner") {
				t.Errorf("RefusedDelete403 %v: %s %s: %d %s, want %d", tc.u.RefusedDelete403, c.method, c.path, got, b, tc.status)
			}
		}
		e.must(tc.status, "POST", "/user/"+owner+"/status", map[string]int{"status": 3})
		for _, x := range e.state().Users {
			if x.Status != 1 {
				t.Errorf("RefusedDelete403 %v: user %s has status %d", tc.u.RefusedDelete403, x.ID, x.Status)
			}
		}
	}
}

// TestSupervisorReads checks that a caller who only supervises is refused
// everything by default, and under SupervisorReads may read but not write.
func TestSupervisorReads(t *testing.T) {
	t.Parallel()
	for _, reads := range []bool{false, true} {
		e := newEnvWith(t, Options{Unsettled: Unsettled{SupervisorReads: reads}}, AccountOptions{})
		dept := e.createDept("Sales", e.root, "")
		u := e.createUser(dept, "a@acme.ru", nil)
		if err := e.sim.SetSupervisor(acct, dept, u, false); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetCaller(acct, u); err != nil {
			t.Fatal(err)
		}
		want := 403
		if reads {
			want = 200
		}
		e.must(want, "GET", "/departments", nil)
		e.must(403, "POST", "/department", map[string]string{"name": "A", "parentDepartmentId": e.root})
	}
}

package learnsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// strictEnv is an account with a department and a user, served with
// StrictRequests as given.
func strictEnv(t *testing.T, strict bool) (e *env, dept, user string) {
	t.Helper()
	e = newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{StrictRequests: strict}},
		AccountOptions{ExtraFields: []string{"user_defined_field1"}, ClientID: "cid", ClientSecret: "cs"})
	dept = e.createDept("Sales", e.root, "c-1")
	user = e.createUser(dept, "a@acme.ru", nil)
	return e, dept, user
}

// TestStrictRequestsRefuse checks that StrictRequests refuses each kind of
// request that strays from the API description with a 400 naming what
// strayed, changing nothing, while by default the same request is served.
func TestStrictRequestsRefuse(t *testing.T) {
	t.Parallel()
	type stray struct {
		name         string
		method, path string // path may hold {dept} and {user}
		body         any
		hdr          []string
		names        string // the refusal's message names it
		lenient      int    // the status without the switch
	}
	fields := func(extra map[string]any) map[string]any {
		f := map[string]any{"login": "b@acme.ru", "first_name": "B", "last_name": "B"}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	create := func(f any, extra map[string]any) map[string]any {
		m := map[string]any{"departmentId": "{dept}", "fields": f, "sendLoginEmail": false}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []stray{
		{"unknown query parameter", "GET", "/departments?pageSize=10&sort=name", nil, nil, "sort", 200},
		{"filter without brackets", "GET", "/users/v2?departments={dept}", nil, nil, "departments", 200},
		{"userIds[] on the v1 list", "GET", "/users?userIds[]={user}", nil, nil, "userIds[]", 200},
		{"query on a write", "POST", "/department?dryRun=1", map[string]any{"name": "Q", "parentDepartmentId": "{root}"}, nil, "dryRun", 201},
		{"unknown body key", "POST", "/department", map[string]any{"name": "X", "parentDepartmentId": "{root}", "colour": "red"}, nil, "colour", 201},
		{"unknown body key in XML", "POST", "/department", "<request><name>X2</name><parentDepartmentId>{root}</parentDepartmentId><colour>red</colour></request>", nil, "colour", 201},
		{"unknown update key", "POST", "/user/{user}", map[string]any{"fields": map[string]any{"login": "a@acme.ru"}, "status": 3}, nil, "status", 200},
		{"unknown fields key", "POST", "/user", create(fields(map[string]any{"nickname": "Bee"}), nil), nil, "fields.nickname", 400}, // an unknown profile field is refused either way
		{"fields key in upper case", "POST", "/user", create(map[string]any{"LOGIN": "c@acme.ru", "first_name": "C", "last_name": "C"}, nil), nil, "fields.LOGIN", 201},
		{"fields as a name/value list", "POST", "/user", create([]map[string]string{{"name": "login", "value": "d@acme.ru"},
			{"name": "first_name", "value": "D"}, {"name": "last_name", "value": "D"}}, nil), nil, "fields", 201},
		{"fields value not a string", "POST", "/user/{user}", map[string]any{"fields": map[string]any{"login": "a@acme.ru", "phone": 5551234}}, nil, "fields.phone", 200},
		{"boolean as a string", "POST", "/user", create(fields(map[string]any{"login": "e@acme.ru"}), map[string]any{"sendLoginEmail": "false"}), nil, "sendLoginEmail", 201},
		{"boolean as other text in XML", "POST", "/user", "<request><departmentId>{dept}</departmentId><fields><login>f@acme.ru</login><first_name>F</first_name><last_name>F</last_name></fields><sendLoginEmail>no</sendLoginEmail></request>", nil, "sendLoginEmail", 201},
		{"string as a number", "POST", "/department/{dept}", map[string]any{"code": 17}, nil, "code", 204},
		{"string as null", "POST", "/department/{dept}", map[string]any{"name": "Sales", "code": nil}, nil, "code", 204},
		{"ID list as one string", "POST", "/users/deactivate", map[string]any{"userIds": "{user}"}, nil, "userIds", 200},
		{"ID list in XML without <id>", "POST", "/department/{dept}/user/move", "<request><userIds><userId>{user}</userId></userIds></request>", nil, "userIds", 204},
		{"unknown key in a link", "POST", "/user/{user}/subordination", map[string]any{"subordination": map[string]any{"subordinationType": "no_supervisor", "since": "2024-01-01"}}, nil, "subordination.since", 204},
		{"link as a string", "POST", "/department/{dept}/subordination", map[string]any{"coSubordination": "inherit"}, nil, "coSubordination", 400},
		{"body on a GET", "GET", "/department/{dept}", `{"name":"x"}`, nil, "GET", 200},
		{"body on a DELETE", "DELETE", "/user/{user}", `{"force":true}`, nil, "DELETE", 204},
		{"no Content-Type", "POST", "/department/{dept}", map[string]any{"name": "Sales 2"}, []string{"Content-Type", ""}, "Content-Type", 204},
		{"Content-Type not listed", "POST", "/department/{dept}", map[string]any{"name": "Sales 3"}, []string{"Content-Type", "text/plain"}, "Content-Type", 204},
		{"JSON to the XML-only POST /users/v2", "POST", "/users/v2", map[string]any{"logins": []string{"a@acme.ru"}}, nil, "Content-Type", 200},
	}
	for _, strict := range []bool{true, false} {
		e, dept, user := strictEnv(t, strict)
		fill := strings.NewReplacer("{dept}", dept, "{user}", user, "{root}", e.root)
		before := e.state()
		for _, c := range cases {
			body := c.body
			if body != nil {
				if s, ok := body.(string); ok {
					body = fill.Replace(s)
				} else {
					raw, _ := json.Marshal(body)
					body = fill.Replace(string(raw))
					if !strings.HasPrefix(body.(string), "<") {
						body = json.RawMessage(body.(string))
					}
				}
			}
			got, b := e.call(c.method, fill.Replace(c.path), body, c.hdr...)
			switch {
			case !strict && got != c.lenient:
				t.Errorf("%s without the switch: status %d, want %d: %s", c.name, got, c.lenient, b)
			case strict && got != http.StatusBadRequest:
				t.Errorf("%s: status %d, want 400: %s", c.name, got, b)
			case strict && !strings.Contains(b, c.names):
				t.Errorf("%s: the refusal does not name %s: %s", c.name, c.names, b)
			}
		}
		if got := len(e.sim.Strays(e.acct)); strict && got != len(cases) || !strict && got != 0 {
			t.Errorf("strict %v: %d strays logged for %d cases: %q", strict, got, len(cases), e.sim.Strays(e.acct))
		}
		after := e.state()
		a, _ := after.UserByLogin("a@acme.ru")
		d, _ := after.Department(dept)
		if strict && (len(after.Departments) != len(before.Departments) || len(after.Users) != len(before.Users) ||
			a.Status != 1 || a.DepartmentID != dept || d.Name != "Sales" || d.Code != "c-1") {
			t.Errorf("refused requests changed the account: %+v", after)
		}
	}
}

// TestStrictRequestsToken checks the token endpoint: its form's three keys
// and nothing else.
func TestStrictRequestsToken(t *testing.T) {
	t.Parallel()
	e, _, _ := strictEnv(t, true)
	post := func(path, ct, form string) (int, string) {
		t.Helper()
		res, err := http.Post(e.srv.URL+path, ct, strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	const form = "client_id=cid&client_secret=cs&grant_type=client_credentials"
	const urlenc = "application/x-www-form-urlencoded"
	if got, b := post("/api/v3/token", urlenc, form); got != 200 || !strings.Contains(b, "access_token") {
		t.Errorf("the form: %d %s", got, b)
	}
	for _, c := range []struct{ name, path, ct, form, names string }{
		{"unknown key", "/api/v3/token", urlenc, form + "&scope=all", "scope"},
		{"query parameter", "/api/v3/token?client_id=cid", urlenc, form, "client_id"},
		{"JSON body", "/api/v3/token", "application/json", form, "Content-Type"},
	} {
		if got, b := post(c.path, c.ct, c.form); got != 400 || !strings.Contains(b, c.names) {
			t.Errorf("%s: %d %s", c.name, got, b)
		}
	}
}

// TestStrictRequestsAccept sends every route the simulator serves in the
// form the API description gives it, with every parameter it lists, in JSON
// and where it matters XML: all are served under StrictRequests.
func TestStrictRequestsAccept(t *testing.T) {
	t.Parallel()
	e, dept, user := strictEnv(t, true)
	q := url.QueryEscape
	other := e.createDept("Other", e.root, "c-2")
	boss := e.createUser(dept, "boss@acme.ru", map[string]string{"job_title": "Head", "phone": "+7 900", "user_defined_field1": "x"})
	e.must(201, "POST", "/department", "<request><name>Ops</name><parentDepartmentId>"+e.root+"</parentDepartmentId><code>c-3</code></request>")
	e.must(204, "POST", "/department/"+other, map[string]any{"name": "Other 2", "parentDepartmentId": e.root, "code": "c-2b"})
	e.must(204, "POST", "/department/"+other+"/subordination", map[string]any{
		"subordination":   map[string]any{"subordinationType": "manual", "supervisorId": boss},
		"coSubordination": map[string]any{"subordinationType": "inherit"}})
	e.must(204, "POST", "/department/"+dept+"/subordination", "<request><subordination><subordinationType>manual</subordinationType>"+
		"<supervisorId>"+boss+"</supervisorId></subordination><coSubordination><subordinationType>no_supervisor</subordinationType></coSubordination></request>")
	e.must(204, "POST", "/department/"+dept+"/department/move", map[string]any{"departmentIds": []string{other}, "departmnetIds": []string{other}})
	e.must(204, "POST", "/department/"+e.root+"/department/move", "<request><departmentIds><id>"+other+"</id></departmentIds></request>")

	newUser := e.must(201, "POST", "/user", map[string]any{"departmentId": dept, "fields": map[string]any{"login": "n@acme.ru",
		"email": "n@acme.ru", "first_name": "N", "last_name": "N", "job_title": "J", "phone": "1", "country": "RU",
		"user_defined_field1": "u"}, "password": "Secret-123456", "role": "learner", "groupIds": []string{},
		"sendLoginEmail": true, "invitationMessage": "Welcome", "sendLoginSMS": false, "invitationSMSMessage": ""})
	var nid string
	if err := json.Unmarshal([]byte(newUser), &nid); err != nil {
		t.Fatal(err)
	}
	e.must(201, "POST", "/user", "<request><departmentId>"+dept+"</departmentId><fields><login>x@acme.ru</login>"+
		"<first_name>X</first_name><last_name>X</last_name></fields><role>learner</role><sendLoginEmail>false</sendLoginEmail></request>")
	e.must(200, "POST", "/user/"+nid, map[string]any{"departmentId": other, "fields": map[string]any{"login": "n@acme.ru", "job_title": "K"}})
	e.must(200, "POST", "/user/"+nid, map[string]any{"role": "department_administrator", "manageableDepartmentIds": []string{other},
		"fields": map[string]any{"login": "n@acme.ru"}})
	e.must(200, "POST", "/user/"+nid, map[string]any{"role": "learner", "roles": []any{map[string]any{"roleId": roleID("learner"),
		"roleType": "learner", "manageableDepartmentIds": []string{}}}, "groupIds": []string{}, "fields": map[string]any{"login": "n@acme.ru"}})
	e.must(200, "POST", "/user/"+nid+"/status", map[string]any{"status": 3})
	e.must(200, "POST", "/user/"+nid+"/status", "<request><status>1</status></request>")
	e.must(204, "POST", "/user/"+nid+"/subordination", map[string]any{"subordination": map[string]any{"subordinationType": "manual", "supervisorId": boss},
		"coSubordination": map[string]any{"subordinationType": "inherit"}})
	e.must(204, "POST", "/department/"+dept+"/user/move", map[string]any{"userIds": []string{nid}})
	e.must(204, "POST", "/department/"+other+"/user/move", "<request><userIds><id>"+nid+"</id></userIds></request>")
	for _, p := range []string{"/users/deactivate", "/users/activate", "/users/terminate"} {
		e.must(200, "POST", p, map[string]any{"userIds": []string{nid}})
	}
	e.must(200, "POST", "/users/activate", "<request><userIds><id>"+nid+"</id><id>"+user+"</id></userIds></request>")
	e.must(200, "POST", "/users/find_existing", map[string]any{"userIds": []string{nid, user}})
	e.must(200, "POST", "/users/v2", "<request><departments>"+dept+"</departments><logins>a@acme.ru</logins><logins>boss@acme.ru</logins>"+
		"<emails>a@acme.ru</emails><userIds>"+user+"</userIds><groups></groups></request>")

	filters := "departments[]=" + dept + "&groups[]=g&logins[]=" + q("a@acme.ru") + "&emails[]=" + q("a@acme.ru")
	for _, p := range []string{"/department?code=c-1", "/departments?pageSize=1&pageToken=" + q(pageToken(e.root)),
		"/department/" + dept, "/user?" + filters, "/user/v2?" + filters, "/users?pageSize=5&" + filters,
		"/users/v2?pageSize=5&userIds[]=" + user + "&" + filters, "/user/" + user, "/user/" + user + "/v2", "/user/profile/fields"} {
		e.must(200, "GET", p, nil)
	}
	e.must(204, "DELETE", "/user/"+nid, nil)
	e.must(204, "DELETE", "/department/"+other, nil)

	if s := e.sim.Strays(e.acct); len(s) != 0 {
		t.Errorf("well-formed requests logged as strays: %q", s)
	}
	// Every route has been asked, so each has its rule.
	routes := e.sim.Counts(e.acct).ByRoute
	for r := range strictRules {
		if routes[r] == 0 {
			t.Errorf("%s was not asked", r)
		}
	}
}

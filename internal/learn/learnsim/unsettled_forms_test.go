package learnsim

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestFieldsForm checks Unsettled.FieldsForm: a user write's fields as an
// object are taken under every choice; as a {name, value} list (JSON or
// XML) they are taken, refused with 400, or read as no fields.
func TestFieldsForm(t *testing.T) {
	t.Parallel()
	list := []map[string]string{{"name": "LOGIN", "value": "b@acme.ru"}, {"name": "EMAIL", "value": "b@acme.ru"},
		{"name": "FIRST_NAME", "value": "B"}, {"name": "LAST_NAME", "value": "L"}}
	xmlList := `<request><departmentId>%s</departmentId><fields>` +
		`<field><name>LOGIN</name><value>c@acme.ru</value></field><field><name>FIRST_NAME</name><value>C</value></field>` +
		`<field><name>LAST_NAME</name><value>L</value></field></fields><sendLoginEmail>false</sendLoginEmail></request>`
	for name, c := range map[string]struct {
		form FieldsForm
		want int // status of a create with the list form
	}{
		"either":       {FieldsEither, 201},
		"list refused": {FieldsListRefused, 400},
		"list ignored": {FieldsListIgnored, 400}, // no login: refused as a create without one
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{FieldsForm: c.form}}, AccountOptions{})
			u := e.createUser(e.root, "a@acme.ru", nil) // the object form
			e.must(200, "POST", "/user/"+u, map[string]any{"fields": map[string]string{"login": "a@acme.ru", "job_title": "Obj"}})
			e.must(c.want, "POST", "/user", map[string]any{"departmentId": e.root, "fields": list, "sendLoginEmail": false})
			e.must(c.want, "POST", "/user", strings.Replace(xmlList, "%s", e.root, 1))
			// A list on update: taken, refused, or an update without fields.
			status := map[FieldsForm]int{FieldsEither: 200, FieldsListRefused: 400, FieldsListIgnored: 200}[c.form]
			e.must(status, "POST", "/user/"+u, map[string]any{"fields": []map[string]string{
				{"name": "LOGIN", "value": "a@acme.ru"}, {"name": "JOB_TITLE", "value": "List"}}})
			got, _ := e.state().UserByLogin("a@acme.ru")
			want := map[FieldsForm]string{FieldsEither: "List", FieldsListRefused: "Obj", FieldsListIgnored: "Obj"}[c.form]
			if got.Fields["job_title"] != want {
				t.Errorf("job title %q, want %q", got.Fields["job_title"], want)
			}
			_, madeB := e.state().UserByLogin("b@acme.ru")
			if madeB != (c.want == 201) {
				t.Errorf("list-form create made the user: %v", madeB)
			}
		})
	}
}

// TestReadDates checks Unsettled.ReadDates: a user read's addedDate in
// each form.
func TestReadDates(t *testing.T) {
	t.Parallel()
	for form, pattern := range map[ReadDates]string{
		ReadDatesOffset: `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`,
		ReadDatesZulu:   `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`,
		ReadDatesSpace:  `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`,
	} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{ReadDates: form}}, AccountOptions{})
		u := e.createUser(e.root, "a@acme.ru", nil)
		var got struct {
			Response struct {
				AddedDate string `json:"addedDate"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(e.must(200, "GET", "/user/"+u+"/v2", nil)), &got); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(pattern).MatchString(got.Response.AddedDate) {
			t.Errorf("form %d: addedDate %q, want %s", form, got.Response.AddedDate, pattern)
		}
	}
}

// TestXMLErrors checks Unsettled.XMLErrors: a refusal to a request for
// JSON comes as JSON by default and as Learn's XML error under the switch;
// a success still follows Accept.
func TestXMLErrors(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{XMLErrors: on}}, AccountOptions{})
		b := e.must(404, "GET", "/department/00000000-0000-0000-0000-00000000abcd", nil)
		xmlBody := strings.HasPrefix(b, "<?xml") && strings.Contains(b, "<response><code>404</code><message>")
		if xmlBody != on || !on && !strings.HasPrefix(b, `{"code":404`) {
			t.Errorf("XMLErrors %v: refusal %s", on, b)
		}
		if b := e.must(200, "GET", "/department/"+e.root, nil); !strings.HasPrefix(b, `{"response":{`) {
			t.Errorf("XMLErrors %v: success %s", on, b)
		}
	}
}

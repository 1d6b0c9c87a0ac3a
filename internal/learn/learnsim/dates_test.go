package learnsim

import (
	"testing"
)

// TestDateFields checks that a date profile field takes only the account's
// date format, on create and on update, for every format Learn may use, and
// that a type changed later applies to the next write.
func TestDateFields(t *testing.T) {
	t.Parallel()
	values := map[DateFormat]string{DateISO: "1990-05-01", DateDotted: "01.05.1990", DateDateTime: "1990-05-01T00:00:00"}
	for format, good := range values {
		t.Run(format.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{DateFormat: format}},
				AccountOptions{ExtraFields: []string{"user_defined_field1"}, FieldTypes: map[string]string{"user_defined_field1": "birthdate"}})
			id := e.createUser(e.root, "a@acme.ru", map[string]string{"user_defined_field1": good})
			field := func() string {
				u, _ := e.state().UserByLogin("a@acme.ru")
				return u.Fields["user_defined_field1"]
			}
			if got := field(); got != good {
				t.Fatalf("stored %q, want %q", got, good)
			}
			e.createUser(e.root, "empty@acme.ru", map[string]string{"user_defined_field1": ""})
			for other, bad := range values {
				if other == format {
					continue
				}
				body := map[string]any{"departmentId": e.root, "sendLoginEmail": false, "fields": map[string]string{
					"login": "b@acme.ru", "first_name": "B", "last_name": "B", "user_defined_field1": bad}}
				if code, b := e.call("POST", "/user", body); code != 400 {
					t.Errorf("create with %s: %d %s, want 400", bad, code, b)
				}
				upd := map[string]any{"fields": map[string]string{"login": "a@acme.ru", "user_defined_field1": bad}}
				if code, b := e.call("POST", "/user/"+id, upd); code != 400 {
					t.Errorf("update with %s: %d %s, want 400", bad, code, b)
				}
			}
			for _, bad := range []string{"soon", "1990-13-45"} {
				upd := map[string]any{"fields": map[string]string{"login": "a@acme.ru", "user_defined_field1": bad}}
				if code, b := e.call("POST", "/user/"+id, upd); code != 400 {
					t.Errorf("update with %s: %d %s, want 400", bad, code, b)
				}
			}
			if got := field(); got != good {
				t.Errorf("after refused updates: %q, want %q", got, good)
			}
			// The admin turns the field into text: any value goes.
			if err := e.sim.SetFieldType(e.acct, "user_defined_field1", "string"); err != nil {
				t.Fatal(err)
			}
			e.must(200, "POST", "/user/"+id, map[string]any{"fields": map[string]string{"login": "a@acme.ru", "user_defined_field1": "soon"}})
		})
	}
}

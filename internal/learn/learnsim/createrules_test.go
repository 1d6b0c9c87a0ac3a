package learnsim

import "testing"

// POST /user's pairings (Learn's "Adding a user"): role custom takes a
// roleId, and sendLoginSMS true an invitationSMSMessage, as sendLoginEmail
// true takes an invitationMessage; without it the create is refused with 400.
func TestCreateUserPairings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, AccountOptions{})
	sales := e.createDept("Sales", e.root, "")
	user := func(login string, extra map[string]any) map[string]any {
		body := map[string]any{"departmentId": sales, "sendLoginEmail": false,
			"fields": map[string]string{"login": login, "first_name": "F", "last_name": "L"}}
		for k, v := range extra {
			body[k] = v
		}
		return body
	}
	e.must(400, "POST", "/user", user("custom@acme.ru", map[string]any{"role": "custom", "manageableDepartmentIds": []string{sales}}))
	e.must(201, "POST", "/user", user("custom@acme.ru", map[string]any{"role": "custom", "roleId": roleID("custom"),
		"manageableDepartmentIds": []string{sales}}))
	e.must(400, "POST", "/user", user("sms@acme.ru", map[string]any{"sendLoginSMS": true}))
	e.must(201, "POST", "/user", user("sms@acme.ru", map[string]any{"sendLoginSMS": true, "invitationSMSMessage": "Hi"}))
	e.must(201, "POST", "/user", user("nosms@acme.ru", map[string]any{"sendLoginSMS": false}))
	if n := len(e.state().Users); n != 4 { // the owner and three
		t.Fatalf("%d users, want 4", n)
	}
}

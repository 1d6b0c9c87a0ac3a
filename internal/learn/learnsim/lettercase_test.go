package learnsim

import (
	"strings"
	"testing"
)

// Whether a login or e-mail differing only in letter case is taken
// (Unsettled.CaseSensitiveUnique): by default it is a duplicate, under the
// switch a second user; the filters still find both unless they are exact.
func TestLetterCaseUniqueness(t *testing.T) {
	for _, sensitive := range []bool{false, true} {
		t.Run(map[bool]string{false: "ignores case", true: "keeps case"}[sensitive], func(t *testing.T) {
			e := newEnvWith(t, Options{Seed: 1, Unsettled: Unsettled{CaseSensitiveUnique: sensitive}}, AccountOptions{})
			fields := func(addr string) map[string]any {
				return map[string]any{"departmentId": e.root, "sendLoginEmail": false,
					"fields": map[string]string{"login": addr, "email": addr, "first_name": "Иван", "last_name": "Петров"}}
			}
			e.must(201, "POST", "/user", fields("ivan@acme.ru"))
			status, body := e.call("POST", "/user", fields("Ivan@Acme.ru"))
			want := map[bool]int{false: 409, true: 201}[sensitive]
			if status != want {
				t.Fatalf("create Ivan@Acme.ru beside ivan@acme.ru: %d %s, want %d", status, body, want)
			}
			// The same address as written is taken either way.
			e.must(409, "POST", "/user", fields("ivan@acme.ru"))
			users := 1 + map[bool]int{false: 0, true: 1}[sensitive]
			b := e.must(200, "GET", "/users/v2?emails[]=IVAN@ACME.RU", nil)
			if n := strings.Count(b, `"userId"`); n != users {
				t.Errorf("e-mail filter letter case aside found %d users, want %d: %s", n, users, b)
			}
			if !sensitive {
				return
			}
			// An update to the other user's address as written is refused,
			// to another letter case of it accepted.
			st, err := e.sim.Snapshot(acct)
			if err != nil {
				t.Fatal(err)
			}
			var second string
			for _, id := range st.Users {
				if id.Fields["login"] == "Ivan@Acme.ru" {
					second = id.ID
				}
			}
			upd := func(addr string) map[string]any {
				return map[string]any{"fields": map[string]string{"login": addr, "email": addr}}
			}
			e.must(400, "POST", "/user/"+second, upd("ivan@acme.ru"))
			e.must(200, "POST", "/user/"+second, upd("IVAN@acme.ru"))
		})
	}
}

// X-Auth-Email takes the owner's login as well as its e-mail.
func TestHeaderAuthTakesLogin(t *testing.T) {
	e := newEnv(t, AccountOptions{Email: "owner@acme.ru", Login: "acme-admin", Password: pass})
	for _, who := range []string{"acme-admin", "ACME-Admin", "owner@acme.ru", "Owner@Acme.ru"} {
		e.must(200, "GET", "/departments", nil, "X-Auth-Email", who)
	}
	for _, who := range []string{"admin@acme.ru", "acme", "acme-admin@acme.ru"} {
		e.must(401, "GET", "/departments", nil, "X-Auth-Email", who)
	}
	st, err := e.sim.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	owner, ok := st.UserByLogin("acme-admin")
	if !ok || owner.Fields["email"] != "owner@acme.ru" {
		t.Errorf("owner %+v (found %v), want login acme-admin with e-mail owner@acme.ru", owner, ok)
	}
}

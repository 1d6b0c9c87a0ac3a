package learn

import (
	"context"
	"testing"

	"b24learn/internal/learn/learnsim"
)

// A create whose answer is lost is looked up by its login. On a Learn whose
// uniqueness keeps letter case another user may hold the login in another
// case: the lookup must return the user the create made, not that one.
func TestLostCreateFindsLoginAsWritten(t *testing.T) {
	t.Parallel()
	for _, v := range []learnsim.Variant{
		{Name: "filters ignore case", Unsettled: learnsim.Unsettled{CaseSensitiveUnique: true}},
		{Name: "exact filters", Unsettled: learnsim.Unsettled{CaseSensitiveUnique: true, ExactFilters: true}},
	} {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			env := newSimEnv(t, learnsim.Options{Seed: 3, Unsettled: v.Unsettled}, learnsim.AccountOptions{})
			other, err := env.sim.SeedUser(testAccount, env.root, map[string]string{"login": "IVAN@acme.ru", "email": "IVAN@acme.ru",
				"first_name": "Ivan", "last_name": "Other"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			c := env.client(t, Credentials{})
			env.sim.SetFaults(learnsim.Faults{AfterWriteErrorRate: 1})
			id, err := c.CreateUser(context.Background(), NewUser{DepartmentID: env.root,
				Fields: Fields{"login": "ivan@acme.ru", "email": "ivan@acme.ru", "first_name": "Ivan", "last_name": "Petrov"}})
			env.sim.SetFaults(learnsim.Faults{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			st, err := env.sim.Snapshot(testAccount)
			if err != nil {
				t.Fatal(err)
			}
			var made []string
			for _, u := range st.Users {
				if u.Fields["login"] == "ivan@acme.ru" {
					made = append(made, u.ID)
				}
			}
			if len(made) != 1 || id != made[0] || id == other {
				t.Errorf("create returned %s, want the one new user %v (the other is %s)", id, made, other)
			}
		})
	}
}

// The connection check signs in with the admin's login as well as with
// its e-mail: X-Auth-Email carries either.
func TestCheckConnectionWithLogin(t *testing.T) {
	t.Parallel()
	sim := learnsim.New(learnsim.Options{})
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: testAccount, Email: testEmail, Login: "acme-admin", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	srv, tlsConf := tlsSim(t, sim.Handler())
	opts := Options{HTTPClient: NewHTTPClient(DialerOptions{AllowPrivate: true, TLSConfig: tlsConf}), BaseURL: srv.URL}
	for _, who := range []string{"acme-admin", testEmail} {
		if err := CheckConnection(context.Background(), Credentials{AccountURL: testAccount, Email: who, Password: testPassword}, opts); err != nil {
			t.Errorf("sign in as %s: %v", who, err)
		}
	}
	checkCode(t, CheckConnection(context.Background(), Credentials{AccountURL: testAccount, Email: "acme", Password: testPassword}, opts), CheckBadCredentials)
}

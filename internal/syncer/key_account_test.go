package syncer

import (
	"context"
	"errors"
	"strings"
	"testing"

	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// saveKeyRow saves the portal's settings row as a save with an API key
// does, and makes its runs sign in with that key.
func (e *simEnv) saveKeyRow(portalID int64, learnURL, login, clientID, clientSecret string) {
	e.t.Helper()
	e.saveRow(portalID, func(s *settings.Settings) {
		s.LearnURL, s.LearnEmail, s.LearnClientID, s.ClientSecret = learnURL, login, clientID, clientSecret
	})
	e.setSettings(portalID, func(s *Settings) {
		s.LearnURL, s.LearnEmail, s.LearnPassword = learnURL, login, ""
		s.LearnClientID, s.LearnClientSecret = clientID, clientSecret
	})
}

// An API key's token picks the key's account, not the address typed: a
// portal that saves a victim account's address and an employee's login
// with a key of its own Learn account syncs its own account. The victim's
// portal must not take that login for another portal's sign-in (and leave
// the employee's Learn user alone when they leave), nor count its account
// as shared because of the users the other portal owns.
func TestKeyPortalOnAnotherAccountsAddressIsNotThatAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	idA, pA := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.useAddress(idA, simAccount)
	e.run(idA, TriggerScheduled)

	const login = "user3@acme.test"
	if _, err := e.lsim.AddAccount(learnsim.AccountOptions{URL: "https://own.attacker.test", Email: login, Password: "x",
		ClientID: "attacker-id", ClientSecret: "attacker-secret", RootName: "Attacker"}); err != nil {
		t.Fatal(err)
	}
	idB, _ := e.addPortal(flatOrg("Evil LLC", "evil.test", 3))
	e.saveKeyRow(idB, simAccount, login, "attacker-id", "attacker-secret")
	e.run(idB, TriggerScheduled)
	var owned int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM learn_user_owners WHERE portal_id = $1`, idB).Scan(&owned); err != nil || owned == 0 {
		t.Fatalf("the key portal owns %d users (%v): its run did not sync its own account", owned, err)
	}
	if _, ok := e.state().UserByLogin("user1@evil.test"); ok {
		t.Fatal("the key portal wrote to the account at the address it typed")
	}

	account := AccountOf(simAccount, "")
	if got, err := e.syncer.store.OtherSignIns(ctx, account, idA); err != nil || len(got) != 0 {
		t.Errorf("the victim portal's other sign-ins %v (%v), want none", got, err)
	}
	if got, err := e.syncer.store.Foreign(ctx, account, idA); err != nil || len(got) != 0 {
		t.Errorf("users other portals own in the victim's account: %v (%v), want none", got, err)
	}
	if err := pA.FireUser(3); err != nil {
		t.Fatal(err)
	}
	e.run(idA, TriggerScheduled)
	st := e.state()
	if u, ok := st.UserByLogin(login); !ok || u.Status == StatusActive {
		t.Errorf("the victim's leaver whose login the key portal saved keeps access: %+v", u)
	}
	if u, _ := st.UserByLogin("user1@acme.test"); u.DepartmentID != st.RootID {
		t.Errorf("the victim's account counts as shared: its staff moved to %s from the Learn root", u.DepartmentID)
	}
}

// Portals that sign in with the same API key at the same address share the
// account as password portals do: the second's tree goes into a child of
// its own, and each sees the other's sign-in.
func TestTwoPortalsWithOneKeyShareTheAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	idB, pB := e.addPortal(flatOrg("Beta LLC", "beta.test", 5))
	e.saveKeyRow(idB, simAccount, simEmail, simClientID, simClientSecret)
	e.setSettings(idB, func(s *Settings) { s.HeadsAsManagers = true })
	e.run(idB, TriggerScheduled)
	idA, pA := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.saveKeyRow(idA, simAccount+"/", simEmail, simClientID, simClientSecret)
	e.setSettings(idA, func(s *Settings) { s.HeadsAsManagers = true })
	if got, err := e.syncer.store.OtherSignIns(ctx, AccountOf(simAccount, simClientID), idA); err != nil || len(got) != 1 || got[0] != simEmail {
		t.Errorf("portal A's other sign-ins %v (%v), want portal B's", got, err)
	}
	e.run(idA, TriggerScheduled)
	e.run(idB, TriggerScheduled)
	st := e.state()
	if root, _ := st.Department(st.RootID); root.Name != "Beta LLC" {
		t.Errorf("Learn root %+v, want portal B's", root)
	}
	for _, p := range []string{pA.MemberID(), pB.MemberID()} {
		if own := st.DepartmentsByCode(DepartmentCode(p, 1)); len(own) != 1 || own[0].ParentID != st.RootID {
			t.Errorf("portal %s's own root department: %+v", p, own)
		}
	}
	e.stable(idA, idB)
}

// A portal with an API key and one with a password on the same account and
// address are two accounts to the ownership tables: the later first run is
// refused before it writes, and told to sign in as the other portal does,
// not to use an address it already uses.
func TestKeyAndPasswordPortalsOnOneAccountRefused(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	idA, _ := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.useAddress(idA, simAccount)
	e.run(idA, TriggerScheduled)
	idB, _ := e.addPortal(flatOrg("Beta LLC", "beta.test", 3))
	e.saveKeyRow(idB, simAccount, simEmail, simClientID, simClientSecret)
	run, err := e.refusedRun(idB, TriggerScheduled)
	if !errors.Is(err, ErrSignInElsewhere) {
		t.Fatalf("key portal's first run beside a password portal: %v", err)
	}
	if key, _ := RunErrorKey(run.Error); key != "run_err_signin_elsewhere" {
		t.Errorf("run error %q has sentence %q", run.Error, key)
	}
	if got := e.storedRoot(idB); got != "" {
		t.Errorf("a refused run stored root %q", got)
	}
}

// A portal removed without CLEAN keeps its settings and stored root, but
// holds the account no more: a portal after it that signs in another way is
// not refused for it.
func TestUninstalledPortalHoldsNoRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSimEnv(t, simOpts{})
	idA, _ := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.useAddress(idA, simAccount)
	e.run(idA, TriggerScheduled)
	if e.storedRoot(idA) == "" {
		t.Fatal("portal A's run stored no root")
	}
	if _, err := e.pool.Exec(ctx, `UPDATE portals SET install_state = 'uninstalled', uninstalled_at = now() WHERE id = $1`, idA); err != nil {
		t.Fatal(err)
	}
	idB, _ := e.addPortal(flatOrg("Beta LLC", "beta.test", 3))
	e.saveKeyRow(idB, simAccount, simEmail, simClientID, simClientSecret)
	if _, err := e.syncer.Run(ctx, idB, TriggerScheduled); err != nil {
		t.Fatalf("key portal's first run after the password portal was removed: %v", err)
	}
}

// The other portal reaches the account under another address with an API
// key, which does not prove that address: the refusal does not send this
// portal's admin, and their password, there.
func TestKeyHolderElsewhereIsNotNamed(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	if err := e.lsim.AddAlias(simAccount, simAlias); err != nil {
		t.Fatal(err)
	}
	idA, _ := e.addPortal(flatOrg("Acme Corp", "acme.test", 4))
	e.saveKeyRow(idA, simAccount, simEmail, simClientID, simClientSecret)
	e.run(idA, TriggerScheduled)
	if e.storedRoot(idA) == "" {
		t.Fatal("the key portal's run stored no root")
	}
	idB, _ := e.addPortal(flatOrg("Beta LLC", "beta.test", 3))
	e.useAddress(idB, simAlias)
	run, err := e.refusedRun(idB, TriggerScheduled)
	if !errors.Is(err, ErrConnectedWithKey) {
		t.Fatalf("password portal beside a key portal on another address: %v", err)
	}
	if key, _ := RunErrorKey(run.Error); key != "run_err_connected_with_key" || strings.Contains(run.Error, "acme.ispringlearn") {
		t.Errorf("run error %q (sentence %q) names the key portal's address or says another thing", run.Error, key)
	}
}

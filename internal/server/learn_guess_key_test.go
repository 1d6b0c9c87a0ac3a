package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// An API key's token picks the key's account whatever the address and login
// typed: a portal that saves its own key with a victim's address and login
// does not hold that target, and its password guesses there stay bounded
// across portals.
func TestOwnKeyDoesNotHoldAnotherAccountsTarget(t *testing.T) {
	e := newSettingsEnv(t)
	mid := time.Now().Truncate(learnTargetLimit.Window).Add(learnTargetLimit.Window / 2)
	e.s.now = func() time.Time { return mid }
	sim, port, calls := e.learnCounted("lms.victim.test", "lms.attacker.test")
	victim := "http://lms.victim.test:" + port
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: victim, Email: "admin@victim.ru", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: "http://lms.attacker.test:" + port, Email: "me@attacker.ru", Password: "x",
		ClientID: "cid", ClientSecret: "csecret"}); err != nil {
		t.Fatal(err)
	}
	answered := 0
	for i := range 3 {
		p := e.addPortal(fmt.Sprintf("trial-%d", i), "en")
		_, tok := e.session(p, 1, true, "en")
		r, sr := e.save(tok, with(validForm(), "learn_url", victim, "learn_email", "admin@victim.ru", "learn_password", "",
			"learn_client_id", "cid", "learn_client_secret", "csecret"))
		// The first save passes; once the target's bound is spent, a
		// later one may be refused too.
		if (r.status != http.StatusOK || !sr.OK) && (i == 0 || r.status != http.StatusTooManyRequests) {
			t.Fatalf("attacker's key save for the victim's target: %d %s", r.status, r.body)
		}
		for j := range 15 {
			r := e.do(http.MethodPost, "/app/settings", tok, with(validForm(), "learn_url", victim, "learn_email", "admin@victim.ru",
				"learn_password", fmt.Sprintf("guess-%d-%d", i, j)))
			if r.status == http.StatusUnprocessableEntity {
				answered++
			}
		}
	}
	t.Logf("Learn answered %d password guesses at the victim (bound %d), calls %d", answered, learnTargetLimit.Max, calls.Load())
	if answered > learnTargetLimit.Max {
		t.Errorf("BYPASS: %d guesses answered > %d", answered, learnTargetLimit.Max)
	}
}

// The attacker, admin of a trial portal of their own, keeps the failed
// checks of a victim's Learn host and login at the target's bound (5 wrong
// passwords a quarter of an hour). The victim's portal signs in with an API
// key: its checks send no password (docs/learn-api.md, "Authentication"),
// so they guess nothing, and its admin still saves, with the stored key and
// with the key typed again. Before, every save of a key portal drew on the
// target's bound and was refused for as long as the attack ran.
func TestSpentTargetDoesNotLockOutAKeyPortal(t *testing.T) {
	e := newSettingsEnv(t)
	mid := time.Now().Truncate(learnTargetLimit.Window).Add(learnTargetLimit.Window / 2)
	e.s.now = func() time.Time { return mid }
	sim, port, _ := e.learnCounted("lms.victim.test")
	victim := "http://lms.victim.test:" + port
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: victim, Email: "admin@victim.ru", Password: "right",
		ClientID: "cid", ClientSecret: "csecret"}); err != nil {
		t.Fatal(err)
	}
	owner := e.addPortal("victim", "en")
	_, ownerTok := e.session(owner, 1, true, "en")
	keyForm := with(validForm(), "learn_url", victim, "learn_email", "admin@victim.ru", "learn_password", "",
		"learn_client_id", "cid", "learn_client_secret", "csecret")
	if r, sr := e.save(ownerTok, keyForm); r.status != http.StatusOK || !sr.OK {
		t.Fatalf("the owner's first save with the key: %d %s", r.status, r.body)
	}

	attacker := e.addPortal("trial-attacker", "en")
	_, atok := e.session(attacker, 1, true, "en")
	refused := 0
	for i := range learnTargetLimit.Max + 3 {
		r := e.do(http.MethodPost, "/app/settings", atok, with(validForm(), "learn_url", victim, "learn_email", "admin@victim.ru",
			"learn_password", fmt.Sprintf("guess-%d", i)))
		switch r.status {
		case http.StatusUnprocessableEntity:
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	if refused == 0 {
		t.Fatal("the attack did not spend the target's bound")
	}

	for _, f := range []url.Values{
		with(keyForm, "learn_client_secret", "", "first_run", "04:00"), // the stored key
		with(keyForm, "first_run", "05:00"),                            // the key typed again
	} {
		if r, sr := e.save(ownerTok, f); r.status != http.StatusOK || !sr.OK {
			t.Fatalf("LOCKED OUT: the key portal's save during the attack: %d %s", r.status, r.body)
		}
	}
	st, err := settings.Load(context.Background(), e.pool, nil, owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Schedule.First() != "05:00" {
		t.Errorf("first run %q after the saves, want 05:00", st.Schedule.First())
	}
}

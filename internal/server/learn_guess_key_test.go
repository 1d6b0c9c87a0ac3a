package server

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"b24learn/internal/learn/learnsim"
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

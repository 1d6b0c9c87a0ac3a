package server

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The attacker: an employee polls the status panel (six database reads a
// request) from a script. Their bucket answers its burst and then 429 with
// Retry-After, in their language, before any database read; the admin of the
// same portal is not held back, and the employee gets in again once the
// bucket refills.
func TestOneUserCannotFloodTheAppRequests(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e.s.now = func() time.Time { return time.Unix(0, now.Load()) }
	p := e.addPortal("flood", "ru")
	_, employee := e.session(p, 7, false, "ru")
	_, admin := e.session(p, 1, true, "ru")
	burst := appRequestLimits().PerUser.Burst
	ok, refused := 0, 0
	var last resp
	for range burst + 40 {
		r := e.do(http.MethodGet, "/app/status", employee, nil)
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
			last = r
		default:
			t.Fatalf("status: %d %s", r.status, r.body)
		}
	}
	if ok != burst || refused != 40 {
		t.Fatalf("%d answered and %d refused, want %d and 40", ok, refused, burst)
	}
	if last.header.Get("Retry-After") != "1" || !strings.Contains(last.body, "Слишком много запросов") {
		t.Errorf("refusal: Retry-After %q, body %s", last.header.Get("Retry-After"), last.body)
	}
	if r := e.do(http.MethodGet, "/app/status", admin, nil); r.status != http.StatusOK {
		t.Errorf("the admin of the portal was held back: %d", r.status)
	}
	now.Add(int64(time.Second))
	if r := e.do(http.MethodGet, "/app/status", employee, nil); r.status != http.StatusOK {
		t.Errorf("a second later the employee is still refused: %d", r.status)
	}
}

// The attacker: a portal with many users (a self-hosted portal makes as
// many as it likes) polls the status panel from a script as each of them,
// every user within their own bucket. The portal's bucket answers its burst
// and refuses the rest before any database read; another portal's admin is
// not held back.
func TestManyUsersOfOnePortalCannotMultiplyTheAppRequests(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	now := time.Now()
	e.s.now = func() time.Time { return now } // no refill during the test
	p := e.addPortal("many-users", "en")
	other := e.addPortal("bystander", "en")
	_, bystander := e.session(other, 1, true, "en")
	perUser, perPortal := appRequestLimits().PerUser.Burst, appRequestLimits().PerPortal.Burst
	users := 2 * perPortal / perUser
	ok, refused := 0, 0
	for u := range users {
		_, tok := e.session(p, int64(100+u), false, "en")
		for range perUser {
			switch r := e.do(http.MethodGet, "/app/status", tok, nil); r.status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("status: %d %s", r.status, r.body)
			}
		}
	}
	if ok != perPortal || refused != users*perUser-perPortal {
		t.Errorf("%d users: %d answered and %d refused, want %d and %d", users, ok, refused, perPortal, users*perUser-perPortal)
	}
	if r := e.do(http.MethodGet, "/app/status", bystander, nil); r.status != http.StatusOK {
		t.Errorf("another portal's admin was held back: %d", r.status)
	}
}

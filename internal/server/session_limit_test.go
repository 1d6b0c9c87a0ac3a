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
	burst := DefaultAppRequests().Burst
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

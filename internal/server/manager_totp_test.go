package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"b24learn/internal/manager"
)

var totpSecretShown = regexp.MustCompile(`data-testid="totp-secret"[^>]*>([A-Z2-7]+)<`)

// Someone holding a copy of a manager's console cookie, but not the
// password, cannot turn two-step sign-in on with an authenticator of their
// own: that would end the manager's other sessions and lock the manager out
// of signing in, while the thief's session lives on. Turning it on takes the
// account's password, and wrong passwords are limited.
func TestConsoleStolenSessionCannotEnrolTOTP(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	const email, password = "vera@ispring.example", "vera's long password"
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	vera := e.browser("10.0.0.5")
	if rec := vera.signIn(email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("vera signs in: %d", rec.Code)
	}
	laptop := e.browser("10.0.0.6") // vera's other session
	if rec := laptop.signIn(email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("vera signs in on her laptop: %d", rec.Code)
	}
	// The thief replays vera's cookie from elsewhere.
	thief := e.browser("203.0.113.66")
	for k, c := range vera.cookies {
		thief.cookies[k] = c
	}
	page := thief.do("GET", "/manager/totp", nil)
	m := totpSecretShown.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		t.Fatalf("enrol page for the thief: %d", page.Code)
	}
	secret, csrf := m[1], csrfOf(t, page.Body.String())
	code := func() string {
		c, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"NoPassword", url.Values{"csrf": {csrf}, "code": {code()}}},
		{"WrongPassword", url.Values{"csrf": {csrf}, "code": {code()}, "password": {"a guess at vera's password"}}},
	} {
		rec := thief.do("POST", "/manager/totp", tc.form)
		if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Wrong password") {
			t.Fatalf("%s: %d to %q, want 422 and the form again", tc.name, rec.Code, rec.Header().Get("Location"))
		}
	}
	// Nothing changed: vera's laptop session lives, and her password alone
	// still signs her in.
	if rec := laptop.do("GET", "/manager/requests", nil); rec.Code != http.StatusOK {
		t.Fatalf("vera's laptop session after the thief's attempts: %d", rec.Code)
	}
	if rec := e.browser("10.0.0.7").signIn(email, password); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/requests" {
		t.Fatalf("vera's sign-in with her password after the thief's attempts: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	// Vera, with her password, turns it on.
	if rec := vera.do("POST", "/manager/totp", url.Values{"csrf": {csrf}, "code": {code()}, "password": {password}}); rec.Code != http.StatusSeeOther ||
		rec.Header().Get("Location") != "/manager/totp?done=totp" {
		t.Fatalf("vera turns two-step sign-in on with her password: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// Guessing a manager's password through the enrol form of a stolen session
// runs into a limit, as sign-in does.
func TestConsoleTOTPEnrolPasswordLimited(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	const email, password = "max@ispring.example", "max's long password"
	if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	thief := e.browser("203.0.113.67")
	if rec := thief.signIn(email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	page := thief.do("GET", "/manager/totp", nil)
	csrf := csrfOf(t, page.Body.String())
	for i := range 20 {
		rec := thief.do("POST", "/manager/totp", url.Values{"csrf": {csrf}, "code": {"123456"}, "password": {"guess " + strconv.Itoa(i)}})
		if rec.Code == http.StatusTooManyRequests {
			if rec.Header().Get("Retry-After") == "" || i < 3 {
				t.Fatalf("limited after %d guesses, Retry-After %q", i, rec.Header().Get("Retry-After"))
			}
			return
		}
		if rec.Code != http.StatusUnprocessableEntity {
			t.Fatalf("guess %d: %d", i, rec.Code)
		}
	}
	t.Fatal("20 password guesses through the enrol form were never limited")
}

// Someone who knows a manager's password opens the enrol page before the
// manager turns two-step sign-in on. The secret shown there must not be the
// one the manager is later shown and confirms: else, once the manager has
// turned it on (because the password may be known), the password and a code
// from the secret seen earlier still sign in.
func TestConsoleTOTPSecretSeenByAnotherSessionDoesNotSignIn(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	clock := time.Now()
	e.s.now = func() time.Time { return clock }
	const email, password = "pia@ispring.example", "pia's long password"
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, password); err != nil {
		t.Fatal(err)
	}
	secretOn := func(b *browser) (secret, csrf string) {
		t.Helper()
		page := b.do("GET", "/manager/totp", nil)
		m := totpSecretShown.FindStringSubmatch(page.Body.String())
		if page.Code != http.StatusOK || m == nil {
			t.Fatalf("enrol page: %d", page.Code)
		}
		return m[1], csrfOf(t, page.Body.String())
	}
	code := func(secret string) string {
		c, err := totp.GenerateCode(secret, clock)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	attacker := e.browser("203.0.113.70")
	if rec := attacker.signIn(email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("the attacker signs in with the password: %d", rec.Code)
	}
	seen, _ := secretOn(attacker)

	pia := e.browser("10.0.0.8")
	if rec := pia.signIn(email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("pia signs in: %d", rec.Code)
	}
	shown, csrf := secretOn(pia)
	copied := *pia.cookies[managerCookie] // taken while the password alone let her in
	if rec := pia.do("POST", "/manager/totp", url.Values{"csrf": {csrf}, "code": {code(shown)}, "password": {password}}); rec.Code != http.StatusSeeOther ||
		rec.Header().Get("Location") != "/manager/totp?done=totp" {
		t.Fatalf("pia turns two-step sign-in on: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	thief := e.browser("203.0.113.71")
	thief.cookies[managerCookie] = &copied
	if rec := thief.do("GET", "/manager/requests", nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
		t.Errorf("a copy of pia's cookie from before two-step sign-in: %d to %q, want the sign-in page", rec.Code, rec.Header().Get("Location"))
	}
	if rec := pia.do("GET", "/manager/requests", nil); rec.Code != http.StatusOK {
		t.Errorf("pia after turning two-step sign-in on: %d, want her session going on", rec.Code)
	}

	clock = clock.Add(time.Minute) // a fresh code: the confirmation's is spent
	again := e.browser("203.0.113.70")
	page := again.do("GET", "/manager/signin", nil)
	rec := again.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(t, page.Body.String())}, "email": {email},
		"password": {password}, "code": {code(seen)}})
	if rec.Code == http.StatusSeeOther {
		t.Fatalf("the password and a code from the secret the attacker saw before pia turned two-step sign-in on signed in (to %q)",
			rec.Header().Get("Location"))
	}
	// Pia's own authenticator signs her in.
	page = pia.do("GET", "/manager/signin", nil)
	if page.Code == http.StatusSeeOther {
		// Still signed in, under the session's new token and form token.
		cur := pia.do("GET", "/manager/requests", nil)
		pia.do("POST", "/manager/signout", url.Values{"csrf": {csrfOf(t, cur.Body.String())}})
		page = pia.do("GET", "/manager/signin", nil)
	}
	rec = pia.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(t, page.Body.String())}, "email": {email},
		"password": {password}, "code": {code(shown)}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/requests" {
		t.Fatalf("pia signs in with her authenticator: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"b24learn/internal/manager"
)

// refusedEverywhere checks that b's cookie opens nothing in the console any
// more: pages and River UI send it to sign in, a form with the session's
// CSRF token is refused and changes nothing.
func (e *consoleEnv) refusedEverywhere(who string, b *browser, csrf string, portal int64) {
	e.t.Helper()
	for _, path := range []string{"/manager/requests", "/manager/audit", "/manager/river/jobs?state=available"} {
		if rec := b.do("GET", path, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/signin" {
			e.t.Errorf("%s: GET %s: %d to %q, want the sign-in page", who, path, rec.Code, rec.Header().Get("Location"))
		}
	}
	path := "/manager/portals/" + strconv.FormatInt(portal, 10) + "/activation"
	if rec := b.do("POST", path, url.Values{"state": {"active"}, "csrf": {csrf}}); rec.Code != http.StatusUnauthorized || e.state(portal) == "active" {
		e.t.Errorf("%s: activation: %d, state %q; want 401 and nothing changed", who, rec.Code, e.state(portal))
	}
}

// copyOf is another browser holding a copy of b's cookies.
func (b *browser) copyOf(ip string) *browser {
	c := b.e.browser(ip)
	for k, v := range b.cookies {
		cp := *v
		c.cookies[k] = &cp
	}
	return c
}

// An operator's new password for a manager (`b24learn manager password`)
// ends every session of the account: the manager's own and a thief's copy
// of its cookie are refused at their next request, and the old password
// signs in no more.
func TestConsoleNewPasswordEndsSessions(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	const email, oldPassword, newPassword = "rita@ispring.example", "rita's old long password", "rita's new long password"
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), email, oldPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "sam@ispring.example", "sam's long password"); err != nil {
		t.Fatal(err)
	}
	pid := e.portal("pw.bitrix24.ru")
	rita := e.browser("10.0.0.5")
	if rec := rita.signIn(email, oldPassword); rec.Code != http.StatusSeeOther {
		t.Fatalf("rita signs in: %d", rec.Code)
	}
	page := rita.do("GET", "/manager/requests", nil)
	if page.Code != http.StatusOK {
		t.Fatalf("rita's console: %d", page.Code)
	}
	csrf := csrfOf(t, page.Body.String())
	thief := rita.copyOf("203.0.113.80")
	if rec := thief.do("GET", "/manager/requests", nil); rec.Code != http.StatusOK {
		t.Fatalf("the thief's copy before the new password: %d", rec.Code)
	}
	sam := e.browser("10.0.0.6")
	if rec := sam.signIn("sam@ispring.example", "sam's long password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sam signs in: %d", rec.Code)
	}

	if err := manager.ChangePassword(ctx, e.pool, manager.DefaultHasher(), email, newPassword, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.refusedEverywhere("rita's session", rita, csrf, pid)
	e.refusedEverywhere("the thief's copy", thief, csrf, pid)
	if rec := sam.do("GET", "/manager/requests", nil); rec.Code != http.StatusOK {
		t.Errorf("another manager's session after rita's new password: %d", rec.Code)
	}
	if rec := e.browser("203.0.113.80").signIn(email, oldPassword); rec.Code != http.StatusUnauthorized {
		t.Errorf("the old password: %d, want 401", rec.Code)
	}
	if rec := e.browser("10.0.0.5").signIn(email, newPassword); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/requests" {
		t.Errorf("the new password: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	// The trail shows who did it, in the console's words.
	audit := sam.do("GET", "/manager/audit", nil).Body.String()
	if !strings.Contains(audit, "password changed") || !strings.Contains(audit, "<td>cli</td>") {
		t.Errorf("the audit page does not show the operator's new password")
	}
}

var signInFormToken = regexp.MustCompile(`(name="csrf" value=")[^"]+"`)

// signInAnswer is what an attacker sees of a sign-in answer: status,
// where it leads, which cookies it sets and the page, less the fresh form
// token each page carries.
func signInAnswer(rec *httptest.ResponseRecorder) string {
	var cookies []string
	for _, c := range rec.Result().Cookies() {
		cookies = append(cookies, c.Name)
	}
	slices.Sort(cookies)
	return strconv.Itoa(rec.Code) + " " + rec.Header().Get("Location") + " " + rec.Header().Get("Retry-After") + " " +
		strings.Join(cookies, ",") + "\n" + signInFormToken.ReplaceAllString(rec.Body.String(), `${1}X"`)
}

// A disabled account (`b24learn manager disable`) loses its sessions at
// once, a copy of its cookie opens nothing, and even its right password and
// a valid code get exactly a wrong password's answer, in about a wrong
// password's time: the sign-in page does not tell that the account exists
// or is disabled. Enabled again, it signs in, and its old sessions stay
// ended.
func TestConsoleDisabledAccount(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	clock := time.Now()
	e.s.now = func() time.Time { return clock }
	const email, password = "ida@ispring.example", "ida's long password"
	const other, otherPassword = "jon@ispring.example", "jon's long password"
	for _, a := range [][2]string{{email, password}, {other, otherPassword}} {
		if _, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	pid := e.portal("dis.bitrix24.ru")
	// Both accounts turn two-step sign-in on, so the comparison below is of
	// the right password and code against a wrong password and a code.
	secrets := map[string]string{}
	for _, a := range [][2]string{{email, password}, {other, otherPassword}} {
		b := e.browser("10.0.0.5")
		if rec := b.signIn(a[0], a[1]); rec.Code != http.StatusSeeOther {
			t.Fatalf("%s signs in: %d", a[0], rec.Code)
		}
		page := b.do("GET", "/manager/totp", nil)
		m := totpSecretShown.FindStringSubmatch(page.Body.String())
		if m == nil {
			t.Fatalf("%s: no secret on the enrol page", a[0])
		}
		secrets[a[0]] = m[1]
		code, err := totp.GenerateCode(m[1], clock)
		if err != nil {
			t.Fatal(err)
		}
		if rec := b.do("POST", "/manager/totp", url.Values{"csrf": {csrfOf(t, page.Body.String())}, "code": {code}, "password": {a[1]}}); rec.Code != http.StatusSeeOther {
			t.Fatalf("%s turns two-step sign-in on: %d", a[0], rec.Code)
		}
	}
	// signInOn signs in on b with a code of the account's authenticator
	// at the clock's time.
	signInOn := func(b *browser, email, password string) *httptest.ResponseRecorder {
		t.Helper()
		code, err := totp.GenerateCode(secrets[email], clock)
		if err != nil {
			t.Fatal(err)
		}
		page := b.do("GET", "/manager/signin", nil)
		return b.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(t, page.Body.String())}, "email": {email},
			"password": {password}, "code": {code}})
	}
	signIn := func(ip, email, password string) *httptest.ResponseRecorder {
		t.Helper()
		return signInOn(e.browser(ip), email, password)
	}
	clock = clock.Add(30 * time.Second) // the enrolment's code is spent
	ida := e.browser("10.0.0.7")
	if rec := signInOn(ida, email, password); rec.Code != http.StatusSeeOther {
		t.Fatalf("ida signs in with password and code: %d", rec.Code)
	}
	page := ida.do("GET", "/manager/requests", nil)
	if page.Code != http.StatusOK {
		t.Fatalf("ida's console: %d", page.Code)
	}
	csrf := csrfOf(t, page.Body.String())
	thief := ida.copyOf("203.0.113.81")

	changed, err := manager.SetDisabled(ctx, e.pool, email, true, clock)
	if err != nil || !changed {
		t.Fatalf("disable: %v %v", changed, err)
	}
	e.refusedEverywhere("ida's session", ida, csrf, pid)
	e.refusedEverywhere("the thief's copy", thief, csrf, pid)

	clock = clock.Add(30 * time.Second) // a step whose code nobody has used
	// The right password and a valid code against a wrong password for
	// another account, each from an address of its own, taken in turns so
	// that the machine's load falls on both alike.
	var disabledTimes, wrongTimes []time.Duration
	for i := range 5 {
		start := time.Now()
		disabled := signIn("198.51.100."+strconv.Itoa(10+i), email, password)
		disabledTimes = append(disabledTimes, time.Since(start))
		start = time.Now()
		wrong := signIn("198.51.100."+strconv.Itoa(20+i), other, "a guess at jon's password")
		wrongTimes = append(wrongTimes, time.Since(start))
		if disabled.Code != http.StatusUnauthorized {
			t.Fatalf("a disabled account's right password and code: %d to %q, want 401", disabled.Code, disabled.Header().Get("Location"))
		}
		// The page names no account, and the one e-mail it repeats is the
		// one typed: the answers are the same but for it.
		got := strings.ReplaceAll(signInAnswer(disabled), email, "EMAIL")
		want := strings.ReplaceAll(signInAnswer(wrong), other, "EMAIL")
		if got != want {
			t.Fatalf("a disabled account's answer differs from a wrong password's:\n%s\n---\n%s", got, want)
		}
	}
	slices.Sort(disabledTimes)
	slices.Sort(wrongTimes)
	// A check skipped for a disabled account would answer it ~100 times
	// sooner (no argon2id); a factor of 3 leaves room for a busy machine.
	if d, w := disabledTimes[2], wrongTimes[2]; d*3 < w || w*3 < d {
		t.Errorf("median sign-in time: disabled account %s, wrong password %s", d, w)
	}
	// Repeated from one address, both run into the same wait at the same
	// attempt.
	for i := range manager.DefaultLimits.LoginBackoff.Free + 1 {
		disabled := signIn("198.51.100.30", email, password)
		wrong := signIn("198.51.100.31", other, "a guess at jon's password")
		if d, w := disabled.Code, wrong.Code; d != w || disabled.Header().Get("Retry-After") != wrong.Header().Get("Retry-After") {
			t.Fatalf("attempt %d from one address: disabled account %d (Retry-After %q), wrong password %d (Retry-After %q)",
				i+1, d, disabled.Header().Get("Retry-After"), w, wrong.Header().Get("Retry-After"))
		}
	}

	changed, err = manager.SetDisabled(ctx, e.pool, email, false, clock)
	if err != nil || !changed {
		t.Fatalf("enable: %v %v", changed, err)
	}
	e.refusedEverywhere("ida's session from before the disable, after enable", ida, csrf, pid)
	clock = clock.Add(time.Minute) // a fresh code: ida's first sign-in spent its step
	if rec := signIn("10.0.0.7", email, password); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/manager/requests" {
		t.Fatalf("ida enabled again, with password and code: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

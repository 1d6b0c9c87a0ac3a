package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"b24learn/internal/manager"
)

// TestConsoleCookiesHostPrefixed: every console cookie, set or cleared, is
// a __Host- cookie (Secure, Path=/, no Domain), so a sibling subdomain or a
// page on plain http cannot plant or shadow one.
func TestConsoleCookiesHostPrefixed(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), "anna@ispring.example", "long enough password"); err != nil {
		t.Fatal(err)
	}
	b := e.browser("10.0.0.7")
	var set []*http.Cookie
	step := func(name string, rec interface{ Result() *http.Response }, want int) {
		t.Helper()
		res := rec.Result()
		if res.StatusCode != want {
			t.Fatalf("%s: %d, want %d", name, res.StatusCode, want)
		}
		set = append(set, res.Cookies()...)
	}

	page := b.do("GET", "/manager/signin?lang=ru", nil)
	step("sign-in page", page, http.StatusOK)
	step("wrong password", b.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(t, page.Body.String())},
		"email": {"anna@ispring.example"}, "password": {"wrong"}}), http.StatusUnauthorized)
	page = b.do("GET", "/manager/signin?lang=ru", nil)
	step("sign-in page again", page, http.StatusOK)
	step("sign-in", b.do("POST", "/manager/signin", url.Values{"csrf": {csrfOf(t, page.Body.String())}, "lang": {"ru"},
		"email": {"anna@ispring.example"}, "password": {"long enough password"}}), http.StatusSeeOther)
	csrf := csrfOf(t, b.do("GET", "/manager/requests", nil).Body.String())
	step("language switch", b.do("POST", "/manager/lang", url.Values{"lang": {"en"}, "csrf": {csrf}}), http.StatusSeeOther)
	step("sign-out", b.do("POST", "/manager/signout", url.Values{"csrf": {csrf}}), http.StatusSeeOther)

	seen := map[string]bool{}
	for _, c := range set {
		kind := "set"
		if c.MaxAge < 0 {
			kind = "cleared"
		}
		seen[c.Name+" "+kind] = true
		if !strings.HasPrefix(c.Name, "__Host-") || c.Path != "/" || !c.Secure || c.Domain != "" {
			t.Errorf("cookie %s %s: path %q, secure %v, domain %q; want __Host-, Path=/, Secure, no Domain",
				kind, c.Name, c.Path, c.Secure, c.Domain)
		}
	}
	for _, want := range []string{
		"__Host-b24learn_manager_login set", "__Host-b24learn_manager_login cleared",
		"__Host-b24learn_manager set", "__Host-b24learn_manager cleared",
		"__Host-b24learn_manager_lang set",
	} {
		if !seen[want] {
			t.Errorf("no cookie %s; cookies: %v", want, seen)
		}
	}
}

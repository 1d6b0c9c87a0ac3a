package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/manager"
)

func TestAcceptLang(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]i18n.Lang{
		"":                                    i18n.EN,
		"ru":                                  i18n.RU,
		"ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7": i18n.RU,
		"en-US,en;q=0.9,ru;q=0.8":             i18n.EN,
		"de-DE,de;q=0.9,ru;q=0.5":             i18n.RU, // the only one we speak
		"de-DE,fr;q=0.9":                      i18n.EN,
		"uk-UA,uk;q=0.9":                      i18n.RU,
		"en;q=0.3, ru;q=0.7":                  i18n.RU,
		"ru;q=0, en;q=0.1":                    i18n.EN, // q=0: not wanted
		"ru;q=abc, en":                        i18n.EN, // a bad weight drops the entry
		"*":                                   i18n.EN,
	} {
		if got := acceptLang(header); got != want {
			t.Errorf("acceptLang(%q) = %q, want %q", header, got, want)
		}
	}
}

// The switch keeps the choice on the account, refuses a language it does
// not speak and a request without the form's token, and goes back only to
// a console page.
func TestConsoleLangSwitch(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	ctx := context.Background()
	m, err := manager.CreateManager(ctx, e.pool, manager.DefaultHasher(), "lena@ispring.example", "lena's long password")
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser("10.0.2.1")
	if rec := b.signIn("lena@ispring.example", "lena's long password"); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", rec.Code)
	}
	page := b.do("GET", "/manager/requests", nil).Body.String()
	csrf := csrfOf(t, page)
	lang := func() string {
		var l *string
		if err := e.pool.QueryRow(ctx, `SELECT lang FROM managers WHERE id = $1`, m.ID).Scan(&l); err != nil {
			t.Fatal(err)
		}
		if l == nil {
			return ""
		}
		return *l
	}

	if rec := b.do("POST", "/manager/lang", url.Values{"lang": {"ru"}}); rec.Code != http.StatusForbidden || lang() != "" {
		t.Fatalf("without the form token: %d, lang %q", rec.Code, lang())
	}
	if rec := b.do("POST", "/manager/lang", url.Values{"lang": {"de"}, "csrf": {csrf}}); rec.Code != http.StatusBadRequest ||
		!strings.Contains(rec.Body.String(), "Choose Russian or English.") || lang() != "" {
		t.Fatalf("unknown language: %d %q, lang %q", rec.Code, rec.Body.String(), lang())
	}
	for back, want := range map[string]string{
		"/manager/portals/7":   "/manager/portals/7",
		"https://evil.example": "/manager/requests",
		"//evil.example/x":     "/manager/requests",
		"/manager/\\evil":      "/manager/requests",
		"":                     "/manager/requests",
		// Control characters have no place in a Location header.
		"/manager/portals/7\x00": "/manager/requests",
		"/manager/\tportals":     "/manager/requests",
		"/manager/portals\x7f":   "/manager/requests",
		"/manager/portals\u0085": "/manager/requests",
	} {
		rec := b.do("POST", "/manager/lang", url.Values{"lang": {"ru"}, "csrf": {csrf}, "back": {back}})
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("back %q: %d to %q, want %q", back, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	if lang() != "ru" {
		t.Fatalf("lang after switching: %q", lang())
	}
	// Russian now, whatever the browser asks for; errors too.
	if body := b.do("GET", "/manager/audit", nil).Body.String(); !strings.Contains(body, `<html lang="ru">`) || !strings.Contains(body, "Журнал действий") {
		t.Fatalf("audit page after switching:\n%s", body)
	}
	if rec := b.do("POST", "/manager/lang", url.Values{"lang": {"xx"}, "csrf": {csrf}}); !strings.Contains(rec.Body.String(), "Выберите русский или английский") {
		t.Fatalf("error after switching to Russian: %q", rec.Body.String())
	}
	// So is River UI's absence, on an instance without River.
	river := e.s.river
	e.s.river = nil
	e.s.riverUI = e.s.newRiverUI(t.Context())
	e.s.river, e.h = river, e.s.routes()
	if rec := b.do("GET", "/manager/river/", nil); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), i18n.T(i18n.RU, "mgr.err_river_off")) {
		t.Fatalf("River UI off after switching to Russian: %d %q", rec.Code, rec.Body.String())
	}
}

// The language chosen with the sign-in page's own switch holds for its
// answers (a wrong password) and, once signed in, is the account's choice:
// its console and its e-mails.
func TestSignInPageKeepsItsLanguage(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	if _, err := manager.CreateManager(context.Background(), e.pool, manager.DefaultHasher(), "oleg@ispring.example", "oleg's long password"); err != nil {
		t.Fatal(err)
	}
	b := e.browser("10.0.2.2") // no Accept-Language: English by default
	page := b.do("GET", "/manager/signin?lang=ru", nil).Body.String()
	if !strings.Contains(page, `<html lang="ru">`) || !strings.Contains(page, `name="lang" value="ru"`) {
		t.Fatalf("the Russian sign-in page does not post its language on:\n%s", page)
	}
	form := url.Values{"csrf": {csrfOf(t, page)}, "lang": {"ru"}, "email": {"oleg@ispring.example"}, "password": {"wrong"}}
	rec := b.do("POST", "/manager/signin", form)
	if body := rec.Body.String(); rec.Code != http.StatusUnauthorized || !strings.Contains(body, `<html lang="ru">`) ||
		strings.Contains(body, "Wrong e-mail") || !strings.Contains(body, `name="lang" value="ru"`) {
		t.Fatalf("a wrong password on the Russian page: %d\n%s", rec.Code, body)
	}
	form.Set("csrf", csrfOf(t, rec.Body.String()))
	form.Set("password", "oleg's long password")
	if rec := b.do("POST", "/manager/signin", form); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", rec.Code, rec.Body.String())
	}
	if body := b.do("GET", "/manager/requests", nil).Body.String(); !strings.Contains(body, `<html lang="ru">`) {
		t.Fatalf("the console after signing in from the Russian page is not Russian:\n%s", body)
	}
	// The account keeps it: its e-mails (activation requests) are Russian.
	if got, err := manager.MailLangs(context.Background(), e.pool, []string{"Oleg@ispring.example"}); err != nil || got["Oleg@ispring.example"] != i18n.RU {
		t.Fatalf("the account's e-mail language after signing in from the Russian page: %v %v", got, err)
	}
	// Without the switch the page posts no language: the browser's holds.
	if page := e.browser("10.0.2.3").do("GET", "/manager/signin", nil).Body.String(); strings.Contains(page, `name="lang"`) {
		t.Fatal("the sign-in page without a chosen language posts one")
	}
}

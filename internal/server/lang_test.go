package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"b24learn/internal/activation"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/i18n"
	"b24learn/internal/learn"
)

// Each portal gets one language, from its LANG, on every page and answer:
// the installer, the settings page, the read-only page, the status panel
// the page polls, the Learn check's error, the activation form's errors and
// its whole page. Before, a ua portal got Russian pages with English check
// errors, uk and be portals English activation errors, and the installer
// was English for everyone. The e-mail to iSpring's managers is theirs, in
// English, whatever the portal's LANG.
func TestOneLanguagePerPortal(t *testing.T) {
	t.Parallel()
	e := newB24Env(t)
	ctx := context.Background()
	var mails []string
	for i, c := range []struct {
		lang string
		want i18n.Lang
	}{{"ua", i18n.RU}, {"uk", i18n.RU}, {"be", i18n.RU}, {"kz", i18n.RU}, {"en", i18n.EN}} {
		bp := e.sim.AddPortal(b24sim.PortalOptions{Lang: c.lang, Org: b24sim.GenerateOrg(int64(100+i), 12, 3)})
		say := func(what, body string) { t.Helper(); checkOneLanguage(t, c.lang+" "+what, body, c.want) }

		say("installer", e.install(bp).body)
		app := e.open(bp, bp.AdminID())
		if app.status != http.StatusOK {
			t.Fatalf("%s: app page %d", c.lang, app.status)
		}
		say("settings page", app.body)
		ro := e.open(bp, bp.NonAdminID())
		if ro.status != http.StatusOK || !strings.Contains(ro.body, html.EscapeString(i18n.T(c.want, "readonly"))) {
			t.Fatalf("%s: read-only page %d without its note", c.lang, ro.status)
		}
		say("read-only page", ro.body)
		// The panel the page polls while a run is busy speaks the page's language.
		for what, tk := range map[string]string{"status panel": app.session(), "read-only status panel": ro.session()} {
			sp := e.get(tk, "/app/status")
			if sp.status != http.StatusOK || !strings.Contains(sp.body, html.EscapeString(i18n.T(c.want, "sec_status"))) {
				t.Fatalf("%s: %s %d %s", c.lang, what, sp.status, sp.body)
			}
			say(what, sp.body)
		}

		// The Learn check fails: the address rule refuses a loopback account.
		tok := app.session()
		form := url.Values{"learn_url": {"https://127.0.0.1:9"}, "learn_email": {"admin@acme.example"},
			"learn_password": {"secret"}, "first_run": {"03:00"}}
		saved := e.send(tok, "/app/settings", form)
		var sr saveResult
		if err := json.Unmarshal([]byte(saved.body), &sr); err != nil || saved.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: save %d %s", c.lang, saved.status, saved.body)
		}
		if got, want := sr.Errors[fieldLearnURL], i18n.T(c.want, "check."+learn.CheckUnreachable); got != want {
			t.Errorf("%s: check error %q, want %q", c.lang, got, want)
		}
		say("check answer", html.EscapeString(sr.Message+" "+sr.Errors[fieldLearnURL]))

		// The activation form without script: a whole page with the errors,
		// then the confirmation.
		bad := e.send("", "/app/activation", url.Values{"session": {tok}, "name": {" "}, "email": {"ivan@"}, "phone": {"8 912"}})
		if bad.status != http.StatusUnprocessableEntity || !strings.Contains(bad.body, html.EscapeString(i18n.T(c.want, "contact.name_required"))) {
			t.Fatalf("%s: activation errors %d %s", c.lang, bad.status, bad.body)
		}
		say("activation errors", bad.body)
		good := e.send("", "/app/activation", url.Values{"session": {tok}, "name": {"Ivan Petrov"},
			"email": {"ivan@acme.example"}, "phone": {"+7 912 345-67-89"}})
		if good.status != http.StatusOK || !strings.Contains(good.body, html.EscapeString(i18n.T(c.want, "form.sent"))) {
			t.Fatalf("%s: activation %d %s", c.lang, good.status, good.body)
		}
		say("activation page", good.body)

		p := e.portal(bp.MemberID())
		req, err := activation.LatestRequest(ctx, e.pool, p.ID)
		if err != nil || req == nil {
			t.Fatalf("%s: request %v %v", c.lang, req, err)
		}
		m := &mailCapture{}
		f := &activation.Forwarder{Log: slog.New(slog.DiscardHandler), Pool: e.pool, Mail: m, To: []string{"sales@ispring.example"}}
		if err := f.Forward(ctx, p.ID, req.ID, false); err != nil || len(m.sent) != 1 {
			t.Fatalf("%s: forward %v, %d mails", c.lang, err, len(m.sent))
		}
		// The same words for every portal: only the portal's own details differ.
		body := strings.NewReplacer(p.Domain, "PORTAL", req.UpdatedAt.UTC().Format("2006-01-02 15:04"), "TIME").Replace(m.sent[0].Subject + "\n" + m.sent[0].Body)
		if strings.ContainsFunc(body, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }) {
			t.Errorf("%s: the managers' e-mail is not all English:\n%s", c.lang, body)
		}
		mails = append(mails, body)
	}
	for i := range mails {
		if mails[i] != mails[0] {
			t.Errorf("the managers' e-mail differs by portal language:\n%s\n---\n%s", mails[0], mails[i])
		}
	}
}

// checkOneLanguage fails when body, an HTML page or an escaped answer, is
// not in want: its html lang names another language, or a sentence of the
// catalogue shows in the other language. Short texts ("CSV", "Open") are
// left out: the portal's own data (department names) may hold such words.
func checkOneLanguage(t *testing.T, what, body string, want i18n.Lang) {
	t.Helper()
	other := i18n.EN
	if want == i18n.EN {
		other = i18n.RU
	}
	if strings.Contains(body, "<html") && !strings.Contains(body, `<html lang="`+want.String()+`"`) {
		t.Errorf("%s: html lang is not %s", what, want)
	}
	for _, k := range i18n.Keys() {
		s := i18n.T(other, k)
		if len([]rune(s)) < 12 || s == i18n.T(want, k) {
			continue
		}
		// A format's fixed part up to its first verb is enough to spot it.
		if i := strings.IndexByte(s, '%'); i >= 0 {
			s = s[:i]
			if len([]rune(s)) < 12 {
				continue
			}
		}
		if strings.Contains(body, html.EscapeString(s)) {
			t.Errorf("%s: in %s but shows %q (%s) in %s", what, want, s, k, other)
		}
	}
}

// send posts a form with the session in X-Session (a script's request)
// when tok is set, or else as a plain form post.
func (e *b24Env) send(tok, path string, form url.Values) page {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.app.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tok != "" {
		req.Header.Set(sessionHeader, tok)
	}
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err)
}

// get asks for path with the session in X-Session, as the page's script does.
func (e *b24Env) get(tok, path string) page {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.app.URL+path, nil)
	req.Header.Set(sessionHeader, tok)
	resp, err := http.DefaultClient.Do(req)
	return readPage(e.t, resp, err)
}

type mailCapture struct{ sent []activation.Mail }

func (m *mailCapture) Send(_ context.Context, msg activation.Mail) error {
	m.sent = append(m.sent, msg)
	return nil
}

// The refusals of the pages Bitrix24 opens in its iframe speak the portal's
// language as well, by its LANG: those said before the OAuth server has
// confirmed the POST (a form outside Bitrix24, tokens it does not confirm,
// the verification gate's 429, an OAuth server answer it cannot use) and
// those after (a non-admin's install, an app not yet installed, Bitrix24
// refusing or answering oddly, a portal address the rule refuses). Before,
// all of them were English for every portal.
func TestFrameRefusalsInPortalLanguage(t *testing.T) {
	t.Parallel()
	// Each request comes from an address of its own, which the gate lets
	// verify once; the gate's case sends a second.
	e := newGateEnv(t, VerifyLimits{PerAddress: Bucket{Burst: 1, Every: time.Hour}})
	walled := newB24EnvWith(t, func(c *config.Config) { c.B24AllowPrivateHosts = false })
	peers := 0
	peer := func() string { peers++; return fmt.Sprintf("198.51.%d.%d", 100+peers/250, 1+peers%250) }
	forged := func(q, body url.Values) {
		body.Set("AUTH_ID", randHex(35))
		body.Set("REFRESH_ID", randHex(35))
	}
	for i, c := range []struct {
		lang string
		want i18n.Lang
	}{{"ua", i18n.RU}, {"uk", i18n.RU}, {"be", i18n.RU}, {"kz", i18n.RU}, {"ru", i18n.RU}, {"en", i18n.EN}} {
		bp := e.sim.AddPortal(b24sim.PortalOptions{Lang: c.lang, Org: b24sim.GenerateOrg(int64(200+i), 8, 2)})
		bp.Install() // the installer's turn: no portal row yet
		// frame sends userID's frame POST to path, changed by edit.
		frame := func(path string, userID int64, edit func(q, body url.Values)) page {
			t.Helper()
			_, q, body, err := bp.FrameRequest(userID)
			if err != nil {
				t.Fatal(err)
			}
			if edit != nil {
				edit(q, body)
			}
			return e.page(attack{path: path, query: q, body: body, peer: peer()})
		}
		for _, r := range []struct {
			what   string
			status int
			text   msg
			send   func() page
		}{
			{"outside Bitrix24, LANG in the query", http.StatusBadRequest, msgOutsideB24, func() page {
				return e.page(attack{path: "/b24/app", query: url.Values{"LANG": {c.lang}}, body: url.Values{}, peer: peer()})
			}},
			{"outside Bitrix24, LANG in the form", http.StatusBadRequest, msgOutsideB24, func() page {
				return e.page(attack{path: "/b24/install", query: url.Values{}, body: url.Values{"LANG": {c.lang}}, peer: peer()})
			}},
			{"body too large", http.StatusRequestEntityTooLarge, msgBodyTooLarge, func() page {
				return e.page(attack{path: "/b24/app", query: url.Values{"LANG": {c.lang}},
					body: url.Values{"x": {strings.Repeat("x", maxBodyBytes)}}, peer: peer()})
			}},
			{"tokens not confirmed", http.StatusUnauthorized, msgNotConfirmed, func() page {
				return frame("/b24/install", bp.AdminID(), forged)
			}},
			{"OAuth server not on the list", http.StatusUnauthorized, msgNotConfirmed, func() page {
				return frame("/b24/app", bp.AdminID(), func(_, body url.Values) { body.Set("SERVER_ENDPOINT", "https://oauth.example.com/rest/") })
			}},
			{"verification gate", http.StatusTooManyRequests, msgVerifyBusy, func() page {
				a := e.forgedFrame("/b24/app", bp.MemberID(), peer())
				a.query.Set("LANG", c.lang)
				if pg := e.page(a); pg.status != http.StatusUnauthorized {
					t.Fatalf("%s: first forged frame %d %s", c.lang, pg.status, pg.body)
				}
				return e.page(a)
			}},
			{"OAuth server answers no tokens", http.StatusServiceUnavailable, msgB24Down, func() page {
				// Not a refusal (an error code or a bare status): not the
				// request's fault.
				e.sim.InjectOAuthFault(http.StatusOK, "{}")
				return frame("/b24/install", bp.AdminID(), nil)
			}},
			{"non-admin installs", http.StatusForbidden, msgInstallAdminOnly, func() page {
				return frame("/b24/install", bp.NonAdminID(), nil)
			}},
			{"app not installed", http.StatusConflict, msgNotInstalled, func() page {
				return frame("/b24/app", bp.NonAdminID(), nil)
			}},
			{"Bitrix24 refuses", http.StatusUnauthorized, msgB24Refused, func() page {
				bp.InjectFault(b24sim.Fault{Method: "profile", Status: http.StatusUnauthorized, Code: "NO_AUTH_FOUND", Count: 5})
				defer bp.ClearFaults()
				return frame("/b24/install", bp.AdminID(), nil)
			}},
			{"Bitrix24 answers oddly", http.StatusBadGateway, msgB24BadAnswer, func() page {
				bp.InjectFault(b24sim.Fault{Method: "profile", Status: http.StatusBadRequest, Code: "ERROR_METHOD_NOT_FOUND", Count: 5})
				defer bp.ClearFaults()
				return frame("/b24/install", bp.AdminID(), nil)
			}},
			{"portal address refused", http.StatusBadGateway, msgB24BadAddress, func() page {
				wp := walled.sim.AddPortal(b24sim.PortalOptions{Lang: c.lang, Org: b24sim.GenerateOrg(int64(300+i), 4, 1)})
				wp.Install()
				return walled.open(wp, wp.AdminID())
			}},
		} {
			what := c.lang + " " + r.what
			pg := r.send()
			if want := r.text.in(c.want); pg.status != r.status || !strings.Contains(pg.body, want) {
				t.Errorf("%s: %d %q, want %d %q", what, pg.status, pg.body, r.status, want)
			}
			checkOneLanguage(t, what, pg.body, c.want)
			checkPlainLanguage(t, what, pg.body, c.want)
		}
	}

	// Before the OAuth server has confirmed anything LANG is the sender's:
	// what is not a language code as Bitrix24 writes one picks English,
	// however it starts.
	for _, a := range []attack{
		{query: url.Values{"LANG": {"ua-" + strings.Repeat("x", 4000)}}, body: url.Values{}},
		{query: url.Values{"LANG": {"ru<b>"}}, body: url.Values{}},
		{query: url.Values{"LANG": {"ru\x00"}}, body: url.Values{}},
		{query: url.Values{"LANG": {"ua"}}, body: url.Values{"LANG": {"kz\n<script>"}}}, // the form's wins, as for a verified POST
	} {
		a.path, a.peer = "/b24/app", peer()
		what := fmt.Sprintf("LANG %.12q, form LANG %.12q", a.query.Get("LANG"), a.body.Get("LANG"))
		pg := e.page(a)
		if want := msgOutsideB24.in(i18n.EN); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, want) {
			t.Errorf("%s: %d %q, want 400 %q", what, pg.status, pg.body, want)
		}
		checkPlainLanguage(t, what, pg.body, i18n.EN)
	}
}

// englishSentence is three Latin words in a row: in a Russian answer, an
// English sentence; names the Russian texts use (Bitrix24, iSpring Learn)
// are shorter.
var englishSentence = regexp.MustCompile(`[A-Za-z]+(?:[ ,'’]+[A-Za-z]+){2,}`)

// checkPlainLanguage fails when body, a plain-text answer, is not wholly in
// want: a Russian one must have Cyrillic and no English sentence, an English
// one no Cyrillic, whether or not the text is in the catalogue.
func checkPlainLanguage(t *testing.T, what, body string, want i18n.Lang) {
	t.Helper()
	cyrillic := strings.ContainsFunc(body, func(r rune) bool { return unicode.Is(unicode.Cyrillic, r) })
	switch {
	case want == i18n.RU && !cyrillic:
		t.Errorf("%s: in ru but has no Russian: %q", what, body)
	case want == i18n.RU && englishSentence.MatchString(body):
		t.Errorf("%s: in ru but shows English %q", what, englishSentence.FindString(body))
	case want == i18n.EN && cyrillic:
		t.Errorf("%s: in en but shows Russian: %q", what, body)
	}
}

package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
)

// learnAtHosts serves a learnsim on loopback under the host names given
// (no other name resolves) and has the env's saves check the account there,
// as the app does. port is the listener's, for the accounts' URLs.
func (e *settingsEnv) learnAtHosts(hosts ...string) (sim *learnsim.Sim, port string) {
	e.t.Helper()
	e.s.cfg.LearnAllowPrivateHosts = true
	sim = learnsim.New(learnsim.Options{Mount: learnsim.MountAccountHost})
	srv := httptest.NewServer(sim.Handler())
	e.t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	hc := learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true, LookupIP: func(_ context.Context, host string) ([]netip.Addr, error) {
		if slices.Contains(hosts, host) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}})
	e.s.check = learnFindFunc(func(ctx context.Context, c learn.Credentials) (string, error) {
		return learn.FindAPI(ctx, c, learn.Options{HTTPClient: hc, AllowHTTP: true})
	})
	return sim, u.Port()
}

// TestSettingsStoresLearnAPI: saving checks the account where its API
// answers (here: a custom domain and an iSpring-domain account whose API host
// does not exist, learnsim serving only /api/v2 on account hosts) and stores
// that base beside the account URL; a save of unchanged settings fills it in
// for a portal saved before the base was kept; a changed URL replaces it, or
// clears it when the check names none.
func TestSettingsStoresLearnAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSettingsEnv(t)
	sim, port := e.learnAtHosts("lms.acme.test", "acme.ispring.ru")
	custom, hosted := "http://lms.acme.test:"+port, "http://acme.ispring.ru:"+port
	for _, a := range []string{custom, hosted} {
		if _, err := sim.AddAccount(learnsim.AccountOptions{URL: a, Email: "admin@acme.ru", Password: "pw"}); err != nil {
			t.Fatal(err)
		}
	}
	p := e.addPortal("apibase", "en")
	_, tok := e.session(p, 42, true, "en")
	stored := func() (string, int) {
		t.Helper()
		st, err := settings.Load(ctx, e.pool, nil, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.LearnAPIURL, e.count(`SELECT count(*) FROM settings_audit WHERE portal_id = $1`, p.ID)
	}
	save := func(form url.Values) {
		t.Helper()
		if r, sr := e.save(tok, form); r.status != http.StatusOK || !sr.OK {
			t.Fatalf("save %s: %d %s", form.Get("learn_url"), r.status, r.body)
		}
	}

	form := with(validForm(), "learn_url", custom, "learn_email", "admin@acme.ru", "learn_password", "pw")
	save(form)
	if got, audits := stored(); got != custom+"/api/v2" || audits != 1 {
		t.Fatalf("after the first save: base %q, %d audit rows", got, audits)
	}

	// A portal saved before the base was kept: saving the same settings stores it, with no audit row.
	if _, err := settings.Save(ctx, e.pool, e.kr, p.ID, 42, func(s *settings.Settings) { s.LearnAPIURL = "" }); err != nil {
		t.Fatal(err)
	}
	if got, audits := stored(); got != "" || audits != 1 {
		t.Fatalf("a portal saved before the base was kept: base %q, %d audit rows", got, audits)
	}
	save(with(form, "learn_password", ""))
	if got, audits := stored(); got != custom+"/api/v2" || audits != 1 {
		t.Fatalf("after saving unchanged settings: base %q, %d audit rows", got, audits)
	}

	save(with(form, "learn_url", hosted))
	if got, _ := stored(); got != hosted+"/api/v2" {
		t.Fatalf("after moving to %s: base %q", hosted, got)
	}

	e.s.check = learnCheckFunc(e.check) // a check that names no base
	save(with(form, "learn_url", custom))
	if got, _ := stored(); got != "" {
		t.Fatalf("after a URL change with no base found: base %q, want none", got)
	}
}

// TestSettingsLoginEmailNote: next to the login e-mail toggle the page says,
// in the portal's language, that Learn may still e-mail sign-in details when
// the app reactivates a user.
func TestSettingsLoginEmailNote(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	for lang, want := range map[string]string{
		"en": "iSpring Learn itself may e-mail them their sign-in details even with this option off",
		"ru": "iSpring Learn может сам отправить ему данные для входа, даже если параметр выключен",
	} {
		p := e.addPortal("note-"+lang, lang)
		sess, tok := e.session(p, 7, true, lang)
		body := e.page(p, sess, tok)
		i, j := strings.Index(body, `id="send_login_email"`), strings.Index(body, want)
		if i < 0 || j < 0 || strings.Index(body[i:], `id="heads_as_managers"`) < j-i {
			t.Errorf("%s: the note is not right after the login e-mail toggle (toggle at %d, note at %d)", lang, i, j)
		}
	}
}

// TestSettingsTakeLearnLogin: Learn signs in with a user's login as well as
// with its e-mail, so the settings take an administrator's login (no @):
// the field asks for either, is not an e-mail input, and a save with the
// login passes the check against Learn and stores it.
func TestSettingsTakeLearnLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSettingsEnv(t)
	sim, port := e.learnAtHosts("lms.acme.test")
	acct := "http://lms.acme.test:" + port
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: acct, Email: "owner@acme.ru", Login: "acme-admin", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	for lang, label := range map[string]string{"en": "login or e-mail", "ru": "Логин или e-mail"} {
		p := e.addPortal("login-"+lang, lang)
		sess, tok := e.session(p, 42, true, lang)
		body := e.page(p, sess, tok)
		if !strings.Contains(body, label) || !strings.Contains(body, `<input type="text" id="learn_email"`) {
			t.Errorf("%s: the field is not a text input labelled %q", lang, label)
		}
		if r, sr := e.save(tok, with(validForm(), "learn_url", acct, "learn_email", "acme-admin", "learn_password", "pw")); r.status != http.StatusOK || !sr.OK {
			t.Fatalf("%s: save with the login: %d %s", lang, r.status, r.body)
		}
		st, err := settings.Load(ctx, e.pool, nil, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.LearnEmail != "acme-admin" {
			t.Errorf("%s: stored %q, want the login", lang, st.LearnEmail)
		}
		if r, sr := e.save(tok, with(validForm(), "learn_url", acct, "learn_email", "acme", "learn_password", "pw")); r.status == http.StatusOK && sr.OK {
			t.Errorf("%s: a save with a wrong login passed", lang)
		}
	}
}

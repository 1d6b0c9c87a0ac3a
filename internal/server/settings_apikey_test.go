package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"b24learn/internal/apptest"
	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
)

// TestSettingsAPIKeyWhenHeaderAuthIsRetired: against a Learn that no longer
// takes the e-mail and password (docs/learn-api.md, "Authentication"), a save
// with them alone fails the check with the message that asks for an API key;
// a save with the key goes through the real form handler and check, keeps
// the secret encrypted and out of the page, the answers and the logs; a save
// with the secret field empty keeps it; and a sync from the saved settings
// writes the portal's org into Learn.
func TestSettingsAPIKeyWhenHeaderAuthIsRetired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSettingsEnv(t)
	logs := &apptest.Logs{}
	e.s.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.s.cfg.LearnAllowPrivateHosts = true

	const email, pass, clientID, clientSecret = "admin@acme.test", "s3cret-pass", "cid-acme", "Sx7-client-secret-0123456789"
	lsim := learnsim.New(learnsim.Options{Seed: 1, Mount: learnsim.MountAccountHost, Unsettled: learnsim.Unsettled{HeaderAuthRetired: true}})
	lsrv := httptest.NewServer(lsim.Handler())
	t.Cleanup(lsrv.Close)
	acct := lsrv.URL
	if _, err := lsim.AddAccount(learnsim.AccountOptions{URL: acct, Email: email, Password: pass, ClientID: clientID, ClientSecret: clientSecret}); err != nil {
		t.Fatal(err)
	}
	hc := learn.NewHTTPClient(learn.DialerOptions{AllowPrivate: true})
	var mu sync.Mutex
	var checked []learn.Credentials
	e.s.check = learnFindFunc(func(ctx context.Context, c learn.Credentials) (string, error) {
		mu.Lock()
		checked = append(checked, c)
		mu.Unlock()
		return learn.FindAPI(ctx, c, learn.Options{HTTPClient: hc, AllowHTTP: true,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	})

	bsrv := b24sim.Start(b24sim.Options{Rate: -1})
	t.Cleanup(bsrv.Close)
	bp := bsrv.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(5, 30, 4)})
	tok := bp.Install()
	bp.FinishInstall(ctx)
	oauth := &bitrix24.OAuth{URL: bsrv.URL, ClientID: bsrv.ClientID(), ClientSecret: bsrv.ClientSecret()}
	b24 := bitrix24.New(bitrix24.Config{Endpoint: bp.ClientEndpoint(), Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok)),
		RetryWait: 100 * time.Millisecond})
	p := e.addPortal(bp.MemberID(), "en")
	sess, token := e.session(p, 7, true, "en")

	form := with(validForm(), "learn_url", acct, "learn_email", email, "learn_password", pass, "departments", `{"selected":[1],"excluded":[]}`)
	r, sr := e.save(token, form)
	if r.status != http.StatusUnprocessableEntity || sr.Errors["learn_password"] != i18n.T(i18n.EN, "check."+learn.CheckBadCredentials) ||
		!strings.Contains(sr.Errors["learn_password"], "API key") {
		t.Fatalf("e-mail and password alone: %d %v, want the message that asks for an API key", r.status, sr.Errors)
	}

	keyForm := with(form, "learn_password", "", "learn_client_id", clientID, "learn_client_secret", clientSecret)
	r, sr = e.save(token, keyForm)
	if r.status != http.StatusOK || !sr.OK || !sr.HasClientSecret || sr.HasPassword {
		t.Fatalf("save with the API key: %d %s", r.status, r.body)
	}
	var sealed []byte
	if err := e.pool.QueryRow(ctx, `SELECT learn_client_secret FROM portal_settings WHERE portal_id = $1`, p.ID).Scan(&sealed); err != nil ||
		len(sealed) == 0 || strings.Contains(string(sealed), clientSecret) {
		t.Errorf("client secret stored as %q (%v), want it encrypted", sealed, err)
	}
	st, err := settings.Load(ctx, e.pool, e.kr, p.ID)
	if err != nil || st.LearnClientID != clientID || st.ClientSecret != clientSecret || st.LearnAPIURL != acct+"/api/v2" || !st.HasAccount() {
		t.Fatalf("stored %v %+v", err, st)
	}

	// An empty secret field keeps the stored secret, and the check uses it.
	r, _ = e.save(token, with(keyForm, "learn_client_secret", "", "first_run", "04:00"))
	if r.status != http.StatusOK {
		t.Fatalf("resave: %d %s", r.status, r.body)
	}
	mu.Lock()
	last := checked[len(checked)-1]
	mu.Unlock()
	if last.ClientID != clientID || last.ClientSecret != clientSecret {
		t.Errorf("the resave's check used %q (a secret: %v), want the stored key", last.ClientID, last.ClientSecret != "")
	}
	if st, _ := settings.Load(ctx, e.pool, e.kr, p.ID); st.ClientSecret != clientSecret {
		t.Error("an empty secret field did not keep the stored secret")
	}

	page := e.page(p, sess, token)
	if strings.Contains(page, clientSecret) || !strings.Contains(page, `name="learn_client_secret" value=""`) ||
		!strings.Contains(page, `value="`+clientID+`"`) {
		t.Error("the page holds the client secret, or not the saved Client ID")
	}

	// A key Learn refuses, a wrong secret or a key deleted in Learn, is
	// said as the key, next to the secret, in the admin's language.
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		_, tk := e.session(p, 7, true, string(lang))
		want := i18n.T(lang, "check."+learn.CheckBadAPIKey)
		if r, sr := e.save(tk, with(keyForm, "learn_client_secret", "a-wrong-secret")); r.status != http.StatusUnprocessableEntity ||
			sr.Errors["learn_client_secret"] != want || sr.Errors["learn_password"] != "" {
			t.Errorf("%s: a wrong secret: %d %v, want the key's sentence", lang, r.status, sr.Errors)
		}
		if err := lsim.SetAPIKey(acct, "", ""); err != nil {
			t.Fatal(err)
		}
		if r, sr := e.save(tk, with(keyForm, "learn_client_secret", "")); r.status != http.StatusUnprocessableEntity ||
			sr.Errors["learn_client_secret"] != want {
			t.Errorf("%s: the stored key deleted in Learn: %d %v, want the key's sentence", lang, r.status, sr.Errors)
		}
		if err := lsim.SetAPIKey(acct, clientID, clientSecret); err != nil {
			t.Fatal(err)
		}
	}

	sy := syncer.New(syncer.Config{
		Pool:     e.pool,
		Settings: syncer.DBSettings{Pool: e.pool, Keyring: e.kr},
		NewLearn: func(_ context.Context, _ int64, s syncer.Settings) (syncer.Learn, error) {
			return learn.New(s.LearnCredentials(), learn.Options{BaseURL: s.LearnAPIURL, AllowHTTP: true, HTTPClient: hc,
				Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Retry:  learn.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Timeout: 10 * time.Second}})
		},
		NewBitrix24: func(context.Context, int64) (syncer.Bitrix24, error) { return b24, nil },
	})
	rep, err := sy.Run(ctx, p.ID, syncer.TriggerManual)
	if err != nil {
		t.Fatal(err)
	}
	state, err := lsim.Snapshot(acct)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts["department.create"] == 0 || rep.Counts["user.create"] == 0 || len(state.Users) < 2 || len(state.Departments) < 2 {
		t.Fatalf("the sync wrote %v: %d departments, %d users in Learn", rep.Counts, len(state.Departments), len(state.Users))
	}
	if c := lsim.Counts(acct); c.Rejected != 1 {
		t.Errorf("Learn refused %d calls, want only the save without a key", c.Rejected)
	}
	if strings.Contains(logs.String(), clientSecret) {
		t.Error("the logs hold the client secret")
	}
	if !strings.Contains(logs.String(), "learn check failed") {
		t.Error("the log sink saw nothing: the test would not catch a secret")
	}
}

// TestSettingsAPIKeyValidation: half an API key is refused next to the
// missing half; with a key the password may be left empty; a stored secret
// is not sent to a new address.
func TestSettingsAPIKeyValidation(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	p := e.addPortal("apikey", "en")
	_, tok := e.session(p, 1, true, "en")
	for _, c := range []struct {
		name  string
		form  url.Values
		field string
		want  string
	}{
		{"no secret", with(validForm(), "learn_client_id", "cid"), "learn_client_secret", i18n.T(i18n.EN, "msg.client_secret_required")},
		{"no Client ID", with(validForm(), "learn_client_secret", "sec"), "learn_client_id", i18n.T(i18n.EN, "msg.client_id_required")},
		{"Client ID with a space", with(validForm(), "learn_client_id", "c id", "learn_client_secret", "sec"), "learn_client_id", i18n.T(i18n.EN, "msg.client_id_invalid")},
		{"neither password nor key", with(validForm(), "learn_password", ""), "learn_password", i18n.T(i18n.EN, "msg.password_required")},
	} {
		if r, sr := e.save(tok, c.form); r.status != http.StatusUnprocessableEntity || sr.Errors[c.field] != c.want {
			t.Errorf("%s: %d %v, want %q on %s", c.name, r.status, sr.Errors, c.want, c.field)
		}
	}
	keyed := with(validForm(), "learn_password", "", "learn_client_id", "cid", "learn_client_secret", "sec-1")
	if r, sr := e.save(tok, keyed); r.status != http.StatusOK || !sr.OK {
		t.Fatalf("a key without a password: %d %s", r.status, r.body)
	}
	if calls := e.checkCalls(); calls[len(calls)-1].ClientSecret != "sec-1" || calls[len(calls)-1].Password != "" {
		t.Errorf("checked %+v", calls[len(calls)-1].ClientID)
	}
	r, sr := e.save(tok, with(keyed, "learn_client_secret", "", "learn_url", "https://other.ispringlearn.ru"))
	if r.status != http.StatusUnprocessableEntity || sr.Errors["learn_client_secret"] != i18n.T(i18n.EN, "msg.client_secret_again") {
		t.Errorf("a new address with the stored secret: %d %v", r.status, sr.Errors)
	}
	if calls := e.checkCalls(); calls[len(calls)-1].AccountURL == "https://other.ispringlearn.ru" {
		t.Error("the stored secret was checked against a new address")
	}
}

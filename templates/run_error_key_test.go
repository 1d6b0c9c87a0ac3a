package templates

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/manager"
	"b24learn/internal/syncer"
)

// refusedRunErrors are the run errors a wrong or deleted API key and a
// wrong password leave, from a real client against learnsim, wrapped as a
// run wraps them.
func refusedRunErrors(t *testing.T) (key, password string) {
	t.Helper()
	sim := learnsim.New(learnsim.Options{Seed: 1})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	const acct = "https://acme.ispringlearn.test"
	if _, err := sim.AddAccount(learnsim.AccountOptions{URL: acct, Email: "admin@acme.test", Password: "right", ClientID: "cid", ClientSecret: "right-secret"}); err != nil {
		t.Fatal(err)
	}
	run := func(creds learn.Credentials) string {
		c, err := learn.New(creds, learn.Options{BaseURL: srv.URL, AllowHTTP: true,
			Retry: learn.RetryPolicy{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Timeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListDepartments(context.Background())
		if err == nil {
			t.Fatal("refused credentials were taken")
		}
		return fmt.Errorf("read learn departments: %w", err).Error()
	}
	key = run(learn.Credentials{AccountURL: acct, Email: "admin@acme.test", ClientID: "cid", ClientSecret: "deleted-key"})
	password = run(learn.Credentials{AccountURL: acct, Email: "admin@acme.test", Password: "wrong"})
	return key, password
}

// TestRefusedAPIKeyIsSaidAsTheKey: the status panel and the managers'
// console say a refused API key as the key, with what to do (make a new key
// and paste it), in every language; a refused password keeps its words.
func TestRefusedAPIKeyIsSaidAsTheKey(t *testing.T) {
	t.Parallel()
	key, password := refusedRunErrors(t)
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		keyText := i18n.T(lang, "check."+learn.CheckBadAPIKey)
		pwText := i18n.T(lang, "check."+learn.CheckBadCredentials)
		if text, _ := RunErrorText(lang, key); text != keyText {
			t.Errorf("%s: a refused key %q reads %q, want the key's sentence", lang, key, text)
		}
		if text, _ := RunErrorText(lang, password); text != pwText {
			t.Errorf("%s: a refused password %q reads %q, want the password's sentence", lang, password, text)
		}
		for _, raw := range []string{key, "find the learn api: learn check bad_api_key: " + key} {
			run := RunView{ID: 1, Trigger: "scheduled", Status: syncer.RunFailed, StartedAt: time.Now(), Error: raw}
			var panel, console strings.Builder
			v := StatusView{Lang: lang, Admin: true, Activation: "active", LastRun: &run, Runs: []RunView{run}, Attention: raw}
			if err := StatusPanel(v).Render(context.Background(), &panel); err != nil {
				t.Fatal(err)
			}
			if err := mgrHealth(lang, manager.PortalRow{}, PortalHealth{NeedsAttention: true, SyncFailures: 1, LastSyncError: raw}).Render(context.Background(), &console); err != nil {
				t.Fatal(err)
			}
			for where, page := range map[string]string{"status panel": panel.String(), "console": console.String()} {
				// The sentence up to its first apostrophe, which the page escapes.
				want, _, _ := strings.Cut(keyText, "'")
				if !strings.Contains(page, want) || strings.Contains(page, pwText[:40]) {
					t.Errorf("%s, %s: a refused key %q is not said as the key:\n%s", lang, where, raw, page)
				}
			}
		}
		for _, w := range map[i18n.Lang][]string{i18n.EN: {"API key", "new API key", "Client ID"}, i18n.RU: {"ключ API", "новый ключ API", "Client ID"}}[lang] {
			if !strings.Contains(keyText, w) {
				t.Errorf("%s: the key's sentence %q does not say %q", lang, keyText, w)
			}
		}
	}
}

package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"b24learn/internal/bitrix24"
	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/syncer"
)

type fixedSettings syncer.Settings

func (f fixedSettings) Settings(context.Context, int64) (syncer.Settings, error) {
	return syncer.Settings(f), nil
}

// A real sync into a Learn account whose plan allows 50 more active users
// leaves 70 of 120 employees waiting for a licence; the status panel (page
// and live JSON) says so in words, in Russian and in English.
func TestStatusShowsEmployeesWaitingForALicence(t *testing.T) {
	t.Parallel()
	e := newSettingsEnv(t)
	ctx := context.Background()

	const acct, email, pass = "https://plan.ispringlearn.test", "admin@plan.test", "s3cret"
	lsim := learnsim.New(learnsim.Options{Seed: 1})
	// The account owner holds one of the 51 seats.
	if _, err := lsim.AddAccount(learnsim.AccountOptions{URL: acct, Email: email, Password: pass, MaxActiveUsers: 51}); err != nil {
		t.Fatal(err)
	}
	lsrv := httptest.NewServer(lsim.Handler())
	t.Cleanup(lsrv.Close)
	bsrv := b24sim.Start(b24sim.Options{Rate: -1})
	t.Cleanup(bsrv.Close)
	org := b24sim.GenerateOrg(7, 120, 5)
	for i := range org.Users {
		u := &org.Users[i]
		u.Active, u.Extranet = true, false
		if u.Email == "" {
			u.Email = fmt.Sprintf("user%d@example.com", u.ID)
		}
		if len(u.Departments) == 0 {
			u.Departments = []int64{1}
		}
	}
	bp := bsrv.AddPortal(b24sim.PortalOptions{Org: org})
	tok := bp.Install()
	bp.FinishInstall(ctx)
	oauth := &bitrix24.OAuth{URL: bsrv.URL, ClientID: bsrv.ClientID(), ClientSecret: bsrv.ClientSecret()}
	b24 := bitrix24.New(bitrix24.Config{Endpoint: bp.ClientEndpoint(), Tokens: bitrix24.NewMemoryTokenSource(oauth, bitrix24.Token(tok)),
		RetryWait: 100 * time.Millisecond})

	p := e.addPortal(bp.MemberID(), "ru")
	sy := syncer.New(syncer.Config{
		Pool: e.pool,
		Settings: fixedSettings{MemberID: bp.MemberID(), LearnURL: acct, LearnEmail: email, LearnPassword: pass,
			Selection: syncer.Selection{Selected: []int64{1}}},
		NewLearn: func(_ context.Context, _ int64, s syncer.Settings) (syncer.Learn, error) {
			return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
				learn.Options{BaseURL: lsrv.URL, AllowHTTP: true,
					Retry: learn.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Timeout: 10 * time.Second}})
		},
		NewBitrix24: func(context.Context, int64) (syncer.Bitrix24, error) { return b24, nil },
	})
	rep, err := sy.Run(ctx, p.ID, syncer.TriggerScheduled)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts["user.create"] != 120 || rep.Counts["user.waiting"] != 70 {
		t.Fatalf("run counts %v", rep.Counts)
	}

	for _, c := range []struct{ lang, want, count string }{
		{"en", "70 employees are waiting for an iSpring Learn licence", "waiting for a licence: 70"},
		{"ru", "70 сотрудников ждут лицензию iSpring Learn", "ждут лицензию: 70"},
	} {
		for _, admin := range []bool{true, false} {
			sess, token := e.session(p, 1, admin, c.lang)
			page := e.page(p, sess, token)
			if !strings.Contains(page, c.want) || !strings.Contains(page, c.count) {
				t.Errorf("%s page (admin %v) does not say %q and %q", c.lang, admin, c.want, c.count)
			}
			_, v := e.panel(token)
			if !strings.HasPrefix(v.shown("licence-note"), c.want) || v.shown("conflict-note") != "" {
				t.Errorf("%s live status (admin %v): licence note %q, conflict note %q", c.lang, admin, v.shown("licence-note"), v.shown("conflict-note"))
			}
		}
	}
}

package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/config"
	"b24learn/internal/i18n"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/syncer"
)

// barReading is the status panel's progress bar as the browser shows it.
type barReading struct {
	Tag    string  `json:"tag"`
	Value  float64 `json:"value"`
	Max    float64 `json:"max"`
	Phase  string  `json:"phase"`
	Label  string  `json:"label"` // the text its aria-labelledby points at
	Detail string  `json:"detail"`
}

const readBar = `(() => {
	const b = document.getElementById('sync-progress-bar');
	if (!b) return null;
	const l = document.getElementById(b.getAttribute('aria-labelledby'));
	return {tag: b.tagName, value: b.value, max: b.max, phase: document.getElementById('sync-progress').dataset.phase,
		label: l ? l.textContent : '', detail: document.getElementById('sync-progress-text').textContent};
})()`

// During a sync of 3,000 employees into a Learn that answers slowly, the
// status panel the page polls shows the writes' progress bar moving: two
// readings while the run writes, the second larger. Once the run is over
// the bar is gone.
func TestProgressBarMovesInBrowser(t *testing.T) {
	b := newBrowserEnv(t)
	ctx := context.Background()

	// A Learn of its own whose every answer takes 80 ms, so the writes
	// last several polls.
	const acct, email, pass = "https://progress.ispringlearn.test", "admin@progress.test", "s3cret"
	lsim := learnsim.New(learnsim.Options{Seed: 3, Latency: 80 * time.Millisecond})
	if _, err := lsim.AddAccount(learnsim.AccountOptions{URL: acct, Email: email, Password: pass}); err != nil {
		t.Fatal(err)
	}
	lsrv := httptest.NewServer(lsim.Handler())
	t.Cleanup(lsrv.Close)

	org := b24sim.GenerateOrg(41, 3000, 30)
	p := b.installPortal("ru", org)
	portalID := b.portalID(p)
	clients := testClients(&config.Config{B24OAuthURLs: []string{b.sim.URL}, B24ClientID: b.sim.ClientID(),
		B24ClientSecret: b.sim.ClientSecret(), Keyring: b.e.kr, B24AllowPrivateHosts: true}, b.e.pool)
	sy := syncer.New(syncer.Config{
		Pool: b.e.pool,
		Settings: fixedSettings{MemberID: p.MemberID(), LearnURL: acct, LearnEmail: email, LearnPassword: pass,
			Selection: syncer.Selection{Selected: []int64{1}}},
		NewLearn: func(_ context.Context, _ int64, s syncer.Settings) (syncer.Learn, error) {
			return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
				learn.Options{BaseURL: lsrv.URL, AllowHTTP: true,
					Retry: learn.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Timeout: 10 * time.Second}})
		},
		NewBitrix24: func(ctx context.Context, portalID int64) (syncer.Bitrix24, error) {
			return clients.Bitrix24(ctx, portalID)
		},
	})

	type result struct {
		rep *syncer.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := sy.Run(ctx, portalID, syncer.TriggerManual)
		done <- result{rep, err}
	}()
	// The page polls while a run is running: open it once the run is.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var running bool
		if err := b.e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM sync_runs WHERE portal_id = $1 AND status = 'running')`,
			portalID).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.openApp(p)

	b.waitFor("the progress bar with steps done", readBar+` && `+readBar+`.value > 0`)
	var first barReading
	b.mustEval(readBar, &first)
	b.waitFor("the progress bar further on", fmt.Sprintf(`%s && %s.value > %v`, readBar, readBar, first.Value))
	var second barReading
	b.mustEval(readBar, &second)
	t.Logf("progress bar: %v of %v, then %v of %v (%q)", first.Value, first.Max, second.Value, second.Max, second.Detail)

	if second.Value <= first.Value {
		t.Errorf("the bar did not move: %v then %v", first.Value, second.Value)
	}
	wantLabel := i18n.T(i18n.RU, "phase_write")
	for _, r := range []barReading{first, second} {
		if r.Tag != "PROGRESS" || r.Phase != "write" || r.Max <= 0 || r.Value > r.Max || r.Label != wantLabel {
			t.Errorf("bar reading %+v, want a <progress> of the planned steps labelled %q", r, wantLabel)
		}
		if want := fmt.Sprintf("выполнено %v из %v · ", r.Value, r.Max); len(r.Detail) < len(want) || r.Detail[:len(want)] != want {
			t.Errorf("bar detail %q, want it to start with %q", r.Detail, want)
		}
	}
	b.screenshot("status-progress-ru.png")

	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run did not finish")
	}
	if res.err != nil {
		t.Fatalf("run: %v", res.err)
	}
	if second.Max != float64(res.rep.Plan.Applied()) {
		t.Errorf("the bar's max is %v, the run applied %d steps", second.Max, res.rep.Plan.Applied())
	}
	t.Logf("run: %v writing, %v in all, counts %v", res.rep.Phases["apply"], res.rep.Duration, res.rep.Counts)
	b.waitFor("the panel without the bar once the run is over", `!document.getElementById('sync-progress') && document.querySelector('#last-run')`)
	b.run(chromedp.Reload())
	if errs := b.jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %q", errs)
	}
}

package syncer

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"b24learn/internal/bitrix24/b24sim"
	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
)

// TestKeyTokenLostMidRun: a key portal's run whose token stops working
// after the run has written a while. A token that expired is fetched again
// once and the run ends as a run without the loss; a key deleted in Learn
// stops the run at once, said as the API key refused (not the password); a
// token endpoint that keeps failing stops it after one fetch and its
// retries, said as no token, instead of a fetch for every write.
func TestKeyTokenLostMidRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		lose    func(e *simEnv, clock *simClock, failing *atomic.Bool)
		ok      bool
		key     string
		fetches int // token requests in all, the failing fetch's retries included
	}{
		{"Expired", func(_ *simEnv, clock *simClock, _ *atomic.Bool) { clock.advance(learnsim.DefaultTokenLifetime) }, true, "", 2},
		{"KeyDeleted", func(e *simEnv, _ *simClock, _ *atomic.Bool) {
			if err := e.lsim.SetAPIKey(simAccount, "", ""); err != nil {
				t.Error(err)
			}
		}, false, "check.bad_api_key", 2},
		{"TokenEndpointFailing", func(_ *simEnv, clock *simClock, failing *atomic.Bool) {
			failing.Store(true)
			clock.advance(learnsim.DefaultTokenLifetime)
		}, false, "run_err_learn_token", 1 + 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &simClock{}
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Now: clock.now, Unsettled: learnsim.Unsettled{HeaderAuthRetired: true}}})
			var writes, fetches atomic.Int64
			var failing atomic.Bool
			var once sync.Once
			inner := e.lsrv.Config.Handler
			e.lsrv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/api/v3/token":
					fetches.Add(1)
					if failing.Load() {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusServiceUnavailable)
						_, _ = w.Write([]byte(`{"code":503,"message":"Service Unavailable"}`))
						return
					}
				case r.Method != http.MethodGet && writes.Add(1) == 30:
					once.Do(func() { tc.lose(e, clock, &failing) })
				}
				inner.ServeHTTP(w, r)
			})
			id, p := e.addPortal(b24sim.GenerateOrg(7, 400, 12))
			rep, err := e.syncer.Run(context.Background(), id, TriggerScheduled)
			if got := fetches.Load(); got != int64(tc.fetches) {
				t.Errorf("%d token requests, want %d", got, tc.fetches)
			}
			if tc.ok {
				// Partial: the generated org has employees Learn refuses.
				if err != nil || rep.Status != RunSucceeded && rep.Status != RunPartial ||
					rep.Counts["user."+ItemFailed]+rep.Counts["department."+ItemFailed] != 0 {
					t.Fatalf("run: %v %+v", err, rep)
				}
				checkPortal(t, e.state(), p, e.state().RootID)
				return
			}
			if err == nil || !errors.Is(err, learn.ErrNoToken) {
				t.Fatalf("run: %v, want it stopped for want of a token", err)
			}
			run, rerr := e.syncer.store.Run(context.Background(), id, rep.RunID)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if key, _ := RunErrorKey(run.Error); run.Status != RunFailed || key != tc.key {
				t.Errorf("run %s with %q: the admin is told %s, want %s", run.Status, run.Error, key, tc.key)
			}
			// Writes in flight when the token was lost, and those the
			// parallel stages had begun, are refused; no more follow.
			if w := writes.Load(); w > 30+2*32 {
				t.Errorf("%d writes: the run went on after it lost its token at the 30th", w)
			}
			t.Logf("%d writes, %d token requests", writes.Load(), fetches.Load())
		})
	}
}

// A password portal's refused password is still said as the password.
func TestPasswordRefusalKeepsThePasswordsWords(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, simOpts{})
	id, _ := e.addPortal(b24sim.GenerateOrg(2, 10, 3))
	e.setSettings(id, func(s *Settings) { s.LearnPassword = "wrong" })
	rep, err := e.syncer.Run(context.Background(), id, TriggerManual)
	if !errors.Is(err, learn.ErrBadCredentials) {
		t.Fatalf("err %v, want bad credentials", err)
	}
	run, _ := e.syncer.store.Run(context.Background(), id, rep.RunID)
	if key, _ := RunErrorKey(run.Error); key != "check.bad_credentials" {
		t.Errorf("a refused password %q is told as %s", run.Error, key)
	}
}

// simClock is learnsim's clock, which a test moves ahead of the client's.
type simClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *simClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestRunWithRefusedKeyUnderEachSetting: however the token endpoint refuses
// a wrong key (each learnsim.KeyRefusal), a run stops before it writes and
// tells the admin the API key was refused, not the password and not "not
// Learn".
func TestRunWithRefusedKeyUnderEachSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		k    learnsim.KeyRefusal
	}{{"401", learnsim.KeyRefused401}, {"401InvalidClient", learnsim.KeyRefused401OAuth}, {"400InvalidClient", learnsim.KeyRefused400Client},
		{"400InvalidGrant", learnsim.KeyRefused400Grant}, {"400UnauthorizedClient", learnsim.KeyRefused400Unauthorized}, {"403", learnsim.KeyRefused403}} {
		k := tc.k
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSimEnv(t, simOpts{learn: learnsim.Options{Unsettled: learnsim.Unsettled{KeyRefusal: k}}})
			id, _ := e.addPortal(b24sim.GenerateOrg(2, 10, 3))
			e.setSettings(id, func(s *Settings) { s.LearnClientID, s.LearnClientSecret = simClientID, "wrong" })
			run, err := e.refusedRun(id, TriggerScheduled)
			if !errors.Is(err, learn.ErrAPIKeyRefused) || errors.Is(err, learn.ErrBadCredentials) {
				t.Fatalf("run: %v, want the API key refused", err)
			}
			if key, _ := RunErrorKey(run.Error); run.Status != RunFailed || key != "check.bad_api_key" {
				t.Errorf("run %s with %q: the admin is told %s, want check.bad_api_key", run.Status, run.Error, key)
			}
		})
	}
}

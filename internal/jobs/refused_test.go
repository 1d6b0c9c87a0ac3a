package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/learn"
	"b24learn/internal/settings"
	"b24learn/internal/syncer"
)

// quickRetry retries a failed job after a tenth of a second, so that a
// test sees in seconds what River's backoff spreads over days.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

// learnOutage puts a switch in front of the Learn simulator: while it is
// on, every call is answered 503. Call it before addPortal; the count is of
// the calls answered 503.
func (w *world) learnOutage() (down *atomic.Bool, refused *atomic.Int64) {
	down, refused = new(atomic.Bool), new(atomic.Int64)
	inner := w.learn.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			rw.Header().Set("Content-Type", "application/json")
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte(`{"code":503,"message":"Service Unavailable"}`))
			return
		}
		inner.ServeHTTP(rw, r)
	}))
	w.t.Cleanup(srv.Close)
	w.learnURL = srv.URL
	return down, refused
}

// TestRefusedPasswordIsNotRetried: a scheduled run that Learn refuses the
// stored password is not retried by River: each slot signs in once, not
// once per attempt (each would be a failed sign-in as the Learn admin). The
// portal shows the refusal, and the next slot tries again.
func TestRefusedPasswordIsNotRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	w.retry = quickRetry{}
	portal, _ := w.addPortal(10, "06:00", "")
	ctx := context.Background()
	if _, err := settings.Save(ctx, w.pool, w.keyring, portal, 0, func(s *settings.Settings) { s.Password = "wrong password" }); err != nil {
		t.Fatal(err)
	}
	p := w.startProcess()
	for slot, at := range []string{"2026-12-03T06:00Z", "2026-12-04T06:00Z"} {
		before := w.learn.Counts(w.learnURL).Rejected
		job := w.runScheduledSync(p, portal, at)
		rejected := w.learn.Counts(w.learnURL).Rejected - before
		t.Logf("slot %s: job %s after %d attempts, %d sign-ins refused", at, job.State, job.Attempt, rejected)
		if job.State != rivertype.JobStateCancelled || job.Attempt != 1 {
			t.Errorf("slot %s: job %s after %d attempts, want cancelled after 1", at, job.State, job.Attempt)
		}
		if rejected != 1 {
			t.Errorf("slot %s: %d sign-ins refused, want 1", at, rejected)
		}
		runs := w.runs(portal)
		if len(runs) != slot+1 || runs[slot].status != syncer.RunFailed {
			t.Fatalf("after slot %s: %d runs, want %d, the last failed", at, len(runs), slot+1)
		}
		var last string
		var failures int
		if err := w.pool.QueryRow(ctx, `SELECT last_sync_error, sync_failures FROM portals WHERE id = $1`, portal).Scan(&last, &failures); err != nil {
			t.Fatal(err)
		}
		if key, _ := syncer.RunErrorKey(last); key != "check."+learn.CheckBadCredentials || failures != slot+1 {
			t.Errorf("after slot %s: the portal shows %q (%s), %d failures; want the refused password, %d", at, last, key, failures, slot+1)
		}
	}
}

// TestLearnOutageIsRetried: a run that fails because Learn answers 503
// past the client's own retries is retried by River, and the retry
// succeeds once Learn is back.
func TestLearnOutageIsRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	w.retry = quickRetry{}
	w.learnRetry = learn.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	down, refused := w.learnOutage()
	portal, _ := w.addPortal(10, "06:00", "")
	ctx := context.Background()
	down.Store(true)
	p := w.startProcess()
	res, err := p.client.Insert(ctx, ScheduledSyncArgs{PortalID: portal, Slot: "2026-12-03T06:00Z"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		job, err := p.client.JobGet(ctx, res.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if job.Attempt >= 1 && job.State != rivertype.JobStateRunning {
			if job.State == rivertype.JobStateCancelled || job.State == rivertype.JobStateDiscarded {
				t.Fatalf("a run that met 503 was %s, want it retried", job.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first attempt did not end")
		}
	}
	down.Store(false)
	w.waitJobsDone("sync_scheduled")
	job, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("job %s after %d attempts; %d answers were 503", job.State, job.Attempt, refused.Load())
	if job.State != rivertype.JobStateCompleted || job.Attempt < 2 {
		t.Fatalf("job %s after %d attempts, want completed by a retry", job.State, job.Attempt)
	}
	if refused.Load() == 0 {
		t.Fatal("Learn was never down")
	}
	if runs := w.runs(portal); len(runs) < 2 || runs[0].status != syncer.RunFailed || runs[len(runs)-1].status == syncer.RunFailed {
		t.Errorf("runs %+v, want a failed one, then a finished one", runs)
	}
}

// TestScheduledOutageEndsAfterSyncMaxAttempts: a slot whose runs keep
// meeting a Learn outage is given up after syncMaxAttempts, as "Sync now"
// is, not River's default 25 attempts, whose backoff spans weeks of later
// slots. The portal is marked "needs attention" on the way.
func TestScheduledOutageEndsAfterSyncMaxAttempts(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	w.retry = quickRetry{}
	w.learnRetry = learn.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	down, _ := w.learnOutage()
	portal, _ := w.addPortal(10, "06:00", "")
	down.Store(true)
	p := w.startProcess()
	ctx := context.Background()
	job := w.runScheduledSync(p, portal, "2026-12-03T06:00Z")
	if job.State != rivertype.JobStateDiscarded || job.Attempt != syncMaxAttempts || job.MaxAttempts != syncMaxAttempts {
		t.Fatalf("job %s after %d of %d attempts, want discarded after %d", job.State, job.Attempt, job.MaxAttempts, syncMaxAttempts)
	}
	var failures int
	var attention bool
	if err := w.pool.QueryRow(ctx, `SELECT sync_failures, needs_attention FROM portals WHERE id = $1`, portal).Scan(&failures, &attention); err != nil {
		t.Fatal(err)
	}
	if failures != syncMaxAttempts || !attention {
		t.Fatalf("portal: %d failures, needs attention %v; want %d and marked", failures, attention, syncMaxAttempts)
	}
}

// TestNoRetryOfRefusedCredentials: refused credentials, however the run
// met them, cancel the job; Learn's transient failures leave it to River's
// retries.
func TestNoRetryOfRefusedCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		cancel bool
	}{
		{"Password", fmt.Errorf("read departments: %w", learn.ErrBadCredentials), true},
		{"APIKey", fmt.Errorf("GET /departments: %w: %w", learn.ErrNoToken, learn.ErrAPIKeyRefused), true},
		{"CheckBadAPIKey", &learn.CheckError{Code: learn.CheckBadAPIKey, Err: errors.New("half an API key")}, true},
		{"CheckBadCredentials", &learn.CheckError{Code: learn.CheckBadCredentials, Err: errors.New("empty email or password")}, true},
		{"Server", fmt.Errorf("read users: %w", learn.ErrServer), false},
		{"Timeout", fmt.Errorf("read users: %w", learn.ErrTimeout), false},
		{"RateLimited", fmt.Errorf("read users: %w", learn.ErrRateLimited), false},
		{"TokenEndpointFailing", fmt.Errorf("GET /departments: %w: %w", learn.ErrNoToken, learn.ErrServer), false},
		{"CheckServerError", &learn.CheckError{Code: learn.CheckServerError, Err: learn.ErrServer}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ce *river.JobCancelError
			if got := errors.As(noRetryOfRefusedAnswers(tc.err), &ce); got != tc.cancel {
				t.Errorf("%v: cancelled = %v, want %v", tc.err, got, tc.cancel)
			}
		})
	}
}

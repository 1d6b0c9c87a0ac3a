package jobs

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/learn"
	"b24learn/internal/syncer"
)

// A Learn server that sends its headers and then drips its body ends a sync
// within a few of the client's deadlines: the run is recorded as failed
// with the "did not answer in time" sentence, and the job fails to be
// retried later, as after any failure (a slow spell may pass).
// The client's deadlines are small here; production has the same path
// with learn.DefaultTimeout.
func TestDrippingLearnEndsTheRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drip := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusOK)
		for {
			if _, err := rw.Write([]byte(" ")); err != nil {
				return
			}
			rw.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(drip.Close)
	sc := syncerWithLearn(w, w.pool, func(s syncer.Settings) (syncer.Learn, error) {
		return learn.New(learn.Credentials{AccountURL: s.LearnURL, Email: s.LearnEmail, Password: s.LearnPassword},
			learn.Options{BaseURL: drip.URL, AllowHTTP: true,
				Retry: learn.RetryPolicy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, Timeout: 300 * time.Millisecond, MaxSlow: 2}})
	})
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: sc}}
	start := time.Now()
	err := (&SyncWorker{s: sw}).Work(ctx, &river.Job[SyncArgs]{Args: SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}})
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("the test's own deadline ended the sync after %s: %v", took, err)
	}
	var jc *river.JobCancelError
	if errors.As(err, &jc) || !errors.Is(err, learn.ErrTimeout) {
		t.Fatalf("sync after %s: %v, want learn.ErrTimeout, to be retried", took, err)
	}
	var runErr, status string
	if err := w.pool.QueryRow(ctx, `SELECT status, error FROM sync_runs WHERE portal_id = $1`, portal).Scan(&status, &runErr); err != nil {
		t.Fatal(err)
	}
	if key, _ := syncer.RunErrorKey(runErr); status != syncer.RunFailed || key != "check."+learn.CheckTimeout {
		t.Errorf("run %s with error %q (sentence %s), want failed with check.%s", status, runErr, key, learn.CheckTimeout)
	}
}

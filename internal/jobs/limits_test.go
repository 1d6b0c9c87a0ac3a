package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"b24learn/internal/learn"
	"b24learn/internal/learn/learnsim"
	"b24learn/internal/syncer"
)

// A Learn server that pages without end (the admin's own, say) fails the
// preview once: the job is cancelled rather than retried on every instance,
// and the run report says which limit was crossed. A sync fails the same way
// and the portal's health shows the error.
func TestHostileLearnIsNotRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	ctx := context.Background()
	w.learn.SetHostile(learnsim.Hostile{EndlessPages: true})
	p := w.startProcess()
	if _, err := p.client.Insert(ctx, PreviewArgs{PortalID: portal}, nil); err != nil {
		t.Fatal(err)
	}
	var state string
	var attempt int
	deadline := time.Now().Add(time.Minute)
	for {
		if err := w.pool.QueryRow(ctx, `SELECT state, attempt FROM river_job WHERE kind = 'sync_preview'`).Scan(&state, &attempt); err != nil {
			t.Fatal(err)
		}
		if state != "available" && state != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if state != "cancelled" || attempt != 1 {
		t.Fatalf("preview job %s after %d attempts, want cancelled after 1", state, attempt)
	}
	var runErr string
	if err := w.pool.QueryRow(ctx, `SELECT error FROM sync_runs WHERE portal_id = $1`, portal).Scan(&runErr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(runErr, "more departments than the limit of") {
		t.Fatalf("run error %q does not name the limit", runErr)
	}

	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: syncerFor(w, w.pool)}}
	err := (&SyncWorker{s: sw}).Work(ctx, &river.Job[SyncArgs]{Args: SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}})
	var cancel *river.JobCancelError
	var le *learn.LimitError
	if !errors.As(err, &cancel) || !errors.As(err, &le) {
		t.Fatalf("sync: %v, want the job cancelled with a limit error", err)
	}
	var failures int
	var last string
	if err := w.pool.QueryRow(ctx, `SELECT sync_failures, last_sync_error FROM portals WHERE id = $1`, portal).Scan(&failures, &last); err != nil {
		t.Fatal(err)
	}
	if failures != 1 || !strings.Contains(last, "more departments than the limit of") {
		t.Fatalf("portal health: failures=%d last=%q", failures, last)
	}
}

package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// startStoppableSync starts a slow "Sync now" of a fresh portal on a
// process of its own and returns once its run is under way.
func startStoppableSync(t *testing.T) (*world, *process, int64, int64) {
	t.Helper()
	w := newWorld(t, 15*time.Millisecond) // slow Learn: the run lasts long enough to stop
	portal, _ := w.addPortal(150, "06:00", "")
	p := w.startProcess()
	res, err := p.client.Insert(context.Background(), SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.waitRunning(portal, "sync")
	return w, p, portal, res.Job.ID
}

// stoppedRunError waits for the portal's first run to end and returns its
// stored error.
func stoppedRunError(t *testing.T, w *world, portal int64) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var status, errText string
		if err := w.pool.QueryRow(context.Background(), `SELECT status, coalesce(error, '') FROM sync_runs
			WHERE portal_id = $1 ORDER BY id LIMIT 1`, portal).Scan(&status, &errText); err != nil {
			t.Fatal(err)
		}
		if status != syncer.RunRunning {
			if status != syncer.RunFailed {
				t.Fatalf("the stopped run ended %s, want %s", status, syncer.RunFailed)
			}
			return errText
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped run is still running")
		}
	}
}

// checkSays checks that a stored run error says key's sentence in every
// catalogue language (the status panel's words) without a detail.
func checkSays(t *testing.T, errText, key string) {
	t.Helper()
	got, detail := syncer.RunErrorKey(errText)
	if got != key || detail {
		t.Errorf("stored error %q reads as %q (detail %v), want %q without detail", errText, got, detail, key)
	}
	for _, lang := range []i18n.Lang{i18n.EN, i18n.RU} {
		if s := i18n.T(lang, key); s == "" || s == key {
			t.Errorf("%s has no sentence in %s", key, lang)
		}
	}
}

// A sync whose job an operator cancels (River UI, the console) records
// that it was cancelled, not a bare "context canceled" nor a shutdown: no
// process resumes it, and the admin reads who stopped it.
func TestSyncCancelledByOperatorSaysSo(t *testing.T) {
	t.Parallel()
	w, p, portal, jobID := startStoppableSync(t)
	if _, err := p.client.JobCancel(context.Background(), jobID); err != nil {
		t.Fatal(err)
	}
	errText := stoppedRunError(t, w, portal)
	if errText != syncer.RunCancelled {
		t.Errorf("run error %q, want %q", errText, syncer.RunCancelled)
	}
	checkSays(t, errText, "run_err_cancelled")
	w.waitJobsDone("sync")
	if job, err := p.client.JobGet(context.Background(), jobID); err != nil || job.State != rivertype.JobStateCancelled {
		t.Errorf("job after the operator's cancel: %v, %v; want cancelled", job, err)
	}
}

// A sync cut by the process's shutdown (River's hard stop cancels running
// jobs) records the shutdown, which another process resumes.
func TestSyncStoppedByShutdownSaysSo(t *testing.T) {
	t.Parallel()
	w, p, portal, _ := startStoppableSync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.client.StopAndCancel(ctx); err != nil {
		t.Fatal(err)
	}
	errText := stoppedRunError(t, w, portal)
	if errText != syncer.RunShutdown {
		t.Errorf("run error %q, want %q", errText, syncer.RunShutdown)
	}
	checkSays(t, errText, "run_err_shutdown")
}

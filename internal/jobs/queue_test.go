package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"b24learn/internal/apptest"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"b24learn/internal/jobs/queues"
	"b24learn/internal/pgtest"
	"b24learn/internal/syncer"
)

// The Queue's reads and cancels against River's own tables, with an
// insert-only client: nothing works the jobs.
func TestQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	rc := apptest.Inserter(t, pool)
	q := NewQueue(pool, rc)
	insert := func(args river.JobArgs, opts *river.InsertOpts) *rivertype.JobRow {
		t.Helper()
		res, err := rc.Insert(ctx, args, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.Job
	}
	later := &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}
	const a, b = 7, 8
	scheduled := insert(SyncArgs{PortalID: a, Trigger: syncer.TriggerManual}, later)
	preview := insert(PreviewArgs{PortalID: a}, nil)
	insert(LeadForwardArgs{PortalID: a, RequestID: 1}, nil)
	other := insert(PreviewArgs{PortalID: b}, nil)
	insert(DispatchArgs{}, nil)

	list, err := q.PortalJobs(ctx, a, 10)
	if err != nil || len(list) != 3 || list[0].ID < list[2].ID {
		t.Fatalf("PortalJobs = %d jobs, %v; want 3, newest first", len(list), err)
	}
	for _, j := range list {
		if PortalOf(j) != a {
			t.Errorf("job %d of portal %d listed for %d", j.ID, PortalOf(j), a)
		}
	}

	// The job due first is the panel's; a running one goes before it.
	if j, err := q.PortalSyncJob(ctx, a); err != nil || j == nil || j.ID != preview.ID {
		t.Fatalf("PortalSyncJob = %v, %v; want the preview %d", j, err, preview.ID)
	}
	if _, err := pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempted_at = now(), attempt = 1 WHERE id = $1`, scheduled.ID); err != nil {
		t.Fatal(err)
	}
	if j, err := q.PortalSyncJob(ctx, a); err != nil || j == nil || j.ID != scheduled.ID {
		t.Fatalf("PortalSyncJob = %v, %v; want the running sync %d", j, err, scheduled.ID)
	}
	if j, err := q.PortalSyncJob(ctx, 99); err != nil || j != nil {
		t.Fatalf("PortalSyncJob of a portal with no jobs = %v, %v", j, err)
	}

	counts, err := q.CountJobs(ctx, queues.Unfinished()...)
	if err != nil {
		t.Fatal(err)
	}
	if counts["sync_preview"][rivertype.JobStateAvailable] != 2 || counts["sync"][rivertype.JobStateRunning] != 1 ||
		counts["dispatch"][rivertype.JobStateAvailable] != 1 {
		t.Errorf("CountJobs = %v", counts)
	}

	// Failed jobs: the latest failure first, whichever way it failed.
	for _, u := range []struct {
		id  int64
		sql string
	}{
		{other.ID, `UPDATE river_job SET state = 'discarded', attempt = 1, attempted_at = now() - interval '2 hours',
			finalized_at = now() - interval '1 hour', errors = ARRAY['{"at": "2026-01-02T03:04:05Z", "attempt": 1, "error": "first"}'::jsonb] WHERE id = $1`},
		{preview.ID, `UPDATE river_job SET state = 'retryable', attempt = 1, attempted_at = now() - interval '1 minute',
			errors = ARRAY['{"at": "2026-01-02T03:04:05Z", "attempt": 1, "error": "old"}'::jsonb, '{"at": "2026-01-02T03:05:05Z", "attempt": 2, "error": "last"}'::jsonb] WHERE id = $1`},
	} {
		if _, err := pool.Exec(ctx, u.sql, u.id); err != nil {
			t.Fatal(err)
		}
	}
	failed, err := q.FailedJobs(ctx, 10)
	if err != nil || len(failed) != 2 || failed[0].ID != preview.ID || failed[1].ID != other.ID {
		t.Fatalf("FailedJobs = %v, %v; want the retryable preview, then the discarded one", failed, err)
	}
	if LastError(failed[0]) != "last" || LastError(failed[1]) != "first" {
		t.Errorf("LastError = %q, %q", LastError(failed[0]), LastError(failed[1]))
	}

	// Uninstall: every unfinished job of the portal, of any kind, is
	// cancelled (the running one flagged); another portal's are left alone.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return q.CancelPortalJobs(ctx, tx, a) }); err != nil {
		t.Fatal(err)
	}
	left, err := q.CountJobs(ctx, queues.Unfinished()...)
	if err != nil {
		t.Fatal(err)
	}
	if left["lead_forward"][rivertype.JobStateAvailable] != 0 || left["sync_preview"][rivertype.JobStateRetryable] != 0 ||
		left["dispatch"][rivertype.JobStateAvailable] != 1 {
		t.Errorf("after CancelPortalJobs: %v", left)
	}
	if j, err := rc.JobGet(ctx, scheduled.ID); err != nil || j.State != rivertype.JobStateRunning || len(j.Metadata) < 3 {
		t.Errorf("running job after cancel: %+v, %v", j, err)
	}
}

// A sync its worker cancelled because Learn refused the password is a
// failed job, listed with its reason; jobs cancelled from outside, queued
// or running, are not.
func TestFailedJobsListRefusedCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	setLearnPassword(t, w, portal, "wrong password")
	p := w.startProcess()
	w.syncByHand(p, portal)
	q := NewQueue(w.pool, p.client)

	queued, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual},
		&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error { return q.CancelPortalJobs(ctx, tx, portal) }); err != nil {
		t.Fatal(err)
	}
	running, err := p.client.Insert(ctx, PreviewArgs{PortalID: portal}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// As River leaves a running job cancelled from outside.
	if _, err := w.pool.Exec(ctx, `UPDATE river_job SET state = 'cancelled', attempt = 1, finalized_at = now(),
		metadata = '{"cancel_attempted_at": "2026-01-02T03:04:05Z"}',
		errors = ARRAY['{"at": "2026-01-02T03:04:05Z", "attempt": 1, "error": "job cancelled remotely"}'::jsonb]
		WHERE id = $1`, running.Job.ID); err != nil {
		t.Fatal(err)
	}

	failed, err := q.FailedJobs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Kind != (SyncArgs{}).Kind() || failed[0].State != rivertype.JobStateCancelled ||
		!strings.Contains(LastError(failed[0]), "wrong email or password") || !Failed(failed[0]) {
		for _, j := range failed {
			t.Logf("listed: job %d %s %s %q", j.ID, j.Kind, j.State, LastError(j))
		}
		t.Fatalf("FailedJobs listed %d jobs, want only the refused sync with its reason", len(failed))
	}
	for _, id := range []int64{queued.Job.ID, running.Job.ID} {
		j, err := p.client.JobGet(ctx, id)
		if err != nil || j.State != rivertype.JobStateCancelled || Failed(j) {
			t.Errorf("job cancelled from outside: %+v, %v; want cancelled and not failed", j, err)
		}
	}
}

// A sync waiting for its retry when the uninstall cancels it keeps its
// earlier attempt's error: cancelled from outside, it is no failed job.
func TestFailedJobsLeaveOutCancelledRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(10, "06:00", "")
	p := w.startProcess()
	q := NewQueue(w.pool, p.client)
	res, err := p.client.Insert(ctx, SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual},
		&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `UPDATE river_job SET state = 'retryable', attempt = 1,
		errors = ARRAY['{"at": "2026-01-02T03:04:05Z", "attempt": 1, "error": "learn: 503"}'::jsonb]
		WHERE id = $1`, res.Job.ID); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error { return q.CancelPortalJobs(ctx, tx, portal) }); err != nil {
		t.Fatal(err)
	}
	j, err := p.client.JobGet(ctx, res.Job.ID)
	if err != nil || j.State != rivertype.JobStateCancelled || len(j.Errors) == 0 || Failed(j) {
		t.Fatalf("retry cancelled from outside: %+v, %v; want cancelled with its error, not failed", j, err)
	}
	failed, err := q.FailedJobs(ctx, 10)
	if err != nil || len(failed) != 0 {
		t.Fatalf("FailedJobs: %d jobs, %v; want none", len(failed), err)
	}
}

// The lost-erase query's test of an unfinished erase job matches its
// portal and install generation and nothing else: a job of the portal's
// earlier install does not count as this install's erase.
func TestUnfinishedJobSQLMatchesPortalAndGeneration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	rc := apptest.Inserter(t, pool)
	if _, err := rc.Insert(ctx, UninstallEraseArgs{PortalID: 7, Generation: 3}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		portal, generation int64
		states             []rivertype.JobState
		want               bool
	}{
		{7, 3, queues.Unfinished(), true},
		{7, 2, queues.Unfinished(), false},
		{8, 3, queues.Unfinished(), false},
		{7, 3, []rivertype.JobState{rivertype.JobStateCompleted}, false},
	} {
		var got bool
		err := pool.QueryRow(ctx, `SELECT `+unfinishedJobSQL("$1", "$2", "$3", "$4"), UninstallEraseArgs{}.Kind(),
			stateNames(c.states), c.portal, c.generation).Scan(&got)
		if err != nil || got != c.want {
			t.Errorf("portal %d generation %d in %v: %v, %v; want %v", c.portal, c.generation, c.states, got, err, c.want)
		}
	}
}

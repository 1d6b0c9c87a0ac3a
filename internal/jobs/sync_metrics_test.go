package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	"b24learn/internal/metrics"
	"b24learn/internal/settings"
	"b24learn/internal/store"
	"b24learn/internal/syncer"
)

func metricValue(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// Syncs run through the workers show up in /metrics: runs by trigger and
// result, durations, and the objects the real runs changed (previews and
// busy snoozes excluded).
func TestSyncWorkersRecordMetrics(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(30, "06:00", "")
	ctx := context.Background()
	m := metrics.New()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: syncerFor(w, w.pool), Metrics: m}}

	if err := (&PreviewWorker{s: sw}).Work(ctx, &river.Job[PreviewArgs]{Args: PreviewArgs{PortalID: portal}}); err != nil {
		t.Fatalf("preview: %v", err)
	}
	if err := (&SyncWorker{s: sw}).Work(ctx, &river.Job[SyncArgs]{Args: SyncArgs{PortalID: portal, Trigger: syncer.TriggerManual}}); err != nil {
		t.Fatalf("manual sync: %v", err)
	}
	scheduled := &ScheduledSyncWorker{s: sw}
	if err := scheduled.Work(ctx, &river.Job[ScheduledSyncArgs]{Args: ScheduledSyncArgs{PortalID: portal, Slot: "x"}}); err != nil {
		t.Fatalf("scheduled sync: %v", err)
	}
	// Another sync holds the portal: the job snoozes and no run is counted.
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2::int)`, syncer.LockKey, portal); err != nil {
		t.Fatal(err)
	}
	var snooze *river.JobSnoozeError
	if err := scheduled.Work(ctx, &river.Job[ScheduledSyncArgs]{Args: ScheduledSyncArgs{PortalID: portal, Slot: "y"}}); !errors.As(err, &snooze) {
		t.Fatalf("sync of a busy portal: %v, want a snooze", err)
	}
	conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2::int)`, syncer.LockKey, portal)
	conn.Release()
	if _, err := settings.Save(ctx, w.pool, w.keyring, portal, 0, func(s *settings.Settings) { s.Password = "wrong password" }); err != nil {
		t.Fatal(err)
	}
	if err := scheduled.Work(ctx, &river.Job[ScheduledSyncArgs]{Args: ScheduledSyncArgs{PortalID: portal, Slot: "z"}}); err == nil {
		t.Fatal("sync with a wrong Learn password succeeded")
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	check := func(series string, want float64) {
		t.Helper()
		got, ok := metricValue(text, series)
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	check(`b24learn_syncs_total{result="previewed",trigger="preview"}`, 1)
	check(`b24learn_syncs_total{result="failed",trigger="scheduled"}`, 1)
	check(`b24learn_sync_duration_seconds_count{trigger="scheduled"}`, 2)
	check(`b24learn_sync_duration_seconds_count{trigger="manual"}`, 1)

	// Runs by result and the objects counter equal what the runs recorded
	// (the generated org has users Learn refuses, so a sync may be partial).
	runs, err := syncer.NewStore(w.pool).Runs(ctx, portal, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs recorded, want 4", len(runs))
	}
	results := map[[2]string]int{}
	sums := map[string]int{}
	for _, r := range runs {
		results[[2]string{string(r.Trigger), r.Status}]++
		if r.Trigger == syncer.TriggerPreview {
			continue
		}
		for k, n := range r.Counts {
			sums[k] += n
		}
	}
	for k, n := range results {
		check(`b24learn_syncs_total{result="`+k[1]+`",trigger="`+k[0]+`"}`, float64(n))
	}
	if n := strings.Count(text, "\nb24learn_syncs_total{"); n != len(results) {
		t.Errorf("%d result series, want %d (the busy snooze must not count)", n, len(results))
	}
	if sums["user.create"] == 0 || sums["department.create"] == 0 {
		t.Fatalf("the first sync created nothing: %v", sums)
	}
	for k, n := range sums {
		kind, action, _ := strings.Cut(k, ".")
		if kind == "learn" {
			// The run's write concurrency and 429s are figures, not objects.
			if strings.Contains(text, `kind="learn"`) {
				t.Errorf("%s exported as synced objects", k)
			}
			continue
		}
		if n > 0 {
			check(`b24learn_sync_objects_total{action="`+action+`",kind="`+kind+`"}`, float64(n))
		}
	}
}

// cutSyncer is a sync during which the process's shutdown cancels the
// job's context; the run then ends with report and err(ctx).
type cutSyncer struct {
	cancel context.CancelFunc
	report syncer.Report
	err    func(ctx context.Context) error
}

func (s cutSyncer) Run(ctx context.Context, portalID int64, trigger syncer.Trigger) (*syncer.Report, error) {
	s.cancel()
	r := s.report
	return &r, s.err(ctx)
}

func (s cutSyncer) RunApproved(ctx context.Context, portalID, _ int64) (*syncer.Report, error) {
	return s.Run(ctx, portalID, syncer.TriggerApproved)
}

// writeCut is a run's error when the shutdown cut one of its writes.
func writeCut(ctx context.Context) error { return fmt.Errorf("write: %w", ctx.Err()) }

// runCutSync runs one scheduled sync of a new portal that the shutdown
// cuts mid-run, ending as report and runErr; it returns the portal, the
// worker's error and what /metrics then shows.
func runCutSync(t *testing.T, report syncer.Report, runErr func(context.Context) error) (*world, int64, error, string) {
	t.Helper()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(3, "06:00", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := metrics.New()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Metrics: m,
		Sync: cutSyncer{cancel: cancel, report: report, err: runErr}}}
	err := (&ScheduledSyncWorker{s: sw}).Work(ctx, &river.Job[ScheduledSyncArgs]{Args: ScheduledSyncArgs{PortalID: portal, Slot: "x"}})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return w, portal, err, rec.Body.String()
}

// A deploy's SIGTERM hands a running sync back to the queue, where another
// process resumes it: no failure of the portal, and none in /metrics either,
// or every deploy would fire the operator's alert on failed syncs.
func TestSyncCutByShutdownIsNoFailedSync(t *testing.T) {
	t.Parallel()
	_, _, err, text := runCutSync(t, syncer.Report{RunID: 1, Status: syncer.RunFailed, Counts: map[string]int{"user.create": 3}},
		writeCut)
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) {
		t.Fatalf("sync cut by shutdown: %v, want a snooze", err)
	}
	if strings.Contains(text, `result="failed"`) {
		t.Errorf("a sync cut by shutdown counted as failed")
	}
	if v, ok := metricValue(text, `b24learn_syncs_total{result="interrupted",trigger="scheduled"}`); !ok || v != 1 {
		t.Errorf("interrupted syncs = %v (present %v), want 1", v, ok)
	}
	// What it wrote before the cut is written: the objects count.
	if v, ok := metricValue(text, `b24learn_sync_objects_total{action="create",kind="user"}`); !ok || v != 3 {
		t.Errorf("objects written before the cut = %v (present %v), want 3", v, ok)
	}
}

// errLearn500 is a sync's own failure (Learn answered 500) just as the
// process's shutdown cancels its context.
var errLearn500 = errors.New("learn: GET /users: server error (status 500, code 0)")

// A sync whose own error came before the shutdown's cut is that failure,
// not a cut: handed back as one, the portal's failure was lost and the
// metrics counted a restart.
func TestSyncFailingAsShutdownBeginsIsAFailure(t *testing.T) {
	t.Parallel()
	w, portal, err, text := runCutSync(t, syncer.Report{RunID: 1, Status: syncer.RunFailed},
		func(context.Context) error { return fmt.Errorf("read learn users: %w", errLearn500) })
	if !errors.Is(err, errLearn500) {
		t.Fatalf("sync failing as the shutdown begins: %v, want its own error", err)
	}
	if v, ok := metricValue(text, `b24learn_syncs_total{result="failed",trigger="scheduled"}`); !ok || v != 1 {
		t.Errorf("failed syncs = %v (present %v), want 1", v, ok)
	}
	// The portal's health counts it too, though the job's context is gone.
	p, err := store.GetPortal(context.Background(), w.pool, portal)
	if err != nil || p.SyncFailures != 1 || !strings.Contains(p.LastSyncError, "500") {
		t.Errorf("portal health after the failure: %+v, %v; want 1 failure with Learn's 500", p.Health, err)
	}
}

// A preview is tried once, so a preview cut by a deploy's SIGTERM that
// returned its error would be discarded and the admin shown a failure: it
// goes back to the queue like a sync, to be resumed by another process.
func TestPreviewCutByShutdownGoesBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(3, "06:00", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: cutSyncer{cancel: cancel, err: writeCut}}}
	var snooze *river.JobSnoozeError
	if err := (&PreviewWorker{s: sw}).Work(ctx, &river.Job[PreviewArgs]{Args: PreviewArgs{PortalID: portal}}); !errors.As(err, &snooze) {
		t.Fatalf("preview cut by shutdown: %v, want a snooze", err)
	}
}

// shutdownPerson is "Sync this employee" cut by the process's shutdown.
type shutdownPerson struct{ cancel context.CancelFunc }

func (s shutdownPerson) RunPerson(ctx context.Context, portalID, b24ID int64) (*syncer.Report, error) {
	s.cancel()
	return &syncer.Report{RunID: 1, Status: syncer.RunFailed}, writeCut(ctx)
}

// "Sync this employee" cut by a deploy's SIGTERM is counted interrupted,
// so it goes back to the queue like a sync: returned as an error it spent
// one of its three attempts and showed as a failed job in the console.
func TestPersonRunCutByShutdownGoesBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(3, "06:00", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool}}
	var snooze *river.JobSnoozeError
	err := (&ProvisionWorker{s: sw, ps: shutdownPerson{cancel}}).Work(ctx,
		&river.Job[ProvisionArgs]{Args: ProvisionArgs{PortalID: portal, UserID: 7}})
	if !errors.As(err, &snooze) {
		t.Fatalf("person run cut by shutdown: %v, want a snooze", err)
	}
}

// remoteCancelSyncer is a sync whose job is cancelled from River UI or the
// console mid-run: River cancels the job's context with
// ErrJobCancelledRemotely as its cause.
type remoteCancelSyncer struct{ cancel context.CancelCauseFunc }

func (s remoteCancelSyncer) Run(ctx context.Context, portalID int64, trigger syncer.Trigger) (*syncer.Report, error) {
	s.cancel(river.ErrJobCancelledRemotely)
	return &syncer.Report{RunID: 1, Status: syncer.RunFailed}, writeCut(ctx)
}

func (s remoteCancelSyncer) RunApproved(ctx context.Context, portalID, _ int64) (*syncer.Report, error) {
	return s.Run(ctx, portalID, syncer.TriggerApproved)
}

// A sync cancelled remotely is not resumed by another process, as one cut
// by a deploy is: it is counted cancelled, not interrupted.
func TestSyncCancelledRemotelyIsCountedCancelled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 0)
	portal, _ := w.addPortal(3, "06:00", "")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	m := metrics.New()
	sw := &syncWorkers{deps: Deps{Log: slog.New(slog.DiscardHandler), Pool: w.pool, Sync: remoteCancelSyncer{cancel}, Metrics: m}}
	if err := (&ScheduledSyncWorker{s: sw}).Work(ctx, &river.Job[ScheduledSyncArgs]{Args: ScheduledSyncArgs{PortalID: portal, Slot: "x"}}); err == nil {
		t.Fatal("a sync cancelled remotely returned no error")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	if v, ok := metricValue(text, `b24learn_syncs_total{result="cancelled",trigger="scheduled"}`); !ok || v != 1 {
		t.Errorf("cancelled syncs = %v (present %v), want 1", v, ok)
	}
	for _, r := range []string{"interrupted", "failed"} {
		if strings.Contains(text, `result="`+r+`"`) {
			t.Errorf("a sync cancelled remotely counted %s", r)
		}
	}
}

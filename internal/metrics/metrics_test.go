package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body.String())
	}
	return rec.Body.String()
}

// value finds one series in a scrape ("name{a=\"x\"}"); ok is false when the
// series is absent.
func value(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		rest, found := strings.CutPrefix(line, series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

func want(t *testing.T, text, series string, v float64) {
	t.Helper()
	got, ok := value(text, series)
	if !ok {
		t.Errorf("scrape lacks %s", series)
	} else if got != v {
		t.Errorf("%s = %v, want %v", series, got, v)
	}
}

func TestObserveSync(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveSync("scheduled", "succeeded", 3*time.Second, map[string]int{"user.create": 7, "department.move": 2, "user.refused": 1})
	m.ObserveSync("manual", "partial", 90*time.Second, map[string]int{"user.create": 1, "user.deactivate": 4, "user.update": 0})
	m.ObserveSync("scheduled", "failed", 200*time.Millisecond, map[string]int{})
	// A preview's counts are a plan: counted as a run, not as changes.
	m.ObserveSync("preview", "previewed", time.Second, map[string]int{"user.create": 100})

	text := scrape(t, m)
	want(t, text, `b24learn_syncs_total{result="succeeded",trigger="scheduled"}`, 1)
	want(t, text, `b24learn_syncs_total{result="failed",trigger="scheduled"}`, 1)
	want(t, text, `b24learn_syncs_total{result="partial",trigger="manual"}`, 1)
	want(t, text, `b24learn_syncs_total{result="previewed",trigger="preview"}`, 1)
	want(t, text, `b24learn_sync_objects_total{action="create",kind="user"}`, 8)
	want(t, text, `b24learn_sync_objects_total{action="move",kind="department"}`, 2)
	want(t, text, `b24learn_sync_objects_total{action="deactivate",kind="user"}`, 4)
	want(t, text, `b24learn_sync_objects_total{action="refused",kind="user"}`, 1)
	if _, ok := value(text, `b24learn_sync_objects_total{action="update",kind="user"}`); ok {
		t.Error("a zero count made a series")
	}
	want(t, text, `b24learn_sync_duration_seconds_count{trigger="scheduled"}`, 2)
	want(t, text, `b24learn_sync_duration_seconds_sum{trigger="scheduled"}`, 3.2)
	want(t, text, `b24learn_sync_duration_seconds_bucket{trigger="scheduled",le="1"}`, 1)
	want(t, text, `b24learn_sync_duration_seconds_bucket{trigger="manual",le="60"}`, 0)
	want(t, text, `b24learn_sync_duration_seconds_bucket{trigger="manual",le="120"}`, 1)
}

// fakeQueue answers counts the way jobs.Queue does (its own test runs it
// against River); a test here cannot import jobs, which imports metrics.
type fakeQueue struct {
	counts map[string]map[rivertype.JobState]int64
	err    error
}

func (f *fakeQueue) CountJobs(_ context.Context, states ...rivertype.JobState) (map[string]map[rivertype.JobState]int64, error) {
	out := map[string]map[rivertype.JobState]int64{}
	for kind, byState := range f.counts {
		for _, st := range states {
			if n, ok := byState[st]; ok {
				if out[kind] == nil {
					out[kind] = map[rivertype.JobState]int64{}
				}
				out[kind][st] = n
			}
		}
	}
	return out, f.err
}

func TestQueueDepth(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{}
	m := New()
	if err := m.RegisterQueueDepth(q, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := value(scrape(t, m), `b24learn_river_queue_up`); got != 1 {
		t.Fatalf("queue_up = %v on an empty queue", got)
	}
	q.counts = map[string]map[rivertype.JobState]int64{
		"test_kind":  {rivertype.JobStateAvailable: 3, rivertype.JobStateScheduled: 1},
		"other_kind": {rivertype.JobStateAvailable: 1},
	}
	text := scrape(t, m)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="available"}`, 3)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="scheduled"}`, 1)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="running"}`, 0)
	want(t, text, `b24learn_river_queue_depth{kind="other_kind",state="available"}`, 1)

	// A finished job leaves the queue; its kind stays, at zero.
	q.counts["other_kind"] = map[rivertype.JobState]int64{rivertype.JobStateCompleted: 1}
	want(t, scrape(t, m), `b24learn_river_queue_depth{kind="other_kind",state="available"}`, 0)
}

func TestQueueDepthFailureKeepsTheScrape(t *testing.T) {
	t.Parallel()
	m := New()
	if err := m.RegisterQueueDepth(&fakeQueue{err: errors.New("database down")}, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	m.ObserveSync("manual", "succeeded", time.Second, nil)
	text := scrape(t, m)
	want(t, text, `b24learn_river_queue_up`, 0)
	want(t, text, `b24learn_syncs_total{result="succeeded",trigger="manual"}`, 1)
}

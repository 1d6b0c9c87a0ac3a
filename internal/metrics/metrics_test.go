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

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"b24learn/internal/pgtest"
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

type testArgs struct {
	N int `json:"n"`
}

func (testArgs) Kind() string { return "test_kind" }

type otherArgs struct{}

func (otherArgs) Kind() string { return "other_kind" }

func TestQueueDepth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	m := New()
	if err := m.RegisterQueueDepth(pool, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	// Insert-only client: nothing works the jobs.
	rc, err := river.NewClient[pgx.Tx](riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := value(scrape(t, m), `b24learn_river_queue_up`); got != 1 {
		t.Fatalf("queue_up = %v on an empty queue", got)
	}
	for i := range 3 {
		if _, err := rc.Insert(ctx, testArgs{N: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rc.Insert(ctx, testArgs{N: 9}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, err := rc.Insert(ctx, otherArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="available"}`, 3)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="scheduled"}`, 1)
	want(t, text, `b24learn_river_queue_depth{kind="test_kind",state="running"}`, 0)
	want(t, text, `b24learn_river_queue_depth{kind="other_kind",state="available"}`, 1)

	// A finished job leaves the queue; its kind stays, at zero.
	if _, err := pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1`, res.Job.ID); err != nil {
		t.Fatal(err)
	}
	want(t, scrape(t, m), `b24learn_river_queue_depth{kind="other_kind",state="available"}`, 0)
}

type failingDB struct{}

func (failingDB) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("database down")
}

func TestQueueDepthFailureKeepsTheScrape(t *testing.T) {
	t.Parallel()
	m := New()
	if err := m.RegisterQueueDepth(failingDB{}, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	m.ObserveSync("manual", "succeeded", time.Second, nil)
	text := scrape(t, m)
	want(t, text, `b24learn_river_queue_up`, 0)
	want(t, text, `b24learn_syncs_total{result="succeeded",trigger="manual"}`, 1)
}
